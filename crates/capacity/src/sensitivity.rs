//! What would change the verdict: for each input, the value at which another constraint starts
//! to bind (a numeric scan, since every limit is monotone in every input), and, for a target
//! tenant count, the value each failing constraint's main input would have to reach.

use serde::Serialize;

use crate::field::{Field, Profile};
use crate::limits::{evaluate, Capacity, Constraint};
use crate::machine::MachineProfile;
use crate::units::MB;
use crate::workload::WorkloadProfile;

/// Step of the geometric scan: 1.1x per step, about 145 steps per factor of a million.
const SCAN_RATIO: f64 = 1.1;
/// How far the scan goes from the current value, as a factor.
const SCAN_RANGE: f64 = 1e6;

/// Moving one input to `value` makes `binding_after` the binding constraint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Crossover {
    /// `machine` or `workload`.
    pub profile: &'static str,
    /// The input field.
    pub field: &'static str,
    /// Its unit.
    pub unit: &'static str,
    /// Its current value.
    pub current: f64,
    /// The value at which the binding constraint changes.
    pub value: f64,
    /// The constraint that binds past `value`.
    pub binding_after: Constraint,
}

/// For every limit input of both profiles, the nearest value up and down (within a factor of a
/// million, inside the field's valid range) at which the binding constraint changes.
pub fn sensitivity(machine: &MachineProfile, workload: &WorkloadProfile) -> Vec<Crossover> {
    let base = evaluate(machine, workload).binding;
    let mut out = Vec::new();
    for field in MachineProfile::fields() {
        out.extend(scan_field(machine, field, base, |m| evaluate(m, workload)));
    }
    for field in WorkloadProfile::fields() {
        out.extend(scan_field(workload, field, base, |w| evaluate(machine, w)));
    }
    out
}

fn scan_field<P: Profile>(
    profile: &P,
    field: &'static Field<P>,
    base: Constraint,
    eval: impl Fn(&P) -> Capacity,
) -> Vec<Crossover> {
    if field.role != crate::field::Role::Limit {
        return Vec::new();
    }
    let current = (field.get)(profile);
    // The binding constraint at `v`, or None where the profile would be invalid.
    let binding_at = |v: f64| -> Option<Constraint> {
        let mut p = profile.clone();
        (field.set)(&mut p, v);
        p.validate().ok().map(|_| eval(&p).binding)
    };
    let mut found = Vec::new();
    for up in [true, false] {
        let mut candidates = Vec::new();
        if current > 0.0 {
            let mut v = current;
            while v <= current * SCAN_RANGE && v >= current / SCAN_RANGE {
                v = if up { v * SCAN_RATIO } else { v / SCAN_RATIO };
                candidates.push(v);
            }
        } else if up {
            let mut v = field.max / SCAN_RANGE / SCAN_RANGE;
            while v <= field.max {
                candidates.push(v);
                v *= SCAN_RATIO;
            }
        }
        let mut previous = current;
        for v in candidates {
            let Some(binding) = binding_at(v) else { break };
            if binding != base {
                let (mut inside, mut outside) = (previous, v);
                for _ in 0..60 {
                    let mid = (inside + outside) / 2.0;
                    if binding_at(mid) == Some(base) {
                        inside = mid;
                    } else {
                        outside = mid;
                    }
                }
                found.push(Crossover {
                    profile: P::KIND,
                    field: field.name,
                    unit: field.unit,
                    current,
                    value: outside,
                    binding_after: binding_at(outside).unwrap_or(binding),
                });
                break;
            }
            previous = v;
        }
    }
    found
}

/// To reach a tenant count, one constraint's main input must be at most `required`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Requirement {
    /// The constraint that currently allows fewer tenants than the target.
    pub constraint: Constraint,
    /// Tenants it allows now.
    pub max_tenants: f64,
    /// The input to change: a workload field, `peak_concurrency` (requests/s at peak x
    /// op_in_flight_seconds) for memory, or `files_per_open_tenant` (3 + 2 x
    /// readers_per_tenant) for open files.
    pub input: &'static str,
    /// The input's current value.
    pub current: f64,
    /// The largest value that reaches the target with everything else unchanged (0 or below
    /// means this input alone cannot do it).
    pub required: f64,
}

/// For each constraint that allows fewer than `tenants` (before headroom) on `machine`, the
/// value its main input would need; empty when every constraint already allows `tenants`.
pub fn requirements(
    machine: &MachineProfile,
    workload: &WorkloadProfile,
    tenants: f64,
) -> Vec<Requirement> {
    let capacity = evaluate(machine, workload);
    let w = workload;
    let per_tenant = |amount: f64| amount / tenants;
    let cold_cpu =
        |rate: f64| w.effective_cpu_seconds_per_request(tenants, rate) - w.cpu_seconds_per_request;
    capacity
        .limits
        .iter()
        .filter(|l| l.max_tenants < tenants)
        .map(|l| {
            let (input, current, required) = match l.constraint {
                Constraint::Storage if w.retention_years > 0.0 => (
                    "tenant_growth_mb_per_year",
                    w.tenant_growth_mb_per_year,
                    (per_tenant(machine.disk_bytes()) / MB - w.tenant_create_mb)
                        / w.retention_years,
                ),
                Constraint::Storage => (
                    "tenant_create_mb",
                    w.tenant_create_mb,
                    per_tenant(machine.disk_bytes()) / MB,
                ),
                Constraint::Memory => (
                    "peak_concurrency",
                    w.peak_concurrency(),
                    (per_tenant(machine.usable_ram_bytes()) / MB - w.ram_mb_per_idle_tenant)
                        / w.ram_mb_per_in_flight_op,
                ),
                // The warm CPU left once the cold requests at `tenants` are paid for.
                Constraint::CpuPeak => (
                    "cpu_seconds_per_request",
                    w.cpu_seconds_per_request,
                    per_tenant(machine.vcpu) / w.peak_requests_per_second()
                        - cold_cpu(w.peak_requests_per_second()),
                ),
                Constraint::CpuSustained => (
                    "cpu_seconds_per_request",
                    w.cpu_seconds_per_request,
                    per_tenant(machine.sustained_vcpu()) / w.average_requests_per_second()
                        - cold_cpu(w.average_requests_per_second()),
                ),
                Constraint::DiskSyncs => (
                    "syncs_per_request",
                    w.syncs_per_request,
                    per_tenant(machine.disk_sync_ops_per_second) / w.peak_requests_per_second(),
                ),
                Constraint::OpenFiles => (
                    "files_per_open_tenant",
                    w.files_per_open_tenant(),
                    per_tenant(machine.open_files_max) / w.peak_concurrency(),
                ),
            };
            Requirement {
                constraint: l.constraint,
                max_tenants: l.max_tenants,
                input,
                current,
                required,
            }
        })
        .collect()
}
