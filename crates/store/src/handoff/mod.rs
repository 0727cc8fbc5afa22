//! Moving a tenant between nodes, the node's side (docs/ARCHITECTURE.md "Moving a tenant"):
//! the fence ([`fence`]), the consistent snapshot the source sends ([`export`]), the file the
//! target receives and installs ([`Incoming`], [`install`]), the source's commit that retires
//! its copy ([`commit`]) and the undo of a move that gave up ([`undo`]), and the retired copies
//! kept for a grace period ([`load_retired`], [`sweep_retired`]).
//!
//! Files: a snapshot and an import in transit live in `<data>/moving/` (emptied at start); a
//! retired tenant is `<data>/moved/<id>.db` (+ `-wal` if it had one) and `<id>.json` naming its
//! new owner. The marker is written (and synced) before the file is renamed there, so after a
//! crash a retired file always has its marker, and a marker without a file is just dropped.

pub mod fence;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt as _;
use tokio::time::Instant;

pub use fence::{FenceError, Fences, Grant, Mark, Pass};

use crate::error::StoreError;
use crate::inbox::{write_created_lsn, Inbox, InboxError};
use crate::layout::{self, companion_paths, retired_paths, transit_path};
use crate::name::TenantId;
use crate::pool::join_error;

/// Default time a retired tenant's file is kept after it moved away.
pub const DEFAULT_MOVED_GRACE: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a commit or an install waits for the tenant's last readers to leave.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// Pages copied per step of the snapshot (SQLite's online backup).
const BACKUP_STEP_PAGES: std::ffi::c_int = 4096;

/// Why a move step failed.
#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    /// The fence is not held (expired, lifted) or another move holds it; or it moved.
    #[error(transparent)]
    Fence(#[from] FenceError),
    /// The tenant did not become quiet (records still appending, its writer held by an open
    /// transaction) within the wait.
    #[error("the tenant did not become quiet within {0:?}: {1}")]
    Busy(Duration, &'static str),
    /// The bytes received are not the bytes sent.
    #[error("checksum mismatch: expected {expected} ({expected_bytes} bytes), received {got} ({got_bytes} bytes)")]
    Checksum {
        /// The sender's sha256.
        expected: String,
        /// The sender's size.
        expected_bytes: u64,
        /// What arrived.
        got: String,
        /// Its size.
        got_bytes: u64,
    },
    /// The received file is not a sound tenant database.
    #[error("the received file is not a sound tenant database: {0}")]
    Unsound(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The inbox (catalog, log) failed.
    #[error(transparent)]
    Inbox(#[from] InboxError),
}

impl From<std::io::Error> for HandoffError {
    fn from(e: std::io::Error) -> Self {
        HandoffError::Store(StoreError::Io(e))
    }
}

/// A snapshot ready to send: a standalone copy of the tenant's database.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The file (in `<data>/moving/`; the caller removes it once sent).
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Its sha256, hex.
    pub sha256: String,
    /// The id the tenant's next event must get on the target (at least).
    pub next_event_id: i64,
}

/// The marker of a retired tenant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Retired {
    /// The node it moved to.
    to: String,
    /// When it moved, ms since the Unix epoch.
    at_ms: i64,
}

/// Takes the consistent snapshot of `id` for the move holding fence `token`: waits (up to
/// `wait`) until none of its records is still being appended, takes its writer (applying every
/// acknowledged webhook first), copies the database with SQLite's online backup while holding
/// it, and hashes the copy. The fence keeps every new write out, so the copy is the tenant's
/// last state here unless the fence expires first (checked at the end). Errors: `Fence`
/// (expired before or during), `Busy`, `Store` (`NotFound`, I/O, SQLite).
pub async fn export(
    inbox: &Inbox,
    id: &TenantId,
    token: u64,
    wait: Duration,
) -> Result<Snapshot, HandoffError> {
    let pool = inbox.pool();
    let held = || {
        if pool.fences().holds(id, token, Instant::now()) {
            Ok(())
        } else {
            Err(HandoffError::Fence(FenceError::Expired))
        }
    };
    held()?;
    if !inbox.quiesce(id, wait).await {
        return Err(HandoffError::Busy(wait, "webhooks still being logged"));
    }
    let guard = tokio::time::timeout(wait, pool.writer_unfenced(id))
        .await
        .map_err(|_| HandoffError::Busy(wait, "its writer is held (an open SQL transaction)"))??;
    let path = transit_path(&pool.config().data_dir, id, &format!("export.{token}"));
    let dest = path.clone();
    let (_guard, copied) = guard.run(move |conn| copy_database(conn, &dest)).await?;
    let max_id = copied?;
    held()?;
    let next_event_id = inbox.next_event_id(id)?.max(max_id + 1);
    let hashed = path.clone();
    let (bytes, sha256) = tokio::task::spawn_blocking(move || hash_file(&hashed))
        .await
        .map_err(join_error)??;
    Ok(Snapshot {
        path,
        bytes,
        sha256,
        next_event_id,
    })
}

/// Copies the database behind `conn` to a new file `dest` page by page (consistent: the caller
/// holds the writer). Returns the tenant's largest event id (0 without events).
fn copy_database(conn: &rusqlite::Connection, dest: &Path) -> Result<i64, StoreError> {
    crate::connection::backup_to(conn, dest, BACKUP_STEP_PAGES)?;
    let max: Option<i64> =
        conn.query_row("SELECT max(id) FROM _tenantd_events", [], |r| r.get(0))?;
    Ok(max.unwrap_or(0))
}

/// Size and sha256 (hex) of a file.
fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((bytes, hex::encode(hasher.finalize())))
}

/// A tenant file being received for an import: written to `<data>/moving/`, hashed as it
/// arrives. Dropped without [`Incoming::finish`], it removes its file.
pub struct Incoming {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    hasher: Sha256,
    bytes: u64,
}

/// A received file, synced, with its size and sha256.
#[derive(Debug)]
pub struct Received {
    path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Its sha256, hex.
    pub sha256: String,
}

impl Drop for Received {
    fn drop(&mut self) {
        // Installed files were renamed away; anything left here was refused.
        let _ = std::fs::remove_file(&self.path);
        for c in companion_paths(&self.path) {
            let _ = std::fs::remove_file(c);
        }
    }
}

impl Incoming {
    /// Starts receiving a file for `id` under `data_dir`. Errors: I/O.
    pub async fn create(data_dir: &Path, id: &TenantId) -> std::io::Result<Incoming> {
        static IMPORTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = IMPORTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = transit_path(data_dir, id, &format!("import.{}.{n}", std::process::id()));
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let file = tokio::fs::File::create(&path).await?;
        Ok(Incoming {
            path,
            file: Some(file),
            hasher: Sha256::new(),
            bytes: 0,
        })
    }

    /// Bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Appends a chunk. Errors: I/O.
    pub async fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        let file = self.file.as_mut().expect("written before finish");
        file.write_all(chunk).await?;
        self.hasher.update(chunk);
        self.bytes += chunk.len() as u64;
        Ok(())
    }

    /// Syncs the file and hands it over. Errors: I/O.
    pub async fn finish(mut self) -> std::io::Result<Received> {
        let mut file = self.file.take().expect("finished once");
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        let hasher = std::mem::take(&mut self.hasher);
        Ok(Received {
            path: std::mem::take(&mut self.path),
            bytes: self.bytes,
            sha256: hex::encode(hasher.finalize()),
        })
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// What an install put in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Installed {
    /// The file's size.
    pub bytes: u64,
    /// Events in it.
    pub events: i64,
    /// The next event id the catalog gives it.
    pub next_event_id: i64,
}

/// Installs a received tenant file as `id`: the sha256 and size must be the sender's, the file
/// must pass `integrity_check` and be a tenant file; its `created_lsn` becomes this node's log
/// end (records an earlier tenant of the id left in this node's log are never applied to it);
/// then it is renamed into place (replacing a copy from an earlier attempt: the caller checks
/// that this node does not serve `id`), the directory synced, a retired copy of `id` dropped,
/// and the catalog rebuilt from it with a next event id of at least `next_event_id`. Errors:
/// `Checksum`, `Unsound`, `Store` (`Busy`, I/O), `Inbox`.
pub async fn install(
    inbox: &Inbox,
    id: &TenantId,
    received: Received,
    sha256: &str,
    bytes: u64,
    next_event_id: i64,
) -> Result<Installed, HandoffError> {
    if received.sha256 != sha256.to_ascii_lowercase() || received.bytes != bytes {
        return Err(HandoffError::Checksum {
            expected: sha256.to_string(),
            expected_bytes: bytes,
            got: received.sha256.clone(),
            got_bytes: received.bytes,
        });
    }
    let lsn = inbox.creation_lsn().await?;
    let tmp = received.path.clone();
    let events = tokio::task::spawn_blocking(move || prepare_import(&tmp, lsn))
        .await
        .map_err(join_error)??;
    let pool = inbox.pool();
    let (data, tenant) = (pool.config().data_dir.clone(), id.clone());
    let tmp = received.path.clone();
    pool.with_closed(id, CLOSE_WAIT, move |path| {
        put_in_place(&tmp, path)?;
        drop_retired(&data, &tenant)?;
        Ok(())
    })
    .await?;
    pool.fences().clear_moved(id);
    pool.mark_new(id);
    let carried = next_event_id;
    inbox.tenant_imported(id, carried)?;
    let next_event_id = inbox.next_event_id(id)?;
    Ok(Installed {
        bytes: received.bytes,
        events,
        next_event_id,
    })
}

/// Checks a received file (`integrity_check`, the reserved events table), writes its
/// `created_lsn`, folds its WAL back and syncs it. Returns its event count.
fn prepare_import(path: &Path, created: ingest::Lsn) -> Result<i64, HandoffError> {
    let conn = rusqlite::Connection::open(path).map_err(StoreError::from)?;
    let unsound = |e: rusqlite::Error| HandoffError::Unsound(e.to_string());
    let verdict: String = conn
        .query_row("PRAGMA integrity_check(1)", [], |r| r.get(0))
        .map_err(unsound)?;
    if verdict != "ok" {
        return Err(HandoffError::Unsound(format!("integrity_check: {verdict}")));
    }
    let events: i64 = conn
        .query_row("SELECT count(*) FROM _tenantd_events", [], |r| r.get(0))
        .map_err(|e| HandoffError::Unsound(format!("not a tenant file: {e}")))?;
    write_created_lsn(&conn, created).map_err(StoreError::from)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(StoreError::from)?;
    conn.close().map_err(|(_, e)| StoreError::from(e))?;
    std::fs::File::open(path)?.sync_all()?;
    Ok(events)
}

/// Renames `tmp` to the tenant path `path` (dropping stale companions first) and syncs both
/// directories.
fn put_in_place(tmp: &Path, path: &Path) -> Result<(), StoreError> {
    let dir = path.parent().expect("tenant paths have a parent");
    std::fs::create_dir_all(dir)?;
    for c in companion_paths(path) {
        remove_if_there(&c)?;
    }
    std::fs::rename(tmp, path)?;
    sync_dir(dir)?;
    if let Some(from) = tmp.parent() {
        sync_dir(from)?;
    }
    Ok(())
}

/// The source's commit: turns the fence `token` into `Moved` (no write of `id` passes from
/// now on), then retires the file — closed cleanly, the marker written, the file renamed into
/// `<data>/moved/` — and drops the tenant's catalog rows. If retiring fails the tenant is
/// served here again (the fence is gone; the mover must undo the import). Returns the node it
/// moved to. Errors: `Fence` (`Expired`: the move must start over; `Moved`: committed before),
/// `Store`, `Inbox`.
pub async fn commit(inbox: &Inbox, id: &TenantId, token: u64) -> Result<String, HandoffError> {
    let pool = inbox.pool();
    let to = pool.fences().commit(id, token, Instant::now())?;
    pool.mark_changed(id); // the backup leaves a tombstone here: the tenant lives elsewhere
    let (data, tenant, dest) = (pool.config().data_dir.clone(), id.clone(), to.clone());
    let retired = pool
        .with_closed(id, CLOSE_WAIT, move |path| {
            retire_files(&data, &tenant, path, &dest)
        })
        .await;
    match retired {
        Ok(()) => {
            inbox.tenant_deleted(id)?;
            Ok(to)
        }
        Err(e) => {
            pool.fences().clear_moved(id);
            Err(e.into())
        }
    }
}

/// What [`undo`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undone {
    /// The fence was lifted: writes go on here.
    Lifted,
    /// The move had been committed: the retired file is back in place and served here.
    Restored,
    /// Nothing to undo (no fence with the token, nothing retired).
    Nothing,
}

/// Undoes a move of `id` from this node that gave up: lifts the fence `token`, or, after a
/// commit, puts the retired file back (the caller checks that the target never took over:
/// this node's table must still give it `id`). Errors: `Store` (`Busy`, I/O).
pub async fn undo(inbox: &Inbox, id: &TenantId, token: u64) -> Result<Undone, HandoffError> {
    let pool = inbox.pool();
    if pool.fences().lift(id, token) {
        return Ok(Undone::Lifted);
    }
    if pool.fences().moved_to(id).is_none() {
        return Ok(Undone::Nothing);
    }
    let (data, tenant) = (pool.config().data_dir.clone(), id.clone());
    pool.with_closed(id, CLOSE_WAIT, move |path| {
        let (db, marker) = retired_paths(&data, &tenant);
        for (from, to) in companion_paths(&db).into_iter().zip(companion_paths(path)) {
            rename_if_there(&from, &to)?;
        }
        std::fs::rename(&db, path)?;
        sync_dir(path.parent().expect("tenant paths have a parent"))?;
        remove_if_there(&marker)?;
        Ok(())
    })
    .await?;
    pool.fences().clear_moved(id);
    // The catalog rows went with the commit: rebuilt from the file (ids continue from its
    // largest, at least from this node's floor).
    inbox
        .catalog()
        .rebuild_tenant(id, &pool.path_of(id))
        .map_err(InboxError::from)?;
    Ok(Undone::Restored)
}

/// Writes the marker (synced), then renames the tenant file and its companions into
/// `<data>/moved/`, syncing both directories.
fn retire_files(data: &Path, id: &TenantId, path: &Path, to: &str) -> Result<(), StoreError> {
    if !path.exists() {
        return Err(StoreError::NotFound);
    }
    let (db, marker) = retired_paths(data, id);
    let dir = db.parent().expect("retired paths have a parent");
    std::fs::create_dir_all(dir)?;
    let m = Retired {
        to: to.to_string(),
        at_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    };
    let tmp = marker.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(&m).expect("a marker serialises"))?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, &marker)?;
    sync_dir(dir)?;
    for (from, to) in companion_paths(path).into_iter().zip(companion_paths(&db)) {
        rename_if_there(&from, &to)?;
    }
    std::fs::rename(path, &db)?;
    sync_dir(dir)?;
    sync_dir(path.parent().expect("tenant paths have a parent"))?;
    Ok(())
}

/// Reads the retired tenants' markers into `fences` (they answer with their new owner) and
/// empties `<data>/moving/` (transfers a crash interrupted). A marker without its file is
/// removed. Errors: I/O other than a missing directory.
pub fn load_retired(data_dir: &Path, fences: &Fences) -> Result<usize, StoreError> {
    let moving = data_dir.join(layout::MOVING_DIR);
    if moving.exists() {
        std::fs::remove_dir_all(&moving)?;
    }
    let mut loaded = 0;
    for (id, marker) in retired_markers(data_dir)? {
        let (db, marker_path) = retired_paths(data_dir, &id);
        match marker {
            Some(m) if db.exists() => {
                fences.set_moved(&id, &m.to);
                loaded += 1;
            }
            _ => remove_if_there(&marker_path)?,
        }
    }
    Ok(loaded)
}

/// Deletes retired tenants that moved before `older_than` (files and marker) and forgets
/// them. Returns how many went. Errors: I/O.
pub fn sweep_retired(
    data_dir: &Path,
    fences: &Fences,
    older_than: SystemTime,
) -> Result<usize, StoreError> {
    let cutoff = older_than
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut swept = 0;
    for (id, marker) in retired_markers(data_dir)? {
        if marker.is_some_and(|m| m.at_ms >= cutoff) {
            continue;
        }
        fences.clear_moved(&id);
        drop_retired(data_dir, &id)?;
        swept += 1;
    }
    Ok(swept)
}

/// The tenants with a marker in `<data>/moved/`, with the marker (`None`: unreadable).
fn retired_markers(data_dir: &Path) -> Result<Vec<(TenantId, Option<Retired>)>, StoreError> {
    let dir = data_dir.join(layout::MOVED_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for entry in entries {
        let name = entry?.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
            continue;
        };
        let Ok(id) = TenantId::parse(stem) else {
            continue;
        };
        let (_, marker) = retired_paths(data_dir, &id);
        let parsed = std::fs::read(&marker)
            .ok()
            .and_then(|b| serde_json::from_slice::<Retired>(&b).ok());
        out.push((id, parsed));
    }
    Ok(out)
}

/// Removes a retired copy of `id` (file, companions, marker), if any.
fn drop_retired(data_dir: &Path, id: &TenantId) -> Result<(), StoreError> {
    let (db, marker) = retired_paths(data_dir, id);
    remove_if_there(&db)?;
    for c in companion_paths(&db) {
        remove_if_there(&c)?;
    }
    remove_if_there(&marker)
}

fn remove_if_there(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

fn rename_if_there(from: &Path, to: &Path) -> Result<(), StoreError> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_load_sweep_and_orphans_go() {
        let d = tempfile::tempdir().unwrap();
        let acme = TenantId::parse("acme").unwrap();
        let globex = TenantId::parse("globex").unwrap();
        let fences = Fences::new();
        let tenant_file = d.path().join("acme-src.db");
        std::fs::write(&tenant_file, b"x").unwrap();
        retire_files(d.path(), &acme, &tenant_file, "node2").unwrap();
        assert!(!tenant_file.exists());
        // A marker whose file never arrived (a crash between the two): dropped at load.
        let (_, orphan) = retired_paths(d.path(), &globex);
        std::fs::write(&orphan, br#"{"to":"node3","at_ms":1}"#).unwrap();
        std::fs::create_dir_all(d.path().join(layout::MOVING_DIR)).unwrap();
        assert_eq!(load_retired(d.path(), &fences).unwrap(), 1);
        assert_eq!(fences.moved_to(&acme).as_deref(), Some("node2"));
        assert!(!orphan.exists());
        assert!(!d.path().join(layout::MOVING_DIR).exists());
        // Not yet past the grace period, then past it.
        let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
        assert_eq!(sweep_retired(d.path(), &fences, an_hour_ago).unwrap(), 0);
        let later = SystemTime::now() + Duration::from_secs(1);
        assert_eq!(sweep_retired(d.path(), &fences, later).unwrap(), 1);
        assert!(fences.moved_to(&acme).is_none());
        assert_eq!(
            std::fs::read_dir(d.path().join(layout::MOVED_DIR))
                .unwrap()
                .count(),
            0
        );
    }
}
