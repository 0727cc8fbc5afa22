//! The HTTP front door's other edges: JSON 405, readiness during shutdown, request ids, reject
//! counters, Host addressing, and the DNS-label id rule.

use std::time::{Duration, Instant};

use reqwest::Method;

use crate::raw::HANG;
use crate::util::{error_code, start, start_with};

#[tokio::test]
async fn regression_405_is_not_json() {
    let srv = start().await;
    for (method, path) in [
        (Method::PATCH, "/admin/tenants/acme"),
        (Method::GET, "/t/acme/hooks/x"),
        (Method::DELETE, "/t/acme/v2/pipeline"),
        (Method::POST, "/healthz"),
    ] {
        let r = srv.admin(method.clone(), path).await;
        assert!(
            r.headers().contains_key("allow"),
            "{method} {path}: no Allow"
        );
        assert_eq!(
            error_code(r).await,
            (405, "method_not_allowed".into()),
            "{method} {path}"
        );
    }
    srv.stop().await;
}

#[tokio::test]
async fn regression_readyz_turns_503_only_after_the_listener_closes() {
    let srv = start_with(|_, http| http.shutdown_delay = Duration::from_secs(5)).await;
    srv.create_tenant("acme").await;
    let url = srv.url.clone();
    // A new connection per request, as a load balancer's probe would open.
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    assert_eq!(
        fresh
            .get(format!("{url}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let stopping = tokio::spawn(srv.stop());
    let deadline = Instant::now() + HANG;
    loop {
        let r = fresh
            .get(format!("{url}/readyz"))
            .send()
            .await
            .expect("the listener closed before /readyz answered 503");
        if r.status() == 503 {
            assert_eq!(error_code(r).await, (503, "shutting_down".into()));
            break;
        }
        assert_eq!(r.status(), 200);
        assert!(Instant::now() < deadline, "/readyz never turned 503");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Requests that still arrive during the delay are served.
    let r = fresh
        .post(format!("{url}/t/acme/hooks/x"))
        .body("late")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    stopping.await.unwrap();
    assert!(fresh.get(format!("{url}/readyz")).send().await.is_err());
}

#[tokio::test]
async fn request_id_is_echoed_when_sane_and_generated_otherwise() {
    let srv = start().await;
    let get = |id: Option<&str>, path: &str| {
        let mut req = srv.http.get(format!("{}{path}", srv.url));
        if let Some(id) = id {
            req = req.header("x-request-id", id);
        }
        req.send()
    };
    let r = get(Some("abc-123.x:y_z"), "/healthz").await.unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123.x:y_z");
    // Errors carry it too.
    let r = get(Some("req-404"), "/t/nope/events").await.unwrap();
    assert_eq!(r.headers()["x-request-id"], "req-404");
    let generated = |r: &reqwest::Response| {
        let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert!(
            id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id:?}"
        );
        id
    };
    let a = generated(&get(None, "/healthz").await.unwrap());
    let b = generated(&get(Some("has space"), "/nowhere").await.unwrap());
    let c = generated(&get(Some(&"x".repeat(129)), "/healthz").await.unwrap());
    assert!(a != b && b != c);
    srv.stop().await;
}

#[tokio::test]
async fn rejects_are_counted_by_reason() {
    let srv = start_with(|_, http| http.max_body_bytes = 16).await;
    srv.create_tenant("acme").await;
    let no_token = srv
        .http
        .get(format!("{}/admin/tenants", srv.url))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 401);
    assert_eq!(srv.post_hook("nope", "x", "1").await.status(), 404);
    assert_eq!(srv.post_hook("nope", "x", "2").await.status(), 404);
    assert_eq!(
        srv.post_hook("acme", "x", &"x".repeat(17)).await.status(),
        413
    );
    assert_eq!(
        srv.admin(Method::PATCH, "/admin/tenants/acme")
            .await
            .status(),
        405
    );
    let text = srv.metrics_text().await;
    for line in [
        "tenantd_rejects_total{reason=\"unauthorized\"} 1",
        "tenantd_rejects_total{reason=\"tenant_not_found\"} 2",
        "tenantd_rejects_total{reason=\"payload_too_large\"} 1",
        "tenantd_rejects_total{reason=\"method_not_allowed\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    srv.stop().await;
}

#[test]
fn regression_host_addressing_is_case_sensitive_and_refuses_fqdn() {
    use axum::http::{HeaderMap, HeaderValue};
    use server::sql::tenant::resolve;
    let base = Some("db.example.com");
    for host in [
        "ACME.db.example.com",
        "acme.DB.Example.COM",
        "acme.db.example.com.",
        "Acme.db.example.com.:8080",
    ] {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_str(host).unwrap());
        let id = resolve(None, &h, None, base).unwrap_or_else(|e| panic!("{host}: {e}"));
        assert_eq!(id.as_str(), "acme", "{host}");
    }
    for host in [
        "acme.db.example.com..",
        ".db.example.com.",
        "a.b.db.example.com.",
    ] {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_str(host).unwrap());
        assert!(resolve(None, &h, None, base).is_err(), "{host}");
    }
}

#[tokio::test]
async fn regression_ids_ending_in_dash_are_accepted() {
    let srv = start().await;
    for id in ["acme-", "acme_", "a-_"] {
        let r = srv
            .admin(Method::PUT, &format!("/admin/tenants/{id}"))
            .await;
        assert_eq!(
            error_code(r).await,
            (400, "invalid_tenant_id".into()),
            "{id}"
        );
        let r = srv.post_hook(id, "x", "1").await;
        assert_eq!(
            error_code(r).await,
            (400, "invalid_tenant_id".into()),
            "{id}"
        );
    }
    srv.create_tenant("a-b_c").await;
    let r = srv.post_hook("a-b_c", "src-", "1").await;
    assert_eq!(error_code(r).await, (400, "invalid_source".into()));
    srv.stop().await;
}
