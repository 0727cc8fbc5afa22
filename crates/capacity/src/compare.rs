//! The seed's idle-cost comparison (seed §1): N tenants as always-on containers versus
//! scale-to-zero SQLite files, on one machine profile. "Idle" sizes the fleet for idle RAM and
//! stored bytes only; "active" sizes it for the workload's full peak as well.

use serde::Serialize;

use crate::economics::machines_for;
use crate::limits::{evaluate, Constraint};
use crate::machine::MachineProfile;
use crate::units::MB;
use crate::workload::WorkloadProfile;

/// One approach (workload profile) hosting `tenants` on one machine profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompareRow {
    /// Workload profile name.
    pub approach: String,
    /// Machine profile name.
    pub machine: String,
    /// Tenants hosted.
    pub tenants: u64,
    /// RAM all tenants hold while idle, bytes.
    pub idle_ram_bytes: f64,
    /// Bytes all tenants store at the retention horizon.
    pub stored_bytes: f64,
    /// Machines for idle RAM and storage alone.
    pub machines_idle: u64,
    /// Monthly cost of `machines_idle`, USD.
    pub monthly_cost_idle_usd: f64,
    /// Machines for the full workload at peak, with headroom; None if one holds no tenant.
    pub machines_active: Option<u64>,
    /// Monthly cost of `machines_active`, USD.
    pub monthly_cost_active_usd: Option<f64>,
    /// What limits one machine under the full workload.
    pub binding_active: Constraint,
}

/// Compares `approaches` hosting `tenants` on `machine`.
pub fn compare(
    machine: &MachineProfile,
    approaches: &[&WorkloadProfile],
    tenants: u64,
) -> Vec<CompareRow> {
    approaches
        .iter()
        .map(|w| {
            let n = tenants as f64;
            let idle_ram = n * w.ram_mb_per_idle_tenant * MB;
            let stored = n * w.storage_bytes_per_tenant();
            let by_ram = (idle_ram / machine.usable_ram_bytes()).ceil();
            let by_disk = (stored / machine.disk_bytes()).ceil();
            let machines_idle = by_ram.max(by_disk).max(1.0) as u64;
            let capacity = evaluate(machine, w);
            let machines_active = machines_for(tenants, capacity.supported_tenants);
            CompareRow {
                approach: w.meta.name.clone(),
                machine: machine.meta.name.clone(),
                tenants,
                idle_ram_bytes: idle_ram,
                stored_bytes: stored,
                machines_idle,
                monthly_cost_idle_usd: machines_idle as f64 * machine.price_usd_per_month,
                machines_active,
                monthly_cost_active_usd: machines_active
                    .map(|k| k as f64 * machine.price_usd_per_month),
                binding_active: capacity.binding,
            }
        })
        .collect()
}
