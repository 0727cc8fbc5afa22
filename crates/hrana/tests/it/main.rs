//! Integration tests of the hrana crate against real SQLite, one binary with shared helpers.

mod cursor;
mod exec;
mod guard;
mod legacy;
mod tenant_schema;
mod util;
