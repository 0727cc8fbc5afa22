//! The admin API: auth, create/delete/list/show.

use serde_json::Value;

use crate::util::{error_code, start};

#[tokio::test]
async fn admin_routes_need_the_token() {
    let srv = start().await;
    for (method, path) in [
        (reqwest::Method::PUT, "/admin/tenants/a"),
        (reqwest::Method::GET, "/admin/tenants"),
        (reqwest::Method::GET, "/admin/tenants/a"),
        (reqwest::Method::DELETE, "/admin/tenants/a"),
    ] {
        let r = srv
            .http
            .request(method.clone(), format!("{}{path}", srv.url))
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(r).await,
            (401, "unauthorized".into()),
            "{method} {path}"
        );
        let r = srv
            .http
            .request(method.clone(), format!("{}{path}", srv.url))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{method} {path} wrong token");
    }
    assert!(srv.tenant_files().is_empty());
    srv.stop().await;
}

#[tokio::test]
async fn list_pages_through_all_tenants_once() {
    let srv = start().await;
    let mut want: Vec<String> = (0..25).map(|i| format!("t{i:02}")).collect();
    for id in &want {
        srv.create_tenant(id).await;
    }
    let mut got = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = cursor
            .as_ref()
            .map_or(String::new(), |c| format!("&cursor={c}"));
        let r = srv
            .admin(reqwest::Method::GET, &format!("/admin/tenants?limit=10{q}"))
            .await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        got.extend(
            v["tenants"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_owned()),
        );
        pages += 1;
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let r = srv
        .admin(reqwest::Method::GET, "/admin/tenants?cursor=zz")
        .await;
    assert_eq!(error_code(r).await, (400, "bad_request".into()));
    srv.stop().await;
}

#[tokio::test]
async fn delete_removes_the_file_and_its_companions() {
    let srv = start().await;
    srv.create_tenant("doomed").await;
    assert_eq!(srv.post_hook("doomed", "s", "x").await.status(), 202);
    srv.drain().await;
    assert_eq!(
        srv.tenant_files(),
        ["doomed.db", "doomed.db-shm", "doomed.db-wal"]
    );
    let r = srv
        .admin(reqwest::Method::DELETE, "/admin/tenants/doomed")
        .await;
    assert_eq!(r.status(), 204);
    assert!(srv.tenant_files().is_empty());
    let r = srv
        .admin(reqwest::Method::DELETE, "/admin/tenants/doomed")
        .await;
    assert_eq!(error_code(r).await, (404, "tenant_not_found".into()));
    assert_eq!(srv.post_hook("doomed", "s", "x").await.status(), 404);
    assert!(srv.tenant_files().is_empty());
    // Recreated from scratch.
    srv.create_tenant("doomed").await;
    let r = srv
        .admin(reqwest::Method::GET, "/admin/tenants/doomed")
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["events"], 0);
    srv.stop().await;
}

#[tokio::test]
async fn delete_of_a_tenant_in_use_is_refused_cleanly() {
    let srv = start().await;
    srv.create_tenant("held").await;
    let id = store::TenantId::parse("held").unwrap();
    let guard = srv.state.pool.writer(&id).await.unwrap();
    let r = srv
        .admin(reqwest::Method::DELETE, "/admin/tenants/held")
        .await;
    assert_eq!(error_code(r).await, (409, "tenant_busy".into()));
    drop(guard);
    assert_eq!(
        srv.admin(reqwest::Method::DELETE, "/admin/tenants/held")
            .await
            .status(),
        204
    );
    srv.stop().await;
}
