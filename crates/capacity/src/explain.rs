//! `explain`: every formula of the model with the profile's numbers substituted. The results
//! are read from [`evaluate`] and [`economics`], never recomputed here, so the explanation
//! cannot drift from the figures the other commands print.

use serde::Serialize;

use crate::cold::ColdEstimate;
use crate::economics::economics;
use crate::limits::{evaluate, Constraint};
use crate::machine::MachineProfile;
use crate::units::{count, count_floor, percent, plural, sig, usd};
use crate::workload::WorkloadProfile;

/// One line of the derivation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// What is computed.
    pub label: String,
    /// The formula, in field names.
    pub formula: String,
    /// The formula with the numbers substituted.
    pub substituted: String,
    /// The result, with its unit.
    pub result: String,
}

fn step(label: &str, formula: &str, substituted: String, result: String) -> Step {
    Step {
        label: label.to_string(),
        formula: formula.to_string(),
        substituted,
        result,
    }
}

fn tenants(x: f64) -> String {
    format!("{} tenants", count_floor(x))
}

/// "Zipf(0) over 1,500 tenants at 1,500 req/s, open cap 1,024, idle TTL 10 s: T_c = 1.15 s".
fn cold_substituted(w: &WorkloadProfile, tenants: f64, rate: f64, e: &ColdEstimate) -> String {
    let characteristic = if e.characteristic_seconds.is_finite() {
        format!("T_c = {} s", sig(e.characteristic_seconds, 3))
    } else {
        "every tenant fits, T_c unbounded".to_string()
    };
    format!(
        "Zipf({}) over {} tenants at {} req/s, open cap {}, idle TTL {} s: {characteristic}, \
         open for {} s",
        sig(w.access_skew, 3),
        count(tenants),
        sig(tenants * rate, 6),
        count(w.open_tenants_max),
        sig(w.idle_ttl_seconds, 6),
        sig(e.open_seconds, 3),
    )
}

/// The Che step for one request rate at the verdict.
fn cold_step(label: &str, w: &WorkloadProfile, tenants: f64, rate: f64, rate_name: &str) -> Step {
    let e = w.cold_at(tenants, rate);
    step(
        label,
        &format!(
            "sum of p_i e^(-l_i min(T_c, idle_ttl_seconds)), with p_i = Zipf(access_skew) over \
             the tenants supported, l_i = p_i x tenants x {rate_name}, T_c: sum of \
             (1 - e^(-l_i T_c)) = open_tenants_max"
        ),
        cold_substituted(w, tenants, rate, &e),
        format!("{} of requests", percent(e.cold_fraction)),
    )
}

/// The derivation of the limits, the verdict and the economics of `machine` under `workload`.
pub fn explain(
    machine: &MachineProfile,
    workload: &WorkloadProfile,
    target_margin: f64,
) -> Vec<Step> {
    let (m, w) = (machine, workload);
    let c = evaluate(m, w);
    let e = economics(m, w, &c, target_margin);
    let n = |x: f64| sig(x, 6);
    let max = |k: Constraint| c.limit(k).max_tenants;
    let cold_at_limit =
        |k: Constraint| c.limit(k).cold_fraction.map_or("n/a".into(), |x| sig(x, 3));
    vec![
        step(
            "peak requests per tenant",
            "requests_per_tenant_per_day / 86,400 x peak_to_average_ratio",
            format!(
                "{} / 86,400 x {}",
                n(w.requests_per_tenant_per_day),
                n(w.peak_to_average_ratio)
            ),
            format!("{} req/s", n(w.peak_requests_per_second())),
        ),
        step(
            "peak concurrency per tenant (Little's law)",
            "peak requests per tenant x op_in_flight_seconds",
            format!(
                "{} x {}",
                n(w.peak_requests_per_second()),
                n(w.op_in_flight_seconds)
            ),
            format!("{} in flight", plural(w.peak_concurrency(), "operation")),
        ),
        step(
            Constraint::Storage.label(),
            "disk_gb / (tenant_create_mb + tenant_growth_mb_per_year x retention_years)",
            format!(
                "{} GB / ({} MB + {} MB x {})",
                n(m.disk_gb),
                n(w.tenant_create_mb),
                n(w.tenant_growth_mb_per_year),
                n(w.retention_years)
            ),
            tenants(max(Constraint::Storage)),
        ),
        step(
            Constraint::Memory.label(),
            "(ram_gb - os_reserve_gb) / (ram_mb_per_idle_tenant + peak concurrency x \
             ram_mb_per_in_flight_op)",
            format!(
                "({} GB - {} GB) / ({} MB + {} x {} MB)",
                n(m.ram_gb),
                n(m.os_reserve_gb),
                n(w.ram_mb_per_idle_tenant),
                n(w.peak_concurrency()),
                n(w.ram_mb_per_in_flight_op)
            ),
            tenants(max(Constraint::Memory)),
        ),
        step(
            Constraint::CpuPeak.label(),
            "vcpu / ((cpu_seconds_per_request + cold x cold_cpu_seconds_per_request) x peak \
             requests per tenant), cold = the cold fraction at that many tenants",
            format!(
                "{} / (({} + {} x {}) x {})",
                n(m.vcpu),
                n(w.cpu_seconds_per_request),
                cold_at_limit(Constraint::CpuPeak),
                n(w.cold_cpu_seconds_per_request),
                n(w.peak_requests_per_second())
            ),
            tenants(max(Constraint::CpuPeak)),
        ),
        step(
            Constraint::CpuSustained.label(),
            "vcpu x cpu_baseline_fraction / ((cpu_seconds_per_request + cold x \
             cold_cpu_seconds_per_request) x requests_per_tenant_per_day / 86,400)",
            format!(
                "{} x {} / (({} + {} x {}) x {})",
                n(m.vcpu),
                n(m.cpu_baseline_fraction),
                n(w.cpu_seconds_per_request),
                cold_at_limit(Constraint::CpuSustained),
                n(w.cold_cpu_seconds_per_request),
                n(w.average_requests_per_second())
            ),
            tenants(max(Constraint::CpuSustained)),
        ),
        step(
            Constraint::DiskSyncs.label(),
            "disk_sync_ops_per_second / (syncs_per_request x peak requests per tenant)",
            format!(
                "{} / ({} x {})",
                n(m.disk_sync_ops_per_second),
                n(w.syncs_per_request),
                n(w.peak_requests_per_second())
            ),
            tenants(max(Constraint::DiskSyncs)),
        ),
        step(
            Constraint::OpenFiles.label(),
            "open_files_max / ((3 + 2 x readers_per_tenant) x peak concurrency)",
            format!(
                "{} / ((3 + 2 x {}) x {})",
                n(m.open_files_max),
                n(w.readers_per_tenant),
                n(w.peak_concurrency())
            ),
            tenants(max(Constraint::OpenFiles)),
        ),
        step(
            "tenants supported",
            "floor(smallest limit x (1 - headroom_fraction))",
            format!(
                "floor({} x (1 - {}))   [{} binds]",
                n(c.max_tenants),
                n(w.headroom_fraction),
                c.binding.label()
            ),
            tenants(c.supported_tenants as f64),
        ),
        cold_step(
            "cold requests at peak (Che's approximation)",
            w,
            c.cold.tenants,
            w.peak_requests_per_second(),
            "peak requests per tenant",
        ),
        cold_step(
            "cold requests on average",
            w,
            c.cold.tenants,
            w.average_requests_per_second(),
            "requests_per_tenant_per_day / 86,400",
        ),
        step(
            "cost per tenant",
            "price_usd_per_month / tenants supported",
            format!(
                "{} / {}",
                usd(m.price_usd_per_month),
                count(c.supported_tenants as f64)
            ),
            e.cost_per_tenant_usd
                .map(|x| format!("{} per month", usd(x)))
                .unwrap_or_else(|| "n/a (no tenant fits)".into()),
        ),
        step(
            "gross margin",
            "(price_usd_per_tenant_month - cost per tenant) / price_usd_per_tenant_month",
            format!(
                "({} - {}) / {}",
                usd(w.price_usd_per_tenant_month),
                e.cost_per_tenant_usd
                    .map(usd)
                    .unwrap_or_else(|| "n/a".into()),
                usd(w.price_usd_per_tenant_month)
            ),
            e.gross_margin.map(percent).unwrap_or_else(|| "n/a".into()),
        ),
        step(
            "price for the target margin",
            "cost per tenant / (1 - target margin)",
            format!(
                "{} / (1 - {})",
                e.cost_per_tenant_usd
                    .map(usd)
                    .unwrap_or_else(|| "n/a".into()),
                n(target_margin)
            ),
            e.price_for_target_margin_usd
                .map(|x| format!("{} per tenant per month", usd(x)))
                .unwrap_or_else(|| "n/a".into()),
        ),
    ]
}
