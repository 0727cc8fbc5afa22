//! `tenantd migrate`: apply numbered SQL migrations to every tenant (being built; see issue 4).

/// Flags of `tenantd migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {}

/// Runs `tenantd migrate`.
pub fn run(_args: MigrateArgs) -> anyhow::Result<()> {
    anyhow::bail!("tenantd migrate is not built yet")
}
