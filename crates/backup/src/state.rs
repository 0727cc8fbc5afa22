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
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS uploads(
                tenant TEXT PRIMARY KEY,
                at_ms INTEGER NOT NULL,
                sha256 TEXT NOT NULL,
                bytes INTEGER NOT NULL) STRICT;
             CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;",
        )?;
        Ok(State { conn })
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
}
