//! CPU per request, warm and cold, per workload, in the context's durability mode: the
//! server's own CPU seconds (from /proc, so the load generator's CPU is not counted) over the
//! requests it answered with a 2xx. Warm: a few tenants that stay open. Cold: many tenants,
//! uniform, with an open cap so small that almost every request finds its tenant closed. The
//! tenant opens each run caused (`tenantd_tenant_opens_total`) give the cold fraction actually
//! seen, and the extra CPU of a cold request is the difference over the difference in cold
//! fraction. Webhook runs wait until the log's backlog is applied before reading the CPU, so
//! the batched apply is counted; their durable syncs per request come from the log's counter.

use std::time::Duration;

use loadgen::workload::Workload;
use loadgen::zipf::Chooser;
use loadgen::Pace;
use serde_json::json;

use super::{human_seconds, mode_name, Context, Outcome, Running, Start};

/// Tenants of the warm runs (all stay open).
const WARM_TENANTS: u64 = 32;
/// Tenants of the cold runs, and the open cap that makes them cold.
const COLD_TENANTS: u64 = 4_000;
const COLD_MAX_OPEN: &str = "8";
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
    /// Tenant opens per 2xx (the cold fraction seen).
    pub opens_per_request: f64,
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
        let d_cold = self.cold.opens_per_request - self.warm.opens_per_request;
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

/// One measured run of `workload` uniform over `tenants` (after a short warm-up run).
pub(crate) fn measure(
    ctx: &Context,
    running: &Running,
    label: &str,
    workload: Workload,
    tenants: u64,
    duration: Duration,
) -> anyhow::Result<(Cost, loadgen::RunResult)> {
    measure_with(
        ctx,
        running,
        label,
        workload,
        Chooser::uniform(tenants)?,
        duration,
    )
}

/// One measured run of `workload` with tenants drawn by `chooser` (after a short warm-up run).
pub(crate) fn measure_with(
    ctx: &Context,
    running: &Running,
    label: &str,
    workload: Workload,
    chooser: Chooser,
    duration: Duration,
) -> anyhow::Result<(Cost, loadgen::RunResult)> {
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
        WARM_TENANTS,
        duration,
    )?;
    warm_server.stop()?;
    let cold_server = ctx.start(Start {
        tenants: COLD_TENANTS,
        kv_schema: kv,
        args: &["--max-open", COLD_MAX_OPEN, "--idle-ttl", "1s"],
    })?;
    let (cold, _) = measure(
        ctx,
        &cold_server,
        &format!("cpu: {workload} cold"),
        workload,
        COLD_TENANTS,
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
                "extra server CPU per tenant open, {w}, {COLD_TENANTS} tenants with {COLD_MAX_OPEN} open at most, {mode} mode"
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
                "{w} {kind} ({mode}): {} CPU per request, {:.2} opens per request, {:.0} ok/s, p50 {:.2} ms, p99 {:.2} ms",
                human_seconds(c.cpu_seconds_per_request),
                c.opens_per_request,
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

    fn cost(cpu: f64, opens: f64) -> Cost {
        Cost {
            ok: 1,
            ok_per_second: 1.0,
            cpu_seconds_per_request: cpu,
            opens_per_request: opens,
            log_syncs_per_request: 0.0,
            p50_us: 0,
            p99_us: 0,
        }
    }

    #[test]
    fn cold_extra_is_the_cpu_difference_over_the_cold_fraction_difference() {
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
