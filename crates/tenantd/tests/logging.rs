//! `tenantd serve`'s logs when stderr is not a terminal: plain text, no ANSI colour codes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn regression_logs_carry_ansi_colours_when_stderr_is_not_a_terminal() {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .env("TENANTD_LOG", "info")
        .env_remove("TENANTD_LOG_FORMAT")
        .env_remove("TENANTD_ADMIN_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tenantd starts");
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        let done = line.contains("tenantd serving");
        seen.push(line);
        if done {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let text = seen.join("\n");
    assert!(
        text.contains("tenantd serving"),
        "no start-up line in:\n{text}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "ANSI escape codes in piped logs:\n{text}"
    );
}
