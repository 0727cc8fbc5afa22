//! Read-only SQL on a reader connection. SQL requests used to take the tenant's writer even to
//! read, so a dashboard's reads queued behind ingest; a WAL reader never waits for the writer.
//!
//! A request may go to a reader when it holds no writer (its stream has no open transaction)
//! and every statement it would run is read-only: a cheap look at the first keyword on the
//! async side (`hrana::exec::looks_read_only`), then SQLite's own answer for each prepared
//! statement on the reader itself (`prepares_read_only`). A request that fails the second check
//! is handed back and runs on the writer as before. On the reader the guard is entered
//! read-only whatever the token allows (readers keep `query_only` on), so a misjudged statement
//! fails with `SQLITE_READONLY` instead of writing past the writer's lock. Transaction control
//! never goes to a reader, so a reader is never left inside a transaction; if one were, it is
//! rolled back before the connection returns to the pool.

use hrana::exec::rollback_if_open;
use hrana::guard::Cancel;
use rusqlite::Connection;

use super::error::SqlError;
use super::pipeline::with_guard;
use super::tenant::SqlTenant;
use crate::state::AppState;

/// Offers `work` to a reader of the tenant: `run` gets it with a guarded (read-only) reader
/// connection and either runs it (`Ok(result)`) or hands it back (`Err(work)`, to run on the
/// writer). Errors: unknown tenant (404), pool exhausted or shutdown (503), the guard could not
/// be applied (500); `work` is lost then.
pub async fn try_reader<T, R>(
    st: &AppState,
    tenant: &SqlTenant,
    cancel: Cancel,
    work: T,
    run: impl FnOnce(T, &Connection) -> Result<R, T> + Send + 'static,
) -> Result<Result<R, T>, SqlError>
where
    T: Send + 'static,
    R: Send + 'static,
{
    let cfg = st.sql.config.guard.clone();
    let tenant_id = tenant.id.clone();
    let ran = st
        .pool
        .read(&tenant.id, move |conn| {
            let ran = with_guard(conn, &cfg, true, cancel, |guard| Ok(run(work, guard)));
            match rollback_if_open(conn) {
                Ok(false) => {}
                Ok(true) => tracing::error!(tenant = %tenant_id, "a reader was left in a transaction: rolled back"),
                Err(e) => tracing::error!(tenant = %tenant_id, error = %e, "cannot roll back a reader"),
            }
            Ok(ran)
        })
        .await?;
    ran
}
