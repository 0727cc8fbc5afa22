//! The report of a run: the machine, the spec, the result and the server's samples, as JSON
//! (for scripts and `tenantd prove`) and as a short text summary.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::histogram::LatencySummary;
use crate::machine::MachineInfo;
use crate::run::{Pace, RunResult, Spec};
use crate::sample::ServerSample;

/// A run, described for people and programs.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Version of the program that ran the load (e.g. tenantd's).
    pub version: String,
    /// The machine the run was on.
    pub machine: MachineInfo,
    /// What was asked.
    pub spec: SpecReport,
    /// What the client saw.
    pub result: ResultReport,
    /// What the server did (when sampled).
    pub server: Option<ServerReport>,
}

/// The spec, flattened.
#[derive(Debug, Clone, Serialize)]
pub struct SpecReport {
    /// Target, as the user gave it (or the server we started).
    pub target: String,
    /// Workload name.
    pub workload: String,
    /// Tenant distribution, e.g. "zipf(s=1.1) over 1000".
    pub distribution: String,
    /// Tenants drawn from.
    pub tenants: u64,
    /// "closed" or "open".
    pub pace: &'static str,
    /// Connections.
    pub connections: usize,
    /// Open loop: requests per second asked for.
    pub rate_per_second: Option<f64>,
    /// Duration asked for.
    pub duration_s: f64,
    /// Request budget.
    pub max_requests: Option<u64>,
    /// Client threads.
    pub threads: usize,
    /// Seed.
    pub seed: u64,
}

/// The client's view of the run.
#[derive(Debug, Clone, Serialize)]
pub struct ResultReport {
    /// From the start to the last answer.
    pub elapsed_s: f64,
    /// Requests sent: ok + sql_errors + non_2xx + errors.
    pub requests: u64,
    /// 2xx answers (without in-band SQL errors).
    pub ok: u64,
    /// 200 answers whose pipeline held an error.
    pub sql_errors: u64,
    /// Answers outside 2xx.
    pub non_2xx: u64,
    /// Requests without an answer.
    pub errors: u64,
    /// Answers by status.
    pub statuses: BTreeMap<String, u64>,
    /// ok per second.
    pub rps_ok: f64,
    /// Latency of every answer (open loop: from the intended send time).
    pub latency: LatencySummary,
    /// Per kind of request (mixed only).
    pub latency_by_op: BTreeMap<String, LatencySummary>,
    /// Open loop: requests the schedule held.
    pub intended: Option<u64>,
    /// Open loop: requests sent late.
    pub sent_late: u64,
    /// Open loop: requests due but never sent.
    pub unsent: u64,
}

/// The server's side.
#[derive(Debug, Clone, Serialize)]
pub struct ServerReport {
    /// Before the load.
    pub before: Option<ServerSample>,
    /// After the load.
    pub after: Option<ServerSample>,
    /// During the load, with seconds since the start.
    pub samples: Vec<TimedSample>,
    /// Largest resident memory seen.
    pub peak_rss_bytes: Option<u64>,
    /// CPU seconds used during the run.
    pub cpu_seconds_used: Option<f64>,
    /// CPU seconds per ok answer.
    pub cpu_seconds_per_ok_request: Option<f64>,
}

/// A sample and when it was taken.
#[derive(Debug, Clone, Serialize)]
pub struct TimedSample {
    /// Seconds since the start.
    pub t_s: f64,
    /// The sample.
    #[serde(flatten)]
    pub sample: ServerSample,
}

impl Report {
    /// Builds the report of `result`, a run of `spec` against `target`.
    pub fn new(
        version: &str,
        machine: MachineInfo,
        target: &str,
        spec: &Spec,
        result: &RunResult,
    ) -> Self {
        let (pace, rate) = match spec.pace {
            Pace::Closed { .. } => ("closed", None),
            Pace::Open {
                rate_per_second, ..
            } => ("open", Some(rate_per_second)),
        };
        let server = spec.sampler.as_ref().map(|_| ServerReport {
            before: result.server_before.clone(),
            after: result.server_after.clone(),
            samples: result
                .samples
                .iter()
                .map(|(t, s)| TimedSample {
                    t_s: t.as_secs_f64(),
                    sample: s.clone(),
                })
                .collect(),
            peak_rss_bytes: result.peak_rss_bytes(),
            cpu_seconds_used: result.cpu_seconds_used(),
            cpu_seconds_per_ok_request: result.cpu_seconds_per_ok_request(),
        });
        Report {
            version: version.into(),
            machine,
            spec: SpecReport {
                target: target.into(),
                workload: spec.workload.to_string(),
                distribution: spec.chooser.describe(),
                tenants: spec.chooser.n(),
                pace,
                connections: spec.pace.connections(),
                rate_per_second: rate,
                duration_s: spec.duration.as_secs_f64(),
                max_requests: spec.max_requests,
                threads: spec.threads,
                seed: spec.seed,
            },
            result: ResultReport {
                elapsed_s: result.elapsed.as_secs_f64(),
                requests: result.requests,
                ok: result.ok,
                sql_errors: result.sql_errors,
                non_2xx: result.non_2xx(),
                errors: result.errors,
                statuses: result
                    .statuses
                    .iter()
                    .map(|(s, n)| (s.to_string(), *n))
                    .collect(),
                rps_ok: result.rps_ok(),
                latency: result.latency.summary(),
                latency_by_op: result
                    .latency_by_op
                    .iter()
                    .map(|(k, h)| (k.clone(), h.summary()))
                    .collect(),
                intended: result.intended,
                sent_late: result.sent_late,
                unsent: result.unsent,
            },
            server,
        }
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serialises")
    }

    /// A few lines for a terminal.
    pub fn to_text(&self) -> String {
        let (s, r) = (&self.spec, &self.result);
        let mut t = String::new();
        let pace = match s.rate_per_second {
            Some(rate) => format!(
                "open loop at {rate} req/s over {} connections",
                s.connections
            ),
            None => format!("closed loop, {} connections", s.connections),
        };
        let _ = writeln!(
            t,
            "{} against {} ({}), {pace}, {} thread(s)",
            s.workload, s.target, s.distribution, s.threads
        );
        let _ = writeln!(
            t,
            "{} requests in {:.2} s: {} ok ({:.0}/s), {} non-2xx, {} SQL errors, {} errors",
            r.requests, r.elapsed_s, r.ok, r.rps_ok, r.non_2xx, r.sql_errors, r.errors
        );
        let line = |l: &LatencySummary| {
            let ms = |us: u64| us as f64 / 1000.0;
            format!(
                "p50 {:.2} ms  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  mean {:.2}",
                ms(l.p50_us),
                ms(l.p90_us),
                ms(l.p99_us),
                ms(l.p999_us),
                ms(l.max_us),
                l.mean_us / 1000.0
            )
        };
        let _ = writeln!(t, "latency  {}", line(&r.latency));
        for (op, l) in &r.latency_by_op {
            let _ = writeln!(t, "  {op:<9} {} ({} answers)", line(l), l.count);
        }
        if let Some(intended) = r.intended {
            let _ = writeln!(
                t,
                "open loop: {intended} intended, {} sent late, {} never sent",
                r.sent_late, r.unsent
            );
        }
        if let Some(server) = &self.server {
            let mb = |b: u64| b as f64 / 1_048_576.0;
            let before = server.before.as_ref();
            let after = server.after.as_ref();
            let _ = write!(
                t,
                "server: peak RSS {:.1} MiB",
                server.peak_rss_bytes.map_or(0.0, mb)
            );
            if let Some(cpu) = server.cpu_seconds_used {
                let _ = write!(t, ", {cpu:.2} CPU s");
            }
            if let Some(per) = server.cpu_seconds_per_ok_request {
                let _ = write!(t, " ({:.1} µs per ok request)", per * 1e6);
            }
            if let Some(fds) = after.and_then(|a| a.fds) {
                let _ = write!(t, ", {fds} fds");
            }
            if let Some(open) = server
                .samples
                .iter()
                .filter_map(|s| s.sample.open_tenants)
                .max()
            {
                let _ = write!(t, ", up to {open} open tenants");
            }
            if let (Some(b), Some(a)) = (
                before.and_then(|b| b.disk_bytes),
                after.and_then(|a| a.disk_bytes),
            ) {
                let _ = write!(t, ", disk {:.1} → {:.1} MiB", mb(b), mb(a));
            }
            t.push('\n');
        }
        let m = &self.machine;
        let _ = writeln!(
            t,
            "machine: {}, {} cores, {:.1} GiB RAM, kernel {}, {}; version {}",
            m.cpu_model,
            m.cores,
            m.ram_bytes as f64 / 1_073_741_824.0,
            m.kernel,
            m.filesystem,
            self.version
        );
        t
    }
}
