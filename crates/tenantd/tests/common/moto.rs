//! A real S3 API for the tests: moto's server (PyPI `moto[server]`, installed by
//! `scripts/test.sh`, run as `python3 -m moto.server`) on a free port, with one bucket. Without
//! it a test skips with a note, unless `TENANTD_REQUIRE_MOTO=1` (set by `scripts/test.sh` as
//! root, i.e. in CI).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The bucket every test uses.
pub const BUCKET: &str = "tenantd-backup-test";
/// The prefix the backup flags name.
pub const PREFIX: &str = "node1";

/// A running moto server (killed on drop).
pub struct Moto {
    child: Child,
    /// Its port (a test restarts moto on the same one).
    pub port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Moto {
    /// A moto server on `port` (default: a free one) with an empty bucket [`BUCKET`], or `None`
    /// (skip) when moto is not installed here and `TENANTD_REQUIRE_MOTO` is not `1`.
    pub async fn start(port: Option<u16>) -> Option<Moto> {
        // `python3 -m moto.server`, not the `moto_server` script: no PATH or shim to depend on.
        let found = Command::new("python3")
            .args(["-m", "moto.server", "--help"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !found.is_ok_and(|s| s.success()) {
            assert!(
                std::env::var("TENANTD_REQUIRE_MOTO").as_deref() != Ok("1"),
                "moto's server is required (python3 -m pip install 'moto[server]')"
            );
            eprintln!(
                "skipped: moto's server not installed (python3 -m pip install 'moto[server]')"
            );
            return None;
        }
        let port = port.unwrap_or_else(free_port);
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto's server starts");
        let moto = Moto { child, port };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = http.put(format!("{}/{BUCKET}", moto.url())).send().await;
            match r {
                Ok(r) if r.status().is_success() => return Some(moto),
                _ if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                other => panic!("moto did not come up: {other:?}"),
            }
        }
    }

    /// The S3 endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// The backup flags for the S3 API at `endpoint`, with the credentials in a file under `dir`.
pub fn backup_flags(endpoint: &str, dir: &Path) -> Vec<String> {
    let creds = dir.join("credentials");
    std::fs::write(
        &creds,
        "[default]\naws_access_key_id = testing\naws_secret_access_key = testing-secret\n",
    )
    .unwrap();
    vec![
        "--backup-bucket".into(),
        BUCKET.into(),
        "--backup-prefix".into(),
        PREFIX.into(),
        "--backup-endpoint".into(),
        endpoint.into(),
        "--backup-credentials".into(),
        creds.display().to_string(),
    ]
}
