//! Errors of backup and restore.

use std::path::PathBuf;

/// What went wrong talking to the bucket, reading a snapshot or installing one.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The configuration is incomplete or invalid.
    #[error("backup configuration: {0}")]
    Config(String),
    /// The object store refused or failed (after its retries).
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// No snapshot of the tenant (at or before the requested time).
    #[error("no backup of tenant {tenant}{}", at.as_ref().map(|t| format!(" at or before {t}")).unwrap_or_default())]
    NoSnapshot {
        /// The tenant.
        tenant: String,
        /// The requested time, as given.
        at: Option<String>,
    },
    /// The tenant was deleted or moved away at that time (its newest entry is a tombstone).
    #[error("tenant {tenant} was deleted or moved away at {at}: restore --at an earlier time to get it back")]
    Gone {
        /// The tenant.
        tenant: String,
        /// When (RFC 3339).
        at: String,
    },
    /// A downloaded snapshot does not match its checksum, or is not a sound SQLite file.
    #[error("backup object {key} is damaged: {why}; it was not installed")]
    Corrupt {
        /// The object's key.
        key: String,
        /// What did not match.
        why: String,
    },
    /// The tenant exists where the restore would write it.
    #[error("tenant {tenant} exists at {}: pass --force to replace it", path.display())]
    Exists {
        /// The tenant.
        tenant: String,
        /// Its file.
        path: PathBuf,
    },
    /// The tenant store failed (snapshot, catalog).
    #[error(transparent)]
    Tenant(#[from] store::StoreError),
    /// The node catalog refused (a running server holds it).
    #[error(transparent)]
    Catalog(#[from] store::catalog::CatalogError),
    /// SQLite (the state file, integrity checks).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// File I/O.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}
