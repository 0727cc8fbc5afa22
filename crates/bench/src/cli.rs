//! `tenantd bench`: command-line front end.

/// Arguments of `tenantd bench`.
#[derive(Debug, clap::Args)]
pub struct BenchCmd {}

/// Runs `tenantd bench`; errors are user-facing.
pub fn run(_cmd: BenchCmd) -> anyhow::Result<()> {
    anyhow::bail!("tenantd bench is not built yet")
}
