//! Migrating one tenant: its schema version, the records of applied migrations (name and
//! checksum) checked against the set, and the pending migrations in one transaction.

use rusqlite::{Connection, OptionalExtension};

use super::set::MigrationSet;

const VERSION_KEY: &str = "schema_version";
/// The `_tenantd_meta` key a failed migration is recorded under (cleared by a success).
pub(crate) const ERROR_KEY: &str = "migration_error";
/// The reserved table recording each applied migration's name and checksum.
pub const RECORDS_TABLE: &str = "_tenantd_migrations";

/// A tenant's schema version (0 if never migrated).
pub fn schema_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row(
        "SELECT value FROM _tenantd_meta WHERE key = ?1",
        [VERSION_KEY],
        |r| r.get(0),
    )
    .optional()
    .map(Option::unwrap_or_default)
}

/// What happened to one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Already at the target version.
    UpToDate(u32),
    /// Migrated (or, in a dry run, would migrate) from one version to another.
    Migrated {
        /// Version before.
        from: u32,
        /// Version after.
        to: u32,
    },
    /// The tenant's recorded migrations disagree with the set; nothing was run.
    Mismatch(Mismatch),
    /// A migration failed; everything was rolled back.
    Failed {
        /// The version the tenant stays at.
        at: u32,
        /// The migration that failed.
        migration: String,
        /// SQLite's error.
        error: String,
    },
}

/// Why a tenant's applied migrations do not match a migration set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// A migration the tenant applied has different SQL in the set now.
    #[error(
        "migration {version} was applied as {applied_name} (sha256 {applied_checksum}) but the \
         migrations now have {name} (sha256 {checksum}): restore the applied file and add a new \
         numbered migration instead of editing an applied one"
    )]
    Changed {
        /// The migration's number.
        version: u32,
        /// The name recorded when it was applied.
        applied_name: String,
        /// The checksum recorded when it was applied.
        applied_checksum: String,
        /// The name in the set.
        name: String,
        /// The checksum in the set.
        checksum: String,
    },
    /// The tenant is at a newer version than the set's last migration.
    #[error(
        "tenant is at schema version {at} but the migrations end at {target}: use the migrations \
         directory that migrated it"
    )]
    Ahead {
        /// The tenant's version.
        at: u32,
        /// The set's last version.
        target: u32,
    },
}

/// The recorded (name, checksum) of each applied version; empty if none were recorded.
pub fn applied_records(conn: &Connection) -> rusqlite::Result<Vec<(u32, String, String)>> {
    let exists: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [RECORDS_TABLE],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT version, name, checksum FROM {RECORDS_TABLE} ORDER BY version"
    ))?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

/// Compares the tenant's records of versions `1..=from` with the set; returns the versions
/// that have no record yet (applied before records were kept).
fn check_records(
    conn: &Connection,
    set: &MigrationSet,
    from: u32,
) -> rusqlite::Result<Result<Vec<u32>, Mismatch>> {
    if from > set.target() {
        return Ok(Err(Mismatch::Ahead {
            at: from,
            target: set.target(),
        }));
    }
    let records = applied_records(conn)?;
    let mut unrecorded = Vec::new();
    for m in &set.all()[..from as usize] {
        match records.iter().find(|r| r.0 == m.version) {
            Some((_, name, checksum)) if *checksum != m.checksum() => {
                return Ok(Err(Mismatch::Changed {
                    version: m.version,
                    applied_name: name.clone(),
                    applied_checksum: checksum.clone(),
                    name: m.name.clone(),
                    checksum: m.checksum(),
                }))
            }
            Some(_) => {}
            None => unrecorded.push(m.version),
        }
    }
    Ok(Ok(unrecorded))
}

/// Records `versions` of `set` as applied (inside the caller's transaction).
fn record(conn: &Connection, set: &MigrationSet, versions: &[u32]) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {RECORDS_TABLE}(
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL,
            applied_at_ms INTEGER NOT NULL)"
    ))?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut stmt = conn.prepare(&format!(
        "INSERT OR REPLACE INTO {RECORDS_TABLE}(version, name, checksum, applied_at_ms)
         VALUES (?1, ?2, ?3, ?4)"
    ))?;
    for v in versions {
        let m = &set.all()[*v as usize - 1];
        stmt.execute(rusqlite::params![v, m.name, m.checksum(), now_ms])?;
    }
    Ok(())
}

/// Applies the pending migrations of one tenant in one transaction (rolled back at the end
/// when `dry_run`). Errors are only failures to even begin; a failing migration is an
/// [`Outcome::Failed`] and records that disagree with the set an [`Outcome::Mismatch`], both
/// recorded in the tenant's `_tenantd_meta` unless `dry_run`.
pub fn apply(conn: &Connection, set: &MigrationSet, dry_run: bool) -> rusqlite::Result<Outcome> {
    let from = schema_version(conn)?;
    let unrecorded = match check_records(conn, set, from)? {
        Ok(unrecorded) => unrecorded,
        Err(mismatch) => {
            if !dry_run {
                set_meta(conn, ERROR_KEY, &mismatch.to_string())?;
            }
            return Ok(Outcome::Mismatch(mismatch));
        }
    };
    let pending = set.pending(from);
    if pending.is_empty() {
        if !unrecorded.is_empty() && !dry_run {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            record(conn, set, &unrecorded)?;
            conn.execute_batch("COMMIT")?;
        }
        return Ok(Outcome::UpToDate(from));
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    for m in pending {
        let ran = conn.execute_batch(&m.sql).and_then(|()| {
            if conn.is_autocommit() {
                // The file ended our transaction (COMMIT/ROLLBACK): the all-or-nothing promise
                // is broken, so say so loudly.
                Err(rusqlite::Error::InvalidQuery)
            } else {
                Ok(())
            }
        });
        if let Err(e) = ran {
            if conn.is_autocommit() {
                let error = "a migration must not contain BEGIN, COMMIT or ROLLBACK".to_owned();
                return Ok(Outcome::Failed {
                    at: schema_version(conn)?,
                    migration: m.name.clone(),
                    error,
                });
            }
            conn.execute_batch("ROLLBACK")?;
            let error = e.to_string();
            if !dry_run {
                set_meta(conn, ERROR_KEY, &format!("{}: {error}", m.name))?;
            }
            return Ok(Outcome::Failed {
                at: from,
                migration: m.name.clone(),
                error,
            });
        }
    }
    let to = set.target();
    if dry_run {
        conn.execute_batch("ROLLBACK")?;
    } else {
        let applied: Vec<u32> = pending.iter().map(|m| m.version).collect();
        record(conn, set, &[unrecorded, applied].concat())?;
        set_meta(conn, VERSION_KEY, &to)?;
        conn.execute("DELETE FROM _tenantd_meta WHERE key = ?1", [ERROR_KEY])?;
        conn.execute_batch("COMMIT")?;
    }
    Ok(Outcome::Migrated { from, to })
}

fn set_meta(conn: &Connection, key: &str, value: &dyn rusqlite::ToSql) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO _tenantd_meta(key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        rusqlite::params![key, value],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::Migration;

    fn m(version: u32, sql: &str) -> Migration {
        Migration::numbered(version, sql)
    }

    fn tenant_conn() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        crate::events::init_schema(&conn).unwrap();
        conn
    }

    #[test]
    fn pending_migrations_apply_together_or_not_at_all() {
        let conn = tenant_conn();
        let set = MigrationSet::new(vec![
            m(1, "CREATE TABLE t(x)"),
            m(2, "CREATE INDEX ti ON t(x)"),
        ])
        .unwrap();
        assert_eq!(
            apply(&conn, &set, true).unwrap(),
            Outcome::Migrated { from: 0, to: 2 }
        );
        assert_eq!(schema_version(&conn).unwrap(), 0, "dry run rolls back");
        assert_eq!(
            apply(&conn, &set, false).unwrap(),
            Outcome::Migrated { from: 0, to: 2 }
        );
        assert_eq!(apply(&conn, &set, false).unwrap(), Outcome::UpToDate(2));

        let bad = MigrationSet::new(vec![
            m(1, "CREATE TABLE t(x)"),
            m(2, "CREATE INDEX ti ON t(x)"),
            m(3, "CREATE TABLE u(y)"),
            m(4, "CREATE INDEX broken ON nope(z)"),
        ])
        .unwrap();
        let out = apply(&conn, &bad, false).unwrap();
        assert!(
            matches!(&out, Outcome::Failed { at: 2, migration, .. } if migration == "0004_m.sql"),
            "{out:?}"
        );
        assert_eq!(schema_version(&conn).unwrap(), 2);
        let u: Option<String> = conn
            .query_row("SELECT name FROM sqlite_master WHERE name = 'u'", [], |r| {
                r.get(0)
            })
            .optional()
            .unwrap();
        assert_eq!(u, None, "migration 3 was rolled back with 4");
        let err: String = conn
            .query_row(
                "SELECT value FROM _tenantd_meta WHERE key = 'migration_error'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(err.contains("0004_m.sql") && err.contains("nope"), "{err}");
    }

    #[test]
    fn regression_changed_applied_migration_is_skipped_silently() {
        let conn = tenant_conn();
        let v1 = MigrationSet::new(vec![m(1, "CREATE TABLE t(x)")]).unwrap();
        assert_eq!(
            apply(&conn, &v1, false).unwrap(),
            Outcome::Migrated { from: 0, to: 1 }
        );
        let records = applied_records(&conn).unwrap();
        assert_eq!(
            records,
            vec![(1, "0001_m.sql".into(), v1.all()[0].checksum())]
        );
        // Someone edited 0001 after it was applied and added 0002.
        let edited = MigrationSet::new(vec![
            m(1, "CREATE TABLE t(x, y)"),
            m(2, "CREATE INDEX ti ON t(x)"),
        ])
        .unwrap();
        let out = apply(&conn, &edited, false).unwrap();
        let Outcome::Mismatch(Mismatch::Changed { version: 1, .. }) = &out else {
            panic!("{out:?}")
        };
        assert_eq!(schema_version(&conn).unwrap(), 1, "nothing ran");
        let err: String = conn
            .query_row(
                "SELECT value FROM _tenantd_meta WHERE key = 'migration_error'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(
            err.contains("migration 1 was applied as 0001_m.sql"),
            "{err}"
        );
        // The applied file restored: 0002 applies.
        let fixed = MigrationSet::new(vec![
            m(1, "CREATE TABLE t(x)"),
            m(2, "CREATE INDEX ti ON t(x)"),
        ])
        .unwrap();
        assert_eq!(
            apply(&conn, &fixed, false).unwrap(),
            Outcome::Migrated { from: 1, to: 2 }
        );
    }

    #[test]
    fn a_tenant_newer_than_the_migrations_is_a_mismatch() {
        let conn = tenant_conn();
        let two =
            MigrationSet::new(vec![m(1, "CREATE TABLE t(x)"), m(2, "CREATE TABLE u(y)")]).unwrap();
        apply(&conn, &two, false).unwrap();
        let one = MigrationSet::new(vec![m(1, "CREATE TABLE t(x)")]).unwrap();
        assert_eq!(
            apply(&conn, &one, true).unwrap(),
            Outcome::Mismatch(Mismatch::Ahead { at: 2, target: 1 })
        );
    }

    #[test]
    fn versions_applied_before_records_were_kept_are_adopted() {
        let conn = tenant_conn();
        let set = MigrationSet::new(vec![m(1, "CREATE TABLE t(x)")]).unwrap();
        apply(&conn, &set, false).unwrap();
        conn.execute_batch(&format!("DROP TABLE {RECORDS_TABLE}"))
            .unwrap();
        assert_eq!(apply(&conn, &set, false).unwrap(), Outcome::UpToDate(1));
        assert_eq!(applied_records(&conn).unwrap().len(), 1);
    }
}
