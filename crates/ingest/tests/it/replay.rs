// Replay of damaged logs: a torn tail at every offset, bit flips, stale segments. Replay must
// return exactly the intact prefix, cut the files there, and let appends carry on after it.

use std::fs;
use std::path::Path;

use ingest::{segment_path, Record, SyncMode, TailError};

use crate::util::{open, rec_sized, segment_files, Rng, LAZY};

const BIG: u64 = 64 << 20;

/// Writes `records` into a fresh log in `dir` (one segment unless `segment_bytes` is small)
/// and closes it; returns each frame's end offset within its segment.
async fn write_log(dir: &Path, records: &[Record], segment_bytes: u64) -> Vec<u64> {
    let (log, _) = open(dir, LAZY, segment_bytes);
    for r in records {
        log.append(r).await.unwrap();
    }
    log.close().unwrap();
    let mut end = 0;
    records
        .iter()
        .map(|r| {
            end += r.frame_len() as u64;
            end
        })
        .collect()
}

/// Opens a log whose only segment holds `bytes`, and checks that replay returns exactly the
/// first `intact` of `records`, cut the file at `cut_at`, and appends after it replay fine.
async fn check_replay(bytes: &[u8], records: &[Record], intact: usize, cut_at: u64) {
    let d = tempfile::tempdir().unwrap();
    fs::write(segment_path(d.path(), 1), bytes).unwrap();
    let (log, replay) = open(d.path(), LAZY, BIG);
    let got: Vec<Record> = replay.records.into_iter().map(|e| e.record).collect();
    assert_eq!(got, records[..intact], "after {} bytes", bytes.len());
    assert_eq!(replay.next_lsn, intact as u64 + 1);
    assert_eq!(replay.dropped.bytes, bytes.len() as u64 - cut_at);
    assert_eq!(replay.dropped.cut.is_some(), bytes.len() as u64 != cut_at);
    assert_eq!(segment_files(d.path())[0].1, cut_at);
    let extra = rec_sized(999, 10);
    assert_eq!(log.append(&extra).await.unwrap(), intact as u64 + 1);
    drop(log);
    let (_log, replay) = open(d.path(), LAZY, BIG);
    assert_eq!(replay.records.len(), intact + 1);
    assert_eq!(replay.records[intact].record, extra);
    assert_eq!(replay.dropped, Default::default());
}

#[tokio::test]
async fn torn_tail_at_every_offset_of_the_last_two_records_replays_the_intact_prefix() {
    let d = tempfile::tempdir().unwrap();
    let records: Vec<Record> = (0..6).map(|i| rec_sized(i, 5 + i as usize * 7)).collect();
    let ends = write_log(d.path(), &records, BIG).await;
    let bytes = fs::read(segment_path(d.path(), 1)).unwrap();
    assert_eq!(bytes.len() as u64, ends[5]);
    // The writer's frames are byte for byte what `to_frame` makes for their LSNs.
    let framed: Vec<u8> = records
        .iter()
        .zip(1..)
        .flat_map(|(r, lsn)| r.to_frame(lsn))
        .collect();
    assert_eq!(bytes, framed);
    for cut in ends[3]..=ends[5] {
        let intact = ends.iter().filter(|&&e| e <= cut).count();
        let good_end = if intact == 0 { 0 } else { ends[intact - 1] };
        check_replay(&bytes[..cut as usize], &records, intact, good_end).await;
    }
}

#[tokio::test]
async fn torn_tail_at_random_offsets_with_large_bodies() {
    let mut rng = Rng(0x70E2);
    let d = tempfile::tempdir().unwrap();
    let records: Vec<Record> = (0..12)
        .map(|i| rec_sized(i, rng.below(64 << 10) as usize))
        .collect();
    let ends = write_log(d.path(), &records, BIG).await;
    let bytes = fs::read(segment_path(d.path(), 1)).unwrap();
    for _ in 0..25 {
        let cut = rng.below(bytes.len() as u64);
        let intact = ends.iter().filter(|&&e| e <= cut).count();
        let good_end = if intact == 0 { 0 } else { ends[intact - 1] };
        check_replay(&bytes[..cut as usize], &records, intact, good_end).await;
    }
}

#[tokio::test]
async fn bit_flip_in_header_crc_or_payload_stops_before_the_damaged_record() {
    let d = tempfile::tempdir().unwrap();
    let records: Vec<Record> = (0..5).map(|i| rec_sized(i, 16)).collect();
    let ends = write_log(d.path(), &records, BIG).await;
    let bytes = fs::read(segment_path(d.path(), 1)).unwrap();
    // Every byte of the third frame: length (0..4), CRC (4..8), payload (8..).
    for at in ends[1]..ends[2] {
        let mut bad = bytes.clone();
        bad[at as usize] ^= 1 << (at % 8);
        let e = tempfile::tempdir().unwrap();
        fs::write(segment_path(e.path(), 1), &bad).unwrap();
        let (_log, replay) = open(e.path(), LAZY, BIG);
        let got: Vec<Record> = replay.records.into_iter().map(|e| e.record).collect();
        assert_eq!(got, records[..2], "flip at byte {at}");
        let (seg, off, why) = replay.dropped.cut.unwrap();
        assert_eq!((seg, off), (1, ends[1]));
        assert!(matches!(why, TailError::Frame(_)), "{why}");
        assert_eq!(segment_files(e.path())[0].1, ends[1]);
    }
}

#[tokio::test]
async fn stale_later_segment_after_a_torn_one_is_dropped() {
    let d = tempfile::tempdir().unwrap();
    let records: Vec<Record> = (0..9).map(|i| rec_sized(i, 100)).collect();
    let frame = records[0].frame_len() as u64;
    write_log(d.path(), &records, frame * 3 - 1).await;
    let files = segment_files(d.path());
    assert_eq!(files.len(), 3, "{files:?}");
    // Tear the middle segment (records 4..=6) inside its last record.
    let (mid, mid_len) = &files[1];
    fs::OpenOptions::new()
        .write(true)
        .open(mid)
        .unwrap()
        .set_len(mid_len - 10)
        .unwrap();
    let (log, replay) = open(d.path(), SyncMode::EveryBatch, frame * 3 - 1);
    let got: Vec<Record> = replay.records.into_iter().map(|e| e.record).collect();
    assert_eq!(got, records[..5]);
    assert_eq!(replay.dropped.segments, 1);
    let kept_in_mid = (records[3].frame_len() + records[4].frame_len()) as u64;
    assert_eq!(
        replay.dropped.bytes,
        (mid_len - 10 - kept_in_mid) + files[2].1
    );
    assert_eq!(
        replay.dropped.cut.as_ref().map(|c| (c.0, c.1)),
        Some((4, kept_in_mid))
    );
    assert_eq!(segment_files(d.path()).len(), 2);
    // Numbering carries on in the torn segment; a new segment 7 starts afresh.
    assert_eq!(log.append(&records[5]).await.unwrap(), 6);
    assert_eq!(log.append(&records[6]).await.unwrap(), 7);
    assert_eq!(log.segments(), vec![1, 4, 7]);
    drop(log);
    let (_log, replay) = open(d.path(), SyncMode::EveryBatch, frame * 3 - 1);
    let got: Vec<Record> = replay.records.into_iter().map(|e| e.record).collect();
    assert_eq!(got, records[..7]);
    assert_eq!(replay.dropped, Default::default());
}

#[tokio::test]
async fn a_segment_that_does_not_continue_the_numbering_is_dropped() {
    let d = tempfile::tempdir().unwrap();
    let records: Vec<Record> = (0..6).map(|i| rec_sized(i, 100)).collect();
    let frame = records[0].frame_len() as u64;
    write_log(d.path(), &records, frame * 3 - 1).await;
    // Segment 4 renamed to 5: a gap after record 3.
    fs::rename(segment_path(d.path(), 4), segment_path(d.path(), 5)).unwrap();
    let (_log, replay) = open(d.path(), LAZY, BIG);
    assert_eq!(replay.records.len(), 3);
    assert_eq!(replay.next_lsn, 4);
    assert_eq!(replay.dropped.segments, 1);
    let (_, _, why) = replay.dropped.cut.unwrap();
    assert_eq!(
        why,
        TailError::Sequence {
            expected: 4,
            found: 5
        }
    );
}

#[tokio::test]
async fn an_empty_last_segment_left_by_a_crash_is_reused() {
    let d = tempfile::tempdir().unwrap();
    let records: Vec<Record> = (0..3).map(|i| rec_sized(i, 10)).collect();
    write_log(d.path(), &records, BIG).await;
    fs::write(segment_path(d.path(), 4), b"").unwrap();
    let (log, replay) = open(d.path(), LAZY, BIG);
    assert_eq!((replay.records.len(), replay.next_lsn), (3, 4));
    assert_eq!(replay.dropped, Default::default());
    assert_eq!(log.append(&records[0]).await.unwrap(), 4);
    assert_eq!(log.segments(), vec![1, 4]);
}
