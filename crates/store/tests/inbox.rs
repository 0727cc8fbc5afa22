//! The inbox against real files: deliveries acknowledged from the log reach their tenant files
//! exactly once across crashes (a stop without apply or checkpoint, as `kill -9` leaves it),
//! event ids are never reused after an unclean start, a torn log tail is cut and reported,
//! a re-created tenant never receives its predecessor's records, and reads see acknowledged
//! deliveries at once.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use store::events::{self, Event};
use store::inbox::{write_created_lsn, Delivery, Inbox, InboxConfig, InboxError, GENERATION_SHIFT};
use store::{Durability, PoolConfig, SourceName, TenantId, TenantPool};

fn t(s: &str) -> TenantId {
    TenantId::parse(s).unwrap()
}

/// A pool and an inbox over `data` whose appliers never run on their own (a one-hour batching
/// window), so each test decides when records are applied.
async fn open(data: &Path, durability: Durability) -> (TenantPool, Inbox) {
    let mut pcfg = PoolConfig::new(data);
    pcfg.durability = durability;
    let pool = TenantPool::open(pcfg).unwrap();
    let mut cfg = InboxConfig::new(data, durability);
    cfg.apply_delay = Duration::from_secs(3600);
    cfg.checkpoint_interval = Duration::from_secs(3600);
    let inbox = Inbox::open(pool.clone(), cfg).await.unwrap();
    (pool, inbox)
}

/// Creates a tenant as the admin route does.
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

async fn post(inbox: &Inbox, id: &str, body: &str, delivery: Option<&str>) -> (i64, bool) {
    let d = Delivery {
        source: SourceName::parse("src").unwrap(),
        delivery_id: delivery.map(str::to_owned),
        content_type: None,
        received_at_ms: 1,
        body: body.as_bytes().to_vec(),
    };
    let got = inbox.accept(&t(id), d).await.unwrap();
    (got.id, got.duplicate)
}

async fn events_of(pool: &TenantPool, id: &str) -> Vec<Event> {
    pool.read(&t(id), |c| Ok(events::list_events(c, 0, 10_000, None)?))
        .await
        .unwrap()
}

/// Stops as `kill -9` would and releases everything, so the data dir can be opened again.
async fn crash(pool: TenantPool, inbox: Inbox) {
    inbox.abandon().await;
    drop(inbox);
    pool.shutdown(Duration::from_secs(5)).await;
}

async fn stop(pool: TenantPool, inbox: Inbox) {
    inbox.close(Duration::from_secs(10)).await.unwrap();
    drop(inbox);
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_apply_and_log_release_stores_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, inbox) = open(dir.path(), Durability::Crash).await;
    for id in ["a", "b", "c"] {
        create(&pool, &inbox, id).await;
    }
    let mut acked = Vec::new();
    for i in 0..30 {
        let id = ["a", "b", "c"][i % 3];
        let (event, _) = post(&inbox, id, &format!("m{i}"), Some(&format!("d{i}"))).await;
        acked.push((id, event, format!("m{i}")));
    }
    // Applied to the files and the catalog, but no checkpoint: the log still holds it all.
    assert!(inbox.drain(Duration::from_secs(10)).await);
    crash(pool, inbox).await;

    let (pool, inbox) = open(dir.path(), Durability::Crash).await;
    let report = inbox.start_report();
    assert_eq!(report.replayed, 30, "{report:?}");
    assert!(report.unclean && report.drained, "{report:?}");
    for id in ["a", "b", "c"] {
        let got: Vec<(i64, String)> = events_of(&pool, id)
            .await
            .into_iter()
            .map(|e| (e.id, String::from_utf8(e.body).unwrap()))
            .collect();
        let want: Vec<(i64, String)> = acked
            .iter()
            .filter(|(t, _, _)| *t == id)
            .map(|(_, e, b)| (*e, b.clone()))
            .collect();
        assert_eq!(
            got, want,
            "tenant {id}: each acknowledged delivery once, same id"
        );
    }
    // A redelivery after the restart is still a duplicate, with the original id.
    assert_eq!(
        post(&inbox, "a", "again", Some("d0")).await,
        (acked[0].1, true)
    );
    stop(pool, inbox).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_ids_are_never_reused_after_an_unclean_start() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, inbox) = open(dir.path(), Durability::Crash).await;
    create(&pool, &inbox, "a").await;
    let ids: Vec<i64> = futures_ids(&inbox, 3).await;
    assert_eq!(ids, [1, 2, 3]);
    crash(pool, inbox).await;

    // Unclean: a power cut could have lost ids 1..3 with the log's unsynced tail, so new ids
    // start in a range no earlier id can be in.
    let (pool, inbox) = open(dir.path(), Durability::Crash).await;
    assert_eq!(inbox.start_report().generation, 1);
    let floor = (1i64 << GENERATION_SHIFT) + 1;
    assert_eq!(futures_ids(&inbox, 2).await, [floor, floor + 1]);
    stop(pool, inbox).await;

    // A clean stop keeps the range: ids simply go on.
    let (pool, inbox) = open(dir.path(), Durability::Crash).await;
    let report = inbox.start_report();
    assert!(!report.unclean && report.generation == 1, "{report:?}");
    assert_eq!(futures_ids(&inbox, 1).await, [floor + 2]);
    let stored: Vec<i64> = events_of(&pool, "a").await.iter().map(|e| e.id).collect();
    assert_eq!(stored, [1, 2, 3, floor, floor + 1, floor + 2]);
    stop(pool, inbox).await;
}

async fn futures_ids(inbox: &Inbox, n: usize) -> Vec<i64> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(post(inbox, "a", &format!("x{i}"), None).await.0);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_tail_after_acknowledged_records_is_cut_reported_and_loses_nothing() {
    // Bytes a write cut short leaves behind: a frame header promising more than is there, a
    // header with a wrong checksum, random bytes.
    let tails: [Vec<u8>; 3] = [
        [200u32.to_le_bytes(), 0u32.to_le_bytes()].concat(),
        [
            [12u32.to_le_bytes(), 7u32.to_le_bytes()].concat(),
            vec![1; 12],
        ]
        .concat(),
        (0..37u8).map(|i| i.wrapping_mul(73)).collect(),
    ];
    for (k, tail) in tails.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let (pool, inbox) = open(dir.path(), Durability::Fsync).await;
        create(&pool, &inbox, "a").await;
        for i in 0..5 {
            post(&inbox, "a", &format!("m{i}"), None).await;
        }
        crash(pool, inbox).await;
        let seg = last_segment(&dir.path().join("log"));
        let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(tail).unwrap();
        drop(f);

        let (pool, inbox) = open(dir.path(), Durability::Fsync).await;
        let report = inbox.start_report();
        let (_, offset, _) = report.dropped.cut.clone().expect("the tail is reported");
        assert_eq!(
            report.dropped.bytes,
            tail.len() as u64,
            "tail {k}: {report:?}"
        );
        assert!(offset > 0);
        let bodies: Vec<String> = events_of(&pool, "a")
            .await
            .into_iter()
            .map(|e| String::from_utf8(e.body).unwrap())
            .collect();
        assert_eq!(bodies, ["m0", "m1", "m2", "m3", "m4"], "tail {k}");
        // The log goes on after the cut.
        post(&inbox, "a", "after", None).await;
        stop(pool, inbox).await;
    }
}

fn last_segment(dir: &Path) -> std::path::PathBuf {
    let mut segs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    segs.sort();
    segs.pop().expect("a segment")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_tenant_never_receives_its_predecessors_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, inbox) = open(dir.path(), Durability::Fsync).await;
    create(&pool, &inbox, "a").await;
    post(&inbox, "a", "old", Some("d-old")).await;
    // Deleted (as the admin route does) before the record was applied, then created again.
    inbox.tenant_deleted(&t("a")).unwrap();
    pool.delete(&t("a")).await.unwrap();
    create(&pool, &inbox, "a").await;
    assert_eq!(post(&inbox, "a", "new", Some("d1")).await, (1, false));
    // Crash: the restart replays both records; only the new tenant's may land.
    crash(pool, inbox).await;
    let (pool, inbox) = open(dir.path(), Durability::Fsync).await;
    assert_eq!(inbox.start_report().replayed, 2);
    let bodies: Vec<Vec<u8>> = events_of(&pool, "a")
        .await
        .into_iter()
        .map(|e| e.body)
        .collect();
    assert_eq!(bodies, [b"new".to_vec()]);
    // Nor does it inherit its predecessor's delivery ids: this is a first delivery here.
    let (id, duplicate) = post(&inbox, "a", "again", Some("d-old")).await;
    assert!(!duplicate && id > 1, "{id}");
    stop(pool, inbox).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_see_acknowledged_deliveries_before_any_apply_round() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, inbox) = open(dir.path(), Durability::Fsync).await;
    create(&pool, &inbox, "a").await;
    let rounds = inbox.stats().apply_rounds;
    for i in 0..3 {
        assert_eq!(
            post(&inbox, "a", &format!("m{i}"), None).await,
            (i + 1, false)
        );
        assert_eq!(events_of(&pool, "a").await.len() as i64, i + 1);
    }
    assert_eq!(
        inbox.stats().apply_rounds,
        rounds,
        "only reads applied them"
    );
    // Unknown tenants are refused without a file being made.
    let d = Delivery {
        source: SourceName::parse("src").unwrap(),
        delivery_id: None,
        content_type: None,
        received_at_ms: 1,
        body: vec![],
    };
    assert!(matches!(
        inbox.accept(&t("ghost"), d).await,
        Err(InboxError::UnknownTenant)
    ));
    assert!(!pool.path_of(&t("ghost")).exists());
    stop(pool, inbox).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_after_the_dedupe_window_is_stored_as_a_new_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut pcfg = PoolConfig::new(dir.path());
    pcfg.durability = Durability::Fsync;
    let pool = TenantPool::open(pcfg).unwrap();
    let mut cfg = InboxConfig::new(dir.path(), Durability::Fsync);
    cfg.apply_delay = Duration::from_secs(3600);
    // A window of nothing: every applied delivery id is older than it.
    cfg.dedupe_window = Duration::ZERO;
    let inbox = Inbox::open(pool.clone(), cfg).await.unwrap();
    create(&pool, &inbox, "a").await;
    let (first, _) = post(&inbox, "a", "one", Some("d1")).await;
    // Still in the backlog: a duplicate whatever the window.
    assert_eq!(post(&inbox, "a", "two", Some("d1")).await, (first, true));
    assert!(inbox.drain(Duration::from_secs(10)).await);
    assert_eq!(inbox.prune_deliveries().await.unwrap(), 1);
    let (second, duplicate) = post(&inbox, "a", "three", Some("d1")).await;
    assert!(!duplicate && second > first);
    // The file still holds d1 under the first event: the new one is stored without it.
    let got: Vec<(i64, Option<String>)> = events_of(&pool, "a")
        .await
        .into_iter()
        .map(|e| (e.id, e.delivery_id))
        .collect();
    assert_eq!(got, [(first, Some("d1".into())), (second, None)]);
    stop(pool, inbox).await;
}

/// The log keeps every segment the backup has not shipped (the release hold), and lets them go
/// once the hold moves past them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_release_hold_keeps_unshipped_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut pcfg = PoolConfig::new(dir.path());
    pcfg.durability = Durability::Crash;
    let pool = TenantPool::open(pcfg).unwrap();
    let mut cfg = InboxConfig::new(dir.path(), Durability::Crash);
    cfg.apply_delay = Duration::from_secs(3600);
    cfg.checkpoint_interval = Duration::from_secs(3600);
    cfg.segment_bytes = 512; // a few records per segment
    let inbox = Inbox::open(pool.clone(), cfg).await.unwrap();
    let hold = inbox.release_hold();
    hold.store(0, std::sync::atomic::Ordering::Release);
    create(&pool, &inbox, "a").await;
    for i in 0..20 {
        post(
            &inbox,
            "a",
            &format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(100)),
            None,
        )
        .await;
    }
    assert!(
        inbox.drain(Duration::from_secs(10)).await,
        "everything applied"
    );
    let segments = |dir: &Path| {
        ingest::segment::list_segments(&dir.join("log"))
            .unwrap()
            .len()
    };
    let before = segments(dir.path());
    assert!(before > 3, "{before} segments");
    inbox.checkpoint().await.unwrap();
    assert_eq!(segments(dir.path()), before, "held: nothing released");
    hold.store(u64::MAX, std::sync::atomic::Ordering::Release);
    inbox.checkpoint().await.unwrap();
    assert_eq!(segments(dir.path()), 1, "released up to the open segment");
    stop(pool, inbox).await;
}
