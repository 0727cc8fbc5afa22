//! Reads: a tenant's reader connections and their per-tenant cap.
//!
//! A tenant has at most `readers_per_tenant` reader connections, in use or idle: a read takes a
//! permit first (waiting for one is an async wait, so queued reads cost no thread), then an
//! idle connection or a new one, and gives the connection back to the slot afterwards. The
//! connections of an open tenant are therefore bounded, which the pool's fd budget relies on.

use std::sync::atomic::Ordering;

use rusqlite::Connection;

use super::join_error;
use super::slot::{Lease, Queued};
use crate::connection::{self, Access};
use crate::error::StoreError;

/// Runs `f` on a reader of the leased tenant once a reader permit is free. Errors: opening the
/// connection (`NotFound` if the file vanished), a panic in `f` (as `Io`), or `f`'s.
pub(super) async fn run<R, F>(lease: Lease, f: F) -> Result<R, StoreError>
where
    R: Send + 'static,
    F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
{
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
