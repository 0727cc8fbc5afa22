//! The catalog's error type: one variant per outcome a caller treats differently, each saying
//! what could not be done and why ("cannot …: …").

use std::path::PathBuf;

use crate::error::StoreError;
use crate::name::TenantId;

/// Why a catalog operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The file could not be opened or configured (permissions, missing directory, I/O).
    #[error("cannot open the catalog {path}: {source}")]
    Open {
        /// The catalog file.
        path: PathBuf,
        /// SQLite's reason.
        source: rusqlite::Error,
    },
    /// Another connection (another tenantd on the same data directory) holds the catalog.
    #[error("cannot open the catalog {0}: another process has it open")]
    Locked(PathBuf),
    /// The file is a SQLite database, but not a tenantd catalog.
    #[error(
        "cannot use the catalog {0}: it is not a tenantd catalog; move it aside and start \
         again (the catalog is rebuilt from the tenant files)"
    )]
    NotACatalog(PathBuf),
    /// The catalog was written by a tenantd with another catalog schema.
    #[error(
        "cannot use the catalog {path}: its schema version is {found}, this tenantd reads \
         {expected}; move it aside and start again (it is rebuilt from the tenant files)"
    )]
    Version {
        /// The catalog file.
        path: PathBuf,
        /// The version in the file.
        found: i64,
        /// The version this build reads and writes.
        expected: i64,
    },
    /// The file is damaged (not a database, or a corrupt page).
    #[error(
        "cannot read the catalog {path}: it is corrupt ({source}); move it aside and start \
         again (the catalog is rebuilt from the tenant files)"
    )]
    Corrupt {
        /// The catalog file.
        path: PathBuf,
        /// SQLite's reason.
        source: rusqlite::Error,
    },
    /// The disk is full.
    #[error("cannot write the catalog: disk full")]
    DiskFull,
    /// A write named a tenant that has no catalog row (add it with `put_tenant` first).
    #[error("cannot update tenant {0} in the catalog: it has no row there")]
    UnknownTenant(TenantId),
    /// A tenant file could not be read while rebuilding its rows.
    #[error("cannot read the file of tenant {tenant}: {source}")]
    TenantFile {
        /// The tenant.
        tenant: TenantId,
        /// Why.
        source: StoreError,
    },
    /// The tenant files could not be listed.
    #[error("cannot list the tenant files: {0}")]
    List(std::io::Error),
    /// Any other SQLite failure.
    #[error("cannot query the catalog: {0}")]
    Sqlite(rusqlite::Error),
}

impl CatalogError {
    /// Classifies a SQLite error of the catalog file at `path`.
    pub(crate) fn from_sqlite(path: &std::path::Path, e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode as C;
        match e.sqlite_error_code() {
            Some(C::DatabaseCorrupt | C::NotADatabase) => CatalogError::Corrupt {
                path: path.to_owned(),
                source: e,
            },
            Some(C::DiskFull) => CatalogError::DiskFull,
            Some(C::DatabaseBusy | C::DatabaseLocked) => CatalogError::Locked(path.to_owned()),
            _ => CatalogError::Sqlite(e),
        }
    }
}
