//! tenantd across nodes (docs/CLUSTER.md): every tenant belongs to one of [`slot::SLOTS`] hash
//! slots, `slot = crc32(tenant id) mod 16384` — what HAProxy computes with
//! `crc32,mod(16384)` — and a slot table with an epoch maps slots to nodes; a per-tenant
//! override map pins tenants elsewhere (a tenant mid-move, or placed by hand). Pure but for
//! the HAProxy runtime API client and atomic file writes.
//!
//! - [`slot`]: the hash, bit for bit HAProxy's;
//! - [`table`]: the slot table, the overrides, who owns a tenant;
//! - [`file`]: the cluster file (nodes, HAProxy settings);
//! - [`haproxy`]: haproxy.cfg and the two map files;
//! - [`runtime`]: HAProxy's runtime API (`set map` …) and persisting the maps;
//! - [`plan`]: the rebalance planner.
#![deny(missing_docs)]

pub mod file;
pub mod handover;
pub mod haproxy;
pub mod plan;
pub mod runtime;
pub mod slot;
pub mod table;
