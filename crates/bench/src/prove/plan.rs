//! What `tenantd prove` runs within its time budget. Pure: a plan is sizes and durations, its
//! estimate is a sum of per-step costs (server start, provisioning per tenant, load time), and
//! fitting a plan to a budget shortens load runs first, then shrinks sizes, never below a
//! floor that still gives a number. The estimate is checked against the real run in the
//! report (planned vs taken).

use std::time::Duration;

use loadgen::workload::Workload;
use serde::Serialize;
use store::Durability;

/// Seconds to start a server and see it listen (measured here: ~0.2 s; kept generous).
const START_S: f64 = 0.6;
/// Seconds per provisioned tenant (file copy + catalog row; measured here: ~0.9 ms).
const PROVISION_S_PER_TENANT: f64 = 0.000_9;
/// Seconds per tenant given the kv schema (a migration per file; measured here: ~2 ms).
const MIGRATE_S_PER_TENANT: f64 = 0.002;
/// Seconds per tenant touched by the idle scenario (a cold open and its close: ~1 ms).
const TOUCH_S_PER_TENANT: f64 = 0.001;
/// Seconds to close one open tenant when a server stops.
const CLOSE_S_PER_TENANT: f64 = 0.000_5;
/// Warm-up and drain around every measured load run.
const RUN_OVERHEAD_S: f64 = 2.0;
/// Shortest load run that still gives a number.
const MIN_LOAD_S: f64 = 1.0;

/// The calibration `prove` runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Idle tenant files of the idle-cost scenario.
    pub idle_tenants: u64,
    /// Concurrency levels of the in-flight memory scenario.
    pub inflight_levels: Vec<usize>,
    /// Seconds of every measured load run.
    pub load_seconds: f64,
    /// Workloads of the CPU scenario (the first feeds the profile).
    pub cpu_workloads: Vec<Workload>,
    /// Durability modes the CPU scenario runs in (the verdict's mode first).
    pub modes: Vec<Durability>,
    /// Webhook events of the disk scenario.
    pub disk_events: u64,
    /// Seconds of the sync-rate probe.
    pub sync_seconds: f64,
    /// (tenants, skew) of the cold scenario.
    pub cold_cases: Vec<(u64, f64)>,
}

impl Plan {
    /// The full calibration (what a few minutes buy on a small machine).
    pub fn full(mode: Durability) -> Plan {
        Plan {
            idle_tenants: 20_000,
            inflight_levels: vec![64, 256, 1_024, 4_096],
            load_seconds: 4.0,
            cpu_workloads: vec![Workload::Webhook, Workload::SqlRead, Workload::SqlWrite],
            modes: both_modes(mode),
            disk_events: 5_000,
            sync_seconds: 2.0,
            cold_cases: vec![(5_000, 1.1), (5_000, 0.0)],
        }
    }

    /// The quick calibration (under a minute): fewer sizes, shorter runs, one mode.
    pub fn quick(mode: Durability) -> Plan {
        Plan {
            idle_tenants: 1_000,
            inflight_levels: vec![16, 64, 256],
            load_seconds: 1.5,
            cpu_workloads: vec![Workload::Webhook, Workload::SqlRead],
            modes: vec![mode],
            disk_events: 500,
            sync_seconds: 0.5,
            cold_cases: vec![(2_000, 1.1)],
        }
    }

    /// Estimated wall time of each scenario, in the order `prove` runs them.
    pub fn estimate_by_scenario(&self) -> Vec<(&'static str, Duration)> {
        let load = self.load_seconds;
        let provision = |n: u64, kv: bool| {
            START_S
                + n as f64 * (PROVISION_S_PER_TENANT + if kv { MIGRATE_S_PER_TENANT } else { 0.0 })
        };
        let disk = 2.0 * START_S + self.disk_events as f64 / 2_000.0 + self.sync_seconds;
        // idle: an empty server, a full one, a touch of every tenant, the TTL wait.
        let idle = provision(0, false)
            + provision(self.idle_tenants, false)
            + 3.0
            + self.idle_tenants as f64 * TOUCH_S_PER_TENANT;
        // inflight: a server per level; closing C open tenants at the end takes time too.
        let inflight: f64 = self
            .inflight_levels
            .iter()
            .map(|&c| provision(c as u64, true) + load + c as f64 * CLOSE_S_PER_TENANT)
            .sum();
        // cpu: per workload, a warm and a cold server.
        let per_mode = (provision(crate::calibrate::cpu::WARM_TENANTS, true)
            + provision(crate::calibrate::cpu::COLD_TENANTS, true)
            + 2.0 * (load + RUN_OVERHEAD_S))
            * self.cpu_workloads.len() as f64;
        let cold: f64 = provision(32, true)
            + load
            + RUN_OVERHEAD_S
            + self
                .cold_cases
                .iter()
                .map(|&(t, _)| provision(t, true) + load + RUN_OVERHEAD_S)
                .sum::<f64>();
        let mut steps = vec![("disk", disk), ("idle", idle), ("inflight", inflight)];
        for (i, _) in self.modes.iter().enumerate() {
            steps.push((if i == 0 { "cpu" } else { "cpu (second mode)" }, per_mode));
        }
        steps.push(("cold", cold));
        steps
            .into_iter()
            .map(|(name, s)| (name, Duration::from_secs_f64(s)))
            .collect()
    }

    /// Estimated wall time of the plan.
    pub fn estimate(&self) -> Duration {
        self.estimate_by_scenario().iter().map(|(_, d)| *d).sum()
    }

    /// This plan shrunk until its estimate fits `budget`: shorter load runs first, then fewer
    /// idle tenants, then the largest concurrency level, then the second mode and workload.
    /// The result may still exceed a budget below the floor; the caller reports that.
    pub fn fit(mut self, budget: Duration) -> Plan {
        let fits = |p: &Plan| p.estimate() <= budget;
        while !fits(&self) && self.load_seconds > MIN_LOAD_S {
            self.load_seconds = (self.load_seconds - 0.5).max(MIN_LOAD_S);
        }
        while !fits(&self) && self.idle_tenants > 1_000 {
            self.idle_tenants /= 2;
        }
        while !fits(&self) && self.inflight_levels.len() > 2 {
            self.inflight_levels.pop();
        }
        if !fits(&self) && self.modes.len() > 1 {
            self.modes.truncate(1);
        }
        while !fits(&self) && self.cpu_workloads.len() > 1 {
            self.cpu_workloads.pop();
        }
        while !fits(&self) && self.cold_cases.len() > 1 {
            self.cold_cases.pop();
        }
        self
    }
}

fn both_modes(first: Durability) -> Vec<Durability> {
    match first {
        Durability::Fsync => vec![Durability::Fsync, Durability::Crash],
        Durability::Crash => vec![Durability::Crash, Durability::Fsync],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_fits_in_a_minute_and_full_in_a_few() {
        let quick = Plan::quick(Durability::Fsync).estimate();
        assert!(quick < Duration::from_secs(60), "{quick:?}");
        let full = Plan::full(Durability::Fsync).estimate();
        assert!(
            full > quick && full < Duration::from_secs(6 * 60),
            "{full:?}"
        );
    }

    #[test]
    fn fitting_shrinks_runs_before_sizes_and_keeps_the_verdict_mode_first() {
        let full = Plan::full(Durability::Crash);
        let roomy = full.clone().fit(Duration::from_secs(3600));
        assert_eq!(roomy, full, "a plan inside its budget is unchanged");
        let tight = full.clone().fit(full.estimate().mul_f64(0.8));
        assert!(tight.estimate() <= full.estimate().mul_f64(0.8));
        assert!(tight.load_seconds < full.load_seconds);
        assert_eq!(tight.idle_tenants, full.idle_tenants, "runs shrink first");
        let tiny = full.fit(Duration::from_secs(1));
        assert_eq!(tiny.modes, vec![Durability::Crash]);
        assert_eq!(tiny.load_seconds, MIN_LOAD_S);
        assert!(tiny.inflight_levels.len() >= 2, "a slope needs two points");
        assert_eq!(tiny.cpu_workloads, vec![Workload::Webhook]);
    }
}
