//! The capacity and cost model (work in progress: see issue 3).
#![deny(missing_docs)]

pub mod cli;
