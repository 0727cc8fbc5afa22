//! Opening the inbox: the catalog (rebuilt from the tenant files when it is new), the log and
//! its replay, unclean-start detection, and applying the replayed records before serving.
//!
//! Unclean start: the catalog's `running` flag is still 1 (the last server did not stop
//! cleanly), or the catalog is new while the log holds records. Then the node's generation
//! goes up by one (synced) and every tenant's next event id is at least `generation << 40`:
//! in `crash` mode an acknowledged tail of the log can be lost in a power cut, and its event ids
//! must never name other events later.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Instant;

use ingest::{Dropped, Log, LogConfig, SyncMode};
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::backlog::Backlog;
use super::{applier, Inbox, InboxConfig, InboxError, Inner, GENERATION_SHIFT, LOG_DIR};
use crate::catalog::meta::{APPLIED_LSN, GENERATION, RUNNING};
use crate::catalog::{catalog_path, Catalog, CatalogConfig};
use crate::config::Durability;
use crate::error::StoreError;
use crate::name::TenantId;
use crate::pool::TenantPool;

/// Time the start gives the replayed records to reach their files before serving anyway.
const REPLAY_APPLY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// What [`Inbox::open`] found and did.
#[derive(Debug, Clone, Default)]
pub struct StartReport {
    /// The catalog did not exist and was rebuilt from the tenant files (how many).
    pub rebuilt_tenants: Option<usize>,
    /// Records read back from the log (acknowledged, possibly not yet applied).
    pub replayed: usize,
    /// Replayed records whose tenant no longer exists (dropped).
    pub orphaned: usize,
    /// What replay cut off the log's end (a torn or corrupt tail).
    pub dropped: Dropped,
    /// The previous server did not stop cleanly.
    pub unclean: bool,
    /// Unclean starts so far.
    pub generation: i64,
    /// Whether every replayed record reached its file before serving.
    pub drained: bool,
}

impl Inbox {
    /// Opens the inbox over `pool` (whose data directory it shares), replays the log and
    /// applies what was not yet applied, then starts the appliers. Errors: `Catalog` (a
    /// damaged or locked catalog: the message says what to do), `Log` (locked or unreadable
    /// log), `Store`.
    pub async fn open(pool: TenantPool, cfg: InboxConfig) -> Result<Inbox, InboxError> {
        let path = catalog_path(&cfg.data_dir);
        let existed = path.exists();
        let mut ccfg = CatalogConfig::new(cfg.durability);
        ccfg.dedupe_window = cfg.dedupe_window;
        let catalog = Catalog::open(&path, ccfg)?;
        let mut report = StartReport::default();
        if !existed {
            let t0 = Instant::now();
            let r = catalog.rebuild_all(&cfg.data_dir)?;
            tracing::info!(
                tenants = r.tenants,
                failed = r.failed,
                ms = t0.elapsed().as_millis() as u64,
                "catalog created from the tenant files"
            );
            for (tenant, e) in &r.failures {
                tracing::error!(tenant = %tenant, error = %e, "catalog: tenant file unreadable");
            }
            report.rebuilt_tenants = Some(r.tenants);
        }
        let applied = catalog.meta(APPLIED_LSN)?.unwrap_or(0);
        let running = catalog.meta(RUNNING)?;
        let mut lcfg = LogConfig::new(cfg.data_dir.join(LOG_DIR));
        lcfg.sync = match cfg.durability {
            Durability::Fsync => SyncMode::EveryBatch,
            Durability::Crash => SyncMode::Interval(cfg.sync_interval),
        };
        lcfg.segment_bytes = cfg.segment_bytes;
        let from = u64::try_from(applied).unwrap_or(0) + 1;
        let (log, replay) = Log::open(lcfg, from).map_err(InboxError::from_log)?;
        report.replayed = replay.records.len();
        report.dropped = replay.dropped.clone();
        report.unclean = match running {
            Some(r) => r != 0,
            None => !existed && replay.next_lsn > ingest::FIRST_LSN,
        };
        let mut generation = catalog.meta(GENERATION)?.unwrap_or(0);
        if report.unclean {
            generation += 1;
            catalog.set_meta_durably(GENERATION, generation)?;
        }
        report.generation = generation;
        let floor = (generation << GENERATION_SHIFT).max(0) + 1;
        let backlog = Arc::new(Backlog::new(cfg.caps));
        pool.attach_backlog(backlog.clone());
        catalog.set_meta_durably(RUNNING, 1)?;
        let inner = Arc::new(Inner {
            log,
            catalog,
            backlog,
            pool,
            cfg,
            floor,
            generation,
            closing: AtomicBool::new(false),
            stop: Notify::new(),
            task: Mutex::new(None),
            counters: Default::default(),
            report: Mutex::new(StartReport::default()),
            release_hold: Arc::new(AtomicU64::new(u64::MAX)),
        });
        let inbox = Inbox { inner };
        for entry in replay.records {
            let Ok(tenant) = TenantId::parse(&entry.record.tenant) else {
                report.orphaned += 1;
                continue;
            };
            let row = match inbox.row(&tenant).await {
                Ok(row) => Some(row),
                // Deleted, or moved to another node (its records went with its snapshot).
                Err(InboxError::UnknownTenant | InboxError::Store(StoreError::Moved { .. })) => {
                    None
                }
                Err(e) => return Err(e),
            };
            let Some(row) = row else {
                report.orphaned += 1;
                continue;
            };
            let first = row.next_event_id.max(floor);
            inbox.inner.backlog.restore(entry.record, entry.lsn, first);
        }
        report.drained = applier::drain(&inbox.inner, REPLAY_APPLY_TIMEOUT).await;
        applier::checkpoint(&inbox.inner).await?;
        *inbox.inner.report.lock() = report;
        let inner = inbox.inner;
        *inner.task.lock() = Some(applier::spawn(&inner));
        Ok(Inbox { inner })
    }
}
