//! `tenantd token create` for the tests that speak SQL (included with `#[path]` by those only,
//! so the other test binaries do not carry an unused function).

use std::path::Path;

/// `tenantd token create ARGS --data DATA`; returns the token (the last line of stdout).
pub fn create(data: &Path, args: &[&str]) -> String {
    let out = super::common::tenantd()
        .args(["token", "create"])
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    stdout.lines().last().unwrap().trim().to_owned()
}
