//! Reads: a tenant's reader connections and their per-tenant cap, or, in exclusive locking, its
//! writer; and showing a tenant (`TenantPool::inspect`) without opening it.
//!
//! Shared locking (`Locking::Shared`): a tenant has at most `readers_per_tenant` reader
//! connections, in use or idle: a read takes a permit first (waiting for one is an async wait,
//! so queued reads cost no thread), then an idle connection or a new one, and gives the
//! connection back to the slot afterwards. The connections of an open tenant are therefore
//! bounded, which the pool's fd budget relies on.
//!
//! Exclusive locking (`Locking::Exclusive`): the writer is the tenant's only connection (its
//! file lock refuses any other), so a read takes the writer (waiting in `queued_reads`, not
//! counted against `max_queued_writes`), one at a time with writes, with `PRAGMA query_only`
//! on for the read only: a read can never write, as on a reader. A write transaction held
//! across requests (a Hrana stream) makes reads of that tenant wait until it ends.

use std::sync::atomic::Ordering;

use rusqlite::Connection;

use super::slot::{wait_closed, Entry, Lease, Queued};
use super::{join_error, TenantPool, WriterGuard};
use crate::config::Locking;
use crate::connection::{self, Access};
use crate::error::StoreError;
use crate::inspect::{self, TenantSummary};
use crate::name::TenantId;

/// Runs `f` on a reader of the leased tenant once a reader permit is free (on its writer, read
/// only, in exclusive locking). Errors: opening the connection (`NotFound` if the file
/// vanished; `MigrationFailed` when it is the writer), a panic in `f` (as `Io`), or `f`'s.
pub(super) async fn run<R, F>(lease: Lease, f: F) -> Result<R, StoreError>
where
    R: Send + 'static,
    F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
{
    if lease.inner.cfg.locking == Locking::Exclusive {
        return on_writer(lease, f).await;
    }
    let slot = &lease.slot;
    let (queued, _) = Queued::join(&slot.queued_reads);
    let permit = slot.reader_permits.clone().acquire_owned().await;
    drop(queued);
    let permit = permit.expect("a slot's reader semaphore is never closed");
    tokio::task::spawn_blocking(move || {
        let result = with_reader(&lease, f);
        drop(permit);
        result
    })
    .await
    .map_err(join_error)?
}

/// Runs `f` on one of the slot's reader connections (an idle one, or a new one) and keeps the
/// connection for the next read. Blocking: call on a blocking thread, holding a reader permit.
fn with_reader<R>(
    lease: &Lease,
    f: impl FnOnce(&Connection) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    let (slot, inner) = (&lease.slot, &lease.inner);
    let idle = slot.readers.lock().pop();
    let conn = match idle {
        Some(c) => c,
        None => {
            let c = connection::open_existing(&slot.path, Access::Read, &inner.cfg, None);
            // A failed open leaves the slot in place: other users may hold it.
            let c = c.inspect_err(|e| slot.note_open_error(e))?;
            inner
                .stats
                .connections_opened
                .fetch_add(1, Ordering::Relaxed);
            c
        }
    };
    // Give the connection back even if `f` panics (the permit bounds how many exist).
    struct GiveBack<'a> {
        lease: &'a Lease,
        conn: Option<Connection>,
    }
    impl Drop for GiveBack<'_> {
        fn drop(&mut self) {
            if let Some(conn) = self.conn.take() {
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                self.lease.slot.readers.lock().push(conn);
            }
        }
    }
    let back = GiveBack {
        lease,
        conn: Some(conn),
    };
    f(back.conn.as_ref().expect("set above"))
}

/// How long a connection outside the pool waits for the lock of a tenant the pool just opened
/// (exclusive locking) before `inspect` looks at the pool again.
const OFF_POOL_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(50);
/// How often `inspect` tries again after finding the file locked.
const OFF_POOL_ATTEMPTS: u32 = 100;

/// Runs `f` read-only on the leased tenant's writer (exclusive locking), opening it if needed.
async fn on_writer<R, F>(lease: Lease, f: F) -> Result<R, StoreError>
where
    R: Send + 'static,
    F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
{
    let slot = lease.slot.clone();
    let (queued, _) = Queued::join(&slot.queued_reads);
    let guard = WriterGuard::acquire_for_read(lease).await;
    drop(queued);
    let (_guard, result) = guard.run(move |conn| read_only(conn, f)).await?;
    result
}

/// Runs `f` on `conn` with `query_only` on, then rolls back what `f` left open and turns
/// `query_only` off again — also when `f` panics. Errors: SQLite, or `f`'s.
fn read_only<R>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    struct Restore<'a>(&'a Connection);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            if !self.0.is_autocommit() {
                let _ = self.0.execute_batch("ROLLBACK");
            }
            if let Err(e) = self.0.pragma_update(None, "query_only", false) {
                tracing::error!(error = %e, "cannot turn query_only off after a read");
            }
        }
    }
    conn.pragma_update(None, "query_only", true)?;
    let _restore = Restore(conn);
    f(conn)
}

impl TenantPool {
    /// The summary of tenant `id` (`GET /admin/tenants/{id}`) without opening it in the pool or
    /// migrating it: read on a connection of its own, or, in exclusive locking while the
    /// tenant's writer is open (its lock refuses a second connection), on that writer, read
    /// only, after a write in progress. Errors: `NotFound`, `ShuttingDown`, SQLite.
    pub async fn inspect(&self, id: &TenantId) -> Result<TenantSummary, StoreError> {
        let cfg = self.inner.cfg.clone();
        let path = self.path_of(id);
        if cfg.locking == Locking::Shared {
            return tokio::task::spawn_blocking(move || inspect::inspect(&path, &cfg))
                .await
                .map_err(join_error)?;
        }
        let mut attempts = 0;
        loop {
            if self.inner.shutting_down.load(Ordering::Acquire) {
                return Err(StoreError::ShuttingDown);
            }
            let lease = match self.inner.map.lock().get(id) {
                Some(Entry::Open(slot)) => Ok(self.inner.lease_slot(slot.clone())),
                Some(Entry::Closing(rx)) => Err(Some(rx.clone())),
                Some(Entry::Deleting) => return Err(StoreError::NotFound),
                None => Err(None),
            };
            match lease {
                Ok(lease) => {
                    // Holding the writer: the pool cannot open the file while this reads it.
                    let guard = WriterGuard::acquire_for_read(lease).await;
                    let (path, cfg) = (path.clone(), cfg.clone());
                    return tokio::task::spawn_blocking(move || match guard.opened() {
                        Some(conn) => read_only(conn, |c| Ok(inspect::summarize(c)?)),
                        None => inspect::inspect(&path, &cfg),
                    })
                    .await
                    .map_err(join_error)?;
                }
                Err(Some(closing)) => wait_closed(closing).await,
                Err(None) => {
                    // Closed: a connection of its own, which waits only briefly if the pool
                    // opened the tenant meanwhile; then look again (it is open now). The pool's
                    // open waits for this one's lock instead, up to its busy timeout.
                    let (path, mut cfg) = (path.clone(), cfg.clone());
                    cfg.busy_timeout = OFF_POOL_BUSY_TIMEOUT;
                    let summary =
                        tokio::task::spawn_blocking(move || inspect::inspect(&path, &cfg))
                            .await
                            .map_err(join_error)?;
                    match summary {
                        Err(e) if e.is_locked() && attempts < OFF_POOL_ATTEMPTS => attempts += 1,
                        done => return done,
                    }
                }
            }
        }
    }
}
