//! Calibration scenarios: each starts fresh servers of its own, drives them with the load
//! generator, samples them, and turns what it saw into capacity-model fields (workload or
//! machine) with a source string saying how each was measured. Usable alone (`tenantd bench
//! idle|inflight|cpu|disk|cold`) or together (`tenantd prove`).
//!
//! - [`idle`]: RSS and fds with 0 and N idle tenants, and after touching all and idling.
//! - [`inflight`]: peak RSS over concurrency levels; the slope is RAM per in-flight op.
//! - [`cpu`]: server CPU per request, warm and cold, per workload and durability mode.
//! - [`disk`]: bytes per tenant at creation and per stored event; the data dir's sync rate.
//! - [`cold`]: cold vs warm latency, and the observed cold fraction next to the model's.

pub mod cold;
pub mod cpu;
pub mod disk;
pub mod fit;
pub mod idle;
pub mod inflight;
pub mod probe;

use std::path::PathBuf;
use std::time::Duration;

use capacity::profile_file::Measured;
use loadgen::sample::Sampler;
use loadgen::workload::Workload;
use loadgen::zipf::Chooser;
use loadgen::{Pace, RunResult, Spec};
use store::Durability;

use crate::emulate::{Cgroup, Limits};
use crate::server::{LocalServer, ServerSpec};

/// Admin token of the servers calibration starts (they listen on 127.0.0.1 only).
const ADMIN_TOKEN: &str = "calibration-admin-token";

/// What every scenario shares: which binary, where, which mode, which limits.
#[derive(Debug, Clone)]
pub struct Context {
    /// The tenantd binary to start (normally this one).
    pub binary: PathBuf,
    /// Parent of the scenarios' temporary data directories (its disk is the one measured).
    pub scratch: PathBuf,
    /// Durability mode of the servers.
    pub durability: Durability,
    /// Load generator threads.
    pub threads: usize,
    /// Run every server under these limits (`--emulate`), or natively.
    pub emulate: Option<Limits>,
    /// Show a progress line per load run on stderr.
    pub verbose: bool,
}

/// What one scenario measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Outcome {
    /// Scenario name (`idle`, `inflight`, …).
    pub scenario: String,
    /// Workload profile fields it measured.
    pub workload: Vec<Measured>,
    /// Machine profile fields it measured.
    pub machine: Vec<Measured>,
    /// Everything it saw, for the report's raw JSON.
    pub raw: serde_json::Value,
    /// One line per finding, for people.
    pub summary: Vec<String>,
    /// Wall time the scenario took, seconds (set by the caller that timed it).
    pub seconds: f64,
}

impl Outcome {
    pub(crate) fn new(scenario: &str) -> Outcome {
        Outcome {
            scenario: scenario.to_string(),
            ..Outcome::default()
        }
    }

    pub(crate) fn workload_field(&mut self, field: &str, value: f64, how: String) {
        self.workload.push(Measured {
            field: field.to_string(),
            value,
            source: format!("measured: {how} (tenantd bench {})", self.scenario),
        });
    }

    pub(crate) fn machine_field(&mut self, field: &str, value: f64, how: String) {
        self.machine.push(Measured {
            field: field.to_string(),
            value,
            source: format!("measured: {how} (tenantd bench {})", self.scenario),
        });
    }
}

/// A server started for a scenario, in its cgroup when emulating.
pub(crate) struct Running {
    pub server: LocalServer,
    cgroup: Option<Cgroup>,
}

/// How a scenario wants its server.
pub(crate) struct Start<'a> {
    pub tenants: u64,
    pub kv_schema: bool,
    pub args: &'a [&'a str],
}

impl Context {
    /// Starts a fresh server with `tenants` provisioned tenants on a temporary data dir.
    pub(crate) fn start(&self, s: Start<'_>) -> anyhow::Result<Running> {
        std::fs::create_dir_all(&self.scratch)?;
        let data = tempfile::Builder::new()
            .prefix("tenantd-calibrate-")
            .tempdir_in(&self.scratch)?
            .keep();
        let spec = ServerSpec {
            binary: self.binary.clone(),
            data_dir: Some(data),
            durability: self.durability,
            tenants: s.tenants,
            prefix: crate::names::DEFAULT_PREFIX.to_string(),
            width: crate::names::DEFAULT_WIDTH.max(digits(s.tenants)),
            kv_schema: s.kv_schema,
            extra_args: s.args.iter().map(|a| a.to_string()).collect(),
            admin_token: ADMIN_TOKEN.to_string(),
            env: Vec::new(),
        };
        let server = LocalServer::start(&spec)?;
        let cgroup = match self.emulate {
            Some(limits) => {
                let group = Cgroup::create(&format!("tenantd-calibrate-{}", server.pid), limits)?;
                group.attach(server.pid)?;
                Some(group)
            }
            None => None,
        };
        Ok(Running { server, cgroup })
    }

    /// A load spec against `running` with this context's threads; the caller sets the rest.
    pub(crate) fn spec(
        &self,
        running: &Running,
        workload: Workload,
        chooser: Chooser,
        pace: Pace,
        duration: Duration,
    ) -> Spec {
        let mut spec = Spec::new(running.server.addr, workload);
        spec.names = loadgen::Names::Numbered {
            prefix: crate::names::DEFAULT_PREFIX.to_string(),
            width: crate::names::DEFAULT_WIDTH.max(digits(chooser.n())),
        };
        spec.chooser = chooser;
        spec.pace = pace;
        spec.duration = duration;
        spec.token = Some(ADMIN_TOKEN.to_string());
        spec.threads = self.threads;
        spec.sampler = Some(Sampler::Local {
            pid: running.server.pid,
            data_dir: None,
        });
        spec
    }

    /// Runs `spec`, refusing a run in which the server answered nothing with a 2xx.
    pub(crate) fn drive(&self, label: &str, spec: &Spec) -> anyhow::Result<RunResult> {
        let verbose = self.verbose;
        let result = loadgen::run(spec, &mut |p| {
            if verbose {
                eprint!(
                    "\r  {label}: {:.0}/{:.0} s, {} requests, {} ok   ",
                    p.elapsed.as_secs_f64(),
                    p.duration.as_secs_f64(),
                    p.requests,
                    p.ok
                );
            }
        })?;
        if verbose {
            eprintln!();
        }
        if result.ok == 0 {
            anyhow::bail!(
                "{label}: no request succeeded ({} sent, statuses {:?}, {} errors)",
                result.requests,
                result.statuses,
                result.errors
            );
        }
        Ok(result)
    }
}

impl Running {
    /// A sample of the server process now.
    pub fn sample(&self) -> anyhow::Result<loadgen::sample::ServerSample> {
        Ok(Sampler::Local {
            pid: self.server.pid,
            data_dir: Some(self.server.data_dir.clone()),
        }
        .sample()?)
    }

    /// One sample of the server's `/metrics` (0 when absent).
    pub fn metric(&self, name: &str) -> anyhow::Result<f64> {
        probe::metric(self.server.addr, name)
    }

    /// Peak memory charged to the emulation cgroup, if emulating.
    pub fn cgroup_peak_bytes(&self) -> Option<u64> {
        self.cgroup.as_ref()?.memory_peak_bytes()
    }

    /// CFS periods in which the emulated CPU quota stopped the server, if emulating.
    pub fn cgroup_throttled_periods(&self) -> Option<u64> {
        self.cgroup.as_ref()?.throttled_periods()
    }

    /// Waits (polling `/metrics`, at most `timeout`) until no tenant is open.
    pub fn wait_all_closed(&self, timeout: Duration) -> anyhow::Result<Duration> {
        let started = std::time::Instant::now();
        loop {
            let open =
                self.metric("tenantd_open_tenants")? + self.metric("tenantd_closing_tenants")?;
            if open == 0.0 {
                return Ok(started.elapsed());
            }
            if started.elapsed() > timeout {
                anyhow::bail!("{open} tenants still open after {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server, then removes its data directory and cgroup.
    pub fn stop(self) -> anyhow::Result<()> {
        self.stop_then(|_| ())
    }

    /// Stops the server, runs `look` on its data directory, then removes it and the cgroup.
    pub fn stop_then<R>(self, look: impl FnOnce(&std::path::Path) -> R) -> anyhow::Result<R> {
        let data = self.server.data_dir.clone();
        self.server.stop()?;
        drop(self.cgroup);
        let seen = look(&data);
        let _ = std::fs::remove_dir_all(data);
        Ok(seen)
    }
}

/// Provenance of profile fields measured now on `host` by `scenarios`, natively or under
/// `emulate` (`emulated_as` names the machine profile emulated, if any).
pub fn provenance(
    host: &loadgen::machine::MachineInfo,
    scenarios: Vec<String>,
    emulate: Option<Limits>,
    emulated_as: Option<&str>,
) -> capacity::Provenance {
    capacity::Provenance {
        date: crate::prove::report::now_rfc3339(),
        machine: host.describe(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        scenarios,
        emulated: emulate.map(|l| match emulated_as {
            Some(name) => format!("{} ({name})", l.describe()),
            None => l.describe(),
        }),
    }
}

/// The name of a durability mode, as `--durability` takes it.
pub(crate) fn mode_name(d: Durability) -> &'static str {
    match d {
        Durability::Fsync => "fsync",
        Durability::Crash => "crash",
    }
}

/// Digits needed to number `n` tenants from 0.
pub(crate) fn digits(n: u64) -> u32 {
    n.saturating_sub(1).max(1).ilog10() + 1
}

/// Seconds as a short human string (`12.3 ms`, `45 µs`).
pub(crate) fn human_seconds(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

/// Bytes as a short human string in binary units (`1.5 MiB`).
pub(crate) fn human_bytes(b: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut i = 0;
    while v.abs() >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_cover_the_largest_index() {
        assert_eq!(digits(1), 1);
        assert_eq!(digits(10), 1);
        assert_eq!(digits(11), 2);
        assert_eq!(digits(100_000), 5);
        assert_eq!(digits(100_001), 6);
        assert_eq!(digits(1_000_000), 6);
    }

    #[test]
    fn human_units() {
        assert_eq!(human_seconds(0.000045), "45.0 µs");
        assert_eq!(human_seconds(0.0123), "12.30 ms");
        assert_eq!(human_bytes(1536.0 * 1024.0), "1.5 MiB");
        assert_eq!(human_bytes(12.0), "12 B");
    }
}
