//! libSQL's remote protocol, Hrana over HTTP (v2 and v3 JSON, plus the legacy sqld shapes),
//! executed on one tenant's SQLite connection, with the hardened surface untrusted tenant SQL
//! needs. No HTTP and no tenant pool here: the server resolves the tenant and its token, takes
//! the tenant's connection and calls into this crate (see `docs/HRANA.md`).
//!
//! - [`proto`]: serde wire types (pipeline, cursor, values, errors, legacy shapes);
//! - [`exec`]: [`exec::Stream`] runs requests, batches and cursors on a connection;
//! - [`guard`]: [`guard::Guard`] restricts a connection for one use by tenant SQL;
//! - [`baton`]: HMAC batons binding (stream, sequence) to a tenant;
//! - [`stream_table`]: open streams between requests, single-use batons, idle expiry.
//!
//! ```
//! use hrana::{exec::{Stream, StreamConfig}, guard::{Guard, GuardConfig}, proto};
//! let conn = rusqlite::Connection::open_in_memory().unwrap();
//! let mut stream = Stream::new(StreamConfig::default());
//! let guard = Guard::enter(&conn, &GuardConfig::default(), false).unwrap();
//! let req = proto::StreamRequest::Execute { stmt: proto::Stmt::sql("SELECT 1 + 1") };
//! let result = stream.execute(&guard, req).unwrap();
//! assert!(matches!(result, proto::StreamResult::Ok { .. }));
//! ```
#![deny(missing_docs)]

pub mod baton;
pub mod exec;
pub mod guard;
pub mod proto;
pub mod stream_table;
