//! Benchmark support for tenantd.
//!
//! - [`names`]: the benchmark's tenant names (`tenant00000`, …), shared with the wrk script;
//! - [`template`]: one template tenant file per layout (tenantd's schema, or the baseline's
//!   plain WAL file);
//! - [`provision`]: copies the template to every tenant's path, fast, for load runs;
//! - [`coldopen`], [`coldopen_variants`], [`coldopen_report`]: `tenantd bench cold-open`, the
//!   cost of one cold tenant (open + insert + close) per variant of the open;
//! - [`server`]: starts our own tenantd (provisioned, optional kv schema) for a load run;
//! - [`load_cmd`]: `tenantd bench load`, the load generator (`loadgen`) against a server;
//! - [`calibrate`], [`calibrate_cmd`]: the calibration scenarios (`tenantd bench idle|inflight|
//!   cpu|disk|cold`), each writing measured fields into capacity profiles;
//! - [`emulate`]: a smaller machine emulated with a cgroup (v1) CPU quota and memory limit;
//! - [`prove`], [`prove_cmd`]: `tenantd prove`, the calibration and the verdict;
//! - [`cli`]: `tenantd bench …`.
//!
//! The wrk scripts in `bench/` remain for side-by-side runs; see `docs/BENCHMARKS.md`.
#![deny(missing_docs)]

pub mod calibrate;
pub mod calibrate_cmd;
pub mod cli;
pub mod coldopen;
pub mod coldopen_report;
pub mod coldopen_variants;
pub mod emulate;
pub mod load_cmd;
pub mod names;
pub mod prove;
pub mod prove_cmd;
pub mod provision;
pub mod server;
pub mod template;
