//! Raw-socket helpers for tests that must send bytes exactly as written (stalled bodies,
//! `Expect: 100-continue`, malformed headers) and wait without sleeping blindly.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::util::TestServer;

/// Generous bound on waiting for something that should happen quickly; only guards against a
/// hang, never measures anything.
pub const HANG: Duration = Duration::from_secs(20);

pub async fn connect(srv: &TestServer) -> TcpStream {
    TcpStream::connect(srv.url.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads one response head (and whatever of the body came with it), or panics after `HANG`.
pub async fn read_response(s: &mut TcpStream) -> String {
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

pub fn json_code(response: &str) -> String {
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str::<Value>(body).unwrap_or_default()["error"]["code"]
        .as_str()
        .unwrap_or("<no JSON error>")
        .to_owned()
}

pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
