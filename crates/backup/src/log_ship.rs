//! Shipping the ingest log: every acknowledged webhook reaches the bucket within
//! `log_interval` (10 s), whatever the snapshot interval.
//!
//! Every `log_interval` the shipper reads the log's segment files from where it stopped, takes
//! the whole frames after its shipped LSN up to the log's durable LSN (a record the log has
//! not synced yet, in `crash` mode, is left for next time: a power cut could take it from the
//! node, which would then give its LSN to another record, and the bucket must never hold a
//! record the node lost), and uploads them as they are (each frame carries its LSN and a
//! CRC-32C) in zstd objects of at most 4 MiB of frames,
//! `<prefix>/log/<first LSN>-<last LSN>.log.zst`. Then it records the shipped LSN in
//! `backup.db` and in the inbox's release hold, so the log deletes no segment holding a record
//! not yet in the bucket. If the store stays down until the held segments pass
//! [`HOLD_CAP_BYTES`], the hold is let go (the disk must not fill): those webhooks reach the
//! bucket with their tenants' next snapshots instead, and the shipper goes on from the oldest
//! segment still there.

use std::io::{Read as _, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use ingest::record::{decode_frame, FrameError, Record};
use ingest::segment::{list_segments, segment_path};
use ingest::Lsn;
use parking_lot::Mutex;

use crate::error::BackupError;
use crate::key::LogChunkKey;
use crate::remote::Remote;
use crate::state::State;

/// Unshipped log past which the hold on log release is let go.
pub const HOLD_CAP_BYTES: u64 = 1 << 30;
/// Most bytes of frames in one chunk.
const CHUNK_BYTES: usize = 4 << 20;
/// Bytes read from a segment at a time (a segment is up to 64 MiB: never read whole).
const READ_BYTES: u64 = 1 << 20;
/// The `backup.db` meta key of the shipped LSN.
pub const SHIPPED_KEY: &str = "shipped_lsn";

/// Counters of the shipper.
#[derive(Debug, Default)]
pub struct ShipStats {
    /// Chunks uploaded.
    pub chunks: AtomicU64,
    /// Records shipped.
    pub records: AtomicU64,
    /// The last LSN in the bucket.
    pub shipped_lsn: AtomicU64,
    /// Uploads that failed (retried next time).
    pub failures: AtomicU64,
    /// Times the hold was let go because the unshipped log passed the cap.
    pub hold_dropped: AtomicU64,
}

/// A position in the node's ingest log, read when needed (e.g. `store::inbox::Inbox::durable_lsn`).
pub type LsnFn = Arc<dyn Fn() -> Lsn + Send + Sync>;

/// Ships one node's ingest log.
pub struct Shipper {
    dir: PathBuf,
    durable: LsnFn,
    remote: Remote,
    hold: Arc<AtomicU64>,
    state: Arc<Mutex<State>>,
    shipped: Lsn,
    /// Where the next frame after `shipped` starts: (segment, byte offset), when known.
    pos: Option<(Lsn, u64)>,
    stats: Arc<ShipStats>,
}

/// Frames read from the log.
struct Read {
    frames: Vec<u8>,
    first: Lsn,
    last: Lsn,
    records: u64,
    end: (Lsn, u64),
}

impl Shipper {
    /// A shipper of the log in `dir` holding its release with `hold`; it goes on from the
    /// shipped LSN in `state` (the hold is set to it at once).
    pub fn new(
        dir: PathBuf,
        durable: LsnFn,
        remote: Remote,
        hold: Arc<AtomicU64>,
        state: Arc<Mutex<State>>,
        stats: Arc<ShipStats>,
    ) -> Result<Self, BackupError> {
        let shipped = state.lock().meta(SHIPPED_KEY)?.unwrap_or(0);
        hold.store(shipped, Ordering::Release);
        stats.shipped_lsn.store(shipped, Ordering::Relaxed);
        Ok(Shipper {
            dir,
            durable,
            remote,
            hold,
            state,
            shipped,
            pos: None,
            stats,
        })
    }

    /// Ships every whole frame after the shipped LSN up to the log's durable LSN as it is when
    /// the shipment starts (records written meanwhile wait for the next one: under steady load
    /// a shipment that chased the writer sent hundreds of tiny chunks); returns how many
    /// records went up.
    pub async fn ship(&mut self) -> Result<u64, BackupError> {
        let mut total = 0;
        let upto = (self.durable)();
        loop {
            let (dir, shipped, pos) = (self.dir.clone(), self.shipped, self.pos);
            if shipped >= upto {
                return Ok(total);
            }
            let read = tokio::task::spawn_blocking(move || read_after(&dir, shipped, pos, upto))
                .await
                .map_err(|e| BackupError::Io(std::io::Error::other(e)))??;
            let Some(read) = read else {
                return Ok(total);
            };
            let chunk = LogChunkKey {
                first: read.first,
                last: read.last,
            };
            let body = zstd::encode_all(&read.frames[..], 3)?;
            if let Err(e) = self.remote.put_log(&chunk, Bytes::from(body)).await {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                self.check_cap();
                return Err(e);
            }
            self.state.lock().set_meta(SHIPPED_KEY, read.last)?;
            self.shipped = read.last;
            self.pos = Some(read.end);
            self.hold.store(read.last, Ordering::Release);
            self.stats.chunks.fetch_add(1, Ordering::Relaxed);
            self.stats
                .records
                .fetch_add(read.records, Ordering::Relaxed);
            self.stats.shipped_lsn.store(read.last, Ordering::Relaxed);
            total += read.records;
        }
    }

    /// Lets go of the hold if the unshipped log passed the cap.
    fn check_cap(&self) {
        let held: u64 = list_segments(&self.dir)
            .unwrap_or_default()
            .iter()
            .filter_map(|s| std::fs::metadata(segment_path(&self.dir, *s)).ok())
            .map(|m| m.len())
            .sum();
        if held > HOLD_CAP_BYTES && self.hold.load(Ordering::Acquire) != u64::MAX {
            tracing::warn!(
                held,
                cap = HOLD_CAP_BYTES,
                "backup: the store is unreachable and the unshipped log passed its cap; the log \
                 is released again (those webhooks reach the bucket with their tenants' snapshots)"
            );
            self.hold.store(u64::MAX, Ordering::Release);
            self.stats.hold_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The whole frames after `shipped` and at most `upto` (up to [`CHUNK_BYTES`]), starting at
/// `pos` if known; `None` when there are none yet.
fn read_after(
    dir: &Path,
    shipped: Lsn,
    pos: Option<(Lsn, u64)>,
    upto: Lsn,
) -> Result<Option<Read>, BackupError> {
    let segments = match list_segments(dir) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut out: Option<Read> = None;
    for (i, &seg) in segments.iter().enumerate() {
        // Segments wholly at or below the shipped LSN are skipped.
        if segments.get(i + 1).is_some_and(|next| next - 1 <= shipped) {
            continue;
        }
        let start = match pos {
            Some((s, off)) if s == seg => off,
            _ => 0,
        };
        let mut file = match std::fs::File::open(segment_path(dir, seg)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // released meanwhile
            Err(e) => return Err(e.into()),
        };
        file.seek(SeekFrom::Start(start))?;
        // `buf` holds the segment's bytes from `base`; frames are decoded from `at`.
        let (mut buf, mut base, mut at) = (Vec::new(), start, 0usize);
        loop {
            let d = match decode_frame(&buf[at..]) {
                Ok(d) => d,
                Err(FrameError::Short { needed, .. }) => {
                    buf.drain(..at);
                    base += at as u64;
                    at = 0;
                    let want = (needed - buf.len()) as u64;
                    if (&mut file)
                        .take(want.max(READ_BYTES))
                        .read_to_end(&mut buf)?
                        == 0
                    {
                        break; // the end: a frame cut short is still being written
                    }
                    continue;
                }
                // Not a whole frame (a torn tail): the rest comes next time.
                Err(_) => break,
            };
            if d.lsn > upto {
                return Ok(out); // not synced yet: next time
            }
            let frame = &buf[at..at + d.frame_len];
            at += d.frame_len;
            let off = base + at as u64;
            if d.lsn <= shipped {
                continue;
            }
            let r = out.get_or_insert_with(|| Read {
                frames: Vec::new(),
                first: d.lsn,
                last: d.lsn,
                records: 0,
                end: (seg, 0),
            });
            r.frames.extend_from_slice(frame);
            r.last = d.lsn;
            r.records += 1;
            r.end = (seg, off);
            if r.frames.len() >= CHUNK_BYTES {
                return Ok(out);
            }
        }
    }
    Ok(out)
}

/// The records of log chunks, decoded and checked (CRC per frame).
pub fn decode_chunk(body: &[u8]) -> Result<Vec<(Lsn, Record)>, String> {
    let raw = zstd::decode_all(body).map_err(|e| format!("cannot decompress: {e}"))?;
    let mut out = Vec::new();
    let mut off = 0;
    while off < raw.len() {
        let d = decode_frame(&raw[off..]).map_err(|e| format!("frame at byte {off}: {e}"))?;
        off += d.frame_len;
        out.push((d.lsn, d.record));
    }
    Ok(out)
}

/// The last LSN in the log in `dir` (0 without one): a restore into a node's data dir marks
/// the files it installs as created at it, so the node's own older records are not replayed
/// on top.
pub fn last_lsn(dir: &Path) -> Result<Lsn, BackupError> {
    let segments = match list_segments(dir) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let Some(&last_seg) = segments.last() else {
        return Ok(0);
    };
    let bytes = std::fs::read(segment_path(dir, last_seg))?;
    let (mut off, mut last) = (0, last_seg.saturating_sub(1));
    while let Ok(d) = decode_frame(&bytes[off..]) {
        last = d.lsn;
        off += d.frame_len;
    }
    Ok(last)
}

/// Makes the log in `dir` go on after `last` (the bucket's last shipped LSN) if it holds no
/// segment yet: an empty segment starting at `last + 1`, made durable. A node restored into a
/// fresh data dir would otherwise number its records from 1 again, and ship them under LSNs
/// the bucket already holds for other records. Returns whether it did; a log that exists is
/// left alone.
pub fn continue_after(dir: &Path, last: Lsn) -> Result<bool, BackupError> {
    let exists = match list_segments(dir) {
        Ok(segs) => !segs.is_empty(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e.into()),
    };
    if exists || last == 0 {
        return Ok(false);
    }
    ingest::segment::create_dir_durably(dir)?;
    ingest::segment::create_segment(dir, last + 1)?.sync_all()?;
    ingest::segment::sync_dir(dir)?;
    Ok(true)
}

/// Writes `frames` (for tests: a log dir as the ingest writer leaves it).
pub fn write_segment(dir: &Path, first: Lsn, frames: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::File::create(segment_path(dir, first))?.write_all(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Lsn = Lsn::MAX;

    fn record(n: i64) -> Record {
        Record {
            tenant: "acme".into(),
            source: "gh".into(),
            delivery_id: None,
            event_id: n,
            received_at_ms: 1000 + n,
            content_type: None,
            body: format!("{{\"n\":{n}}}").into_bytes(),
        }
    }

    fn frames(lsns: std::ops::RangeInclusive<u64>) -> Vec<u8> {
        lsns.flat_map(|l| record(l as i64).to_frame(l)).collect()
    }

    #[test]
    fn reads_whole_frames_after_the_shipped_lsn_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        write_segment(dir.path(), 1, &frames(1..=3)).unwrap();
        let mut open = frames(4..=5);
        let torn = frames(6..=6);
        open.extend_from_slice(&torn[..torn.len() - 3]);
        write_segment(dir.path(), 4, &open).unwrap();

        let r = read_after(dir.path(), 2, None, MAX).unwrap().unwrap();
        assert_eq!(
            (r.first, r.last, r.records),
            (3, 5, 3),
            "the torn frame waits"
        );
        let decoded = decode_chunk(&zstd::encode_all(&r.frames[..], 3).unwrap()).unwrap();
        assert_eq!(
            decoded.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        assert_eq!(decoded[0].1, record(3));

        // The writer finishes the frame: the next read starts where the last one ended.
        let mut whole = frames(4..=6);
        whole.extend_from_slice(&frames(7..=7));
        write_segment(dir.path(), 4, &whole).unwrap();
        let r2 = read_after(dir.path(), r.last, Some(r.end), MAX)
            .unwrap()
            .unwrap();
        assert_eq!((r2.first, r2.last), (6, 7));
        assert!(read_after(dir.path(), 7, Some(r2.end), MAX)
            .unwrap()
            .is_none());
        assert_eq!(last_lsn(dir.path()).unwrap(), 7);
        assert_eq!(last_lsn(&dir.path().join("none")).unwrap(), 0);
    }

    #[test]
    fn a_large_segment_is_read_in_pieces_and_shipped_in_bounded_chunks() {
        // ~12 MiB of frames of uneven sizes, so frames straddle every read boundary.
        let dir = tempfile::tempdir().unwrap();
        let big = |l: u64| {
            let mut r = record(l as i64);
            r.body = vec![b'x'; 1000 + (l as usize * 7919) % 9000];
            r.to_frame(l)
        };
        let all: Vec<u8> = (1..=2400).flat_map(big).collect();
        assert!(all.len() as u64 > 10 * READ_BYTES);
        write_segment(dir.path(), 1, &all).unwrap();

        let (mut shipped, mut pos, mut seen) = (0, None, Vec::new());
        while let Some(r) = read_after(dir.path(), shipped, pos, MAX).unwrap() {
            assert!(
                r.frames.len() < CHUNK_BYTES + (16 << 10),
                "{}",
                r.frames.len()
            );
            let lsns: Vec<u64> = decode_chunk(&zstd::encode_all(&r.frames[..], 1).unwrap())
                .unwrap()
                .into_iter()
                .map(|(l, _)| l)
                .collect();
            assert_eq!((lsns[0], *lsns.last().unwrap()), (r.first, r.last));
            seen.extend(lsns);
            (shipped, pos) = (r.last, Some(r.end));
        }
        assert_eq!(
            seen,
            (1..=2400).collect::<Vec<_>>(),
            "every frame once, in order"
        );
        assert_eq!(pos, Some((1, all.len() as u64)));
    }

    /// A power cut in `crash` mode takes the log's unsynced tail, and the node then gives those
    /// LSNs to new records: found by the power-cut test, where `restore --all` brought back
    /// webhooks the node had lost (shipped before the log synced them).
    #[test]
    fn regression_records_the_log_has_not_synced_are_not_shipped() {
        let dir = tempfile::tempdir().unwrap();
        write_segment(dir.path(), 1, &frames(1..=6)).unwrap();
        assert!(read_after(dir.path(), 0, None, 0).unwrap().is_none());
        let r = read_after(dir.path(), 0, None, 4).unwrap().unwrap();
        assert_eq!((r.first, r.last), (1, 4), "5 and 6 wait for the sync");
        let r2 = read_after(dir.path(), r.last, Some(r.end), 6)
            .unwrap()
            .unwrap();
        assert_eq!((r2.first, r2.last), (5, 6));
    }

    #[test]
    fn a_damaged_chunk_is_refused() {
        let mut raw = frames(1..=2);
        let n = raw.len();
        raw[n - 2] ^= 0x40;
        let err = decode_chunk(&zstd::encode_all(&raw[..], 3).unwrap()).unwrap_err();
        assert!(err.contains("frame at byte"), "{err}");
        assert!(decode_chunk(b"junk").unwrap_err().contains("decompress"));
    }
}
