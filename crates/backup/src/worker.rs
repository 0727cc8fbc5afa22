//! The backup rounds: every interval, snapshot the tenants that changed and upload them.
//!
//! A round takes the pool's change set whole; for each tenant (`parallel` at once) it takes a
//! consistent snapshot (one read transaction on a reader) into `<data>/backup-tmp/`, streams
//! it through sha256 and zstd, uploads it as one object, records it in `backup.db` and applies
//! retention to that tenant. A tenant that fails (the store is down) goes back into the set
//! and is tried again next round, so an outage costs one id per changed tenant in memory, never a queue of data: catching up is one snapshot per tenant that changed, however
//! many writes it took. The first round also stats every tenant file against `backup.db`, so
//! a change made just before a crash (marked only in memory) is not missed.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::StreamExt;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use store::{StoreError, TenantId, TenantPool};
use tokio::sync::Notify;

use crate::config::BackupConfig;
use crate::error::BackupError;
use crate::key::{expired, expired_log, SnapshotKey};
use crate::log_ship::{LsnFn, ShipStats, Shipper};
use crate::remote::Remote;
use crate::state::{State, Upload};

/// Snapshots are written here before they are compressed and uploaded (removed after).
pub const TMP_DIR: &str = "backup-tmp";
/// zstd level: fast, and SQLite pages compress well at it.
const ZSTD_LEVEL: i32 = 3;
/// How often old log chunks are looked for.
const LOG_RETENTION_EVERY: Duration = Duration::from_secs(3600);
/// How often every tenant's snapshots are swept for retention (one listing of the prefix, a
/// page per 1,000 keys), for tenants that stopped changing (the others are swept after each
/// upload).
const SNAPSHOT_SWEEP_EVERY: Duration = Duration::from_secs(24 * 3600);
/// New tenants copied per log shipment at most (see [`Backup::back_up_new`]).
const NEW_PER_SHIPMENT: usize = 32;
/// Log chunks are kept this long past the retention window.
const LOG_RETENTION_MARGIN: Duration = Duration::from_secs(24 * 3600);
/// Tenants listed per page by the start scan.
const SCAN_PAGE: usize = 1000;

/// Counters for `/metrics` and `backup status`.
#[derive(Debug, Default)]
pub struct BackupStats {
    /// Snapshots uploaded.
    pub uploads: AtomicU64,
    /// Bytes uploaded (compressed).
    pub uploaded_bytes: AtomicU64,
    /// Bytes of the snapshots before compression.
    pub snapshot_bytes: AtomicU64,
    /// Tenant snapshots that failed (retried next round).
    pub failures: AtomicU64,
    /// Rounds finished.
    pub rounds: AtomicU64,
    /// Tenants waiting for the next round (changed, or failed).
    pub pending: AtomicU64,
    /// Every change made before this time (Unix ms) is in the bucket: the start of the last
    /// round that finished without a failure (0: none yet).
    pub backed_up_through_ms: AtomicU64,
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RoundReport {
    /// Snapshots uploaded.
    pub uploaded: usize,
    /// Changed tenants whose content was already in the bucket.
    pub unchanged: usize,
    /// Tenants gone meanwhile (deleted, moved away).
    pub gone: usize,
    /// Tenants that failed and wait for the next round.
    pub failed: usize,
}

/// How the backup reaches the node's ingest log (the inbox's).
pub struct LogLink {
    /// The log's directory.
    pub dir: std::path::PathBuf,
    /// The log's durable LSN (`Inbox::durable_lsn`): records up to it are shipped.
    pub durable: LsnFn,
    /// The LSN every record at or below which is in its tenant file (`Inbox::applied_upto`):
    /// read at the start of each round and named in its snapshots' keys, so a restore fetches
    /// only the shipped records after it.
    pub applied: LsnFn,
    /// The inbox's release hold: segments go only once shipped.
    pub hold: Arc<AtomicU64>,
}

/// The running backup of one node.
#[derive(Clone)]
pub struct Backup {
    inner: Arc<Inner>,
}

struct Inner {
    pool: TenantPool,
    remote: Remote,
    cfg: BackupConfig,
    state: Arc<Mutex<State>>,
    stats: BackupStats,
    ship_stats: Arc<ShipStats>,
    /// The ingest log's shipper, once [`Backup::ship_log`] set it up.
    shipper: tokio::sync::Mutex<Option<Shipper>>,
    /// The log's applied position (see [`LogLink::applied`]); 0 without a log.
    applied: Mutex<Option<LsnFn>>,
    stop: Notify,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    log_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    stop_log: Notify,
    /// When log retention last ran (Unix ms; 0: not yet).
    log_expired_at: AtomicU64,
    /// When every tenant's snapshots were last swept (Unix ms; 0: not yet).
    swept_at: AtomicU64,
    /// One round at a time (the loop's, and a final one at stop).
    round: tokio::sync::Mutex<()>,
}

enum Outcome {
    Uploaded,
    Unchanged,
    Gone,
}

impl Backup {
    /// Prepares the backup of `pool` (which must track changes) without starting the rounds.
    /// Errors: change tracking off, the state file, the client configuration.
    pub fn new(pool: TenantPool, cfg: BackupConfig) -> Result<Self, BackupError> {
        if pool.changes().is_none() {
            return Err(BackupError::Config(
                "the tenant pool does not track changes (PoolConfig::track_changes)".into(),
            ));
        }
        let remote = Remote::new(&cfg)?;
        let data = pool.config().data_dir.clone();
        let state = State::open(&data)?;
        let _ = std::fs::remove_dir_all(data.join(TMP_DIR));
        std::fs::create_dir_all(data.join(TMP_DIR))?;
        Ok(Backup {
            inner: Arc::new(Inner {
                pool,
                remote,
                cfg,
                state: Arc::new(Mutex::new(state)),
                stats: BackupStats::default(),
                ship_stats: Arc::default(),
                shipper: tokio::sync::Mutex::new(None),
                applied: Mutex::new(None),
                stop: Notify::new(),
                task: Mutex::new(None),
                log_task: Mutex::new(None),
                stop_log: Notify::new(),
                log_expired_at: AtomicU64::new(0),
                swept_at: AtomicU64::new(0),
                round: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Ships the ingest log too (call before [`Backup::start`]): records up to its durable
    /// LSN, holding its release until they are in the bucket; snapshots name the applied
    /// position.
    pub async fn ship_log(&self, link: LogLink) -> Result<(), BackupError> {
        let i = &self.inner;
        let shipper = Shipper::new(
            link.dir,
            link.durable,
            i.remote.clone(),
            link.hold,
            i.state.clone(),
            i.ship_stats.clone(),
        )?;
        *i.shipper.lock().await = Some(shipper);
        *i.applied.lock() = Some(link.applied);
        Ok(())
    }

    /// Copies the tenants new here (created, imported) since the last call, before the log
    /// that may carry their first webhooks is shipped: a restore needs a tenant's file to put
    /// its shipped webhooks into. A failure leaves the tenant to the next round.
    /// At most [`NEW_PER_SHIPMENT`] per call (`parallel` at once), so a burst of imports (a
    /// slot moving in) does not hold the log back; the rest wait for the next shipment.
    async fn back_up_new(&self) {
        let changes = self.inner.pool.changes().expect("checked in new");
        let mut ids = changes.take_new();
        if ids.is_empty() {
            return;
        }
        for later in ids.split_off(ids.len().min(NEW_PER_SHIPMENT)) {
            changes.mark_new(&later);
        }
        let mut done = self.back_up_each(ids, self.inner.applied_now());
        while let Some((id, r)) = done.next().await {
            if let Err(e) = r {
                changes.mark(&id);
                self.inner.stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(tenant = %id, error = %e, "backup of a new tenant failed; retried next round");
            }
        }
    }

    /// Backs up `ids`, `parallel` at once (their snapshots named with the log position
    /// `applied`), yielding each outcome as it finishes.
    fn back_up_each(
        &self,
        ids: Vec<TenantId>,
        applied: u64,
    ) -> impl futures_util::Stream<Item = (TenantId, Result<Outcome, BackupError>)> + '_ {
        futures_util::stream::iter(ids)
            .map(move |id| {
                let inner = self.inner.clone();
                async move {
                    let r = inner.back_up(&id, applied).await;
                    (id, r)
                }
            })
            .buffer_unordered(self.inner.cfg.parallel)
    }

    /// Ships the log now (if shipping); returns the records that went up.
    pub async fn ship(&self) -> Result<u64, BackupError> {
        match self.inner.shipper.lock().await.as_mut() {
            Some(s) => s.ship().await,
            None => Ok(0),
        }
    }

    /// The shipper's counters.
    pub fn ship_stats(&self) -> &ShipStats {
        &self.inner.ship_stats
    }

    /// Starts the rounds: the start scan and a first round at once, then one per interval; and
    /// the log's shipments every `log_interval`, if shipping.
    pub fn start(&self) {
        let me = self.clone();
        let log_task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(me.inner.cfg.log_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = me.inner.stop_log.notified() => return,
                }
                me.back_up_new().await;
                if let Err(e) = me.ship().await {
                    tracing::warn!(error = %e, "backup: shipping the ingest log failed; retried next time");
                }
            }
        });
        *self.inner.log_task.lock() = Some(log_task);
        let me = self.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = me.scan().await {
                tracing::error!(error = %e, "backup: start scan failed; only new changes are backed up");
            }
            let mut tick = tokio::time::interval(me.inner.cfg.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = me.inner.stop.notified() => return,
                }
                me.round().await;
            }
        });
        *self.inner.task.lock() = Some(task);
    }

    /// Stops the rounds, then runs a last one (so a clean stop leaves nothing behind), bounded
    /// by `budget`.
    pub async fn stop(&self, budget: Duration) {
        self.inner.stop.notify_one();
        self.inner.stop_log.notify_one();
        let tasks = [
            self.inner.task.lock().take(),
            self.inner.log_task.lock().take(),
        ];
        for task in tasks.into_iter().flatten() {
            let _ = task.await;
        }
        let last = async {
            if let Err(e) = self.ship().await {
                tracing::warn!(error = %e, "backup: the last log shipment failed");
            }
            self.round().await
        };
        if tokio::time::timeout(budget, last).await.is_err() {
            tracing::warn!(
                ?budget,
                "backup: the last round ran out of time; the rest is backed up at the next start"
            );
        }
    }

    /// The counters.
    pub fn stats(&self) -> &BackupStats {
        &self.inner.stats
    }

    /// The bucket.
    pub fn remote(&self) -> &Remote {
        &self.inner.remote
    }

    /// Marks every tenant whose file (or WAL) changed after its last upload, or that was never
    /// uploaded; returns how many. Reads every tenant's file times: meant for the start.
    pub async fn scan(&self) -> Result<usize, BackupError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.scan())
            .await
            .map_err(|e| BackupError::Io(std::io::Error::other(e)))?
    }

    /// One round now: every changed tenant snapshotted and uploaded.
    pub async fn round(&self) -> RoundReport {
        let _one = self.inner.round.lock().await;
        let changes = self.inner.pool.changes().expect("checked in new").clone();
        let started = now_ms();
        // Read before any snapshot begins: each holds every record at or below it.
        let applied = self.inner.applied_now();
        let ids = changes.take();
        let mut report = RoundReport::default();
        self.inner.expire_log_now_and_then().await;
        self.inner.sweep_now_and_then().await;
        let mut done = self.back_up_each(ids, applied);
        while let Some((id, r)) = done.next().await {
            match r {
                Ok(Outcome::Uploaded) => report.uploaded += 1,
                Ok(Outcome::Unchanged) => report.unchanged += 1,
                Ok(Outcome::Gone) => report.gone += 1,
                Err(e) => {
                    report.failed += 1;
                    self.inner.stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(tenant = %id, error = %e, "backup of tenant failed; retried next round");
                    changes.mark(&id);
                }
            }
        }
        drop(done);
        // The round's buffers (snapshot pages, compressed bodies, request bodies, a retention
        // listing) went back to the allocator, which keeps them: without this, RSS under load
        // grew by the size of a round's snapshots every round (tenants that stay open never
        // trigger the pool's own trim), and an idle node kept its sweep's listing. Cheap.
        let _ = tokio::task::spawn_blocking(store::sys::trim_heap).await;
        let stats = &self.inner.stats;
        stats.rounds.fetch_add(1, Ordering::Relaxed);
        stats.pending.store(changes.len() as u64, Ordering::Relaxed);
        if report.failed == 0 {
            stats.backed_up_through_ms.store(started, Ordering::Relaxed);
        }
        if report != RoundReport::default() {
            tracing::info!(?report, "backup round");
        }
        report
    }
}

impl Inner {
    /// The log's applied position now (0 without a log; see [`LogLink::applied`]).
    fn applied_now(&self) -> u64 {
        self.applied.lock().as_ref().map_or(0, |f| f())
    }

    fn scan(&self) -> Result<usize, BackupError> {
        let data = self.pool.config().data_dir.clone();
        let changes = self.pool.changes().expect("checked in new");
        let state = self.state.lock();
        let (mut after, mut marked) = (None, 0);
        loop {
            let (ids, next) = store::layout::list_tenants(&data, after.as_ref(), SCAN_PAGE)?;
            for id in ids {
                let path = store::layout::tenant_path(&data, &id);
                let changed = modified_ms(&path);
                let in_bucket = state.in_bucket_as_of(id.as_str())?;
                if in_bucket.is_none_or(|at| changed >= at) {
                    changes.mark(&id);
                    marked += 1;
                }
            }
            match next {
                Some(k) => after = Some(k),
                None => break,
            }
        }
        self.stats
            .pending
            .store(changes.len() as u64, Ordering::Relaxed);
        Ok(marked)
    }

    async fn back_up(&self, id: &TenantId, applied_lsn: u64) -> Result<Outcome, BackupError> {
        let data = &self.pool.config().data_dir;
        let tmp = data
            .join(TMP_DIR)
            .join(format!("{id}.{:016x}.db", rand::random::<u64>()));
        let at_ms = now_ms();
        let taken = self.pool.snapshot_to(id, tmp.clone()).await;
        match taken {
            Ok(()) => {}
            Err(StoreError::NotFound | StoreError::Moved { .. }) => {
                let _ = std::fs::remove_file(&tmp);
                self.bury(id, at_ms).await?;
                return Ok(Outcome::Gone);
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e.into());
            }
        }
        let (file, zst) = (tmp.clone(), tmp.with_extension("db.zst"));
        let out = zst.clone();
        let packed = tokio::task::spawn_blocking(move || {
            let packed = pack(&file, &out);
            let _ = std::fs::remove_file(&file);
            packed
        })
        .await
        .map_err(|e| BackupError::Io(std::io::Error::other(e)))?;
        // The compressed file goes whatever happens below.
        let _cleanup = RemoveOnDrop(zst.clone());
        let packed = packed?;
        let last = self.state.lock().get(id.as_str())?;
        if last.is_some_and(|u| u.sha256 == packed.sha256) {
            // Noted, so the next start's scan does not take file times from before this
            // snapshot for a change (a leftover WAL, a checkpoint that rewrote the file).
            self.state.lock().checked(id.as_str(), at_ms)?;
            return Ok(Outcome::Unchanged);
        }
        let snap = SnapshotKey {
            at_ms,
            tenant: id.as_str().to_owned(),
            sha256: packed.sha256.clone(),
            applied_lsn: Some(applied_lsn),
        };
        let bytes = packed.compressed_bytes;
        self.remote.put_file(&snap, &zst).await?;
        self.state.lock().record(&Upload {
            tenant: snap.tenant.clone(),
            at_ms,
            sha256: snap.sha256.clone(),
            bytes,
        })?;
        self.stats.uploads.fetch_add(1, Ordering::Relaxed);
        self.stats
            .uploaded_bytes
            .fetch_add(bytes, Ordering::Relaxed);
        self.stats
            .snapshot_bytes
            .fetch_add(packed.raw_bytes, Ordering::Relaxed);
        if let Err(e) = self.expire(id.as_str()).await {
            tracing::warn!(tenant = %id, error = %e, "backup retention failed; retried after the next upload");
        }
        Ok(Outcome::Uploaded)
    }

    /// Once per [`SNAPSHOT_SWEEP_EVERY`] (and in the first round): every tenant's snapshots that
    /// fell out of the retention window, from one listing of the prefix, so a tenant that
    /// stopped changing does not keep its old snapshots for ever.
    async fn sweep_now_and_then(&self) {
        let now = now_ms();
        if !due(&self.swept_at, SNAPSHOT_SWEEP_EVERY, now) {
            return;
        }
        let run = async {
            let mut by_tenant: std::collections::HashMap<String, Vec<SnapshotKey>> =
                std::collections::HashMap::new();
            for s in self.remote.all_snapshots().await? {
                by_tenant.entry(s.tenant.clone()).or_default().push(s);
            }
            let mut n = 0;
            for snaps in by_tenant.values() {
                for s in expired(snaps, now, self.cfg.retention) {
                    self.remote.delete(s).await?;
                    n += 1;
                }
            }
            Ok::<_, BackupError>(n)
        };
        match run.await {
            Ok(0) => {}
            Ok(n) => tracing::info!(snapshots = n, "backup: snapshots past retention removed"),
            Err(e) => {
                tracing::warn!(error = %e, "backup: the retention sweep failed; tried again tomorrow")
            }
        }
    }

    /// Once per [`LOG_RETENTION_EVERY`]: removes log chunks older than the window and a day.
    async fn expire_log_now_and_then(&self) {
        let now = now_ms();
        if !due(&self.log_expired_at, LOG_RETENTION_EVERY, now) {
            return;
        }
        let run = async {
            let chunks = self.remote.log_chunks().await?;
            let gone = expired_log(&chunks, now, self.cfg.retention, LOG_RETENTION_MARGIN);
            for c in &gone {
                self.remote.delete_log(c).await?;
            }
            Ok::<_, BackupError>(gone.len())
        };
        match run.await {
            Ok(0) => {}
            Ok(n) => tracing::info!(chunks = n, "backup: old log chunks removed"),
            Err(e) => {
                tracing::warn!(error = %e, "backup: log retention failed; tried again in an hour")
            }
        }
    }

    /// Leaves a tombstone for a backed-up tenant that was deleted or moved away, so a restore
    /// of the node does not bring it back (and records it, so it is left once).
    async fn bury(&self, id: &TenantId, at_ms: u64) -> Result<(), BackupError> {
        let last = self.state.lock().get(id.as_str())?;
        if last.is_none_or(|u| u.sha256 == crate::key::GONE) {
            return Ok(());
        }
        let tomb = SnapshotKey::gone(id.as_str(), at_ms);
        self.remote.put(&tomb, Bytes::new()).await?;
        self.state.lock().record(&Upload {
            tenant: tomb.tenant.clone(),
            at_ms,
            sha256: tomb.sha256.clone(),
            bytes: 0,
        })?;
        Ok(())
    }

    /// Removes `tenant`'s snapshots that fell out of the retention window.
    async fn expire(&self, tenant: &str) -> Result<usize, BackupError> {
        let snaps = self.remote.snapshots(tenant).await?;
        let gone = expired(&snaps, now_ms(), self.cfg.retention);
        for s in &gone {
            self.remote.delete(s).await?;
        }
        Ok(gone.len())
    }
}

/// Whether a job last run at `last` (Unix ms; 0: never) is due again at `now` after `every`;
/// if so, `last` becomes `now`.
fn due(last: &AtomicU64, every: Duration, now: u64) -> bool {
    let at = last.load(Ordering::Relaxed);
    if at != 0 && now.saturating_sub(at) < every.as_millis() as u64 {
        return false;
    }
    last.store(now, Ordering::Relaxed);
    true
}

/// A snapshot compressed into a file, ready to upload.
struct Packed {
    sha256: String,
    raw_bytes: u64,
    compressed_bytes: u64,
}

/// Deletes a file when dropped.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Reads `path` once: its sha256, and its zstd-compressed bytes written to `out` (a file, so a
/// large tenant is never held in memory).
fn pack(path: &Path, out: &Path) -> Result<Packed, BackupError> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let sink = std::io::BufWriter::new(std::fs::File::create(out)?);
    let mut enc = zstd::Encoder::new(sink, ZSTD_LEVEL)?;
    let mut buf = vec![0u8; 1 << 16];
    let mut raw_bytes = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        enc.write_all(&buf[..n])?;
        raw_bytes += n as u64;
    }
    let sink = enc.finish()?;
    let compressed_bytes = sink
        .into_inner()
        .map_err(|e| e.into_error())?
        .metadata()?
        .len();
    Ok(Packed {
        sha256: hex::encode(hasher.finalize()),
        raw_bytes,
        compressed_bytes,
    })
}

/// The later modification time of a tenant's file and its WAL, Unix ms (0 if unreadable).
pub fn modified_ms(db: &Path) -> u64 {
    let [wal, _] = store::layout::companion_paths(db);
    [db, wal.as_path()]
        .iter()
        .filter_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .map(unix_ms)
        .max()
        .unwrap_or(0)
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Now, Unix ms.
pub fn now_ms() -> u64 {
    unix_ms(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_periodic_job_is_due_at_first_then_once_per_period() {
        let last = AtomicU64::new(0);
        let hour = Duration::from_secs(3600);
        assert!(due(&last, hour, 1_000), "never run: due");
        assert!(!due(&last, hour, 1_000 + 3_599_999));
        assert!(due(&last, hour, 1_000 + 3_600_000));
        assert_eq!(last.load(Ordering::Relaxed), 3_601_000);
        assert!(!due(&last, hour, 3_601_001));
    }
}
