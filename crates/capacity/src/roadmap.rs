//! The scaling roadmap: for a number of users on a machine profile, how many machines, at what
//! monthly cost and cost per user; and the seed's own roadmap table, as stated, to check.
//! Users and tenants are the same thing here: the seed sells one store (tenant) per user.

use serde::Serialize;

use crate::economics::{cost_per_user, machines_for};
use crate::limits::{evaluate, Constraint};
use crate::machine::MachineProfile;
use crate::workload::WorkloadProfile;

/// One row of the seed's "Scaling Roadmap" table, as the seed states it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StatedPhase {
    /// Phase name.
    pub name: &'static str,
    /// Users in the phase.
    pub users: u64,
    /// Built-in machine profile the phase uses.
    pub machine: &'static str,
    /// Machines the seed says the phase needs.
    pub machines: u64,
    /// Monthly cost the seed states, USD.
    pub monthly_cost_usd: f64,
    /// Cost per user the seed states, USD per month.
    pub cost_per_user_usd: f64,
}

/// The seed's roadmap (seed §3, "Scaling Roadmap").
pub const SEED_ROADMAP: [StatedPhase; 3] = [
    StatedPhase {
        name: "launch",
        users: 1_500,
        machine: "fly-shared-cpu-2x",
        machines: 1,
        monthly_cost_usd: 15.0,
        cost_per_user_usd: 0.010,
    },
    StatedPhase {
        name: "growth",
        users: 50_000,
        machine: "ovh-vps-6",
        machines: 1,
        monthly_cost_usd: 50.0,
        cost_per_user_usd: 0.001,
    },
    StatedPhase {
        name: "enterprise",
        users: 1_000_000,
        machine: "ovh-vps-6",
        machines: 20,
        monthly_cost_usd: 1_000.0,
        cost_per_user_usd: 0.001,
    },
];

/// What the model computes for `users` on one machine profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhasePlan {
    /// Phase name (or `target` for a free-form user count).
    pub phase: String,
    /// Users to serve.
    pub users: u64,
    /// Machine profile name.
    pub machine: String,
    /// Tenants one machine supports (with headroom).
    pub per_machine: u64,
    /// What limits one machine.
    pub binding: Constraint,
    /// Machines needed; None when one machine holds no tenant.
    pub machines: Option<u64>,
    /// Machines x machine price, USD per month.
    pub monthly_cost_usd: Option<f64>,
    /// Monthly cost / users, USD.
    pub cost_per_user_usd: Option<f64>,
}

/// Sizes a cluster of `machine` for `users` under `workload`.
pub fn plan(
    phase: &str,
    users: u64,
    machine: &MachineProfile,
    workload: &WorkloadProfile,
) -> PhasePlan {
    let capacity = evaluate(machine, workload);
    let machines = machines_for(users, capacity.supported_tenants);
    let monthly = machines.map(|n| n as f64 * machine.price_usd_per_month);
    PhasePlan {
        phase: phase.to_string(),
        users,
        machine: machine.meta.name.clone(),
        per_machine: capacity.supported_tenants,
        binding: capacity.binding,
        machines,
        monthly_cost_usd: monthly,
        cost_per_user_usd: monthly.and_then(|m| cost_per_user(m, users)),
    }
}

/// A roadmap row: the model's plan next to what the seed states, if it states anything.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoadmapRow {
    /// The model's plan.
    pub model: PhasePlan,
    /// The seed's figures for the same phase.
    pub seed: Option<StatedPhase>,
}

/// The seed's phases planned by the model; `machine_for` maps a built-in machine name to a
/// profile (so callers may substitute their own) and its error stops the plan.
pub fn seed_roadmap<E>(
    workload: &WorkloadProfile,
    mut machine_for: impl FnMut(&str) -> Result<MachineProfile, E>,
) -> Result<Vec<RoadmapRow>, E> {
    SEED_ROADMAP
        .iter()
        .map(|stated| {
            Ok(RoadmapRow {
                model: plan(
                    stated.name,
                    stated.users,
                    &machine_for(stated.machine)?,
                    workload,
                ),
                seed: Some(*stated),
            })
        })
        .collect()
}
