//! The tenant pool: scale to zero.
//!
//! A tenant's file is opened when a request needs it and closed when the tenant has been idle
//! for `idle_ttl`, so an idle tenant costs no RAM and no file descriptor. At most `max_open`
//! tenants are open; past that the least recently used idle tenant is evicted, and when every
//! open tenant is in use a request for another waits (no thread, in FIFO order, at most
//! `open_wait`) until one is released, so `max_open` below the request concurrency costs
//! latency and opens, never errors, while it stays a hard bound. Each open tenant
//! has one writer connection (behind an async mutex: one write at a time, waiting costs no thread)
//! and at most `readers_per_tenant` reader connections (WAL: readers never wait for the writer).
//!
//! The pool owns its maintenance loop: [`TenantPool::open`] starts it, [`TenantPool::shutdown`]
//! stops it, and it ends by itself when every handle is dropped. Files:
//! - `slot`: the registry (map of tenant → slot state) and the slot state machine, leases;
//! - `eviction`: the LRU victim and the tidy queue for fast-closed tenants;
//! - `place`: waiting for a place when every open tenant is in use (`open_wait`);
//! - `maintenance`: the maintenance pass, the background loop, WAL checkpoints;
//! - `writer`: [`WriterGuard`] and opening (and migrating) a tenant's writer;
//! - `reader`: the per-tenant reader cap and running work on a reader;
//! - `files`: creating and deleting tenant files.
//!
//! Invariant: a slot's `users` count only rises while the map lock is held, and a slot leaves
//! the map only under that lock with `users == 0`, so nobody holds a removed slot's connections
//! and a tenant never has two slots (two writers) at once.

mod eviction;
mod files;
mod maintenance;
mod place;
mod reader;
mod slot;
mod writer;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::Connection;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::changes::ChangeSet;
use crate::config::PoolConfig;
use crate::error::StoreError;
use crate::handoff::{self, Fences, Pass};
use crate::inbox::{apply_pending, Backlog};
use crate::layout::tenant_path;
use crate::name::TenantId;
use crate::stats::PoolStats;
use crate::sys;

use eviction::TidyQueue;
use place::Wait;
use slot::{CloseMode, Entry};
pub use writer::{classify_full, WriterGuard};

/// Background WAL checkpoints running at once at most.
const CHECKPOINTS_AT_ONCE: usize = 2;
/// A snapshot copies every page in one step of SQLite's online backup (-1): one read
/// transaction, so nothing written meanwhile restarts it.
const SNAPSHOT_ALL_PAGES: std::ffi::c_int = -1;
/// File descriptors kept free of tenants: listener, clients, logs, the maintenance pass's opens.
const FD_RESERVE: u64 = 256;

/// A handle to the pool; cheap to clone.
#[derive(Clone)]
pub struct TenantPool {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: PoolConfig,
    epoch: Instant,
    map: Mutex<HashMap<TenantId, Entry>>,
    tidy: Mutex<TidyQueue>,
    stats: PoolStats,
    shutting_down: AtomicBool,
    /// Wakes the maintenance loop to stop; shared with it (the loop holds no strong `Inner`).
    stop: Arc<Notify>,
    /// The maintenance loop, if it runs; `shutdown` takes and awaits it.
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    checkpoint_permits: Arc<tokio::sync::Semaphore>,
    /// Wakes one request waiting for a place in the pool: a slot's last user left, or a slot
    /// left the map (see `slot::Inner::lease`).
    slot_freed: Notify,
    /// Held for the whole of a maintenance pass; shutdown takes it so no pass overlaps it.
    pass: tokio::sync::Mutex<()>,
    /// Tenants whose migration to the configured set failed, with the error: refused without
    /// re-running it until the tenant is deleted or recreated (the set is fixed per pool).
    failed_migrations: Mutex<HashMap<TenantId, String>>,
    /// Acknowledged webhooks not yet in their tenant files (`inbox`), if attached: a tenant's
    /// are applied before anything else takes its writer or reads it.
    backlog: OnceLock<Arc<Backlog>>,
    /// Tenants fenced by a move or moved away (`handoff`): writes wait, then are refused.
    fences: Fences,
    /// Tenants changed since the backup last looked (`PoolConfig::track_changes`).
    changes: Option<Arc<ChangeSet>>,
}

impl TenantPool {
    /// Creates the pool over `cfg.data_dir` (creating the tenants directory), raises the
    /// file-descriptor limit, sets SQLite's heap limit and, if `cfg.maintenance`, starts the
    /// maintenance loop (which needs a tokio runtime: panics outside one, like `tokio::spawn`).
    /// Fails if the directory cannot be made. If the fd limit cannot fit `max_open` tenants,
    /// `max_open` is lowered and a warning logged.
    pub fn open(mut cfg: PoolConfig) -> Result<Self, StoreError> {
        ingest::segment::create_dir_durably(&cfg.data_dir.join(crate::layout::TENANTS_DIR))?;
        let fd_limit = sys::raise_fd_limit()?;
        let fit = (fd_limit.saturating_sub(FD_RESERVE) as usize) / cfg.fds_per_tenant();
        if cfg.max_open > fit {
            tracing::warn!(
                max_open = cfg.max_open,
                fd_limit,
                lowered_to = fit,
                "max_open tenants x fds per tenant exceeds RLIMIT_NOFILE; lowering max_open"
            );
            cfg.max_open = fit.max(1);
        }
        if !sys::configure_sqlite_once() {
            tracing::debug!("SQLite was initialised before the pool: default lookaside kept");
        }
        sys::set_sqlite_heap_limit(cfg.sqlite_heap_limit);
        let cfg_tracks = cfg.track_changes;
        let inner = Arc::new(Inner {
            cfg,
            epoch: Instant::now(),
            map: Mutex::new(HashMap::new()),
            tidy: Mutex::new(TidyQueue::default()),
            stats: PoolStats::default(),
            shutting_down: AtomicBool::new(false),
            stop: Arc::new(Notify::new()),
            task: Mutex::new(None),
            checkpoint_permits: Arc::new(tokio::sync::Semaphore::new(CHECKPOINTS_AT_ONCE)),
            slot_freed: Notify::new(),
            pass: tokio::sync::Mutex::new(()),
            failed_migrations: Mutex::new(HashMap::new()),
            backlog: OnceLock::new(),
            fences: Fences::new(),
            changes: cfg_tracks.then(|| Arc::new(ChangeSet::default())),
        });
        handoff::load_retired(&inner.cfg.data_dir, &inner.fences)?;
        if inner.cfg.maintenance {
            *inner.task.lock() = Some(maintenance::start(&inner));
        }
        Ok(TenantPool { inner })
    }

    /// The configuration in force (after any adjustment made by `open`).
    pub fn config(&self) -> &PoolConfig {
        &self.inner.cfg
    }

    /// Tenants fenced by a move or moved away from this node.
    pub fn fences(&self) -> &Fences {
        &self.inner.fences
    }

    /// The tenants changed since the last take, if `PoolConfig::track_changes` is on.
    pub fn changes(&self) -> Option<&Arc<ChangeSet>> {
        self.inner.changes.as_ref()
    }

    /// Notes that `id`'s file changed outside its writer (deleted, moved away).
    pub fn mark_changed(&self, id: &TenantId) {
        if let Some(c) = &self.inner.changes {
            c.mark(id);
        }
    }

    /// Notes that `id` is new here (created, imported): the backup copies it within its log
    /// interval, so the webhooks it ships for the tenant have a file to go into at a restore.
    pub fn mark_new(&self, id: &TenantId) {
        if let Some(c) = &self.inner.changes {
            c.mark_new(id);
        }
    }

    /// Copies tenant `id` to a new file `dest` with SQLite's online backup, in one step on a
    /// reader: one read transaction, so a consistent snapshot of every committed write, and
    /// writers go on meanwhile (in exclusive locking it runs on the writer, which then waits).
    /// Acknowledged webhooks not yet applied are not in it (the backup ships them with the
    /// log). A tenant that was not open is closed again at once if nothing else took it up
    /// meanwhile: a backup round does not leave every changed tenant open for the idle TTL.
    /// Errors: `NotFound` (also a tenant moved away), SQLite and I/O.
    pub async fn snapshot_to(&self, id: &TenantId, dest: PathBuf) -> Result<(), StoreError> {
        let was_open = self.is_open(id);
        let lease = self.inner.lease(id, Wait::ForPlace).await?;
        let slot = lease.slot.clone();
        if !lease.slot.migrated.load(Ordering::Acquire) {
            // Opening the writer migrates the tenant; never copy an old schema.
            self.writer_unfenced(id).await?.run(|_| ()).await?;
        }
        let copied = reader::run(lease, move |conn| {
            crate::connection::backup_to(conn, &dest, SNAPSHOT_ALL_PAGES)
        })
        .await;
        if !was_open {
            if let Some(closing) = self.inner.take_if_unused(&slot) {
                self.inner.stats.idle_closes.fetch_add(1, Ordering::Relaxed);
                let inner = self.inner.clone();
                run_blocking(move || inner.close_now(closing, CloseMode::Clean)).await;
            }
        }
        copied
    }

    /// Counters and gauges for `/metrics`.
    pub fn stats(&self) -> &PoolStats {
        &self.inner.stats
    }

    /// The path of a tenant's file (whether or not it exists).
    pub fn path_of(&self, id: &TenantId) -> PathBuf {
        tenant_path(&self.inner.cfg.data_dir, id)
    }

    /// Whether `id` is open in the pool right now.
    pub fn is_open(&self, id: &TenantId) -> bool {
        matches!(self.inner.map.lock().get(id), Some(Entry::Open(_)))
    }

    /// Writes waiting for the tenant's writer right now (0 if it is not open).
    pub fn queued_writes(&self, id: &TenantId) -> usize {
        match self.inner.map.lock().get(id) {
            Some(Entry::Open(slot)) => slot.queued_writes.load(Ordering::Acquire),
            _ => 0,
        }
    }

    /// Reads waiting for one of the tenant's reader connections right now (0 if not open).
    pub fn queued_reads(&self, id: &TenantId) -> usize {
        match self.inner.map.lock().get(id) {
            Some(Entry::Open(slot)) => slot.queued_reads.load(Ordering::Acquire),
            _ => 0,
        }
    }

    /// Runs `f` on the tenant's writer, one write at a time per tenant. Errors: `NotFound` (no
    /// file; none is created), `QueueFull`, `PoolExhausted` (every open tenant stayed in use for
    /// `open_wait`), `MigrationFailed`, `QuotaExceeded`,
    /// `DiskFull`, or what `f` returns.
    pub async fn write<R, F>(&self, id: &TenantId, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let guard = self.writer(id).await?;
        let (_guard, result) = guard
            .run(move |conn| f(conn).map_err(|e| classify_full(conn, e)))
            .await?;
        result
    }

    /// Takes the tenant's writer and keeps it until the guard is dropped (a transaction that
    /// spans requests holds one). The tenant's acknowledged webhooks still in the backlog are
    /// applied first, so whoever holds the writer sees them. Errors: `NotFound`, `QueueFull`,
    /// `PoolExhausted`, `ShuttingDown`, and applying's (`DiskFull`, `QuotaExceeded`, SQLite).
    /// A tenant fenced by a move is waited for (`fence_wait`), then refused: `Moving`, or
    /// `Moved` once the move is done.
    pub async fn writer(&self, id: &TenantId) -> Result<WriterGuard, StoreError> {
        match self.inner.fences.pass(id, self.inner.cfg.fence_wait).await {
            Pass::Open => self.writer_unfenced(id).await,
            Pass::Fenced { retry_after } => Err(StoreError::Moving { retry_after }),
            Pass::Moved { to } => Err(StoreError::Moved { to }),
        }
    }

    /// [`TenantPool::writer`] without the fence: for applying acknowledged webhooks, migrating
    /// before a read, and the move's own snapshot.
    pub(crate) async fn writer_unfenced(&self, id: &TenantId) -> Result<WriterGuard, StoreError> {
        let lease = self.inner.lease(id, Wait::ForPlace).await?;
        let guard = WriterGuard::acquire(lease).await?;
        match self.inner.backlog.get() {
            Some(b) if b.has_unapplied(id) => {
                let (b, tenant) = (b.clone(), id.clone());
                let (guard, applied) = guard
                    .run(move |conn| {
                        apply_pending(&b, &tenant, conn).map_err(|e| classify_full(conn, e))
                    })
                    .await?;
                applied?;
                Ok(guard)
            }
            _ => Ok(guard),
        }
    }

    /// Applies the tenant's acknowledged webhooks still in the backlog to its file now (what
    /// `writer` and `read` do first); for reads that go around the pool (admin show, export).
    /// Errors: as [`TenantPool::writer`].
    pub async fn settle(&self, id: &TenantId) -> Result<(), StoreError> {
        if self
            .inner
            .backlog
            .get()
            .is_some_and(|b| b.has_unapplied(id))
        {
            drop(self.writer_unfenced(id).await?);
        }
        Ok(())
    }

    /// Applies the tenant's backlog for the appliers. A tenant that was not open is opened for
    /// this and then marked idle: the next maintenance pass closes it (cleanly), and until then
    /// it is the first candidate for eviction, so a round over thousands of once-a-minute
    /// tenants neither pushes the hot tenants out of the pool nor keeps the cold ones open.
    /// Errors: as [`TenantPool::writer`].
    pub async fn apply_backlog(&self, id: &TenantId) -> Result<(), StoreError> {
        let was_open = self.is_open(id);
        let guard = self.writer_unfenced(id).await?;
        let slot = guard.slot().clone();
        drop(guard);
        if !was_open {
            let ttl = self.inner.cfg.idle_ttl.as_millis() as u64;
            // Past the idle cutoff (in the pool's first `idle_ttl` the cutoff saturates at 0:
            // 1 keeps the tenant open until then, still first in line for eviction).
            let demoted = self
                .inner
                .now_ms(Instant::now())
                .saturating_sub(ttl + 1)
                .max(1);
            slot.last_used_ms.store(demoted, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The remembered migration failure of `id`, if its migration failed (it is refused until
    /// deleted or recreated).
    pub fn migration_failure(&self, id: &TenantId) -> Option<String> {
        self.inner.failed_migrations.lock().get(id).cloned()
    }

    /// Attaches the backlog whose records [`TenantPool::writer`] and [`TenantPool::read`]
    /// apply first; a second call is ignored.
    pub fn attach_backlog(&self, backlog: Arc<Backlog>) {
        let _ = self.inner.backlog.set(backlog);
    }

    /// Runs `f` on a reader connection of the tenant, after applying its backlog (concurrent with the writer; at most
    /// `readers_per_tenant` at once, later reads wait without a thread; writes are refused by
    /// SQLite). Errors: `NotFound`, `PoolExhausted`, `MigrationFailed`, or `f`'s.
    pub async fn read<R, F>(&self, id: &TenantId, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        // Read your writes: acknowledged webhooks go to the file before the read.
        self.settle(id).await?;
        let lease = self.inner.lease(id, Wait::ForPlace).await?;
        if !lease.slot.migrated.load(Ordering::Acquire) {
            // Opening the writer migrates the tenant; never read an old schema.
            self.writer_unfenced(id).await?.run(|_| ()).await?;
        }
        reader::run(lease, f).await
    }

    /// Stops the maintenance loop, refuses new work, and closes every tenant cleanly, waiting up
    /// to `grace` for users (open streams) to finish. Tenants still in use after that stay as
    /// they are on disk (committed data is safe in the WAL).
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.shutting_down.store(true, Ordering::Release);
        // Requests waiting for a place in the pool see the flag and give up.
        self.inner.slot_freed.notify_waiters();
        // notify_one keeps the wake-up if the loop is in a pass right now.
        self.inner.stop.notify_one();
        let task = self.inner.task.lock().take();
        if let Some(task) = task {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "pool maintenance task failed");
            }
        }
        // Let a pass run by `maintain_at` finish; none starts after this.
        let _pass = self.inner.pass.lock().await;
        let deadline = Instant::now() + grace;
        loop {
            let idle = self
                .inner
                .take_idle(Instant::now() + Duration::from_secs(365 * 86_400));
            let inner = self.inner.clone();
            run_blocking(move || {
                for closing in idle {
                    inner.close_now(closing, CloseMode::Clean);
                }
            })
            .await;
            let left = self.inner.stats.open_tenants.load(Ordering::Relaxed)
                + self.inner.stats.closing_tenants.load(Ordering::Acquire);
            if left == 0 {
                self.drain_tidy(deadline).await;
                return;
            }
            if Instant::now() >= deadline {
                tracing::warn!(left, "shutdown: tenants still in use were not closed");
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A blocking task that panicked or was cancelled, as a store error.
pub(crate) fn join_error(e: tokio::task::JoinError) -> StoreError {
    StoreError::Io(std::io::Error::other(format!("blocking task failed: {e}")))
}

async fn run_blocking(f: impl FnOnce() + Send + 'static) {
    if let Err(e) = tokio::task::spawn_blocking(f).await {
        tracing::error!(error = %e, "pool maintenance task failed");
    }
}
