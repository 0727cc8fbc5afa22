//! Replay at open: read the segments in LSN order, verify every frame (checksum, decoding, and
//! that LSNs run on without a gap from one frame and one segment to the next), and stop at the
//! first frame that fails. The log is cut there: that segment is truncated at the bad frame and
//! every later segment is deleted, so no good record ever follows a torn one on disk. The caller
//! gets the intact records from a given LSN on and a report of what was dropped.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use crate::record::{decode_frame, FrameError, Record};
use crate::segment::{list_segments, remove_segment, segment_path, sync_dir};
use crate::{Lsn, FIRST_LSN};

/// One record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The record's sequence number.
    pub lsn: Lsn,
    /// The record.
    pub record: Record,
}

/// Why replay stopped before the end of the files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TailError {
    /// A frame is short, oversized, mis-checksummed or undecodable.
    #[error("{0}")]
    Frame(#[from] FrameError),
    /// A frame or segment does not carry the LSN that follows the previous one.
    #[error("expected LSN {expected}, found {found}")]
    Sequence {
        /// The LSN that should come next.
        expected: Lsn,
        /// The LSN found.
        found: Lsn,
    },
}

/// What replay cut off the end of the log (all zero/None after a clean close).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Bytes removed: the torn segment's tail plus every later segment.
    pub bytes: u64,
    /// Whole segment files deleted.
    pub segments: usize,
    /// The segment (by first LSN) and byte offset where the log was cut, and why.
    pub cut: Option<(Lsn, u64, TailError)>,
}

/// The log as replay left it.
#[derive(Debug)]
pub struct Replay {
    /// The intact records with LSN ≥ the requested start, in LSN order.
    pub records: Vec<Entry>,
    /// The LSN the next append gets.
    pub next_lsn: Lsn,
    /// What was cut off.
    pub dropped: Dropped,
}

/// The scan's result plus what the writer needs to carry on.
pub(crate) struct Scanned {
    pub replay: Replay,
    /// First LSNs of the surviving segments, ascending; the last is the one to append to.
    pub segments: Vec<Lsn>,
    /// Length of the last surviving segment.
    pub tail_len: u64,
}

/// Scans `dir`, cuts a torn or corrupt tail, and returns the records from `replay_from` on.
/// Errors if a segment cannot be read, truncated or deleted.
pub(crate) fn scan(dir: &Path, replay_from: Lsn) -> io::Result<Scanned> {
    let firsts = list_segments(dir)?;
    let mut records = Vec::new();
    let mut kept = Vec::new();
    let mut expected: Option<Lsn> = None;
    let mut tail_len = 0;
    let mut cut: Option<(usize, u64, TailError)> = None;
    for (i, &first) in firsts.iter().enumerate() {
        if let Some(e) = expected.filter(|&e| e != first) {
            // Not the continuation of the log (a stale file): it goes, with everything after.
            cut = Some((
                i,
                0,
                TailError::Sequence {
                    expected: e,
                    found: first,
                },
            ));
            break;
        }
        let mut next = first;
        let bytes = fs::read(segment_path(dir, first))?;
        let mut at = 0usize;
        while at < bytes.len() {
            let stop = match decode_frame(&bytes[at..]) {
                Ok(d) if d.lsn == next => {
                    if d.lsn >= replay_from {
                        records.push(Entry {
                            lsn: d.lsn,
                            record: d.record,
                        });
                    }
                    next += 1;
                    at += d.frame_len;
                    continue;
                }
                Ok(d) => TailError::Sequence {
                    expected: next,
                    found: d.lsn,
                },
                Err(e) => TailError::Frame(e),
            };
            cut = Some((i, at as u64, stop));
            break;
        }
        kept.push(first);
        expected = Some(next);
        tail_len = at as u64;
        if cut.is_some() {
            break;
        }
    }
    let dropped = match cut {
        None => Dropped::default(),
        Some((i, at, why)) => cut_tail(dir, &firsts, &kept, i, at, why)?,
    };
    let next_lsn = expected.unwrap_or(FIRST_LSN);
    let replay = Replay {
        records,
        next_lsn,
        dropped,
    };
    Ok(Scanned {
        replay,
        segments: kept,
        tail_len,
    })
}

/// Truncates segment `firsts[i]` at `at` (or deletes it if it is not part of the log, i.e. not
/// in `kept`) and deletes every later segment; the cut is synced before anything new is written.
fn cut_tail(
    dir: &Path,
    firsts: &[Lsn],
    kept: &[Lsn],
    i: usize,
    at: u64,
    why: TailError,
) -> io::Result<Dropped> {
    let mut dropped = Dropped {
        cut: Some((firsts[i], at, why)),
        ..Dropped::default()
    };
    let mut doomed: Vec<Lsn> = firsts[i + 1..].to_vec();
    if kept.last() == Some(&firsts[i]) {
        let path = segment_path(dir, firsts[i]);
        let f = OpenOptions::new().write(true).open(&path)?;
        dropped.bytes += f.metadata()?.len().saturating_sub(at);
        f.set_len(at)?;
        f.sync_all()?;
    } else {
        doomed.insert(0, firsts[i]);
    }
    for first in doomed {
        let path: PathBuf = segment_path(dir, first);
        dropped.bytes += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        remove_segment(dir, first)?;
        dropped.segments += 1;
    }
    if dropped.segments > 0 {
        sync_dir(dir)?;
    }
    Ok(dropped)
}
