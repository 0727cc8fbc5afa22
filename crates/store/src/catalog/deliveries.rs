//! The dedupe index and the appliers' writes: which delivery ids a tenant's source has seen
//! (with the event id each got), batches of new deliveries and next event ids written in one
//! transaction, and pruning of deliveries older than the dedupe window.
//!
//! The appliers write here after the records are in their tenant files, so a delivery in the
//! catalog is always in its tenant file too (rebuild relies on it). Applying a batch twice
//! (a replay after a crash) changes nothing: a delivery already present keeps its first event
//! id, and a next event id never goes down.

use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{Catalog, CatalogError};
use crate::name::{SourceName, TenantId};

/// Default dedupe window: Stripe and Standard-Webhooks senders retry for about 3 days.
pub const DEFAULT_DEDUPE_WINDOW: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Rows deleted per transaction by [`Catalog::prune_deliveries`], so the hot path never waits
/// behind one huge delete.
const PRUNE_CHUNK: i64 = 5_000;

/// A delivery the appliers stored in a tenant file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The webhook source.
    pub source: SourceName,
    /// The sender's delivery id.
    pub delivery_id: String,
    /// The event id the delivery was stored under.
    pub event_id: i64,
    /// Receive time, ms since the Unix epoch (the window is measured from it).
    pub received_at_ms: i64,
}

/// What one applied batch changes for one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogUpdate {
    /// The tenant (must have a row).
    pub tenant: TenantId,
    /// The id its next event gets; the row keeps the larger of this, its current value and
    /// one past the largest event id in `deliveries`.
    pub next_event_id: i64,
    /// Deliveries with a delivery id that the batch stored.
    pub deliveries: Vec<NewDelivery>,
}

impl Catalog {
    /// The event id stored for this delivery id of the tenant's source, if it is in the window
    /// (not yet pruned). Errors: `Corrupt`, SQLite.
    pub fn delivery(
        &self,
        id: &TenantId,
        source: &SourceName,
        delivery_id: &str,
    ) -> Result<Option<i64>, CatalogError> {
        let conn = self.conn.lock();
        conn.prepare_cached(
            "SELECT event_id FROM deliveries
             WHERE tenant = ?1 AND source = ?2 AND delivery_id = ?3",
        )
        .and_then(|mut s| {
            s.query_row(params![id.as_str(), source.as_str(), delivery_id], |r| {
                r.get(0)
            })
            .optional()
        })
        .map_err(|e| self.fail(e))
    }

    /// Writes every update in ONE transaction: all of it or nothing. Errors: `UnknownTenant`
    /// (a tenant without a row; nothing is written), `Corrupt`, `DiskFull`, SQLite.
    ///
    /// The commit is not synced (`synchronous=NORMAL` for it, in either mode: WAL stays
    /// consistent through a power cut): the ingest log still holds every record the batch came
    /// from, and the log is released only after a filesystem sync (see `store::inbox`).
    pub fn apply_batch(&self, updates: &[CatalogUpdate]) -> Result<(), CatalogError> {
        let mut conn = self.conn.lock();
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| self.fail(e))?;
        let res = write_batch(&mut conn, updates);
        let restore = conn.pragma_update(
            None,
            "synchronous",
            self.cfg.durability.synchronous_pragma(),
        );
        match res {
            Ok(Ok(())) => restore.map_err(|e| self.fail(e)),
            Ok(Err(i)) => Err(CatalogError::UnknownTenant(updates[i].tenant.clone())),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Deletes deliveries received before `older_than_ms` (ms since the Unix epoch), in chunks
    /// so other calls interleave; returns how many went. Errors: `Corrupt`, `DiskFull`, SQLite.
    pub fn prune_deliveries(&self, older_than_ms: i64) -> Result<u64, CatalogError> {
        let mut total = 0u64;
        loop {
            let conn = self.conn.lock();
            let n = conn
                .prepare_cached(
                    "DELETE FROM deliveries WHERE (tenant, source, delivery_id) IN (
                         SELECT tenant, source, delivery_id FROM deliveries
                         WHERE received_at_ms < ?1 LIMIT ?2)",
                )
                .and_then(|mut s| s.execute(params![older_than_ms, PRUNE_CHUNK]))
                .map_err(|e| self.fail(e))?;
            drop(conn);
            total += n as u64;
            if (n as i64) < PRUNE_CHUNK {
                return Ok(total);
            }
        }
    }
}

/// All of `updates` in one transaction; `Err(i)` (nothing written) if `updates[i]`'s tenant
/// has no row.
fn write_batch(
    conn: &mut Connection,
    updates: &[CatalogUpdate],
) -> rusqlite::Result<Result<(), usize>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for (i, update) in updates.iter().enumerate() {
        if !apply_one(&tx, update)? {
            // Dropping `tx` rolls back everything written so far.
            return Ok(Err(i));
        }
    }
    tx.commit()?;
    Ok(Ok(()))
}

/// One tenant's part of a batch; false if the tenant has no row.
fn apply_one(conn: &Connection, update: &CatalogUpdate) -> rusqlite::Result<bool> {
    let past_deliveries = update
        .deliveries
        .iter()
        .map(|d| d.event_id.saturating_add(1))
        .max()
        .unwrap_or(0);
    let next = update.next_event_id.max(past_deliveries);
    let n = conn
        .prepare_cached("UPDATE tenants SET next_event_id = max(next_event_id, ?2) WHERE id = ?1")?
        .execute(params![update.tenant.as_str(), next])?;
    if n == 0 {
        return Ok(false);
    }
    let mut insert = conn.prepare_cached(
        "INSERT INTO deliveries(tenant, source, delivery_id, event_id, received_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(tenant, source, delivery_id) DO NOTHING",
    )?;
    for d in &update.deliveries {
        insert.execute(params![
            update.tenant.as_str(),
            d.source.as_str(),
            d.delivery_id,
            d.event_id,
            d.received_at_ms
        ])?;
    }
    Ok(true)
}
