//! A migration set: the numbered `NNNN_name.sql` files of one directory, checked (numbered from
//! 1 without gaps, no duplicates, not empty), each with the checksum a tenant records.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

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
    /// Migration `version` running `sql`, named `NNNN_m.sql` (for sets built in code).
    pub fn numbered(version: u32, sql: &str) -> Self {
        Migration {
            version,
            name: format!("{version:04}_m.sql"),
            sql: sql.to_owned(),
        }
    }

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

    /// A set of `sqls` numbered 1, 2, … in order (migrations built in code rather than read
    /// from a directory). Never fails: the numbering is gap-free by construction.
    pub fn numbered(sqls: &[&str]) -> Self {
        let migrations = (1..).zip(sqls).map(|(v, sql)| Migration::numbered(v, sql));
        MigrationSet {
            migrations: migrations.collect(),
        }
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

    /// Every migration, in order (version `n` at index `n - 1`).
    pub fn all(&self) -> &[Migration] {
        &self.migrations
    }

    /// The migrations after `version`.
    pub fn pending(&self, version: u32) -> &[Migration] {
        &self.migrations[(version as usize).min(self.migrations.len())..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(version: u32, sql: &str) -> Migration {
        Migration::numbered(version, sql)
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
