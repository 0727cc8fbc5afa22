//! Per-resource tenant limits of one machine under one workload, and the one that binds.
//! Each limit is `machine capacity / per-tenant demand` in one resource's unit (DESIGN §6).

use serde::Serialize;

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
    /// `capacity / demand_per_tenant`; infinite when the tenant needs none of it.
    pub max_tenants: f64,
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
        limit(
            Constraint::CpuPeak,
            Quantity::Vcpu,
            machine.vcpu,
            workload.cpu_seconds_per_request * peak_rps,
        ),
        limit(
            Constraint::CpuSustained,
            Quantity::Vcpu,
            machine.sustained_vcpu(),
            workload.cpu_seconds_per_request * workload.average_requests_per_second(),
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
    Capacity {
        machine: machine.meta.name.clone(),
        workload: workload.meta.name.clone(),
        binding: binding.constraint,
        max_tenants: binding.max_tenants,
        headroom_fraction: workload.headroom_fraction,
        supported_tenants: floor_count(binding.max_tenants * (1.0 - workload.headroom_fraction)),
        limits,
    }
}
