//! Token lifetime and the events API through the real server: tokens are bound to their
//! tenant's epoch (delete + re-create and revocation kill them), unbound tokens are refused
//! with how to mint one, a tenant reads its own events with its own token, event pages are
//! bounded by bytes, and showing a tenant does not open it.

use auth::{Access, Claims};
use reqwest::Method;
use serde_json::{json, Value};
use store::{token_epoch, TenantId};

use crate::util::{error_code, start, start_with, TestServer, TOKEN};

/// A token for `tenant` at the epoch in its file (any epoch if the file does not exist).
pub fn mint(state: &server::AppState, tenant: &str, access: Access) -> String {
    let id = TenantId::parse(tenant).unwrap();
    let path = state.pool.path_of(&id);
    let epoch = token_epoch::ensure_in_file(&path, state.pool.config())
        .unwrap_or_else(|_| "no-such-tenant".to_owned());
    state.sql.keys.issue(tenant, &epoch, access, None)
}

/// A one-statement pipeline on `tenant` with `token`: (status, code of an HTTP error).
async fn select_one(srv: &TestServer, tenant: &str, token: &str) -> (u16, Value) {
    let body = json!({"requests": [
        {"type": "execute", "stmt": {"sql": "SELECT 1"}}, {"type": "close"}
    ]});
    let r = srv
        .http
        .post(format!("{}/t/{tenant}/v2/pipeline", srv.url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn get_events(srv: &TestServer, tenant: &str, token: &str, query: &str) -> (u16, Value) {
    let r = srv
        .http
        .get(format!("{}/t/{tenant}/events?{query}", srv.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn regression_tokens_outlive_their_tenant() {
    let srv = start().await;
    srv.create_tenant("acme").await;
    let old = mint(&srv.state, "acme", Access::ReadWrite);
    assert_eq!(select_one(&srv, "acme", &old).await.0, 200);
    let r = srv.admin(Method::DELETE, "/admin/tenants/acme").await;
    assert_eq!(r.status(), 204);
    srv.create_tenant("acme").await;
    let (status, v) = select_one(&srv, "acme", &old).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (401, Some("token_revoked")),
        "{v}"
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("tenantd token create"),
        "{v}"
    );
    let new = mint(&srv.state, "acme", Access::ReadWrite);
    assert_eq!(select_one(&srv, "acme", &new).await.0, 200);
    srv.stop().await;
}

#[tokio::test]
async fn revoking_a_tenants_tokens_keeps_the_key_and_other_tenants() {
    let srv = start().await;
    srv.create_tenant("acme").await;
    srv.create_tenant("globex").await;
    let acme = mint(&srv.state, "acme", Access::ReadWrite);
    let acme_ro = mint(&srv.state, "acme", Access::ReadOnly);
    let globex = mint(&srv.state, "globex", Access::ReadWrite);
    let path = "/admin/tenants/acme/tokens/revoke";
    // Only the admin may revoke.
    let r = srv
        .http
        .post(format!("{}{path}", srv.url))
        .bearer_auth(&acme)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (401, "unauthorized".into()));
    let r = srv.admin(Method::POST, path).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v, json!({"id": "acme", "tokens_revoked": true}));
    for t in [&acme, &acme_ro] {
        let (status, v) = select_one(&srv, "acme", t).await;
        assert_eq!((status, v["code"].as_str()), (401, Some("token_revoked")));
        let (status, v) = get_events(&srv, "acme", t, "").await;
        assert_eq!((status, v["code"].as_str()), (401, Some("token_revoked")));
    }
    assert_eq!(
        select_one(&srv, "globex", &globex).await.0,
        200,
        "others untouched"
    );
    assert_eq!(
        select_one(&srv, "acme", TOKEN).await.0,
        200,
        "admin untouched"
    );
    let fresh = mint(&srv.state, "acme", Access::ReadWrite);
    assert_eq!(select_one(&srv, "acme", &fresh).await.0, 200);
    let r = srv
        .admin(Method::POST, "/admin/tenants/ghost/tokens/revoke")
        .await;
    assert_eq!(error_code(r).await, (404, "tenant_not_found".into()));
    assert!(srv.tenant_files().iter().all(|f| !f.starts_with("ghost")));
    srv.stop().await;
}

#[tokio::test]
async fn regression_unbound_token_is_refused_with_how_to_mint_one() {
    let srv = start().await;
    srv.create_tenant("acme").await;
    let unbound = srv.state.sql.keys.sign(&Claims {
        tenant: "acme".into(),
        epoch: None,
        access: Access::ReadWrite,
        exp: None,
        iat: None,
        nbf: None,
    });
    let acme = TenantId::parse("acme").unwrap();
    let was_open = srv.state.pool.is_open(&acme);
    let (status, v) = select_one(&srv, "acme", &unbound).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (401, Some("token_unbound")),
        "{v}"
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("tenantd token create"),
        "{v}"
    );
    assert_eq!(
        srv.state.pool.is_open(&acme),
        was_open,
        "refused before the file"
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_tenant_reads_its_own_events_with_its_own_token() {
    let srv = start().await;
    srv.create_tenant("acme").await;
    srv.create_tenant("globex").await;
    assert_eq!(srv.post_hook("acme", "gh", "{}").await.status(), 202);
    let rw = mint(&srv.state, "acme", Access::ReadWrite);
    let ro = mint(&srv.state, "acme", Access::ReadOnly);
    for t in [rw.as_str(), ro.as_str(), TOKEN] {
        let (status, v) = get_events(&srv, "acme", t, "").await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["events"].as_array().unwrap().len(), 1);
    }
    // Another tenant's token: 403 before globex's file is opened.
    let globex = TenantId::parse("globex").unwrap();
    assert!(!srv.state.pool.is_open(&globex));
    let (status, v) = get_events(&srv, "globex", &rw, "").await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    assert!(!srv.state.pool.is_open(&globex));
    let (status, v) = get_events(&srv, "acme", "garbage", "").await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (401, Some("invalid_token"))
    );
    srv.stop().await;
}

#[tokio::test]
async fn regression_events_page_is_not_bounded_by_bytes() {
    let srv = start_with(|pool, _| pool.durability = store::Durability::Crash).await;
    srv.create_tenant("big").await;
    let body = "x".repeat(1_000_000);
    let cap = server::routes::events::MAX_PAGE_BODY_BYTES;
    let n = cap / body.len() + 1; // one more than fits
    for _ in 0..n {
        assert_eq!(srv.post_hook("big", "s", &body).await.status(), 202);
    }
    let (status, v) = get_events(&srv, "big", TOKEN, "limit=1000").await;
    assert_eq!(status, 200);
    let first = v["events"].as_array().unwrap().len();
    assert_eq!(
        (first, v["more"].as_bool()),
        (n - 1, Some(true)),
        "cut by bytes"
    );
    let after = v["next_after"].as_i64().unwrap();
    let (_, v) = get_events(&srv, "big", TOKEN, &format!("limit=1000&after={after}")).await;
    assert_eq!(v["events"].as_array().unwrap().len(), 1);
    assert_eq!(v["more"], false);
    // One event bigger than the cap on its own still comes back (a reader always progresses).
    let (_, v) = get_events(&srv, "big", TOKEN, "limit=1").await;
    assert_eq!(v["events"].as_array().unwrap().len(), 1);
    srv.stop().await;
}

#[tokio::test]
async fn regression_tenant_show_opens_and_migrates_the_tenant() {
    let srv = start().await;
    srv.create_tenant("acme").await;
    let acme = TenantId::parse("acme").unwrap();
    let opened = || {
        let stats = srv.state.pool.stats();
        stats
            .tenants_opened
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let before = opened();
    let r = srv.admin(Method::GET, "/admin/tenants/acme").await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["schema_version"], 0, "{v}");
    assert_eq!(v["migration_error"], Value::Null, "{v}");
    assert_eq!(v["open"], false, "{v}");
    assert!(
        !srv.state.pool.is_open(&acme),
        "show does not open the tenant"
    );
    assert_eq!(opened(), before, "not counted as an open");
    let r = srv.admin(Method::GET, "/admin/tenants/ghost").await;
    assert_eq!(error_code(r).await, (404, "tenant_not_found".into()));
    srv.stop().await;
}
