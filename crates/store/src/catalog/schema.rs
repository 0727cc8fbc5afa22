//! The catalog file's settings and tables, and the check that a file is a catalog this build
//! can use.
//!
//! The file is tagged with `PRAGMA application_id` and versioned with `PRAGMA user_version`, so
//! a stray SQLite file or one from another catalog schema is refused with a clear error instead
//! of being read as an empty catalog.

use std::path::Path;

use rusqlite::Connection;

use super::error::CatalogError;
use crate::config::Durability;

/// `PRAGMA application_id` of a catalog file ("tdct").
pub const APPLICATION_ID: i64 = 0x7464_6374;
/// The catalog schema this build reads and writes.
pub const SCHEMA_VERSION: i64 = 1;

const TABLES: &str = "
    CREATE TABLE tenants(
        id TEXT PRIMARY KEY,
        next_event_id INTEGER NOT NULL,
        token_epoch TEXT,
        webhook_policy TEXT NOT NULL) STRICT, WITHOUT ROWID;
    CREATE TABLE hooks(
        tenant TEXT NOT NULL,
        source TEXT NOT NULL,
        scheme TEXT NOT NULL,
        secret TEXT,
        PRIMARY KEY (tenant, source)) STRICT, WITHOUT ROWID;
    CREATE TABLE deliveries(
        tenant TEXT NOT NULL,
        source TEXT NOT NULL,
        delivery_id TEXT NOT NULL,
        event_id INTEGER NOT NULL,
        received_at_ms INTEGER NOT NULL,
        PRIMARY KEY (tenant, source, delivery_id)) STRICT, WITHOUT ROWID;
    CREATE INDEX deliveries_age ON deliveries(received_at_ms);
    CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT, WITHOUT ROWID;";

/// Applies the connection settings: no busy wait, exclusive locking (the WAL index lives in heap memory, no
/// `-shm` file, and a second opener is refused), WAL, `synchronous` per `durability`, a page
/// cache of `cache_kib`, no memory mapping. Errors: as [`CatalogError::from_sqlite`].
pub fn configure(
    conn: &Connection,
    path: &Path,
    durability: Durability,
    cache_kib: u32,
) -> Result<(), CatalogError> {
    let fail = |e| CatalogError::from_sqlite(path, e);
    // The node's only connection never waits for a lock: busy means another process.
    conn.busy_timeout(std::time::Duration::ZERO).map_err(fail)?;
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
        .map_err(fail)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(fail)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(CatalogError::Locked(path.to_owned()));
    }
    conn.pragma_update(None, "synchronous", durability.synchronous_pragma())
        .map_err(fail)?;
    conn.pragma_update(None, "cache_size", -i64::from(cache_kib))
        .map_err(fail)?;
    conn.pragma_update(None, "mmap_size", 0).map_err(fail)?;
    conn.pragma_update(None, "trusted_schema", false)
        .map_err(fail)?;
    Ok(())
}

/// Creates the tables in a new (empty) file, or checks that an existing one is a catalog of
/// [`SCHEMA_VERSION`]. Errors: `NotACatalog`, `Version`, `Corrupt`, SQLite.
pub fn ensure(conn: &mut Connection, path: &Path) -> Result<(), CatalogError> {
    let fail = |e| CatalogError::from_sqlite(path, e);
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(fail)?;
    let app: i64 = tx
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(fail)?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(fail)?;
    let objects: i64 = tx
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .map_err(fail)?;
    if app == 0 && version == 0 && objects == 0 {
        tx.execute_batch(TABLES).map_err(fail)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(fail)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(fail)?;
        return tx.commit().map_err(fail);
    }
    if app != APPLICATION_ID {
        return Err(CatalogError::NotACatalog(path.to_owned()));
    }
    if version != SCHEMA_VERSION {
        return Err(CatalogError::Version {
            path: path.to_owned(),
            found: version,
            expected: SCHEMA_VERSION,
        });
    }
    Ok(())
}
