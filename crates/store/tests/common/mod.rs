//! Helpers shared by the pool's test files (`pool.rs`, `pool_exclusive.rs`).

use std::time::Duration;

use store::events::{self, NewEvent};
use store::{Locking, PoolConfig, StoreError, TenantId, TenantPool};
use tokio::time::Instant;

pub fn t(s: &str) -> TenantId {
    TenantId::parse(s).unwrap()
}

/// A pool in `locking` without its background loop: the test drives `maintain_at` (tweak may
/// turn it on).
pub fn pool_in(
    dir: &tempfile::TempDir,
    locking: Locking,
    tweak: impl FnOnce(&mut PoolConfig),
) -> TenantPool {
    let mut cfg = PoolConfig::new(dir.path());
    cfg.maintenance = false;
    cfg.locking = locking;
    tweak(&mut cfg);
    TenantPool::open(cfg).unwrap()
}

/// Stores one event with `body` through the pool's writer; returns its id.
pub async fn insert(
    pool: &TenantPool,
    id: &TenantId,
    body: &'static [u8],
) -> Result<i64, StoreError> {
    pool.write(id, move |conn| {
        let ev = NewEvent {
            source: "s",
            delivery_id: None,
            content_type: None,
            received_at_ms: 0,
            body,
        };
        Ok(events::insert_event(conn, &ev)?.id)
    })
    .await
}

/// The tenant's event count, read through the pool.
pub async fn count(pool: &TenantPool, id: &TenantId) -> i64 {
    pool.read(id, |conn| Ok(events::event_stats(conn)?.0))
        .await
        .unwrap()
}

/// The tenant's files next to its database (`.db`, `-wal`, `-shm`), sorted.
pub fn files_of(pool: &TenantPool, id: &TenantId) -> Vec<String> {
    let db = pool.path_of(id);
    let mut names: Vec<String> = std::fs::read_dir(db.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(id.as_str()))
        .collect();
    names.sort();
    names
}

/// Waits (polling) until `cond` holds; panics naming `what` after 10 s instead of hanging.
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
