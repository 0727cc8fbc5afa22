//! Request metrics and admission control, in one middleware, and the Prometheus text renderer.
//!
//! Every request passes `track`: it is refused with 503 when `max_in_flight` requests are
//! already running (health, readiness and metrics are exempt), then timed into a latency
//! histogram keyed by route template and status; rejections are counted by their error code.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;

use crate::error::{ApiError, RejectReason};
use crate::state::AppState;

/// Upper bounds of the latency histogram buckets, seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Request metrics (the pool keeps its own in `store::stats`).
#[derive(Default)]
pub struct Metrics {
    in_flight: AtomicUsize,
    rejects: Mutex<BTreeMap<&'static str, u64>>,
    latency: Mutex<BTreeMap<(String, u16), Histogram>>,
}

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += secs;
    }
}

impl Metrics {
    /// Requests being handled right now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    fn count_reject(&self, reason: &'static str) {
        *self.rejects.lock().entry(reason).or_default() += 1;
    }
}

struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Admission control + metrics middleware.
pub async fn track(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let exempt = matches!(route.as_str(), "/healthz" | "/readyz" | "/metrics");
    let started = Instant::now();
    let before = st.metrics.in_flight.fetch_add(1, Ordering::AcqRel);
    let _guard = InFlight(&st.metrics.in_flight);
    let resp = if !exempt && before >= st.http.max_in_flight {
        ApiError::Overloaded("too many requests in flight").into_response()
    } else {
        next.run(req).await
    };
    if let Some(RejectReason(code)) = resp.extensions().get::<RejectReason>() {
        st.metrics.count_reject(code);
    }
    let status = resp.status().as_u16();
    st.metrics
        .latency
        .lock()
        .entry((route, status))
        .or_default()
        .observe(started.elapsed().as_secs_f64());
    resp
}

/// Appends one unlabelled sample with its HELP and TYPE lines (Prometheus text format).
pub fn sample(out: &mut String, name: &str, help: &str, kind: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// The backup's counters (only when a backup is configured).
fn render_backup(out: &mut String, b: &backup::BackupStats, s: &backup::log_ship::ShipStats) {
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let now = backup::worker::now_ms();
    let through = load(&b.backed_up_through_ms);
    let lag_s = if through == 0 {
        0
    } else {
        now.saturating_sub(through) / 1000
    };
    for (name, help, kind, v) in [
        ("tenantd_backup_uploads_total", "Tenant snapshots uploaded.", "counter", load(&b.uploads)),
        ("tenantd_backup_uploaded_bytes_total", "Bytes uploaded (compressed).", "counter", load(&b.uploaded_bytes)),
        ("tenantd_backup_snapshot_bytes_total", "Bytes of the uploaded snapshots before compression.", "counter", load(&b.snapshot_bytes)),
        ("tenantd_backup_failures_total", "Tenant snapshots that failed (retried the next round).", "counter", load(&b.failures)),
        ("tenantd_backup_rounds_total", "Backup rounds finished.", "counter", load(&b.rounds)),
        ("tenantd_backup_pending_tenants", "Changed tenants waiting for the next backup round.", "gauge", load(&b.pending)),
        ("tenantd_backup_log_chunks_total", "Chunks of the ingest log shipped.", "counter", load(&s.chunks)),
        ("tenantd_backup_log_records_total", "Acknowledged webhooks shipped with the log.", "counter", load(&s.records)),
        ("tenantd_backup_log_shipped_lsn", "The last log record in the bucket.", "gauge", load(&s.shipped_lsn)),
        ("tenantd_backup_log_failures_total", "Log shipments that failed (retried).", "counter", load(&s.failures)),
        ("tenantd_backup_log_hold_dropped_total", "Times the unshipped log passed its cap and was released unshipped.", "counter", load(&s.hold_dropped)),
        ("tenantd_backup_lag_seconds", "Seconds since the start of the last backup round that finished without a failure (every change before it is in the bucket); 0 before the first.", "gauge", lag_s),
    ] {
        sample(out, name, help, kind, v);
    }
}

/// Renders every metric in the Prometheus text format.
pub fn render(st: &AppState) -> String {
    let p = st.pool.stats();
    let mut out = String::new();
    let mut gauge =
        |name: &str, help: &str, kind: &str, v: u64| sample(&mut out, name, help, kind, v);
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    gauge(
        "tenantd_open_tenants",
        "Tenant files open right now.",
        "gauge",
        p.open() as u64,
    );
    gauge(
        "tenantd_closing_tenants",
        "Tenants evicted whose files are still being closed.",
        "gauge",
        p.closing_tenants.load(Ordering::Relaxed) as u64,
    );
    gauge(
        "tenantd_in_flight_requests",
        "Requests being handled.",
        "gauge",
        st.metrics.in_flight() as u64,
    );
    gauge(
        "tenantd_tenant_opens_total",
        "Tenants opened.",
        "counter",
        load(&p.tenants_opened),
    );
    gauge(
        "tenantd_connections_opened_total",
        "SQLite connections opened.",
        "counter",
        load(&p.connections_opened),
    );
    gauge(
        "tenantd_evictions_total",
        "Tenants closed by the open cap (LRU).",
        "counter",
        load(&p.evictions),
    );
    gauge(
        "tenantd_open_waits_total",
        "Requests that waited for a place because every open tenant was in use (max_open).",
        "counter",
        load(&p.open_waits),
    );
    gauge(
        "tenantd_open_waiting",
        "Requests waiting right now for a place in the pool (max_open).",
        "gauge",
        p.open_waiting.load(Ordering::Relaxed) as u64,
    );
    gauge(
        "tenantd_idle_closes_total",
        "Tenants closed after the idle TTL.",
        "counter",
        load(&p.idle_closes),
    );
    gauge(
        "tenantd_checkpoints_total",
        "Background WAL checkpoints.",
        "counter",
        load(&p.checkpoints),
    );
    gauge(
        "tenantd_tidies_total",
        "Evicted tenants checkpointed later.",
        "counter",
        load(&p.tidies),
    );
    gauge(
        "tenantd_migration_runs_total",
        "Times the pool ran a tenant's pending migrations (successful or not).",
        "counter",
        load(&p.migration_runs),
    );
    gauge(
        "tenantd_migration_failures_total",
        "Tenant migrations that failed (the tenant then answers 503 without re-running them).",
        "counter",
        load(&p.migration_failures),
    );
    gauge(
        "tenantd_sqlite_memory_bytes",
        "Bytes allocated by SQLite.",
        "gauge",
        store::sys::sqlite_memory_used().max(0) as u64,
    );

    crate::ingest_metrics::render(&mut out, &st.inbox.stats());
    if let Some(b) = st.backup.get() {
        render_backup(&mut out, b.stats(), b.ship_stats());
    }
    crate::process_metrics::render(&mut out);

    let _ = writeln!(
        out,
        "# HELP tenantd_rejects_total Requests refused, by error code."
    );
    let _ = writeln!(out, "# TYPE tenantd_rejects_total counter");
    for (reason, n) in st.metrics.rejects.lock().iter() {
        let _ = writeln!(out, "tenantd_rejects_total{{reason=\"{reason}\"}} {n}");
    }

    let name = "tenantd_request_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Request latency by route template and status."
    );
    let _ = writeln!(out, "# TYPE {name} histogram");
    let latency = st.metrics.latency.lock().clone();
    for ((route, status), h) in latency {
        let labels = format!("route=\"{route}\",status=\"{status}\"");
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(h.counts) {
            cumulative += n;
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
    }
    out
}
