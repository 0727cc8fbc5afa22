//! Integration tests: the real server on 127.0.0.1:0, real tenant files, HTTP via reqwest.
//! One test binary (shared harness in `util`), one module per area.

mod admin;
mod bodies;
mod exclusive;
mod flow;
mod front_door;
mod ids;
mod ingest;
mod limits;
mod raw;
mod signatures;
mod sql;
mod sql_limits;
mod tokens;
mod util;
mod webhook_policy;
