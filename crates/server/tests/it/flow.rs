//! The README quickstart, end to end: create, post, read back, idle close, events paging.

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use crate::util::{start, TOKEN};

#[tokio::test]
async fn quickstart_flow_and_scale_to_zero() {
    let srv = start().await;
    srv.create_tenant("acme").await;
    assert_eq!(srv.tenant_files(), ["acme.db"]);

    let r = srv
        .post_hook("acme", "github", r#"{"hello":"world"}"#)
        .await;
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v, serde_json::json!({"id": 1, "duplicate": false}));

    let r = srv.admin(reqwest::Method::GET, "/t/acme/events").await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["events"][0]["body"], r#"{"hello":"world"}"#);
    assert_eq!(v["events"][0]["source"], "github");
    assert_eq!(v["next_after"], 1);

    assert_eq!(srv.metric("tenantd_open_tenants").await, 1.0);
    // Not yet idle for the TTL: stays open.
    srv.state
        .pool
        .maintain_at(Instant::now() + Duration::from_secs(5))
        .await;
    assert_eq!(srv.metric("tenantd_open_tenants").await, 1.0);
    // Past the TTL: closed, and on disk the tenant is just its .db file.
    srv.state
        .pool
        .maintain_at(Instant::now() + Duration::from_secs(11))
        .await;
    assert_eq!(srv.metric("tenantd_open_tenants").await, 0.0);
    assert_eq!(srv.tenant_files(), ["acme.db"]);

    // Reopened on demand, data intact.
    let r = srv.admin(reqwest::Method::GET, "/admin/tenants/acme").await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["events"], 1);
    srv.stop().await;
}

#[tokio::test]
async fn events_page_in_order_and_filter_by_source() {
    let srv = start().await;
    srv.create_tenant("pager").await;
    for i in 0..25 {
        let source = if i % 2 == 0 { "even" } else { "odd" };
        assert_eq!(
            srv.post_hook("pager", source, &format!("{i}"))
                .await
                .status(),
            202
        );
    }
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let r = srv
            .admin(
                reqwest::Method::GET,
                &format!("/t/pager/events?after={after}&limit=10"),
            )
            .await;
        let v: Value = r.json().await.unwrap();
        let page = v["events"].as_array().unwrap();
        seen.extend(
            page.iter()
                .map(|e| e["body"].as_str().unwrap().parse::<i32>().unwrap()),
        );
        after = v["next_after"].as_i64().unwrap();
        if !v["more"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(seen, (0..25).collect::<Vec<_>>());
    let r = srv
        .admin(
            reqwest::Method::GET,
            "/t/pager/events?source=odd&limit=1000",
        )
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["events"].as_array().unwrap().len(), 12);
    for bad in ["limit=0", "limit=1001", "after=x", "source=Bad"] {
        let r = srv
            .admin(reqwest::Method::GET, &format!("/t/pager/events?{bad}"))
            .await;
        assert_eq!(r.status(), 400, "{bad}");
    }
    let r = srv
        .http
        .get(format!("{}/t/pager/events", srv.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "events need the admin token");
    let r = srv
        .http
        .get(format!("{}/t/pager/events", srv.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    srv.stop().await;
}

#[tokio::test]
async fn concurrent_writers_to_one_tenant_all_land_with_unique_ids() {
    let srv = start().await;
    srv.create_tenant("hot").await;
    let mut tasks = Vec::new();
    for w in 0..16 {
        let (http, url) = (srv.http.clone(), srv.url.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..20 {
                let r = http
                    .post(format!("{url}/t/hot/hooks/s"))
                    .body(format!("{w}-{i}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 202);
                ids.push(r.json::<Value>().await.unwrap()["id"].as_i64().unwrap());
            }
            ids
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    assert_eq!(all, (1..=320).collect::<Vec<i64>>());
    srv.stop().await;
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let srv = start().await;
    for path in ["/healthz", "/readyz"] {
        let r = srv
            .http
            .get(format!("{}{path}", srv.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    srv.create_tenant("m").await;
    srv.post_hook("m", "s", "x").await;
    srv.post_hook("nope", "s", "x").await;
    srv.drain().await;
    let text = srv.metrics_text().await;
    for want in [
        "tenantd_open_tenants 1",
        "tenantd_rejects_total{reason=\"tenant_not_found\"} 1",
        "tenantd_request_duration_seconds_count{route=\"/t/{tenant}/hooks/{source}\",status=\"202\"} 1",
        "tenantd_evictions_total 0",
        "tenantd_checkpoints_total 0",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn a_tenant_whose_migration_fails_is_503_not_served_on_an_old_schema() {
    use store::migrate::{Migration, MigrationSet};
    let migration = Migration {
        version: 1,
        name: "0001_t.sql".into(),
        sql: "CREATE TABLE t(x)".into(),
    };
    let set = std::sync::Arc::new(MigrationSet::new(vec![migration]).unwrap());
    let srv = crate::util::start_with(|pool, _| pool.migrations = Some(set)).await;
    srv.create_tenant("good").await;
    srv.create_tenant("bad").await;
    let bad = store::TenantId::parse("bad").unwrap();
    // Make "bad" unmigratable behind the pool's back (as an old tenant with a clashing table).
    let path = srv.state.pool.path_of(&bad);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE t(y)")
        .unwrap();
    assert_eq!(srv.post_hook("good", "s", "x").await.status(), 202);
    srv.drain().await;
    let r = srv.admin(reqwest::Method::GET, "/t/bad/events").await;
    assert_eq!(
        crate::util::error_code(r).await,
        (503, "migration_failed".into())
    );
    // Both tenants were migrated once (one failed); a later request does not re-run it, and
    // a webhook for the failed tenant is refused rather than logged for a file it cannot reach.
    let r = srv.post_hook("bad", "s", "y").await;
    assert_eq!(
        crate::util::error_code(r).await,
        (503, "migration_failed".into())
    );
    let metrics = srv.metrics_text().await;
    assert!(
        metrics.contains("tenantd_migration_runs_total 2\n")
            && metrics.contains("tenantd_migration_failures_total 1\n"),
        "{metrics}"
    );
    srv.stop().await;
}
