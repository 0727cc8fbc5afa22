//! Memory per in-flight operation: peak RSS of a fresh server driven at concurrency C over C
//! distinct tenants (every connection its own tenant, so every operation holds an open
//! tenant), for several C. The least-squares slope of peak RSS over C is the RAM one more
//! in-flight operation costs (the seed assumes 1.5 MB); the intercept is the server's base.

use std::time::Duration;

use loadgen::workload::Workload;
use loadgen::zipf::Chooser;
use loadgen::Pace;
use serde_json::json;

use super::{fit, human_bytes, Context, Outcome, Start};

/// Sizes of the scenario.
#[derive(Debug, Clone)]
pub struct Inflight {
    /// Concurrency levels (each gets a fresh server with that many tenants).
    pub levels: Vec<usize>,
    /// Load time per level.
    pub duration: Duration,
    /// The operation held in flight.
    pub workload: Workload,
}

#[derive(Debug, Clone, serde::Serialize)]
struct Level {
    concurrency: usize,
    rss_before_bytes: u64,
    peak_rss_bytes: u64,
    max_open_tenants: Option<u64>,
    max_fds: Option<u64>,
    ok_per_second: f64,
    p99_us: u64,
    cgroup_peak_bytes: Option<u64>,
    cgroup_throttled_periods: Option<u64>,
}

/// Runs the scenario. Errors: a server that does not start, a level with no 2xx.
pub fn run(ctx: &Context, p: &Inflight) -> anyhow::Result<Outcome> {
    let mut levels = Vec::new();
    for &c in &p.levels {
        // The pool's open cap must not be what limits the level.
        let cap = (c + 16).to_string();
        let args = ["--max-open", cap.as_str()];
        let running = ctx.start(Start {
            tenants: c as u64,
            kv_schema: p.workload.needs_sql_schema(),
            args: &args,
        })?;
        let before = running.sample()?;
        let spec = ctx.spec(
            &running,
            p.workload,
            Chooser::sequential(c as u64)?,
            Pace::Closed { concurrency: c },
            p.duration,
        );
        let r = ctx.drive(&format!("inflight: concurrency {c}"), &spec)?;
        let after = running.sample()?;
        levels.push(Level {
            concurrency: c,
            rss_before_bytes: before.rss_bytes,
            peak_rss_bytes: after
                .peak_rss_bytes
                .or(r.peak_rss_bytes())
                .unwrap_or(after.rss_bytes),
            max_open_tenants: r.samples.iter().filter_map(|(_, s)| s.open_tenants).max(),
            max_fds: r.samples.iter().filter_map(|(_, s)| s.fds).max(),
            ok_per_second: r.rps_ok(),
            p99_us: r.latency.summary().p99_us,
            cgroup_peak_bytes: running.cgroup_peak_bytes(),
            cgroup_throttled_periods: running.cgroup_throttled_periods(),
        });
        running.stop()?;
    }
    let points: Vec<(f64, f64)> = levels
        .iter()
        .map(|l| {
            (
                l.concurrency as f64,
                l.peak_rss_bytes.saturating_sub(l.rss_before_bytes) as f64,
            )
        })
        .collect();
    let line = fit::line(&points)
        .ok_or_else(|| anyhow::anyhow!("inflight needs at least two concurrency levels"))?;
    let mut out = Outcome::new("inflight");
    out.workload_field(
        "ram_mb_per_in_flight_op",
        (line.slope / 1e6).max(0.0),
        format!(
            "slope of peak RSS over concurrency {:?} ({}, one tenant per connection, r² {:.2})",
            p.levels, p.workload, line.r2
        ),
    );
    out.summary = levels
        .iter()
        .map(|l| {
            format!(
                "concurrency {:>5}: peak RSS {} (+{} over start), {} open tenants at most, {:.0} ok/s, p99 {:.1} ms",
                l.concurrency,
                human_bytes(l.peak_rss_bytes as f64),
                human_bytes(l.peak_rss_bytes.saturating_sub(l.rss_before_bytes) as f64),
                l.max_open_tenants.map_or("?".into(), |n| n.to_string()),
                l.ok_per_second,
                l.p99_us as f64 / 1e3
            )
        })
        .collect();
    out.summary.push(format!(
        "RAM per in-flight {}: {} (seed: 1.5 MB); fixed part {}",
        p.workload,
        human_bytes(line.slope),
        human_bytes(line.intercept)
    ));
    out.raw = json!({
        "workload": p.workload.to_string(),
        "duration_seconds": p.duration.as_secs_f64(),
        "levels": levels,
        "fit": line,
    });
    Ok(out)
}
