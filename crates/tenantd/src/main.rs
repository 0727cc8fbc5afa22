//! The tenantd binary.
use clap::Parser;

#[derive(Parser)]
enum Cmd {
    /// The capacity and cost model.
    Capacity(capacity::cli::CapacityCmd),
}

fn main() -> anyhow::Result<()> {
    match Cmd::parse() {
        Cmd::Capacity(c) => capacity::cli::run(c),
    }
}
