//! Tenant schema migrations: numbered SQL files applied to every tenant file.
//!
//! A migrations directory holds `NNNN_name.sql` files (`0001_init.sql`, `0002_add_index.sql`, …),
//! numbered from 1 without gaps. A tenant's schema version lives in its reserved
//! `_tenantd_meta` table (key `schema_version`, absent = 0), out of reach of tenant SQL. Pending
//! migrations of one tenant run in ONE transaction: all of them land, or none and the version
//! stays. A failure is recorded in the tenant file (`_tenantd_meta.migration_error`) after the
//! rollback, so it can be listed later; a success clears it.
//!
//! Every applied migration is recorded in the tenant's reserved `_tenantd_migrations` table with
//! its file name and the sha256 of its SQL. Before migrating, the records are compared with the
//! set: a recorded migration whose file changed, or a tenant newer than the set, is a
//! [`Mismatch`] (never a silent skip). Versions applied before records were kept are adopted
//! (recorded from the current files) the next time the tenant is migrated or checked.
//!
//! The fleet runner (`run_fleet`) walks every tenant of a data dir page by page with a bounded
//! number of worker threads. It is resumable: a tenant already at the target version is skipped,
//! so re-running after a crash finishes the rest.

//!
//! Files: `set` (the checked migrations of a directory), `apply` (one tenant: version, records,
//! mismatch, the transaction), `fleet` (every tenant of a data dir).

mod apply;
mod fleet;
mod set;

pub(crate) use apply::ERROR_KEY;
pub use apply::{applied_records, apply, schema_version, Mismatch, Outcome, RECORDS_TABLE};
pub use fleet::{run_fleet, FleetOptions, FleetSummary};
pub use set::{Migration, MigrationSet, MigrationSetError};
