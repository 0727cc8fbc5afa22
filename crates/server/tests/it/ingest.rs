//! The webhook ingest path through the real server: acknowledged from the node log, applied
//! later, yet every read sees it at once; dedupe across the apply boundary and a restart; the
//! backlog cap (503 + Retry-After, nothing lost, recovers); metrics.

use std::time::Duration;

use auth::Access;
use serde_json::{json, Value};
use store::inbox::InboxConfig;

use crate::util::{error_code, start_full, start_with_inbox, TestServer};

/// Appliers that never run on their own: only reads (and the test's drains) apply.
fn lazy(cfg: &mut InboxConfig) {
    cfg.apply_delay = Duration::from_secs(3600);
    cfg.checkpoint_interval = Duration::from_secs(3600);
}

async fn post_with_id(srv: &TestServer, tenant: &str, body: &str, id: &str) -> reqwest::Response {
    srv.http
        .post(format!("{}/t/{tenant}/hooks/src", srv.url))
        .header("webhook-id", id)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

async fn id_of(r: reqwest::Response) -> (u16, i64, bool) {
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    (
        status,
        v["id"].as_i64().unwrap(),
        v["duplicate"].as_bool().unwrap(),
    )
}

async fn event_bodies(srv: &TestServer, tenant: &str) -> Vec<String> {
    let r = srv
        .admin(reqwest::Method::GET, &format!("/t/{tenant}/events"))
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["body"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_read_path_sees_an_acknowledged_webhook_at_once() {
    let srv = start_with_inbox(lazy).await;
    srv.create_tenant("acme").await;
    // Events API.
    assert_eq!(srv.post_hook("acme", "src", "one").await.status(), 202);
    assert_eq!(event_bodies(&srv, "acme").await, ["one"]);
    // Admin show.
    assert_eq!(srv.post_hook("acme", "src", "two").await.status(), 202);
    let r = srv.admin(reqwest::Method::GET, "/admin/tenants/acme").await;
    assert_eq!(r.json::<Value>().await.unwrap()["events"], 2);
    // SQL API (a reader connection).
    assert_eq!(srv.post_hook("acme", "src", "three").await.status(), 202);
    assert_eq!(srv.metric("tenantd_ingest_unapplied_records").await, 1.0);
    let token = crate::tokens::mint(&srv.state, "acme", Access::ReadOnly);
    let r = srv
        .http
        .post(format!("{}/t/acme/v2/pipeline", srv.url))
        .bearer_auth(&token)
        .json(&json!({"requests": [
            {"type": "execute", "stmt": {"sql": "SELECT 1"}},
            {"type": "close"}
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The SQL read applied it (tenant SQL cannot read the reserved events table itself).
    assert_eq!(srv.metric("tenantd_ingest_unapplied_records").await, 0.0);
    let r = srv.admin(reqwest::Method::GET, "/admin/tenants/acme").await;
    assert_eq!(r.json::<Value>().await.unwrap()["events"], 3);
    srv.stop().await;
}

#[tokio::test]
async fn a_redelivery_is_a_duplicate_before_and_after_apply_and_across_a_restart() {
    let srv = start_with_inbox(lazy).await;
    srv.create_tenant("acme").await;
    let (status, first, dup) = id_of(post_with_id(&srv, "acme", "a", "d-1").await).await;
    assert_eq!((status, dup), (202, false));
    // Still in the backlog.
    let again = id_of(post_with_id(&srv, "acme", "a2", "d-1").await).await;
    assert_eq!(again, (200, first, true));
    // Applied: the catalog answers.
    srv.drain().await;
    let again = id_of(post_with_id(&srv, "acme", "a3", "d-1").await).await;
    assert_eq!(again, (200, first, true));
    // A second delivery waits in the backlog over the restart (the clean stop applies it).
    let (_, second, _) = id_of(post_with_id(&srv, "acme", "b", "d-2").await).await;
    let data = srv.data.clone();
    let dir = srv.stop().await;
    let srv = start_full(dir, &data, |_, _| {}, lazy).await;
    assert_eq!(
        id_of(post_with_id(&srv, "acme", "x", "d-1").await).await,
        (200, first, true)
    );
    assert_eq!(
        id_of(post_with_id(&srv, "acme", "y", "d-2").await).await,
        (200, second, true)
    );
    assert_eq!(event_bodies(&srv, "acme").await, ["a", "b"]);
    srv.stop().await;
}

#[tokio::test]
async fn a_full_backlog_is_503_with_retry_after_loses_nothing_and_recovers() {
    let srv = start_with_inbox(|cfg| {
        lazy(cfg);
        cfg.caps.records = 4;
        cfg.caps.tenant_records = 3;
    })
    .await;
    srv.create_tenant("busy").await;
    srv.create_tenant("calm").await;
    for i in 0..3 {
        assert_eq!(
            srv.post_hook("busy", "src", &format!("b{i}"))
                .await
                .status(),
            202
        );
    }
    // The tenant's own cap: only this tenant waits.
    let r = srv.post_hook("busy", "src", "b3").await;
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(error_code(r).await, (503, "ingest_backlog".into()));
    assert_eq!(srv.post_hook("calm", "src", "c0").await.status(), 202);
    // The node's cap: everyone waits.
    let r = srv.post_hook("calm", "src", "c1").await;
    assert_eq!(error_code(r).await, (503, "ingest_backlog".into()));
    assert_eq!(srv.metric("tenantd_ingest_refused_total").await, 2.0);
    assert_eq!(srv.metric("tenantd_ingest_pending_records").await, 4.0);
    // Once applied, deliveries are taken again; nothing acknowledged was lost.
    srv.drain().await;
    assert_eq!(srv.metric("tenantd_ingest_pending_records").await, 0.0);
    assert_eq!(srv.post_hook("busy", "src", "b3").await.status(), 202);
    assert_eq!(event_bodies(&srv, "busy").await, ["b0", "b1", "b2", "b3"]);
    assert_eq!(event_bodies(&srv, "calm").await, ["c0"]);
    srv.stop().await;
}

#[tokio::test]
async fn the_appliers_drain_the_backlog_on_their_own() {
    let srv = start_with_inbox(|cfg| cfg.apply_delay = Duration::from_millis(10)).await;
    srv.create_tenant("acme").await;
    for i in 0..20 {
        assert_eq!(
            srv.post_hook("acme", "src", &format!("m{i}"))
                .await
                .status(),
            202
        );
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while srv.metric("tenantd_ingest_applied_total").await < 20.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the appliers did not apply 20 records in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(srv.metric("tenantd_ingest_pending_records").await, 0.0);
    assert!(srv.metric("tenantd_ingest_apply_rounds_total").await >= 1.0);
    srv.stop().await;
}
