//! Shared by the binary's integration tests: `tenantd` with a clean environment, and
//! `tenantd serve` on 127.0.0.1:0 with its URL read from its stdout.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

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

/// Starts `tenantd serve` on a free port over `data` with `extra` flags; returns the child and
/// the URL it printed. Its stdout keeps being drained so it never blocks on a full pipe.
pub fn spawn_serve(data: &Path, extra: &[&str]) -> (Child, String) {
    let mut child = tenantd()
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(extra)
        .env("TENANTD_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("tenantd starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("tenantd printed its address").unwrap();
        if let Some(url) = line.strip_prefix("tenantd listening on ") {
            break url.to_owned();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    (child, url)
}
