//! The webhook policy (`open`, `configured`, `signed`), failing closed on unreadable stored
//! settings, and removing a source's settings.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde_json::{json, Value};
use server::signature::{sign, Scheme};
use store::TenantId;

use crate::util::{error_code, start, TestServer, TOKEN};

const SECRET: &str = "gh-secret";

async fn put_json(srv: &TestServer, path: &str, body: Value) -> reqwest::Response {
    srv.http
        .put(format!("{}{path}", srv.url))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn signed_github(srv: &TestServer, source: &str, delivery: &str) -> reqwest::Response {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut req = srv
        .http
        .post(format!("{}/t/shop/hooks/{source}", srv.url))
        .body("{}");
    for (k, v) in sign(Scheme::Github, SECRET, delivery, now, b"{}").unwrap() {
        req = req.header(k, v);
    }
    req.send().await.unwrap()
}

async fn show(srv: &TestServer) -> Value {
    let r = srv.admin(Method::GET, "/admin/tenants/shop").await;
    r.json::<Value>().await.unwrap()["policy"].clone()
}

async fn events(srv: &TestServer) -> i64 {
    let r = srv.admin(Method::GET, "/admin/tenants/shop").await;
    r.json::<Value>().await.unwrap()["events"].as_i64().unwrap()
}

/// Writes `sql` into the tenant file through the pool, as corruption (or a newer tenantd) would,
/// and lets the catalog (which the webhook path reads) copy the file, as a rebuild does.
async fn tamper(srv: &TestServer, sql: &'static str) {
    let id = TenantId::parse("shop").unwrap();
    srv.state
        .pool
        .write(&id, move |conn| Ok(conn.execute_batch(sql)?))
        .await
        .unwrap();
    let path = srv.state.pool.path_of(&id);
    srv.state
        .inbox
        .catalog()
        .rebuild_tenant(&id, &path)
        .unwrap();
}

#[tokio::test]
async fn regression_unparseable_stored_scheme_fails_open() {
    let srv = start().await;
    srv.create_tenant("shop").await;
    let r = put_json(
        &srv,
        "/admin/tenants/shop/hooks/gh",
        json!({"scheme": "github", "secret": SECRET}),
    )
    .await;
    assert_eq!(r.status(), 200);
    tamper(
        &srv,
        "UPDATE _tenantd_hooks SET scheme = 'GitHub' WHERE source = 'gh'",
    )
    .await;
    // Unsigned: before the fix an unknown scheme meant "no verification" and this was stored.
    let r = srv.post_hook("shop", "gh", "forged").await;
    assert_eq!(error_code(r).await, (500, "hook_misconfigured".into()));
    // Even a correctly signed delivery is refused: the server cannot know what to verify.
    let r = signed_github(&srv, "gh", "d1").await;
    assert_eq!(error_code(r).await, (500, "hook_misconfigured".into()));
    assert_eq!(events(&srv).await, 0);
    // Reconfiguring the source repairs it.
    put_json(
        &srv,
        "/admin/tenants/shop/hooks/gh",
        json!({"scheme": "github", "secret": SECRET}),
    )
    .await;
    assert_eq!(signed_github(&srv, "gh", "d2").await.status(), 202);
    srv.stop().await;
}

#[tokio::test]
async fn regression_unsigned_deliveries_accepted_on_unconfigured_sources() {
    let srv = start().await;
    srv.create_tenant("shop").await;
    // Default `open`: any source, unsigned.
    assert_eq!(show(&srv).await, json!({"webhooks": "open"}));
    assert_eq!(srv.post_hook("shop", "anything", "1").await.status(), 202);
    put_json(
        &srv,
        "/admin/tenants/shop/hooks/gh",
        json!({"scheme": "github", "secret": SECRET}),
    )
    .await;
    put_json(
        &srv,
        "/admin/tenants/shop/hooks/plain",
        json!({"scheme": "none"}),
    )
    .await;

    // `configured`: unknown sources are refused; a source configured as `none` is accepted.
    let r = put_json(
        &srv,
        "/admin/tenants/shop/policy",
        json!({"webhooks": "configured"}),
    )
    .await;
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"webhooks": "configured"})
    );
    assert_eq!(show(&srv).await, json!({"webhooks": "configured"}));
    let r = srv.post_hook("shop", "anything", "2").await;
    assert_eq!(error_code(r).await, (403, "source_not_allowed".into()));
    assert_eq!(srv.post_hook("shop", "plain", "3").await.status(), 202);
    assert_eq!(signed_github(&srv, "gh", "d1").await.status(), 202);

    // `signed`: only sources with a signature scheme, and only valid signatures.
    put_json(
        &srv,
        "/admin/tenants/shop/policy",
        json!({"webhooks": "signed"}),
    )
    .await;
    let r = srv.post_hook("shop", "plain", "4").await;
    assert_eq!(error_code(r).await, (403, "source_not_allowed".into()));
    let r = srv.post_hook("shop", "anything", "5").await;
    assert_eq!(error_code(r).await, (403, "source_not_allowed".into()));
    let r = srv.post_hook("shop", "gh", "unsigned").await;
    assert_eq!(error_code(r).await, (401, "invalid_signature".into()));
    assert_eq!(signed_github(&srv, "gh", "d2").await.status(), 202);
    assert_eq!(events(&srv).await, 4);

    // Bad input to the policy route.
    let r = put_json(
        &srv,
        "/admin/tenants/shop/policy",
        json!({"webhooks": "strict"}),
    )
    .await;
    assert_eq!(error_code(r).await, (400, "bad_request".into()));
    let r = put_json(&srv, "/admin/tenants/shop/policy", json!({"other": 1})).await;
    assert_eq!(error_code(r).await, (400, "bad_request".into()));
    let r = put_json(
        &srv,
        "/admin/tenants/nope/policy",
        json!({"webhooks": "open"}),
    )
    .await;
    assert_eq!(error_code(r).await, (404, "tenant_not_found".into()));
    let r = srv
        .http
        .put(format!("{}/admin/tenants/shop/policy", srv.url))
        .json(&json!({"webhooks": "open"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (401, "unauthorized".into()));

    // An unreadable stored policy refuses every delivery instead of falling back to `open`.
    tamper(
        &srv,
        "UPDATE _tenantd_meta SET value = 'Open' WHERE key = 'webhook_policy'",
    )
    .await;
    let r = srv.post_hook("shop", "anything", "6").await;
    assert_eq!(error_code(r).await, (500, "hook_misconfigured".into()));
    assert_eq!(events(&srv).await, 4);
    srv.stop().await;
}

#[tokio::test]
async fn deleting_a_hook_removes_its_settings() {
    let srv = start().await;
    srv.create_tenant("shop").await;
    put_json(
        &srv,
        "/admin/tenants/shop/hooks/gh",
        json!({"scheme": "github", "secret": SECRET}),
    )
    .await;
    let r = srv.post_hook("shop", "gh", "unsigned").await;
    assert_eq!(r.status(), 401);
    let r = srv
        .admin(Method::DELETE, "/admin/tenants/shop/hooks/gh")
        .await;
    assert_eq!(r.status(), 204);
    let v: Value = srv
        .admin(Method::GET, "/admin/tenants/shop")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["hooks"], json!([]));
    // Under the default `open` policy it is now an unknown source.
    assert_eq!(srv.post_hook("shop", "gh", "unsigned").await.status(), 202);
    let r = srv
        .admin(Method::DELETE, "/admin/tenants/shop/hooks/gh")
        .await;
    assert_eq!(error_code(r).await, (404, "hook_not_found".into()));
    let r = srv
        .admin(Method::DELETE, "/admin/tenants/nope/hooks/gh")
        .await;
    assert_eq!(error_code(r).await, (404, "tenant_not_found".into()));
    let r = srv
        .admin(Method::DELETE, "/admin/tenants/shop/hooks/Bad")
        .await;
    assert_eq!(error_code(r).await, (400, "invalid_source".into()));
    let r = srv
        .http
        .delete(format!("{}/admin/tenants/shop/hooks/gh", srv.url))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (401, "unauthorized".into()));
    srv.stop().await;
}
