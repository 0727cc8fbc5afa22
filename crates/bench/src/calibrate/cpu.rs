//! CPU per request, warm and cold, per workload, in the context's durability mode: the
//! server's own CPU seconds (from /proc, so the load generator's CPU is not counted) over the
//! requests it answered with a 2xx. Warm: a few tenants that stay open. Cold: many tenants,
//! uniform, with an open cap so small that almost every request finds its tenant closed.
//!
//! The extra CPU of a cold request is the CPU difference over the difference in the cold
//! fraction the capacity model gives for each run's tenants, rate, open cap and idle TTL (the
//! same formula the model then applies, so the two agree by construction). For SQL requests
//! that fraction equals the tenant opens seen per request (`tenantd_tenant_opens_total`); for
//! webhooks the opens are fewer (the batched apply opens a tenant once for all its pending
//! records), so the cost per cold webhook already includes what batching saves. Webhook runs
//! wait until the log's backlog is applied before reading the CPU, so the apply is counted;
//! their durable syncs per request come from the log's counter.

use std::time::Duration;

use loadgen::workload::Workload;
use loadgen::zipf::Chooser;
use loadgen::Pace;
use serde_json::json;

use super::{human_seconds, mode_name, Context, Outcome, Running, Start};

/// Tenants of the warm runs (all stay open).
pub const WARM_TENANTS: u64 = 32;
/// Tenants of the cold runs, and the open cap and idle TTL that make them cold.
pub const COLD_TENANTS: u64 = 2_000;
const COLD_MAX_OPEN: u64 = 8;
const COLD_IDLE_TTL_SECONDS: u64 = 1;
/// Connections of every run.
const CONCURRENCY: usize = 16;

/// Sizes of the scenario.
#[derive(Debug, Clone)]
pub struct Cpu {
    /// Workloads to measure; the first one feeds the profile's CPU fields.
    pub workloads: Vec<Workload>,
    /// Load time per run (warm and cold each).
    pub duration: Duration,
}

/// One run's cost.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Cost {
    /// Requests answered 2xx.
    pub ok: u64,
    /// 2xx per second.
    pub ok_per_second: f64,
    /// Server CPU seconds per 2xx.
    pub cpu_seconds_per_request: f64,
    /// Tenant opens per 2xx (the cold fraction seen, for SQL).
    pub opens_per_request: f64,
    /// The cold fraction the capacity model gives for this run's tenants, rate, cap and TTL.
    pub model_cold_fraction: f64,
    /// Durable syncs of the ingest log per 2xx.
    pub log_syncs_per_request: f64,
    /// Latency (µs): median and 99th percentile.
    pub p50_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
}

/// Warm and cold costs of one workload.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Pair {
    /// Warm run.
    pub warm: Cost,
    /// Cold run.
    pub cold: Cost,
}

impl Pair {
    /// Extra CPU seconds of a request whose tenant is closed.
    pub fn cold_extra_cpu_seconds(&self) -> f64 {
        let d_cold = self.cold.model_cold_fraction - self.warm.model_cold_fraction;
        if d_cold <= 0.05 {
            return 0.0;
        }
        ((self.cold.cpu_seconds_per_request - self.warm.cpu_seconds_per_request) / d_cold).max(0.0)
    }
}

fn counters(r: &Running) -> anyhow::Result<(f64, f64, f64)> {
    Ok((
        r.sample()?.cpu_seconds,
        r.metric("tenantd_tenant_opens_total")?,
        r.metric("tenantd_ingest_log_fsyncs_total")?,
    ))
}

/// Waits until every logged webhook is applied (at most `timeout`).
fn drain(r: &Running, timeout: Duration) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    while r.metric("tenantd_ingest_unapplied_records")? > 0.0 {
        if started.elapsed() > timeout {
            anyhow::bail!("the ingest backlog was not applied within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// The pool settings a run's server has, for the model's cold fraction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pool {
    pub max_open: u64,
    pub idle_ttl_seconds: u64,
}

/// The server's defaults (`tenantd serve` without flags).
pub(crate) const DEFAULT_POOL: Pool = Pool {
    max_open: store::config::DEFAULT_MAX_OPEN as u64,
    idle_ttl_seconds: store::config::DEFAULT_IDLE_TTL.as_secs(),
};

/// One measured run of `workload` uniform over `tenants` (after a short warm-up run).
pub(crate) fn measure(
    ctx: &Context,
    running: &Running,
    label: &str,
    workload: Workload,
    (tenants, pool): (u64, Pool),
    duration: Duration,
) -> anyhow::Result<(Cost, loadgen::RunResult)> {
    measure_with(
        ctx,
        running,
        label,
        workload,
        (Chooser::uniform(tenants)?, 0.0, pool),
        duration,
    )
}

/// One measured run of `workload` with tenants drawn by `chooser` (Zipf exponent `skew`, 0 =
/// uniform) from a server with `pool` settings (after a short warm-up run).
pub(crate) fn measure_with(
    ctx: &Context,
    running: &Running,
    label: &str,
    workload: Workload,
    (chooser, skew, pool): (Chooser, f64, Pool),
    duration: Duration,
) -> anyhow::Result<(Cost, loadgen::RunResult)> {
    let tenants = chooser.n();
    let pace = Pace::Closed {
        concurrency: CONCURRENCY,
    };
    let warmup = ctx.spec(
        running,
        workload,
        chooser.clone(),
        pace,
        Duration::from_millis(500),
    );
    ctx.drive(&format!("{label} (warm-up)"), &warmup)?;
    drain(running, Duration::from_secs(60))?;
    let (cpu0, opens0, syncs0) = counters(running)?;
    let spec = ctx.spec(running, workload, chooser, pace, duration);
    let r = ctx.drive(label, &spec)?;
    drain(running, Duration::from_secs(60))?;
    let (cpu1, opens1, syncs1) = counters(running)?;
    let ok = r.ok as f64;
    let lat = r.latency.summary();
    Ok((
        Cost {
            ok: r.ok,
            ok_per_second: r.rps_ok(),
            cpu_seconds_per_request: (cpu1 - cpu0) / ok,
            opens_per_request: (opens1 - opens0) / ok,
            model_cold_fraction: capacity::cold::cold_fraction(
                tenants as f64,
                r.rps_ok(),
                skew,
                pool.max_open as f64,
                pool.idle_ttl_seconds as f64,
            ),
            log_syncs_per_request: (syncs1 - syncs0) / ok,
            p50_us: lat.p50_us,
            p99_us: lat.p99_us,
        },
        r,
    ))
}

/// Warm and cold costs of one workload, each on a fresh server.
pub(crate) fn pair(ctx: &Context, workload: Workload, duration: Duration) -> anyhow::Result<Pair> {
    let kv = workload.needs_sql_schema();
    let warm_server = ctx.start(Start {
        tenants: WARM_TENANTS,
        kv_schema: kv,
        args: &[],
    })?;
    let (warm, _) = measure(
        ctx,
        &warm_server,
        &format!("cpu: {workload} warm"),
        workload,
        (WARM_TENANTS, DEFAULT_POOL),
        duration,
    )?;
    warm_server.stop()?;
    let (cap, ttl) = (
        COLD_MAX_OPEN.to_string(),
        format!("{COLD_IDLE_TTL_SECONDS}s"),
    );
    let cold_server = ctx.start(Start {
        tenants: COLD_TENANTS,
        kv_schema: kv,
        args: &["--max-open", &cap, "--idle-ttl", &ttl],
    })?;
    let pool = Pool {
        max_open: COLD_MAX_OPEN,
        idle_ttl_seconds: COLD_IDLE_TTL_SECONDS,
    };
    let (cold, _) = measure(
        ctx,
        &cold_server,
        &format!("cpu: {workload} cold"),
        workload,
        (COLD_TENANTS, pool),
        duration,
    )?;
    cold_server.stop()?;
    Ok(Pair { warm, cold })
}

/// Runs the scenario. Errors: a server that does not start, a run with no 2xx.
pub fn run(ctx: &Context, p: &Cpu) -> anyhow::Result<Outcome> {
    let mode = mode_name(ctx.durability);
    let mut pairs = Vec::new();
    for &w in &p.workloads {
        pairs.push((w, pair(ctx, w, p.duration)?));
    }
    let mut out = Outcome::new("cpu");
    if let Some((w, first)) = pairs.first() {
        out.workload_field(
            "cpu_seconds_per_request",
            first.warm.cpu_seconds_per_request,
            format!("server CPU per 2xx, {w}, {WARM_TENANTS} open tenants, {mode} mode"),
        );
        out.workload_field(
            "cold_cpu_seconds_per_request",
            first.cold_extra_cpu_seconds(),
            format!(
                "extra server CPU per cold request, {w}, {COLD_TENANTS} tenants with {COLD_MAX_OPEN} open at most, {mode} mode"
            ),
        );
        if *w == Workload::Webhook {
            out.workload_field(
                "syncs_per_request",
                first.warm.log_syncs_per_request,
                format!(
                    "ingest log fdatasyncs per acknowledged webhook (group commit), {mode} mode"
                ),
            );
        }
    }
    for (w, pair) in &pairs {
        for (kind, c) in [("warm", pair.warm), ("cold", pair.cold)] {
            out.summary.push(format!(
                "{w} {kind} ({mode}): {} CPU per request, {:.2} opens per request ({:.2} cold by the model), {:.0} ok/s, p50 {:.2} ms, p99 {:.2} ms",
                human_seconds(c.cpu_seconds_per_request),
                c.opens_per_request,
                c.model_cold_fraction,
                c.ok_per_second,
                c.p50_us as f64 / 1e3,
                c.p99_us as f64 / 1e3
            ));
        }
        out.summary.push(format!(
            "{w} ({mode}): a cold request costs {} more CPU",
            human_seconds(pair.cold_extra_cpu_seconds())
        ));
    }
    out.raw = json!({
        "durability": mode,
        "duration_seconds": p.duration.as_secs_f64(),
        "concurrency": CONCURRENCY,
        "warm_tenants": WARM_TENANTS,
        "cold_tenants": COLD_TENANTS,
        "cold_max_open": COLD_MAX_OPEN,
        "workloads": pairs.iter().map(|(w, p)| json!({
            "workload": w.to_string(),
            "warm": p.warm,
            "cold": p.cold,
            "cold_extra_cpu_seconds": p.cold_extra_cpu_seconds(),
        })).collect::<Vec<_>>(),
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(cpu: f64, cold: f64) -> Cost {
        Cost {
            model_cold_fraction: cold,
            ok: 1,
            ok_per_second: 1.0,
            cpu_seconds_per_request: cpu,
            opens_per_request: 0.0,
            log_syncs_per_request: 0.0,
            p50_us: 0,
            p99_us: 0,
        }
    }

    #[test]
    fn cold_extra_is_the_cpu_difference_over_the_model_cold_fraction_difference() {
        let p = Pair {
            warm: cost(40e-6, 0.0),
            cold: cost(220e-6, 0.9),
        };
        assert!((p.cold_extra_cpu_seconds() - 200e-6).abs() < 1e-12);
    }

    #[test]
    fn no_cold_difference_means_no_cold_cost() {
        let p = Pair {
            warm: cost(40e-6, 0.5),
            cold: cost(90e-6, 0.52),
        };
        assert_eq!(p.cold_extra_cpu_seconds(), 0.0);
        let cheaper = Pair {
            warm: cost(40e-6, 0.0),
            cold: cost(30e-6, 1.0),
        };
        assert_eq!(cheaper.cold_extra_cpu_seconds(), 0.0);
    }
}
