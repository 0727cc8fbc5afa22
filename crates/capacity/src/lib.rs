//! The capacity and cost model of tenantd: machine and workload profiles in, tenant limits,
//! verdicts, roadmaps and charts out (DESIGN §6, issue 3).
//!
//! The model is pure and has no I/O:
//! - [`machine`], [`workload`]: the two profile kinds, every field with a unit and a source;
//!   [`field`] holds the field tables that drive validation, loading and listings.
//! - [`limits`]: one tenant limit per resource (storage, memory, CPU, disk syncs, open files)
//!   and the one that binds; [`economics`]: cost per tenant, margin, price for a margin.
//! - [`cold`]: the share of requests that find their tenant closed (Che's approximation of
//!   the server's LRU of open tenants with an idle TTL), which the CPU limits pay for.
//! - [`roadmap`], [`compare`], [`claims`], [`sensitivity`], [`explain`], [`series`]: the
//!   seed's roadmap, its idle-cost comparison, its claims checked, what would change the
//!   verdict, the formulas with numbers, and chart data.
//!
//! Around it: [`load`] reads TOML profiles (a file may override a subset of a `base`
//! profile), [`profile_file`] writes measured fields into one (the only other I/O),
//! [`builtin`] embeds the seed's profiles, [`render`] prints text, markdown, JSON and SVG,
//! and [`cli`] is `tenantd capacity`. Units are decimal (GB = 10^9 B), as the seed's.
//!
//! ```
//! use capacity::{builtin, limits::{evaluate, Constraint}};
//!
//! let fly = builtin::machine("fly-shared-cpu-2x").unwrap();
//! let seed = builtin::workload("seed").unwrap();
//! let capacity = evaluate(&fly, &seed);
//! assert_eq!(capacity.binding, Constraint::Memory);
//! assert_eq!(capacity.supported_tenants, 1_500); // the seed's launch verdict
//! ```
#![deny(missing_docs)]

pub mod builtin;
pub mod claims;
pub mod cli;
pub mod cold;
pub mod compare;
pub mod economics;
pub mod explain;
pub mod field;
pub mod limits;
pub mod load;
pub mod machine;
pub mod profile_file;
pub mod render;
pub mod roadmap;
pub mod sensitivity;
pub mod series;
pub mod units;
pub mod workload;

pub use field::{Profile, ProfileMeta, Provenance, ValidationError};
pub use limits::{evaluate, Capacity, Constraint};
pub use load::LoadError;
pub use machine::MachineProfile;
pub use profile_file::{update_profile_file, Measured, ProfileFileError};
pub use workload::WorkloadProfile;
