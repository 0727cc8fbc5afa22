//! Chart data, computed by the model and drawn by `render::svg`: tenant limits as the retention
//! horizon grows, and cost per user as the user count grows on each machine profile.

use serde::Serialize;

use crate::limits::{evaluate, Constraint};
use crate::machine::MachineProfile;
use crate::roadmap::plan;
use crate::workload::WorkloadProfile;

/// Limits of one machine at one retention horizon.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetentionPoint {
    /// Years of data kept.
    pub years: f64,
    /// Tenant limit per constraint (before headroom), in [`Constraint::ALL`] order.
    pub limits: Vec<(Constraint, f64)>,
    /// Planned tenants (with headroom).
    pub supported: u64,
}

/// Limits at `steps` evenly spaced horizons from `max_years / steps` to `max_years`.
pub fn retention_curve(
    machine: &MachineProfile,
    workload: &WorkloadProfile,
    max_years: f64,
    steps: usize,
) -> Vec<RetentionPoint> {
    (1..=steps)
        .map(|i| {
            let years = max_years * i as f64 / steps as f64;
            let mut w = workload.clone();
            w.retention_years = years;
            let c = evaluate(machine, &w);
            RetentionPoint {
                years,
                limits: c
                    .limits
                    .iter()
                    .map(|l| (l.constraint, l.max_tenants))
                    .collect(),
                supported: c.supported_tenants,
            }
        })
        .collect()
}

/// Monthly cost per user on one machine profile, for a range of user counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostCurve {
    /// Machine profile name.
    pub machine: String,
    /// (users, USD per user per month); user counts no machine can hold are left out.
    pub points: Vec<(u64, f64)>,
}

/// User counts spaced evenly on a log scale, `per_decade` per factor of ten, from `from` to `to`.
pub fn log_spaced(from: u64, to: u64, per_decade: u32) -> Vec<u64> {
    let (lo, hi) = ((from.max(1)) as f64, to as f64);
    let steps = ((hi / lo).log10() * per_decade as f64).ceil() as u32;
    let mut out: Vec<u64> = (0..=steps)
        .map(|i| (lo * 10f64.powf(i as f64 / per_decade as f64)).round() as u64)
        .filter(|&u| u as f64 <= hi)
        .collect();
    out.dedup();
    out
}

/// Cost per user for each of `machines` at each of `users`.
pub fn cost_curves(
    machines: &[MachineProfile],
    workload: &WorkloadProfile,
    users: &[u64],
) -> Vec<CostCurve> {
    machines
        .iter()
        .map(|m| CostCurve {
            machine: m.meta.name.clone(),
            points: users
                .iter()
                .filter_map(|&u| {
                    plan("target", u, m, workload)
                        .cost_per_user_usd
                        .map(|c| (u, c))
                })
                .collect(),
        })
        .collect()
}
