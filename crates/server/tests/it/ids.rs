//! Tenant ids are validated once: every bad form is a 400, and no request ever creates a file
//! for a tenant an admin did not create.

use crate::util::{error_code, raw_request, start};

/// Bad tenant ids as they appear in a URL path (percent-encoded where a client would encode).
const BAD: &[&str] = &[
    "%2e%2e%2fx", // ../x as one segment
    "..",         // sent raw: no client-side normalisation
    "%2e%2e",
    "%2E%2E",
    "A",
    "Acme",
    "-lead",
    "_lead",
    "a.b",
    "caf%C3%A9", // unicode
    "a%20b",
    "a%00b",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // 64 chars
];

#[tokio::test]
async fn every_bad_tenant_id_is_a_400_on_every_route() {
    let srv = start().await;
    let want = (400, "invalid_tenant_id".to_owned());
    for bad in BAD {
        let hooks = raw_request(&srv.url, "POST", &format!("/t/{bad}/hooks/s"), false).await;
        assert_eq!(hooks, want, "POST hooks {bad}");
        let events = raw_request(&srv.url, "GET", &format!("/t/{bad}/events"), true).await;
        assert_eq!(events, want, "GET events {bad}");
        let admin = raw_request(&srv.url, "PUT", &format!("/admin/tenants/{bad}"), true).await;
        assert_eq!(admin, want, "PUT admin {bad}");
    }
    // The empty id never reaches a handler; the fallback names it.
    assert_eq!(
        raw_request(&srv.url, "POST", "/t//hooks/s", false).await,
        want
    );
    let r = srv.admin(reqwest::Method::PUT, "/admin/tenants/a/b").await;
    assert_eq!(error_code(r).await.0, 404);
    let r = srv.post_hook("ok", "Bad-Source", "{}").await;
    assert_eq!(error_code(r).await, (400, "invalid_source".into()));
    assert!(srv.tenant_files().is_empty(), "{:?}", srv.tenant_files());
    let mut names: Vec<String> = std::fs::read_dir(&srv.data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("catalog.db"))
        .collect();
    names.sort();
    assert_eq!(names, ["log", "tenants"], "only the node's own files exist");
    srv.stop().await;
}

#[tokio::test]
async fn unknown_tenant_is_404_and_creates_no_file() {
    let srv = start().await;
    let r = srv.post_hook("ghost", "s", "{}").await;
    assert_eq!(error_code(r).await, (404, "tenant_not_found".into()));
    let r = srv.admin(reqwest::Method::GET, "/t/ghost/events").await;
    assert_eq!(error_code(r).await, (404, "tenant_not_found".into()));
    let r = srv
        .admin(reqwest::Method::GET, "/admin/tenants/ghost")
        .await;
    assert_eq!(error_code(r).await, (404, "tenant_not_found".into()));
    let r = srv
        .admin(reqwest::Method::PUT, "/admin/tenants/ghost/hooks/s")
        .await;
    assert_eq!(error_code(r).await.0, 400, "no JSON body");
    assert!(!srv.tenant_path("ghost").exists());
    assert!(srv.tenant_files().is_empty());
    let r = srv
        .http
        .get(format!("{}/no/such/route", srv.url))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (404, "not_found".into()));
    srv.stop().await;
}
