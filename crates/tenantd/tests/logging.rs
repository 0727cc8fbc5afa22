//! `tenantd serve`'s logs: plain text when stderr is not a terminal (no ANSI colour codes), and a
//! refused request logged once inside its span, with `request_id`, `tenant` and the reason.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Generous bound on a log line showing up; only guards against a hang.
const HANG: Duration = Duration::from_secs(30);

/// `tenantd serve` on a free port with `TENANTD_LOG=<level>`; its stderr lines arrive on the
/// channel, and the address is the one its start-up log line names.
fn serve(data: &std::path::Path, level: &str) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .env("TENANTD_LOG", level)
        .env_remove("TENANTD_LOG_FORMAT")
        .env_remove("TENANTD_ADMIN_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tenantd starts");
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// The address the server logs in its start-up line.
fn serving_addr(rx: &mpsc::Receiver<String>) -> String {
    let start = lines_until(rx, "tenantd serving").join("\n");
    start
        .split("addr=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the start-up line names the address")
        .to_owned()
}

/// Lines up to and including the first that contains `needle`.
fn lines_until(rx: &mpsc::Receiver<String>, needle: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(HANG) {
            Ok(line) => {
                let done = line.contains(needle);
                seen.push(line);
                if done {
                    return seen;
                }
            }
            Err(_) => panic!("no log line with {needle:?} in:\n{}", seen.join("\n")),
        }
    }
}

#[test]
fn regression_logs_carry_ansi_colours_when_stderr_is_not_a_terminal() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, rx) = serve(data.path(), "info");
    let text = lines_until(&rx, "tenantd serving").join("\n");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !text.contains('\u{1b}'),
        "ANSI escape codes in piped logs:\n{text}"
    );
}

#[test]
fn a_refused_request_is_logged_once_with_request_id_tenant_and_reason() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, rx) = serve(data.path(), "debug");
    let addr = serving_addr(&rx);
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(
        b"POST /t/nope/hooks/x HTTP/1.1\r\nHost: x\r\nx-request-id: rid-42\r\n\
          Content-Length: 2\r\nConnection: close\r\n\r\n{}",
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");
    assert!(resp.contains("x-request-id: rid-42"), "{resp}");
    let line = lines_until(&rx, "tenant_not_found").pop().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    for part in [
        "request_id=rid-42",
        "tenant=nope",
        "status=404",
        "tenant not found",
    ] {
        assert!(line.contains(part), "{part:?} missing from {line:?}");
    }
}

#[test]
fn regression_sql_refusals_were_logged_at_debug_only() {
    // At `info`, a 401 on a SQL route must be logged (401/403 are info, like the other routes).
    let data = tempfile::tempdir().unwrap();
    let (mut child, rx) = serve(data.path(), "info");
    let addr = serving_addr(&rx);
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(
        b"POST /t/acme/v2/pipeline HTTP/1.1\r\nHost: x\r\nx-request-id: rid-sql\r\n\
          Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 401"), "{resp}");
    let line = lines_until(&rx, "rid-sql").pop().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    for part in ["status=401", "unauthorized", "INFO"] {
        assert!(line.contains(part), "{part:?} missing from {line:?}");
    }
}
