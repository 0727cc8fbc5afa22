//! The node catalog against real files: every API, batch atomicity, the dedupe window, and
//! rebuilding it from tenant files made by the pool.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use store::catalog::{
    catalog_path, Catalog, CatalogConfig, CatalogError, CatalogUpdate, NewDelivery, Rebuilt,
    TenantRow, DEFAULT_DEDUPE_WINDOW,
};
use store::events::{self, HookConfig, NewEvent};
use store::policy::{self, UnknownPolicy, WebhookPolicy};
use store::{token_epoch, Durability, PoolConfig, SourceName, TenantId, TenantPool};

fn t(s: &str) -> TenantId {
    TenantId::parse(s).unwrap()
}

fn s(s: &str) -> SourceName {
    SourceName::parse(s).unwrap()
}

fn open(dir: &Path) -> Catalog {
    Catalog::open(&catalog_path(dir), CatalogConfig::new(Durability::Fsync)).unwrap()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn hook(scheme: &str, secret: Option<&str>) -> HookConfig {
    HookConfig {
        scheme: scheme.into(),
        secret: secret.map(Into::into),
    }
}

fn delivery(source: &str, id: &str, event_id: i64, at: i64) -> NewDelivery {
    NewDelivery {
        source: s(source),
        delivery_id: id.into(),
        event_id,
        received_at_ms: at,
    }
}

#[test]
fn the_handle_can_be_shared_across_threads() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<Catalog>();
    shared::<CatalogError>();
}

#[test]
fn tenant_rows_round_trip_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let cat = open(dir.path());
    let a = t("acme");
    assert_eq!(cat.tenant(&a).unwrap(), None);
    let row = TenantRow {
        next_event_id: 5,
        token_epoch: Some("e1".into()),
        webhook_policy: Ok(WebhookPolicy::Signed),
    };
    cat.put_tenant(&a, &row).unwrap();
    assert_eq!(cat.tenant(&a).unwrap(), Some(row.clone()));
    let renewed = TenantRow {
        token_epoch: Some("e2".into()),
        webhook_policy: Ok(WebhookPolicy::Configured),
        ..row.clone()
    };
    cat.put_tenant(&a, &renewed).unwrap();
    // Exclusive locking: the WAL index is in heap memory, so there is no -shm file.
    assert!(!dir.path().join("catalog.db-shm").exists());
    assert!(dir.path().join("catalog.db-wal").exists());
    cat.close().unwrap();

    let cat = open(dir.path());
    assert_eq!(cat.tenant(&a).unwrap(), Some(renewed));
    assert_eq!(cat.tenant(&t("other")).unwrap(), None);
    cat.close().unwrap();
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, ["catalog.db"], "no -wal/-shm after close");
}

#[test]
fn an_unreadable_policy_stays_an_error_in_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let cat = open(dir.path());
    let row = TenantRow {
        webhook_policy: Err(UnknownPolicy("Signed".into())),
        ..TenantRow::new(None)
    };
    cat.put_tenant(&t("a"), &row).unwrap();
    assert_eq!(cat.tenant(&t("a")).unwrap(), Some(row));
}

#[test]
fn hooks_round_trip_replace_and_need_a_tenant_row() {
    let dir = tempfile::tempdir().unwrap();
    let cat = open(dir.path());
    let (a, gh) = (t("acme"), s("github"));
    assert!(matches!(
        cat.put_hook(&a, &gh, &hook("github", Some("k"))),
        Err(CatalogError::UnknownTenant(id)) if id == a
    ));
    assert_eq!(cat.hook(&a, &gh).unwrap(), None);
    cat.put_tenant(&a, &TenantRow::new(None)).unwrap();
    cat.put_hook(&a, &gh, &hook("github", Some("k"))).unwrap();
    cat.put_hook(&a, &gh, &hook("none", None)).unwrap();
    cat.put_hook(&a, &s("stripe"), &hook("stripe", Some("w")))
        .unwrap();
    assert_eq!(cat.hook(&a, &gh).unwrap(), Some(hook("none", None)));
    assert_eq!(
        cat.hook(&a, &s("stripe")).unwrap(),
        Some(hook("stripe", Some("w")))
    );
    assert!(cat.delete_hook(&a, &gh).unwrap());
    assert!(!cat.delete_hook(&a, &gh).unwrap());
    assert_eq!(cat.hook(&a, &gh).unwrap(), None);
}

#[test]
fn delete_tenant_removes_its_hooks_and_deliveries_only() {
    let dir = tempfile::tempdir().unwrap();
    let cat = open(dir.path());
    let (a, b) = (t("a"), t("b"));
    for id in [&a, &b] {
        cat.put_tenant(id, &TenantRow::new(None)).unwrap();
        cat.put_hook(id, &s("gh"), &hook("github", Some("k")))
            .unwrap();
    }
    let at = now_ms();
    cat.apply_batch(&[
        CatalogUpdate {
            tenant: a.clone(),
            next_event_id: 2,
            deliveries: vec![delivery("gh", "d1", 1, at)],
        },
        CatalogUpdate {
            tenant: b.clone(),
            next_event_id: 2,
            deliveries: vec![delivery("gh", "d1", 1, at)],
        },
    ])
    .unwrap();
    assert!(cat.delete_tenant(&a).unwrap());
    assert!(!cat.delete_tenant(&a).unwrap());
    assert_eq!(cat.tenant(&a).unwrap(), None);
    assert_eq!(cat.hook(&a, &s("gh")).unwrap(), None);
    assert_eq!(cat.delivery(&a, &s("gh"), "d1").unwrap(), None);
    // Recreated under the same id: nothing of the old tenant comes back.
    cat.put_tenant(&a, &TenantRow::new(None)).unwrap();
    assert_eq!(cat.delivery(&a, &s("gh"), "d1").unwrap(), None);
    assert_eq!(cat.tenant(&a).unwrap().unwrap().next_event_id, 1);
    // The other tenant is untouched.
    assert!(cat.hook(&b, &s("gh")).unwrap().is_some());
    assert_eq!(cat.delivery(&b, &s("gh"), "d1").unwrap(), Some(1));
}

#[test]
fn apply_batch_records_deliveries_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let cat = open(dir.path());
    let a = t("a");
    cat.put_tenant(&a, &TenantRow::new(None)).unwrap();
    let at = now_ms();
    let batch = [CatalogUpdate {
        tenant: a.clone(),
        next_event_id: 4,
        deliveries: vec![delivery("gh", "d1", 1, at), delivery("stripe", "d1", 3, at)],
    }];
    cat.apply_batch(&batch).unwrap();
    assert_eq!(cat.delivery(&a, &s("gh"), "d1").unwrap(), Some(1));
    assert_eq!(cat.delivery(&a, &s("stripe"), "d1").unwrap(), Some(3));
    assert_eq!(cat.delivery(&a, &s("gh"), "d2").unwrap(), None);
    assert_eq!(cat.tenant(&a).unwrap().unwrap().next_event_id, 4);
    // A replay after a crash changes nothing; a redelivery keeps its first event id.
    cat.apply_batch(&batch).unwrap();
    cat.apply_batch(&[CatalogUpdate {
        tenant: a.clone(),
        next_event_id: 4,
        deliveries: vec![delivery("gh", "d1", 99, at)],
    }])
    .unwrap();
    assert_eq!(cat.delivery(&a, &s("gh"), "d1").unwrap(), Some(1));
    // next_event_id is always past the deliveries' event ids.
    assert_eq!(cat.tenant(&a).unwrap().unwrap().next_event_id, 100);
    cat.apply_batch(&[]).unwrap();
}

#[test]
fn a_failing_batch_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cat = open(dir.path());
    let (a, ghost) = (t("a"), t("ghost"));
    cat.put_tenant(&a, &TenantRow::new(None)).unwrap();
    let at = now_ms();
    let err = cat
        .apply_batch(&[
            CatalogUpdate {
                tenant: a.clone(),
                next_event_id: 10,
                deliveries: vec![delivery("gh", "d1", 9, at)],
            },
            CatalogUpdate {
                tenant: ghost.clone(),
                next_event_id: 3,
                deliveries: vec![delivery("gh", "x", 2, at)],
            },
        ])
        .unwrap_err();
    assert!(
        matches!(&err, CatalogError::UnknownTenant(id) if *id == ghost),
        "{err}"
    );
    assert!(err.to_string().starts_with("cannot "), "{err}");
    assert_eq!(cat.tenant(&a).unwrap().unwrap().next_event_id, 1);
    assert_eq!(cat.delivery(&a, &s("gh"), "d1").unwrap(), None);
    assert_eq!(cat.tenant(&ghost).unwrap(), None);
    assert_eq!(cat.delivery(&ghost, &s("gh"), "x").unwrap(), None);
}

#[test]
fn next_event_id_never_decreases() {
    let dir = tempfile::tempdir().unwrap();
    let cat = open(dir.path());
    let a = t("a");
    cat.put_tenant(&a, &TenantRow::new(None)).unwrap();
    let mut want = 1;
    for next in [5, 3, 8, 1, 8, 20, 19] {
        cat.apply_batch(&[CatalogUpdate {
            tenant: a.clone(),
            next_event_id: next,
            deliveries: vec![],
        }])
        .unwrap();
        want = want.max(next);
        assert_eq!(cat.tenant(&a).unwrap().unwrap().next_event_id, want);
    }
    // An admin write of the row (a policy change) does not lower it either.
    cat.put_tenant(&a, &TenantRow::new(Some("e".into())))
        .unwrap();
    let row = cat.tenant(&a).unwrap().unwrap();
    assert_eq!(
        (row.next_event_id, row.token_epoch.as_deref()),
        (20, Some("e"))
    );
}

#[test]
fn prune_keeps_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let cat = open(dir.path());
    let a = t("a");
    cat.put_tenant(&a, &TenantRow::new(None)).unwrap();
    let now = now_ms();
    let window = DEFAULT_DEDUPE_WINDOW.as_millis() as i64;
    assert_eq!(window, 7 * 24 * 3600 * 1000);
    let cutoff = now - window;
    // Enough old rows to take several prune chunks.
    let old: Vec<_> = (0..12_000)
        .map(|i| delivery("gh", &format!("old{i}"), i + 1, cutoff - 1 - i))
        .collect();
    let young = vec![
        delivery("gh", "edge", 20_001, cutoff),
        delivery("gh", "new", 20_002, now),
    ];
    cat.apply_batch(&[CatalogUpdate {
        tenant: a.clone(),
        next_event_id: 1,
        deliveries: old.into_iter().chain(young).collect(),
    }])
    .unwrap();
    assert_eq!(cat.prune_deliveries(cutoff).unwrap(), 12_000);
    assert_eq!(cat.delivery(&a, &s("gh"), "old0").unwrap(), None);
    assert_eq!(cat.delivery(&a, &s("gh"), "old11999").unwrap(), None);
    assert_eq!(cat.delivery(&a, &s("gh"), "edge").unwrap(), Some(20_001));
    assert_eq!(cat.delivery(&a, &s("gh"), "new").unwrap(), Some(20_002));
    assert_eq!(cat.prune_deliveries(cutoff).unwrap(), 0);
    // Pruning never touches next_event_id.
    assert_eq!(cat.tenant(&a).unwrap().unwrap().next_event_id, 20_003);
}

/// A pool without its background loop.
fn pool(dir: &Path) -> TenantPool {
    let mut cfg = PoolConfig::new(dir);
    cfg.maintenance = false;
    TenantPool::open(cfg).unwrap()
}

async fn insert(
    pool: &TenantPool,
    id: &TenantId,
    source: &'static str,
    delivery: Option<&'static str>,
    at: i64,
) -> i64 {
    pool.write(id, move |conn| {
        let ev = NewEvent {
            source,
            delivery_id: delivery,
            content_type: Some("application/json"),
            received_at_ms: at,
            body: b"{}",
        };
        Ok(events::insert_event(conn, &ev)?.id)
    })
    .await
    .unwrap()
}

/// Two tenants written through the store's own functions: `shop` with hooks, a signed
/// policy, a renewed epoch, events with delivery ids old and new; `bare` with nothing.
async fn make_tenants(dir: &Path) -> (i64, String) {
    let pool = pool(dir);
    let (shop, bare) = (t("shop"), t("bare"));
    pool.create(&shop, events::init_schema).await.unwrap();
    pool.create(&bare, events::init_schema).await.unwrap();
    let epoch = pool
        .write(&shop, |conn| {
            events::set_hook(conn, "gh", &hook("github", Some("k1")))?;
            events::set_hook(conn, "none", &hook("none", None))?;
            policy::set_webhook_policy(conn, WebhookPolicy::Signed)?;
            Ok(token_epoch::renew(conn)?)
        })
        .await
        .unwrap();
    let now = now_ms();
    let eight_days = 8 * 24 * 3600 * 1000;
    insert(&pool, &shop, "gh", Some("old"), now - eight_days).await;
    insert(&pool, &shop, "gh", Some("d1"), now).await;
    insert(&pool, &shop, "gh", None, now).await;
    let last = insert(&pool, &shop, "none", Some("d1"), now).await;
    pool.shutdown(Duration::from_secs(5)).await;
    (last, epoch)
}

fn assert_answers_like_the_files(cat: &Catalog, dir: &Path, last: i64, epoch: &str) {
    let (shop, bare) = (t("shop"), t("bare"));
    let row = cat.tenant(&shop).unwrap().unwrap();
    assert_eq!(row.next_event_id, last + 1);
    assert_eq!(row.token_epoch.as_deref(), Some(epoch));
    assert_eq!(row.webhook_policy, Ok(WebhookPolicy::Signed));
    assert_eq!(
        cat.hook(&shop, &s("gh")).unwrap(),
        Some(hook("github", Some("k1")))
    );
    assert_eq!(
        cat.hook(&shop, &s("none")).unwrap(),
        Some(hook("none", None))
    );
    assert_eq!(cat.hook(&shop, &s("stripe")).unwrap(), None);
    assert_eq!(cat.delivery(&shop, &s("gh"), "d1").unwrap(), Some(2));
    assert_eq!(cat.delivery(&shop, &s("none"), "d1").unwrap(), Some(last));
    assert_eq!(
        cat.delivery(&shop, &s("gh"), "old").unwrap(),
        None,
        "outside the dedupe window"
    );
    let bare_epoch = token_epoch::ensure_in_file(
        &store::layout::tenant_path(dir, &bare),
        &PoolConfig::new(dir),
    )
    .unwrap();
    assert_eq!(
        cat.tenant(&bare).unwrap(),
        Some(TenantRow::new(Some(bare_epoch)))
    );
}

#[tokio::test]
async fn rebuild_from_tenant_files_answers_like_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let (last, epoch) = make_tenants(dir.path()).await;
    let cat = open(dir.path());
    let shop_path = store::layout::tenant_path(dir.path(), &t("shop"));
    assert_eq!(
        cat.rebuild_tenant(&t("shop"), &shop_path).unwrap(),
        Rebuilt::Changed
    );
    assert_eq!(
        cat.rebuild_tenant(&t("shop"), &shop_path).unwrap(),
        Rebuilt::Unchanged
    );
    let bare_path = store::layout::tenant_path(dir.path(), &t("bare"));
    assert_eq!(
        cat.rebuild_tenant(&t("bare"), &bare_path).unwrap(),
        Rebuilt::Changed
    );
    assert_answers_like_the_files(&cat, dir.path(), last, &epoch);

    // Rows that disagree with the file are put right; a stale extra hook goes.
    let shop = t("shop");
    cat.put_hook(&shop, &s("gh"), &hook("github", Some("stale")))
        .unwrap();
    cat.put_hook(&shop, &s("extra"), &hook("none", None))
        .unwrap();
    cat.put_tenant(&shop, &TenantRow::new(Some("old-epoch".into())))
        .unwrap();
    assert_eq!(
        cat.rebuild_tenant(&shop, &shop_path).unwrap(),
        Rebuilt::Changed
    );
    assert_answers_like_the_files(&cat, dir.path(), last, &epoch);
    assert_eq!(cat.hook(&shop, &s("extra")).unwrap(), None);

    // An id handed out past the file's largest one is never given back by a rebuild.
    cat.apply_batch(&[CatalogUpdate {
        tenant: shop.clone(),
        next_event_id: last + 50,
        deliveries: vec![],
    }])
    .unwrap();
    assert_eq!(
        cat.rebuild_tenant(&shop, &shop_path).unwrap(),
        Rebuilt::Unchanged
    );
    assert_eq!(cat.tenant(&shop).unwrap().unwrap().next_event_id, last + 50);

    // The tenant file no longer exists: its rows go.
    std::fs::remove_file(&shop_path).unwrap();
    assert_eq!(
        cat.rebuild_tenant(&shop, &shop_path).unwrap(),
        Rebuilt::Removed
    );
    assert_eq!(cat.tenant(&shop).unwrap(), None);
    assert_eq!(cat.hook(&shop, &s("gh")).unwrap(), None);
    assert_eq!(cat.delivery(&shop, &s("gh"), "d1").unwrap(), None);
    assert_eq!(
        cat.rebuild_tenant(&shop, &shop_path).unwrap(),
        Rebuilt::Unchanged
    );
}

#[tokio::test]
async fn rebuild_all_recreates_a_deleted_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let (last, epoch) = make_tenants(dir.path()).await;
    let cat = open(dir.path());
    cat.put_tenant(&t("gone"), &TenantRow::new(None)).unwrap();
    cat.put_hook(&t("gone"), &s("gh"), &hook("none", None))
        .unwrap();
    let report = cat.rebuild_all(dir.path()).unwrap();
    assert_eq!(
        (
            report.tenants,
            report.changed,
            report.removed,
            report.failed
        ),
        (2, 2, 1, 0),
        "{report:?}"
    );
    assert_eq!(cat.tenant(&t("gone")).unwrap(), None);
    assert_eq!(cat.hook(&t("gone"), &s("gh")).unwrap(), None);
    assert_answers_like_the_files(&cat, dir.path(), last, &epoch);
    cat.close().unwrap();

    // The catalog is lost: a new empty one is rebuilt to the same answers.
    std::fs::remove_file(catalog_path(dir.path())).unwrap();
    let cat = open(dir.path());
    assert_eq!(cat.tenant(&t("shop")).unwrap(), None);
    let report = cat.rebuild_all(dir.path()).unwrap();
    assert_eq!((report.tenants, report.changed, report.removed), (2, 2, 0));
    assert_answers_like_the_files(&cat, dir.path(), last, &epoch);
    let again = cat.rebuild_all(dir.path()).unwrap();
    assert_eq!((again.tenants, again.changed, again.removed), (2, 0, 0));
}

#[tokio::test]
async fn rebuild_all_reports_an_unreadable_tenant_file_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (last, epoch) = make_tenants(dir.path()).await;
    let broken = t("broken");
    let path = store::layout::tenant_path(dir.path(), &broken);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    let cat = open(dir.path());
    let report = cat.rebuild_all(dir.path()).unwrap();
    assert_eq!((report.tenants, report.changed, report.failed), (3, 2, 1));
    let (id, err) = &report.failures[0];
    assert_eq!(id, &broken);
    assert!(
        matches!(err, CatalogError::TenantFile { tenant, .. } if *tenant == broken),
        "{err}"
    );
    assert_eq!(cat.tenant(&broken).unwrap(), None);
    assert_answers_like_the_files(&cat, dir.path(), last, &epoch);
}

#[tokio::test]
async fn rebuild_keeps_an_unreadable_policy_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(dir.path());
    let id = t("odd");
    pool.create(&id, events::init_schema).await.unwrap();
    pool.write(&id, |conn| {
        conn.execute(
            "INSERT INTO _tenantd_meta(key, value) VALUES (?1, 'Signed')",
            [policy::POLICY_KEY],
        )?;
        Ok(())
    })
    .await
    .unwrap();
    pool.shutdown(Duration::from_secs(5)).await;
    let cat = open(dir.path());
    cat.rebuild_all(dir.path()).unwrap();
    assert_eq!(
        cat.tenant(&id).unwrap().unwrap().webhook_policy,
        Err(UnknownPolicy("Signed".into()))
    );
}

#[test]
fn a_corrupt_catalog_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = catalog_path(dir.path());
    std::fs::write(&path, vec![0xa5; 16384]).unwrap();
    let err = Catalog::open(&path, CatalogConfig::new(Durability::Crash))
        .err()
        .unwrap();
    assert!(matches!(err, CatalogError::Corrupt { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("catalog.db") && msg.contains("corrupt"),
        "{msg}"
    );
    assert!(msg.contains("rebuilt from the tenant files"), "{msg}");

    // The documented way out: move it aside, open a new one, rebuild.
    std::fs::rename(&path, dir.path().join("catalog.db.bad")).unwrap();
    let cat = open(dir.path());
    cat.rebuild_all(dir.path()).unwrap();
}

#[test]
fn a_sqlite_file_that_is_not_a_catalog_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = catalog_path(dir.path());
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("CREATE TABLE t(x)").unwrap();
    drop(other);
    let err = Catalog::open(&path, CatalogConfig::new(Durability::Fsync))
        .err()
        .unwrap();
    assert!(matches!(err, CatalogError::NotACatalog(_)), "{err:?}");

    let path = dir.path().join("future.db");
    Catalog::open(&path, CatalogConfig::new(Durability::Fsync))
        .unwrap()
        .close()
        .unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.pragma_update(None, "user_version", 99).unwrap();
    drop(raw);
    let err = Catalog::open(&path, CatalogConfig::new(Durability::Fsync))
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            CatalogError::Version {
                found: 99,
                expected: 1,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_second_open_of_the_same_catalog_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cat = open(dir.path());
    cat.put_tenant(&t("a"), &TenantRow::new(None)).unwrap();
    let err = Catalog::open(
        &catalog_path(dir.path()),
        CatalogConfig::new(Durability::Fsync),
    )
    .err()
    .unwrap();
    assert!(matches!(err, CatalogError::Locked(_)), "{err:?}");
    assert_eq!(cat.tenant(&t("a")).unwrap(), Some(TenantRow::new(None)));
}

#[test]
fn open_in_a_missing_directory_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/catalog.db");
    let err = Catalog::open(&path, CatalogConfig::new(Durability::Fsync))
        .err()
        .unwrap();
    assert!(matches!(err, CatalogError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("no/such/catalog.db"), "{err}");
}
