//! The ingest path's metrics (`store::inbox`): log, backlog, appliers, checkpoints.

use store::inbox::InboxStats;

use crate::metrics::sample;

/// Appends the ingest metrics to `out` in the Prometheus text format.
pub fn render(out: &mut String, s: &InboxStats) {
    let b = &s.backlog;
    let rows: [(&str, &str, &str, String); 20] = [
        (
            "tenantd_ingest_log_bytes",
            "Bytes of the ingest log's live segments.",
            "gauge",
            s.log_bytes.to_string(),
        ),
        (
            "tenantd_ingest_log_segments",
            "Live ingest log segments.",
            "gauge",
            s.log_segments.to_string(),
        ),
        (
            "tenantd_ingest_log_appends_total",
            "Records appended to the ingest log.",
            "counter",
            s.log.appends.to_string(),
        ),
        (
            "tenantd_ingest_log_failed_appends_total",
            "Appends that failed (nothing acknowledged).",
            "counter",
            s.log.failed_appends.to_string(),
        ),
        (
            "tenantd_ingest_log_batches_total",
            "Group commits (one write each).",
            "counter",
            s.log.batches.to_string(),
        ),
        (
            "tenantd_ingest_log_fsyncs_total",
            "fdatasync calls on the ingest log.",
            "counter",
            s.log.fsyncs.to_string(),
        ),
        (
            "tenantd_ingest_log_batch_records_max",
            "Most records in one group commit.",
            "gauge",
            s.log.max_batch_records.to_string(),
        ),
        (
            "tenantd_ingest_pending_records",
            "Acknowledged deliveries not yet in the catalog (the backlog).",
            "gauge",
            b.records.to_string(),
        ),
        (
            "tenantd_ingest_pending_bytes",
            "Bytes of the backlog.",
            "gauge",
            b.bytes.to_string(),
        ),
        (
            "tenantd_ingest_pending_tenants",
            "Tenants with a backlog.",
            "gauge",
            b.tenants.to_string(),
        ),
        (
            "tenantd_ingest_unapplied_records",
            "Acknowledged deliveries not yet in their tenant files.",
            "gauge",
            b.unapplied.to_string(),
        ),
        (
            "tenantd_ingest_apply_lag_seconds",
            "Age of the oldest acknowledged delivery not yet in its tenant file.",
            "gauge",
            format!("{:.3}", b.lag_secs),
        ),
        (
            "tenantd_ingest_applied_total",
            "Deliveries moved to tenant files and the catalog.",
            "counter",
            s.applied_records.to_string(),
        ),
        (
            "tenantd_ingest_apply_rounds_total",
            "Apply rounds.",
            "counter",
            s.apply_rounds.to_string(),
        ),
        (
            "tenantd_ingest_apply_round_tenants_max",
            "Most tenants applied in one round.",
            "gauge",
            s.max_round_tenants.to_string(),
        ),
        (
            "tenantd_ingest_apply_errors_total",
            "Tenant applies that failed (retried).",
            "counter",
            s.apply_errors.to_string(),
        ),
        (
            "tenantd_ingest_refused_total",
            "Deliveries refused with 503 because a backlog cap was reached.",
            "counter",
            s.refused_full.to_string(),
        ),
        (
            "tenantd_ingest_checkpoints_total",
            "Checkpoints (filesystem sync, then log release).",
            "counter",
            s.checkpoints.to_string(),
        ),
        (
            "tenantd_ingest_pruned_deliveries_total",
            "Delivery ids forgotten after the dedupe window.",
            "counter",
            s.pruned_deliveries.to_string(),
        ),
        (
            "tenantd_ingest_unclean_starts",
            "Unclean starts of this data directory so far (event id ranges used).",
            "gauge",
            s.generation.to_string(),
        ),
    ];
    for (name, help, kind, v) in rows {
        sample(out, name, help, kind, v);
    }
}
