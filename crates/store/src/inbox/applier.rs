//! The appliers: a background loop that moves logged records into their tenant files, then
//! tells the catalog, then drops them from the backlog; and the checkpoint that lets the log
//! go.
//!
//! A round: every tenant with logged records takes its writer (the pool applies the records
//! as it hands the writer over: one open, one transaction per tenant), at most
//! [`APPLY_CONCURRENCY`](super::APPLY_CONCURRENCY) at once; then ONE catalog transaction
//! records the round's delivery ids and next event ids; then those records leave the backlog.
//!
//! A checkpoint: the highest LSN with nothing at or below it left in the backlog is found; the
//! filesystem is synced (every tenant file and the catalog written since are durable), that
//! LSN is recorded in the catalog (synced) as where the next start's replay begins, and log
//! segments wholly at or below it are deleted.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{InboxError, Inner, Stuck, APPLY_CONCURRENCY};
use crate::catalog::meta::{APPLIED_LSN, RUNNING};
use crate::catalog::CatalogError;
use crate::error::StoreError;
use crate::name::TenantId;
use crate::pool::join_error;

/// How long a round waits for a tenant's writer before leaving it to the next round.
const WRITER_WAIT: Duration = Duration::from_millis(100);

/// How often delivery ids older than the dedupe window are pruned from the catalog.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Starts the loop; it ends when `inner.stop` is notified.
pub(super) fn spawn(inner: &Arc<Inner>) -> tokio::task::JoinHandle<()> {
    let inner = inner.clone();
    tokio::spawn(async move {
        let mut last_checkpoint = Instant::now();
        // The first pass prunes at once (a node that was down for days has a backlog of them).
        let mut last_prune: Option<Instant> = None;
        loop {
            let every = inner.cfg.checkpoint_interval;
            tokio::select! {
                () = inner.backlog.logged.notified() => {}
                () = tokio::time::sleep(every) => {}
                () = inner.stop.notified() => return,
            }
            if !inner.cfg.apply_delay.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(inner.cfg.apply_delay) => {}
                    () = inner.stop.notified() => return,
                }
            }
            round(&inner).await;
            if last_checkpoint.elapsed() >= every {
                last_checkpoint = Instant::now();
                if let Err(e) = checkpoint(&inner).await {
                    tracing::error!(error = %e, "ingest checkpoint failed; the log is kept");
                }
            }
            if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                last_prune = Some(Instant::now());
                if let Err(e) = prune(&inner).await {
                    tracing::error!(error = %e, "ingest: pruning old delivery ids failed");
                }
            }
        }
    })
}

/// Deletes delivery ids older than the dedupe window from the catalog; returns how many.
pub(super) async fn prune(inner: &Arc<Inner>) -> Result<u64, InboxError> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let before = now_ms.saturating_sub(inner.cfg.dedupe_window.as_millis());
    let before = i64::try_from(before).unwrap_or(i64::MAX);
    let inner2 = inner.clone();
    let n = tokio::task::spawn_blocking(move || inner2.catalog.prune_deliveries(before))
        .await
        .map_err(join_error)??;
    inner
        .counters
        .pruned_deliveries
        .fetch_add(n, Ordering::Relaxed);
    Ok(n)
}

/// One round; returns how many tenants it applied.
pub(super) async fn round(inner: &Arc<Inner>) -> usize {
    let tenants = inner.backlog.tenants_to_apply();
    let c = &inner.counters;
    c.apply_rounds.fetch_add(1, Ordering::Relaxed);
    c.last_round_tenants
        .store(tenants.len() as u64, Ordering::Relaxed);
    c.max_round_tenants
        .fetch_max(tenants.len() as u64, Ordering::Relaxed);
    let mut set = JoinSet::new();
    for tenant in tenants.iter().cloned() {
        if set.len() >= APPLY_CONCURRENCY {
            set.join_next().await;
        }
        let inner = inner.clone();
        set.spawn(async move { apply_tenant(&inner, tenant).await });
    }
    while set.join_next().await.is_some() {}
    if let Err(e) = catalog_step(inner).await {
        tracing::error!(error = %e, "ingest: catalog update failed; retried next round");
    }
    tenants.len()
}

/// Applies one tenant's logged records by taking its writer (the pool applies them; a tenant
/// opened only for this is left first in line for eviction). A writer
/// held longer than [`WRITER_WAIT`] (an open SQL transaction) is left for the next round, so
/// one busy tenant never holds up the others.
async fn apply_tenant(inner: &Arc<Inner>, tenant: TenantId) {
    let Ok(taken) = tokio::time::timeout(WRITER_WAIT, inner.pool.apply_backlog(&tenant)).await
    else {
        return;
    };
    match taken {
        Ok(()) => {}
        Err(StoreError::NotFound) => drop_tenant(inner, &tenant),
        Err(e) => {
            inner.counters.apply_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(tenant = %tenant, error = %e,
                "ingest: applying acknowledged deliveries failed; retried later");
            let why = match e {
                StoreError::QuotaExceeded => Stuck::Quota,
                StoreError::MigrationFailed(m) => Stuck::Migration(m),
                _ => Stuck::Other,
            };
            inner.backlog.note_failure(&tenant, why);
        }
    }
}

/// The tenant's file is gone: its backlog and catalog rows go too.
fn drop_tenant(inner: &Inner, tenant: &TenantId) {
    let n = inner.backlog.forget(tenant);
    inner
        .counters
        .dropped_records
        .fetch_add(n as u64, Ordering::Relaxed);
    if n > 0 {
        tracing::warn!(tenant = %tenant, records = n,
            "ingest: acknowledged deliveries dropped: the tenant's file no longer exists");
    }
    if let Err(e) = inner.catalog.delete_tenant(tenant) {
        tracing::error!(tenant = %tenant, error = %e, "ingest: catalog row not removed");
    }
}

/// Writes the applied records' deliveries and next ids to the catalog, then drops them from
/// the backlog. A tenant whose row is gone (deleted meanwhile) is dropped and the rest retried.
async fn catalog_step(inner: &Arc<Inner>) -> Result<(), InboxError> {
    for _ in 0..3 {
        let done = inner.backlog.catalog_updates();
        if done.is_empty() {
            return Ok(());
        }
        let updates: Vec<_> = done.iter().map(|(u, _)| u.clone()).collect();
        let records: usize = done.iter().map(|(_, n)| n).sum();
        let inner2 = inner.clone();
        let res = tokio::task::spawn_blocking(move || inner2.catalog.apply_batch(&updates))
            .await
            .map_err(join_error)?;
        match res {
            Ok(()) => {
                inner.backlog.catalogued(&done);
                inner
                    .counters
                    .applied_records
                    .fetch_add(records as u64, Ordering::Relaxed);
                return Ok(());
            }
            Err(CatalogError::UnknownTenant(t)) => drop_tenant(inner, &t),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Syncs the filesystem, records the applied position and releases the log up to it, if
/// anything moved since the last one.
pub(super) async fn checkpoint(inner: &Arc<Inner>) -> Result<(), InboxError> {
    let last = inner.log.stats().last_lsn;
    let upto = inner.backlog.released_upto(last);
    let applied = inner.catalog.meta(APPLIED_LSN)?.unwrap_or(0) as u64;
    // The backup may hold segments back until it has shipped them.
    let held = inner.release_hold.load(Ordering::Acquire);
    let first_held = inner.log.segments().get(1).map(|next| next - 1);
    if upto <= applied && first_held.is_none_or(|end| end > upto.min(held)) {
        return Ok(());
    }
    let inner2 = inner.clone();
    tokio::task::spawn_blocking(move || -> Result<(), InboxError> {
        if upto > applied {
            crate::sys::sync_filesystem(&inner2.cfg.data_dir).map_err(StoreError::Io)?;
            let value = i64::try_from(upto).unwrap_or(i64::MAX);
            inner2.catalog.set_meta_durably(APPLIED_LSN, value)?;
        }
        inner2
            .log
            .release(upto.min(held))
            .map_err(InboxError::from_log)
            .map(drop)
    })
    .await
    .map_err(join_error)??;
    inner.counters.checkpoints.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Rounds until nothing logged is left or `timeout` passes; true if the backlog is empty.
pub(super) async fn drain(inner: &Arc<Inner>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        round(inner).await;
        if inner.backlog.is_empty() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        // Records still appending finish within a batch; give them a moment.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The clean stop (see `Inbox::close`).
pub(super) async fn close(inner: &Arc<Inner>, grace: Duration) -> Result<(), InboxError> {
    if inner.closing.swap(true, Ordering::AcqRel) {
        return Ok(());
    }
    inner.stop.notify_one();
    let task = inner.task.lock().take();
    if let Some(task) = task {
        let _ = task.await;
    }
    let drained = drain(inner, grace).await;
    if !drained {
        tracing::warn!(
            records = inner.backlog.stats().records,
            "ingest: backlog not fully applied at shutdown; the next start replays it"
        );
    }
    checkpoint(inner).await?;
    let inner2 = inner.clone();
    tokio::task::spawn_blocking(move || -> Result<(), InboxError> {
        inner2.log.close().map_err(InboxError::from_log)?;
        inner2.catalog.set_meta_durably(RUNNING, 0)?;
        Ok(())
    })
    .await
    .map_err(join_error)?
}
