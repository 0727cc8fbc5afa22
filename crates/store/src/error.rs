//! The store's error type: one variant per outcome a caller must treat differently.

/// Why a store operation failed. Callers map each variant to one HTTP status; there is no
/// catch-all except genuine I/O and SQLite failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such tenant (and none was created).
    #[error("tenant not found")]
    NotFound,
    /// The tenant already exists.
    #[error("tenant already exists")]
    AlreadyExists,
    /// The tenant is held by another operation (delete while a stream holds it, …).
    #[error("tenant is busy: {0}")]
    Busy(&'static str),
    /// Too many writes already wait for this tenant's writer.
    #[error("too many writes queued for this tenant")]
    QueueFull,
    /// Every open slot is in use, so no tenant can be opened now.
    #[error("too many tenants open at once")]
    PoolExhausted,
    /// The tenant's size quota is used up.
    #[error("tenant size quota exceeded")]
    QuotaExceeded,
    /// The disk is full.
    #[error("disk full")]
    DiskFull,
    /// The tenant is behind the configured migrations and migrating it failed; it is not
    /// served on an old schema.
    #[error("tenant migration failed: {0}")]
    MigrationFailed(String),
    /// The tenant is being moved to another node: retry after about `retry_after`.
    #[error("tenant is being moved to another node; retry shortly")]
    Moving {
        /// Until the move's fence lifts by itself at the latest.
        retry_after: std::time::Duration,
    },
    /// The tenant has moved to node `to`.
    #[error("tenant has moved to node {to}")]
    Moved {
        /// Its new owner.
        to: String,
    },
    /// The pool is shutting down.
    #[error("shutting down")]
    ShuttingDown,
    /// A SQLite error not covered above.
    #[error("sqlite: {0}")]
    Sqlite(rusqlite::Error),
    /// A filesystem error.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    /// Whether SQLite found the file locked by another connection (busy timeout passed): in
    /// exclusive locking, a tenant another process, or the pool, holds open.
    pub fn is_locked(&self) -> bool {
        matches!(self, StoreError::Sqlite(e) if matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        ))
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => StoreError::DiskFull,
            _ => StoreError::Sqlite(e),
        }
    }
}
