//! `<data>/backup.db`: the last snapshot uploaded per tenant. The start scan compares tenant
//! files against it (a change a crash took out of memory is caught), a round skips an upload
//! whose content is already there, and `tenantd backup status` reads it (also while the server
//! runs: WAL, readers do not block the writer).

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::BackupError;

/// The file name in the data dir.
pub const STATE_FILE: &str = "backup.db";

/// The last upload of one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The tenant.
    pub tenant: String,
    /// When its snapshot was taken, Unix ms.
    pub at_ms: u64,
    /// sha256 of the uncompressed file.
    pub sha256: String,
    /// Bytes uploaded (compressed).
    pub bytes: u64,
}

/// The state file.
pub struct State {
    conn: Connection,
}

/// The state file's path in `data_dir`.
pub fn state_path(data_dir: &Path) -> PathBuf {
    data_dir.join(STATE_FILE)
}

impl State {
    /// Opens (creating) the state file in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, BackupError> {
        let conn = Connection::open(state_path(data_dir))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // A row per tenant, read once per tenant at a start: a small cache is enough, and an
        // idle node keeps it.
        conn.pragma_update(None, "cache_size", -256)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS uploads(
                tenant TEXT PRIMARY KEY,
                at_ms INTEGER NOT NULL,
                sha256 TEXT NOT NULL,
                bytes INTEGER NOT NULL) STRICT;
             CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;",
        )?;
        // When a snapshot last found the tenant's content already in the bucket (added after
        // the first version of the file).
        let has_checked = conn
            .prepare("SELECT 1 FROM pragma_table_info('uploads') WHERE name = 'checked_ms'")?
            .exists([])?;
        if !has_checked {
            conn.execute_batch(
                "ALTER TABLE uploads ADD COLUMN checked_ms INTEGER NOT NULL DEFAULT 0",
            )?;
        }
        Ok(State { conn })
    }

    /// Notes that a snapshot of `tenant` taken at `at_ms` found its content already uploaded.
    pub fn checked(&self, tenant: &str, at_ms: u64) -> Result<(), BackupError> {
        self.conn.execute(
            "UPDATE uploads SET checked_ms = max(checked_ms, ?2) WHERE tenant = ?1",
            params![tenant, at_ms as i64],
        )?;
        Ok(())
    }

    /// The last time `tenant`'s content was known to be in the bucket: its last upload, or a
    /// later snapshot that found it unchanged (what the start scan compares file times with).
    pub fn in_bucket_as_of(&self, tenant: &str) -> Result<Option<u64>, BackupError> {
        let v: Option<i64> = self
            .conn
            .query_row(
                "SELECT max(at_ms, checked_ms) FROM uploads WHERE tenant = ?1",
                [tenant],
                |r| r.get(0),
            )
            .optional()?;
        Ok(v.map(|v| v as u64))
    }

    /// Records `u` as its tenant's last upload.
    pub fn record(&self, u: &Upload) -> Result<(), BackupError> {
        self.conn.execute(
            "INSERT INTO uploads(tenant, at_ms, sha256, bytes) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(tenant) DO UPDATE SET at_ms = ?2, sha256 = ?3, bytes = ?4",
            params![u.tenant, u.at_ms as i64, u.sha256, u.bytes as i64],
        )?;
        Ok(())
    }

    /// A node-wide value (the shipped LSN), if set.
    pub fn meta(&self, key: &str) -> Result<Option<u64>, BackupError> {
        let v: Option<i64> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?;
        Ok(v.map(|v| v as u64))
    }

    /// Sets a node-wide value.
    pub fn set_meta(&self, key: &str, value: u64) -> Result<(), BackupError> {
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = ?2",
            params![key, value as i64],
        )?;
        Ok(())
    }

    /// The last upload of `tenant`, if any.
    pub fn get(&self, tenant: &str) -> Result<Option<Upload>, BackupError> {
        Ok(self
            .conn
            .query_row(
                "SELECT tenant, at_ms, sha256, bytes FROM uploads WHERE tenant = ?1",
                [tenant],
                row,
            )
            .optional()?)
    }

    /// Every tenant's last upload, by tenant.
    pub fn all(&self) -> Result<Vec<Upload>, BackupError> {
        let mut stmt = self
            .conn
            .prepare("SELECT tenant, at_ms, sha256, bytes FROM uploads ORDER BY tenant")?;
        let rows = stmt.query_map([], row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Upload> {
    Ok(Upload {
        tenant: r.get(0)?,
        at_ms: r.get::<_, i64>(1)? as u64,
        sha256: r.get(2)?,
        bytes: r.get::<_, i64>(3)? as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_replace_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let up = |t: &str, at| Upload {
            tenant: t.into(),
            at_ms: at,
            sha256: "ab".into(),
            bytes: 7,
        };
        let s = State::open(dir.path()).unwrap();
        s.record(&up("b", 1)).unwrap();
        s.record(&up("a", 2)).unwrap();
        s.record(&up("b", 3)).unwrap();
        drop(s);
        let s = State::open(dir.path()).unwrap();
        assert_eq!(s.get("b").unwrap(), Some(up("b", 3)));
        assert_eq!(s.get("c").unwrap(), None);
        assert_eq!(s.all().unwrap(), vec![up("a", 2), up("b", 3)]);
    }

    /// A snapshot that found the content already uploaded moves the time the start scan
    /// compares with; a file of the first version (no `checked_ms`) gains the column.
    #[test]
    fn an_unchanged_snapshot_counts_as_in_the_bucket_and_old_files_migrate() {
        let dir = tempfile::tempdir().unwrap();
        let old = Connection::open(state_path(dir.path())).unwrap();
        old.execute_batch(
            "CREATE TABLE uploads(tenant TEXT PRIMARY KEY, at_ms INTEGER NOT NULL,
               sha256 TEXT NOT NULL, bytes INTEGER NOT NULL) STRICT;
             INSERT INTO uploads VALUES ('a', 10, 'ab', 7);",
        )
        .unwrap();
        drop(old);
        let s = State::open(dir.path()).unwrap();
        assert_eq!(s.in_bucket_as_of("a").unwrap(), Some(10));
        s.checked("a", 50).unwrap();
        s.checked("a", 20).unwrap();
        assert_eq!(s.in_bucket_as_of("a").unwrap(), Some(50));
        s.checked("nobody", 50).unwrap();
        assert_eq!(s.in_bucket_as_of("nobody").unwrap(), None);
        s.record(&Upload {
            tenant: "a".into(),
            at_ms: 80,
            sha256: "cd".into(),
            bytes: 9,
        })
        .unwrap();
        assert_eq!(s.in_bucket_as_of("a").unwrap(), Some(80));
    }
}
