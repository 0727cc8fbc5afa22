//! Tenant storage for tenantd: one SQLite file per tenant, opened only while it has work.
//!
//! - [`name`]: validated tenant ids and source names (the only way raw strings become names);
//! - [`layout`]: where a tenant's file lives (`tenant_path`, the one path builder) and listing;
//! - [`config`]: durability mode and the pool's bounds;
//! - [`connection`]: opening/closing one connection with tenantd's SQLite settings;
//! - [`pool`]: the scale-to-zero pool (open on demand, idle TTL, LRU cap, one writer per tenant,
//!   capped readers, background checkpoints; it owns its maintenance loop);
//! - [`migrate`]: numbered SQL migrations (recorded with name and checksum) for one tenant and
//!   for the whole fleet;
//! - [`events`]: the reserved `_tenantd_*` tables (webhook sources and events) inside each file;
//! - [`policy`]: a tenant's webhook policy (which unsigned deliveries it accepts);
//! - [`token_epoch`]: the tenant's token epoch (tokens die with their tenant, revocation);
//! - [`inspect`]: a tenant's summary read outside the pool (no migration, not counted as open);
//! - [`catalog`]: the node catalog (`<data>/catalog.db`): what the ingest path needs to know
//!   about every tenant without opening its file, and the delivery-id dedupe window;
//! - [`inbox`]: webhook ingest through the node log: acknowledged once logged, applied to
//!   tenant files in batches by background appliers, read-your-writes through the pool;
//! - [`stats`], [`sys`]: pool metrics; fd limit, SQLite heap limit, heap trimming.
#![deny(missing_docs)]

pub mod catalog;
pub mod changes;
pub mod config;
pub mod connection;
pub mod error;
pub mod events;
pub mod handoff;
pub mod inbox;
pub mod inspect;
pub mod layout;
pub mod migrate;
pub mod name;
pub mod policy;
pub mod pool;
pub mod stats;
pub mod sys;
pub mod token_epoch;

pub use config::{Durability, Locking, PoolConfig};
pub use error::StoreError;
pub use name::{NameError, SourceName, TenantId};
pub use pool::{TenantPool, WriterGuard};
