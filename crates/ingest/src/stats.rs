// Counters of the log, kept in atomics the writer bumps and `Log::stats` reads without locks.
// Batch sizes are kept as a last value, a maximum and (with `batches`) a sum, so a metrics
// exporter can derive the mean and a scraper the peak between scrapes.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use crate::Lsn;

/// A snapshot of the log's counters since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Appends acknowledged (written, and synced in `EveryBatch` mode).
    pub appends: u64,
    /// Appends that failed with an error.
    pub failed_appends: u64,
    /// Batches written; `appends / batches` is the mean group-commit size.
    pub batches: u64,
    /// fsync calls made (data syncs of the open segment).
    pub fsyncs: u64,
    /// fsync calls that failed (each one fails the log until it is reopened).
    pub sync_failures: u64,
    /// Frame bytes written by acknowledged appends.
    pub bytes: u64,
    /// Records in the last batch.
    pub last_batch_records: u64,
    /// Records in the largest batch.
    pub max_batch_records: u64,
    /// Bytes in the largest batch.
    pub max_batch_bytes: u64,
    /// The highest LSN written (0 before the first record).
    pub last_lsn: Lsn,
    /// The highest LSN known to be on disk (synced); ≤ `last_lsn`.
    pub durable_lsn: Lsn,
}

/// The live counters behind `Stats`.
#[derive(Default)]
pub(crate) struct StatCells {
    pub appends: AtomicU64,
    pub failed_appends: AtomicU64,
    pub batches: AtomicU64,
    pub fsyncs: AtomicU64,
    pub sync_failures: AtomicU64,
    pub bytes: AtomicU64,
    pub last_batch_records: AtomicU64,
    pub max_batch_records: AtomicU64,
    pub max_batch_bytes: AtomicU64,
    pub last_lsn: AtomicU64,
    pub durable_lsn: AtomicU64,
}

impl StatCells {
    /// Counts one acknowledged batch of `records` frames, `bytes` long, ending at `last`.
    pub fn record_batch(&self, records: u64, bytes: u64, last: Lsn) {
        self.appends.fetch_add(records, Relaxed);
        self.batches.fetch_add(1, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
        self.last_batch_records.store(records, Relaxed);
        self.max_batch_records.fetch_max(records, Relaxed);
        self.max_batch_bytes.fetch_max(bytes, Relaxed);
        self.last_lsn.fetch_max(last, Relaxed);
    }

    /// The current values.
    pub fn snapshot(&self) -> Stats {
        Stats {
            appends: self.appends.load(Relaxed),
            failed_appends: self.failed_appends.load(Relaxed),
            batches: self.batches.load(Relaxed),
            fsyncs: self.fsyncs.load(Relaxed),
            sync_failures: self.sync_failures.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            last_batch_records: self.last_batch_records.load(Relaxed),
            max_batch_records: self.max_batch_records.load(Relaxed),
            max_batch_bytes: self.max_batch_bytes.load(Relaxed),
            last_lsn: self.last_lsn.load(Relaxed),
            durable_lsn: self.durable_lsn.load(Relaxed),
        }
    }
}
