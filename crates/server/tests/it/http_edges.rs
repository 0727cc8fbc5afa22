//! The HTTP front door's edges: stalled bodies, `Expect: 100-continue`, JSON for 405 and
//! oversized admin bodies, readiness during shutdown, request ids, reject counters, Host
//! addressing, and the DNS-label id rule.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::util::{error_code, start, start_with, TestServer, TOKEN};

/// Generous bound on waiting for something that should happen quickly; only guards against a
/// hang, never measures anything.
const HANG: Duration = Duration::from_secs(20);

async fn connect(srv: &TestServer) -> TcpStream {
    TcpStream::connect(srv.url.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads one response head (and whatever of the body came with it), or panics after `HANG`.
async fn read_response(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + HANG;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, s.read(&mut chunk))
            .await
            .expect("no response from the server")
            .unwrap();
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        let complete = text.split_once("\r\n\r\n").is_some_and(|(head, body)| {
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")?
                        .parse()
                        .ok()
                })
                .unwrap_or(0usize);
            body.len() >= len
        });
        if n == 0 || complete {
            return text;
        }
    }
}

fn json_code(response: &str) -> String {
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str::<Value>(body).unwrap_or_default()["error"]["code"]
        .as_str()
        .unwrap_or("<no JSON error>")
        .to_owned()
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn regression_stalled_body_holds_in_flight_slot() {
    let srv = start_with(|_, http| {
        http.max_in_flight = 2;
        http.body_read_timeout = Duration::from_millis(300);
    })
    .await;
    srv.create_tenant("acme").await;
    let mut stalled = connect(&srv).await;
    stalled
        .write_all(b"POST /t/acme/hooks/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        .await
        .unwrap();
    until("the stalled request to be in flight", || {
        srv.state.metrics.in_flight() == 1
    })
    .await;
    // Unrelated work is served meanwhile.
    assert_eq!(srv.post_hook("acme", "y", "ok").await.status(), 202);
    // The stalled request ends with a JSON 408 and gives its slot back.
    let resp = read_response(&mut stalled).await;
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
    assert_eq!(json_code(&resp), "request_timeout");
    until("the slot to be freed", || {
        srv.state.metrics.in_flight() == 0
    })
    .await;
    let metrics = srv.metrics_text().await;
    assert!(
        metrics.contains("tenantd_rejects_total{reason=\"request_timeout\"} 1"),
        "{metrics}"
    );
    // Nothing of the partial body was stored.
    let v: Value = srv
        .admin(Method::GET, "/admin/tenants/acme")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["events"], 1);
    srv.stop().await;
}

/// The body deadline does not make the server read bodies it will refuse: the token is checked
/// first, so a client without one is answered at once, whatever its body is doing.
#[tokio::test]
async fn unauthenticated_requests_are_refused_without_waiting_for_their_body() {
    let srv = start().await;
    srv.create_tenant("acme").await;
    for path in ["/t/acme/v2/pipeline", "/admin/tenants/acme/hooks/x"] {
        let mut s = connect(&srv).await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: 100\r\n\r\n{{\"a"
        );
        let head = if path.starts_with("/admin") {
            head.replacen("POST", "PUT", 1)
        } else {
            head
        };
        s.write_all(head.as_bytes()).await.unwrap();
        // The default body_read_timeout (30 s) is longer than HANG: a 401 proves no wait.
        let resp = read_response(&mut s).await;
        assert!(resp.starts_with("HTTP/1.1 401"), "{path}: {resp}");
        assert_eq!(json_code(&resp), "unauthorized", "{path}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn regression_expect_continue_over_the_limit_reads_no_body() {
    let srv = start_with(|_, http| http.max_body_bytes = 1024).await;
    srv.create_tenant("acme").await;
    let mut s = connect(&srv).await;
    s.write_all(
        b"POST /t/acme/hooks/x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\
          Content-Length: 100000\r\n\r\n",
    )
    .await
    .unwrap();
    // The client sends nothing more until told to continue: the answer must be a final 413.
    let resp = read_response(&mut s).await;
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    assert_eq!(json_code(&resp), "payload_too_large");
    // Within the limit, the client is told to continue and the delivery is stored.
    let mut s = connect(&srv).await;
    s.write_all(
        b"POST /t/acme/hooks/x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\
          Content-Length: 2\r\n\r\n",
    )
    .await
    .unwrap();
    let resp = read_response(&mut s).await;
    assert!(resp.starts_with("HTTP/1.1 100"), "{resp}");
    s.write_all(b"{}").await.unwrap();
    let resp = read_response(&mut s).await;
    assert!(resp.contains("HTTP/1.1 202"), "{resp}");
    srv.stop().await;
}

#[tokio::test]
async fn regression_admin_body_over_the_limit_is_400() {
    let srv = start_with(|_, http| http.max_body_bytes = 1024).await;
    srv.create_tenant("acme").await;
    let big = json!({"scheme": "github", "secret": "s".repeat(2000)});
    let r = srv
        .http
        .put(format!("{}/admin/tenants/acme/hooks/gh", srv.url))
        .bearer_auth(TOKEN)
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (413, "payload_too_large".into()));
    // Chunked (no Content-Length): the same answer once the limit is passed.
    let mut s = connect(&srv).await;
    let head = format!(
        "PUT /admin/tenants/acme/hooks/gh HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..3 {
        let chunk = "s".repeat(500);
        s.write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes())
            .await
            .unwrap();
    }
    let resp = read_response(&mut s).await;
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    assert_eq!(json_code(&resp), "payload_too_large");
    srv.stop().await;
}

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

/// hyper refuses a request it cannot parse before any handler runs, with a bare status and an
/// empty body (documented in the README); the connection is closed and the server goes on.
#[tokio::test]
async fn malformed_content_length_gets_hypers_bare_400() {
    let srv = start().await;
    let mut s = connect(&srv).await;
    s.write_all(b"POST /t/acme/hooks/x HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n")
        .await
        .unwrap();
    let resp = read_response(&mut s).await;
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert_eq!(json_code(&resp), "<no JSON error>");
    let r = srv.http.get(format!("{}/healthz", srv.url)).send().await;
    assert_eq!(r.unwrap().status(), 200);
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
