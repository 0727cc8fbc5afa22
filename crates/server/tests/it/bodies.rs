//! Request bodies at the front door: a stalled body times out with 408 and frees its slot,
//! `Expect: 100-continue` over the limit gets 413 before any body byte, admin bodies over the
//! limit are 413, tokens are checked before bodies are read, and what hyper answers itself.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::raw::{connect, json_code, read_response, until};
use crate::util::{error_code, start, start_with, TOKEN};

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
