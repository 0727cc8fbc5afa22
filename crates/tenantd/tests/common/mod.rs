//! Shared by the binary's integration tests: `tenantd` with a clean environment, and
//! `tenantd serve` on 127.0.0.1:0 with its URL read from its stdout.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The built binary, with none of the `TENANTD_*` variables a developer may have set.
pub fn tenantd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tenantd"));
    for var in [
        "TENANTD_ADMIN_TOKEN",
        "TENANTD_URL",
        "TENANTD_DATA",
        "TENANTD_TOKEN_KEY",
    ] {
        c.env_remove(var);
    }
    c
}

/// How long `tenantd serve` may take to print its address (startup includes any replay).
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts `cmd serve` (`cmd`: [`tenantd`], maybe with an environment of its own) on a free port
/// (unless `extra` has `--listen`) over `data` with `extra` flags; returns the child and the URL
/// it printed. Its stdout keeps being drained so it never blocks on a full pipe. Panics
/// (after killing the child) if no address is printed within [`START_TIMEOUT`].
pub fn spawn_serve(mut cmd: Command, data: &Path, extra: &[&str]) -> (Child, String) {
    cmd.arg("serve");
    if !extra.contains(&"--listen") {
        cmd.args(["--listen", "127.0.0.1:0"]);
    }
    let mut child = cmd
        .arg("--data")
        .arg(data)
        .args(extra)
        .env("TENANTD_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("tenantd starts");
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in lines.map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("tenantd listening on ") {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(url.to_owned());
                }
            }
        }
    });
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(url) => (child, url),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            match e {
                mpsc::RecvTimeoutError::Timeout => {
                    panic!("tenantd printed no address within {START_TIMEOUT:?}")
                }
                mpsc::RecvTimeoutError::Disconnected => {
                    panic!("tenantd exited before printing its address")
                }
            }
        }
    }
}
