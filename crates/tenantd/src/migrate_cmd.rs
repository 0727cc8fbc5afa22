//! `tenantd migrate`: apply numbered SQL migrations to every tenant of a data directory, in
//! parallel, each tenant in its own transaction, with a progress bar and a final summary.
//! Safe to re-run (tenants already at the target are skipped) and to run beside a live server
//! (SQLite's locks serialise it with the server's writers; the server also migrates lazily).
//! A tenant whose recorded migrations differ from the files (an applied migration edited, or a
//! tenant newer than the directory) is listed as failed with the reason; nothing runs on it.

use std::path::PathBuf;

use anyhow::Context;
use store::migrate::{self, FleetOptions, MigrationSet};
use store::PoolConfig;

/// Flags of `tenantd migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// Directory of migrations named NNNN_name.sql, numbered from 1 without gaps.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Data directory whose tenants to migrate.
    #[arg(long, env = "TENANTD_DATA", default_value = crate::config::DEFAULT_DATA)]
    pub data: PathBuf,
    /// Tenants migrated at once.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    /// Run every tenant's migrations in a transaction that is rolled back: reports what would
    /// fail, changes nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs the migration; fails (exit 1) if any tenant failed, after listing them.
pub fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let set = MigrationSet::load_dir(&args.dir)
        .with_context(|| format!("cannot use migrations in {}", args.dir.display()))?;
    if !args.data.join(store::layout::TENANTS_DIR).is_dir() {
        anyhow::bail!(
            "{} has no tenants directory: is it a tenantd data dir?",
            args.data.display()
        );
    }
    let cfg = PoolConfig::new(&args.data);
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed} {pos} tenants {msg}")
            .expect("valid template"),
    );
    let mode = if args.dry_run { " (dry run)" } else { "" };
    eprintln!("migrating to version {}{mode}", set.target());
    let opts = FleetOptions {
        jobs: args.jobs.max(1),
        dry_run: args.dry_run,
    };
    let summary = migrate::run_fleet(&cfg, &set, &opts, &|done, failed| {
        bar.set_position(done as u64);
        if failed > 0 {
            bar.set_message(format!("({failed} failed)"));
        }
    })?;
    bar.finish_and_clear();
    let verb = if args.dry_run {
        "would migrate"
    } else {
        "migrated"
    };
    println!(
        "{} tenants: {verb} {}, already at version {} {}, failed {}",
        summary.tenants,
        summary.migrated,
        set.target(),
        summary.up_to_date,
        summary.failed.len()
    );
    for (id, why) in &summary.failed {
        println!("  FAILED {id}: {why}");
    }
    if !summary.failed.is_empty() {
        anyhow::bail!(
            "{} tenant(s) failed and were rolled back",
            summary.failed.len()
        );
    }
    Ok(())
}
