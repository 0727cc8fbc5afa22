//! The tenant's token epoch: a random value in `_tenantd_meta` (key `token_epoch`) that every
//! tenant token carries. It is written when the tenant file is created, so a tenant deleted and
//! created again under the same id gets a new one, and replaced on revocation, so every token
//! issued before stops working without rotating the node's key. Files created before epochs
//! existed get one on first use (`ensure`).

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use crate::config::PoolConfig;
use crate::connection::{self, Access};
use crate::error::StoreError;

/// The `_tenantd_meta` key holding the epoch.
pub const EPOCH_KEY: &str = "token_epoch";

/// 128 random bits from SQLite's CSPRNG, as 32 hex digits.
const NEW_EPOCH: &str = "lower(hex(randomblob(16)))";

/// The stored epoch, if the file has one. Errors: SQLite.
pub fn read(conn: &Connection) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT value FROM _tenantd_meta WHERE key = ?1")?
        .query_row([EPOCH_KEY], |r| r.get(0))
        .optional()
}

/// The stored epoch, writing a new one first if the file has none (safe against a concurrent
/// writer: the first one wins). Needs a writable connection. Errors: SQLite.
pub fn ensure(conn: &Connection) -> rusqlite::Result<String> {
    if let Some(e) = read(conn)? {
        return Ok(e);
    }
    conn.execute(
        &format!("INSERT OR IGNORE INTO _tenantd_meta(key, value) VALUES (?1, {NEW_EPOCH})"),
        [EPOCH_KEY],
    )?;
    read(conn)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
}

/// Replaces the epoch with a new random one: every token issued before is refused from now on.
/// Needs the tenant's writer. Errors: SQLite.
pub fn renew(conn: &Connection) -> rusqlite::Result<String> {
    conn.execute(
        &format!(
            "INSERT INTO _tenantd_meta(key, value) VALUES (?1, {NEW_EPOCH})
             ON CONFLICT(key) DO UPDATE SET value = excluded.value"
        ),
        [EPOCH_KEY],
    )?;
    read(conn)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
}

/// The epoch of the tenant file at `path`, for a process outside the server (`tenantd token
/// create`): reads it on a read-only connection; only a file that predates epochs is written
/// (once). Never creates the file and runs no migration. Errors: [`StoreError::NotFound`],
/// SQLite.
pub fn ensure_in_file(path: &Path, cfg: &PoolConfig) -> Result<String, StoreError> {
    let conn = connection::open_existing(path, Access::Read, cfg, None)?;
    let found = read(&conn);
    connection::close_clean(conn);
    if let Some(epoch) = found? {
        return Ok(epoch);
    }
    let conn = connection::open_existing(path, Access::Write, cfg, None)?;
    let epoch = ensure(&conn);
    connection::close_clean(conn);
    Ok(epoch?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE _tenantd_meta(key TEXT PRIMARY KEY, value ANY) STRICT")
            .unwrap();
        conn
    }

    #[test]
    fn ensure_is_stable_and_renew_changes_it() {
        let conn = tenant();
        assert_eq!(read(&conn).unwrap(), None);
        let first = ensure(&conn).unwrap();
        assert_eq!(first.len(), 32);
        assert_eq!(ensure(&conn).unwrap(), first);
        let second = renew(&conn).unwrap();
        assert_ne!(second, first);
        assert_eq!(read(&conn).unwrap(), Some(second));
    }
}
