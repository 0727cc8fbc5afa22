//! Our own tenantd for a load run: provisions tenants into a data directory (a temporary one
//! by default), optionally applies the SQL benchmark's kv schema (`bench/sql/0001_kv.sql`,
//! through `store::migrate`, as `tenantd migrate` does), starts `tenantd serve` on
//! 127.0.0.1:0 and reads its address; stops it with SIGTERM. Dropping it kills a server still
//! running and removes the temporary directory.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use store::migrate::{self, FleetOptions, Migration, MigrationSet};
use store::Durability;

use crate::names::NameSet;
use crate::provision::{self, Provision};
use crate::template::Layout;

/// The SQL benchmark's schema: a kv table with 100 rows per tenant.
pub const KV_SCHEMA: &str = include_str!("../../../bench/sql/0001_kv.sql");
/// The admin token our own server gets unless told otherwise.
pub const DEFAULT_ADMIN_TOKEN: &str = "tenantd-bench-load-admin-token";
/// How long the server may take to print its address.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `stop` waits after SIGTERM before SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// The server's stdout and stderr, inside its data directory.
pub const LOG_FILE: &str = "bench-server.log";

/// What server to start.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    /// The tenantd binary.
    pub binary: PathBuf,
    /// Data directory (must not hold tenants yet); `None` = a temporary directory.
    pub data_dir: Option<PathBuf>,
    /// `--durability`.
    pub durability: Durability,
    /// Tenants to provision: `{prefix}{0..tenants:0width}`.
    pub tenants: u64,
    /// Name prefix.
    pub prefix: String,
    /// Digits.
    pub width: u32,
    /// Apply `bench/sql/0001_kv.sql` to every tenant.
    pub kv_schema: bool,
    /// More `tenantd serve` flags.
    pub extra_args: Vec<String>,
    /// `TENANTD_ADMIN_TOKEN`.
    pub admin_token: String,
    /// More environment variables for the server.
    pub env: Vec<(String, String)>,
}

impl ServerSpec {
    /// This binary, a temporary data dir, fsync, `tenants` tenants named `tenant00000`…
    pub fn new(tenants: u64) -> anyhow::Result<Self> {
        Ok(ServerSpec {
            binary: std::env::current_exe().context("cannot find the running binary")?,
            data_dir: None,
            durability: Durability::Fsync,
            tenants,
            prefix: crate::names::DEFAULT_PREFIX.into(),
            width: crate::names::DEFAULT_WIDTH,
            kv_schema: false,
            extra_args: Vec::new(),
            admin_token: DEFAULT_ADMIN_TOKEN.into(),
            env: Vec::new(),
        })
    }
}

/// A running tenantd we started.
#[derive(Debug)]
pub struct LocalServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its process id.
    pub pid: u32,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Its stdout and stderr.
    pub log: PathBuf,
    child: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
}

impl LocalServer {
    /// Provisions, migrates and starts the server; returns once it listens. Errors: a bad
    /// name set, provisioning or migration failures, a server that exits or stays silent
    /// (with the tail of its log).
    pub fn start(spec: &ServerSpec) -> anyhow::Result<Self> {
        let (data_dir, tmp) = match &spec.data_dir {
            Some(d) => (d.clone(), None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("tenantd-bench-")
                    .tempdir()
                    .context("cannot create a temporary data directory")?;
                (t.path().to_owned(), Some(t))
            }
        };
        prepare(spec, &data_dir)?;
        let log = data_dir.join(LOG_FILE);
        let out = File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let err = out.try_clone().context("cannot share the log file")?;
        let durability = match spec.durability {
            Durability::Fsync => "fsync",
            Durability::Crash => "crash",
        };
        let mut child = Command::new(&spec.binary)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data_dir)
            .args(["--durability", durability])
            .args(&spec.extra_args)
            .env("TENANTD_ADMIN_TOKEN", &spec.admin_token)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err))
            .spawn()
            .with_context(|| format!("cannot start {}", spec.binary.display()))?;
        let pid = child.id();
        let stdout = child.stdout.take().expect("stdout is piped");
        let addr = match wait_for_address(&mut child, stdout, out) {
            Ok(a) => a,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e.context(format!(
                    "tenantd serve did not start; its log:\n{}",
                    tail(&log)
                )));
            }
        };
        Ok(LocalServer {
            addr,
            pid,
            data_dir,
            log,
            child: Some(child),
            _tmp: tmp,
        })
    }

    /// SIGTERM, then waits (SIGKILL after [`STOP_TIMEOUT`]). Errors: the server did not stop
    /// in time or exited with a failure.
    pub fn stop(mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        // SAFETY: kill has no memory preconditions; the pid is our child, not yet reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    bail!(
                        "tenantd exited with {status} on SIGTERM; its log:\n{}",
                        tail(&self.log)
                    );
                }
                return Ok(());
            }
            if started.elapsed() > STOP_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                bail!("tenantd did not stop within {STOP_TIMEOUT:?} of SIGTERM and was killed");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Provisions the tenants (and the catalog), then applies the kv schema if asked.
fn prepare(spec: &ServerSpec, data_dir: &Path) -> anyhow::Result<()> {
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let names = NameSet::new(&spec.prefix, spec.width, spec.tenants)?;
    provision::run(&Provision {
        data_dir: data_dir.to_owned(),
        names,
        layout: Layout::Tenantd,
        jobs,
    })
    .context("cannot provision the tenants")?;
    provision::build_catalog(data_dir).context("cannot build the catalog")?;
    if spec.kv_schema && spec.tenants > 0 {
        let set = MigrationSet::new(vec![Migration {
            version: 1,
            name: "0001_kv.sql".into(),
            sql: KV_SCHEMA.into(),
        }])
        .expect("one migration numbered 1");
        let opts = FleetOptions {
            jobs,
            dry_run: false,
        };
        let summary =
            migrate::run_fleet(&store::PoolConfig::new(data_dir), &set, &opts, &|_, _| {})
                .context("cannot apply the kv schema")?;
        if let Some((id, why)) = summary.failed.first() {
            bail!("cannot apply the kv schema to {id}: {why}");
        }
    }
    Ok(())
}

/// Reads stdout until "tenantd listening on http://ADDR", copying every line to `log` (on a
/// thread that keeps draining it, so the server never blocks on a full pipe).
fn wait_for_address(
    child: &mut Child,
    stdout: std::process::ChildStdout,
    mut log: File,
) -> anyhow::Result<SocketAddr> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = writeln!(log, "{line}");
            if let Some(addr) = line.strip_prefix("tenantd listening on http://") {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        }
    });
    let started = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(addr) => {
                return addr
                    .parse()
                    .with_context(|| format!("tenantd printed an unreadable address {addr:?}"))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // Its stdout closed: most likely it is exiting; say how, if it does soon.
                let closed = Instant::now();
                while closed.elapsed() < Duration::from_secs(5) {
                    if let Some(status) = child.try_wait()? {
                        bail!("tenantd exited ({status}) before listening");
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                bail!("tenantd closed its stdout before listening");
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if let Some(status) = child.try_wait()? {
            bail!("tenantd exited ({status}) before listening");
        }
        if started.elapsed() > START_TIMEOUT {
            bail!("tenantd printed no address within {START_TIMEOUT:?}");
        }
    }
}

/// The last 20 lines of a log file.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
