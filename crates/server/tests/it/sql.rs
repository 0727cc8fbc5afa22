//! SQL over HTTP (Hrana), through the real server: every request type and error shape, batons,
//! streams that hold the writer, tenant addressing (path, Host, x-namespace), tokens and
//! isolation, the guard's settings, and the clear refusals.

use std::time::{Duration, Instant};

use auth::Access;
use serde_json::{json, Value};
use server::sql::{SqlConfig, SqlState};
use server::{AppState, HttpConfig};
use store::inbox::InboxConfig;
use store::{PoolConfig, TenantId, TenantPool};

use crate::util::TOKEN;

pub(crate) type Sql = crate::util::TestServer;

async fn start() -> Sql {
    start_with(SqlConfig::default()).await
}

pub(crate) async fn start_with(cfg: SqlConfig) -> Sql {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_owned();
    let pool_cfg = PoolConfig::new(&data);
    let inbox_cfg = InboxConfig::new(&data, pool_cfg.durability);
    let pool = TenantPool::open(pool_cfg).unwrap();
    let inbox = crate::util::open_inbox(&pool, inbox_cfg).await;
    let sql = SqlState::new(cfg, auth::Keys::generate());
    let state = AppState::with_sql(pool, inbox, TOKEN.to_owned(), HttpConfig::default(), sql);
    server::sql::spawn_expiry(&state);
    crate::util::serve_state(state, dir, &data).await
}

impl Sql {
    pub(crate) async fn tenant(&self, id: &str) {
        let r = self
            .http
            .put(format!("{}/admin/tenants/{id}", self.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }

    pub(crate) fn token(&self, tenant: &str, access: Access) -> String {
        crate::tokens::mint(&self.state, tenant, access)
    }

    pub(crate) async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.url)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// One `v2/pipeline` request for `tenant`.
    pub(crate) async fn pipe(
        &self,
        tenant: &str,
        token: &str,
        baton: Value,
        reqs: Value,
    ) -> (u16, Value) {
        let body = json!({"baton": baton, "requests": reqs});
        self.post(&format!("/t/{tenant}/v2/pipeline"), Some(token), body)
            .await
    }

    pub(crate) fn is_open(&self, id: &str) -> bool {
        self.state.pool.is_open(&TenantId::parse(id).unwrap())
    }
}

pub(crate) fn exec(sql: &str) -> Value {
    json!({"type": "execute", "stmt": {"sql": sql}})
}

pub(crate) fn exec_args(sql: &str, args: Value) -> Value {
    json!({"type": "execute", "stmt": {"sql": sql, "args": args}})
}

pub(crate) fn rows(result: &Value) -> &Value {
    &result["response"]["result"]["rows"]
}

#[tokio::test]
async fn execute_roundtrips_every_value_type() {
    let srv = start().await;
    srv.tenant("acme").await;
    let t = srv.token("acme", Access::ReadWrite);
    let values = json!([
        {"type": "integer", "value": "9223372036854775807"},
        {"type": "integer", "value": "-9223372036854775808"},
        {"type": "float", "value": 1.5},
        {"type": "text", "value": "héllo ✓"},
        {"type": "blob", "base64": "AAEC/w=="},
        {"type": "null"}
    ]);
    let (status, v) = srv
        .pipe(
            "acme",
            &t,
            Value::Null,
            json!([
                exec("CREATE TABLE v(a, b, c, d, e, f)"),
                exec_args("INSERT INTO v VALUES (?, ?, ?, ?, ?, ?)", values),
                exec("SELECT * FROM v"),
                {"type": "close"}
            ]),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["baton"], Value::Null, "closed stream");
    assert_eq!(v["base_url"], Value::Null);
    assert_eq!(
        v["results"][1]["response"]["result"]["affected_row_count"],
        1
    );
    assert_eq!(
        v["results"][1]["response"]["result"]["last_insert_rowid"],
        "1"
    );
    assert_eq!(
        rows(&v["results"][2]),
        &json!([[
            {"type": "integer", "value": "9223372036854775807"},
            {"type": "integer", "value": "-9223372036854775808"},
            {"type": "float", "value": 1.5},
            {"type": "text", "value": "héllo ✓"},
            {"type": "blob", "base64": "AAEC/w"},
            {"type": "null"}
        ]])
    );
    srv.stop().await;
}

#[tokio::test]
async fn every_request_type_and_in_band_errors() {
    let srv = start().await;
    srv.tenant("acme").await;
    let t = srv.token("acme", Access::ReadWrite);
    let (status, v) = srv
        .pipe(
            "acme",
            &t,
            Value::Null,
            json!([
                {"type": "sequence", "sql": "CREATE TABLE k(x PRIMARY KEY); INSERT INTO k VALUES (1)"},
                {"type": "store_sql", "sql_id": 7, "sql": "SELECT count(*) FROM k WHERE x > ?"},
                {"type": "execute", "stmt": {"sql_id": 7, "args": [{"type": "integer", "value": "0"}]}},
                {"type": "describe", "sql": "SELECT x FROM k WHERE x = :v"},
                {"type": "close_sql", "sql_id": 7},
                exec("INSERT INTO k VALUES (1)"),
                {"type": "get_autocommit"},
                {"type": "batch", "batch": {"steps": [
                    {"stmt": {"sql": "INSERT INTO k VALUES (2)"}},
                    {"condition": {"type": "ok", "step": 0}, "stmt": {"sql": "INSERT INTO k VALUES (2)"}},
                    {"condition": {"type": "error", "step": 1}, "stmt": {"sql": "SELECT 'recovered'"}},
                    {"condition": {"type": "not", "cond": {"type": "ok", "step": 2}}, "stmt": {"sql": "SELECT 'skipped'"}}
                ]}},
                exec("SELECT 1; SELECT 2"),
                exec("SELEC 1")
            ]),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let r = &v["results"];
    assert_eq!(r[0]["response"]["type"], "sequence");
    assert_eq!(r[1]["response"]["type"], "store_sql");
    assert_eq!(rows(&r[2]), &json!([[{"type": "integer", "value": "1"}]]));
    assert_eq!(
        r[3]["response"]["result"]["params"],
        json!([{"name": ":v"}])
    );
    assert_eq!(r[3]["response"]["result"]["is_readonly"], true);
    assert_eq!(r[4]["response"]["type"], "close_sql");
    assert_eq!(r[5]["type"], "error");
    assert_eq!(r[5]["error"]["code"], "SQLITE_CONSTRAINT");
    assert_eq!(r[6]["response"]["is_autocommit"], true);
    let batch = &r[7]["response"]["result"];
    assert_eq!(batch["step_errors"][1]["code"], "SQLITE_CONSTRAINT");
    assert_eq!(batch["step_results"][2]["rows"][0][0]["value"], "recovered");
    assert_eq!(batch["step_results"][3], Value::Null, "skipped");
    assert_eq!(r[8]["error"]["code"], "SQL_MANY_STATEMENTS");
    assert_eq!(r[9]["error"]["code"], "SQL_INPUT_ERROR");
    // The stream survived its in-band errors.
    let baton = v["baton"]
        .as_str()
        .expect("open stream has a baton")
        .to_owned();
    let (status, v) = srv
        .pipe("acme", &t, json!(baton), json!([{"type": "close"}]))
        .await;
    assert_eq!((status, v["baton"].clone()), (200, Value::Null));
    srv.stop().await;
}

#[tokio::test]
async fn a_transaction_spans_requests_and_holds_the_writer() {
    let srv = start().await;
    srv.tenant("acme").await;
    let t = srv.token("acme", Access::ReadWrite);
    srv.pipe(
        "acme",
        &t,
        Value::Null,
        json!([exec("CREATE TABLE t(x)"), {"type": "close"}]),
    )
    .await;
    let (_, v) = srv
        .pipe(
            "acme",
            &t,
            Value::Null,
            json!([exec("BEGIN"), exec("INSERT INTO t VALUES (1)")]),
        )
        .await;
    let baton = v["baton"].as_str().unwrap().to_owned();
    assert_eq!(srv.state.sql.streams.len(), 1);

    // A webhook for the same tenant is acknowledged at once (it only needs the ingest log);
    // it reaches the file once the transaction lets the writer go.
    let r = srv
        .http
        .post(format!("{}/t/acme/hooks/gh", srv.url))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = TenantId::parse("acme").unwrap();
    let t0 = std::time::Instant::now();
    let drained = srv.state.inbox.drain(Duration::from_millis(300)).await;
    eprintln!(
        "DRAIN {:?} streams {} ready {}",
        t0.elapsed(),
        srv.state.sql.streams.len(),
        srv.state.ready.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert!(!drained, "applied while the transaction held the writer");

    let (status, v) = srv
        .pipe(
            "acme",
            &t,
            json!(baton),
            json!([exec("INSERT INTO t VALUES (2)"), exec("COMMIT"), {"type": "get_autocommit"}]),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["results"][2]["response"]["is_autocommit"], true);
    srv.drain().await;
    let events = srv
        .state
        .pool
        .read(&id, |c| {
            Ok(
                c.query_row("SELECT count(*) FROM _tenantd_events", [], |r| {
                    r.get::<_, i64>(0)
                })?,
            )
        })
        .await
        .unwrap();
    assert_eq!(events, 1, "the webhook was applied after COMMIT");
    let (_, v) = srv
        .pipe(
            "acme",
            &t,
            Value::Null,
            json!([exec("SELECT count(*) FROM t")]),
        )
        .await;
    assert_eq!(rows(&v["results"][0])[0][0]["value"], "2");
    srv.stop().await;
}

#[tokio::test]
async fn batons_forged_reused_expired_and_foreign_are_refused() {
    let srv = start().await;
    srv.tenant("acme").await;
    srv.tenant("globex").await;
    let t = srv.token("acme", Access::ReadWrite);
    let (_, v) = srv
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
    let baton = v["baton"].as_str().unwrap().to_owned();

    let mut forged = baton.clone().into_bytes();
    forged[20] = if forged[20] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let (status, v) = srv.pipe("acme", &t, json!(forged), json!([])).await;
    assert_eq!((status, v["code"].as_str()), (400, Some("BATON_INVALID")));
    assert_eq!(v["error"]["code"], "BATON_INVALID", "server shape too");

    // Another tenant's baton, even with the admin token.
    let (status, v) = srv.pipe("globex", TOKEN, json!(baton), json!([])).await;
    assert_eq!((status, v["code"].as_str()), (400, Some("BATON_INVALID")));

    // Used once: the next baton works, the old one is refused.
    let (status, v) = srv.pipe("acme", &t, json!(baton), json!([])).await;
    assert_eq!(status, 200);
    let next = v["baton"].as_str().unwrap().to_owned();
    let (status, v) = srv.pipe("acme", &t, json!(baton), json!([])).await;
    assert_eq!((status, v["code"].as_str()), (400, Some("BATON_REUSED")));

    // Idle past the timeout: expired, rolled back, writer released.
    let idle = srv.state.sql.config.stream_idle;
    let streams = srv.state.sql.streams.clone();
    assert_eq!(streams.expire_at(Instant::now() + idle / 2, idle).await, 0);
    assert_eq!(streams.expire_at(Instant::now() + idle, idle).await, 1);
    let (status, v) = srv.pipe("acme", &t, json!(next), json!([])).await;
    assert_eq!((status, v["code"].as_str()), (400, Some("STREAM_EXPIRED")));
    let (_, v) = srv
        .pipe(
            "acme",
            &t,
            Value::Null,
            json!([exec("SELECT count(*) FROM t")]),
        )
        .await;
    assert_eq!(rows(&v["results"][0])[0][0]["value"], "0", "rolled back");
    srv.stop().await;
}

#[tokio::test]
async fn a_protocol_error_drops_the_stream_and_rolls_back() {
    let srv = start().await;
    srv.tenant("acme").await;
    let t = srv.token("acme", Access::ReadWrite);
    let (_, v) = srv
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
    let baton = v["baton"].as_str().unwrap().to_owned();
    let (status, v) = srv
        .pipe(
            "acme",
            &t,
            json!(baton),
            json!([{"type": "execute", "stmt": {"sql_id": 99}}]),
        )
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (400, Some("SQL_NOT_FOUND")),
        "{v}"
    );
    assert!(v["message"].as_str().unwrap().contains("99"));
    assert!(srv.state.sql.streams.is_empty());
    let (_, v) = srv
        .pipe(
            "acme",
            &t,
            Value::Null,
            json!([exec("SELECT count(*) FROM t")]),
        )
        .await;
    assert_eq!(rows(&v["results"][0])[0][0]["value"], "0");
    // Malformed bodies are 400 too.
    let (status, v) = srv
        .post(
            "/t/acme/v2/pipeline",
            Some(&t),
            json!({"requests": [{"type": "nope"}]}),
        )
        .await;
    assert_eq!((status, v["code"].as_str()), (400, Some("bad_request")));
    srv.stop().await;
}

#[tokio::test]
async fn tokens_are_checked_before_any_file_is_opened() {
    let srv = start().await;
    srv.tenant("acme").await;
    srv.tenant("globex").await;
    let acme = srv.token("acme", Access::ReadWrite);
    srv.pipe(
        "globex",
        TOKEN,
        Value::Null,
        json!([exec("CREATE TABLE secret(x)")]),
    )
    .await;
    srv.state
        .pool
        .maintain_at(tokio::time::Instant::now() + Duration::from_secs(3600))
        .await;
    assert!(!srv.is_open("globex"));

    let (status, v) = srv
        .pipe(
            "globex",
            &acme,
            Value::Null,
            json!([exec("SELECT * FROM secret")]),
        )
        .await;
    assert_eq!((status, v["code"].as_str()), (403, Some("forbidden")));
    assert!(!srv.is_open("globex"), "refused before the file was opened");
    // Same through the legacy routes.
    let (status, _) = srv
        .post(
            "/t/globex/v1/execute",
            Some(&acme),
            json!({"stmt": {"sql": "SELECT 1"}}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, v) = srv.pipe("acme", "garbage", Value::Null, json!([])).await;
    assert_eq!((status, v["code"].as_str()), (401, Some("invalid_token")));
    let (status, v) = srv
        .post("/t/acme/v2/pipeline", None, json!({"requests": []}))
        .await;
    assert_eq!((status, v["code"].as_str()), (401, Some("unauthorized")));
    let expired = srv.state.sql.keys.issue_at(
        "acme",
        "any-epoch",
        Access::ReadWrite,
        Some(Duration::from_secs(60)),
        std::time::SystemTime::now() - Duration::from_secs(3600),
    );
    let (status, v) = srv.pipe("acme", &expired, Value::Null, json!([])).await;
    assert_eq!(status, 401);
    assert!(v["message"].as_str().unwrap().contains("expired"), "{v}");
    assert!(!srv.is_open("globex"));

    // A's data is not B's: the tables are per file.
    let (_, v) = srv
        .pipe(
            "acme",
            &acme,
            Value::Null,
            json!([exec("SELECT * FROM secret")]),
        )
        .await;
    let error = v["results"][0]["error"]["message"].as_str().unwrap();
    assert!(error.contains("no such table: secret"), "{v}");

    // Unknown tenant: 404 with a token for it or the admin token, and no file appears.
    let ghost = srv.token("ghost", Access::ReadWrite);
    for token in [ghost.as_str(), TOKEN] {
        let (status, v) = srv.pipe("ghost", token, Value::Null, json!([])).await;
        assert_eq!(
            (status, v["code"].as_str()),
            (404, Some("tenant_not_found"))
        );
    }
    assert!(!srv
        .state
        .pool
        .path_of(&TenantId::parse("ghost").unwrap())
        .exists());
    srv.stop().await;
}

#[tokio::test]
async fn read_only_tokens_cannot_write_whatever_the_sql() {
    let srv = start().await;
    srv.tenant("acme").await;
    let ro = srv.token("acme", Access::ReadOnly);
    srv.pipe(
        "acme",
        TOKEN,
        Value::Null,
        json!([exec("CREATE TABLE t(x)"), exec("INSERT INTO t VALUES (1)")]),
    )
    .await;
    let (status, v) = srv
        .pipe(
            "acme",
            &ro,
            Value::Null,
            json!([
                exec("SELECT count(*) FROM t"),
                exec("INSERT INTO t VALUES (2)"),
                exec("WITH x AS (SELECT 1) DELETE FROM t"),
                exec("CREATE TABLE u(y)"),
                exec("PRAGMA query_only = 0")
            ]),
        )
        .await;
    assert_eq!(status, 200);
    let r = &v["results"];
    assert_eq!(rows(&r[0])[0][0]["value"], "1");
    for i in 1..=3 {
        assert_eq!(r[i]["error"]["code"], "SQLITE_READONLY", "{i}: {}", r[i]);
    }
    assert_eq!(r[4]["error"]["code"], "SQLITE_AUTH");
    let (status, v) = srv
        .post(
            "/t/acme/v1/execute",
            Some(&ro),
            json!({"stmt": {"sql": "DELETE FROM t"}}),
        )
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (400, Some("SQLITE_READONLY")),
        "{v}"
    );
    // The writer connection is writable again for the next read-write user.
    let (_, v) = srv
        .pipe(
            "acme",
            TOKEN,
            Value::Null,
            json!([
                exec("INSERT INTO t VALUES (3)"),
                exec("SELECT count(*) FROM t")
            ]),
        )
        .await;
    assert_eq!(rows(&v["results"][1])[0][0]["value"], "2", "{v}");
    srv.stop().await;
}

#[tokio::test]
async fn the_guard_is_on_for_every_request() {
    let mut cfg = SqlConfig::default();
    cfg.guard.time_budget = Duration::from_millis(50);
    cfg.stream.max_result_bytes = 10_000;
    let srv = start_with(cfg).await;
    srv.tenant("acme").await;
    let t = srv.token("acme", Access::ReadWrite);
    let (_, v) = srv
        .pipe(
            "acme",
            &t,
            Value::Null,
            json!([
                exec("SELECT count(*) FROM _tenantd_events"),
                exec("ATTACH DATABASE '/tmp/x.db' AS x"),
                exec("SELECT zeroblob(20000)"),
                exec("PRAGMA database_list"),
                // Last: the time budget covers the whole request.
                exec("WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT count(*) FROM c"),
            ]),
        )
        .await;
    let r = &v["results"];
    assert_eq!(r[0]["error"]["code"], "SQLITE_AUTH", "{v}");
    assert_eq!(r[1]["error"]["code"], "SQLITE_AUTH");
    assert_eq!(r[2]["error"]["code"], "RESPONSE_TOO_LARGE");
    assert_eq!(r[3]["error"]["code"], "SQLITE_AUTH");
    assert_eq!(r[4]["error"]["code"], "SQLITE_INTERRUPT", "{v}");
    assert!(r[4]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("time budget exceeded"));

    // The open-time settings the guard relies on are in force on pool connections.
    let id = TenantId::parse("acme").unwrap();
    let on_writer = srv
        .state
        .pool
        .write(&id, |c| Ok(hrana::guard::open_settings_problems(c)))
        .await
        .unwrap();
    let on_reader = srv
        .state
        .pool
        .read(&id, |c| Ok(hrana::guard::open_settings_problems(c)))
        .await
        .unwrap();
    assert_eq!((on_writer, on_reader), (vec![], vec![]));
    srv.stop().await;
}

#[tokio::test]
async fn cursor_streams_json_lines_and_continues_the_stream() {
    let srv = start().await;
    srv.tenant("acme").await;
    let t = srv.token("acme", Access::ReadWrite);
    let body = json!({"baton": null, "batch": {"steps": [
        {"stmt": {"sql": "CREATE TABLE t(x)"}},
        {"stmt": {"sql": "INSERT INTO t VALUES (1), (2)"}},
        {"stmt": {"sql": "SELECT x FROM t"}},
        {"stmt": {"sql": "SELECT nope"}}
    ]}});
    let r = srv
        .http
        .post(format!("{}/t/acme/v3/cursor", srv.url))
        .bearer_auth(&t)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let types: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "step_begin",
            "step_end",
            "step_begin",
            "step_end",
            "step_begin",
            "row",
            "row",
            "step_end",
            "step_error"
        ]
    );
    assert_eq!(lines[6]["row"][0]["value"], "1");
    assert_eq!(lines[9]["step"], 3);
    let baton = lines[0]["baton"].as_str().unwrap();
    let (status, v) = srv
        .pipe(
            "acme",
            &t,
            json!(baton),
            json!([exec("SELECT count(*) FROM t"), {"type": "close"}]),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(rows(&v["results"][0])[0][0]["value"], "2");
    srv.stop().await;
}

#[tokio::test]
async fn legacy_execute_batch_and_statements() {
    let srv = start().await;
    srv.tenant("acme").await;
    let t = srv.token("acme", Access::ReadWrite);
    let (status, v) = srv
        .post(
            "/t/acme/v1/execute",
            Some(&t),
            json!({"stmt": {"sql": "CREATE TABLE t(x UNIQUE)"}}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["result"]["affected_row_count"], 0);
    let (status, v) = srv
        .post(
            "/t/acme/v1/batch",
            Some(&t),
            json!({"batch": {"steps": [{"stmt": {"sql": "INSERT INTO t VALUES (1)"}}, {"stmt": {"sql": "INSERT INTO t VALUES (1)"}}]}}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["result"]["step_errors"][1]["code"], "SQLITE_CONSTRAINT");
    let (status, v) = srv
        .post(
            "/t/acme/",
            Some(&t),
            json!({"statements": [
                {"q": "INSERT INTO t VALUES (?)", "params": [2]},
                "SELECT x FROM t ORDER BY x"
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v[1]["results"],
        json!({"columns": ["x"], "rows": [[1], [2]]})
    );
    // The first failure rolls everything back.
    let (status, v) = srv
        .post(
            "/t/acme/",
            Some(&t),
            json!({"statements": ["INSERT INTO t VALUES (3)", "INSERT INTO t VALUES (1)"]}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(v[1]["error"].as_str().unwrap().contains("UNIQUE"), "{v}");
    let (status, v) = srv
        .post("/t/acme/", Some(&t), json!({"statements": ["BEGIN"]}))
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (400, Some("TRANSACTION_NOT_ALLOWED"))
    );
    let (status, v) = srv
        .post(
            "/t/acme/v1/execute",
            Some(&t),
            json!({"stmt": {"sql": "SELECT count(*) FROM t"}}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["result"]["rows"][0][0]["value"], "2");
    srv.stop().await;
}

#[tokio::test]
async fn host_and_x_namespace_address_a_tenant_at_the_root() {
    let cfg = SqlConfig {
        base_domain: Some("db.example.com".into()),
        public_url: Some("http://node1:8080".into()),
        ..SqlConfig::default()
    };
    let srv = start_with(cfg).await;
    srv.tenant("acme").await;
    let t = srv.token("acme", Access::ReadWrite);
    let body = json!({"requests": [exec("SELECT 42")]});
    let send = |headers: Vec<(&'static str, &'static str)>, path: &'static str| {
        let mut req = srv
            .http
            .post(format!("{}{path}", srv.url))
            .bearer_auth(&t)
            .json(&body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, v) = send(vec![("host", "acme.db.example.com:8080")], "/v2/pipeline").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(rows(&v["results"][0])[0][0]["value"], "42");
    assert_eq!(v["base_url"], "http://node1:8080/t/acme/");
    let (status, _) = send(vec![("x-namespace", "acme")], "/v3/pipeline").await;
    assert_eq!(status, 200);
    // A token for acme does not open globex by host.
    let (status, _) = send(vec![("host", "globex.db.example.com")], "/v2/pipeline").await;
    assert_eq!(status, 403);
    let (status, v) = send(vec![], "/v2/pipeline").await;
    assert_eq!((status, v["code"].as_str()), (400, Some("no_tenant")));
    let (status, v) = send(vec![("x-namespace", "globex")], "/t/acme/v2/pipeline").await;
    assert_eq!(
        (status, v["code"].as_str()),
        (400, Some("conflicting_tenant"))
    );
    let (status, v) = send(vec![("x-namespace", "acme")], "/").await;
    assert_eq!(
        (status, v["code"].as_str()),
        (400, Some("bad_request")),
        "no statements"
    );
    srv.stop().await;
}

#[tokio::test]
async fn clear_refusals_and_probes() {
    let srv = start().await;
    srv.tenant("acme").await;
    let t = srv.token("acme", Access::ReadWrite);
    let (status, v) = srv
        .post("/t/v2/pipeline", Some(&t), json!({"requests": []}))
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (400, Some("missing_trailing_slash"))
    );
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains(&format!("{}/t/acme/", srv.url)), "{msg}");

    let get = |path: &str, upgrade: bool| {
        let mut req = srv.http.get(format!("{}{path}", srv.url));
        if upgrade {
            req = req
                .header("connection", "upgrade")
                .header("upgrade", "websocket");
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    for path in ["/t/acme/v3-protobuf", "/v3-protobuf"] {
        assert_eq!(get(path, false).await, 404, "{path}");
    }
    let (status, _) = srv
        .post("/t/acme/v3-protobuf/pipeline", Some(&t), json!({}))
        .await;
    assert_eq!(status, 404);
    assert_eq!(get("/", true).await, 404);
    assert_eq!(get("/t/acme/", true).await, 404);
    for path in [
        "/t/acme/v2",
        "/t/acme/v3",
        "/v2",
        "/health",
        "/version",
        "/healthz",
    ] {
        assert_eq!(get(path, false).await, 200, "{path}");
    }
    // A tenant named like a protocol path still has its other routes.
    srv.tenant("v2").await;
    let r = srv
        .http
        .get(format!("{}/t/v2/events", srv.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Metrics label SQL routes by template.
    srv.pipe("acme", &t, Value::Null, json!([])).await;
    let text = srv.metrics_text().await;
    assert!(
        text.contains("route=\"/t/{tenant}/v2/pipeline\",status=\"200\""),
        "{text}"
    );
    assert!(!text.contains("route=\"/t/acme/"));
    srv.stop().await;
}

#[tokio::test]
async fn admin_token_works_on_every_tenant() {
    let srv = start().await;
    for id in ["acme", "globex"] {
        srv.tenant(id).await;
        let (status, v) = srv
            .pipe(
                id,
                TOKEN,
                Value::Null,
                json!([exec("CREATE TABLE t(x)"), exec("INSERT INTO t VALUES (1)")]),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(v["results"][1]["type"], "ok", "{v}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn shutdown_rolls_back_open_transactions_and_closes_cleanly() {
    let srv = start().await;
    srv.tenant("acme").await;
    let t = srv.token("acme", Access::ReadWrite);
    let (_, v) = srv
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
    assert!(v["baton"].is_string());
    let path = srv.state.pool.path_of(&TenantId::parse("acme").unwrap());
    let state = srv.state.clone();
    let _dir = srv.stop().await;
    assert!(state.sql.streams.is_empty());
    assert_eq!(state.pool.stats().open(), 0, "every tenant closed");
    let mut wal = path.clone().into_os_string();
    wal.push("-wal");
    assert!(!std::path::Path::new(&wal).exists(), "closed cleanly");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0, "the open transaction was rolled back");
}
