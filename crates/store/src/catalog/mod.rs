//! The node catalog: one SQLite file, `<data>/catalog.db`, that answers what the ingest path
//! needs without opening a tenant file — does the tenant exist, its next event id, token epoch
//! and webhook policy, a source's scheme and secret, and whether a delivery id was seen within
//! the dedupe window.
//!
//! It is a cache of the tenant files (the source of truth for configuration) plus the dedupe
//! index, so losing it is recoverable: [`Catalog::rebuild_all`] makes it again from the files.
//! One connection for the whole node (its page cache bounded by [`CatalogConfig::cache_kib`]);
//! nothing is kept per tenant in memory, so an idle tenant costs no RAM and no fd.
//!
//! - `schema.rs`: the file's settings, tables and version check;
//! - `deliveries.rs`: the dedupe index, the appliers' batch writes, pruning the window;
//! - `meta.rs`: node-wide values (log position applied, unclean starts, running flag);
//! - `rebuild.rs`: making a tenant's rows agree with its file, and the whole catalog;
//! - `error.rs`: [`CatalogError`].

mod deliveries;
mod error;
pub mod meta;
mod rebuild;
mod schema;

use std::path::{Path, PathBuf};
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

pub use deliveries::{CatalogUpdate, NewDelivery, DEFAULT_DEDUPE_WINDOW};
pub use error::CatalogError;
pub use rebuild::{RebuildReport, Rebuilt, MAX_REPORTED_FAILURES};
pub use schema::{APPLICATION_ID, SCHEMA_VERSION};

use crate::config::Durability;
use crate::events::HookConfig;
use crate::name::{SourceName, TenantId};
use crate::policy::{UnknownPolicy, WebhookPolicy};

/// The catalog's file name in the data directory.
pub const CATALOG_FILE: &str = "catalog.db";
/// Default page cache of the catalog connection, KiB.
pub const DEFAULT_CATALOG_CACHE_KIB: u32 = 4096;

/// How the catalog is opened. `CatalogConfig::new(durability)` gives the defaults.
#[derive(Debug, Clone)]
pub struct CatalogConfig {
    /// `synchronous` of the catalog file: `FULL` in `fsync` mode, `NORMAL` in `crash` mode.
    pub durability: Durability,
    /// Page cache of the catalog's one connection, KiB (its whole memory, whatever the number
    /// of tenants).
    pub cache_kib: u32,
    /// Delivery ids younger than this are kept for dedupe (rebuild copies these from the files).
    pub dedupe_window: Duration,
}

impl CatalogConfig {
    /// The defaults for `durability`.
    pub fn new(durability: Durability) -> Self {
        CatalogConfig {
            durability,
            cache_kib: DEFAULT_CATALOG_CACHE_KIB,
            dedupe_window: DEFAULT_DEDUPE_WINDOW,
        }
    }
}

/// The path of the catalog in `data_dir`.
pub fn catalog_path(data_dir: &Path) -> PathBuf {
    data_dir.join(CATALOG_FILE)
}

/// A tenant's catalog row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRow {
    /// The id the tenant's next event gets; only ever rises while the row exists.
    pub next_event_id: i64,
    /// The tenant's token epoch (`None` for a file that predates epochs).
    pub token_epoch: Option<String>,
    /// The webhook policy; an unreadable stored value stays an error, so callers fail closed
    /// exactly as with the tenant file.
    pub webhook_policy: Result<WebhookPolicy, UnknownPolicy>,
}

impl TenantRow {
    /// The row of a new tenant: first event id 1, the default policy.
    pub fn new(token_epoch: Option<String>) -> Self {
        TenantRow {
            next_event_id: 1,
            token_epoch,
            webhook_policy: Ok(WebhookPolicy::default()),
        }
    }

    fn policy_text(&self) -> &str {
        match &self.webhook_policy {
            Ok(p) => p.as_str(),
            Err(UnknownPolicy(raw)) => raw,
        }
    }
}

/// The node catalog: one SQLite connection behind a mutex. Calls block (briefly) on that
/// connection; async callers run them on a blocking thread.
pub struct Catalog {
    conn: Mutex<Connection>,
    path: PathBuf,
    cfg: CatalogConfig,
}

impl Catalog {
    /// Opens the catalog at `path`, creating it (empty) if missing. Errors: `Open`, `Locked`
    /// (another process has it), `NotACatalog`, `Version`, `Corrupt` — for the last three, move
    /// the file aside and rebuild with [`Catalog::rebuild_all`].
    pub fn open(path: &Path, cfg: CatalogConfig) -> Result<Self, CatalogError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn =
            Connection::open_with_flags(path, flags).map_err(|source| CatalogError::Open {
                path: path.to_owned(),
                source,
            })?;
        schema::configure(&conn, path, cfg.durability, cfg.cache_kib)?;
        schema::ensure(&mut conn, path)?;
        Ok(Catalog {
            conn: Mutex::new(conn),
            path: path.to_owned(),
            cfg,
        })
    }

    /// Closes the connection (the WAL is checkpointed into the file). Errors: SQLite.
    pub fn close(self) -> Result<(), CatalogError> {
        let path = self.path;
        self.conn
            .into_inner()
            .close()
            .map_err(|(_, e)| CatalogError::from_sqlite(&path, e))
    }

    /// The catalog file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &CatalogConfig {
        &self.cfg
    }

    fn fail(&self, e: rusqlite::Error) -> CatalogError {
        CatalogError::from_sqlite(&self.path, e)
    }

    /// The tenant's row, `None` if the catalog has none. Errors: `Corrupt`, SQLite.
    pub fn tenant(&self, id: &TenantId) -> Result<Option<TenantRow>, CatalogError> {
        let conn = self.conn.lock();
        read_tenant(&conn, id.as_str()).map_err(|e| self.fail(e))
    }

    /// Every tenant with a row (for per-slot listings; about 30 bytes each in memory). Ids
    /// that are no longer valid names are skipped. Errors: `Corrupt`, SQLite.
    pub fn tenant_ids(&self) -> Result<Vec<TenantId>, CatalogError> {
        let conn = self.conn.lock();
        let read = || -> rusqlite::Result<Vec<TenantId>> {
            let mut stmt = conn.prepare("SELECT id FROM tenants")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for id in rows {
                if let Ok(id) = TenantId::parse(&id?) {
                    out.push(id);
                }
            }
            Ok(out)
        };
        read().map_err(|e| self.fail(e))
    }

    /// Inserts or replaces the tenant's row; an existing `next_event_id` is never lowered.
    /// Errors: `Corrupt`, `DiskFull`, SQLite.
    pub fn put_tenant(&self, id: &TenantId, row: &TenantRow) -> Result<(), CatalogError> {
        let conn = self.conn.lock();
        write_tenant(&conn, id.as_str(), row).map_err(|e| self.fail(e))
    }

    /// Removes the tenant's row with its hooks and deliveries, in one transaction; false if it
    /// had no row. Errors: `Corrupt`, `DiskFull`, SQLite.
    pub fn delete_tenant(&self, id: &TenantId) -> Result<bool, CatalogError> {
        let mut conn = self.conn.lock();
        let run = |conn: &mut Connection| -> rusqlite::Result<bool> {
            let tx = conn.transaction()?;
            let n = remove_tenant(&tx, id.as_str())?;
            tx.commit()?;
            Ok(n)
        };
        run(&mut conn).map_err(|e| self.fail(e))
    }

    /// The verification settings of the tenant's source, `None` if none are configured.
    /// Errors: `Corrupt`, SQLite.
    pub fn hook(
        &self,
        id: &TenantId,
        source: &SourceName,
    ) -> Result<Option<HookConfig>, CatalogError> {
        let conn = self.conn.lock();
        conn.prepare_cached("SELECT scheme, secret FROM hooks WHERE tenant = ?1 AND source = ?2")
            .and_then(|mut s| {
                s.query_row(params![id.as_str(), source.as_str()], |r| {
                    Ok(HookConfig {
                        scheme: r.get(0)?,
                        secret: r.get(1)?,
                    })
                })
                .optional()
            })
            .map_err(|e| self.fail(e))
    }

    /// Sets (or replaces) a source's verification settings. Errors: `UnknownTenant` (no row),
    /// `Corrupt`, `DiskFull`, SQLite.
    pub fn put_hook(
        &self,
        id: &TenantId,
        source: &SourceName,
        hook: &HookConfig,
    ) -> Result<(), CatalogError> {
        let conn = self.conn.lock();
        let n = conn
            .prepare_cached(
                "INSERT INTO hooks(tenant, source, scheme, secret)
                 SELECT id, ?2, ?3, ?4 FROM tenants WHERE id = ?1
                 ON CONFLICT(tenant, source) DO UPDATE
                 SET scheme = excluded.scheme, secret = excluded.secret",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id.as_str(),
                    source.as_str(),
                    hook.scheme,
                    hook.secret
                ])
            })
            .map_err(|e| self.fail(e))?;
        if n == 0 {
            return Err(CatalogError::UnknownTenant(id.clone()));
        }
        Ok(())
    }

    /// Removes a source's verification settings; false if it had none. Errors: `Corrupt`,
    /// `DiskFull`, SQLite.
    pub fn delete_hook(&self, id: &TenantId, source: &SourceName) -> Result<bool, CatalogError> {
        let conn = self.conn.lock();
        conn.prepare_cached("DELETE FROM hooks WHERE tenant = ?1 AND source = ?2")
            .and_then(|mut s| s.execute(params![id.as_str(), source.as_str()]))
            .map(|n| n > 0)
            .map_err(|e| self.fail(e))
    }
}

fn read_tenant(conn: &Connection, id: &str) -> rusqlite::Result<Option<TenantRow>> {
    conn.prepare_cached(
        "SELECT next_event_id, token_epoch, webhook_policy FROM tenants WHERE id = ?1",
    )?
    .query_row([id], |r| {
        let policy: String = r.get(2)?;
        Ok(TenantRow {
            next_event_id: r.get(0)?,
            token_epoch: r.get(1)?,
            webhook_policy: WebhookPolicy::parse(&policy),
        })
    })
    .optional()
}

fn write_tenant(conn: &Connection, id: &str, row: &TenantRow) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO tenants(id, next_event_id, token_epoch, webhook_policy)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(id) DO UPDATE SET
             next_event_id = max(next_event_id, excluded.next_event_id),
             token_epoch = excluded.token_epoch,
             webhook_policy = excluded.webhook_policy",
    )?
    .execute(params![
        id,
        row.next_event_id,
        row.token_epoch,
        row.policy_text()
    ])?;
    Ok(())
}

fn remove_tenant(conn: &Connection, id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("DELETE FROM deliveries WHERE tenant = ?1")?
        .execute([id])?;
    conn.prepare_cached("DELETE FROM hooks WHERE tenant = ?1")?
        .execute([id])?;
    let n = conn
        .prepare_cached("DELETE FROM tenants WHERE id = ?1")?
        .execute([id])?;
    Ok(n > 0)
}
