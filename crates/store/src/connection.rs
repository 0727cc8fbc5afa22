//! Opening and closing one tenant connection with tenantd's settings.
//!
//! Every connection: in exclusive locking (`PoolConfig::locking`) `locking_mode=EXCLUSIVE`
//! first (the WAL index in heap memory, no `-shm`; the file is locked against every other
//! connection until this one closes), WAL, `synchronous` from the durability mode, a small page
//! cache, the size quota, no automatic checkpoints (the pool schedules them), no checkpoint on
//! close and a persistent WAL (so closing is cheap: DESIGN.md §2 measured close-time checkpoints
//! at ~44x the cost of the write), and the defensive settings untrusted tenant SQL needs (no writable schema,
//! untrusted schema objects, no extension loading — rusqlite is built without it), plus the
//! trusted authorizer: tenantd's own statements run under it, so a tenant's trigger or view they
//! fire (a migration inserting into a tenant table) cannot touch the reserved `_tenantd_*`
//! objects (`hrana::guard::trusted`).
//! A *clean* close re-enables checkpoint-on-close and WAL deletion, so a tenant closed that way
//! is just its `.db` file on disk.

use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, FileControl, OpenFlags};

use crate::config::{Locking, PoolConfig};
use crate::error::StoreError;

/// SQLite's page size for new tenant files.
pub const PAGE_SIZE: u64 = 4096;

/// Whether a connection may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The tenant's single writer.
    Write,
    /// A reader: `PRAGMA query_only` is on, so SQLite itself refuses writes. (Opened read-write
    /// so it can join a WAL file whose `-wal`/`-shm` do not exist yet.)
    Read,
}

/// Opens an existing tenant file. Never creates one: a missing file is [`StoreError::NotFound`].
/// `wal_pages` receives the WAL size after every commit (writers only).
pub fn open_existing(
    path: &Path,
    access: Access,
    cfg: &PoolConfig,
    wal_pages: Option<Arc<AtomicI32>>,
) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = match Connection::open_with_flags(path, flags) {
        Ok(c) => c,
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::CannotOpen) => {
            return Err(if path.exists() {
                StoreError::Sqlite(e)
            } else {
                StoreError::NotFound
            })
        }
        Err(e) => return Err(e.into()),
    };
    if cfg.locking == Locking::Exclusive {
        // Before the first access, so the WAL index is made in heap memory (no -shm).
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
    }
    configure(&mut conn, cfg)?;
    match access {
        Access::Write => configure_writer(&mut conn, cfg, wal_pages.unwrap_or_default())?,
        Access::Read => conn.pragma_update(None, "query_only", true)?,
    }
    Ok(conn)
}

/// Creates a new tenant file at `path` (which must not exist), in WAL mode, and runs `init`
/// on it inside one transaction. The caller makes the file visible atomically.
pub fn create_new(
    path: &Path,
    init: impl FnOnce(&Connection) -> rusqlite::Result<()>,
) -> Result<(), StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.pragma_update(None, "page_size", PAGE_SIZE as i64)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch("BEGIN")?;
    init(&conn)?;
    conn.execute_batch("COMMIT")?;
    // Default close: checkpoint into the .db, delete -wal/-shm, fsync. Creation is rare.
    conn.close().map_err(|(_, e)| StoreError::from(e))?;
    Ok(())
}

fn configure(conn: &mut Connection, cfg: &PoolConfig) -> Result<(), StoreError> {
    conn.busy_timeout(cfg.busy_timeout)?;
    hrana::guard::apply_open_settings(conn)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    let mut persist = 1;
    conn.file_control(None::<&str>, FileControl::PersistWal(&mut persist))?;
    conn.pragma_update(None, "cache_size", -i64::from(cfg.cache_kib))?;
    conn.pragma_update(None, "synchronous", cfg.durability.synchronous_pragma())?;
    Ok(())
}

fn configure_writer(
    conn: &mut Connection,
    cfg: &PoolConfig,
    pages: Arc<AtomicI32>,
) -> Result<(), StoreError> {
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Busy("tenant file is not in WAL mode"));
    }
    let max_pages = i64::try_from(cfg.quota_bytes.div_ceil(PAGE_SIZE)).unwrap_or(i64::MAX);
    conn.pragma_update(None, "max_page_count", max_pages)?;
    watch_commits(conn, pages, None::<fn()>)
}

/// Sets the writer's WAL hook: after every commit `pages` gets the WAL's size and `on_commit`
/// (if any) runs. Replaces any earlier hook. Registering a WAL hook also turns off SQLite's
/// automatic checkpoint on commit.
pub fn watch_commits(
    conn: &mut Connection,
    pages: Arc<AtomicI32>,
    on_commit: Option<impl Fn() + Send + 'static>,
) -> Result<(), StoreError> {
    conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, n: i32| {
        pages.store(n, Ordering::Relaxed);
        if let Some(f) = &on_commit {
            f();
        }
        Ok(())
    }))?;
    Ok(())
}

/// Copies the database behind `conn` to a new file `dest` (replaced if it exists) with SQLite's
/// online backup, `step` pages at a time, or all in one step (one read transaction: consistent
/// whatever other connections write) when `step` is not positive. In steps, it is consistent as
/// long as nobody else writes meanwhile (callers hold the tenant's writer).
pub fn backup_to(conn: &Connection, dest: &Path, step: std::ffi::c_int) -> Result<(), StoreError> {
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(dest);
    let mut out = Connection::open(dest)?;
    {
        let backup = rusqlite::backup::Backup::new(conn, &mut out)?;
        if step > 0 {
            backup.run_to_completion(step, std::time::Duration::ZERO, None)?;
        } else {
            match backup.step(-1)? {
                rusqlite::backup::StepResult::Done => {}
                other => {
                    let why = format!("backup did not finish in one step: {other:?}");
                    return Err(StoreError::Io(std::io::Error::other(why)));
                }
            }
        }
    }
    out.close().map_err(|(_, e)| StoreError::from(e))?;
    Ok(())
}

/// Checkpoints the WAL into the database file and truncates it. Holds the connection's lock
/// while it runs; readers in the WAL make it wait up to the busy timeout.
pub fn checkpoint(conn: &Connection) -> Result<(), StoreError> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(())
}

/// Checkpoints a closed tenant's leftover WAL into its file and closes it cleanly, so it is just
/// its `.db` again. Only for tenants no pool connection has open. Errors: `NotFound`, SQLite.
pub fn tidy(path: &Path, cfg: &PoolConfig) -> Result<(), StoreError> {
    let conn = open_existing(path, Access::Write, cfg, None)?;
    let done = checkpoint(&conn);
    close_clean(conn);
    done
}

/// Closes `conn` so that, if it is the file's last connection, SQLite checkpoints and deletes
/// the `-wal` and `-shm` files. Errors are logged: a failed tidy-up never loses data.
pub fn close_clean(conn: Connection) {
    let tidy = || -> rusqlite::Result<()> {
        let mut persist = 0;
        conn.file_control(None::<&str>, FileControl::PersistWal(&mut persist))?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, false)?;
        Ok(())
    };
    if let Err(e) = tidy() {
        tracing::warn!(error = %e, "cannot prepare clean close");
    }
    close_fast(conn);
}

/// Closes `conn` without a checkpoint: the WAL (if any) stays beside the file.
pub fn close_fast(conn: Connection) {
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "cannot close tenant connection");
    }
}
