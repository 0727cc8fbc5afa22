//! Connection state tenant SQL may change for its own statements (`PRAGMA foreign_keys`,
//! `PRAGMA defer_foreign_keys`) and that a [`super::Guard`] puts back to tenantd's baseline
//! when it ends, so neither trusted code nor the next tenant request runs under a tenant's
//! choice. The baseline is fixed (not whatever the guard found), so a value left over from a
//! restore SQLite could not do (below) is repaired by the next guard.

use rusqlite::Connection;

/// `foreign_keys` outside tenant SQL: on (the bundled SQLite's default, set at open as well).
pub const BASELINE_FOREIGN_KEYS: bool = true;

/// Outside a transaction, sets `foreign_keys` to its baseline and `defer_foreign_keys` off.
/// Inside one it changes nothing: SQLite ignores `foreign_keys` there and ends
/// `defer_foreign_keys` with the transaction, which may continue in the stream's next request.
/// A tenant's `foreign_keys` change made before a `BEGIN` that is still open is repaired by the
/// next guard that starts or ends outside a transaction (the stream holding that transaction
/// holds the writer meanwhile). Errors: SQLite refused a pragma.
pub fn reset_session_pragmas(conn: &Connection) -> rusqlite::Result<()> {
    if !conn.is_autocommit() {
        return Ok(());
    }
    let fk: bool = conn.pragma_query_value(None, "foreign_keys", |r| r.get(0))?;
    if fk != BASELINE_FOREIGN_KEYS {
        conn.pragma_update(None, "foreign_keys", BASELINE_FOREIGN_KEYS)?;
    }
    let deferred: bool = conn.pragma_query_value(None, "defer_foreign_keys", |r| r.get(0))?;
    if deferred {
        conn.pragma_update(None, "defer_foreign_keys", false)?;
    }
    Ok(())
}
