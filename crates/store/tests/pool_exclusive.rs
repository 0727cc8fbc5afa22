//! The pool in exclusive locking (`locking = "exclusive"`): one connection per open tenant,
//! its WAL index in memory (no `-shm`), reads on the writer with `query_only` on.

use std::sync::atomic::Ordering;
use std::time::Duration;

mod common;

use common::{count, files_of, insert, pool_in, t, until};
use store::connection::{self, Access};
use store::events;
use store::{Locking, PoolConfig, StoreError, TenantPool};
use tokio::time::Instant;

fn pool_with(dir: &tempfile::TempDir, tweak: impl FnOnce(&mut PoolConfig)) -> TenantPool {
    pool_in(dir, Locking::Exclusive, tweak)
}

#[tokio::test]
async fn exclusive_locking_leaves_no_shm_file_and_one_connection() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_with(&dir, |_| {});
    assert_eq!(pool.config().fds_per_tenant(), 2, "db + wal, nothing else");
    let id = t("acme");
    pool.create(&id, events::init_schema).await.unwrap();
    assert_eq!(insert(&pool, &id, b"hello").await.unwrap(), 1);
    assert_eq!(count(&pool, &id).await, 1);
    assert_eq!(count(&pool, &id).await, 1);
    assert!(pool.is_open(&id));
    assert_eq!(files_of(&pool, &id), ["acme.db", "acme.db-wal"], "no -shm");
    let opened = pool.stats().connections_opened.load(Ordering::Relaxed);
    assert_eq!(opened, 1, "reads run on the writer: one connection");
    // The file is locked against any other connection while the tenant is open.
    let mut cfg = pool.config().clone();
    cfg.busy_timeout = Duration::from_millis(10);
    cfg.locking = Locking::Shared;
    let other = connection::open_existing(&pool.path_of(&id), Access::Read, &cfg, None)
        .and_then(|c| Ok(events::event_stats(&c)?));
    assert!(
        other.is_err(),
        "a second connection read the file: {other:?}"
    );

    // The idle close is clean: just the .db again; the data reopens intact.
    pool.maintain_at(Instant::now() + Duration::from_secs(11))
        .await;
    assert!(!pool.is_open(&id));
    assert_eq!(files_of(&pool, &id), ["acme.db"]);
    assert_eq!(count(&pool, &id).await, 1);
    assert_eq!(files_of(&pool, &id), ["acme.db", "acme.db-wal"]);
}

#[tokio::test]
async fn a_read_cannot_write_in_exclusive_mode() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_with(&dir, |_| {});
    let id = t("ro");
    pool.create(&id, events::init_schema).await.unwrap();
    insert(&pool, &id, b"one").await.unwrap();
    let wrote = pool
        .read(&id, |c| {
            c.execute("DELETE FROM _tenantd_events", [])?;
            Ok(())
        })
        .await;
    let refused = matches!(&wrote, Err(StoreError::Sqlite(e))
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ReadOnly));
    assert!(refused, "a read wrote: {wrote:?}");
    // A read that leaves a transaction open has it rolled back; one that panics still restores
    // the writer. Either way the next write works and nothing was lost.
    pool.read(&id, |c| Ok(c.execute_batch("BEGIN; SELECT 1")?))
        .await
        .unwrap();
    let panicked = pool
        .read(&id, |_| -> Result<(), StoreError> {
            panic!("read blew up")
        })
        .await;
    assert!(panicked.is_err());
    assert_eq!(insert(&pool, &id, b"two").await.unwrap(), 2);
    assert_eq!(count(&pool, &id).await, 2);
    // And the writer itself is not read-only after all that.
    let query_only: bool = pool
        .write(&id, |c| {
            Ok(c.pragma_query_value(None, "query_only", |r| r.get(0))?)
        })
        .await
        .unwrap();
    assert!(!query_only);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_writes_interleave_in_exclusive_mode() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_with(&dir, |_| {});
    let id = t("mix");
    pool.create(&id, events::init_schema).await.unwrap();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let (pool, id) = (pool.clone(), id.clone());
            tokio::spawn(async move {
                if i % 2 == 0 {
                    insert(&pool, &id, b"x").await.unwrap();
                    None
                } else {
                    Some(count(&pool, &id).await)
                }
            })
        })
        .collect();
    for task in tasks {
        if let Some(n) = task.await.unwrap() {
            assert!((0..=20).contains(&n), "{n}");
        }
    }
    assert_eq!(count(&pool, &id).await, 20);
    assert_eq!(pool.stats().connections_opened.load(Ordering::Relaxed), 1);

    // A transaction held across requests (a SQL stream) makes a read wait for it, and the read
    // then sees what it committed.
    let guard = pool.writer(&id).await.unwrap();
    let (guard, ()) = guard
        .run(|c| {
            c.execute_batch("BEGIN; DELETE FROM _tenantd_events WHERE id > 10")
                .unwrap()
        })
        .await
        .unwrap();
    let read = {
        let (pool, id) = (pool.clone(), id.clone());
        tokio::spawn(async move { count(&pool, &id).await })
    };
    until("the read to queue", || pool.queued_reads(&id) == 1).await;
    assert!(
        !read.is_finished(),
        "a read ran inside another's transaction"
    );
    let (guard, ()) = guard
        .run(|c| c.execute_batch("COMMIT").unwrap())
        .await
        .unwrap();
    drop(guard);
    assert_eq!(read.await.unwrap(), 10);
}

#[tokio::test]
async fn a_growing_wal_is_checkpointed_on_the_writer_in_exclusive_mode() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_with(&dir, |c| c.wal_checkpoint_pages = 20);
    let id = t("grow");
    pool.create(&id, events::init_schema).await.unwrap();
    static BODY: [u8; 8192] = [1u8; 8192];
    for _ in 0..10 {
        insert(&pool, &id, &BODY).await.unwrap();
    }
    let wal = store::layout::companion_paths(&pool.path_of(&id))[0].clone();
    assert!(std::fs::metadata(&wal).unwrap().len() > 20 * 4096);
    let checkpoints = || pool.stats().checkpoints.load(Ordering::Relaxed);
    pool.maintain_at(Instant::now()).await;
    until("the checkpoint", || checkpoints() > 0).await;
    assert_eq!(checkpoints(), 1);
    let size = std::fs::metadata(&wal).unwrap().len();
    for _ in 0..10 {
        insert(&pool, &id, &BODY).await.unwrap();
    }
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), size, "WAL reused");
    assert_eq!(count(&pool, &id).await, 20);
    assert_eq!(pool.stats().connections_opened.load(Ordering::Relaxed), 1);
    assert_eq!(files_of(&pool, &id), ["grow.db", "grow.db-wal"]);
}

#[tokio::test]
async fn inspect_reads_an_open_tenant_through_its_one_connection() {
    let dir = tempfile::tempdir().unwrap();
    // The pool's busy timeout is long: an inspect that opened its own connection while the
    // tenant is open would take that long and then fail.
    let pool = pool_with(&dir, |c| c.busy_timeout = Duration::from_secs(30));
    let id = t("shown");
    pool.create(&id, events::init_schema).await.unwrap();
    assert_eq!(pool.inspect(&id).await.unwrap().events, 0);
    assert!(!pool.is_open(&id), "showing does not open the tenant");
    assert_eq!(files_of(&pool, &id), ["shown.db"]);
    insert(&pool, &id, b"a").await.unwrap();
    assert_eq!(pool.inspect(&id).await.unwrap().events, 1);
    assert_eq!(
        insert(&pool, &id, b"b").await.unwrap(),
        2,
        "writer still writes"
    );
    assert!(matches!(
        pool.inspect(&t("ghost")).await,
        Err(StoreError::NotFound)
    ));
    pool.shutdown(Duration::from_secs(5)).await;
    assert_eq!(files_of(&pool, &id), ["shown.db"]);
}
