//! Continuous backup of a node's tenants to an S3-compatible store, and restore.
//!
//! A backup round (every `BackupConfig::interval`) snapshots only the tenants whose files
//! changed since the last round (the pool's `ChangeSet`, marked by every writer commit), so the
//! work follows the tenants that changed, not the tenants that exist, and an idle tenant costs
//! nothing: no memory, no file descriptor, no request. Each snapshot is one object,
//! `<prefix>/tenants/<id>/<ms>-<sha256>.db.zst`, written by one PUT (never half-visible); a
//! restore picks the newest at or before a time, checks the sha256 and SQLite's
//! `integrity_check`, and installs it with temp file + fsync + rename.
//!
//! - [`config`]: bucket, endpoint, credentials, interval, retention.
//! - [`key`]: object keys and the pure choices (which snapshot to restore, which to expire).
//! - [`remote`]: the bucket.
//! - [`state`]: `<data>/backup.db`, the last upload per tenant.
//! - [`worker`]: the rounds.
//! - [`restore`]: one tenant or all.

pub mod config;
pub mod error;
pub mod key;
pub mod log_ship;
pub mod remote;
pub mod restore;
pub mod state;
pub mod worker;

pub use config::{BackupConfig, Credentials};
pub use error::BackupError;
pub use remote::Remote;
pub use worker::{Backup, BackupStats};
