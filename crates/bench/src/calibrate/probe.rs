//! Asking a running server for one number: `GET /metrics` over a plain HTTP/1.0 connection and
//! the value of one Prometheus sample. Used between load runs, never during one.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The value of the sample `name` (no labels) in Prometheus text, if present.
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (key, value) = l.split_once(' ')?;
        (key == name).then(|| value.trim().parse().ok())?
    })
}

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

/// The server's `/metrics` text. Errors: as [`request`], or a non-200 answer.
pub fn metrics(addr: SocketAddr) -> anyhow::Result<String> {
    match request(addr, "GET", "/metrics", None, "")? {
        (200, body) => Ok(body),
        (status, _) => anyhow::bail!("{addr}/metrics answered {status}"),
    }
}

/// One sample of `/metrics`, or 0 when the server does not export it.
pub fn metric(addr: SocketAddr, name: &str) -> anyhow::Result<f64> {
    Ok(metric_value(&metrics(addr)?, name).unwrap_or(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_unlabelled_sample() {
        let text = "# HELP tenantd_open_tenants x\n# TYPE tenantd_open_tenants gauge\n\
                    tenantd_open_tenants 12\ntenantd_open_tenants_max 3\n\
                    tenantd_request_duration_seconds_bucket{le=\"0.1\"} 5\n";
        assert_eq!(metric_value(text, "tenantd_open_tenants"), Some(12.0));
        assert_eq!(metric_value(text, "tenantd_request_duration_seconds"), None);
        assert_eq!(metric_value(text, "missing"), None);
    }
}
