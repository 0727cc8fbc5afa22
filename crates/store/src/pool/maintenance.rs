//! Maintenance: the pass and the background loop that runs it.
//!
//! One pass closes idle tenants cleanly, schedules background WAL checkpoints and tidies
//! fast-closed tenants while there is room. The loop is owned by the pool: `TenantPool::open`
//! starts it (unless `PoolConfig::maintenance` is off, for tests that call `maintain_at`),
//! `shutdown` stops it and waits for it, and it ends by itself once every pool handle is gone
//! (it holds only a weak reference between passes).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use rusqlite::Connection;
use tokio::time::Instant;

use super::slot::{CloseMode, Entry, Lease, Slot};
use super::{reader, run_blocking, Inner, TenantPool};
use crate::error::StoreError;
use crate::sys;

impl TenantPool {
    /// One maintenance pass as of `now`: close idle tenants cleanly, schedule WAL checkpoints,
    /// tidy fast-closed tenants while there is room. The background loop calls this; tests call
    /// it with a `now` in the future instead of sleeping. Does nothing once shutdown began.
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
        self.checkpoint_big_wals();
        let tidied = self.tidy_some().await;
        if closed + tidied > 0 {
            run_blocking(sys::trim_heap).await;
        }
    }

    /// Checkpoints (PASSIVE) every open tenant whose WAL passed its bound, on a reader
    /// connection: writers to that tenant never wait for it (in exclusive locking the tenant's
    /// one connection, the writer, runs it between writes: a second connection would be
    /// refused by the lock). At most `CHECKPOINTS_AT_ONCE` run
    /// together so a burst of big WALs cannot flood the disk. The next write after a complete
    /// checkpoint restarts the WAL from its beginning, so its size stays near the bound.
    fn checkpoint_big_wals(&self) {
        let bound = i32::try_from(self.inner.cfg.wal_checkpoint_pages).unwrap_or(i32::MAX);
        let jobs: Vec<(Lease, CheckpointClaim)> = {
            let map = self.inner.map.lock();
            map.values()
                .filter_map(|e| match e {
                    Entry::Open(s) if s.wal_pages.load(Ordering::Relaxed) >= bound => Some(s),
                    _ => None,
                })
                .filter_map(CheckpointClaim::take)
                .map(|claim| (self.inner.lease_slot(claim.slot.clone()), claim))
                .collect()
        };
        for (lease, claim) in jobs {
            spawn_checkpoint(self.inner.clone(), lease, claim, passive_checkpoint);
        }
    }
}

fn passive_checkpoint(conn: &Connection) -> Result<(), StoreError> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
    Ok(())
}

/// A slot's claim on its one background checkpoint; dropping it (on every path: success,
/// error, panic, cancellation) lets the next pass schedule another.
struct CheckpointClaim {
    slot: Arc<Slot>,
}

impl CheckpointClaim {
    /// Claims `slot`'s checkpoint, unless one is already scheduled or running.
    fn take(slot: &Arc<Slot>) -> Option<Self> {
        (!slot.checkpointing.swap(true, Ordering::AcqRel))
            .then(|| CheckpointClaim { slot: slot.clone() })
    }
}

impl Drop for CheckpointClaim {
    fn drop(&mut self) {
        self.slot.checkpointing.store(false, Ordering::Release);
    }
}

/// Runs `job` on a reader of the leased slot (its writer in exclusive locking) as its own task,
/// under a checkpoint permit and a reader permit.
fn spawn_checkpoint(
    inner: Arc<Inner>,
    lease: Lease,
    claim: CheckpointClaim,
    job: fn(&Connection) -> Result<(), StoreError>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(_permit) = inner.checkpoint_permits.clone().acquire_owned().await else {
            return;
        };
        let id = lease.slot.id.clone();
        let slot = lease.slot.clone();
        match reader::run(lease, move |conn| {
            let _claim = claim;
            job(conn)
        })
        .await
        {
            Ok(()) => {
                slot.wal_pages.store(0, Ordering::Relaxed);
                inner.stats.checkpoints.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(tenant = %id, error = %e, "WAL checkpoint failed"),
        }
    })
}

/// Starts the maintenance loop of `inner`'s pool (needs a tokio runtime).
pub(super) fn start(inner: &Arc<Inner>) -> tokio::task::JoinHandle<()> {
    let weak: Weak<Inner> = Arc::downgrade(inner);
    let stop = inner.stop.clone();
    let dir = inner.cfg.data_dir.clone();
    let tick = (inner.cfg.idle_ttl / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    tokio::spawn(async move {
        // Tenants evicted before a crash or an unclean stop still have a -wal: tidy them.
        match tokio::task::spawn_blocking(move || crate::layout::tenants_with_wal(&dir)).await {
            Ok(Ok(left)) => {
                tracing::info!(
                    tenants = left.len(),
                    "tenants with a WAL left on disk queued for tidy"
                );
                let Some(inner) = weak.upgrade() else { return };
                left.into_iter().for_each(|id| inner.queue_tidy(id));
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot scan for WAL files left on disk"),
            Err(e) => tracing::warn!(error = %e, "cannot scan for WAL files left on disk"),
        }
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // `stop` is notified with notify_one, so a stop sent while a pass runs is kept and
            // seen here; the flag check covers a stop sent before this task began.
            tokio::select! {
                _ = interval.tick() => {}
                _ = stop.notified() => return,
            }
            let Some(inner) = weak.upgrade() else { return };
            if inner.shutting_down.load(Ordering::Acquire) {
                return;
            }
            TenantPool { inner }.maintain_at(Instant::now()).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PoolConfig, TenantId};

    fn pool(dir: &tempfile::TempDir, maintenance: bool) -> TenantPool {
        let mut cfg = PoolConfig::new(dir.path());
        cfg.maintenance = maintenance;
        TenantPool::open(cfg).unwrap()
    }

    #[tokio::test]
    async fn regression_panicked_checkpoint_leaves_checkpointing_set() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(&dir, false);
        let id = TenantId::parse("ckpt").unwrap();
        pool.create(&id, crate::events::init_schema).await.unwrap();
        pool.write(&id, |c| Ok(c.execute_batch("CREATE TABLE t(x)")?))
            .await
            .unwrap();
        let slot = pool.slot_of(&id).unwrap();
        let claim = CheckpointClaim::take(&slot).unwrap();
        let lease = {
            let _map = pool.inner.map.lock();
            pool.inner.lease_slot(slot.clone())
        };
        let task = spawn_checkpoint(pool.inner.clone(), lease, claim, |_| {
            panic!("checkpoint blew up")
        });
        task.await.unwrap();
        assert!(
            !slot.checkpointing.load(Ordering::Acquire),
            "a panicked checkpoint must release its claim"
        );
        assert!(
            CheckpointClaim::take(&slot).is_some(),
            "the next pass can checkpoint"
        );
        assert_eq!(
            slot.users.load(Ordering::Acquire),
            0,
            "its lease was released"
        );
    }

    #[tokio::test]
    async fn the_maintenance_loop_ends_when_every_handle_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(&dir, true);
        let weak = Arc::downgrade(&pool.inner);
        drop(pool);
        // The loop holds only a weak reference between passes, so the pool is freed.
        for _ in 0..500 {
            if weak.upgrade().is_none() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the maintenance loop kept the pool alive");
    }
}
