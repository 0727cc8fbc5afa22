//! The server over a pool in exclusive locking (`locking = "exclusive"`): one connection per
//! open tenant, so SQL streams, reads, admin show and webhooks share it.

use auth::Access;
use serde_json::{json, Value};
use server::sql::{SqlConfig, SqlState};
use server::{AppState, HttpConfig};
use store::inbox::InboxConfig;
use store::{Locking, PoolConfig, TenantId, TenantPool};

use crate::sql::{exec, rows, Sql};
use crate::util::TOKEN;

async fn start() -> Sql {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_owned();
    let mut cfg = PoolConfig::new(&data);
    cfg.locking = Locking::Exclusive;
    let inbox_cfg = InboxConfig::new(&data, cfg.durability);
    let pool = TenantPool::open(cfg).unwrap();
    let inbox = crate::util::open_inbox(&pool, inbox_cfg).await;
    let sql = SqlState::new(SqlConfig::default(), auth::Keys::generate());
    let state = AppState::with_sql(pool, inbox, TOKEN.to_owned(), HttpConfig::default(), sql);
    server::sql::spawn_expiry(&state);
    crate::util::serve_state(state, dir, &data).await
}

/// A tenant token's epoch is checked on every SQL request. In exclusive locking that read needs
/// the tenant's one connection, which a stream's open transaction holds between its requests:
/// the stream's next request waited for its own transaction until the stream expired.
#[tokio::test]
async fn regression_tenant_token_stream_waits_for_its_own_transaction() {
    let srv = start().await;
    srv.tenant("acme").await;
    let t = srv.token("acme", Access::ReadWrite);
    let (status, v) = srv
        .pipe(
            "acme",
            &t,
            Value::Null,
            json!([
                exec("CREATE TABLE t(x)"),
                exec("BEGIN"),
                exec("INSERT INTO t VALUES (1)")
            ]),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let baton = v["baton"].as_str().unwrap().to_owned();
    let (status, v) = srv
        .pipe(
            "acme",
            &t,
            json!(baton),
            json!([exec("INSERT INTO t VALUES (2)"), exec("COMMIT"), {"type": "close"}]),
        )
        .await;
    assert_eq!(status, 200, "the stream's own request was refused: {v}");
    assert_eq!(v["results"][1]["type"], "ok", "{v}");
    let (_, v) = srv
        .pipe(
            "acme",
            &t,
            Value::Null,
            json!([exec("SELECT count(*) FROM t")]),
        )
        .await;
    assert_eq!(rows(&v["results"][0])[0][0]["value"], "2");
    // A revoked token is refused at once: the remembered epoch ends with the revoke's write.
    let r = srv
        .admin(reqwest::Method::POST, "/admin/tenants/acme/tokens/revoke")
        .await;
    assert_eq!(r.status(), 200);
    let (status, v) = srv
        .pipe("acme", &t, Value::Null, json!([exec("SELECT 1")]))
        .await;
    assert_eq!(status, 401, "{v}");
    srv.stop().await;
}

#[tokio::test]
async fn exclusive_mode_serves_webhooks_events_sql_and_show_without_shm() {
    let srv = start().await;
    srv.tenant("acme").await;
    // Minted from the file outside the pool: before the pool opens (and locks) it.
    let ro = srv.token("acme", Access::ReadOnly);
    for _ in 0..3 {
        assert_eq!(srv.post_hook("acme", "gh", "{}").await.status(), 202);
    }
    let (status, v) = srv
        .pipe(
            "acme",
            &ro,
            Value::Null,
            json!([exec("SELECT count(*) FROM _tenantd_events")]),
        )
        .await;
    // Reserved tables stay out of reach on the shared connection too.
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["results"][0]["type"], "error", "{v}");
    let (_, v) = srv
        .pipe("acme", &ro, Value::Null, json!([exec("CREATE TABLE x(a)")]))
        .await;
    assert_eq!(
        v["results"][0]["type"], "error",
        "a read-only token wrote: {v}"
    );
    let events: Value = srv
        .admin(reqwest::Method::GET, "/t/acme/events")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(events["events"].as_array().unwrap().len(), 3, "{events}");
    assert!(srv.is_open("acme"));
    let show: Value = srv
        .admin(reqwest::Method::GET, "/admin/tenants/acme")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(show["events"], 3, "{show}");
    assert_eq!(show["open"], true);
    let files = srv.tenant_files();
    assert!(files.iter().all(|f| !f.ends_with("-shm")), "{files:?}");
    assert_eq!(srv.post_hook("acme", "gh", "{}").await.status(), 202);
    let pool = srv.state.pool.clone();
    assert!(pool.is_open(&TenantId::parse("acme").unwrap()));
    srv.stop().await;
}
