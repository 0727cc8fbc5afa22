//! tenantd: one SQLite file per tenant; an idle tenant costs no RAM and no file descriptor.
//!
//! - `serve`: the server (see `serve.rs`; configuration in `config.rs`);
//! - `tenant`, `hook`: admin API clients (`cli_admin.rs`);
//! - `token`: tenant tokens, minted offline, revoked through the admin API (`token_cmd.rs`);
//! - `cluster`: the cluster file, slot table, HAProxy config, rebalance plan (`cluster_cmd.rs`);
//! - `capacity`: the capacity and cost model (the `capacity` crate);
//! - `bench`: benchmark helpers (the `bench` crate);
//! - `restore`, `backup`: the continuous backup's bucket side (`backup_cmd.rs`).

mod admin_token;
mod backup_cmd;
mod cli_admin;
mod cluster_cmd;
mod cluster_ops;
mod cluster_slots;
mod config;
mod migrate_cmd;
mod serve;
mod token_cmd;

use clap::{Parser, Subcommand};

/// One SQLite file per tenant; idle tenants cost nothing.
#[derive(Parser)]
#[command(version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server (defaults: 127.0.0.1:8080, data in ./data, durability fsync, idle TTL 10s).
    Serve(Box<config::ServeArgs>),
    /// Manage tenants on a running server (create, delete, list, show, policy).
    Tenant {
        #[command(flatten)]
        remote: cli_admin::Remote,
        #[command(subcommand)]
        cmd: cli_admin::TenantCmd,
    },
    /// Configure webhook verification on a running server.
    Hook {
        #[command(flatten)]
        remote: cli_admin::Remote,
        #[command(subcommand)]
        cmd: cli_admin::HookCmd,
    },
    /// The capacity and cost model: tenants per machine, cost per tenant, the seed's claims.
    Capacity(capacity::cli::CapacityCmd),
    /// Per-tenant SQL tokens (JWT, Ed25519) for libSQL clients: create, revoke.
    Token {
        #[command(subcommand)]
        cmd: token_cmd::TokenCmd,
    },
    /// Apply numbered SQL migrations to every tenant.
    Migrate(migrate_cmd::MigrateArgs),
    /// Load generator and calibration: drive a server, measure this machine, feed the model.
    Bench(bench::cli::BenchCmd),
    /// A cluster behind HAProxy: init, add-node, status, haproxy-config, rebalance, push.
    Cluster(cluster_cmd::ClusterArgs),
    /// Measure what this machine holds and give the verdict next to the seed's claim.
    Prove(bench::prove_cmd::ProveArgs),
    /// Restore tenants from the continuous backup (one, --all, or at a point in time).
    Restore(backup_cmd::RestoreArgs),
    /// The continuous backup: status (what waits for an upload), verify (a sampled test restore).
    Backup {
        #[command(subcommand)]
        cmd: backup_cmd::BackupCmd,
    },
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Capacity(c) => capacity::cli::run(c),
        Cmd::Bench(c) => bench::cli::run(c),
        Cmd::Prove(args) => bench::prove_cmd::run(args),
        Cmd::Token { cmd } => token_cmd::run(cmd),
        Cmd::Migrate(args) => migrate_cmd::run(args),
        Cmd::Serve(args) => serve::main(*args),
        Cmd::Cluster(args) => cluster_cmd::run(args),
        Cmd::Restore(args) => backup_cmd::run_restore(args),
        Cmd::Backup { cmd } => backup_cmd::run_backup(cmd),
        Cmd::Tenant { remote, cmd } => {
            runtime().and_then(|rt| rt.block_on(cli_admin::run_tenant(&remote, cmd)))
        }
        Cmd::Hook { remote, cmd } => {
            runtime().and_then(|rt| rt.block_on(cli_admin::run_hook(&remote, cmd)))
        }
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
