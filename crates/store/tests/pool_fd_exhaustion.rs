//! The pool when the process runs out of file descriptors (EMFILE). Its own test binary: it
//! lowers the process's fd limit, which would disturb other tests.

use std::time::Duration;

use store::{events, PoolConfig, StoreError, TenantId, TenantPool};
use tokio::time::Instant;

fn lower_fd_limit(to: u64) {
    let lim = libc::rlimit {
        rlim_cur: to,
        rlim_max: to,
    };
    // SAFETY: `lim` is a valid rlimit; lowering both limits is always allowed.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_failed_reader_open_removed_a_slot_in_use() {
    lower_fd_limit(512);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = PoolConfig::new(dir.path());
    cfg.maintenance = false;
    let pool = TenantPool::open(cfg).unwrap();
    let id = TenantId::parse("emfile").unwrap();
    pool.create(&id, events::init_schema).await.unwrap();
    pool.write(&id, |c| Ok(c.execute_batch("CREATE TABLE t(x)")?))
        .await
        .unwrap();
    let held = pool.writer(&id).await.unwrap();

    // Use up every descriptor, so the tenant's first reader cannot be opened.
    let mut hog = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        hog.push(f);
    }
    let err = pool.read(&id, |_| Ok(())).await.unwrap_err();
    drop(hog);
    assert!(matches!(err, StoreError::Sqlite(_)), "{err:?}");

    // The slot in use stayed: one slot, counted once, and still the tenant's only writer.
    let opened = |p: &TenantPool| {
        p.stats()
            .tenants_opened
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    assert!(pool.is_open(&id));
    assert_eq!(pool.stats().open(), 1);
    assert_eq!(opened(&pool), 1, "no second slot");
    let second = {
        let (pool, id) = (pool.clone(), id.clone());
        tokio::spawn(async move {
            pool.write(&id, |c| Ok(c.execute_batch("INSERT INTO t VALUES (1)")?))
                .await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.queued_writes(&id) == 0 {
        assert!(
            !second.is_finished() && Instant::now() < deadline,
            "a second writer ran while the first was held"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(held);
    second.await.unwrap().unwrap();
    assert_eq!(opened(&pool), 1);
    // The reader opens now that descriptors are free.
    let n: i64 = pool
        .read(&id, |c| {
            Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?)
        })
        .await
        .unwrap();
    assert_eq!(n, 1);
    pool.shutdown(Duration::from_secs(5)).await;
    assert_eq!(pool.stats().open(), 0);
}
