//! Moving a tenant between two data directories with the store's handoff: the fence refuses
//! new deliveries, the snapshot carries every acknowledged one, the target verifies and
//! installs it with ids that never go backwards, a commit retires the source copy (and a
//! restart after it still starts), an undo brings it back, and a damaged copy is refused.

use std::path::Path;
use std::time::Duration;

use store::events::{self, Event};
use store::handoff::{self, Incoming, Undone};
use store::inbox::{write_created_lsn, Delivery, Inbox, InboxConfig, InboxError};
use store::{Durability, PoolConfig, SourceName, StoreError, TenantId, TenantPool};

fn t(s: &str) -> TenantId {
    TenantId::parse(s).unwrap()
}

async fn open(data: &Path) -> (TenantPool, Inbox) {
    let pool = TenantPool::open(PoolConfig::new(data)).unwrap();
    let mut cfg = InboxConfig::new(data, Durability::Fsync);
    cfg.apply_delay = Duration::from_secs(3600);
    let inbox = Inbox::open(pool.clone(), cfg).await.unwrap();
    (pool, inbox)
}

async fn create(pool: &TenantPool, inbox: &Inbox, id: &str) {
    let lsn = inbox.creation_lsn().await.unwrap();
    pool.create(&t(id), move |c| {
        events::init_schema(c)?;
        write_created_lsn(c, lsn)
    })
    .await
    .unwrap();
    inbox.tenant_created(&t(id), None).unwrap();
}

fn delivery(body: &str) -> Delivery {
    Delivery {
        source: SourceName::parse("src").unwrap(),
        delivery_id: Some(body.to_string()),
        content_type: None,
        received_at_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
        body: body.as_bytes().to_vec(),
    }
}

async fn events_of(pool: &TenantPool, id: &str) -> Vec<Event> {
    pool.read(&t(id), |c| Ok(events::list_events(c, 0, 10_000, None)?))
        .await
        .unwrap()
}

/// Sends `snap` into `inbox`'s node as an import.
async fn import(
    inbox: &Inbox,
    snap: &handoff::Snapshot,
    bytes: &[u8],
) -> Result<handoff::Installed, handoff::HandoffError> {
    let data = inbox.pool().config().data_dir.clone();
    let mut incoming = Incoming::create(&data, &t("acme")).await.unwrap();
    incoming.write(bytes).await.unwrap();
    let received = incoming.finish().await.unwrap();
    handoff::install(
        inbox,
        &t("acme"),
        received,
        &snap.sha256,
        snap.bytes,
        snap.next_event_id,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_tenant_moves_with_every_acknowledged_delivery_and_can_be_undone() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (src_pool, src) = open(a.path()).await;
    let (dst_pool, dst) = open(b.path()).await;
    create(&src_pool, &src, "acme").await;
    for i in 0..5 {
        src.accept(&t("acme"), delivery(&format!("d{i}")))
            .await
            .unwrap();
    }
    let now = tokio::time::Instant::now();
    let grant = src_pool
        .fences()
        .fence(&t("acme"), "node2", Duration::from_secs(30), None, now)
        .unwrap();
    // New deliveries wait for the fence (fence_wait), then are refused; reads go on.
    match src.accept(&t("acme"), delivery("late")).await {
        Err(InboxError::Store(StoreError::Moving { .. })) => {}
        other => panic!("{other:?}"),
    }
    // The snapshot holds the five acknowledged deliveries, applied first.
    let snap = handoff::export(&src, &t("acme"), grant.token, Duration::from_secs(5))
        .await
        .unwrap();
    let bytes = std::fs::read(&snap.path).unwrap();
    assert!(snap.next_event_id >= 6);

    // A damaged copy is refused and nothing is installed.
    let mut bad = bytes.clone();
    bad[200] ^= 0xff;
    let refused = import(&dst, &snap, &bad).await.unwrap_err();
    assert!(
        matches!(refused, handoff::HandoffError::Checksum { .. }),
        "{refused}"
    );
    assert!(!dst_pool.path_of(&t("acme")).exists());

    let installed = import(&dst, &snap, &bytes).await.unwrap();
    assert_eq!(installed.events, 5);
    assert!(
        installed.next_event_id >= snap.next_event_id,
        "ids never go backwards"
    );
    let moved = events_of(&dst_pool, "acme").await;
    assert_eq!(moved.len(), 5);
    // The target dedupes the source's deliveries and continues its ids.
    let again = dst.accept(&t("acme"), delivery("d3")).await.unwrap();
    assert!(again.duplicate);
    let next = dst.accept(&t("acme"), delivery("d5")).await.unwrap();
    assert!(next.id > moved.last().unwrap().id);

    // Commit retires the source copy; the tenant answers with its new owner there.
    assert_eq!(
        handoff::commit(&src, &t("acme"), grant.token)
            .await
            .unwrap(),
        "node2"
    );
    assert!(!src_pool.path_of(&t("acme")).exists());
    match src.accept(&t("acme"), delivery("after")).await {
        Err(InboxError::Store(StoreError::Moved { to })) => assert_eq!(to, "node2"),
        other => panic!("{other:?}"),
    }
    // Undo (a switch that failed): the file is back and served.
    assert_eq!(
        handoff::undo(&src, &t("acme"), 0).await.unwrap(),
        Undone::Restored
    );
    assert_eq!(events_of(&src_pool, "acme").await.len(), 5);
    src.accept(&t("acme"), delivery("back")).await.unwrap();
    src.close(Duration::from_secs(10)).await.unwrap();
    dst.close(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_node_restarted_after_a_tenant_moved_away_failed_to_start() {
    // The log still held the moved tenant's records; replaying them asked for its row, which
    // the commit had dropped, and the "moved" answer stopped the start.
    let a = tempfile::tempdir().unwrap();
    let (pool, inbox) = open(a.path()).await;
    create(&pool, &inbox, "acme").await;
    inbox.accept(&t("acme"), delivery("d0")).await.unwrap();
    let grant = pool
        .fences()
        .fence(
            &t("acme"),
            "node2",
            Duration::from_secs(30),
            None,
            tokio::time::Instant::now(),
        )
        .unwrap();
    let snap = handoff::export(&inbox, &t("acme"), grant.token, Duration::from_secs(5))
        .await
        .unwrap();
    std::fs::remove_file(&snap.path).unwrap();
    handoff::commit(&inbox, &t("acme"), grant.token)
        .await
        .unwrap();
    // As kill -9 leaves it: no checkpoint, so the log replays d0 at the next start.
    inbox.abandon().await;
    drop(inbox);
    pool.shutdown(Duration::from_secs(5)).await;
    let (pool, inbox) = open(a.path()).await;
    assert_eq!(pool.fences().moved_to(&t("acme")).as_deref(), Some("node2"));
    assert_eq!(inbox.start_report().orphaned, 1);
    inbox.close(Duration::from_secs(10)).await.unwrap();
}
