//! Admission control and limits: 413, 429, 503, 507, the open-tenant cap, slow clients.

use std::time::Duration;

use serde_json::Value;
use store::TenantId;

use crate::util::{error_code, start_with};

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let srv = start_with(|_, http| http.max_body_bytes = 1024).await;
    srv.create_tenant("a").await;
    let r = srv.post_hook("a", "s", &"x".repeat(1025)).await;
    assert_eq!(error_code(r).await, (413, "payload_too_large".into()));
    assert_eq!(
        srv.post_hook("a", "s", &"x".repeat(1024)).await.status(),
        202
    );
    srv.stop().await;
}

#[tokio::test]
async fn full_tenant_write_queue_is_429_with_retry_after() {
    let srv = start_with(|pool, _| pool.max_queued_writes = 1).await;
    srv.create_tenant("a").await;
    let id = TenantId::parse("a").unwrap();
    let held = srv.state.pool.writer(&id).await.unwrap();
    // Webhooks do not wait for the writer (they go to the ingest log); admin writes do.
    let queued = {
        let (http, url) = (srv.http.clone(), srv.url.clone());
        tokio::spawn(async move { set_policy(&http, &url).await })
    };
    crate::raw::until("the write to queue", || {
        srv.state.pool.queued_writes(&id) > 0
    })
    .await;
    let r = set_policy(&srv.http, &srv.url).await;
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(error_code(r).await, (429, "tenant_overloaded".into()));
    assert_eq!(srv.post_hook("a", "s", "x").await.status(), 202);
    drop(held);
    assert_eq!(queued.await.unwrap().status(), 200);
    srv.stop().await;
}

#[tokio::test]
async fn too_many_requests_in_flight_is_503_with_retry_after() {
    let srv = start_with(|_, http| http.max_in_flight = 1).await;
    srv.create_tenant("a").await;
    let id = TenantId::parse("a").unwrap();
    let held = srv.state.pool.writer(&id).await.unwrap();
    let in_flight = {
        let (http, url) = (srv.http.clone(), srv.url.clone());
        tokio::spawn(async move { set_policy(&http, &url).await })
    };
    crate::raw::until("a request in flight", || srv.state.metrics.in_flight() > 0).await;
    let r = srv.post_hook("a", "s", "2").await;
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(error_code(r).await, (503, "overloaded".into()));
    // Health checks are never refused.
    let r = srv
        .http
        .get(format!("{}/healthz", srv.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(held);
    assert_eq!(in_flight.await.unwrap().status(), 200);
    srv.stop().await;
}

#[tokio::test]
async fn quota_exceeded_is_507_and_the_file_stays_intact() {
    let srv = start_with(|pool, _| pool.quota_bytes = 192 * 1024).await;
    srv.create_tenant("small").await;
    let body = "z".repeat(16 * 1024);
    let mut accepted = 0;
    let code = loop {
        let r = srv.post_hook("small", "s", &body).await;
        if r.status() == 202 {
            accepted += 1;
            assert!(accepted < 100, "quota never reached");
            continue;
        }
        break error_code(r).await;
    };
    assert_eq!(code, (507, "quota_exceeded".into()));
    let r = srv
        .admin(reqwest::Method::GET, "/admin/tenants/small")
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["events"], accepted);
    let path = srv.tenant_path("small");
    let _dir = srv.stop().await;
    let conn = rusqlite::Connection::open(path).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

#[tokio::test]
async fn open_tenants_never_exceed_the_cap() {
    let srv = start_with(|pool, _| pool.max_open = 8).await;
    let ids: Vec<String> = (0..40).map(|i| format!("t{i}")).collect();
    for id in &ids {
        srv.create_tenant(id).await;
    }
    for round in 0..2 {
        for id in &ids {
            assert_eq!(srv.post_hook(id, "s", "x").await.status(), 202);
            // Applying the webhook opens its tenant.
            srv.drain().await;
            let open = srv.metric("tenantd_open_tenants").await;
            assert!(open <= 8.0, "round {round}: {open} open");
        }
    }
    // Every tenant was opened at least once through a pool of 8: at least 32 were evicted
    // (tenants the appliers opened go first, in no particular order among themselves).
    assert!(srv.metric("tenantd_evictions_total").await >= 32.0);
    for id in &ids {
        let r = srv
            .admin(reqwest::Method::GET, &format!("/admin/tenants/{id}"))
            .await;
        assert_eq!(r.json::<Value>().await.unwrap()["events"], 2, "{id}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn slow_clients_are_disconnected_after_the_header_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let srv = start_with(|_, http| http.header_read_timeout = Duration::from_millis(200)).await;
    let mut s = tokio::net::TcpStream::connect(srv.url.trim_start_matches("http://"))
        .await
        .unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    // The server closes the connection; the generous outer timeout only guards against a hang.
    let read = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "server kept a slow client's connection open");
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));
    srv.stop().await;
}

/// Unmounts the small tmpfs even if the test fails.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Needs root (CI and the dev machines run as root): a 1 MiB tmpfs is the full disk.
#[tokio::test]
async fn disk_full_is_507_and_nothing_is_corrupted() {
    let holder = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(holder.path())
        .status()
        .unwrap();
    assert!(mounted.success(), "mounting a tmpfs needs root");
    let _mount = Mount(holder.path().to_owned());
    let data = holder.path().join("data");
    let srv = crate::util::start_in(&data, |_, _| {}).await;
    srv.create_tenant("full").await;
    let body = "f".repeat(64 * 1024);
    let mut accepted = 0;
    let code = loop {
        let r = srv.post_hook("full", "s", &body).await;
        if r.status() == 202 {
            accepted += 1;
            assert!(accepted < 100, "disk never filled");
            continue;
        }
        break error_code(r).await;
    };
    assert_eq!(code, (507, "disk_full".into()));
    // Still serving; once space returns, everything acknowledged reaches the tenant file
    // (the log holds it until then).
    let grown = std::process::Command::new("mount")
        .args(["-o", "remount,size=16m"])
        .arg(holder.path())
        .status()
        .unwrap();
    assert!(grown.success());
    let r = srv.admin(reqwest::Method::GET, "/admin/tenants/full").await;
    assert_eq!(r.json::<Value>().await.unwrap()["events"], accepted);
    let path = srv.tenant_path("full");
    srv.stop().await;
    let conn = rusqlite::Connection::open(path).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let n: i64 = conn
        .query_row("SELECT count(*) FROM _tenantd_events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, accepted);
}

/// `PUT /admin/tenants/a/policy`: a write that takes tenant a's writer.
async fn set_policy(http: &reqwest::Client, url: &str) -> reqwest::Response {
    http.put(format!("{url}/admin/tenants/a/policy"))
        .bearer_auth(crate::util::TOKEN)
        .json(&serde_json::json!({"webhooks": "open"}))
        .send()
        .await
        .unwrap()
}
