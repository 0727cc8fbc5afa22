//! Making the catalog agree with the tenant files, the source of truth for a tenant's
//! configuration (hooks, policy, token epoch), its largest event id and its recent delivery
//! ids. Tenant files are only read (a read-only connection outside the pool, closed cleanly).
//!
//! A rebuild never lowers a tenant's `next_event_id`: an id the catalog has handed out (a file
//! restored from an older copy, say) is never given to another event. It must not run
//! concurrently with the appliers on the same tenant (the caller holds that tenant's writer, or
//! runs it at start before the appliers), or it could drop deliveries they just added.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection};

use super::{read_tenant, remove_tenant, write_tenant, Catalog, CatalogError, TenantRow};
use crate::config::PoolConfig;
use crate::connection::{self, Access};
use crate::error::StoreError;
use crate::events::{self, HookConfig};
use crate::layout::{self, ListKey};
use crate::name::TenantId;
use crate::{policy, token_epoch};

/// Tenants read per transaction by [`Catalog::rebuild_all`].
const PAGE: usize = 256;
/// Failures [`RebuildReport::failures`] keeps (all are counted in `failed`).
pub const MAX_REPORTED_FAILURES: usize = 32;

/// What [`Catalog::rebuild_tenant`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebuilt {
    /// The rows already agreed with the file (or there was neither file nor row).
    Unchanged,
    /// Rows were written to agree with the file.
    Changed,
    /// The file is gone, so its rows were removed.
    Removed,
}

/// What [`Catalog::rebuild_all`] did.
#[derive(Debug, Default)]
pub struct RebuildReport {
    /// Tenant files found.
    pub tenants: usize,
    /// Tenants whose rows were rewritten.
    pub changed: usize,
    /// Rows removed because their tenant file is gone.
    pub removed: usize,
    /// Tenant files that could not be read (their rows were left as they were).
    pub failed: usize,
    /// The first [`MAX_REPORTED_FAILURES`] of those, with the reason.
    pub failures: Vec<(TenantId, CatalogError)>,
}

/// Everything the catalog holds about one tenant, in a comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    row: TenantRow,
    /// By source.
    hooks: Vec<(String, HookConfig)>,
    /// (source, delivery id, event id, received at), by source then delivery id.
    deliveries: Vec<(String, String, i64, i64)>,
}

impl Catalog {
    /// Makes the tenant's rows agree with its file at `path` (read-only); a missing file removes
    /// them. Errors: `TenantFile` (the file cannot be read: rows untouched), `Corrupt`,
    /// `DiskFull`, SQLite.
    pub fn rebuild_tenant(&self, id: &TenantId, path: &Path) -> Result<Rebuilt, CatalogError> {
        let cutoff = self.cutoff_ms();
        let dir = path.parent().unwrap_or(path);
        let snap = read_file(path, &self.pool_config(dir), cutoff).map_err(|source| {
            CatalogError::TenantFile {
                tenant: id.clone(),
                source,
            }
        })?;
        let mut conn = self.conn.lock();
        let run = |conn: &mut Connection| -> rusqlite::Result<Rebuilt> {
            let tx = conn.transaction()?;
            let done = sync(&tx, id.as_str(), snap, cutoff)?;
            tx.commit()?;
            Ok(done)
        };
        run(&mut conn).map_err(|e| self.fail(e))
    }

    /// Like [`Catalog::rebuild_tenant`], reading from `conn`, a connection to the tenant's file
    /// the caller already holds (the pool's, so no second opener is needed). Errors: `TenantFile`
    /// (the file cannot be read: rows untouched), `Corrupt`, `DiskFull`, SQLite.
    pub fn rebuild_tenant_from(
        &self,
        id: &TenantId,
        conn: &Connection,
    ) -> Result<Rebuilt, CatalogError> {
        let cutoff = self.cutoff_ms();
        let snap = read_snapshot(conn, cutoff).map_err(|e| CatalogError::TenantFile {
            tenant: id.clone(),
            source: e.into(),
        })?;
        let mut cat = self.conn.lock();
        let run = |cat: &mut Connection| -> rusqlite::Result<Rebuilt> {
            let tx = cat.transaction()?;
            let done = sync(&tx, id.as_str(), Some(snap), cutoff)?;
            tx.commit()?;
            Ok(done)
        };
        run(&mut cat).map_err(|e| self.fail(e))
    }

    /// Rebuilds every tenant under `data_dir` (listed with [`layout::list_tenants`], a page per
    /// transaction) and removes rows whose file is gone. A tenant file that cannot be read is
    /// reported and its rows left alone. Errors: `List`, `Corrupt`, `DiskFull`, SQLite.
    pub fn rebuild_all(&self, data_dir: &Path) -> Result<RebuildReport, CatalogError> {
        let cutoff = self.cutoff_ms();
        let pool_cfg = self.pool_config(data_dir);
        let mut report = RebuildReport::default();
        let mut after: Option<ListKey> = None;
        loop {
            let (page, next) =
                layout::list_tenants(data_dir, after.as_ref(), PAGE).map_err(CatalogError::List)?;
            let snaps: Vec<_> = page
                .into_iter()
                .map(|id| {
                    let path = layout::tenant_path(data_dir, &id);
                    let snap = read_file(&path, &pool_cfg, cutoff);
                    (id, snap)
                })
                .collect();
            report.tenants += snaps.len();
            self.sync_page(snaps, cutoff, &mut report)?;
            match next {
                Some(key) => after = Some(key),
                None => break,
            }
        }
        self.remove_orphans(data_dir, &mut report)?;
        Ok(report)
    }

    fn sync_page(
        &self,
        snaps: Vec<(TenantId, Result<Option<Snapshot>, StoreError>)>,
        cutoff: i64,
        report: &mut RebuildReport,
    ) -> Result<(), CatalogError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction().map_err(|e| self.fail(e))?;
        for (id, snap) in snaps {
            match snap {
                Ok(snap) => match sync(&tx, id.as_str(), snap, cutoff).map_err(|e| self.fail(e))? {
                    Rebuilt::Unchanged => {}
                    Rebuilt::Changed => report.changed += 1,
                    Rebuilt::Removed => report.removed += 1,
                },
                Err(source) => {
                    report.failed += 1;
                    if report.failures.len() < MAX_REPORTED_FAILURES {
                        let tenant = id.clone();
                        report
                            .failures
                            .push((id, CatalogError::TenantFile { tenant, source }));
                    }
                }
            }
        }
        tx.commit().map_err(|e| self.fail(e))
    }

    /// Removes the rows of tenants whose file no longer exists, a page at a time.
    fn remove_orphans(
        &self,
        data_dir: &Path,
        report: &mut RebuildReport,
    ) -> Result<(), CatalogError> {
        let mut after = String::new();
        loop {
            let ids: Vec<String> = {
                let conn = self.conn.lock();
                conn.prepare_cached("SELECT id FROM tenants WHERE id > ?1 ORDER BY id LIMIT ?2")
                    .and_then(|mut s| {
                        s.query_map(params![after, PAGE as i64], |r| r.get(0))?
                            .collect()
                    })
                    .map_err(|e| self.fail(e))?
            };
            let Some(last) = ids.last() else {
                return Ok(());
            };
            after = last.clone();
            let gone: Vec<&String> = ids
                .iter()
                .filter(|raw| match TenantId::parse(raw) {
                    // A stat error is not proof the file is gone: keep the row.
                    Ok(id) => matches!(layout::tenant_path(data_dir, &id).try_exists(), Ok(false)),
                    Err(_) => true,
                })
                .collect();
            if gone.is_empty() {
                continue;
            }
            let mut conn = self.conn.lock();
            let run = |conn: &mut Connection| -> rusqlite::Result<usize> {
                let tx = conn.transaction()?;
                let mut n = 0;
                for id in &gone {
                    n += usize::from(remove_tenant(&tx, id)?);
                }
                tx.commit()?;
                Ok(n)
            };
            report.removed += run(&mut conn).map_err(|e| self.fail(e))?;
        }
    }

    /// Receive times before this are outside the dedupe window.
    fn cutoff_ms(&self) -> i64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let window = self.cfg.dedupe_window.as_millis();
        i64::try_from(now.saturating_sub(window)).unwrap_or(i64::MAX)
    }

    /// Settings for reading tenant files (only the busy timeout and cache matter here).
    fn pool_config(&self, data_dir: &Path) -> PoolConfig {
        let mut cfg = PoolConfig::new(data_dir);
        cfg.durability = self.cfg.durability;
        cfg
    }
}

/// Reads what the catalog needs from a tenant file in one read transaction; `None` if there is
/// no file. An unreadable policy is kept as the error it is (callers fail closed).
fn read_file(path: &Path, cfg: &PoolConfig, cutoff: i64) -> Result<Option<Snapshot>, StoreError> {
    let conn = match connection::open_existing(path, Access::Read, cfg, None) {
        Ok(c) => c,
        Err(StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    let snap = read_snapshot(&conn, cutoff);
    connection::close_clean(conn);
    Ok(Some(snap?))
}

fn read_snapshot(conn: &Connection, cutoff: i64) -> rusqlite::Result<Snapshot> {
    let tx = conn.unchecked_transaction()?;
    let max_id: i64 = tx.query_row(
        "SELECT coalesce(max(id), 0) FROM _tenantd_events",
        [],
        |r| r.get(0),
    )?;
    let mut hooks = Vec::new();
    for (source, _) in events::list_hooks(&tx)? {
        if let Some(hook) = events::get_hook(&tx, &source)? {
            hooks.push((source, hook));
        }
    }
    let mut stmt = tx.prepare(
        "SELECT source, delivery_id, id, received_at_ms FROM _tenantd_events
         WHERE delivery_id IS NOT NULL AND received_at_ms >= ?1
         ORDER BY source, delivery_id",
    )?;
    let deliveries = stmt
        .query_map([cutoff], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    drop(stmt);
    let row = TenantRow {
        next_event_id: max_id.saturating_add(1),
        token_epoch: token_epoch::read(&tx)?,
        webhook_policy: policy::webhook_policy(&tx)?,
    };
    Ok(Snapshot {
        row,
        hooks,
        deliveries,
    })
}

/// The catalog's rows for `id` (deliveries inside the window only), `None` without a row.
fn catalog_snapshot(
    conn: &Connection,
    id: &str,
    cutoff: i64,
) -> rusqlite::Result<Option<Snapshot>> {
    let Some(row) = read_tenant(conn, id)? else {
        return Ok(None);
    };
    let hooks = conn
        .prepare_cached(
            "SELECT source, scheme, secret FROM hooks WHERE tenant = ?1 ORDER BY source",
        )?
        .query_map([id], |r| {
            Ok((
                r.get(0)?,
                HookConfig {
                    scheme: r.get(1)?,
                    secret: r.get(2)?,
                },
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let deliveries = conn
        .prepare_cached(
            "SELECT source, delivery_id, event_id, received_at_ms FROM deliveries
             WHERE tenant = ?1 AND received_at_ms >= ?2 ORDER BY source, delivery_id",
        )?
        .query_map(params![id, cutoff], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(Snapshot {
        row,
        hooks,
        deliveries,
    }))
}

/// Makes the rows of `id` equal `want` (`None`: remove them), inside the caller's transaction.
fn sync(
    conn: &Connection,
    id: &str,
    want: Option<Snapshot>,
    cutoff: i64,
) -> rusqlite::Result<Rebuilt> {
    let Some(mut want) = want else {
        return Ok(if remove_tenant(conn, id)? {
            Rebuilt::Removed
        } else {
            Rebuilt::Unchanged
        });
    };
    let have = catalog_snapshot(conn, id, cutoff)?;
    if let Some(have) = &have {
        want.row.next_event_id = want.row.next_event_id.max(have.row.next_event_id);
    }
    if have.as_ref() == Some(&want) {
        return Ok(Rebuilt::Unchanged);
    }
    write_tenant(conn, id, &want.row)?;
    conn.prepare_cached("DELETE FROM hooks WHERE tenant = ?1")?
        .execute([id])?;
    let mut put_hook = conn.prepare_cached(
        "INSERT INTO hooks(tenant, source, scheme, secret) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (source, hook) in &want.hooks {
        put_hook.execute(params![id, source, hook.scheme, hook.secret])?;
    }
    conn.prepare_cached("DELETE FROM deliveries WHERE tenant = ?1")?
        .execute([id])?;
    let mut put_delivery = conn.prepare_cached(
        "INSERT INTO deliveries(tenant, source, delivery_id, event_id, received_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (source, delivery, event, at) in &want.deliveries {
        put_delivery.execute(params![id, source, delivery, event, at])?;
    }
    Ok(Rebuilt::Changed)
}
