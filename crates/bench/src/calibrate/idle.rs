//! Idle cost: RSS and file descriptors of a server with 0 tenants, with N idle tenant files,
//! and after every one of the N was opened once and the idle TTL closed them again. The seed's
//! premise is that the last two equal the first: an idle tenant costs 0 bytes and 0 fds.

use std::time::Duration;

use loadgen::workload::Workload;
use loadgen::zipf::Chooser;
use loadgen::Pace;
use serde_json::json;

use super::{human_bytes, Context, Outcome, Start};

/// Idle TTL the scenario's servers run with, so "waiting out the TTL" takes seconds.
const IDLE_TTL: &str = "1s";
/// How long the server settles after start before a sample.
const SETTLE: Duration = Duration::from_millis(500);

/// Sizes of the scenario.
#[derive(Debug, Clone, Copy)]
pub struct Idle {
    /// Idle tenant files.
    pub tenants: u64,
}

/// One server state and what it cost.
#[derive(Debug, Clone, Copy, serde::Serialize)]
struct Point {
    rss_bytes: u64,
    fds: u64,
}

fn point(s: &loadgen::sample::ServerSample) -> Point {
    Point {
        rss_bytes: s.rss_bytes,
        fds: s.fds.unwrap_or(0),
    }
}

/// Runs the scenario. Errors: a server that does not start, or tenants that never close.
pub fn run(ctx: &Context, p: Idle) -> anyhow::Result<Outcome> {
    let args = ["--idle-ttl", IDLE_TTL];
    let empty = ctx.start(Start {
        tenants: 0,
        kv_schema: false,
        args: &args,
    })?;
    std::thread::sleep(SETTLE);
    let zero = point(&empty.sample()?);
    empty.stop()?;

    let full = ctx.start(Start {
        tenants: p.tenants,
        kv_schema: false,
        args: &args,
    })?;
    std::thread::sleep(SETTLE);
    let idle = point(&full.sample()?);
    // Touch every tenant once: each SQL read opens the tenant's file.
    let mut spec = ctx.spec(
        &full,
        Workload::SqlPing,
        Chooser::sequential(p.tenants)?,
        Pace::Closed { concurrency: 32 },
        Duration::from_secs(600),
    );
    spec.max_requests = Some(p.tenants);
    let touch = ctx.drive("idle: touch every tenant", &spec)?;
    let touched = point(&full.sample()?);
    let waited = full.wait_all_closed(Duration::from_secs(60))?;
    std::thread::sleep(SETTLE);
    let after = point(&full.sample()?);
    full.stop()?;

    let n = p.tenants.max(1) as f64;
    let per_idle_file = (idle.rss_bytes as f64 - zero.rss_bytes as f64) / n;
    let per_touched = (after.rss_bytes as f64 - zero.rss_bytes as f64) / n;
    let mut out = Outcome::new("idle");
    // The model's field takes the conservative one: after every tenant was opened and closed.
    out.workload_field(
        "ram_mb_per_idle_tenant",
        (per_touched / 1e6).max(0.0),
        format!(
            "(RSS after touching {} tenants and idling − RSS with 0 tenants) / {}",
            p.tenants, p.tenants
        ),
    );
    out.summary = vec![
        format!(
            "0 tenants: RSS {}, {} fds",
            human_bytes(zero.rss_bytes as f64),
            zero.fds
        ),
        format!(
            "{} idle tenant files: RSS {} ({:+.1} B per tenant), {} fds",
            p.tenants,
            human_bytes(idle.rss_bytes as f64),
            per_idle_file,
            idle.fds
        ),
        format!(
            "after opening all {} once ({} answered) and {:.1} s idle: RSS {} ({:+.1} B per tenant), {} fds (peak while open: {} fds)",
            p.tenants,
            touch.ok,
            waited.as_secs_f64(),
            human_bytes(after.rss_bytes as f64),
            per_touched,
            after.fds,
            touched.fds
        ),
    ];
    out.raw = json!({
        "tenants": p.tenants,
        "zero": zero,
        "idle_files": idle,
        "touched": touched,
        "after_idle": after,
        "touch_ok": touch.ok,
        "touch_requests": touch.requests,
        "idle_wait_seconds": waited.as_secs_f64(),
        "bytes_per_idle_file": per_idle_file,
        "bytes_per_tenant_after_idle": per_touched,
        "fds_per_idle_tenant": (after.fds as f64 - zero.fds as f64) / n,
    });
    Ok(out)
}
