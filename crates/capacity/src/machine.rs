//! The machine profile: what one node offers (CPU, RAM, disk, durable syncs, open files) and
//! what it costs per month. Amounts in decimal units, as named in each field.

use serde::Serialize;

use crate::field::{Field, Profile, ProfileMeta, Role};
use crate::units::GB;

/// One machine (node) a tenantd process runs on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MachineProfile {
    /// Name, description and the source of every value.
    #[serde(flatten)]
    pub meta: ProfileMeta,
    /// Virtual CPUs (count).
    pub vcpu: f64,
    /// Fraction of each vCPU the machine may use sustained (1 = dedicated; Fly `shared` = 1/16).
    pub cpu_baseline_fraction: f64,
    /// RAM in decimal GB.
    pub ram_gb: f64,
    /// RAM kept for the OS and the tenantd process itself, in decimal GB.
    pub os_reserve_gb: f64,
    /// Disk available for tenant files, in decimal GB.
    pub disk_gb: f64,
    /// Durable syncs (fsync/fdatasync) the disk completes per second.
    pub disk_sync_ops_per_second: f64,
    /// Files the tenantd process may hold open (RLIMIT_NOFILE).
    pub open_files_max: f64,
    /// Monthly price of the machine in US dollars.
    pub price_usd_per_month: f64,
}

impl MachineProfile {
    /// RAM left for tenants, in bytes: RAM minus the OS reserve.
    pub fn usable_ram_bytes(&self) -> f64 {
        (self.ram_gb - self.os_reserve_gb) * GB
    }

    /// Disk for tenant files, in bytes.
    pub fn disk_bytes(&self) -> f64 {
        self.disk_gb * GB
    }

    /// vCPUs available sustained: vCPUs times the baseline fraction.
    pub fn sustained_vcpu(&self) -> f64 {
        self.vcpu * self.cpu_baseline_fraction
    }

    /// The same machine with every resource multiplied by `factor` (price and OS reserve
    /// unchanged; the baseline fraction is a share, so it is unchanged too).
    pub fn scaled_resources(&self, factor: f64) -> MachineProfile {
        MachineProfile {
            vcpu: self.vcpu * factor,
            ram_gb: self.os_reserve_gb + (self.ram_gb - self.os_reserve_gb) * factor,
            disk_gb: self.disk_gb * factor,
            disk_sync_ops_per_second: self.disk_sync_ops_per_second * factor,
            open_files_max: self.open_files_max * factor,
            ..self.clone()
        }
    }
}

static FIELDS: [Field<MachineProfile>; 8] = [
    Field {
        name: "vcpu",
        unit: "vCPU",
        doc: "virtual CPUs of the machine",
        role: Role::Limit,
        min: 0.0,
        min_exclusive: true,
        max: 4096.0,
        get: |m| m.vcpu,
        set: |m, v| m.vcpu = v,
        default: None,
    },
    Field {
        name: "cpu_baseline_fraction",
        unit: "fraction of a vCPU",
        doc: "share of each vCPU usable sustained; bursts above it draw down a balance",
        role: Role::Limit,
        min: 0.0,
        min_exclusive: true,
        max: 1.0,
        get: |m| m.cpu_baseline_fraction,
        set: |m, v| m.cpu_baseline_fraction = v,
        default: None,
    },
    Field {
        name: "ram_gb",
        unit: "decimal GB",
        doc: "RAM of the machine",
        role: Role::Limit,
        min: 0.0,
        min_exclusive: true,
        max: 100_000.0,
        get: |m| m.ram_gb,
        set: |m, v| m.ram_gb = v,
        default: None,
    },
    Field {
        name: "os_reserve_gb",
        unit: "decimal GB",
        doc: "RAM kept for the OS and the server process, not for tenant operations",
        role: Role::Limit,
        min: 0.0,
        min_exclusive: false,
        max: 100_000.0,
        get: |m| m.os_reserve_gb,
        set: |m, v| m.os_reserve_gb = v,
        default: None,
    },
    Field {
        name: "disk_gb",
        unit: "decimal GB",
        doc: "disk (volume) space for tenant files",
        role: Role::Limit,
        min: 0.0,
        min_exclusive: true,
        max: 1_000_000.0,
        get: |m| m.disk_gb,
        set: |m, v| m.disk_gb = v,
        default: None,
    },
    Field {
        name: "disk_sync_ops_per_second",
        unit: "syncs/s",
        doc: "durable syncs (fsync) per second the disk sustains",
        role: Role::Limit,
        min: 0.0,
        min_exclusive: true,
        max: 100_000_000.0,
        get: |m| m.disk_sync_ops_per_second,
        set: |m, v| m.disk_sync_ops_per_second = v,
        default: None,
    },
    Field {
        name: "open_files_max",
        unit: "files",
        doc: "file descriptors the server process may hold open (RLIMIT_NOFILE)",
        role: Role::Limit,
        min: 1.0,
        min_exclusive: false,
        max: 1_000_000_000.0,
        get: |m| m.open_files_max,
        set: |m, v| m.open_files_max = v,
        default: None,
    },
    Field {
        name: "price_usd_per_month",
        unit: "USD/month",
        doc: "monthly price of one machine",
        role: Role::Economics,
        min: 0.0,
        min_exclusive: false,
        max: 10_000_000.0,
        get: |m| m.price_usd_per_month,
        set: |m, v| m.price_usd_per_month = v,
        default: None,
    },
];

impl Profile for MachineProfile {
    const KIND: &'static str = "machine";

    fn fields() -> &'static [Field<Self>] {
        &FIELDS
    }

    fn blank() -> Self {
        MachineProfile {
            meta: ProfileMeta::default(),
            vcpu: f64::NAN,
            cpu_baseline_fraction: f64::NAN,
            ram_gb: f64::NAN,
            os_reserve_gb: f64::NAN,
            disk_gb: f64::NAN,
            disk_sync_ops_per_second: f64::NAN,
            open_files_max: f64::NAN,
            price_usd_per_month: f64::NAN,
        }
    }

    fn meta(&self) -> &ProfileMeta {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut ProfileMeta {
        &mut self.meta
    }

    fn check_relations(&self) -> Result<(), (String, String)> {
        if self.os_reserve_gb >= self.ram_gb {
            return Err((
                "os_reserve_gb".to_string(),
                format!(
                    "must be below ram_gb ({} GB): no RAM would be left for tenants",
                    self.ram_gb
                ),
            ));
        }
        Ok(())
    }
}
