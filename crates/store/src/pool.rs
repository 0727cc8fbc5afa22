//! The tenant pool: scale to zero.
//!
//! A tenant's file is opened when a request needs it and closed when the tenant has been idle
//! for `idle_ttl`, so an idle tenant costs no RAM and no file descriptor. At most `max_open`
//! tenants are open; past that the least recently used idle tenant is evicted. Each open tenant
//! has one writer connection (behind an async mutex: one write at a time, waiting costs no thread)
//! and a few reader connections (WAL: readers never wait for the writer).
//!
//! No checkpoint runs on the request path. The pool's maintenance pass (a background task, or
//! `maintain_at` in tests) closes idle tenants *cleanly* (checkpoint, delete `-wal`/`-shm`),
//! checkpoints tenants whose WAL passed `wal_checkpoint_pages`, and tidies tenants that LRU
//! pressure closed *fast* (no checkpoint) once there is room again.
//!
//! Invariant: a slot's `users` count only rises while the map lock is held, so a slot removed
//! from the map under that lock with `users == 0` has no user and nobody holds its connections.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::Connection;
use tokio::sync::{watch, Notify, OwnedMutexGuard};
use tokio::time::Instant;

use crate::config::PoolConfig;
use crate::connection::{self, Access};
use crate::error::StoreError;
use crate::layout::{companion_paths, tenant_path};
use crate::name::TenantId;
use crate::stats::PoolStats;
use crate::sys;

/// Tenants tidied (checkpointed and closed after a fast eviction) per maintenance pass at most.
const TIDY_PER_PASS: usize = 64;
/// Background WAL checkpoints running at once at most.
const CHECKPOINTS_AT_ONCE: usize = 2;

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
    stop: Notify,
    checkpoint_permits: Arc<tokio::sync::Semaphore>,
    /// Held for the whole of a maintenance pass; shutdown takes it so no pass overlaps it.
    pass: tokio::sync::Mutex<()>,
}

enum Entry {
    Open(Arc<Slot>),
    /// Its connections are being closed on a blocking thread. A new user waits until that is
    /// done (the receiver's sender is dropped), so a close never races with a reopen of the same
    /// file — which would leave `-wal`/`-shm` behind.
    Closing(watch::Receiver<()>),
    /// Being deleted: requests see "not found", creates see "busy".
    Deleting,
}

/// A slot taken out of service and marked `Closing` in the map; `Inner::close_now` closes it
/// and then lets waiters in.
struct Closing {
    slot: Arc<Slot>,
    done: watch::Sender<()>,
    marker: watch::Receiver<()>,
}

#[derive(Default)]
struct TidyQueue {
    order: VecDeque<TenantId>,
    queued: HashSet<TenantId>,
}

struct Slot {
    id: TenantId,
    path: PathBuf,
    writer: Arc<tokio::sync::Mutex<Option<Connection>>>,
    readers: Mutex<Vec<Connection>>,
    users: AtomicUsize,
    queued_writes: AtomicUsize,
    last_used_ms: AtomicU64,
    wal_pages: Arc<AtomicI32>,
    checkpointing: AtomicBool,
    /// The writer was opened and the tenant is at the configured schema version.
    migrated: AtomicBool,
}

/// How a closed tenant's connections are closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CloseMode {
    /// Checkpoint and delete `-wal`/`-shm`: the tenant is then just its `.db` file.
    Clean,
    /// Just close; the tenant is queued for a later tidy.
    Fast,
}

impl TenantPool {
    /// Creates the pool over `cfg.data_dir` (creating the tenants directory), raises the
    /// file-descriptor limit and sets SQLite's heap limit. Fails if the directory cannot be made.
    /// If the fd limit cannot fit `max_open` tenants, `max_open` is lowered and a warning logged.
    pub fn open(mut cfg: PoolConfig) -> Result<Self, StoreError> {
        std::fs::create_dir_all(cfg.data_dir.join(crate::layout::TENANTS_DIR))?;
        let fd_limit = sys::raise_fd_limit()?;
        let reserve = 256; // listener, clients, logs, the maintenance pass's spare opens
        let fit = (fd_limit.saturating_sub(reserve) as usize) / cfg.fds_per_tenant();
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
        Ok(TenantPool {
            inner: Arc::new(Inner {
                cfg,
                epoch: Instant::now(),
                map: Mutex::new(HashMap::new()),
                tidy: Mutex::new(TidyQueue::default()),
                stats: PoolStats::default(),
                shutting_down: AtomicBool::new(false),
                stop: Notify::new(),
                checkpoint_permits: Arc::new(tokio::sync::Semaphore::new(CHECKPOINTS_AT_ONCE)),
                pass: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The configuration in force (after any adjustment made by `open`).
    pub fn config(&self) -> &PoolConfig {
        &self.inner.cfg
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

    /// Runs `f` on the tenant's writer, one write at a time per tenant. Errors: `NotFound` (no
    /// file; none is created), `QueueFull`, `PoolExhausted`, `QuotaExceeded`, `DiskFull`, or what
    /// `f` returns.
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
    /// spans requests holds one). Errors as for [`TenantPool::write`].
    pub async fn writer(&self, id: &TenantId) -> Result<WriterGuard, StoreError> {
        let lease = self.lease(id).await?;
        let slot = &lease.slot;
        if slot.queued_writes.fetch_add(1, Ordering::AcqRel) >= self.inner.cfg.max_queued_writes {
            slot.queued_writes.fetch_sub(1, Ordering::AcqRel);
            self.inner
                .stats
                .rejected_queue_full
                .fetch_add(1, Ordering::Relaxed);
            return Err(StoreError::QueueFull);
        }
        let conn = slot.writer.clone().lock_owned().await;
        slot.queued_writes.fetch_sub(1, Ordering::AcqRel);
        Ok(WriterGuard {
            lease: Some(lease),
            conn: Some(conn),
        })
    }

    /// Runs `f` on a reader connection of the tenant (concurrent with other readers and with the
    /// writer; writes are refused by SQLite). Errors: `NotFound`, `PoolExhausted`, or `f`'s.
    pub async fn read<R, F>(&self, id: &TenantId, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let lease = self.lease(id).await?;
        if !lease.slot.migrated.load(Ordering::Acquire) {
            // Opening the writer migrates the tenant; never read an old schema.
            self.writer(id).await?.run(|_| ()).await?;
        }
        tokio::task::spawn_blocking(move || with_reader(&lease, f))
            .await
            .map_err(join_error)?
    }

    /// Creates tenant `id`: a new file initialised by `init` in one transaction, made visible
    /// atomically. Errors: `AlreadyExists`, `Busy` (being deleted), I/O and SQLite errors.
    pub async fn create<F>(&self, id: &TenantId, init: F) -> Result<(), StoreError>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<()> + Send + 'static,
    {
        if matches!(self.inner.map.lock().get(id), Some(Entry::Deleting)) {
            return Err(StoreError::Busy("tenant is being deleted"));
        }
        let path = self.path_of(id);
        let id = id.clone();
        tokio::task::spawn_blocking(move || create_file(&path, &id, init))
            .await
            .map_err(join_error)?
    }

    /// Deletes tenant `id`: closes it and removes its file with `-wal`/`-shm`. Errors:
    /// `NotFound`, `Busy` when a request or stream is using it right now.
    pub async fn delete(&self, id: &TenantId) -> Result<(), StoreError> {
        let slot = loop {
            let closing = {
                let mut map = self.inner.map.lock();
                let slot = match map.get(id) {
                    Some(Entry::Deleting) => {
                        return Err(StoreError::Busy("tenant is being deleted"))
                    }
                    Some(Entry::Open(slot)) if slot.users.load(Ordering::Acquire) > 0 => {
                        return Err(StoreError::Busy("tenant is in use"))
                    }
                    Some(Entry::Closing(rx)) => Err(rx.clone()),
                    Some(Entry::Open(slot)) => Ok(Some(slot.clone())),
                    None => Ok(None),
                };
                match slot {
                    Ok(slot) => {
                        if slot.is_some() {
                            self.inner
                                .stats
                                .open_tenants
                                .fetch_sub(1, Ordering::Relaxed);
                        }
                        map.insert(id.clone(), Entry::Deleting);
                        break slot;
                    }
                    Err(closing) => closing,
                }
            };
            wait_closed(closing).await;
        };
        let path = self.path_of(id);
        let result = tokio::task::spawn_blocking(move || {
            if let Some(slot) = slot {
                close_slot(&slot, CloseMode::Fast);
            }
            let existed = match std::fs::remove_file(&path) {
                Ok(()) => true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                Err(e) => return Err(StoreError::Io(e)),
            };
            for companion in companion_paths(&path) {
                match std::fs::remove_file(companion) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StoreError::Io(e)),
                }
            }
            if existed {
                Ok(())
            } else {
                Err(StoreError::NotFound)
            }
        })
        .await
        .map_err(join_error);
        self.inner.map.lock().remove(id);
        result?
    }

    /// One maintenance pass as of `now`: close idle tenants cleanly, schedule WAL checkpoints,
    /// tidy fast-closed tenants while there is room. The background task calls this; tests call
    /// it with a `now` in the future instead of sleeping.
    pub async fn maintain_at(&self, now: Instant) {
        let _pass = self.inner.pass.lock().await;
        if self.inner.shutting_down.load(Ordering::Acquire) {
            return;
        }
        let idle = self.inner.take_idle(now);
        let closed = idle.len();
        if closed > 0 {
            self.inner
                .stats
                .idle_closes
                .fetch_add(closed as u64, Ordering::Relaxed);
            let inner = self.inner.clone();
            run_blocking(move || {
                for closing in idle {
                    inner.close_now(closing, CloseMode::Clean);
                }
            })
            .await;
        }
        self.checkpoint_big_wals().await;
        let tidied = self.tidy_some().await;
        if closed + tidied > 0 {
            run_blocking(sys::trim_heap).await;
        }
    }

    /// Starts the background maintenance task; it stops when [`TenantPool::shutdown`] runs.
    pub fn spawn_maintenance(&self) -> tokio::task::JoinHandle<()> {
        let pool = self.clone();
        let tick =
            (pool.inner.cfg.idle_ttl / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(tick);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // Tenants evicted before a crash or an unclean stop still have a -wal: tidy them.
            let dir = pool.inner.cfg.data_dir.clone();
            match tokio::task::spawn_blocking(move || crate::layout::tenants_with_wal(&dir)).await {
                Ok(Ok(left)) => {
                    tracing::info!(
                        tenants = left.len(),
                        "tenants with a WAL left on disk queued for tidy"
                    );
                    left.into_iter().for_each(|id| pool.inner.queue_tidy(id));
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot scan for WAL files left on disk"),
                Err(e) => tracing::warn!(error = %e, "cannot scan for WAL files left on disk"),
            }
            // `stop` is notified with notify_one, so a stop sent while a pass runs is kept and
            // seen at the next select; the flag check covers a stop sent before this task began.
            while !pool.inner.shutting_down.load(Ordering::Acquire) {
                tokio::select! {
                    _ = interval.tick() => pool.maintain_at(Instant::now()).await,
                    _ = pool.inner.stop.notified() => return,
                }
            }
        })
    }

    /// Stops maintenance, refuses new work, and closes every tenant cleanly, waiting up to
    /// `grace` for users (open streams) to finish. Tenants still in use after that stay as they
    /// are on disk (committed data is safe in the WAL).
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.shutting_down.store(true, Ordering::Release);
        self.inner.stop.notify_one();
        // Let a running maintenance pass finish; none starts after this.
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

    /// At shutdown, with every tenant closed and no new user admitted: checkpoint and close
    /// cleanly the tenants that LRU pressure closed fast, until `deadline`. What is left is found
    /// again by the scan at the next start.
    async fn drain_tidy(&self, deadline: Instant) {
        let mut tidied = 0;
        while Instant::now() < deadline {
            let Some(id) = self.inner.pop_tidy() else {
                break;
            };
            let path = self.path_of(&id);
            let cfg = self.inner.cfg.clone();
            let done = tokio::task::spawn_blocking(move || connection::tidy(&path, &cfg)).await;
            match done {
                Ok(Ok(())) | Ok(Err(StoreError::NotFound)) => tidied += 1,
                Ok(Err(e)) => tracing::warn!(tenant = %id, error = %e, "tidy at shutdown failed"),
                Err(e) => tracing::warn!(tenant = %id, error = %e, "tidy at shutdown failed"),
            }
        }
        let left = self.inner.tidy.lock().order.len();
        if tidied + left > 0 {
            tracing::info!(tidied, left, "shutdown: tidied fast-closed tenants");
        }
    }

    /// A user's hold on an open tenant, opening it (as a slot; connections open lazily) if it
    /// is closed. Waits while the tenant is being closed. Errors: `NotFound` (no file, or being
    /// deleted), `PoolExhausted`, `ShuttingDown`.
    async fn lease(&self, id: &TenantId) -> Result<Lease, StoreError> {
        let inner = &self.inner;
        let mut checked_file = false;
        loop {
            if inner.shutting_down.load(Ordering::Acquire) {
                return Err(StoreError::ShuttingDown);
            }
            let closing = {
                let mut map = inner.map.lock();
                match map.get(id) {
                    Some(Entry::Open(slot)) => return Ok(inner.lease_slot(slot.clone())),
                    Some(Entry::Deleting) => return Err(StoreError::NotFound),
                    Some(Entry::Closing(rx)) => Some(rx.clone()),
                    None if checked_file => return inner.open_slot(&mut map, id),
                    None => None,
                }
            };
            match closing {
                Some(rx) => wait_closed(rx).await,
                None => {
                    // Cold: check the file outside the lock; an unknown tenant costs one stat
                    // and never gets a file.
                    if !self.path_of(id).exists() {
                        return Err(StoreError::NotFound);
                    }
                    checked_file = true;
                }
            }
        }
    }

    /// Checkpoints (PASSIVE) every open tenant whose WAL passed its bound, on a reader
    /// connection: writers to that tenant never wait for it. At most `CHECKPOINTS_AT_ONCE` run
    /// together so a burst of big WALs cannot flood the disk. The next write after a complete
    /// checkpoint restarts the WAL from its beginning, so its size stays near the bound.
    async fn checkpoint_big_wals(&self) {
        let bound = i32::try_from(self.inner.cfg.wal_checkpoint_pages).unwrap_or(i32::MAX);
        let leases: Vec<Lease> = {
            let map = self.inner.map.lock();
            map.values()
                .filter_map(|e| match e {
                    Entry::Open(s) if s.wal_pages.load(Ordering::Relaxed) >= bound => Some(s),
                    _ => None,
                })
                .filter(|s| !s.checkpointing.swap(true, Ordering::AcqRel))
                .map(|s| self.inner.lease_slot(s.clone()))
                .collect()
        };
        for lease in leases {
            let inner = self.inner.clone();
            tokio::spawn(async move {
                let Ok(_permit) = inner.checkpoint_permits.clone().acquire_owned().await else {
                    return;
                };
                let done = tokio::task::spawn_blocking(move || {
                    let result = with_reader(&lease, |conn| {
                        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                            .map_err(StoreError::from)
                    });
                    (lease, result)
                })
                .await;
                let Ok((lease, result)) = done else { return };
                match result {
                    Ok(()) => {
                        lease.slot.wal_pages.store(0, Ordering::Relaxed);
                        inner.stats.checkpoints.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::warn!(tenant = %lease.slot.id, error = %e, "WAL checkpoint failed")
                    }
                }
                lease.slot.checkpointing.store(false, Ordering::Release);
            });
        }
    }

    async fn tidy_some(&self) -> usize {
        let mut done = 0;
        while done < TIDY_PER_PASS
            && self.inner.stats.open_tenants.load(Ordering::Relaxed) < self.inner.cfg.max_open / 2
        {
            let Some(id) = self.inner.pop_tidy() else {
                break;
            };
            if self.is_open(&id) {
                continue; // its idle close will be clean
            }
            let guard = match self.writer(&id).await {
                Ok(guard) => guard,
                Err(StoreError::ShuttingDown | StoreError::PoolExhausted) => {
                    self.inner.queue_tidy(id); // not now; shutdown or a later pass will
                    break;
                }
                Err(_) => continue,
            };
            let slot = guard.slot().clone();
            if let Ok((guard, Err(e))) = guard.run(connection::checkpoint).await {
                tracing::warn!(tenant = %id, error = %e, "tidy checkpoint failed");
                drop(guard);
            }
            if let Some(closing) = self.inner.take_if_unused(&slot) {
                let inner = self.inner.clone();
                run_blocking(move || inner.close_now(closing, CloseMode::Clean)).await;
                self.inner.stats.tidies.fetch_add(1, Ordering::Relaxed);
            }
            done += 1;
        }
        done
    }
}

impl Inner {
    fn now_ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_millis() as u64
    }

    fn lease_slot(self: &Arc<Self>, slot: Arc<Slot>) -> Lease {
        slot.users.fetch_add(1, Ordering::AcqRel);
        Lease {
            inner: self.clone(),
            slot,
        }
    }

    /// Adds a slot for `id` (whose file exists) under the map lock, evicting the least recently
    /// used idle tenant if the pool is full.
    fn open_slot(
        self: &Arc<Self>,
        map: &mut HashMap<TenantId, Entry>,
        id: &TenantId,
    ) -> Result<Lease, StoreError> {
        if self.stats.open_tenants.load(Ordering::Relaxed) >= self.cfg.max_open {
            let Some(victim) = lru_victim(map) else {
                self.stats
                    .rejected_pool_exhausted
                    .fetch_add(1, Ordering::Relaxed);
                return Err(StoreError::PoolExhausted);
            };
            self.stats.evictions.fetch_add(1, Ordering::Relaxed);
            self.queue_tidy(victim.id.clone());
            let closing = self.begin_close(map, victim);
            self.close_detached(closing, CloseMode::Fast);
        }
        let slot = Arc::new(Slot {
            id: id.clone(),
            path: tenant_path(&self.cfg.data_dir, id),
            writer: Arc::new(tokio::sync::Mutex::new(None)),
            readers: Mutex::new(Vec::new()),
            users: AtomicUsize::new(0),
            queued_writes: AtomicUsize::new(0),
            last_used_ms: AtomicU64::new(self.now_ms(Instant::now())),
            wal_pages: Arc::new(AtomicI32::new(0)),
            checkpointing: AtomicBool::new(false),
            migrated: AtomicBool::new(self.cfg.migrations.is_none()),
        });
        map.insert(id.clone(), Entry::Open(slot.clone()));
        self.stats.open_tenants.fetch_add(1, Ordering::Relaxed);
        self.stats.tenants_opened.fetch_add(1, Ordering::Relaxed);
        Ok(self.lease_slot(slot))
    }

    /// Marks an unused open slot `Closing` (under the map lock).
    fn begin_close(&self, map: &mut HashMap<TenantId, Entry>, slot: Arc<Slot>) -> Closing {
        let (done, marker) = watch::channel(());
        map.insert(slot.id.clone(), Entry::Closing(marker.clone()));
        self.stats.open_tenants.fetch_sub(1, Ordering::Relaxed);
        self.stats.closing_tenants.fetch_add(1, Ordering::AcqRel);
        Closing { slot, done, marker }
    }

    /// Closes a `Closing` slot on this (blocking) thread, then removes its map entry and wakes
    /// whoever waits to reopen the tenant.
    fn close_now(&self, closing: Closing, mode: CloseMode) {
        close_slot(&closing.slot, mode);
        let mut map = self.map.lock();
        if let Some(Entry::Closing(rx)) = map.get(&closing.slot.id) {
            if rx.same_channel(&closing.marker) {
                map.remove(&closing.slot.id);
            }
        }
        self.stats.closing_tenants.fetch_sub(1, Ordering::AcqRel);
        drop(map);
        drop(closing.done);
    }

    /// Marks every open slot with no user, idle since `now - idle_ttl`, as closing.
    fn take_idle(&self, now: Instant) -> Vec<Closing> {
        let cutoff = self
            .now_ms(now)
            .saturating_sub(self.cfg.idle_ttl.as_millis() as u64);
        let mut map = self.map.lock();
        let idle: Vec<Arc<Slot>> = map
            .values()
            .filter_map(|e| match e {
                Entry::Open(s)
                    if s.users.load(Ordering::Acquire) == 0
                        && s.last_used_ms.load(Ordering::Relaxed) <= cutoff =>
                {
                    Some(s.clone())
                }
                _ => None,
            })
            .collect();
        idle.into_iter()
            .map(|s| self.begin_close(&mut map, s))
            .collect()
    }

    /// Marks `slot` closing if it is still in the map and unused.
    fn take_if_unused(&self, slot: &Arc<Slot>) -> Option<Closing> {
        let mut map = self.map.lock();
        match map.get(&slot.id) {
            Some(Entry::Open(s))
                if Arc::ptr_eq(s, slot) && s.users.load(Ordering::Acquire) == 0 =>
            {
                Some(self.begin_close(&mut map, slot.clone()))
            }
            _ => None,
        }
    }

    /// After a failed first open (the file vanished): drop the slot so it is not reused.
    fn forget_if_unopened(&self, slot: &Arc<Slot>) {
        let mut map = self.map.lock();
        if let Some(Entry::Open(s)) = map.get(&slot.id) {
            if Arc::ptr_eq(s, slot) {
                map.remove(&slot.id);
                self.stats.open_tenants.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Closes a `Closing` slot on a blocking thread (inline if there is no runtime).
    fn close_detached(self: &Arc<Self>, closing: Closing, mode: CloseMode) {
        let inner = self.clone();
        let done = move || inner.close_now(closing, mode);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(done)),
            Err(_) => done(),
        }
    }

    fn queue_tidy(&self, id: TenantId) {
        let mut q = self.tidy.lock();
        if q.queued.insert(id.clone()) {
            q.order.push_back(id);
        }
    }

    fn pop_tidy(&self) -> Option<TenantId> {
        let mut q = self.tidy.lock();
        let id = q.order.pop_front()?;
        q.queued.remove(&id);
        Some(id)
    }
}

/// The least recently used open slot with no user, if any.
fn lru_victim(map: &HashMap<TenantId, Entry>) -> Option<Arc<Slot>> {
    map.values()
        .filter_map(|e| match e {
            Entry::Open(s) if s.users.load(Ordering::Acquire) == 0 => Some(s),
            _ => None,
        })
        .min_by_key(|s| s.last_used_ms.load(Ordering::Relaxed))
        .cloned()
}

/// Waits until a closing tenant's connections are closed.
async fn wait_closed(mut rx: watch::Receiver<()>) {
    // The sender never sends; `changed` returns when it is dropped after the close.
    let _ = rx.changed().await;
}

/// Runs `f` on one of the slot's reader connections (a pooled one, or a new one that is pooled
/// afterwards if there is room). Blocking: call on a blocking thread.
fn with_reader<R>(
    lease: &Lease,
    f: impl FnOnce(&Connection) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    let (slot, inner) = (&lease.slot, &lease.inner);
    let pooled = slot.readers.lock().pop();
    let conn = match pooled {
        Some(c) => c,
        None => {
            let c = connection::open_existing(&slot.path, Access::Read, &inner.cfg, None);
            let c = c.inspect_err(|_| inner.forget_if_unopened(slot))?;
            inner
                .stats
                .connections_opened
                .fetch_add(1, Ordering::Relaxed);
            c
        }
    };
    let result = f(&conn);
    let mut readers = slot.readers.lock();
    if readers.len() < inner.cfg.readers_per_tenant {
        readers.push(conn);
    } else {
        drop(readers);
        connection::close_fast(conn);
    }
    result
}

/// Closes every connection of a slot that has been removed from the map with no users.
fn close_slot(slot: &Slot, mode: CloseMode) {
    let close = match mode {
        CloseMode::Clean => connection::close_clean,
        CloseMode::Fast => connection::close_fast,
    };
    for reader in slot.readers.lock().drain(..) {
        close(reader);
    }
    match slot.writer.try_lock() {
        Ok(mut writer) => {
            if let Some(conn) = writer.take() {
                close(conn);
            }
        }
        Err(_) => tracing::error!(tenant = %slot.id, "closing a tenant whose writer is held"),
    }
}

fn create_file<F>(path: &std::path::Path, id: &TenantId, init: F) -> Result<(), StoreError>
where
    F: FnOnce(&Connection) -> rusqlite::Result<()>,
{
    let dir = path.parent().expect("tenant paths have a parent");
    std::fs::create_dir_all(dir)?;
    if path.exists() {
        return Err(StoreError::AlreadyExists);
    }
    let tmp = dir.join(format!(".{id}.{}.creating", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let made = connection::create_new(&tmp, init).and_then(|()| {
        // A hard link fails if the name exists: creation is atomic and never overwrites.
        std::fs::hard_link(&tmp, path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => StoreError::AlreadyExists,
            _ => StoreError::Io(e),
        })
    });
    let _ = std::fs::remove_file(&tmp);
    made?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

fn join_error(e: tokio::task::JoinError) -> StoreError {
    StoreError::Io(std::io::Error::other(format!("blocking task failed: {e}")))
}

async fn run_blocking(f: impl FnOnce() + Send + 'static) {
    if let Err(e) = tokio::task::spawn_blocking(f).await {
        tracing::error!(error = %e, "pool maintenance task failed");
    }
}

/// One user of a slot: keeps it open. Dropping it marks the tenant used now.
struct Lease {
    inner: Arc<Inner>,
    slot: Arc<Slot>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let now = self.inner.now_ms(Instant::now());
        self.slot.last_used_ms.store(now, Ordering::Relaxed);
        let before = self.slot.users.fetch_sub(1, Ordering::AcqRel);
        if before == 1 && self.inner.cfg.idle_ttl.is_zero() {
            // The seed's literal mode: close as soon as the last user is done.
            if let Some(slot) = self.inner.take_if_unused(&self.slot) {
                self.inner.stats.idle_closes.fetch_add(1, Ordering::Relaxed);
                self.inner.close_detached(slot, CloseMode::Clean);
            }
        }
    }
}

/// Exclusive use of one tenant's writer connection; the tenant stays open while it lives.
pub struct WriterGuard {
    // Field order matters: the connection lock must be released before the lease, whose drop
    // may close the tenant (and closing needs the lock free).
    conn: Option<OwnedMutexGuard<Option<Connection>>>,
    lease: Option<Lease>,
}

impl Drop for WriterGuard {
    /// A guard dropped in the middle of a transaction (a caller's bug, or a task cancelled at
    /// the wrong moment) must not leave that transaction open for the next writer: roll it back.
    fn drop(&mut self) {
        let tenant = self.lease.as_ref().map(|l| l.slot.id.clone());
        if let Some(conn) = self.conn.as_ref().and_then(|g| g.as_ref()) {
            if !conn.is_autocommit() {
                tracing::warn!(tenant = ?tenant, "writer released mid-transaction: rolled back");
                if let Err(e) = conn.execute_batch("ROLLBACK") {
                    tracing::error!(tenant = ?tenant, error = %e, "rollback failed");
                }
            }
        }
    }
}

impl WriterGuard {
    /// The tenant this guard writes to.
    pub fn tenant(&self) -> &TenantId {
        &self.slot().id
    }

    fn slot(&self) -> &Arc<Slot> {
        &self.lease.as_ref().expect("lease lives until drop").slot
    }

    /// Runs `f` on the writer connection on a blocking thread (opening the connection first if
    /// this is the tenant's first write since it was opened) and gives the guard back. Errors:
    /// `NotFound` if the file vanished, SQLite errors from opening.
    pub async fn run<R, F>(mut self, f: F) -> Result<(Self, R), StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> R + Send + 'static,
    {
        let lease = self.lease.take().expect("lease lives until drop");
        let mut conn = self.conn.take().expect("connection guard lives until drop");
        let (lease, conn, result) = tokio::task::spawn_blocking(move || {
            let opened = match conn.as_ref() {
                Some(_) => Ok(()),
                None => {
                    let inner = &lease.inner;
                    let pages = Some(lease.slot.wal_pages.clone());
                    open_writer(&lease.slot, &inner.cfg, pages)
                        .map(|c| {
                            inner
                                .stats
                                .connections_opened
                                .fetch_add(1, Ordering::Relaxed);
                            lease.slot.migrated.store(true, Ordering::Release);
                            *conn = Some(c);
                        })
                        .inspect_err(|_| inner.forget_if_unopened(&lease.slot))
                }
            };
            let result = opened.map(|()| f(conn.as_ref().expect("opened above")));
            (lease, conn, result)
        })
        .await
        .map_err(join_error)?;
        let result = result?;
        Ok((
            WriterGuard {
                conn: Some(conn),
                lease: Some(lease),
            },
            result,
        ))
    }
}

/// Opens a tenant's writer and brings its schema up to the configured migrations.
fn open_writer(
    slot: &Slot,
    cfg: &PoolConfig,
    pages: Option<Arc<AtomicI32>>,
) -> Result<Connection, StoreError> {
    let conn = connection::open_existing(&slot.path, Access::Write, cfg, pages)?;
    if let Some(set) = &cfg.migrations {
        match crate::migrate::apply(&conn, set, false)? {
            crate::migrate::Outcome::Failed {
                at,
                migration,
                error,
            } => {
                tracing::error!(tenant = %slot.id, at, %migration, %error, "tenant migration failed");
                connection::close_fast(conn);
                return Err(StoreError::MigrationFailed(format!("{migration}: {error}")));
            }
            crate::migrate::Outcome::Migrated { from, to } => {
                tracing::info!(tenant = %slot.id, from, to, "tenant migrated on open");
            }
            crate::migrate::Outcome::UpToDate(_) => {}
        }
    }
    Ok(conn)
}

/// Maps `SQLITE_FULL` to a quota or disk-full error, by comparing the file's size with its
/// quota. Call it on the connection that hit the error.
pub fn classify_full(conn: &Connection, err: StoreError) -> StoreError {
    if !matches!(err, StoreError::DiskFull) {
        return err;
    }
    let pages = conn.query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0));
    let max = conn.query_row("PRAGMA max_page_count", [], |r| r.get::<_, i64>(0));
    match (pages, max) {
        (Ok(p), Ok(m)) if p + 8 >= m => StoreError::QuotaExceeded,
        _ => StoreError::DiskFull,
    }
}
