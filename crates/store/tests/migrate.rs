//! Fleet migrations over real tenant files: 2,000 tenants, one of which fails; resumable;
//! lazy migration when the pool opens a tenant that is behind.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use store::events;
use store::migrate::{self, FleetOptions, MigrationSet};
use store::{PoolConfig, StoreError, TenantId, TenantPool};

fn set(sqls: &[&str]) -> MigrationSet {
    MigrationSet::numbered(sqls)
}

async fn create_many(pool: &TenantPool, n: usize) -> Vec<TenantId> {
    let ids: Vec<TenantId> = (0..n)
        .map(|i| TenantId::parse(&format!("t{i:05}")).unwrap())
        .collect();
    for chunk in ids.chunks(32) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|id| {
                let (pool, id) = (pool.clone(), id.clone());
                tokio::spawn(async move { pool.create(&id, events::init_schema).await.unwrap() })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_of_2000_with_one_failing_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = PoolConfig::new(dir.path());
    let pool = TenantPool::open(cfg.clone()).unwrap();
    let ids = create_many(&pool, 2000).await;
    // Sabotage one tenant: it already has a table named like the one migration 2 creates.
    let bad = &ids[1234];
    pool.write(bad, |c| Ok(c.execute_batch("CREATE TABLE orders(legacy)")?))
        .await
        .unwrap();
    pool.shutdown(std::time::Duration::from_secs(5)).await;

    let migrations = set(&[
        "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT)",
        "CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER)",
        "CREATE INDEX orders_customer ON orders(customer)",
    ]);
    let opts = FleetOptions {
        jobs: 4,
        dry_run: true,
    };
    let calls = AtomicUsize::new(0);
    let dry = migrate::run_fleet(&cfg, &migrations, &opts, &|_, _| {
        calls.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap();
    assert_eq!(
        calls.load(Ordering::Relaxed),
        2000,
        "progress after every tenant"
    );
    assert_eq!(
        (dry.tenants, dry.migrated, dry.failed.len()),
        (2000, 1999, 1)
    );

    let opts = FleetOptions {
        jobs: 4,
        dry_run: false,
    };
    let sum = migrate::run_fleet(&cfg, &migrations, &opts, &|_, _| {}).unwrap();
    assert_eq!((sum.tenants, sum.migrated, sum.up_to_date), (2000, 1999, 0));
    assert_eq!(sum.failed.len(), 1);
    assert_eq!(&sum.failed[0].0, bad);
    assert!(
        sum.failed[0].1.contains("0002_m.sql") && sum.failed[0].1.contains("orders"),
        "{:?}",
        sum.failed
    );

    // Resumable: a second run touches nobody but the failing tenant.
    let again = migrate::run_fleet(&cfg, &migrations, &opts, &|_, _| {}).unwrap();
    assert_eq!(
        (again.migrated, again.up_to_date, again.failed.len()),
        (0, 1999, 1)
    );

    // Every tenant is whole: the good ones at v3, the bad one rolled back to v0 with its table.
    let check = |id: &TenantId| {
        let c = rusqlite::Connection::open(store::layout::tenant_path(dir.path(), id)).unwrap();
        let v = migrate::schema_version(&c).unwrap();
        let tables: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name IN ('customers','orders_customer')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        (v, tables)
    };
    assert_eq!(check(&ids[0]), (3, 2));
    assert_eq!(check(&ids[1999]), (3, 2));
    assert_eq!(check(bad), (0, 0));
    // No -wal/-shm left behind by the runner.
    let leftovers = walk(&dir.path().join("tenants"))
        .into_iter()
        .filter(|p| !p.ends_with(".db"))
        .count();
    assert_eq!(leftovers, 0);
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.to_string_lossy().into_owned());
        }
    }
    out
}

#[tokio::test]
async fn the_pool_migrates_a_tenant_that_is_behind_before_serving_it() {
    let dir = tempfile::tempdir().unwrap();
    let plain = TenantPool::open(PoolConfig::new(dir.path())).unwrap();
    let ok = TenantId::parse("behind").unwrap();
    let broken = TenantId::parse("broken").unwrap();
    plain.create(&ok, events::init_schema).await.unwrap();
    plain.create(&broken, events::init_schema).await.unwrap();
    plain
        .write(&broken, |c| Ok(c.execute_batch("CREATE TABLE things(x)")?))
        .await
        .unwrap();
    plain.shutdown(std::time::Duration::from_secs(5)).await;

    let mut cfg = PoolConfig::new(dir.path());
    cfg.migrations = Some(Arc::new(set(&[
        "CREATE TABLE things(id INTEGER PRIMARY KEY)",
    ])));
    let pool = TenantPool::open(cfg).unwrap();
    // A read is the first thing this tenant sees, and it already sees the new schema.
    let n: i64 = pool
        .read(&ok, |c| {
            Ok(c.query_row("SELECT count(*) FROM things", [], |r| r.get(0))?)
        })
        .await
        .unwrap();
    assert_eq!(n, 0);
    let v = pool
        .read(&ok, |c| Ok(migrate::schema_version(c)?))
        .await
        .unwrap();
    assert_eq!(v, 1);
    // A tenant whose migration fails is not served at all.
    let err = pool.read(&broken, |_| Ok(())).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::MigrationFailed(m) if m.contains("things")),
        "{err:?}"
    );
    let err = pool.write(&broken, |_| Ok(())).await.unwrap_err();
    assert!(matches!(err, StoreError::MigrationFailed(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_failed_migration_is_retried_on_every_request() {
    use std::sync::atomic::Ordering::Relaxed;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = PoolConfig::new(dir.path());
    cfg.maintenance = false;
    cfg.migrations = Some(Arc::new(set(&[
        "CREATE TABLE things(id INTEGER PRIMARY KEY)",
    ])));
    let pool = TenantPool::open(cfg).unwrap();
    let broken = TenantId::parse("broken").unwrap();
    pool.create(&broken, events::init_schema).await.unwrap();
    // Behind the pool's back, as an old tenant with a clashing table.
    rusqlite::Connection::open(pool.path_of(&broken))
        .unwrap()
        .execute_batch("CREATE TABLE things(x)")
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (pool, id) = (pool.clone(), broken.clone());
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                pool.read(&id, |_| Ok(())).await
            } else {
                pool.write(&id, |_| Ok(())).await
            }
        }));
    }
    for task in tasks {
        let err = task.await.unwrap().unwrap_err();
        assert!(
            matches!(&err, StoreError::MigrationFailed(m) if m.contains("things")),
            "{err:?}"
        );
    }
    for _ in 0..5 {
        let err = pool.write(&broken, |_| Ok(())).await.unwrap_err();
        assert!(matches!(err, StoreError::MigrationFailed(_)), "{err:?}");
    }
    let stats = pool.stats();
    assert_eq!(
        stats.migration_runs.load(Relaxed),
        1,
        "the migration ran once"
    );
    assert_eq!(stats.migration_failures.load(Relaxed), 1);
    assert_eq!(
        stats.tenants_opened.load(Relaxed),
        1,
        "one slot the whole time"
    );
    assert_eq!(stats.open(), 1);

    // A new file of that id is not refused for the old file's failure.
    pool.delete(&broken).await.unwrap();
    pool.create(&broken, events::init_schema).await.unwrap();
    let v = pool
        .read(&broken, |c| Ok(migrate::schema_version(c)?))
        .await
        .unwrap();
    assert_eq!(v, 1);
    assert_eq!(stats.migration_runs.load(Relaxed), 2);
}

#[tokio::test]
async fn the_fleet_run_reports_a_changed_applied_migration() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = PoolConfig::new(dir.path());
    cfg.maintenance = false;
    let pool = TenantPool::open(cfg.clone()).unwrap();
    let ids = create_many(&pool, 3).await;
    pool.shutdown(std::time::Duration::from_secs(5)).await;
    let opts = FleetOptions {
        jobs: 2,
        dry_run: false,
    };
    let first = migrate::run_fleet(&cfg, &set(&["CREATE TABLE a(x)"]), &opts, &|_, _| {}).unwrap();
    assert_eq!(first.migrated, 3);
    let edited = set(&["CREATE TABLE a(x, y)", "CREATE TABLE b(z)"]);
    let sum = migrate::run_fleet(&cfg, &edited, &opts, &|_, _| {}).unwrap();
    assert_eq!(sum.migrated, 0);
    assert_eq!(sum.failed.len(), 3);
    assert_eq!(sum.failed[0].0, ids[0]);
    assert!(
        sum.failed[0]
            .1
            .contains("migration 1 was applied as 0001_m.sql"),
        "{:?}",
        sum.failed
    );
}
