//! [`InboxError`]: why a delivery was not accepted, or the inbox could not start.

use crate::catalog::CatalogError;
use crate::error::StoreError;

/// Why the inbox refused or failed. Each variant maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// No such tenant.
    #[error("tenant not found")]
    UnknownTenant,
    /// The node's backlog of unapplied deliveries is at its cap: retry shortly.
    #[error("the node's backlog of unapplied deliveries is full")]
    BacklogFull,
    /// This tenant's backlog is at its cap: retry shortly.
    #[error("this tenant's backlog of unapplied deliveries is full")]
    TenantBacklogFull,
    /// The tenant's size quota is used up (its file, or its file and its backlog).
    #[error("tenant size quota exceeded")]
    QuotaExceeded,
    /// The tenant's migration failed; it takes no deliveries until that is fixed.
    #[error("tenant migration failed: {0}")]
    MigrationFailed(String),
    /// The disk is full: the delivery was not logged.
    #[error("disk full")]
    DiskFull,
    /// The same delivery is in flight and its append failed: retry.
    #[error("the first copy of this delivery failed to be logged; retry")]
    OriginalFailed,
    /// The inbox is stopping.
    #[error("shutting down")]
    ShuttingDown,
    /// The ingest log failed (write or sync error); new deliveries are refused until restart.
    #[error("ingest log: {0}")]
    Log(#[from] ingest::LogError),
    /// The catalog failed.
    #[error("catalog: {0}")]
    Catalog(#[from] CatalogError),
    /// A tenant file operation failed.
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl InboxError {
    /// Maps a log error: a full disk is `DiskFull`, a closed log `ShuttingDown`.
    pub fn from_log(e: ingest::LogError) -> Self {
        match e {
            ingest::LogError::DiskFull { .. } => InboxError::DiskFull,
            ingest::LogError::Closed => InboxError::ShuttingDown,
            e => InboxError::Log(e),
        }
    }
}
