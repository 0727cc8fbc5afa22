//! Eviction under LRU pressure and the tidy queue.
//!
//! When `max_open` tenants are open, opening another closes the least recently used idle one
//! *fast* (no checkpoint: the request that needs the room does not wait for a checkpoint) and
//! queues it for tidy. Tidying — checkpoint, then a clean close so the tenant is just its `.db`
//! file — happens in maintenance passes while fewer than `max_open / 2` tenants are open, and
//! at shutdown until the grace deadline.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::time::Instant;

use super::place::Wait;
use super::slot::{CloseMode, Entry, Slot};
use super::WriterGuard;
use super::{run_blocking, Inner, TenantPool};
use crate::connection;
use crate::error::StoreError;
use crate::name::TenantId;

/// Tenants tidied (checkpointed and closed after a fast eviction) per maintenance pass at most.
const TIDY_PER_PASS: usize = 64;

/// Fast-closed tenants waiting for a tidy, in eviction order, each once.
#[derive(Default)]
pub(super) struct TidyQueue {
    order: VecDeque<TenantId>,
    queued: HashSet<TenantId>,
}

/// The least recently used open slot with no user, if any.
pub(super) fn lru_victim(map: &HashMap<TenantId, Entry>) -> Option<Arc<Slot>> {
    map.values()
        .filter_map(|e| match e {
            Entry::Open(s) if s.users.load(Ordering::Acquire) == 0 => Some(s),
            _ => None,
        })
        .min_by_key(|s| s.last_used_ms.load(Ordering::Relaxed))
        .cloned()
}

impl Inner {
    pub(super) fn queue_tidy(&self, id: TenantId) {
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

impl TenantPool {
    /// Tidies queued tenants while there is room (fewer than `max_open / 2` open); returns how
    /// many were tidied.
    pub(super) async fn tidy_some(&self) -> usize {
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
            // Never waits for a place: the pool is half empty, and a later pass tries again.
            let lease = self.inner.lease(&id, Wait::No).await;
            let guard = match lease.map(WriterGuard::acquire) {
                Ok(acquire) => acquire.await,
                Err(e) => Err(e),
            };
            let guard = match guard {
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

    /// At shutdown, with every tenant closed and no new user admitted: checkpoint and close
    /// cleanly the tenants that LRU pressure closed fast, until `deadline`. What is left is found
    /// again by the scan at the next start.
    pub(super) async fn drain_tidy(&self, deadline: Instant) {
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
}
