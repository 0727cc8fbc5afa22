//! Putting a tenant's logged records into its file: one transaction for all of them, on the
//! tenant's writer, idempotent.
//!
//! - A record whose event id is already in the file is skipped (a replay after a crash between
//!   apply and log release stores nothing twice).
//! - A record from before the file was created (its LSN at or below the file's `created_lsn`:
//!   a deleted tenant of the same id) is skipped, so a re-created tenant never receives its
//!   predecessor's deliveries.
//! - Nothing is synced (`synchronous=OFF` for this one transaction, so neither the commit nor
//!   the header of a new WAL is fsynced): the log holds the records until a filesystem sync
//!   has made the files durable, and a power cut before that loses at most this transaction,
//!   never the file: the previous setting is restored right after the commit, so every
//!   checkpoint (the only step that writes the database file; automatic checkpoints are off)
//!   still syncs the WAL first.

use ingest::{Lsn, Record};
use rusqlite::{params, Connection, OptionalExtension};

use super::backlog::Backlog;
use crate::error::StoreError;
use crate::name::TenantId;

/// The `_tenantd_meta` key holding the log's last LSN when the file was created.
pub const CREATED_LSN_KEY: &str = "created_lsn";

/// Records in a new file that it was created when the log's last LSN was `lsn`. Errors: SQLite.
pub fn write_created_lsn(conn: &Connection, lsn: Lsn) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO _tenantd_meta(key, value) VALUES (?1, ?2)")?
        .execute(params![CREATED_LSN_KEY, lsn_value(lsn)])?;
    Ok(())
}

fn created_lsn(conn: &Connection) -> rusqlite::Result<i64> {
    let v: Option<i64> = conn
        .prepare_cached("SELECT value FROM _tenantd_meta WHERE key = ?1")?
        .query_row([CREATED_LSN_KEY], |r| r.get(0))
        .optional()?;
    Ok(v.unwrap_or(0))
}

fn lsn_value(lsn: Lsn) -> i64 {
    i64::try_from(lsn).unwrap_or(i64::MAX)
}

/// Applies the tenant's logged records that can go now (see [`Backlog::take_for_apply`]) on
/// `conn`, its writer, and marks them applied. Returns how many records were taken. Errors:
/// SQLite (nothing is marked; the records stay logged and are retried).
pub fn apply_pending(
    backlog: &Backlog,
    tenant: &TenantId,
    conn: &Connection,
) -> Result<usize, StoreError> {
    let records = backlog.take_for_apply(tenant);
    if records.is_empty() {
        return Ok(0);
    }
    let prev: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    let res = insert_all(conn, &records);
    conn.pragma_update(None, "synchronous", prev)?;
    let foreign = res?;
    let (gone, kept): (Vec<u64>, Vec<u64>) = records
        .iter()
        .map(|(seq, _, _)| *seq)
        .partition(|seq| foreign.binary_search(seq).is_ok());
    backlog.discard(tenant, &gone);
    backlog.mark_applied(tenant, &kept);
    Ok(records.len())
}

/// Inserts every record not yet in the file, in one transaction; returns the seqs of the
/// records that belong to an earlier tenant of the same id (not stored). Errors: SQLite.
pub fn insert_all(conn: &Connection, records: &[(u64, Lsn, Record)]) -> rusqlite::Result<Vec<u64>> {
    let tx = conn.unchecked_transaction()?;
    let floor = created_lsn(&tx)?;
    let mut foreign = Vec::new();
    for (seq, lsn, r) in records {
        if lsn_value(*lsn) <= floor {
            foreign.push(*seq);
            continue;
        }
        let n = insert(&tx, r, r.delivery_id.as_deref())?;
        if n == 0 && !has_event(&tx, r.event_id)? {
            // The id is free, so the delivery id is what clashed: the file has it from a
            // delivery older than the dedupe window. The event is still stored, without it.
            insert(&tx, r, None)?;
        }
    }
    tx.commit()?;
    Ok(foreign)
}

fn insert(conn: &Connection, r: &Record, delivery: Option<&str>) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO _tenantd_events
             (id, source, delivery_id, content_type, received_at_ms, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        r.event_id,
        r.source,
        delivery,
        r.content_type,
        r.received_at_ms,
        r.body
    ])
}

fn has_event(conn: &Connection, id: i64) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM _tenantd_events WHERE id = ?1")?
        .query_row([id], |_| Ok(()))
        .optional()
        .map(|r| r.is_some())
}
