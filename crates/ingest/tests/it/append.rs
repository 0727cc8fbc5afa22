// Appends: LSNs, group commit, reopen, segments and release, sync modes, close and locking.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ingest::{Log, LogError, SyncMode, FIRST_LSN, MAX_PAYLOAD_BYTES};

use crate::util::{append_range, cfg, open, rec, rec_sized, segment_files, LAZY};

const BIG: u64 = 64 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_get_unique_lsns_in_file_order_and_share_fsyncs() {
    let d = tempfile::tempdir().unwrap();
    let (log, replay) = open(d.path(), SyncMode::EveryBatch, BIG);
    assert!(replay.records.is_empty());
    let log = Arc::new(log);
    let (tasks, per_task) = (64u64, 30u64);
    let mut handles = Vec::new();
    for t in 0..tasks {
        let log = log.clone();
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for k in 0..per_task {
                let i = t * 1000 + k;
                got.push((log.append(&rec(i)).await.unwrap(), i));
            }
            got
        }));
    }
    let mut by_lsn = HashMap::new();
    for h in handles {
        let got = h.await.unwrap();
        // One task's appends are sequential, so its LSNs increase.
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
        for (lsn, i) in got {
            assert!(by_lsn.insert(lsn, i).is_none(), "LSN {lsn} given twice");
        }
    }
    let n = tasks * per_task;
    let st = log.stats();
    assert_eq!(
        (st.appends, st.failed_appends, st.last_lsn, st.durable_lsn),
        (n, 0, n, n)
    );
    assert!(st.fsyncs < st.appends, "no group commit: {st:?}");
    assert!(
        st.max_batch_records > 1,
        "no batch above one record: {st:?}"
    );
    assert_eq!(st.batches, st.fsyncs);
    log.close().unwrap();
    drop(log);
    // File order is LSN order, 1..=n without gaps, and each LSN holds its appender's record.
    let (_log, replay) = open(d.path(), SyncMode::EveryBatch, BIG);
    let lsns: Vec<u64> = replay.records.iter().map(|e| e.lsn).collect();
    assert_eq!(lsns, (FIRST_LSN..=n).collect::<Vec<_>>());
    for e in &replay.records {
        assert_eq!(e.record, rec(by_lsn[&e.lsn]));
    }
}

#[tokio::test]
async fn reopen_after_close_continues_lsns_and_replays_from_the_given_lsn() {
    let d = tempfile::tempdir().unwrap();
    let (log, _) = open(d.path(), SyncMode::EveryBatch, BIG);
    assert_eq!(
        append_range(&log, 0, 10).await,
        (1..=10).collect::<Vec<_>>()
    );
    log.close().unwrap();
    drop(log);
    let (log, replay) = ingest::Log::open(cfg(d.path(), SyncMode::EveryBatch, BIG), 6).unwrap();
    assert_eq!(replay.next_lsn, 11);
    assert_eq!(replay.dropped, Default::default());
    let got: Vec<_> = replay
        .records
        .iter()
        .map(|e| (e.lsn, e.record.clone()))
        .collect();
    assert_eq!(got, (6..=10).map(|l| (l, rec(l - 1))).collect::<Vec<_>>());
    assert_eq!(log.append(&rec(10)).await.unwrap(), 11);
    assert_eq!(log.stats().durable_lsn, 11);
}

#[tokio::test]
async fn segments_roll_at_size_and_release_never_takes_the_open_one() {
    let d = tempfile::tempdir().unwrap();
    let frame = rec_sized(0, 200).frame_len() as u64;
    // Three records pass the size: segments hold 3 records each.
    let (log, _) = open(d.path(), SyncMode::EveryBatch, frame * 3 - 1);
    for i in 0..10 {
        assert_eq!(log.append(&rec_sized(i, 200)).await.unwrap(), i + 1);
    }
    assert_eq!(log.segments(), vec![1, 4, 7, 10]);
    let names: Vec<String> = segment_files(d.path())
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    assert_eq!(names[1], "00000000000000000004.log");
    assert_eq!(names.len(), 4);
    // Segment 1..=3 is wholly ≤ 5; segment 4..=6 is not.
    assert_eq!(log.release(5).unwrap(), 1);
    assert_eq!(log.segments(), vec![4, 7, 10]);
    assert_eq!(log.release(5).unwrap(), 0);
    assert_eq!(log.release(u64::MAX).unwrap(), 2);
    assert_eq!(log.segments(), vec![10]);
    assert_eq!(segment_files(d.path()).len(), 1);
    assert_eq!(log.append(&rec_sized(10, 200)).await.unwrap(), 11);
    log.close().unwrap();
    drop(log);
    let (_log, replay) = open(d.path(), SyncMode::EveryBatch, frame * 3 - 1);
    let got: Vec<_> = replay
        .records
        .iter()
        .map(|e| (e.lsn, e.record.clone()))
        .collect();
    assert_eq!(got, vec![(10, rec_sized(9, 200)), (11, rec_sized(10, 200))]);
    assert_eq!(replay.next_lsn, 12);
}

#[tokio::test]
async fn interval_mode_does_not_sync_per_batch_but_syncs_at_close() {
    let d = tempfile::tempdir().unwrap();
    let (log, _) = open(d.path(), LAZY, BIG);
    append_range(&log, 0, 20).await;
    let st = log.stats();
    assert_eq!(
        (st.appends, st.batches, st.fsyncs, st.durable_lsn),
        (20, 20, 0, 0)
    );
    log.close().unwrap();
    assert_eq!(log.stats().fsyncs, 1);
    assert_eq!(log.stats().durable_lsn, 20);
}

#[tokio::test]
async fn interval_mode_syncs_within_the_interval() {
    let d = tempfile::tempdir().unwrap();
    let (log, _) = open(d.path(), SyncMode::Interval(Duration::from_millis(20)), BIG);
    let lsn = log.append(&rec(1)).await.unwrap();
    // The writer is idle after this append: only the interval timer can sync it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while log.stats().durable_lsn < lsn {
        assert!(Instant::now() < deadline, "never synced: {:?}", log.stats());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(log.stats().fsyncs, 1);
}

#[tokio::test]
async fn interval_mode_syncs_while_appends_keep_coming() {
    let d = tempfile::tempdir().unwrap();
    let (log, _) = open(d.path(), SyncMode::Interval(Duration::from_millis(20)), BIG);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut i = 0;
    while log.stats().durable_lsn == 0 {
        assert!(Instant::now() < deadline, "never synced: {:?}", log.stats());
        log.append(&rec(i)).await.unwrap();
        i += 1;
    }
}

#[tokio::test]
async fn appends_after_close_fail_closed_and_close_twice_is_fine() {
    let d = tempfile::tempdir().unwrap();
    let (log, _) = open(d.path(), SyncMode::EveryBatch, BIG);
    log.close().unwrap();
    assert!(matches!(log.append(&rec(0)).await, Err(LogError::Closed)));
    log.close().unwrap();
}

#[tokio::test]
async fn a_second_open_of_the_same_directory_is_locked() {
    let d = tempfile::tempdir().unwrap();
    let (log, _) = open(d.path(), SyncMode::EveryBatch, BIG);
    let err = Log::open(cfg(d.path(), SyncMode::EveryBatch, BIG), 0)
        .err()
        .unwrap();
    assert!(matches!(err, LogError::Locked { .. }), "{err}");
    assert!(err
        .to_string()
        .starts_with("cannot open the ingest log at "));
    drop(log);
    Log::open(cfg(d.path(), SyncMode::EveryBatch, BIG), 0).unwrap();
}

#[tokio::test]
async fn drop_without_close_keeps_every_acknowledged_record() {
    let d = tempfile::tempdir().unwrap();
    let (log, _) = open(d.path(), LAZY, BIG);
    append_range(&log, 0, 5).await;
    drop(log);
    let (_log, replay) = open(d.path(), LAZY, BIG);
    assert_eq!(replay.records.len(), 5);
    assert_eq!(replay.next_lsn, 6);
}

#[tokio::test]
async fn a_record_above_the_maximum_is_refused_and_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let (log, _) = open(d.path(), SyncMode::EveryBatch, BIG);
    let err = log
        .append(&rec_sized(0, MAX_PAYLOAD_BYTES))
        .await
        .unwrap_err();
    assert!(matches!(err, LogError::TooLarge { .. }), "{err}");
    assert_eq!(log.append(&rec(1)).await.unwrap(), 1);
    assert_eq!(segment_files(d.path())[0].1, rec(1).frame_len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_stay_within_max_batch_bytes_and_a_larger_record_goes_alone() {
    let d = tempfile::tempdir().unwrap();
    let cap = rec_sized(0, 300).frame_len() * 3;
    let c = ingest::LogConfig {
        max_batch_bytes: cap,
        ..cfg(d.path(), SyncMode::EveryBatch, BIG)
    };
    let (log, _) = Log::open(c, 0).unwrap();
    let log = Arc::new(log);
    let mut handles = Vec::new();
    for t in 0..32u64 {
        let log = log.clone();
        handles.push(tokio::spawn(async move {
            for k in 0..10 {
                log.append(&rec_sized(t * 100 + k, 300)).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let st = log.stats();
    assert_eq!(st.appends, 320);
    assert!(st.max_batch_bytes as usize <= cap, "{st:?}");
    // A record bigger than the cap is still written, in a batch of its own.
    let lsn = log.append(&rec_sized(1, cap * 2)).await.unwrap();
    assert_eq!(lsn, 321);
    assert_eq!(log.stats().last_batch_records, 1);
}

#[tokio::test]
async fn submitted_records_are_written_in_submit_order() {
    let d = tempfile::tempdir().unwrap();
    let (log, _) = open(d.path(), LAZY, BIG);
    // Submitted first, waited for last: the order of submit decides the LSNs.
    let pending: Vec<_> = (0..50).map(|i| log.submit(&rec(i)).unwrap()).collect();
    let mut lsns = Vec::new();
    for p in pending.into_iter().rev() {
        lsns.push(p.wait().await.unwrap());
    }
    lsns.reverse();
    assert_eq!(lsns, (FIRST_LSN..=50).collect::<Vec<_>>());
}

#[tokio::test]
async fn sync_makes_every_earlier_submit_durable_in_interval_mode() {
    let d = tempfile::tempdir().unwrap();
    // An interval far longer than the test: only `sync` can make the records durable.
    let (log, _) = open(d.path(), SyncMode::Interval(Duration::from_secs(3600)), BIG);
    let waits: Vec<_> = (0..10).map(|i| log.submit(&rec(i)).unwrap()).collect();
    let before = log.stats().fsyncs;
    assert_eq!(log.sync().await.unwrap(), 10);
    for w in waits {
        w.wait().await.unwrap();
    }
    let st = log.stats();
    assert_eq!((st.durable_lsn, st.fsyncs), (10, before + 1));
    // Nothing unsynced: a second sync answers the same LSN.
    assert_eq!(log.sync().await.unwrap(), 10);
    log.close().unwrap();
    assert!(matches!(log.sync().await, Err(LogError::Closed)));
}
