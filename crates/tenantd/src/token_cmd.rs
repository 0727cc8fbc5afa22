//! `tenantd token …`: per-tenant SQL tokens (being wired; see issue 4).

/// `tenantd token` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCmd {}

/// Runs a `tenantd token` command.
pub fn run(cmd: TokenCmd) -> anyhow::Result<()> {
    match cmd {}
}
