//! A look at one tenant file from outside the pool (`GET /admin/tenants/{id}`, `tenantd tenant
//! show`): events, sources, schema version and the last migration error, read on a connection
//! of its own. Nothing is migrated, the tenant is not counted as open, and the file is left as
//! it was (a clean close removes only `-wal`/`-shm` no other connection uses).

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use crate::config::PoolConfig;
use crate::connection::{self, Access};
use crate::error::StoreError;
use crate::{events, migrate, policy};

/// What [`inspect`] reports about a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSummary {
    /// Stored events.
    pub events: i64,
    /// Receive time of the newest event, ms since the Unix epoch.
    pub last_event_at_ms: Option<i64>,
    /// Configured webhook sources and their schemes (no secrets).
    pub hooks: Vec<(String, String)>,
    /// The last migration applied (0: none).
    pub schema_version: u32,
    /// The last migration failure recorded in the file, if the tenant is behind because of it.
    pub migration_error: Option<String>,
    /// The webhook policy (`open`, `configured`, `signed`), or `unreadable (…)` for a stored
    /// value ingest cannot parse (ingest then refuses every delivery).
    pub webhook_policy: String,
}

/// Reads the summary of the tenant file at `path` on a read-only connection outside the pool.
/// Errors: [`StoreError::NotFound`], SQLite.
pub fn inspect(path: &Path, cfg: &PoolConfig) -> Result<TenantSummary, StoreError> {
    let conn = connection::open_existing(path, Access::Read, cfg, None)?;
    let summary = summarize(&conn);
    connection::close_clean(conn);
    Ok(summary?)
}

/// The summary, read on `conn` (any connection to the tenant). Errors: SQLite.
pub(crate) fn summarize(conn: &Connection) -> rusqlite::Result<TenantSummary> {
    let (events, last_event_at_ms) = events::event_stats(conn)?;
    Ok(TenantSummary {
        events,
        last_event_at_ms,
        hooks: events::list_hooks(conn)?,
        schema_version: migrate::schema_version(conn)?,
        migration_error: conn
            .query_row(
                "SELECT value FROM _tenantd_meta WHERE key = ?1",
                [migrate::ERROR_KEY],
                |r| r.get(0),
            )
            .optional()?,
        webhook_policy: match policy::webhook_policy(conn)? {
            Ok(p) => p.as_str().to_owned(),
            Err(e) => format!("unreadable ({e})"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_a_new_file_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let cfg = PoolConfig::new(dir.path());
        assert!(matches!(inspect(&path, &cfg), Err(StoreError::NotFound)));
        connection::create_new(&path, events::init_schema).unwrap();
        let s = inspect(&path, &cfg).unwrap();
        assert_eq!(
            s,
            TenantSummary {
                events: 0,
                last_event_at_ms: None,
                hooks: vec![],
                schema_version: 0,
                migration_error: None,
                webhook_policy: "open".to_owned(),
            }
        );
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no -wal/-shm left behind: {left:?}");
    }

    #[test]
    fn reports_schema_version_and_the_recorded_migration_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        connection::create_new(&path, |conn| {
            events::init_schema(conn)?;
            conn.execute_batch(
                "INSERT INTO _tenantd_meta VALUES ('schema_version', 3);
                 INSERT INTO _tenantd_meta VALUES ('migration_error', '0004_x.sql: boom');",
            )
        })
        .unwrap();
        let s = inspect(&path, &PoolConfig::new(dir.path())).unwrap();
        assert_eq!(s.schema_version, 3);
        assert_eq!(s.migration_error.as_deref(), Some("0004_x.sql: boom"));
    }
}
