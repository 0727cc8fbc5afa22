//! Resource bounds of the SQL API through the real server: one time budget per request, a
//! disconnect that stops the request's SQL and frees the tenant's writer, caps on open streams
//! and stored SQL, and read-only requests that do not wait for the writer.

use std::time::{Duration, Instant};

use auth::Access;
use serde_json::{json, Value};
use server::sql::SqlConfig;
use store::TenantId;
use tokio::io::AsyncWriteExt;

use crate::sql::{exec, rows, start_with, Sql};

/// A statement that never ends by itself.
const RUNAWAY: &str =
    "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT count(*) FROM c";

/// A write that never ends by itself (it runs on the writer, not on a reader).
const RUNAWAY_WRITE: &str = "INSERT INTO t WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT count(*) FROM c";

/// Long enough that no test waits for it: a request that is not stopped another way holds the
/// writer for this long.
const FOREVER: Duration = Duration::from_secs(300);

/// How long a test waits for something that should happen at once.
const PROMPTLY: Duration = Duration::from_secs(10);

fn config(budget: Duration) -> SqlConfig {
    let mut cfg = SqlConfig::default();
    cfg.guard.time_budget = budget;
    cfg.stream_idle = FOREVER;
    cfg
}

/// A server with tenant `acme` (tables `t` and `u`) and a read-write token for it.
async fn acme(cfg: SqlConfig) -> (Sql, String) {
    let srv = start_with(cfg).await;
    srv.tenant("acme").await;
    let t = srv.token("acme", Access::ReadWrite);
    let (status, v) = srv
        .pipe(
            "acme",
            &t,
            Value::Null,
            json!([exec("CREATE TABLE t(x)"), exec("CREATE TABLE u(x)"), {"type": "close"}]),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    (srv, t)
}

/// Polls `cond` until it holds; panics after [`PROMPTLY`].
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PROMPTLY;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Sends a JSON POST on a raw socket and returns the socket without reading the answer:
/// dropping it is a client that disconnects.
async fn send_raw(srv: &Sql, path: &str, token: &str, body: &Value) -> tokio::net::TcpStream {
    let addr = srv.url.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.to_string();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(body.as_bytes()).await.unwrap();
    sock
}

/// One write to `acme` on a fresh stream; must not fail.
async fn write_u(srv: &Sql, t: &str) {
    write_u_at(srv.http.clone(), srv.url.clone(), t.to_owned()).await;
}

async fn write_u_at(http: reqwest::Client, url: String, t: String) {
    let body =
        json!({"baton": null, "requests": [exec("INSERT INTO u VALUES (1)"), {"type": "close"}]});
    let r = http
        .post(format!("{url}/t/acme/v2/pipeline"))
        .bearer_auth(t)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["results"][0]["type"], "ok", "{v}");
}

/// A one-shot `SELECT count(*) FROM t` on acme; read the number with [`count`].
async fn count_t(srv: &Sql, t: &str) -> Value {
    let reqs = json!([exec("SELECT count(*) FROM t"), {"type": "close"}]);
    srv.pipe("acme", t, Value::Null, reqs).await.1
}

fn count(v: &Value) -> i64 {
    rows(&v["results"][0])[0][0]["value"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn assert_budget_error(e: &Value, ctx: &str) {
    assert_eq!(e["code"], "SQLITE_INTERRUPT", "{ctx}: {e}");
    let message = e["message"].as_str().unwrap();
    assert!(message.contains("time budget exceeded"), "{ctx}: {message}");
}

#[tokio::test]
async fn regression_time_budget_was_per_statement_not_per_request() {
    // Before the fix each of the N statements got its own budget: N × budget in one request.
    const N: usize = 30;
    let budget = Duration::from_millis(200);
    let (srv, t) = acme(config(budget)).await;
    let steps: Vec<Value> = (0..N).map(|_| json!({"stmt": {"sql": RUNAWAY}})).collect();
    let shapes: [(&str, &str, Value); 4] = [
        (
            "pipeline of executes",
            "/t/acme/v2/pipeline",
            json!({"baton": null, "requests": (0..N).map(|_| exec(RUNAWAY)).collect::<Vec<_>>()}),
        ),
        (
            "pipeline of sequences",
            "/t/acme/v3/pipeline",
            json!({"baton": null, "requests": (0..N)
                .map(|_| json!({"type": "sequence", "sql": format!("{RUNAWAY}; SELECT 1")}))
                .collect::<Vec<_>>()}),
        ),
        (
            "batch",
            "/t/acme/v2/pipeline",
            json!({"baton": null, "requests": [{"type": "batch", "batch": {"steps": steps}}]}),
        ),
        (
            "v1 batch",
            "/t/acme/v1/batch",
            json!({"batch": {"steps": steps}}),
        ),
    ];
    for (shape, path, body) in shapes {
        let started = Instant::now();
        let (status, v) = srv.post(path, Some(&t), body).await;
        let took = started.elapsed();
        assert_eq!(status, 200, "{shape}: {v}");
        let errors: Vec<&Value> = match shape {
            "batch" => v["results"][0]["response"]["result"]["step_errors"]
                .as_array()
                .unwrap()
                .iter()
                .collect(),
            "v1 batch" => v["result"]["step_errors"]
                .as_array()
                .unwrap()
                .iter()
                .collect(),
            _ => v["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| &r["error"])
                .collect(),
        };
        assert_eq!(errors.len(), N, "{shape}: {v}");
        for e in errors {
            assert_budget_error(e, shape);
        }
        // Generous for a busy machine, far below the N × budget of the defect.
        assert!(
            took < budget * 10,
            "{shape}: {N} runaway statements took {took:?} with a {budget:?} budget"
        );
    }
    // A new request has a new budget.
    let v = count_t(&srv, &t).await;
    assert_eq!(count(&v), 0, "{v}");
    srv.stop().await;
}

#[tokio::test]
async fn regression_disconnect_left_the_statement_running_and_the_stream_holding_the_writer() {
    let (srv, t) = acme(config(FOREVER)).await;
    // An interactive transaction: its stream holds the tenant's writer between requests.
    let (status, v) = srv
        .pipe(
            "acme",
            &t,
            Value::Null,
            json!([exec("BEGIN"), exec("INSERT INTO t VALUES (1)")]),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let baton = v["baton"].clone();
    // Its next request runs a statement that never ends, and the client goes away.
    let body = json!({"baton": baton, "requests": [exec(RUNAWAY)]});
    let sock = send_raw(&srv, "/t/acme/v2/pipeline", &t, &body).await;
    let streams = srv.state.sql.streams.clone();
    wait_for("the request to take its stream", || streams.in_use() == 1).await;
    drop(sock);

    // The statement is interrupted, the transaction rolled back, the stream dropped (nobody
    // has its next baton) and the writer released: a following write runs at once.
    tokio::time::timeout(PROMPTLY, write_u(&srv, &t))
        .await
        .expect("a write after the disconnect waited for the abandoned request");
    assert_eq!(srv.state.sql.streams.len(), 0, "the stream was dropped");
    let v = count_t(&srv, &t).await;
    assert_eq!(
        count(&v),
        0,
        "the abandoned transaction was rolled back: {v}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn regression_disconnect_left_one_shot_requests_running_on_the_writer() {
    let (srv, t) = acme(config(FOREVER)).await;
    let id = TenantId::parse("acme").unwrap();
    let cases = [
        (
            "/t/acme/v2/pipeline",
            json!({"baton": null, "requests": [
                exec("BEGIN"), exec("INSERT INTO t VALUES (1)"), exec(RUNAWAY)
            ]}),
        ),
        (
            "/t/acme/v1/execute",
            json!({"stmt": {"sql": RUNAWAY_WRITE}}),
        ),
        (
            "/t/acme/v1/batch",
            json!({"batch": {"steps": [{"stmt": {"sql": RUNAWAY_WRITE}}]}}),
        ),
        (
            "/t/acme/",
            json!({"statements": ["INSERT INTO t VALUES (1)", RUNAWAY]}),
        ),
        (
            "/t/acme/v3/cursor",
            json!({"baton": null, "batch": {"steps": [
                {"stmt": {"sql": "BEGIN"}},
                {"stmt": {"sql": "INSERT INTO t VALUES (1)"}},
                {"stmt": {"sql": RUNAWAY}}
            ]}}),
        ),
    ];
    for (path, body) in cases {
        let sock = send_raw(&srv, path, &t, &body).await;
        // Wait until the request holds the writer: a write queues behind it. (A write that
        // completes instead got the writer first; try again.)
        let deadline = Instant::now() + PROMPTLY;
        let blocked = loop {
            assert!(
                Instant::now() < deadline,
                "{path}: the request never took the writer"
            );
            let probe = tokio::spawn(write_u_at(srv.http.clone(), srv.url.clone(), t.clone()));
            let pool = srv.state.pool.clone();
            let id2 = id.clone();
            wait_for("a queued write or a finished probe", || {
                pool.queued_writes(&id2) > 0 || probe.is_finished()
            })
            .await;
            if pool.queued_writes(&id) > 0 {
                break probe;
            }
            probe.await.unwrap();
        };
        drop(sock);
        tokio::time::timeout(PROMPTLY, blocked)
            .await
            .unwrap_or_else(|_| panic!("{path}: a write after the disconnect waited"))
            .unwrap();
        let streams = srv.state.sql.streams.clone();
        wait_for(&format!("{path}: no stream left"), || streams.is_empty()).await;
        let v = count_t(&srv, &t).await;
        assert_eq!(count(&v), 0, "{path}: nothing of the request was kept: {v}");
    }
    srv.stop().await;
}

/// A `v2/pipeline` request; returns status, `Retry-After` and body.
async fn pipe_raw(srv: &Sql, tenant: &str, t: &str, body: Value) -> (u16, Option<String>, Value) {
    let r = srv
        .http
        .post(format!("{}/t/{tenant}/v2/pipeline", srv.url))
        .bearer_auth(t)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, r.json().await.unwrap())
}

#[tokio::test]
async fn regression_open_streams_were_unbounded() {
    let mut cfg = config(FOREVER);
    cfg.max_streams_per_tenant = 2;
    cfg.max_streams = 3;
    let (srv, acme) = acme(cfg).await;
    srv.tenant("globex").await;
    let globex = srv.token("globex", Access::ReadWrite);
    let open = json!({"baton": null, "requests": [exec("SELECT 1")]});
    let mut batons = Vec::new();
    for _ in 0..2 {
        let (status, _, v) = pipe_raw(&srv, "acme", &acme, open.clone()).await;
        assert_eq!(status, 200, "{v}");
        batons.push(v["baton"].clone());
    }
    // The tenant's cap: a third stream is refused before it runs anything.
    let (status, retry, v) = pipe_raw(
        &srv,
        "acme",
        &acme,
        json!({"baton": null, "requests": [exec("INSERT INTO t VALUES (1)")]}),
    )
    .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (429, Some("too_many_streams")),
        "{v}"
    );
    assert!(retry.is_some(), "429 carries Retry-After");
    assert!(v["message"].as_str().unwrap().contains("at most 2"), "{v}");
    let cursor = srv
        .http
        .post(format!("{}/t/acme/v3/cursor", srv.url))
        .bearer_auth(&acme)
        .json(&json!({"baton": null, "batch": {"steps": [{"stmt": {"sql": "SELECT 1"}}]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(cursor.status(), 429, "a cursor opens a stream too");
    // A request that closes its new stream holds none, so it still runs.
    let (status, _, v) = pipe_raw(
        &srv,
        "acme",
        &acme,
        json!({"baton": null, "requests": [exec("SELECT count(*) FROM t"), {"type": "close"}]}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    // The node's cap: 2 + 1 streams, then 503 for every tenant.
    let (status, _, v) = pipe_raw(&srv, "globex", &globex, open.clone()).await;
    assert_eq!(status, 200, "{v}");
    let (status, retry, v) = pipe_raw(&srv, "globex", &globex, open.clone()).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (503, Some("too_many_streams")),
        "{v}"
    );
    assert!(retry.is_some(), "503 carries Retry-After");
    // Closing a stream frees its place.
    let close = json!({"baton": batons[0], "requests": [{"type": "close"}]});
    let (status, _, v) = pipe_raw(&srv, "acme", &acme, close).await;
    assert_eq!(status, 200, "{v}");
    let (status, _, v) = pipe_raw(&srv, "acme", &acme, open).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(srv.state.sql.streams.len(), 3);
    srv.stop().await;
}

#[tokio::test]
async fn regression_store_sql_accepted_7_mib_over_the_1_mib_sql_limit() {
    let mut cfg = config(FOREVER);
    cfg.stream.max_stored_sqls = 2;
    cfg.stream.max_stored_sql_bytes = 1_000;
    let (srv, t) = acme(cfg).await;
    let store = |id: i32, sql: String| json!({"type": "store_sql", "sql_id": id, "sql": sql});
    let huge = format!("SELECT '{}'", "x".repeat(7 << 20));
    let (status, v) = srv
        .pipe("acme", &t, Value::Null, json!([store(1, huge)]))
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (400, Some("SQL_TOO_LONG")),
        "{v}"
    );
    assert_eq!(srv.state.sql.streams.len(), 0, "the stream was dropped");
    // The stream's byte cap, then its count cap.
    let (status, v) = srv
        .pipe(
            "acme",
            &t,
            Value::Null,
            json!([store(1, "x".repeat(600)), store(2, "x".repeat(600))]),
        )
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (400, Some("SQL_STORE_FULL")),
        "{v}"
    );
    assert!(v["message"].as_str().unwrap().contains("1000 bytes"), "{v}");
    let (status, v) = srv
        .pipe(
            "acme",
            &t,
            Value::Null,
            json!([
                store(1, "SELECT 1".into()),
                store(2, "SELECT 2".into()),
                store(3, "SELECT 3".into())
            ]),
        )
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (400, Some("SQL_STORE_FULL")),
        "{v}"
    );
    assert!(v["message"].as_str().unwrap().contains("at most 2"), "{v}");
    srv.stop().await;
}

/// The experiment behind the numbers in docs/HRANA.md §5.7 (run with `cargo test -p server
/// --test it measure_reads -- --ignored --nocapture`): point reads on fresh streams, one after
/// another, while four writers keep the tenant's writer busy.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement; prints latencies"]
async fn measure_reads_while_writers_hold_the_writer() {
    const READS: usize = 200;
    let (srv, t) = acme(config(Duration::from_secs(30))).await;
    let (status, v) = srv
        .pipe(
            "acme",
            &t,
            Value::Null,
            json!([exec("INSERT INTO t SELECT value FROM json_each((SELECT json_group_array(x) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 1000) SELECT x FROM c)))"), {"type": "close"}]),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let write = "INSERT INTO u SELECT x FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 20000) SELECT x FROM c)";
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (http, url, t, stop) = (srv.http.clone(), srv.url.clone(), t.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let body = json!({"baton": null, "requests": [exec(write), {"type": "close"}]});
                    let r = http
                        .post(format!("{url}/t/acme/v2/pipeline"))
                        .bearer_auth(&t)
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    if r.status() == 200 {
                        n += 1;
                    }
                }
                n
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut latencies = Vec::with_capacity(READS);
    let started = Instant::now();
    for i in 0..READS {
        let body = json!([
            {"type": "execute", "stmt": {"sql": "SELECT x FROM t WHERE rowid = ?", "args": [{"type": "integer", "value": (i % 1000 + 1).to_string()}]}},
            {"type": "close"}
        ]);
        let t0 = Instant::now();
        let (status, v) = srv.pipe("acme", &t, Value::Null, body).await;
        latencies.push(t0.elapsed());
        assert_eq!(status, 200, "{v}");
    }
    let elapsed = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut writes = 0;
    for w in writers {
        writes += w.await.unwrap();
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{READS} reads in {:.0} ms ({:.0}/s); latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {writes} writes meanwhile",
        ms(elapsed),
        READS as f64 / elapsed.as_secs_f64(),
        ms(latencies[READS / 2]),
        ms(latencies[READS * 99 / 100]),
        ms(latencies[READS - 1]),
    );
    assert!(writes > 0, "the writers ran");
    srv.stop().await;
}

#[tokio::test]
async fn regression_reads_waited_for_the_writer() {
    let (srv, t) = acme(config(FOREVER)).await;
    let ro = srv.token("acme", Access::ReadOnly);
    // A stream that is idle outside a transaction (holds no writer).
    let (_, v) = srv
        .pipe("acme", &t, Value::Null, json!([exec("SELECT 1")]))
        .await;
    let idle_baton = v["baton"].clone();
    // Another stream holds the tenant's writer: its transaction is open.
    let (status, v) = srv
        .pipe(
            "acme",
            &t,
            Value::Null,
            json!([exec("BEGIN"), exec("INSERT INTO t VALUES (1)")]),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let holder = v["baton"].clone();

    let read = |token: String, baton: Value| {
        let (http, url) = (srv.http.clone(), srv.url.clone());
        async move {
            let body = json!({"baton": baton, "requests": [
                exec("SELECT count(*) FROM t"),
                {"type": "describe", "sql": "SELECT x FROM t"},
                {"type": "close"}
            ]});
            let r = http
                .post(format!("{url}/t/acme/v2/pipeline"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    for (who, token, baton) in [
        ("a new stream", t.clone(), Value::Null),
        ("a read-only token", ro.clone(), Value::Null),
        ("a stream without a transaction", t.clone(), idle_baton),
    ] {
        let v = tokio::time::timeout(PROMPTLY, read(token, baton))
            .await
            .unwrap_or_else(|_| panic!("a read on {who} waited for the writer"));
        assert_eq!(count(&v), 0, "{who} reads committed data only: {v}");
    }
    let cursor = srv
        .http
        .post(format!("{}/t/acme/v3/cursor", srv.url))
        .bearer_auth(&t)
        .json(&json!({"baton": null, "batch": {"steps": [{"stmt": {"sql": "SELECT count(*) FROM t"}}]}}))
        .send();
    let text = tokio::time::timeout(PROMPTLY, async {
        cursor.await.unwrap().text().await.unwrap()
    })
    .await
    .expect("a cursor read waited for the writer");
    assert!(text.contains("\"row\""), "{text}");
    for (path, body) in [
        (
            "/t/acme/v1/execute",
            json!({"stmt": {"sql": "SELECT count(*) FROM t"}}),
        ),
        (
            "/t/acme/v1/batch",
            json!({"batch": {"steps": [{"stmt": {"sql": "SELECT count(*) FROM t"}}]}}),
        ),
        (
            "/t/acme/",
            json!({"statements": ["SELECT count(*) FROM t"]}),
        ),
    ] {
        let (status, v) = tokio::time::timeout(PROMPTLY, srv.post(path, Some(&t), body))
            .await
            .unwrap_or_else(|_| panic!("a read on {path} waited for the writer"));
        assert_eq!(status, 200, "{path}: {v}");
    }

    // What can write still goes to the writer and waits for it, even if it starts like a read.
    let write = {
        let (http, url, t) = (srv.http.clone(), srv.url.clone(), t.clone());
        tokio::spawn(async move {
            let body = json!({"baton": null, "requests": [
                exec("WITH c(x) AS (SELECT 2) INSERT INTO t SELECT x FROM c"),
                {"type": "close"}
            ]});
            let r = http
                .post(format!("{url}/t/acme/v2/pipeline"))
                .bearer_auth(t)
                .json(&body)
                .send()
                .await
                .unwrap();
            r.json::<Value>().await.unwrap()
        })
    };
    let pool = srv.state.pool.clone();
    let id = TenantId::parse("acme").unwrap();
    wait_for("the write to queue for the writer", || {
        pool.queued_writes(&id) > 0
    })
    .await;
    let (status, v) = srv
        .pipe(
            "acme",
            &t,
            holder,
            json!([exec("COMMIT"), {"type": "close"}]),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let v = tokio::time::timeout(PROMPTLY, write)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v["results"][0]["type"], "ok", "{v}");
    let v = read(ro, Value::Null).await;
    assert_eq!(count(&v), 2, "{v}");
    srv.stop().await;
}
