//! The fleet runner: every tenant of a data dir, page by page, with a bounded number of worker
//! threads; resumable (tenants at the target are skipped).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::apply::{apply, Outcome};
use super::set::MigrationSet;
use crate::config::PoolConfig;
use crate::connection::{self, Access};
use crate::error::StoreError;
use crate::layout::{self, ListKey};
use crate::name::TenantId;

/// Options of a fleet run.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Worker threads (tenants migrated at once).
    pub jobs: usize,
    /// Run every tenant's migrations and roll them back.
    pub dry_run: bool,
}

/// Totals of a fleet run, and every failure.
#[derive(Debug, Default)]
pub struct FleetSummary {
    /// Tenants seen.
    pub tenants: usize,
    /// Tenants migrated (or that would be, in a dry run).
    pub migrated: usize,
    /// Tenants already at the target version.
    pub up_to_date: usize,
    /// Failed tenants: id and outcome (or the error that kept the file from opening).
    pub failed: Vec<(TenantId, String)>,
}

/// Migrates every tenant under `cfg.data_dir`; `progress(done, failed)` is called after each.
/// Errors are only failures to list the tenants; per-tenant problems land in the summary.
pub fn run_fleet(
    cfg: &PoolConfig,
    set: &MigrationSet,
    opts: &FleetOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<FleetSummary, StoreError> {
    const PAGE: usize = 1000;
    let summary = Mutex::new(FleetSummary::default());
    let done = AtomicUsize::new(0);
    let mut after: Option<ListKey> = None;
    loop {
        let (page, next) = layout::list_tenants(&cfg.data_dir, after.as_ref(), PAGE)?;
        let cursor = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..opts.jobs.max(1) {
                s.spawn(|| loop {
                    let i = cursor.fetch_add(1, Ordering::Relaxed);
                    let Some(id) = page.get(i) else { return };
                    let result = migrate_one(cfg, id, set, opts.dry_run);
                    let mut sum = summary.lock().expect("no worker panics while holding it");
                    sum.tenants += 1;
                    match result {
                        Ok(Outcome::UpToDate(_)) => sum.up_to_date += 1,
                        Ok(Outcome::Migrated { .. }) => sum.migrated += 1,
                        Ok(Outcome::Mismatch(m)) => sum.failed.push((id.clone(), m.to_string())),
                        Ok(Outcome::Failed {
                            at,
                            migration,
                            error,
                        }) => sum
                            .failed
                            .push((id.clone(), format!("at v{at}: {migration}: {error}"))),
                        Err(e) => sum.failed.push((id.clone(), format!("cannot open: {e}"))),
                    }
                    let failed = sum.failed.len();
                    drop(sum);
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1, failed);
                });
            }
        });
        match next {
            Some(k) => after = Some(k),
            None => break,
        }
    }
    let mut summary = summary.into_inner().expect("workers are done");
    summary.failed.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(summary)
}

fn migrate_one(
    cfg: &PoolConfig,
    id: &TenantId,
    set: &MigrationSet,
    dry_run: bool,
) -> Result<Outcome, StoreError> {
    let conn = connection::open_existing(
        &layout::tenant_path(&cfg.data_dir, id),
        Access::Write,
        cfg,
        None,
    )?;
    let outcome = apply(&conn, set, dry_run)?;
    connection::close_clean(conn);
    Ok(outcome)
}
