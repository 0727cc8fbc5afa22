//! Per-resource tenant limits of one machine under one workload, and the one that binds.
//! Each limit is `machine capacity / per-tenant demand` in one resource's unit (DESIGN §6);
//! the CPU limits are the largest tenant count whose demand fits, since a tenant's CPU per
//! request grows with the count (more tenants, more requests find theirs closed: `cold`).

use serde::Serialize;

use crate::cold::ColdEstimate;
use crate::machine::MachineProfile;
use crate::units::floor_count;
use crate::workload::WorkloadProfile;

/// A resource that caps the number of tenants on a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Constraint {
    /// Disk space over the retention horizon.
    Storage,
    /// RAM for idle tenants plus in-flight operations at peak (Little's law).
    Memory,
    /// All vCPUs at 100% during a peak (bursting).
    CpuPeak,
    /// The vCPUs' sustained baseline share at the average request rate.
    CpuSustained,
    /// Durable syncs per second at peak.
    DiskSyncs,
    /// Open file descriptors at peak (3 + 2 x readers_per_tenant per open tenant, as the server).
    OpenFiles,
}

impl Constraint {
    /// Every constraint, in the order reports list them (and break ties).
    pub const ALL: [Constraint; 6] = [
        Constraint::Storage,
        Constraint::Memory,
        Constraint::CpuPeak,
        Constraint::CpuSustained,
        Constraint::DiskSyncs,
        Constraint::OpenFiles,
    ];

    /// Human label used in tables.
    pub fn label(self) -> &'static str {
        match self {
            Constraint::Storage => "storage",
            Constraint::Memory => "memory",
            Constraint::CpuPeak => "CPU at peak (burst)",
            Constraint::CpuSustained => "CPU sustained (baseline)",
            Constraint::DiskSyncs => "disk syncs at peak",
            Constraint::OpenFiles => "open files at peak",
        }
    }

    /// The workload field that sets this constraint's per-tenant demand most directly.
    pub fn primary_workload_input(self) -> &'static str {
        match self {
            Constraint::Storage => "tenant_growth_mb_per_year",
            Constraint::Memory => "op_in_flight_seconds",
            Constraint::CpuPeak | Constraint::CpuSustained => "cpu_seconds_per_request",
            Constraint::DiskSyncs => "syncs_per_request",
            Constraint::OpenFiles => "readers_per_tenant",
        }
    }
}

/// The unit a limit's capacity and demand are expressed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Quantity {
    /// Bytes (decimal units when printed).
    Bytes,
    /// vCPU-seconds per second (= vCPUs busy).
    Vcpu,
    /// Syncs per second.
    SyncsPerSecond,
    /// File descriptors.
    Files,
}

/// One resource's limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limit {
    /// Which resource.
    pub constraint: Constraint,
    /// What the machine offers, in `quantity`.
    pub capacity: f64,
    /// What one tenant needs, in `quantity`.
    pub demand_per_tenant: f64,
    /// The unit of `capacity` and `demand_per_tenant`.
    pub quantity: Quantity,
    /// The most tenants whose demand fits `capacity` (`capacity / demand_per_tenant`, the
    /// demand taken at that count); infinite when the tenant needs none of it.
    pub max_tenants: f64,
    /// CPU limits only: the share of requests that find their tenant closed at `max_tenants`.
    pub cold_fraction: Option<f64>,
}

/// How often requests find their tenant closed at the planned tenant count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColdAtVerdict {
    /// The tenant count: the tenants supported (at least 1).
    pub tenants: f64,
    /// At the peak request rate.
    pub peak: ColdEstimate,
    /// At the average request rate.
    pub average: ColdEstimate,
}

/// Every limit of a machine under a workload, the binding one and the planned tenant count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capacity {
    /// Name of the machine profile.
    pub machine: String,
    /// Name of the workload profile.
    pub workload: String,
    /// One limit per constraint, in [`Constraint::ALL`] order.
    pub limits: Vec<Limit>,
    /// The constraint with the fewest tenants (first in [`Constraint::ALL`] order on ties).
    pub binding: Constraint,
    /// Tenants at the binding limit, before headroom (may be fractional).
    pub max_tenants: f64,
    /// The headroom kept below the binding limit.
    pub headroom_fraction: f64,
    /// Tenants planned per machine: `floor(max_tenants x (1 - headroom))`.
    pub supported_tenants: u64,
    /// The cold fraction at `supported_tenants`.
    pub cold: ColdAtVerdict,
}

impl Capacity {
    /// The limit of one constraint.
    pub fn limit(&self, constraint: Constraint) -> &Limit {
        self.limits
            .iter()
            .find(|l| l.constraint == constraint)
            .expect("evaluate() fills every constraint")
    }
}

fn limit(constraint: Constraint, quantity: Quantity, capacity: f64, demand: f64) -> Limit {
    let max_tenants = if demand > 0.0 {
        capacity / demand
    } else {
        f64::INFINITY
    };
    Limit {
        constraint,
        capacity,
        demand_per_tenant: demand,
        quantity,
        max_tenants,
        cold_fraction: None,
    }
}

/// Where the CPU limit's search stops: the bracket on ln N this narrow, or the demand this
/// close to the CPU (relative).
const CPU_SEARCH_PRECISION: f64 = 1e-12;
/// Search steps allowed (it takes about ten; a safety bound).
const CPU_SEARCH_STEPS: usize = 200;

/// The CPU limit for `vcpu` when each tenant sends `rate` requests/s: the largest N with
/// `N x rate x effective CPU per request at N <= vcpu`. That demand rises with N (cold requests
/// per second never fall as tenants are added, a property test checks it), so the answer is
/// bracketed by the all-cold and all-warm limits; a bracketed search on ln N finds it (regula
/// falsi with the Illinois step, so ~10 evaluations of the cold fraction instead of bisection's
/// ~40). With no cold cost it is `vcpu / (cpu_seconds_per_request x rate)`, the old formula.
fn cpu_limit(constraint: Constraint, vcpu: f64, rate: f64, w: &WorkloadProfile) -> Limit {
    let warm = w.cpu_seconds_per_request;
    let all_warm = vcpu / (warm * rate);
    let tenants = if w.cold_cpu_seconds_per_request == 0.0 {
        all_warm
    } else {
        // ln(demand / vcpu) at N = e^u: rises with u, <= 0 where the demand fits.
        let excess = |u: f64| {
            let n = u.exp();
            (n * rate * w.effective_cpu_seconds_per_request(n, rate) / vcpu).ln()
        };
        let all_cold = vcpu / ((warm + w.cold_cpu_seconds_per_request) * rate);
        let (mut lo, mut hi) = (all_cold.ln(), all_warm.ln());
        let (mut excess_lo, mut excess_hi) = (excess(lo).min(0.0), excess(hi));
        if excess_hi <= 0.0 {
            lo = hi;
        }
        let mut last_side = 0i8;
        for _ in 0..CPU_SEARCH_STEPS {
            if hi - lo <= CPU_SEARCH_PRECISION {
                break;
            }
            let mut u = (lo * excess_hi - hi * excess_lo) / (excess_hi - excess_lo);
            if !(u > lo && u < hi) {
                u = (lo + hi) / 2.0;
            }
            let e = excess(u);
            if e <= 0.0 {
                (lo, excess_lo) = (u, e);
                if last_side == -1 {
                    excess_hi /= 2.0;
                }
                last_side = -1;
            } else {
                (hi, excess_hi) = (u, e);
                if last_side == 1 {
                    excess_lo /= 2.0;
                }
                last_side = 1;
            }
            if e.abs() <= CPU_SEARCH_PRECISION {
                // The demand meets the CPU to 12 digits: this is the limit.
                (lo, hi) = (u, u);
            }
        }
        lo.exp()
    };
    let cold = w.cold_at(tenants, rate).cold_fraction;
    Limit {
        constraint,
        capacity: vcpu,
        demand_per_tenant: rate * (warm + cold * w.cold_cpu_seconds_per_request),
        quantity: Quantity::Vcpu,
        max_tenants: tenants,
        cold_fraction: Some(cold),
    }
}

/// Computes every limit of `machine` under `workload`. Never fails: profiles are validated
/// when built, and a resource a tenant does not use gives an infinite limit.
pub fn evaluate(machine: &MachineProfile, workload: &WorkloadProfile) -> Capacity {
    let peak_rps = workload.peak_requests_per_second();
    let limits = vec![
        limit(
            Constraint::Storage,
            Quantity::Bytes,
            machine.disk_bytes(),
            workload.storage_bytes_per_tenant(),
        ),
        limit(
            Constraint::Memory,
            Quantity::Bytes,
            machine.usable_ram_bytes(),
            workload.ram_bytes_per_tenant_at_peak(),
        ),
        cpu_limit(Constraint::CpuPeak, machine.vcpu, peak_rps, workload),
        cpu_limit(
            Constraint::CpuSustained,
            machine.sustained_vcpu(),
            workload.average_requests_per_second(),
            workload,
        ),
        limit(
            Constraint::DiskSyncs,
            Quantity::SyncsPerSecond,
            machine.disk_sync_ops_per_second,
            workload.syncs_per_request * peak_rps,
        ),
        limit(
            Constraint::OpenFiles,
            Quantity::Files,
            machine.open_files_max,
            workload.files_per_open_tenant() * workload.peak_concurrency(),
        ),
    ];
    let binding = limits
        .iter()
        .fold(&limits[0], |best, l| {
            if l.max_tenants < best.max_tenants {
                l
            } else {
                best
            }
        })
        .clone();
    let supported_tenants = floor_count(binding.max_tenants * (1.0 - workload.headroom_fraction));
    let at = (supported_tenants as f64).max(1.0);
    Capacity {
        machine: machine.meta.name.clone(),
        workload: workload.meta.name.clone(),
        binding: binding.constraint,
        max_tenants: binding.max_tenants,
        headroom_fraction: workload.headroom_fraction,
        supported_tenants,
        limits,
        cold: ColdAtVerdict {
            tenants: at,
            peak: workload.cold_at(at, peak_rps),
            average: workload.cold_at(at, workload.average_requests_per_second()),
        },
    }
}
