//! The node's append-only ingest log: every acknowledged webhook delivery is a record here
//! before any tenant file is touched.
//!
//! - [`record`]: the record and its frame on disk (length + CRC32C + payload);
//! - `segment`: segment files `<dir>/<first LSN, 20 digits>.log`, rolled at a size;
//! - `writer`: the one writer thread that group-commits concurrent appends (one `write` and,
//!   in [`SyncMode::EveryBatch`], one `fdatasync` per batch);
//! - [`replay`]: the scan at open that verifies frames and cuts a torn or corrupt tail;
//! - `stats`: counters ([`Stats`]);
//! - `error`: [`LogError`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), ingest::LogError> {
//! use ingest::{Log, LogConfig, Record};
//! let (log, replay) = Log::open(LogConfig::new("/var/lib/tenantd/log"), 0)?;
//! for entry in replay.records { /* apply entry.record */ }
//! let record = Record {
//!     tenant: "acme".into(), source: "stripe".into(), delivery_id: Some("evt_1".into()),
//!     event_id: 1, received_at_ms: 0, content_type: None, body: b"{}".to_vec(),
//! };
//! let lsn = log.append(&record).await?; // on disk (EveryBatch) when this returns
//! log.release(lsn)?;                      // once applied: segments wholly ≤ lsn go
//! log.close()?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod crc32c;
mod error;
pub mod record;
pub mod replay;
pub mod segment;
mod stats;
mod writer;

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

pub use error::LogError;
pub use record::{Record, MAX_PAYLOAD_BYTES};
pub use replay::{Dropped, Entry, Replay, TailError};
pub use segment::segment_path;
pub use stats::Stats;

use writer::{Msg, Pending, Shared, Writer};

/// A record's sequence number in the log: 1 for the first record ever, +1 per record.
pub type Lsn = u64;
/// The LSN of the first record of a new log (0 means "none").
pub const FIRST_LSN: Lsn = 1;
/// Default size past which the writer starts a new segment.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
/// Default cap on the bytes of one batch (one write); a larger single record is written alone.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 4 << 20;
/// Default sync interval for [`SyncMode::Interval`] (Redis's `appendfsync everysec`).
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// Name of the lock file that keeps a second process from opening the same log.
const LOCK_FILE: &str = "LOCK";

/// When appended records reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// One `fdatasync` per batch before its appends return: survives power loss.
    EveryBatch,
    /// No sync per batch; a sync at least this often while anything is unsynced, and at
    /// close: survives a killed process, a power cut loses at most the interval.
    /// `Interval(Duration::ZERO)` behaves as `EveryBatch`.
    Interval(Duration),
}

/// Where the log lives and how it writes.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// The log's directory (created if missing); it holds only the log's files.
    pub dir: PathBuf,
    /// When records reach the disk.
    pub sync: SyncMode,
    /// Size past which a new segment is started.
    pub segment_bytes: u64,
    /// Cap on the bytes of one batch.
    pub max_batch_bytes: usize,
}

impl LogConfig {
    /// The defaults: `EveryBatch`, 64 MiB segments, 4 MiB batches.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LogConfig {
            dir: dir.into(),
            sync: SyncMode::EveryBatch,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
        }
    }
}

/// The open log: appends go to its writer thread; `close` (or drop) stops it.
pub struct Log {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Msg>,
    closed: AtomicBool,
    thread: Mutex<Option<JoinHandle<Result<(), LogError>>>>,
    sync: SyncMode,
    /// Held (with its flock) for as long as the log is open.
    _lock: File,
}

impl Log {
    /// Opens (or creates) the log in `cfg.dir`, replays it, and starts the writer. The replay
    /// holds every intact record with LSN ≥ `replay_from`; a torn or corrupt tail is cut off
    /// and reported in `Replay::dropped`. Errors: `Locked` if the log is open elsewhere,
    /// `Open` if the directory or a segment cannot be read, truncated, created or synced.
    pub fn open(cfg: LogConfig, replay_from: Lsn) -> Result<(Log, Replay), LogError> {
        let dir = cfg.dir.clone();
        let err = |source| LogError::Open {
            path: dir.clone(),
            source,
        };
        segment::create_dir_durably(&dir).map_err(err)?;
        let lock = lock_dir(&dir)?;
        let scanned = replay::scan(&dir, replay_from).map_err(err)?;
        let next_lsn = scanned.replay.next_lsn;
        let mut segments = scanned.segments;
        let file = match segments.last() {
            Some(&last) => segment::open_segment(&dir, last).map_err(err)?,
            None => {
                let f = segment::create_segment(&dir, next_lsn).map_err(err)?;
                segments.push(next_lsn);
                f
            }
        };
        // What replay found is made durable now, so `durable_lsn` starts at the last record.
        file.sync_data().map_err(err)?;
        segment::sync_dir(&dir).map_err(err)?;
        let shared = Arc::new(Shared {
            dir: dir.clone(),
            stats: Default::default(),
            segments: Mutex::new(segments),
        });
        shared.stats.last_lsn.store(next_lsn - 1, Ordering::Relaxed);
        shared
            .stats
            .durable_lsn
            .store(next_lsn - 1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        let sync = writer::effective(cfg.sync);
        let w = Writer {
            rx,
            shared: shared.clone(),
            sync,
            segment_bytes: cfg.segment_bytes.max(1),
            max_batch_bytes: cfg.max_batch_bytes.max(1),
            file,
            len: scanned.tail_len,
            next_lsn,
            unsynced_since: None,
            dir_dirty: false,
            torn: false,
            failed: None,
            carry: None,
        };
        let thread = std::thread::Builder::new()
            .name("ingest-log-writer".into())
            .spawn(move || w.run())
            .map_err(err)?;
        let log = Log {
            shared,
            tx,
            closed: AtomicBool::new(false),
            thread: Mutex::new(Some(thread)),
            sync,
            _lock: lock,
        };
        Ok((log, scanned.replay))
    }

    /// Appends `record`; returns its LSN once its batch is written (and synced, in
    /// `EveryBatch` mode). Errors: `TooLarge` (nothing written), `DiskFull`/`Write` (the batch
    /// was taken back out), `Sync`/`Failed` (an fsync failed: reopen), `Closed`. Dropping the
    /// future does not take the record back: it may still be written.
    pub async fn append(&self, record: &Record) -> Result<Lsn, LogError> {
        self.submit(record)?.wait().await
    }

    /// Queues `record` for the writer and returns at once; [`Appending::wait`] gives its LSN
    /// as [`Log::append`] does. Records submitted one after another (from any thread) are
    /// written in that order. Errors: `TooLarge`, `Closed` (nothing queued).
    pub fn submit(&self, record: &Record) -> Result<Appending, LogError> {
        let bytes = record.frame_len() - record::FRAME_HEADER_BYTES;
        if bytes > MAX_PAYLOAD_BYTES {
            return Err(LogError::TooLarge { bytes });
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(LogError::Closed);
        }
        let (done, wait) = tokio::sync::oneshot::channel();
        let frame = record.unsealed_frame(0);
        self.tx
            .send(Msg::Append(Pending { frame, done }))
            .map_err(|_| LogError::Closed)?;
        Ok(Appending(wait))
    }

    /// Waits until every record submitted before this call is written and synced; returns the
    /// last LSN written (so every LSN up to it is durable). Errors: `Sync`/`Failed`, `Closed`.
    pub async fn sync(&self) -> Result<Lsn, LogError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(LogError::Closed);
        }
        let (done, wait) = tokio::sync::oneshot::channel();
        self.tx
            .send(Msg::Sync(done))
            .map_err(|_| LogError::Closed)?;
        wait.await.map_err(|_| LogError::Closed)?
    }

    /// Deletes every segment whose records all have LSN ≤ `upto` (never the open segment) and
    /// syncs the directory; returns how many went. Errors: `Release` if an unlink or the sync
    /// fails (segments deleted before the failure stay deleted).
    pub fn release(&self, upto: Lsn) -> Result<usize, LogError> {
        let err = |source| LogError::Release { source };
        let mut segs = lock(&self.shared.segments);
        let mut gone = 0;
        while segs.len() > 1 && segs[1] - 1 <= upto {
            segment::remove_segment(&self.shared.dir, segs[0]).map_err(err)?;
            segs.remove(0);
            gone += 1;
        }
        drop(segs);
        if gone > 0 {
            segment::sync_dir(&self.shared.dir).map_err(err)?;
        }
        Ok(gone)
    }

    /// The first LSNs of the live segments, oldest first (the last is the open one).
    pub fn segments(&self) -> Vec<Lsn> {
        lock(&self.shared.segments).clone()
    }

    /// The log's counters; never fails.
    pub fn stats(&self) -> Stats {
        self.shared.stats.snapshot()
    }

    /// The sync mode the writer runs (`Interval(0)` is reported as `EveryBatch`).
    pub fn sync_mode(&self) -> SyncMode {
        self.sync
    }

    /// Writes what is queued, syncs, and stops the writer thread (blocking: call it from
    /// `spawn_blocking` in async code). Later appends fail with `Closed`; a second call is a
    /// no-op. Errors: `Sync`/`Failed` if the final sync failed or an earlier one had.
    pub fn close(&self) -> Result<(), LogError> {
        let Some(thread) = lock(&self.thread).take() else {
            return Ok(());
        };
        self.closed.store(true, Ordering::Release);
        let _ = self.tx.send(Msg::Close);
        thread.join().unwrap_or(Err(LogError::Closed))
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// A submitted record on its way to the disk (see [`Log::submit`]).
pub struct Appending(tokio::sync::oneshot::Receiver<Result<Lsn, LogError>>);

impl Appending {
    /// The record's LSN once its batch is written (and synced in `EveryBatch` mode); errors
    /// as [`Log::append`].
    pub async fn wait(self) -> Result<Lsn, LogError> {
        self.0.await.map_err(|_| LogError::Closed)?
    }
}

/// Locks a mutex, ignoring poisoning (the data it guards stays consistent at every step).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How long a held directory lock is retried before `Locked` (see `lock_dir`).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Takes an exclusive flock on `<dir>/LOCK`, retrying for up to [`LOCK_WAIT`]; errors `Locked`
/// if it is still held elsewhere.
fn lock_dir(dir: &Path) -> Result<File, LogError> {
    let path = dir.join(LOCK_FILE);
    let open_err = |source| LogError::Open {
        path: dir.to_owned(),
        source,
    };
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(open_err)?;
    // A lock can outlive its holder by a moment: a child forked by any thread of this process
    // holds a copy of the descriptor until its exec closes it (seen as a flaky `Locked` when a
    // test reopened a log while another test spawned a command). So a held lock is retried
    // for a short while before it counts as another process's.
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        // SAFETY: flock on a valid, owned descriptor; it only changes the file's lock state.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(f);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EWOULDBLOCK) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Some(libc::EWOULDBLOCK) => {
                return Err(LogError::Locked {
                    path: dir.to_owned(),
                })
            }
            _ => return Err(open_err(e)),
        }
    }
}
