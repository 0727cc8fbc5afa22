//! A tenant's writer: [`WriterGuard`], and opening (and migrating) the writer connection.
//!
//! The guard is the exclusive use of one tenant's writer. It never comes apart: `run` moves the
//! whole guard into the blocking call and back out, so its `Drop` — which rolls back a
//! transaction left open — runs on every path: a panic inside the work, or the caller's future
//! dropped while the blocking call runs (the guard is then dropped on that thread when it ends).
//!
//! Opening the writer brings the tenant to the configured migrations. A failed migration is
//! remembered for the pool's life (its set is fixed): later requests get `MigrationFailed`
//! without re-running it, until the tenant is deleted or created again.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::OwnedMutexGuard;

use super::join_error;
use super::slot::{Lease, Queued, Slot};
use super::Inner;
use crate::connection::{self, Access};
use crate::error::StoreError;
use crate::migrate::{self, Outcome};
use crate::name::TenantId;

/// Exclusive use of one tenant's writer connection; the tenant stays open while it lives.
pub struct WriterGuard {
    // Field order matters: the connection lock must be released before the lease, whose drop
    // may close the tenant (and closing needs the lock free).
    conn: OwnedMutexGuard<Option<Connection>>,
    lease: Lease,
}

impl Drop for WriterGuard {
    /// A guard dropped in the middle of a transaction (a caller's bug, a panic, or a task
    /// cancelled at the wrong moment) must not leave that transaction open for the next writer:
    /// roll it back.
    fn drop(&mut self) {
        if let Some(conn) = self.conn.as_ref() {
            if !conn.is_autocommit() {
                let tenant = &self.lease.slot.id;
                tracing::warn!(%tenant, "writer released mid-transaction: rolled back");
                if let Err(e) = conn.execute_batch("ROLLBACK") {
                    tracing::error!(%tenant, error = %e, "rollback failed");
                }
            }
        }
    }
}

impl WriterGuard {
    /// Waits for the leased tenant's writer, unless too many writes already wait. Errors:
    /// `QueueFull`.
    pub(super) async fn acquire(lease: Lease) -> Result<Self, StoreError> {
        let slot = &lease.slot;
        let inner = &lease.inner;
        let (queued, before) = Queued::join(&slot.queued_writes);
        if before >= inner.cfg.max_queued_writes {
            inner
                .stats
                .rejected_queue_full
                .fetch_add(1, Ordering::Relaxed);
            return Err(StoreError::QueueFull);
        }
        let conn = slot.writer.clone().lock_owned().await;
        drop(queued);
        Ok(WriterGuard { conn, lease })
    }

    /// Waits for the leased tenant's writer to run a read on it (exclusive locking, where the
    /// writer is the tenant's only connection). Reads are not counted against
    /// `max_queued_writes`: they wait in `queued_reads`, as reads do in shared locking.
    pub(super) async fn acquire_for_read(lease: Lease) -> Self {
        let conn = lease.slot.writer.clone().lock_owned().await;
        WriterGuard { conn, lease }
    }

    /// The connection, if the writer has been opened (for a read that must not open it).
    pub(super) fn opened(&self) -> Option<&Connection> {
        self.conn.as_ref()
    }

    /// The tenant this guard writes to.
    pub fn tenant(&self) -> &TenantId {
        &self.lease.slot.id
    }

    pub(super) fn slot(&self) -> &Arc<Slot> {
        &self.lease.slot
    }

    /// Runs `f` on the writer connection on a blocking thread (opening and migrating the
    /// connection first if this is the tenant's first write since it was opened) and gives the
    /// guard back. Errors: `NotFound` if the file vanished, `MigrationFailed`, SQLite errors from
    /// opening, `Io` if `f` panicked (the transaction it left open is rolled back).
    pub async fn run<R, F>(self, f: F) -> Result<(Self, R), StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> R + Send + 'static,
    {
        let (guard, result) = tokio::task::spawn_blocking(move || {
            let mut guard = self;
            let result = guard.open_if_needed().map(|()| {
                let conn = guard.conn.as_ref().expect("opened above");
                f(conn)
            });
            (guard, result)
        })
        .await
        .map_err(join_error)?;
        Ok((guard, result?))
    }

    /// Opens the writer connection if the slot has none. Blocking.
    fn open_if_needed(&mut self) -> Result<(), StoreError> {
        if self.conn.is_some() {
            return Ok(());
        }
        let (slot, inner) = (&self.lease.slot, &self.lease.inner);
        // A failed open leaves the slot in place: other users may hold it.
        let conn = inner
            .open_writer(slot)
            .inspect_err(|e| slot.note_open_error(e))?;
        inner
            .stats
            .connections_opened
            .fetch_add(1, Ordering::Relaxed);
        slot.migrated.store(true, Ordering::Release);
        *self.conn = Some(conn);
        Ok(())
    }
}

impl Inner {
    /// Opens a tenant's writer and brings its schema up to the configured migrations. Errors:
    /// `NotFound`, `MigrationFailed` (now, or remembered from an earlier attempt), SQLite.
    fn open_writer(&self, slot: &Slot) -> Result<Connection, StoreError> {
        if let Some(error) = self.failed_migrations.lock().get(&slot.id) {
            return Err(StoreError::MigrationFailed(error.clone()));
        }
        let pages = Some(slot.wal_pages.clone());
        let mut conn = connection::open_existing(&slot.path, Access::Write, &self.cfg, pages)?;
        if let Some(changes) = &self.changes {
            let (changes, id) = (changes.clone(), slot.id.clone());
            let mark = move || changes.mark(&id);
            connection::watch_commits(&mut conn, slot.wal_pages.clone(), Some(mark))?;
        }
        let Some(set) = &self.cfg.migrations else {
            return Ok(conn);
        };
        let failed = match migrate::apply(&conn, set, false)? {
            Outcome::UpToDate(_) => return Ok(conn),
            Outcome::Migrated { from, to } => {
                self.stats.migration_runs.fetch_add(1, Ordering::Relaxed);
                tracing::info!(tenant = %slot.id, from, to, "tenant migrated on open");
                return Ok(conn);
            }
            Outcome::Failed {
                at,
                migration,
                error,
            } => {
                self.stats.migration_runs.fetch_add(1, Ordering::Relaxed);
                tracing::error!(tenant = %slot.id, at, %migration, %error, "tenant migration failed");
                format!("{migration}: {error}")
            }
            Outcome::Mismatch(m) => {
                tracing::error!(tenant = %slot.id, error = %m, "tenant migrations do not match");
                m.to_string()
            }
        };
        connection::close_fast(conn);
        self.stats
            .migration_failures
            .fetch_add(1, Ordering::Relaxed);
        self.failed_migrations
            .lock()
            .insert(slot.id.clone(), failed.clone());
        Err(StoreError::MigrationFailed(failed))
    }

    /// Forgets a remembered migration failure of `id` (its file was deleted or replaced).
    pub(super) fn forget_failed_migration(&self, id: &TenantId) {
        self.failed_migrations.lock().remove(id);
    }
}

/// Maps `SQLITE_FULL` to a quota or disk-full error, by comparing the file's size with its
/// quota. Call it on the connection that hit the error.
pub fn classify_full(conn: &Connection, err: StoreError) -> StoreError {
    if !matches!(err, StoreError::DiskFull) {
        return err;
    }
    let pages = conn.query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0));
    let max = conn.query_row("PRAGMA max_page_count", [], |r| r.get::<_, i64>(0));
    match (pages, max) {
        (Ok(p), Ok(m)) if p + 8 >= m => StoreError::QuotaExceeded,
        _ => StoreError::DiskFull,
    }
}
