//! The catalog's node-wide values (`meta` table): how far the ingest log is applied and
//! durable, how many unclean starts the node has had, and whether it is running. Each write
//! here is synced at once whatever the durability mode: they are rare and the restart logic
//! trusts them.

use rusqlite::{params, OptionalExtension};

use super::{Catalog, CatalogError};

/// Every log record up to this LSN is in its tenant file and synced (replay starts after it).
pub const APPLIED_LSN: &str = "applied_lsn";
/// Unclean starts so far; event ids of a tenant start past `generation << 40` after one.
pub const GENERATION: &str = "generation";
/// 1 while a server runs on this data directory, 0 after a clean stop.
pub const RUNNING: &str = "running";

impl Catalog {
    /// A node-wide value, `None` if never set. Errors: `Corrupt`, SQLite.
    pub fn meta(&self, key: &str) -> Result<Option<i64>, CatalogError> {
        let conn = self.conn.lock();
        conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")
            .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
            .map_err(|e| self.fail(e))
    }

    /// Sets a node-wide value and syncs it to disk before returning (in either durability
    /// mode). Errors: `Corrupt`, `DiskFull`, SQLite.
    pub fn set_meta_durably(&self, key: &str, value: i64) -> Result<(), CatalogError> {
        let conn = self.conn.lock();
        let run = || -> rusqlite::Result<()> {
            conn.pragma_update(None, "synchronous", "FULL")?;
            let res = conn
                .prepare_cached(
                    "INSERT INTO meta(key, value) VALUES (?1, ?2)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                )
                .and_then(|mut s| s.execute(params![key, value]));
            let restore = conn.pragma_update(
                None,
                "synchronous",
                self.cfg.durability.synchronous_pragma(),
            );
            res?;
            restore
        };
        run().map_err(|e| self.fail(e))
    }
}
