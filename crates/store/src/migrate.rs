//! Tenant schema migrations: numbered SQL files applied to every tenant file.
//!
//! A migrations directory holds `NNNN_name.sql` files (`0001_init.sql`, `0002_add_index.sql`, …),
//! numbered from 1 without gaps. A tenant's schema version lives in its reserved
//! `_tenantd_meta` table (key `schema_version`, absent = 0), out of reach of tenant SQL. Pending
//! migrations of one tenant run in ONE transaction: all of them land, or none and the version
//! stays. A failure is recorded in the tenant file (`_tenantd_meta.migration_error`) after the
//! rollback, so it can be listed later; a success clears it.
//!
//! Every applied migration is recorded in the tenant's reserved `_tenantd_migrations` table with
//! its file name and the sha256 of its SQL. Before migrating, the records are compared with the
//! set: a recorded migration whose file changed, or a tenant newer than the set, is a
//! [`Mismatch`] (never a silent skip). Versions applied before records were kept are adopted
//! (recorded from the current files) the next time the tenant is migrated or checked.
//!
//! The fleet runner (`run_fleet`) walks every tenant of a data dir page by page with a bounded
//! number of worker threads. It is resumable: a tenant already at the target version is skipped,
//! so re-running after a crash finishes the rest.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::config::PoolConfig;
use crate::connection::{self, Access};
use crate::error::StoreError;
use crate::layout::{self, ListKey};
use crate::name::TenantId;

const VERSION_KEY: &str = "schema_version";
const ERROR_KEY: &str = "migration_error";
/// The reserved table recording each applied migration's name and checksum.
pub const RECORDS_TABLE: &str = "_tenantd_migrations";

/// One numbered migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// Its number (1-based, contiguous).
    pub version: u32,
    /// File name, for reports.
    pub name: String,
    /// The SQL it runs.
    pub sql: String,
}

impl Migration {
    /// The hex sha256 of its SQL: what the tenant file records when it is applied.
    pub fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.sql.as_bytes()))
    }
}

/// An ordered, gap-free list of migrations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationSet {
    migrations: Vec<Migration>,
}

/// Why a migrations directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MigrationSetError {
    /// The directory or a file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// What was being read.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A `.sql` file whose name does not start with a number and `_`.
    #[error("{0}: migration files are named NNNN_name.sql")]
    BadName(String),
    /// Two files with one number.
    #[error("two migrations numbered {0}")]
    Duplicate(u32),
    /// Numbers do not run 1, 2, 3, … without gaps.
    #[error("migration {0} is missing (numbers must run from 1 without gaps)")]
    Gap(u32),
    /// The directory holds no `.sql` file (most likely the wrong directory).
    #[error("{0} holds no NNNN_name.sql migration files")]
    Empty(PathBuf),
}

impl MigrationSet {
    /// Builds a set from migrations in any order; checks numbering.
    pub fn new(mut migrations: Vec<Migration>) -> Result<Self, MigrationSetError> {
        migrations.sort_by_key(|m| m.version);
        for (i, m) in migrations.iter().enumerate() {
            let want = i as u32 + 1;
            if m.version < want {
                return Err(MigrationSetError::Duplicate(m.version));
            }
            if m.version > want {
                return Err(MigrationSetError::Gap(want));
            }
        }
        Ok(MigrationSet { migrations })
    }

    /// Reads every `*.sql` file of `dir` (other files are ignored). Errors: unreadable, badly
    /// named or numbered files, and a directory without any migration (`Empty`).
    pub fn load_dir(dir: &Path) -> Result<Self, MigrationSetError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| MigrationSetError::Io { path, source }
        };
        let mut migrations = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            if !name.ends_with(".sql") {
                continue;
            }
            let version = name
                .split_once('_')
                .and_then(|(n, _)| n.parse::<u32>().ok())
                .filter(|v| *v > 0)
                .ok_or_else(|| MigrationSetError::BadName(name.clone()))?;
            let sql = std::fs::read_to_string(&path).map_err(io(&path))?;
            migrations.push(Migration { version, name, sql });
        }
        if migrations.is_empty() {
            return Err(MigrationSetError::Empty(dir.to_owned()));
        }
        Self::new(migrations)
    }

    /// A digest of every migration's number, name and SQL: equal sets have equal fingerprints.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for m in &self.migrations {
            h.update(m.version.to_le_bytes());
            h.update(m.name.as_bytes());
            h.update([0]);
            h.update(m.checksum().as_bytes());
        }
        hex::encode(h.finalize())
    }

    /// The version a fully migrated tenant has (0 for an empty set).
    pub fn target(&self) -> u32 {
        self.migrations.len() as u32
    }

    /// The migrations after `version`.
    pub fn pending(&self, version: u32) -> &[Migration] {
        &self.migrations[(version as usize).min(self.migrations.len())..]
    }
}

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
    for m in &set.migrations[..from as usize] {
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
        let m = &set.migrations[*v as usize - 1];
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

/// Options of a fleet run.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Worker threads (tenants migrated at once).
    pub jobs: usize,
    /// Run every tenant's migrations and roll them back.
    pub dry_run: bool,
}

/// Totals of a fleet run, and every failure.
#[derive(Debug, Default)]
pub struct FleetSummary {
    /// Tenants seen.
    pub tenants: usize,
    /// Tenants migrated (or that would be, in a dry run).
    pub migrated: usize,
    /// Tenants already at the target version.
    pub up_to_date: usize,
    /// Failed tenants: id and outcome (or the error that kept the file from opening).
    pub failed: Vec<(TenantId, String)>,
}

/// Migrates every tenant under `cfg.data_dir`; `progress(done, failed)` is called after each.
/// Errors are only failures to list the tenants; per-tenant problems land in the summary.
pub fn run_fleet(
    cfg: &PoolConfig,
    set: &MigrationSet,
    opts: &FleetOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<FleetSummary, StoreError> {
    const PAGE: usize = 1000;
    let summary = Mutex::new(FleetSummary::default());
    let done = AtomicUsize::new(0);
    let mut after: Option<ListKey> = None;
    loop {
        let (page, next) = layout::list_tenants(&cfg.data_dir, after.as_ref(), PAGE)?;
        let cursor = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..opts.jobs.max(1) {
                s.spawn(|| loop {
                    let i = cursor.fetch_add(1, Ordering::Relaxed);
                    let Some(id) = page.get(i) else { return };
                    let result = migrate_one(cfg, id, set, opts.dry_run);
                    let mut sum = summary.lock().expect("no worker panics while holding it");
                    sum.tenants += 1;
                    match result {
                        Ok(Outcome::UpToDate(_)) => sum.up_to_date += 1,
                        Ok(Outcome::Migrated { .. }) => sum.migrated += 1,
                        Ok(Outcome::Mismatch(m)) => sum.failed.push((id.clone(), m.to_string())),
                        Ok(Outcome::Failed {
                            at,
                            migration,
                            error,
                        }) => sum
                            .failed
                            .push((id.clone(), format!("at v{at}: {migration}: {error}"))),
                        Err(e) => sum.failed.push((id.clone(), format!("cannot open: {e}"))),
                    }
                    let failed = sum.failed.len();
                    drop(sum);
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1, failed);
                });
            }
        });
        match next {
            Some(k) => after = Some(k),
            None => break,
        }
    }
    let mut summary = summary.into_inner().expect("workers are done");
    summary.failed.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(summary)
}

fn migrate_one(
    cfg: &PoolConfig,
    id: &TenantId,
    set: &MigrationSet,
    dry_run: bool,
) -> Result<Outcome, StoreError> {
    let conn = connection::open_existing(
        &layout::tenant_path(&cfg.data_dir, id),
        Access::Write,
        cfg,
        None,
    )?;
    let outcome = apply(&conn, set, dry_run)?;
    connection::close_clean(conn);
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(version: u32, sql: &str) -> Migration {
        Migration {
            version,
            name: format!("{version:04}_m.sql"),
            sql: sql.into(),
        }
    }

    fn tenant_conn() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        crate::events::init_schema(&conn).unwrap();
        conn
    }

    #[test]
    fn numbering_is_checked() {
        assert!(matches!(
            MigrationSet::new(vec![m(2, "")]),
            Err(MigrationSetError::Gap(1))
        ));
        assert!(matches!(
            MigrationSet::new(vec![m(1, ""), m(1, "")]),
            Err(MigrationSetError::Duplicate(1))
        ));
        let set = MigrationSet::new(vec![m(2, "b"), m(1, "a")]).unwrap();
        assert_eq!(set.target(), 2);
        assert_eq!(set.pending(1)[0].sql, "b");
        assert!(set.pending(5).is_empty());
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
    fn load_dir_reads_numbered_sql_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("0002_index.sql"), "CREATE INDEX i ON t(x);").unwrap();
        std::fs::write(dir.path().join("0001_init.sql"), "CREATE TABLE t(x);").unwrap();
        std::fs::write(dir.path().join("README.md"), "ignored").unwrap();
        let set = MigrationSet::load_dir(dir.path()).unwrap();
        assert_eq!(set.target(), 2);
        assert_eq!(set.pending(0)[0].name, "0001_init.sql");
        std::fs::write(dir.path().join("init.sql"), "").unwrap();
        assert!(matches!(
            MigrationSet::load_dir(dir.path()),
            Err(MigrationSetError::BadName(_))
        ));
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
            vec![(1, "0001_m.sql".into(), v1.migrations[0].checksum())]
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

    #[test]
    fn regression_empty_migrations_dir_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("README.md"), "no migrations here").unwrap();
        let err = MigrationSet::load_dir(dir.path()).unwrap_err();
        assert!(matches!(err, MigrationSetError::Empty(_)), "{err:?}");
        assert!(err.to_string().contains("holds no NNNN_name.sql"), "{err}");
    }

    #[test]
    fn fingerprints_differ_when_any_migration_does() {
        let a = MigrationSet::new(vec![m(1, "CREATE TABLE t(x)")]).unwrap();
        let b = MigrationSet::new(vec![m(1, "CREATE TABLE t(y)")]).unwrap();
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
        assert_ne!(a.fingerprint(), b.fingerprint());
    }
}
