//! Cold vs warm: the latency of SQL point reads when every tenant stays open (warm) and when
//! tenants are drawn from a larger set through the pool's open cap and idle TTL (cold), and the
//! cold fraction each (tenant count, skew) produced — next to the fraction the capacity model
//! predicts for the same inputs (`capacity::cold::cold_fraction`), so the model's formula is
//! checked against the server at every calibration.

use std::time::Duration;

use loadgen::workload::Workload;
use loadgen::zipf::Chooser;
use serde_json::json;

use super::cpu::{self, Cost};
use super::{mode_name, Context, Outcome, Start};

/// Open cap of the cold runs (smaller than the tenant counts, so some requests are cold).
pub const OPEN_CAP: u64 = 256;
/// Idle TTL of the cold runs, seconds (the server's default).
pub const IDLE_TTL_SECONDS: u64 = 10;

/// Sizes of the scenario.
#[derive(Debug, Clone)]
pub struct Cold {
    /// (tenants, Zipf exponent; 0 = uniform) per cold run.
    pub cases: Vec<(u64, f64)>,
    /// Load time per run.
    pub duration: Duration,
}

#[derive(Debug, Clone, serde::Serialize)]
struct Case {
    tenants: u64,
    skew: f64,
    cost: Cost,
}

/// Runs the scenario. Errors: a server that does not start, a run with no 2xx.
pub fn run(ctx: &Context, p: &Cold) -> anyhow::Result<Outcome> {
    let workload = Workload::SqlRead;
    let warm_server = ctx.start(Start {
        tenants: 32,
        kv_schema: true,
        args: &[],
    })?;
    let (warm, _) = cpu::measure(
        ctx,
        &warm_server,
        "cold: warm reads",
        workload,
        (32, cpu::DEFAULT_POOL),
        p.duration,
    )?;
    warm_server.stop()?;

    let cap = OPEN_CAP.to_string();
    let ttl = format!("{IDLE_TTL_SECONDS}s");
    let mut cases = Vec::new();
    for &(tenants, skew) in &p.cases {
        let running = ctx.start(Start {
            tenants,
            kv_schema: true,
            args: &["--max-open", cap.as_str(), "--idle-ttl", ttl.as_str()],
        })?;
        let chooser = if skew > 0.0 {
            Chooser::zipf(tenants, skew)?
        } else {
            Chooser::uniform(tenants)?
        };
        let pool = cpu::Pool {
            max_open: OPEN_CAP,
            idle_ttl_seconds: IDLE_TTL_SECONDS,
        };
        let (cost, _) = cpu::measure_with(
            ctx,
            &running,
            &format!("cold: {tenants} tenants, skew {skew}"),
            workload,
            (chooser, skew, pool),
            p.duration,
        )?;
        running.stop()?;
        cases.push(Case {
            tenants,
            skew,
            cost,
        });
    }

    // No profile field: the open cap and idle TTL are settings (the profile keeps the
    // server's defaults); this scenario checks the model's cold fraction against the server.
    let mut out = Outcome::new("cold");
    let mode = mode_name(ctx.durability);
    out.summary.push(format!(
        "warm SQL reads ({mode}, 32 open tenants): p50 {:.2} ms, p99 {:.2} ms, {:.0} ok/s",
        warm.p50_us as f64 / 1e3,
        warm.p99_us as f64 / 1e3,
        warm.ok_per_second
    ));
    for c in &cases {
        out.summary.push(format!(
            "{} tenants, skew {}: cold fraction {:.3} seen, {:.3} predicted by the model; p50 {:.2} ms, p99 {:.2} ms, {:.0} ok/s",
            c.tenants,
            c.skew,
            c.cost.opens_per_request,
            c.cost.model_cold_fraction,
            c.cost.p50_us as f64 / 1e3,
            c.cost.p99_us as f64 / 1e3,
            c.cost.ok_per_second
        ));
    }
    out.raw = json!({
        "durability": mode,
        "open_cap": OPEN_CAP,
        "idle_ttl_seconds": IDLE_TTL_SECONDS,
        "warm": warm,
        "cases": cases,
    });
    Ok(out)
}
