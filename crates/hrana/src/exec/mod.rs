//! The executor: runs Hrana stream requests, batches, cursors and the legacy shapes on a
//! `rusqlite::Connection`. It knows nothing about HTTP, tenants or the guard; the server wraps
//! each use in a [`crate::guard::Guard`] for tenant SQL. [`looks_read_only`] and
//! [`prepares_read_only`] tell which requests may run on a reader connection.

mod batch;
mod cursor;
mod error;
pub mod legacy;
mod readonly;
mod stmt;
mod stream;

pub use error::{ProtocolError, StmtError};
pub use readonly::{looks_read_only, prepares_read_only};
pub use stmt::{ResultBudget, DEFAULT_MAX_RESULT_BYTES};
pub use stream::{
    rollback_if_open, Stream, StreamConfig, DEFAULT_MAX_STORED_SQLS, DEFAULT_MAX_STORED_SQL_BYTES,
};
