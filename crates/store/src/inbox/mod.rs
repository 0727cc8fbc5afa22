//! The inbox: webhook ingest at the speed of the disk. A delivery is acknowledged once it is in
//! the node's ingest log (one group-committed write for every concurrent request); background
//! appliers move it to its tenant file later, in batches; anything that reads or writes a
//! tenant applies that tenant's records first (the pool does it), so nobody misses an
//! acknowledged webhook. No tenant file is opened and nothing per tenant is synced before the
//! acknowledgement: the catalog answers "does the tenant exist, which scheme and secret,
//! was this delivery seen", and the backlog gives the event id.
//!
//! - `backlog.rs`: records not yet in their files, per tenant, with the caps;
//! - `apply.rs`: the SQL that puts records into a tenant file (idempotent);
//! - `applier.rs`: the background loop: apply rounds, catalog updates, checkpoints (a
//!   filesystem sync, then the log is released up to what is applied);
//! - `start.rs`: opening: catalog, replay of the log, unclean-start detection;
//! - `error.rs`: [`InboxError`].

mod applier;
mod apply;
mod backlog;
mod error;
mod start;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ingest::{Log, Lsn, Record};
use parking_lot::Mutex;
use tokio::sync::Notify;

pub use apply::{apply_pending, insert_all, write_created_lsn, CREATED_LSN_KEY};
pub use backlog::{Backlog, BacklogStats, Caps, Outcome, Stuck};
pub use error::InboxError;
pub use start::StartReport;

use crate::catalog::{Catalog, CatalogError, TenantRow};
use crate::config::Durability;
use crate::error::StoreError;
use crate::events::{HookConfig, Inserted};
use crate::handoff::Pass;
use crate::name::{SourceName, TenantId};
use crate::policy::{UnknownPolicy, WebhookPolicy};
use crate::pool::{join_error, TenantPool};
use backlog::{Lookups, Refused, Reserved};

/// The log's directory inside the data directory.
pub const LOG_DIR: &str = "log";
/// After the n-th unclean start, event ids continue from at least `n << GENERATION_SHIFT`:
/// an id given to a delivery lost with the log's unsynced tail is never given again.
pub const GENERATION_SHIFT: u32 = 40;
/// Default batching window of the appliers.
pub const DEFAULT_APPLY_DELAY: Duration = Duration::from_millis(50);
/// Default cap on records not yet in the catalog, node-wide.
pub const DEFAULT_MAX_PENDING_RECORDS: usize = 20_000;
/// Default cap on their bytes.
pub const DEFAULT_MAX_PENDING_BYTES: usize = 16 << 20;
/// Default cap on one tenant's records.
pub const DEFAULT_MAX_TENANT_PENDING: usize = 5_000;
/// Default time between checkpoints (filesystem sync + log release).
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);
/// How close to its quota a tenant file must be before the quota check also counts its WAL.
pub const WAL_ALLOWANCE: u64 = 8 << 20;
/// Tenants applied at once by the appliers.
pub const APPLY_CONCURRENCY: usize = 4;

/// How the inbox runs. `InboxConfig::new` gives the defaults.
#[derive(Debug, Clone)]
pub struct InboxConfig {
    /// The data directory (the log goes to `<data>/log`, the catalog to `<data>/catalog.db`).
    pub data_dir: PathBuf,
    /// `fsync`: the log is synced before every acknowledgement (one fdatasync per batch);
    /// `crash`: written before it, synced at least every `sync_interval`.
    pub durability: Durability,
    /// `crash` mode's log sync interval (what a power cut may lose).
    pub sync_interval: Duration,
    /// How long the appliers wait after a record is logged before a round (batching).
    pub apply_delay: Duration,
    /// The backlog's caps (over them: `503`).
    pub caps: Caps,
    /// Time between checkpoints.
    pub checkpoint_interval: Duration,
    /// Delivery ids are deduplicated for at least this long.
    pub dedupe_window: Duration,
    /// Log segment size.
    pub segment_bytes: u64,
}

impl InboxConfig {
    /// The defaults over `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>, durability: Durability) -> Self {
        InboxConfig {
            data_dir: data_dir.into(),
            durability,
            sync_interval: ingest::DEFAULT_SYNC_INTERVAL,
            apply_delay: DEFAULT_APPLY_DELAY,
            caps: Caps {
                records: DEFAULT_MAX_PENDING_RECORDS,
                bytes: DEFAULT_MAX_PENDING_BYTES,
                tenant_records: DEFAULT_MAX_TENANT_PENDING,
            },
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
            dedupe_window: crate::catalog::DEFAULT_DEDUPE_WINDOW,
            segment_bytes: ingest::DEFAULT_SEGMENT_BYTES,
        }
    }
}

/// What the ingest path needs to verify a delivery: the tenant's policy and the source's
/// settings.
#[derive(Debug, Clone)]
pub struct HookView {
    /// The tenant's webhook policy (an unreadable stored value stays an error: fail closed).
    pub policy: Result<WebhookPolicy, UnknownPolicy>,
    /// The source's scheme and secret, if configured.
    pub hook: Option<HookConfig>,
}

/// A verified delivery to log.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The source.
    pub source: SourceName,
    /// The sender's delivery id (dedupe key).
    pub delivery_id: Option<String>,
    /// `Content-Type` as received.
    pub content_type: Option<String>,
    /// Receive time, ms since the Unix epoch.
    pub received_at_ms: i64,
    /// The body, verbatim.
    pub body: Vec<u8>,
}

/// Counters of the inbox, for metrics.
#[derive(Debug, Clone, Default)]
pub struct InboxStats {
    /// The backlog's gauges.
    pub backlog: BacklogStats,
    /// The log's counters.
    pub log: ingest::Stats,
    /// Bytes of the live log segments on disk.
    pub log_bytes: u64,
    /// Live log segments.
    pub log_segments: usize,
    /// Records applied to tenant files by the appliers and by reads.
    pub applied_records: u64,
    /// Apply rounds run by the appliers.
    pub apply_rounds: u64,
    /// Tenants applied in the last round.
    pub last_round_tenants: u64,
    /// Most tenants applied in one round.
    pub max_round_tenants: u64,
    /// Tenant applies that failed (retried next round).
    pub apply_errors: u64,
    /// Deliveries refused because a backlog cap was reached.
    pub refused_full: u64,
    /// Checkpoints that released log segments or moved the applied position.
    pub checkpoints: u64,
    /// Records dropped because their tenant no longer exists.
    pub dropped_records: u64,
    /// Delivery ids pruned from the catalog (older than the dedupe window).
    pub pruned_deliveries: u64,
    /// Unclean starts so far.
    pub generation: i64,
}

#[derive(Default)]
struct Counters {
    applied_records: AtomicU64,
    apply_rounds: AtomicU64,
    last_round_tenants: AtomicU64,
    max_round_tenants: AtomicU64,
    apply_errors: AtomicU64,
    refused_full: AtomicU64,
    checkpoints: AtomicU64,
    dropped_records: AtomicU64,
    pruned_deliveries: AtomicU64,
}

/// The inbox; cheap to clone.
#[derive(Clone)]
pub struct Inbox {
    inner: Arc<Inner>,
}

struct Inner {
    log: Log,
    catalog: Catalog,
    backlog: Arc<Backlog>,
    pool: TenantPool,
    cfg: InboxConfig,
    /// Event ids given from now on are at least this.
    floor: i64,
    generation: i64,
    closing: AtomicBool,
    stop: Notify,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    counters: Counters,
    report: Mutex<StartReport>,
    /// Log segments are released only up to this LSN (`u64::MAX`: no hold): the backup's
    /// shipped position, so no record leaves the disk before it is in the bucket.
    release_hold: Arc<AtomicU64>,
}

impl Inbox {
    /// What the start found and did.
    pub fn start_report(&self) -> StartReport {
        self.inner.report.lock().clone()
    }

    /// The node catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    /// The log directory (`<data>/log`).
    pub fn log_dir(&self) -> PathBuf {
        self.inner.cfg.data_dir.join(LOG_DIR)
    }

    /// The LSN every record at or below which is in its tenant file: nothing at or below it
    /// waits to be applied.
    pub fn applied_upto(&self) -> ingest::Lsn {
        let last = self.inner.log.stats().last_lsn;
        self.inner.backlog.released_upto(last)
    }

    /// The last LSN the log has synced: every record up to it survives a power cut (in
    /// `crash` mode the log is up to its sync interval ahead of it).
    pub fn durable_lsn(&self) -> ingest::Lsn {
        self.inner.log.stats().durable_lsn
    }

    /// The hold on log release: segments go only once every record in them is at or below
    /// the value (the backup stores its shipped LSN here; `u64::MAX`, the start value, holds
    /// nothing back).
    pub fn release_hold(&self) -> Arc<AtomicU64> {
        self.inner.release_hold.clone()
    }

    /// The tenant pool the inbox applies into.
    pub fn pool(&self) -> &TenantPool {
        &self.inner.pool
    }

    /// Waits until none of the tenant's records is still being appended to the log (after a
    /// move fenced it: the backlog's barrier first, so no record can start after this
    /// returns). Returns whether that happened within `wait`.
    pub async fn quiesce(&self, tenant: &TenantId, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        self.inner.backlog.barrier();
        while self.inner.backlog.appending(tenant) {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        true
    }

    /// The id the tenant's next event would get here: the largest of its catalog row, its
    /// backlog and this node's floor. Errors: `Catalog`.
    pub fn next_event_id(&self, tenant: &TenantId) -> Result<i64, InboxError> {
        let row = self
            .inner
            .catalog
            .tenant(tenant)?
            .map_or(0, |r| r.next_event_id);
        let backlog = self.inner.backlog.next_event_id(tenant).unwrap_or(0);
        Ok(row.max(backlog).max(self.inner.floor))
    }

    /// A tenant file was installed by a move (its `created_lsn` written): its rows are rebuilt
    /// from the file, and its next event id is at least `carried` (the source's), so ids never
    /// go backwards across nodes. Errors: `Catalog`.
    pub fn tenant_imported(&self, tenant: &TenantId, carried: i64) -> Result<(), InboxError> {
        let cat = &self.inner.catalog;
        cat.delete_tenant(tenant)?;
        self.inner.backlog.forget(tenant);
        cat.rebuild_tenant(tenant, &self.inner.pool.path_of(tenant))?;
        if let Some(mut row) = cat.tenant(tenant)? {
            row.next_event_id = row.next_event_id.max(carried).max(self.inner.floor);
            cat.put_tenant(tenant, &row)?;
        }
        Ok(())
    }

    /// The tenant's policy and the source's settings, from the catalog (a tenant the catalog
    /// does not know yet is read from its file once). Errors: `UnknownTenant`, `Catalog`,
    /// `Store` (reading the file).
    pub async fn hook_view(
        &self,
        tenant: &TenantId,
        source: &SourceName,
    ) -> Result<HookView, InboxError> {
        let row = self.row(tenant).await?;
        let hook = self.inner.catalog.hook(tenant, source)?;
        Ok(HookView {
            policy: row.webhook_policy,
            hook,
        })
    }

    /// The tenant's token epoch from the catalog (`None`: its file has none yet). Errors:
    /// `UnknownTenant`, `Catalog`, `Store`.
    pub async fn token_epoch(&self, tenant: &TenantId) -> Result<Option<String>, InboxError> {
        Ok(self.row(tenant).await?.token_epoch)
    }

    /// Logs a verified delivery and answers once it is in the log (durable in `fsync` mode):
    /// its event id, or the original's for a delivery id seen before (`duplicate`). Errors:
    /// `BacklogFull`/`TenantBacklogFull` (retry later), `DiskFull`, `OriginalFailed`, `Log`,
    /// `ShuttingDown`, `UnknownTenant`, `Catalog`.
    pub async fn accept(&self, tenant: &TenantId, d: Delivery) -> Result<Inserted, InboxError> {
        let inner = &self.inner;
        if inner.closing.load(Ordering::Acquire) {
            return Err(InboxError::ShuttingDown);
        }
        if let Some(why) = inner.pool.migration_failure(tenant) {
            return Err(InboxError::MigrationFailed(why));
        }
        // A tenant being moved: wait for the move briefly (checked again under the backlog
        // lock, in `submit`, which is what the move's barrier relies on).
        let wait = inner.pool.config().fence_wait;
        match inner.pool.fences().pass(tenant, wait).await {
            Pass::Open => {}
            Pass::Fenced { retry_after } => return Err(StoreError::Moving { retry_after }.into()),
            Pass::Moved { to } => return Err(StoreError::Moved { to }.into()),
        }
        self.check_quota(tenant, d.body.len())?;
        let record = Record {
            tenant: tenant.as_str().to_owned(),
            source: d.source.as_str().to_owned(),
            delivery_id: d.delivery_id,
            event_id: 0,
            received_at_ms: d.received_at_ms,
            content_type: d.content_type,
            body: d.body,
        };
        let after = inner.log.stats().last_lsn;
        let reserved = inner.backlog.reserve(record, tenant, after, &**inner)?;
        match reserved {
            Err(Refused::Stuck(Stuck::Quota)) => Err(InboxError::QuotaExceeded),
            Err(Refused::Stuck(Stuck::Migration(why))) => Err(InboxError::MigrationFailed(why)),
            Err(refused) => {
                inner.counters.refused_full.fetch_add(1, Ordering::Relaxed);
                Err(match refused {
                    Refused::TenantFull => InboxError::TenantBacklogFull,
                    _ => InboxError::BacklogFull,
                })
            }
            Ok(Reserved::Duplicate {
                event_id,
                outcome: None,
            }) => Ok(Inserted {
                id: event_id,
                duplicate: true,
            }),
            Ok(Reserved::Duplicate {
                event_id,
                outcome: Some(mut outcome),
            }) => {
                let _ = outcome.wait_for(|o| *o != Outcome::Pending).await;
                match *outcome.borrow() {
                    Outcome::Logged => Ok(Inserted {
                        id: event_id,
                        duplicate: true,
                    }),
                    Outcome::Pending | Outcome::Failed => Err(InboxError::OriginalFailed),
                }
            }
            Ok(Reserved::New {
                event_id,
                seq,
                appending,
            }) => {
                // Finished in its own task, so a client that goes away mid-append never
                // leaves the record half-known (it would hold back the tenant and the log).
                let (backlog, t) = (inner.backlog.clone(), tenant.clone());
                let finish = tokio::spawn(async move {
                    let res = appending.wait().await;
                    backlog.finish(&t, seq, res.as_ref().ok().copied());
                    res
                });
                let res = finish.await.map_err(join_error)?;
                res.map_err(InboxError::from_log)?;
                Ok(Inserted {
                    id: event_id,
                    duplicate: false,
                })
            }
        }
    }

    /// Refuses a delivery that would take the tenant past its size quota: its file and WAL on
    /// disk, what is already in its backlog, and this body (an over-estimate: the WAL holds
    /// old page versions too, so a tenant is refused a little before SQLite would refuse it).
    /// The WAL is only looked at when the file alone is within [`WAL_ALLOWANCE`] of the quota
    /// (one `stat` per delivery otherwise).
    fn check_quota(&self, tenant: &TenantId, body: usize) -> Result<(), InboxError> {
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let path = self.inner.pool.path_of(tenant);
        let quota = self.inner.pool.config().quota_bytes;
        let mut need = size(&path) + self.inner.backlog.tenant_bytes(tenant) as u64 + body as u64;
        if need + WAL_ALLOWANCE > quota {
            let [wal, _] = crate::layout::companion_paths(&path);
            need += size(&wal);
        }
        if need > quota {
            return Err(InboxError::QuotaExceeded);
        }
        Ok(())
    }

    /// The log's last LSN once everything logged so far is durable: a new tenant file records
    /// it (`created_lsn`), so records of an earlier tenant of the same id are never applied to
    /// it. Errors: `Log`, `ShuttingDown`.
    pub async fn creation_lsn(&self) -> Result<Lsn, InboxError> {
        self.inner.log.sync().await.map_err(InboxError::from_log)
    }

    /// A tenant was created (its file exists, with `created_lsn` written): gives it a catalog
    /// row. Errors: `Catalog`.
    pub fn tenant_created(
        &self,
        tenant: &TenantId,
        token_epoch: Option<String>,
    ) -> Result<(), InboxError> {
        let mut row = TenantRow::new(token_epoch);
        row.next_event_id = self.inner.floor;
        self.inner.catalog.delete_tenant(tenant)?;
        self.inner.backlog.forget(tenant);
        self.inner.catalog.put_tenant(tenant, &row)?;
        Ok(())
    }

    /// A tenant is being deleted: its catalog rows and backlog go first (new deliveries get
    /// 404). Returns the backlog records dropped. Errors: `Catalog`.
    pub fn tenant_deleted(&self, tenant: &TenantId) -> Result<usize, InboxError> {
        self.inner.catalog.delete_tenant(tenant)?;
        Ok(self.inner.backlog.forget(tenant))
    }

    /// A source's settings changed in the tenant file (`None`: removed): the catalog follows.
    /// Errors: `Catalog`, `Store`.
    pub async fn hook_changed(
        &self,
        tenant: &TenantId,
        source: &SourceName,
        hook: Option<&HookConfig>,
    ) -> Result<(), InboxError> {
        let cat = &self.inner.catalog;
        let res = match hook {
            Some(h) => cat.put_hook(tenant, source, h),
            None => cat.delete_hook(tenant, source).map(drop),
        };
        match res {
            Ok(()) => Ok(()),
            Err(CatalogError::UnknownTenant(_)) => self.refresh(tenant).await.map(drop),
            Err(e) => Err(e.into()),
        }
    }

    /// The tenant's policy or token epoch changed in its file: the catalog row follows.
    /// Errors: `Catalog`, `Store`.
    pub async fn tenant_changed(
        &self,
        tenant: &TenantId,
        policy: Option<WebhookPolicy>,
        token_epoch: Option<String>,
    ) -> Result<(), InboxError> {
        let cat = &self.inner.catalog;
        let Some(mut row) = cat.tenant(tenant)? else {
            return self.refresh(tenant).await.map(drop);
        };
        if let Some(p) = policy {
            row.webhook_policy = Ok(p);
        }
        if token_epoch.is_some() {
            row.token_epoch = token_epoch;
        }
        cat.put_tenant(tenant, &row)?;
        Ok(())
    }

    /// The tenant's catalog row; a tenant the catalog does not know yet is read from its file
    /// once (`refresh`). Errors: `UnknownTenant`, `Catalog`, `Store`.
    async fn row(&self, tenant: &TenantId) -> Result<TenantRow, InboxError> {
        match self.inner.catalog.tenant(tenant)? {
            Some(row) => Ok(row),
            None => self.refresh(tenant).await,
        }
    }

    /// Makes the catalog's rows for `tenant` agree with its file, holding its writer (so no
    /// apply interleaves); returns the row. Errors: `UnknownTenant` (no file), `Catalog`,
    /// `Store`.
    async fn refresh(&self, tenant: &TenantId) -> Result<TenantRow, InboxError> {
        let (inner, t) = (self.inner.clone(), tenant.clone());
        let rebuilt = self
            .inner
            .pool
            .write(tenant, move |conn| {
                Ok(inner.catalog.rebuild_tenant_from(&t, conn))
            })
            .await;
        match rebuilt {
            Ok(r) => r.map(drop)?,
            Err(StoreError::NotFound) => return Err(InboxError::UnknownTenant),
            Err(e) => return Err(e.into()),
        }
        self.inner
            .catalog
            .tenant(tenant)?
            .ok_or(InboxError::UnknownTenant)
    }

    /// Applies every acknowledged record now (tests, tools): returns when the backlog holds
    /// nothing logged, or after `timeout`. Returns whether it is empty.
    pub async fn drain(&self, timeout: Duration) -> bool {
        applier::drain(&self.inner, timeout).await
    }

    /// Forgets delivery ids older than the dedupe window now (the appliers do it at start and
    /// hourly); returns how many went. A redelivery after that is stored as a new event.
    /// Errors: `Catalog`.
    pub async fn prune_deliveries(&self) -> Result<u64, InboxError> {
        applier::prune(&self.inner).await
    }

    /// Runs a checkpoint now: filesystem sync, applied position, log release. Errors: `Log`,
    /// `Catalog`, `Store`.
    pub async fn checkpoint(&self) -> Result<(), InboxError> {
        applier::checkpoint(&self.inner).await
    }

    /// The counters.
    pub fn stats(&self) -> InboxStats {
        let inner = &self.inner;
        let c = &inner.counters;
        let segments = inner.log.segments();
        let dir = inner.cfg.data_dir.join(LOG_DIR);
        let log_bytes = segments
            .iter()
            .filter_map(|&first| std::fs::metadata(ingest::segment_path(&dir, first)).ok())
            .map(|m| m.len())
            .sum();
        InboxStats {
            backlog: inner.backlog.stats(),
            log: inner.log.stats(),
            log_bytes,
            log_segments: segments.len(),
            applied_records: c.applied_records.load(Ordering::Relaxed),
            apply_rounds: c.apply_rounds.load(Ordering::Relaxed),
            last_round_tenants: c.last_round_tenants.load(Ordering::Relaxed),
            max_round_tenants: c.max_round_tenants.load(Ordering::Relaxed),
            apply_errors: c.apply_errors.load(Ordering::Relaxed),
            refused_full: c.refused_full.load(Ordering::Relaxed),
            checkpoints: c.checkpoints.load(Ordering::Relaxed),
            dropped_records: c.dropped_records.load(Ordering::Relaxed),
            pruned_deliveries: c.pruned_deliveries.load(Ordering::Relaxed),
            generation: inner.generation,
        }
    }

    /// Stops as a killed process would (tests of crash recovery): no more deliveries, the
    /// appliers stop, nothing more is applied or checkpointed and the stop is not marked clean;
    /// what the log's writer already wrote stays written. Drop every handle afterwards so the
    /// catalog and the log can be opened again.
    pub async fn abandon(&self) {
        let inner = &self.inner;
        inner.closing.store(true, Ordering::Release);
        inner.stop.notify_one();
        let task = inner.task.lock().take();
        if let Some(task) = task {
            let _ = task.await;
        }
        let _ = inner.log.close();
    }

    /// Stops taking deliveries, applies the backlog (waiting up to `grace`), checkpoints,
    /// closes the log and marks the stop clean. Call it before the pool's shutdown. Errors:
    /// the checkpoint's or the log's (the log then replays at the next start: nothing is lost).
    pub async fn close(&self, grace: Duration) -> Result<(), InboxError> {
        applier::close(&self.inner, grace).await
    }
}

impl Lookups for Inner {
    type Error = InboxError;

    fn first_id(&self, tenant: &TenantId) -> Result<i64, InboxError> {
        let row = self
            .catalog
            .tenant(tenant)?
            .ok_or(InboxError::UnknownTenant)?;
        Ok(row.next_event_id.max(self.floor))
    }

    fn seen(
        &self,
        tenant: &TenantId,
        source: &str,
        delivery_id: &str,
    ) -> Result<Option<i64>, InboxError> {
        let Ok(source) = SourceName::parse(source) else {
            return Ok(None);
        };
        Ok(self.catalog.delivery(tenant, &source, delivery_id)?)
    }

    fn submit(&self, tenant: &TenantId, record: &Record) -> Result<ingest::Appending, InboxError> {
        // Under the backlog lock: once a move has fenced the tenant and passed the backlog's
        // barrier, no record of it is logged here any more.
        match self
            .pool
            .fences()
            .check(tenant, tokio::time::Instant::now())
        {
            Pass::Open => {}
            Pass::Fenced { retry_after } => return Err(StoreError::Moving { retry_after }.into()),
            Pass::Moved { to } => return Err(StoreError::Moved { to }.into()),
        }
        self.log.submit(record).map_err(InboxError::from_log)
    }
}
