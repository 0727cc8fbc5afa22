//! Shared by the capacity test binaries: `tenantd capacity …` parsed by clap with the same
//! wiring as crates/tenantd, then rendered without printing.

use capacity::cli::{output, CapacityCmd, Output};
use clap::Parser;

/// The subcommand as the binary nests it.
#[derive(Parser)]
pub enum Cmd {
    /// `tenantd capacity …`.
    Capacity(CapacityCmd),
}

/// Runs `tenantd capacity <args>` and returns what it would print.
pub fn run(args: &[&str]) -> anyhow::Result<Output> {
    let argv = ["tenantd", "capacity"].iter().chain(args);
    let Cmd::Capacity(cmd) = Cmd::try_parse_from(argv)?;
    output(&cmd)
}
