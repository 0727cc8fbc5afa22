//! Creating and deleting tenant files.
//!
//! A new tenant file is made under a temporary name unique to this create (process id and a
//! counter: concurrent creates of one id never share it), initialised in one transaction, and
//! made visible with a hard link, which fails if the name exists: exactly one of several
//! concurrent creates wins, the others get `AlreadyExists`, and no temporary file stays behind.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::Connection;

use std::sync::Arc;

use super::slot::{close_slot, wait_closed, CloseMode, Entry, Slot};
use super::{join_error, Inner, TenantPool};
use crate::connection;
use crate::error::StoreError;
use crate::layout::companion_paths;
use crate::name::TenantId;

/// Makes each create's temporary file name unique within the process.
static CREATES: AtomicU64 = AtomicU64::new(0);

impl TenantPool {
    /// Creates tenant `id`: a new file initialised by `init` in one transaction, made visible
    /// atomically. Errors: `AlreadyExists`, `Busy` (being deleted), I/O and SQLite errors.
    pub async fn create<F>(&self, id: &TenantId, init: F) -> Result<(), StoreError>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<()> + Send + 'static,
    {
        if matches!(self.inner.map.lock().get(id), Some(Entry::Deleting)) {
            return Err(StoreError::Busy("tenant is being deleted"));
        }
        let path = self.path_of(id);
        let tenant = id.clone();
        tokio::task::spawn_blocking(move || create_file(&path, &tenant, init))
            .await
            .map_err(join_error)??;
        // A new file: whatever a previous file of this id failed at is not its problem.
        self.inner.forget_failed_migration(id);
        self.mark_new(id);
        Ok(())
    }

    /// Deletes tenant `id`: closes it and removes its file with `-wal`/`-shm`. Errors:
    /// `NotFound`, `Busy` when a request or stream is using it right now.
    pub async fn delete(&self, id: &TenantId) -> Result<(), StoreError> {
        let deleted = self.delete_file(id).await;
        if deleted.is_ok() {
            self.mark_changed(id); // the backup leaves a tombstone
        }
        deleted
    }

    async fn delete_file(&self, id: &TenantId) -> Result<(), StoreError> {
        match self.inner.fences.check(id, tokio::time::Instant::now()) {
            crate::handoff::Pass::Open => {}
            crate::handoff::Pass::Fenced { .. } => {
                return Err(StoreError::Busy("tenant is being moved"))
            }
            crate::handoff::Pass::Moved { to } => return Err(StoreError::Moved { to }),
        }
        let slot = self.inner.begin_delete(id).await?;
        let path = self.path_of(id);
        let result = tokio::task::spawn_blocking(move || {
            if let Some(slot) = slot {
                close_slot(&slot, CloseMode::Fast);
            }
            remove_files(&path)
        })
        .await
        .map_err(join_error);
        self.inner.forget_failed_migration(id);
        self.inner.end_delete(id);
        result?
    }
}

impl TenantPool {
    /// Takes `id` out of service and runs `f` on a blocking thread with its file closed: no
    /// request holds it, none can open it until `f` returns (they wait, as for a delete). A
    /// tenant in use is waited for up to `wait` (its readers finish quickly; writers are
    /// fenced during a move). The file is closed cleanly first (checkpointed, no `-wal`).
    /// Errors: `Busy` (still in use after `wait`), what `f` returns.
    pub(crate) async fn with_closed<R, F>(
        &self,
        id: &TenantId,
        wait: std::time::Duration,
        f: F,
    ) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Path) -> Result<R, StoreError> + Send + 'static,
    {
        let deadline = tokio::time::Instant::now() + wait;
        let slot = loop {
            match self.inner.begin_delete(id).await {
                Ok(slot) => break slot,
                Err(StoreError::Busy(_)) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await
                }
                Err(e) => return Err(e),
            }
        };
        let path = self.path_of(id);
        let result = tokio::task::spawn_blocking(move || {
            if let Some(slot) = slot {
                close_slot(&slot, CloseMode::Clean);
            }
            f(&path)
        })
        .await
        .map_err(join_error);
        self.inner.forget_failed_migration(id);
        self.inner.end_delete(id);
        result?
    }
}

impl Inner {
    /// Takes `id` out of service for a delete: marks it `Deleting` and returns its slot, if it
    /// was open. Waits while it is closing. Errors: `Busy` (in use, or already being deleted).
    pub(super) async fn begin_delete(
        &self,
        id: &TenantId,
    ) -> Result<Option<Arc<Slot>>, StoreError> {
        loop {
            let closing = {
                let mut map = self.map.lock();
                let slot = match map.get(id) {
                    Some(Entry::Deleting) => {
                        return Err(StoreError::Busy("tenant is being deleted"))
                    }
                    Some(Entry::Open(slot)) if slot.users.load(Ordering::Acquire) > 0 => {
                        return Err(StoreError::Busy("tenant is in use"))
                    }
                    Some(Entry::Closing(rx)) => rx.clone(),
                    Some(Entry::Open(slot)) => {
                        let slot = slot.clone();
                        self.stats.open_tenants.fetch_sub(1, Ordering::Relaxed);
                        map.insert(id.clone(), Entry::Deleting);
                        // One place fewer in use: a request waiting for one may take it.
                        self.slot_freed.notify_one();
                        return Ok(Some(slot));
                    }
                    None => {
                        map.insert(id.clone(), Entry::Deleting);
                        return Ok(None);
                    }
                };
                slot
            };
            wait_closed(closing).await;
        }
    }

    /// Ends a delete begun by `begin_delete`.
    pub(super) fn end_delete(&self, id: &TenantId) {
        let mut map = self.map.lock();
        if matches!(map.get(id), Some(Entry::Deleting)) {
            map.remove(id);
        }
    }
}

/// Removes a tenant's file and its companions. Errors: `NotFound` if the file did not exist.
fn remove_files(path: &Path) -> Result<(), StoreError> {
    let existed = match std::fs::remove_file(path) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(StoreError::Io(e)),
    };
    for companion in companion_paths(path) {
        match std::fs::remove_file(companion) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::Io(e)),
        }
    }
    if existed {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

fn create_file<F>(path: &Path, id: &TenantId, init: F) -> Result<(), StoreError>
where
    F: FnOnce(&Connection) -> rusqlite::Result<()>,
{
    let dir = path.parent().expect("tenant paths have a parent");
    // Its new `<aa>/<bb>` directories must survive a power cut with the file (power_cut.rs).
    ingest::segment::create_dir_durably(dir)?;
    if path.exists() {
        return Err(StoreError::AlreadyExists);
    }
    let n = CREATES.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{id}.{}.{n}.creating", std::process::id()));
    let made = connection::create_new(&tmp, init).and_then(|()| {
        // A hard link fails if the name exists: creation is atomic and never overwrites.
        std::fs::hard_link(&tmp, path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => StoreError::AlreadyExists,
            _ => StoreError::Io(e),
        })
    });
    let _ = std::fs::remove_file(&tmp);
    for companion in companion_paths(&tmp) {
        let _ = std::fs::remove_file(companion);
    }
    made?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}
