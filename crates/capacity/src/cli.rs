//! `tenantd capacity`: command-line front end of the model.

/// Arguments of `tenantd capacity`.
#[derive(Debug, clap::Args)]
pub struct CapacityCmd {}

/// Runs `tenantd capacity`; errors are user-facing (bad profile, bad flag value).
pub fn run(_cmd: CapacityCmd) -> anyhow::Result<()> {
    anyhow::bail!("the capacity model is not built yet")
}
