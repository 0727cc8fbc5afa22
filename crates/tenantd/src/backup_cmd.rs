//! `tenantd restore` and `tenantd backup status|verify`: the bucket side of the continuous
//! backup (`crates/backup`), run without a server.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{bail, Context};
use backup::key::SnapshotKey;
use backup::restore::{
    choose_snapshot, format_ms, integrity_check, parse_at, restore_tenant, Placement, Restored,
    ShippedLog,
};
use backup::state::State;
use backup::{BackupConfig, BackupError, Remote};
use futures_util::StreamExt;
use store::catalog::{Catalog, CatalogConfig, CATALOG_FILE};
use store::TenantId;

use crate::config::{resolve_backup, BackupArgs, FileConfig, DEFAULT_DATA};

/// Where the data dir and the bucket are (shared by `restore` and `backup`).
#[derive(Debug, clap::Args)]
pub struct Place {
    /// The node's data directory [default: ./data].
    #[arg(long, env = "TENANTD_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// The server's TOML configuration file (its backup_* keys and data are used).
    #[arg(long, env = "TENANTD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub backup: BackupArgs,
}

/// `tenantd restore`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  tenantd restore acme --backup-bucket b            # latest, into ./data \
    (server stopped)\n  tenantd restore acme --at 2026-12-01T10:00:00Z --to /tmp/r   # a copy as \
    /tmp/r/acme.db\n  tenantd restore --all --data /srv/new                 # a lost node, resumable"
)]
pub struct RestoreArgs {
    /// The tenant to restore (or --all).
    #[arg(
        value_name = "TENANT",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub tenant: Option<String>,
    /// Restore every tenant in the bucket (in parallel; reruns skip what is already in place).
    #[arg(long)]
    pub all: bool,
    /// Restore the newest snapshot taken at or before this time (RFC 3339, or Unix ms)
    /// [default: the newest].
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Write TENANT.db files into DIR instead of the data dir (nothing else is touched)
    /// [default: into the data dir, which no server may be using].
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
    /// Replace a tenant that exists where the restore writes.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub place: Place,
}

/// `tenantd backup`.
#[derive(Debug, clap::Subcommand)]
pub enum BackupCmd {
    /// Per node: tenants backed up, tenants changed since their last upload, the oldest upload.
    Status {
        /// List every tenant that waits for an upload.
        #[arg(long)]
        verbose: bool,
        #[command(flatten)]
        place: Place,
    },
    /// Test-restore a sample of tenants from the bucket into a temp dir (checksum and
    /// integrity_check); fails if any is damaged.
    Verify {
        /// Tenants to test [default: 5].
        #[arg(long, default_value_t = 5)]
        sample: usize,
        #[command(flatten)]
        place: Place,
    },
}

/// The data dir and the backup configuration of `place`.
fn resolve(place: &Place) -> anyhow::Result<(PathBuf, BackupConfig)> {
    let file = match &place.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let data = place
        .data
        .clone()
        .or(file.data_dir())
        .unwrap_or_else(|| DEFAULT_DATA.into());
    let cfg = resolve_backup(&place.backup, &file, |k| std::env::var(k).ok())?
        .context("no backup bucket: give --backup-bucket (or TENANTD_BACKUP_BUCKET, or backup_bucket in the config file)")?;
    Ok((data, cfg))
}

/// Runs `tenantd restore`.
pub fn run_restore(args: RestoreArgs) -> anyhow::Result<()> {
    crate::runtime()?.block_on(restore(args))
}

async fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let (data, cfg) = resolve(&args.place)?;
    let remote = Remote::new(&cfg)?;
    let at_ms = args.at.as_deref().map(parse_at).transpose()?;
    // Into the data dir: no server may hold it, and its catalog follows the restored files.
    let catalog = match &args.to {
        Some(_) => None,
        None => open_catalog(&data)?,
    };
    let dest_of = |id: &TenantId| match &args.to {
        Some(dir) => dir.join(format!("{id}.db")),
        None => store::layout::tenant_path(&data, id),
    };
    let ids: Vec<TenantId> = if args.all {
        let names = remote.tenants().await?;
        names
            .iter()
            .filter_map(|n| TenantId::parse(n).ok())
            .collect()
    } else {
        let raw = args.tenant.as_deref().unwrap_or_default();
        vec![TenantId::parse(raw).with_context(|| format!("invalid tenant id {raw:?}"))?]
    };
    if ids.is_empty() {
        bail!("the bucket holds no tenant under prefix {:?}", cfg.prefix);
    }
    // Each tenant's snapshot first (listing, `parallel` at once): its key names the log
    // position it holds, so only the shipped webhooks after it are read (once for every
    // tenant; a damaged chunk is reported and its webhooks are not applied).
    let parallel = if args.all { cfg.parallel } else { 1 };
    let chosen: Vec<(TenantId, Result<SnapshotKey, BackupError>)> = futures_util::stream::iter(ids)
        .map(|id| {
            let remote = &remote;
            async move {
                let snap = choose_snapshot(remote, id.as_str(), at_ms).await;
                (id, snap)
            }
        })
        .buffered(parallel)
        .collect()
        .await;
    let want: HashMap<String, u64> = chosen
        .iter()
        .filter_map(|(_, s)| s.as_ref().ok())
        .map(|s| (s.tenant.clone(), s.applied_lsn.unwrap_or(0)))
        .collect();
    let log = ShippedLog::load(&remote, &want).await?;
    for (key, why) in &log.damaged {
        eprintln!("log chunk {key} is damaged ({why}): its webhooks are not restored");
    }
    let log_dir = data.join(store::inbox::LOG_DIR);
    if args.to.is_none() && backup::log_ship::continue_after(&log_dir, log.last_lsn)? {
        eprintln!(
            "the data dir's ingest log starts after LSN {}, the last in the bucket, so its \
             records never take a shipped record's LSN",
            log.last_lsn
        );
    }
    let place = Placement {
        created_lsn: match &args.to {
            Some(_) => 0,
            None => backup::log_ship::last_lsn(&log_dir)?,
        },
        force: args.force,
    };
    let bar = progress(chosen.len(), args.all);
    let failed = AtomicUsize::new(0);
    let mut runs = futures_util::stream::iter(chosen)
        .map(|(id, snap)| {
            let (remote, dest) = (&remote, dest_of(&id));
            let records = log.for_tenant(id.as_str(), at_ms);
            async move {
                let r = match snap {
                    Ok(snap) => restore_tenant(remote, snap, &dest, records, place).await,
                    Err(e) => Err(e),
                };
                (id, dest, r)
            }
        })
        .buffer_unordered(parallel);
    while let Some((id, dest, r)) = runs.next().await {
        match r.and_then(|r| {
            if let Some(c) = &catalog {
                if !r.skipped {
                    c.rebuild_tenant(&id, &dest)?;
                }
            }
            Ok(r)
        }) {
            Ok(r) => say(&bar, describe(&id, &dest, &r)),
            // A node's restore leaves out the tenants it no longer had at that time.
            Err(e @ BackupError::Gone { .. }) if args.all => {
                say(&bar, format!("{id}: skipped: {e}"))
            }
            Err(e) => {
                failed.fetch_add(1, Ordering::Relaxed);
                say(&bar, format!("{id}: FAILED: {e}"));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if let Some(c) = catalog {
        c.close().context("cannot close the catalog")?;
    }
    let failed = failed.into_inner();
    if !log.damaged.is_empty() {
        bail!(
            "{} damaged log chunk(s) (see above): their webhooks are missing",
            log.damaged.len()
        );
    }
    if failed > 0 {
        bail!("{failed} tenant(s) not restored (see above); rerun to retry, restored ones are skipped");
    }
    Ok(())
}

fn describe(id: &TenantId, dest: &Path, r: &Restored) -> String {
    let when = format_ms(r.snapshot.at_ms);
    if r.skipped {
        format!("{id}: already in place (snapshot of {when})")
    } else {
        format!(
            "{id}: restored the snapshot of {when} ({} bytes, sha256 and integrity checked) to {}",
            r.bytes,
            dest.display()
        )
    }
}

/// The data dir's catalog, if it has one; refused while a server holds it.
fn open_catalog(data: &Path) -> anyhow::Result<Option<Catalog>> {
    let path = data.join(CATALOG_FILE);
    if !path.exists() {
        // A fresh dir: the server rebuilds the catalog from the files at its first start.
        return Ok(None);
    }
    let cfg = CatalogConfig::new(store::Durability::Fsync);
    match Catalog::open(&path, cfg) {
        Ok(c) => Ok(Some(c)),
        Err(store::catalog::CatalogError::Locked(_)) => bail!(
            "a running tenantd holds {}: stop it first, or restore with --to DIR",
            data.display()
        ),
        Err(e) => Err(e.into()),
    }
}

/// A line on stdout, above the progress bar when one is drawn.
fn say(bar: &indicatif::ProgressBar, line: String) {
    if bar.is_hidden() {
        println!("{line}");
    } else {
        bar.println(line);
    }
}

fn progress(n: usize, show: bool) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !show || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(n as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} tenants, {elapsed} (eta {eta})",
        )
        .expect("a valid template"),
    );
    bar
}

/// Runs `tenantd backup …`.
pub fn run_backup(cmd: BackupCmd) -> anyhow::Result<()> {
    match cmd {
        BackupCmd::Status { verbose, place } => status(&place, verbose),
        BackupCmd::Verify { sample, place } => crate::runtime()?.block_on(verify(&place, sample)),
    }
}

fn status(place: &Place, verbose: bool) -> anyhow::Result<()> {
    let (data, cfg) = resolve(place)?;
    let state = State::open(&data)?;
    let uploads = state.all()?;
    let (mut tenants, mut waiting, mut never) = (0usize, Vec::new(), 0usize);
    let mut after = None;
    loop {
        let (ids, next) = store::layout::list_tenants(&data, after.as_ref(), 1000)?;
        for id in ids {
            tenants += 1;
            let changed = backup::worker::modified_ms(&store::layout::tenant_path(&data, &id));
            match state.in_bucket_as_of(id.as_str())? {
                None => {
                    never += 1;
                    waiting.push(id);
                }
                Some(at) if changed >= at => waiting.push(id),
                Some(_) => {}
            }
        }
        match next {
            Some(k) => after = Some(k),
            None => break,
        }
    }
    let bytes: u64 = uploads.iter().map(|u| u.bytes).sum();
    println!(
        "bucket: {} prefix: {:?} (every {:?})",
        cfg.bucket, cfg.prefix, cfg.interval
    );
    println!(
        "tenants here: {tenants}; with an upload: {}; last uploads total {bytes} bytes",
        uploads.len()
    );
    println!(
        "waiting for an upload: {} (never uploaded: {never})",
        waiting.len()
    );
    if let (Some(old), Some(new)) = (
        uploads.iter().map(|u| u.at_ms).min(),
        uploads.iter().map(|u| u.at_ms).max(),
    ) {
        println!(
            "newest upload: {}; oldest last-upload: {}",
            format_ms(new),
            format_ms(old)
        );
    }
    let shipped = state.meta(backup::log_ship::SHIPPED_KEY)?.unwrap_or(0);
    let logged = backup::log_ship::last_lsn(&data.join(store::inbox::LOG_DIR))?;
    println!(
        "ingest log: shipped up to LSN {shipped}; on disk up to {logged} ({} records not shipped)",
        logged.saturating_sub(shipped)
    );
    if verbose {
        for id in &waiting {
            println!("  waiting: {id}");
        }
    }
    Ok(())
}

async fn verify(place: &Place, sample: usize) -> anyhow::Result<()> {
    let (_, cfg) = resolve(place)?;
    let remote = Remote::new(&cfg)?;
    let mut names = remote.tenants().await?;
    if names.is_empty() {
        bail!("the bucket holds no tenant under prefix {:?}", cfg.prefix);
    }
    use rand::seq::SliceRandom;
    names.shuffle(&mut rand::thread_rng());
    names.truncate(sample.max(1));
    let dir = std::env::temp_dir().join(format!("tenantd-verify-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut bad = 0;
    for name in &names {
        let dest = dir.join(format!("{name}.db"));
        let place = Placement {
            created_lsn: 0,
            force: true,
        };
        let r = match choose_snapshot(&remote, name, None).await {
            Ok(snap) => restore_tenant(&remote, snap, &dest, Vec::new(), place).await,
            Err(e) => Err(e),
        };
        let checked = r.and_then(|r| {
            let ok = integrity_check(&dest)?;
            Ok::<_, BackupError>((r, ok))
        });
        match checked {
            Ok((r, ok)) if ok == "ok" => {
                println!(
                    "{name}: ok (snapshot of {}, {} bytes)",
                    format_ms(r.snapshot.at_ms),
                    r.bytes
                )
            }
            Ok((_, why)) => {
                bad += 1;
                println!("{name}: DAMAGED: {why}");
            }
            Err(e @ BackupError::Gone { .. }) => println!("{name}: skipped: {e}"),
            Err(e) => {
                bad += 1;
                println!("{name}: FAILED: {e}");
            }
        }
        let _ = std::fs::remove_file(&dest);
    }
    let _ = std::fs::remove_dir_all(&dir);
    // Every chunk read and checked, none kept.
    let log = ShippedLog::load(&remote, &HashMap::new()).await?;
    for (key, why) in &log.damaged {
        bad += 1;
        println!("log chunk {key}: DAMAGED: {why}");
    }
    if bad > 0 {
        bail!("{bad} damaged: sampled tenants or log chunks failed the test restore");
    }
    println!(
        "{} sampled tenants restore cleanly; every log chunk reads",
        names.len()
    );
    Ok(())
}
