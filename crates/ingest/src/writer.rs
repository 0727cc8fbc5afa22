// The group-commit writer: one thread owns the open segment. Appends arrive over a channel as
// unsealed frames; the thread takes the first waiting one and every other already waiting (up
// to `max_batch_bytes`), numbers them, writes them with one `write`, syncs once (`EveryBatch`)
// and only then answers every append of the batch. In `Interval(d)` mode it syncs at least
// every `d` while anything is unsynced, and at close.
//
// Failure rules, so replay never finds a good record after a torn one:
// - a failed write (ENOSPC, EIO) fails the whole batch and truncates the segment back to the
//   last good offset; if even that fails, the next batch retries the truncation first and is
//   not written until it succeeds. The batch's LSNs are given to the next batch (no gaps).
// - a failed fsync leaves the file's durable state unknown (the kernel may have dropped the
//   dirty pages), so it fails its batch and every later append (`LogError::Failed`) until the
//   log is reopened and replayed.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::record::restamp;
use crate::segment::{create_segment, sync_dir};
use crate::stats::StatCells;
use crate::{lock, LogError, Lsn, SyncMode};

/// A message to the writer thread.
pub(crate) enum Msg {
    /// Write this frame and answer on `done`.
    Append(Pending),
    /// Write what is queued before this, sync, and answer with the last LSN written.
    Sync(oneshot::Sender<Result<Lsn, LogError>>),
    /// Write what is queued before this, sync, and stop.
    Close,
}

/// One append waiting for its batch.
pub(crate) struct Pending {
    pub frame: Vec<u8>,
    pub done: oneshot::Sender<Result<Lsn, LogError>>,
}

/// State shared between the writer thread and `Log`.
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub stats: StatCells,
    /// First LSNs of the live segments, ascending; the last is the open one.
    pub segments: std::sync::Mutex<Vec<Lsn>>,
}

/// The writer thread's state.
pub(crate) struct Writer {
    pub rx: Receiver<Msg>,
    pub shared: Arc<Shared>,
    pub sync: SyncMode,
    pub segment_bytes: u64,
    pub max_batch_bytes: usize,
    /// The open segment, its first LSN and its length (the last good offset).
    pub file: File,
    pub len: u64,
    pub next_lsn: Lsn,
    /// Since when something written is not synced (`Interval` mode only).
    pub unsynced_since: Option<Instant>,
    /// A segment was created and the directory not yet synced (`Interval` mode only).
    pub dir_dirty: bool,
    /// A failed write left bytes past `len` that are not yet truncated away.
    pub torn: bool,
    /// Set by a failed fsync: every later append fails with this kind.
    pub failed: Option<io::ErrorKind>,
    /// A message taken off the channel that did not fit the previous batch.
    pub carry: Option<Msg>,
}

impl Writer {
    /// Runs until `Close` or until every `Log` handle is gone; returns the final sync's result.
    pub fn run(mut self) -> Result<(), LogError> {
        loop {
            let first = match self.carry.take().or_else(|| self.next_message()) {
                Some(Msg::Append(p)) => p,
                Some(Msg::Sync(done)) => {
                    self.answer_sync(done);
                    continue;
                }
                Some(Msg::Close) | None => break,
            };
            let mut bytes = first.frame.len();
            let mut batch = vec![first];
            let mut closing = false;
            while bytes < self.max_batch_bytes {
                match self.rx.try_recv() {
                    Ok(Msg::Append(p)) if bytes + p.frame.len() > self.max_batch_bytes => {
                        self.carry = Some(Msg::Append(p));
                        break;
                    }
                    Ok(Msg::Append(p)) => {
                        bytes += p.frame.len();
                        batch.push(p);
                    }
                    Ok(m @ Msg::Sync(_)) => {
                        self.carry = Some(m);
                        break;
                    }
                    Ok(Msg::Close) => {
                        closing = true;
                        break;
                    }
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            self.commit(batch);
            if self.interval_due() {
                let _ = self.sync_now();
            }
            if closing {
                break;
            }
        }
        match self.carry.take() {
            Some(Msg::Append(p)) => self.commit(vec![p]),
            Some(Msg::Sync(done)) => self.answer_sync(done),
            Some(Msg::Close) | None => {}
        }
        match self.failed {
            Some(kind) => Err(LogError::Failed {
                source: kind.into(),
            }),
            None if self.unsynced_since.is_some() || self.dir_dirty => self.sync_now(),
            None => Ok(()),
        }
    }

    /// Syncs whatever is written but not yet durable, then answers with the last LSN written.
    fn answer_sync(&mut self, done: oneshot::Sender<Result<Lsn, LogError>>) {
        let res = match self.failed {
            Some(kind) => Err(LogError::Failed {
                source: kind.into(),
            }),
            None if self.unsynced_since.is_some() || self.dir_dirty => self.sync_now(),
            None => Ok(()),
        };
        let _ = done.send(res.map(|()| self.next_lsn - 1));
    }

    /// The next message; in `Interval` mode, syncs whenever the interval runs out while waiting.
    fn next_message(&mut self) -> Option<Msg> {
        loop {
            let Some(deadline) = self.deadline() else {
                return self.rx.recv().ok();
            };
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(wait) {
                Ok(m) => return Some(m),
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.sync_now();
                }
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match (self.sync, self.unsynced_since, self.failed) {
            (SyncMode::Interval(d), Some(since), None) => Some(since + d),
            _ => None,
        }
    }

    fn interval_due(&self) -> bool {
        self.deadline().is_some_and(|d| Instant::now() >= d)
    }

    /// Writes one batch and answers each of its appends.
    fn commit(&mut self, mut batch: Vec<Pending>) {
        match self.write_batch(&mut batch) {
            Ok(first) => {
                for (i, p) in batch.into_iter().enumerate() {
                    // A caller that stopped waiting still has its record in the log.
                    let _ = p.done.send(Ok(first + i as Lsn));
                }
            }
            Err(e) => {
                let st = &self.shared.stats;
                st.failed_appends.fetch_add(batch.len() as u64, Relaxed);
                for p in batch {
                    let _ = p.done.send(Err(e.duplicate()));
                }
            }
        }
    }

    /// Writes (and in `EveryBatch` mode syncs) the batch; returns its first LSN.
    fn write_batch(&mut self, batch: &mut [Pending]) -> Result<Lsn, LogError> {
        if let Some(kind) = self.failed {
            return Err(LogError::Failed {
                source: kind.into(),
            });
        }
        if self.torn {
            self.file.set_len(self.len).map_err(LogError::write)?;
            self.torn = false;
        }
        if self.len >= self.segment_bytes {
            self.roll()?;
        }
        let first = self.next_lsn;
        let mut buf = Vec::with_capacity(batch.iter().map(|p| p.frame.len()).sum());
        for (i, p) in batch.iter_mut().enumerate() {
            restamp(&mut p.frame, first + i as Lsn);
            buf.extend_from_slice(&p.frame);
        }
        if let Err(e) = self.file.write_all(&buf) {
            self.torn = true;
            if self.file.set_len(self.len).is_ok() {
                self.torn = false;
            }
            return Err(LogError::write(e));
        }
        let n = batch.len() as u64;
        let last = first + n - 1;
        self.len += buf.len() as u64;
        self.next_lsn = last + 1;
        match self.sync {
            SyncMode::EveryBatch => {
                if let Err(e) = self.sync_now() {
                    // The bytes may or may not be on disk: take them back out of the file.
                    self.len -= buf.len() as u64;
                    self.next_lsn = first;
                    let _ = self.file.set_len(self.len);
                    return Err(e);
                }
            }
            SyncMode::Interval(_) => {
                self.unsynced_since.get_or_insert_with(Instant::now);
            }
        }
        self.shared.stats.record_batch(n, buf.len() as u64, last);
        Ok(first)
    }

    /// Syncs the open segment (and the directory if a segment was created since); marks the
    /// log failed if that fails.
    fn sync_now(&mut self) -> Result<(), LogError> {
        let synced_to = self.next_lsn - 1;
        let res = self.file.sync_data().and_then(|()| match self.dir_dirty {
            true => sync_dir(&self.shared.dir),
            false => Ok(()),
        });
        let st = &self.shared.stats;
        st.fsyncs.fetch_add(1, Relaxed);
        match res {
            Ok(()) => {
                self.unsynced_since = None;
                self.dir_dirty = false;
                st.durable_lsn.fetch_max(synced_to, Relaxed);
                Ok(())
            }
            Err(e) => {
                self.failed = Some(e.kind());
                st.sync_failures.fetch_add(1, Relaxed);
                Err(LogError::Sync { source: e })
            }
        }
    }

    /// Closes the full segment (synced, so only the open segment is ever unsynced) and opens
    /// a new one starting at the next LSN.
    fn roll(&mut self) -> Result<(), LogError> {
        if self.unsynced_since.is_some() {
            self.sync_now()?;
        }
        let first = self.next_lsn;
        let file = create_segment(&self.shared.dir, first).map_err(LogError::write)?;
        lock(&self.shared.segments).push(first);
        self.file = file;
        self.len = 0;
        match self.sync {
            SyncMode::EveryBatch => {
                if let Err(e) = sync_dir(&self.shared.dir) {
                    self.failed = Some(e.kind());
                    return Err(LogError::Sync { source: e });
                }
            }
            SyncMode::Interval(_) => self.dir_dirty = true,
        }
        Ok(())
    }
}

/// The mode the writer runs: `Interval(Duration::ZERO)` means `EveryBatch`.
pub(crate) fn effective(sync: SyncMode) -> SyncMode {
    match sync {
        SyncMode::Interval(d) if d == Duration::ZERO => SyncMode::EveryBatch,
        s => s,
    }
}
