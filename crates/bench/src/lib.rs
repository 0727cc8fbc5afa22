//! Benchmark support for tenantd (work in progress).
#![deny(missing_docs)]

pub mod cli;
