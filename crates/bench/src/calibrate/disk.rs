//! Disk: the bytes a tenant occupies when created (through the admin API, as a user would) and
//! per stored webhook event (after the server applied and checkpointed them), and the durable
//! syncs per second the data directory's disk completes (4 KiB write + fdatasync, one file,
//! one thread: what a commit in `fsync` mode waits for).

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use loadgen::workload::Workload;
use loadgen::zipf::Chooser;
use loadgen::Pace;
use serde_json::json;
use store::TenantId;

use super::{human_bytes, probe, Context, Outcome, Start};

/// Tenants created through the admin API to measure a new tenant's size.
const CREATED: u64 = 16;

/// Sizes of the scenario.
#[derive(Debug, Clone, Copy)]
pub struct Disk {
    /// Webhook events stored into one tenant.
    pub events: u64,
    /// Time spent measuring the sync rate.
    pub sync_for: Duration,
}

/// Bytes of a tenant's files (db, -wal, -shm), apparent size.
fn tenant_bytes(data: &Path, id: &TenantId) -> u64 {
    let db = store::layout::tenant_path(data, id);
    let mut paths = vec![db.clone()];
    paths.extend(store::layout::companion_paths(&db));
    paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// fdatasyncs per second of a 4 KiB rewrite of one file in `dir`, for about `for_`.
pub fn sync_rate(dir: &Path, for_: Duration) -> anyhow::Result<f64> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(".tenantd-sync-probe");
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)?;
    let block = [0x5au8; 4096];
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < for_ || n < 10 {
        f.seek(SeekFrom::Start(0))?;
        f.write_all(&block)?;
        f.sync_data()?;
        n += 1;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    drop(f);
    let _ = std::fs::remove_file(&path);
    Ok(rate)
}

/// Runs the scenario. Errors: a server that does not start, a create that is refused.
pub fn run(ctx: &Context, p: Disk) -> anyhow::Result<Outcome> {
    // A new tenant, created the way a user creates one.
    let empty = ctx.start(Start {
        tenants: 0,
        kv_schema: false,
        args: &[],
    })?;
    let ids: Vec<TenantId> = (0..CREATED)
        .map(|i| TenantId::parse(&format!("disk-probe-{i:03}")))
        .collect::<Result<_, _>>()?;
    for id in &ids {
        let path = format!("/admin/tenants/{id}");
        let (status, body) = probe::request(
            empty.server.addr,
            "PUT",
            &path,
            Some(super::ADMIN_TOKEN),
            "{}",
        )?;
        if !(200..300).contains(&status) {
            anyhow::bail!("PUT {path} answered {status}: {body}");
        }
    }
    let created: u64 = empty.stop_then(|data| ids.iter().map(|id| tenant_bytes(data, id)).sum())?;
    let per_tenant = created as f64 / CREATED as f64;

    // Events stored into one tenant, applied and checkpointed by a clean stop.
    let one = ctx.start(Start {
        tenants: 1,
        kv_schema: false,
        args: &[],
    })?;
    let tenant = TenantId::parse(&format!(
        "{}{:0w$}",
        crate::names::DEFAULT_PREFIX,
        0,
        w = crate::names::DEFAULT_WIDTH as usize
    ))?;
    let before = tenant_bytes(&one.server.data_dir, &tenant);
    let mut spec = ctx.spec(
        &one,
        Workload::Webhook,
        Chooser::uniform(1)?,
        Pace::Closed { concurrency: 8 },
        Duration::from_secs(120),
    );
    spec.max_requests = Some(p.events);
    let r = ctx.drive("disk: store events", &spec)?;
    let after = one.stop_then(|data| tenant_bytes(data, &tenant))?;
    let per_event = after.saturating_sub(before) as f64 / r.ok.max(1) as f64;

    let syncs = sync_rate(&ctx.scratch, p.sync_for)?;

    let mut out = Outcome::new("disk");
    out.workload_field(
        "tenant_create_mb",
        per_tenant / 1e6,
        format!("files of {CREATED} tenants created with PUT /admin/tenants/{{id}}"),
    );
    out.machine_field(
        "disk_sync_ops_per_second",
        syncs,
        format!(
            "4 KiB write + fdatasync of one file in {}, one thread",
            ctx.scratch.display()
        ),
    );
    out.summary = vec![
        format!(
            "a new tenant: {} on disk (db, -wal, -shm)",
            human_bytes(per_tenant)
        ),
        format!(
            "a stored webhook event (~300-byte body): {} on disk ({} events, tenant file {} → {})",
            human_bytes(per_event),
            r.ok,
            human_bytes(before as f64),
            human_bytes(after as f64)
        ),
        format!(
            "10 MB per tenant per year (the seed) = {:.0} such events per day",
            10e6 / per_event.max(1.0) / 365.0
        ),
        format!("the data directory's disk: {syncs:.0} fdatasyncs per second"),
    ];
    out.raw = json!({
        "created_tenants": CREATED,
        "bytes_per_created_tenant": per_tenant,
        "events": r.ok,
        "tenant_bytes_before": before,
        "tenant_bytes_after": after,
        "bytes_per_event": per_event,
        "sync_ops_per_second": syncs,
        "sync_seconds": p.sync_for.as_secs_f64(),
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_rate_counts_real_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let rate = sync_rate(dir.path(), Duration::from_millis(50)).unwrap();
        assert!(rate > 0.0 && rate.is_finite(), "{rate}");
        assert!(!dir.path().join(".tenantd-sync-probe").exists());
    }
}
