//! Asking a running server between load runs: one `/metrics` sample (through the load
//! generator's fetch), or one admin request over a plain HTTP/1.0 connection.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One request on its own connection (HTTP/1.0, 5 s timeout): the status and the body.
/// Errors: connect, I/O or an answer that is not HTTP.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> anyhow::Result<(u16, String)> {
    let timeout = Duration::from_secs(5);
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    s.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("{method} {path}: no HTTP response"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("{method} {path}: bad status line"))?;
    Ok((status, body.to_string()))
}

/// One sample of the server's `/metrics` (0 when absent). Errors: the fetch failed.
pub fn metric(addr: SocketAddr, name: &str) -> anyhow::Result<f64> {
    let text = loadgen::sample::fetch(&format!("http://{addr}/metrics"))?;
    Ok(loadgen::sample::metric(&text, name).unwrap_or(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connection_is_an_error_not_a_zero() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = free.local_addr().unwrap();
        drop(free);
        assert!(metric(addr, "tenantd_open_tenants").is_err());
        assert!(request(addr, "GET", "/", None, "").is_err());
    }
}
