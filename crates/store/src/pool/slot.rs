//! The registry of open tenants and the slot state machine.
//!
//! Each tenant id maps to at most one [`Entry`]: `Open` (a slot with its connections), `Closing`
//! (its connections are being closed; new users wait) or `Deleting`. A [`Lease`] is one user of
//! an open slot. `users` only rises under the map lock (`lease_slot`), and every removal of an
//! `Open` slot goes through `begin_close` under that lock after checking `users == 0`: a slot
//! with users is never removed, whatever failed while they held it. When `max_open` slots all
//! have users, a lease of another tenant waits for a slot's last user to leave (`slot_freed`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::Connection;
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

use super::place::{Wait, Waiting};
use super::{Inner, TenantPool};
use crate::connection;
use crate::error::StoreError;
use crate::layout::tenant_path;
use crate::name::TenantId;

pub(super) enum Entry {
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
pub(super) struct Closing {
    slot: Arc<Slot>,
    done: watch::Sender<()>,
    marker: watch::Receiver<()>,
}

pub(super) struct Slot {
    pub(super) id: TenantId,
    pub(super) path: PathBuf,
    pub(super) writer: Arc<tokio::sync::Mutex<Option<Connection>>>,
    /// Idle reader connections; with the ones in use, never more than `reader_permits` allows.
    pub(super) readers: Mutex<Vec<Connection>>,
    pub(super) reader_permits: Arc<Semaphore>,
    pub(super) users: AtomicUsize,
    pub(super) queued_writes: AtomicUsize,
    pub(super) queued_reads: AtomicUsize,
    pub(super) last_used_ms: AtomicU64,
    pub(super) wal_pages: Arc<AtomicI32>,
    pub(super) checkpointing: AtomicBool,
    /// The writer was opened and the tenant is at the configured schema version.
    pub(super) migrated: AtomicBool,
    /// The file vanished under the pool: close the slot as soon as its last user leaves.
    pub(super) gone: AtomicBool,
    /// Write guards released so far (read guards of exclusive locking not counted): a value
    /// read at one count is still what the file holds while the count is unchanged.
    pub(super) writes_released: AtomicU64,
    /// The token epoch and the `writes_released` it was read at (exclusive locking only).
    pub(super) epoch_memo: Mutex<Option<(u64, Option<String>)>>,
}

/// One place in a slot's write or read queue, given back on drop — also when the waiting
/// future is cancelled (a client that disconnects while queued).
pub(super) struct Queued<'a>(&'a AtomicUsize);

impl<'a> Queued<'a> {
    /// Joins the queue counted by `counter`; returns the guard and the count before joining.
    pub(super) fn join(counter: &'a AtomicUsize) -> (Self, usize) {
        let before = counter.fetch_add(1, Ordering::AcqRel);
        (Queued(counter), before)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How a closed tenant's connections are closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CloseMode {
    /// Checkpoint and delete `-wal`/`-shm`: the tenant is then just its `.db` file.
    Clean,
    /// Just close; the tenant is queued for a later tidy.
    Fast,
}

impl Slot {
    /// Notes that opening a connection failed with `err`: a vanished file marks the slot gone.
    pub(super) fn note_open_error(&self, err: &StoreError) {
        if matches!(err, StoreError::NotFound) {
            self.gone.store(true, Ordering::Release);
        }
    }
}

impl Inner {
    pub(super) fn now_ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_millis() as u64
    }

    /// A user's hold on an open tenant, opening it (as a slot; connections open lazily) if it
    /// is closed. Waits while the tenant is being closed and, with [`Wait::ForPlace`], while
    /// every open tenant is in use: up to `open_wait`, without a thread, woken when a tenant's
    /// last user leaves. Errors: `NotFound` (no file, or being deleted), `PoolExhausted` (still
    /// full after the wait), `ShuttingDown`.
    pub(super) async fn lease(
        self: &Arc<Self>,
        id: &TenantId,
        wait: Wait,
    ) -> Result<Lease, StoreError> {
        let mut checked_file = false;
        let mut waiting: Option<Waiting<'_>> = None;
        loop {
            if self.shutting_down.load(Ordering::Acquire) {
                return Err(StoreError::ShuttingDown);
            }
            // Made before the map is looked at, so a place freed after the look wakes it (a
            // wake-up with no waiter is kept for the next one).
            let freed = self.slot_freed.notified();
            let step = {
                let mut map = self.map.lock();
                match map.get(id) {
                    Some(Entry::Open(slot)) => return Ok(self.lease_slot(slot.clone())),
                    Some(Entry::Deleting) => return Err(StoreError::NotFound),
                    Some(Entry::Closing(rx)) => Step::AwaitClose(rx.clone()),
                    None if checked_file => match self.open_slot(&mut map, id) {
                        Some(lease) => return Ok(lease),
                        None => Step::Full,
                    },
                    None => Step::CheckFile,
                }
            };
            match step {
                Step::AwaitClose(rx) => wait_closed(rx).await,
                Step::CheckFile => {
                    // Cold: check the file outside the lock; an unknown tenant costs one stat
                    // and never gets a file.
                    if !tenant_path(&self.cfg.data_dir, id).exists() {
                        return Err(StoreError::NotFound);
                    }
                    checked_file = true;
                }
                Step::Full => {
                    let deadline = match (&waiting, wait) {
                        (_, Wait::No) => None,
                        (Some(w), Wait::ForPlace) => Some(w.deadline),
                        (None, Wait::ForPlace) => {
                            Some(waiting.insert(Waiting::start(self)).deadline)
                        }
                    };
                    let woken = match deadline {
                        Some(at) => tokio::time::timeout_at(at, freed).await.is_ok(),
                        None => false,
                    };
                    if !woken {
                        self.stats
                            .rejected_pool_exhausted
                            .fetch_add(1, Ordering::Relaxed);
                        return Err(StoreError::PoolExhausted);
                    }
                }
            }
        }
    }

    /// A new user of `slot`. Call with the map lock held (the invariant above).
    pub(super) fn lease_slot(self: &Arc<Self>, slot: Arc<Slot>) -> Lease {
        slot.users.fetch_add(1, Ordering::AcqRel);
        Lease {
            inner: self.clone(),
            slot,
        }
    }

    /// Adds a slot for `id` (whose file exists) under the map lock, evicting the least recently
    /// used idle tenant if the pool is full; `None` if every open tenant is in use.
    fn open_slot(
        self: &Arc<Self>,
        map: &mut HashMap<TenantId, Entry>,
        id: &TenantId,
    ) -> Option<Lease> {
        if self.stats.open_tenants.load(Ordering::Relaxed) >= self.cfg.max_open {
            let victim = super::eviction::lru_victim(map)?;
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
            reader_permits: Arc::new(Semaphore::new(self.cfg.reader_cap())),
            users: AtomicUsize::new(0),
            queued_writes: AtomicUsize::new(0),
            queued_reads: AtomicUsize::new(0),
            last_used_ms: AtomicU64::new(self.now_ms(Instant::now())),
            wal_pages: Arc::new(AtomicI32::new(0)),
            checkpointing: AtomicBool::new(false),
            migrated: AtomicBool::new(self.cfg.migrations.is_none()),
            gone: AtomicBool::new(false),
            writes_released: AtomicU64::new(0),
            epoch_memo: Mutex::new(None),
        });
        map.insert(id.clone(), Entry::Open(slot.clone()));
        self.stats.open_tenants.fetch_add(1, Ordering::Relaxed);
        self.stats.tenants_opened.fetch_add(1, Ordering::Relaxed);
        Some(self.lease_slot(slot))
    }

    /// Marks an unused open slot `Closing` (under the map lock).
    fn begin_close(&self, map: &mut HashMap<TenantId, Entry>, slot: Arc<Slot>) -> Closing {
        debug_assert_eq!(slot.users.load(Ordering::Acquire), 0, "closing a used slot");
        let (done, marker) = watch::channel(());
        map.insert(slot.id.clone(), Entry::Closing(marker.clone()));
        self.stats.open_tenants.fetch_sub(1, Ordering::Relaxed);
        self.stats.closing_tenants.fetch_add(1, Ordering::AcqRel);
        Closing { slot, done, marker }
    }

    /// Closes a `Closing` slot on this (blocking) thread, then removes its map entry and wakes
    /// whoever waits to reopen the tenant.
    pub(super) fn close_now(&self, closing: Closing, mode: CloseMode) {
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
    pub(super) fn take_idle(&self, now: Instant) -> Vec<Closing> {
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
    pub(super) fn take_if_unused(&self, slot: &Arc<Slot>) -> Option<Closing> {
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

    /// Closes a `Closing` slot on a blocking thread (inline if there is no runtime).
    pub(super) fn close_detached(self: &Arc<Self>, closing: Closing, mode: CloseMode) {
        let inner = self.clone();
        let done = move || inner.close_now(closing, mode);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(done)),
            Err(_) => done(),
        }
    }
}

impl TenantPool {
    /// The open slot of `id`, if any (for tests inside the crate).
    #[cfg(test)]
    pub(super) fn slot_of(&self, id: &TenantId) -> Option<Arc<Slot>> {
        match self.inner.map.lock().get(id) {
            Some(Entry::Open(s)) => Some(s.clone()),
            _ => None,
        }
    }
}

/// What `lease` does next after looking at the map.
enum Step {
    AwaitClose(watch::Receiver<()>),
    CheckFile,
    Full,
}

/// Waits until a closing tenant's connections are closed.
pub(super) async fn wait_closed(mut rx: watch::Receiver<()>) {
    // The sender never sends; `changed` returns when it is dropped after the close.
    let _ = rx.changed().await;
}

/// Closes every connection of a slot that has been removed from the map with no users.
pub(super) fn close_slot(slot: &Slot, mode: CloseMode) {
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

/// One user of a slot: keeps it open. Dropping it marks the tenant used now.
pub(super) struct Lease {
    pub(super) inner: Arc<Inner>,
    pub(super) slot: Arc<Slot>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let now = self.inner.now_ms(Instant::now());
        self.slot.last_used_ms.store(now, Ordering::Relaxed);
        let before = self.slot.users.fetch_sub(1, Ordering::AcqRel);
        if before != 1 {
            return;
        }
        // The slot can now be evicted: a request waiting for a place may take it.
        self.inner.slot_freed.notify_one();
        if self.slot.gone.load(Ordering::Acquire) {
            // Its file vanished: nothing to checkpoint, and the slot must not be reused.
            if let Some(slot) = self.inner.take_if_unused(&self.slot) {
                self.inner.close_detached(slot, CloseMode::Fast);
            }
        } else if self.inner.cfg.idle_ttl.is_zero() {
            // The seed's literal mode: close as soon as the last user is done.
            if let Some(slot) = self.inner.take_if_unused(&self.slot) {
                self.inner.stats.idle_closes.fetch_add(1, Ordering::Relaxed);
                self.inner.close_detached(slot, CloseMode::Clean);
            }
        }
    }
}
