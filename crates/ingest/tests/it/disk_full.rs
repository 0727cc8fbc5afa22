// A full disk: appends fail with `DiskFull`, nothing acknowledged is lost, no torn bytes stay
// behind, and appends succeed again once space is freed.

use ingest::{LogError, SyncMode};

use crate::util::{open, rec_sized, segment_files};

/// Unmounts the small tmpfs even if the test fails.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Needs root (CI and the dev machines run as root): a 1 MiB tmpfs is the full disk.
#[tokio::test]
async fn disk_full_fails_appends_keeps_the_acknowledged_and_recovers_after_release() {
    let holder = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(holder.path())
        .status()
        .unwrap();
    assert!(mounted.success(), "mounting a tmpfs needs root");
    let _mount = Mount(holder.path().to_owned());
    let dir = holder.path().join("log");
    let seg = 128 << 10;
    let (log, _) = open(&dir, SyncMode::EveryBatch, seg);
    let mut acked = Vec::new();
    let err = loop {
        let i = acked.len() as u64;
        // 10 KiB + a bit: not a multiple of the page size, so the failing write is partial.
        match log.append(&rec_sized(i, 10_000 + i as usize)).await {
            Ok(lsn) => {
                assert_eq!(lsn, i + 1);
                acked.push(i);
                assert!(acked.len() < 200, "disk never filled");
            }
            Err(e) => break e,
        }
    };
    assert!(matches!(err, LogError::DiskFull { .. }), "{err}");
    assert!(err
        .to_string()
        .starts_with("cannot append to the ingest log: the disk is full"));
    let next = acked.len() as u64;
    let again = log.append(&rec_sized(next, 10_000 + next as usize)).await;
    assert!(matches!(again, Err(LogError::DiskFull { .. })), "{again:?}");
    assert_eq!(log.stats().failed_appends, 2);
    log.close().unwrap();
    drop(log);

    // Everything acknowledged is there, nothing else, and no torn bytes were left behind.
    let (log, replay) = open(&dir, SyncMode::EveryBatch, seg);
    assert_eq!(replay.dropped, Default::default());
    let got: Vec<_> = replay
        .records
        .iter()
        .map(|e| (e.lsn, e.record.clone()))
        .collect();
    let want: Vec<_> = acked
        .iter()
        .map(|&i| (i + 1, rec_sized(i, 10_000 + i as usize)))
        .collect();
    assert_eq!(got, want);

    // Freeing space (releasing every closed segment) lets appends through, LSNs without a gap.
    assert!(log.release(next).unwrap() > 0);
    assert_eq!(segment_files(&dir).len(), 1);
    let lsn = log
        .append(&rec_sized(next, 10_000 + next as usize))
        .await
        .unwrap();
    assert_eq!(lsn, next + 1);
    drop(log);
    let (_log, replay) = open(&dir, SyncMode::EveryBatch, seg);
    assert_eq!(replay.records.last().unwrap().lsn, next + 1);
    let lsns: Vec<u64> = replay.records.iter().map(|e| e.lsn).collect();
    assert!(lsns.windows(2).all(|w| w[1] == w[0] + 1), "{lsns:?}");
}
