//! The workload profile: what one tenant asks of a machine (bytes, requests, RAM, CPU, syncs)
//! and what it pays, and the server settings that decide how often a request finds its tenant
//! closed (open cap, idle TTL, access skew). A `bench` run can build one from measurements; the
//! derived rates (Little's law concurrency, peak request rate, effective CPU per request) are
//! methods here so every report agrees.

use serde::Serialize;

use crate::cold::{self, ColdEstimate};
use crate::field::{Field, Profile, ProfileMeta, Role};
use crate::units::{MB, SECONDS_PER_DAY};

/// The server's default open cap (`tenantd serve --max-open`, store `DEFAULT_MAX_OPEN`; a test
/// compares the two).
pub const DEFAULT_OPEN_TENANTS_MAX: f64 = 1024.0;
/// The pool's default idle TTL in seconds (store `DEFAULT_IDLE_TTL`; a test compares the two).
pub const DEFAULT_IDLE_TTL_SECONDS: f64 = 10.0;

/// Files an open tenant holds besides its readers: the writer's db and -wal, and the -shm
/// shared by all its connections (the server's `fds_per_tenant`).
pub const FILES_PER_OPEN_TENANT_FIXED: f64 = 3.0;
/// Files each kept reader connection adds: its own db and -wal descriptors.
pub const FILES_PER_READER: f64 = 2.0;

/// The average tenant's demands and price.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkloadProfile {
    /// Name, description and the source of every value.
    #[serde(flatten)]
    pub meta: ProfileMeta,
    /// Size of a tenant file when the tenant is created, in decimal MB.
    pub tenant_create_mb: f64,
    /// Growth of a tenant's data per year, in decimal MB.
    pub tenant_growth_mb_per_year: f64,
    /// Years of data kept per tenant (the storage horizon).
    pub retention_years: f64,
    /// Requests per tenant per day, on average.
    pub requests_per_tenant_per_day: f64,
    /// Peak request rate divided by the average rate (>= 1).
    pub peak_to_average_ratio: f64,
    /// Seconds one operation is in flight (holding RAM and an open file), end to end.
    pub op_in_flight_seconds: f64,
    /// RAM held by one in-flight operation, in decimal MB.
    pub ram_mb_per_in_flight_op: f64,
    /// RAM held by an idle tenant, in decimal MB (0 for scale-to-zero).
    pub ram_mb_per_idle_tenant: f64,
    /// CPU time of a warm request (its tenant already open), in vCPU-seconds.
    pub cpu_seconds_per_request: f64,
    /// Extra CPU time of a cold request (its tenant closed: open + close), in vCPU-seconds,
    /// on top of `cpu_seconds_per_request`.
    pub cold_cpu_seconds_per_request: f64,
    /// Zipf exponent of requests across a machine's tenants (0 = uniform).
    pub access_skew: f64,
    /// Tenants the server keeps open at once (its `max_open`; LRU eviction past it).
    pub open_tenants_max: f64,
    /// Seconds an idle tenant stays open (the pool's idle TTL; 0 = closed after each request).
    pub idle_ttl_seconds: f64,
    /// Durable disk syncs per request (1 per committed write in `fsync` mode).
    pub syncs_per_request: f64,
    /// Idle reader connections the server keeps per open tenant (its `readers_per_tenant`
    /// setting); sets the files an open tenant holds, see [`WorkloadProfile::files_per_open_tenant`].
    pub readers_per_tenant: f64,
    /// Fraction of the binding limit kept free (0.25 = plan for 75% of the limit).
    pub headroom_fraction: f64,
    /// Price charged per tenant per month, in US dollars.
    pub price_usd_per_tenant_month: f64,
}

impl WorkloadProfile {
    /// Average requests per second of one tenant.
    pub fn average_requests_per_second(&self) -> f64 {
        self.requests_per_tenant_per_day / SECONDS_PER_DAY
    }

    /// Peak requests per second of one tenant.
    pub fn peak_requests_per_second(&self) -> f64 {
        self.average_requests_per_second() * self.peak_to_average_ratio
    }

    /// Operations of one tenant in flight at peak (Little's law: rate x time in flight).
    pub fn peak_concurrency(&self) -> f64 {
        self.peak_requests_per_second() * self.op_in_flight_seconds
    }

    /// Bytes one tenant occupies at the end of the retention horizon.
    pub fn storage_bytes_per_tenant(&self) -> f64 {
        (self.tenant_create_mb + self.tenant_growth_mb_per_year * self.retention_years) * MB
    }

    /// Files one open tenant holds, by the server's own bound (`store::PoolConfig::
    /// fds_per_tenant`, README "Configuration"): the writer's db and -wal, the shared -shm, and a
    /// db and a -wal per reader: `3 + 2 x readers_per_tenant`, where the server lets even
    /// `readers_per_tenant = 0` run one reader at a time.
    pub fn files_per_open_tenant(&self) -> f64 {
        FILES_PER_OPEN_TENANT_FIXED + FILES_PER_READER * self.readers_per_tenant.max(1.0)
    }

    /// RAM one tenant needs at peak, in bytes: idle RAM plus its share of in-flight operations.
    pub fn ram_bytes_per_tenant_at_peak(&self) -> f64 {
        (self.ram_mb_per_idle_tenant + self.peak_concurrency() * self.ram_mb_per_in_flight_op) * MB
    }

    /// How often a request finds its tenant closed when `tenants` tenants each send
    /// `requests_per_second` on average (see [`cold::estimate`]).
    pub fn cold_at(&self, tenants: f64, requests_per_second: f64) -> ColdEstimate {
        cold::estimate(
            tenants,
            tenants * requests_per_second,
            self.access_skew,
            self.open_tenants_max,
            self.idle_ttl_seconds,
        )
    }

    /// CPU per request, warm and cold mixed, when `tenants` tenants each send
    /// `requests_per_second`: `cpu_seconds_per_request + cold fraction x
    /// cold_cpu_seconds_per_request`.
    pub fn effective_cpu_seconds_per_request(&self, tenants: f64, requests_per_second: f64) -> f64 {
        if self.cold_cpu_seconds_per_request == 0.0 {
            return self.cpu_seconds_per_request;
        }
        let cold = self.cold_at(tenants, requests_per_second).cold_fraction;
        self.cpu_seconds_per_request + cold * self.cold_cpu_seconds_per_request
    }
}

static FIELDS: [Field<WorkloadProfile>; 17] = [
    Field {
        name: "tenant_create_mb",
        unit: "decimal MB",
        doc: "size of a new tenant's file",
        role: Role::Limit,
        min: 0.0,
        min_exclusive: false,
        max: 1_000_000.0,
        get: |w| w.tenant_create_mb,
        set: |w, v| w.tenant_create_mb = v,
        default: None,
    },
    Field {
        name: "tenant_growth_mb_per_year",
        unit: "MB/year",
        doc: "data a tenant adds per year",
        role: Role::Limit,
        min: 0.0,
        min_exclusive: false,
        max: 1_000_000.0,
        get: |w| w.tenant_growth_mb_per_year,
        set: |w, v| w.tenant_growth_mb_per_year = v,
        default: None,
    },
    Field {
        name: "retention_years",
        unit: "years",
        doc: "years of data kept per tenant",
        role: Role::Limit,
        min: 0.0,
        min_exclusive: false,
        max: 100.0,
        get: |w| w.retention_years,
        set: |w, v| w.retention_years = v,
        default: None,
    },
    Field {
        name: "requests_per_tenant_per_day",
        unit: "requests/day",
        doc: "average requests per tenant per day",
        role: Role::Limit,
        min: 0.0,
        min_exclusive: true,
        max: 1_000_000_000.0,
        get: |w| w.requests_per_tenant_per_day,
        set: |w, v| w.requests_per_tenant_per_day = v,
        default: None,
    },
    Field {
        name: "peak_to_average_ratio",
        unit: "ratio",
        doc: "peak request rate over average request rate",
        role: Role::Limit,
        min: 1.0,
        min_exclusive: false,
        max: 10_000.0,
        get: |w| w.peak_to_average_ratio,
        set: |w, v| w.peak_to_average_ratio = v,
        default: None,
    },
    Field {
        name: "op_in_flight_seconds",
        unit: "s",
        doc: "time one operation holds RAM and an open file",
        role: Role::Limit,
        min: 0.0,
        min_exclusive: true,
        max: 3600.0,
        get: |w| w.op_in_flight_seconds,
        set: |w, v| w.op_in_flight_seconds = v,
        default: None,
    },
    Field {
        name: "ram_mb_per_in_flight_op",
        unit: "decimal MB",
        doc: "RAM held by one in-flight operation",
        role: Role::Limit,
        min: 0.0,
        min_exclusive: true,
        max: 100_000.0,
        get: |w| w.ram_mb_per_in_flight_op,
        set: |w, v| w.ram_mb_per_in_flight_op = v,
        default: None,
    },
    Field {
        name: "ram_mb_per_idle_tenant",
        unit: "decimal MB",
        doc: "RAM an idle tenant holds (0 = scale to zero)",
        role: Role::Limit,
        min: 0.0,
        min_exclusive: false,
        max: 100_000.0,
        get: |w| w.ram_mb_per_idle_tenant,
        set: |w, v| w.ram_mb_per_idle_tenant = v,
        default: None,
    },
    Field {
        name: "cpu_seconds_per_request",
        unit: "vCPU-s",
        doc: "CPU time of a warm request (its tenant already open)",
        role: Role::Limit,
        min: 0.0,
        min_exclusive: true,
        max: 3600.0,
        get: |w| w.cpu_seconds_per_request,
        set: |w, v| w.cpu_seconds_per_request = v,
        default: None,
    },
    Field {
        name: "cold_cpu_seconds_per_request",
        unit: "vCPU-s",
        doc: "extra CPU time of a cold request (its tenant closed: open + close)",
        role: Role::Limit,
        min: 0.0,
        min_exclusive: false,
        max: 3600.0,
        get: |w| w.cold_cpu_seconds_per_request,
        set: |w, v| w.cold_cpu_seconds_per_request = v,
        default: Some((
            0.0,
            "default: no cold cost (the file predates cold requests in the model)",
        )),
    },
    Field {
        name: "access_skew",
        unit: "Zipf exponent",
        doc: "skew of requests across a machine's tenants (0 = uniform, 1 = Zipf's law)",
        role: Role::Limit,
        min: 0.0,
        min_exclusive: false,
        max: 10.0,
        get: |w| w.access_skew,
        set: |w, v| w.access_skew = v,
        default: Some((0.0, "default: uniform (the file states no access pattern)")),
    },
    Field {
        name: "open_tenants_max",
        unit: "tenants",
        doc: "tenants the server keeps open at once (max_open; LRU eviction past it)",
        role: Role::Limit,
        min: 1.0,
        min_exclusive: false,
        max: 1_000_000_000.0,
        get: |w| w.open_tenants_max,
        set: |w, v| w.open_tenants_max = v,
        default: Some((
            DEFAULT_OPEN_TENANTS_MAX,
            "default: the server's default max_open (tenantd serve --max-open)",
        )),
    },
    Field {
        name: "idle_ttl_seconds",
        unit: "s",
        doc: "how long an idle tenant stays open (0 = closed after every request)",
        role: Role::Limit,
        min: 0.0,
        min_exclusive: false,
        max: 31_536_000.0,
        get: |w| w.idle_ttl_seconds,
        set: |w, v| w.idle_ttl_seconds = v,
        default: Some((
            DEFAULT_IDLE_TTL_SECONDS,
            "default: the server's default idle TTL (tenantd serve --idle-ttl)",
        )),
    },
    Field {
        name: "syncs_per_request",
        unit: "syncs",
        doc: "durable disk syncs one request costs (0 = none)",
        role: Role::Limit,
        min: 0.0,
        min_exclusive: false,
        max: 10_000.0,
        get: |w| w.syncs_per_request,
        set: |w, v| w.syncs_per_request = v,
        default: None,
    },
    Field {
        name: "readers_per_tenant",
        unit: "connections",
        doc: "reader connections kept per open tenant; it holds 3 + 2 x this many files",
        role: Role::Limit,
        min: 0.0,
        min_exclusive: false,
        max: 1000.0,
        get: |w| w.readers_per_tenant,
        set: |w, v| w.readers_per_tenant = v,
        default: None,
    },
    Field {
        name: "headroom_fraction",
        unit: "fraction",
        doc: "share of the binding limit kept free",
        role: Role::Economics,
        min: 0.0,
        min_exclusive: false,
        max: 0.99,
        get: |w| w.headroom_fraction,
        set: |w, v| w.headroom_fraction = v,
        default: None,
    },
    Field {
        name: "price_usd_per_tenant_month",
        unit: "USD/month",
        doc: "price charged per tenant per month",
        role: Role::Economics,
        min: 0.0,
        min_exclusive: false,
        max: 1_000_000.0,
        get: |w| w.price_usd_per_tenant_month,
        set: |w, v| w.price_usd_per_tenant_month = v,
        default: None,
    },
];

impl Profile for WorkloadProfile {
    const KIND: &'static str = "workload";

    fn fields() -> &'static [Field<Self>] {
        &FIELDS
    }

    fn blank() -> Self {
        WorkloadProfile {
            meta: ProfileMeta::default(),
            tenant_create_mb: f64::NAN,
            tenant_growth_mb_per_year: f64::NAN,
            retention_years: f64::NAN,
            requests_per_tenant_per_day: f64::NAN,
            peak_to_average_ratio: f64::NAN,
            op_in_flight_seconds: f64::NAN,
            ram_mb_per_in_flight_op: f64::NAN,
            ram_mb_per_idle_tenant: f64::NAN,
            cpu_seconds_per_request: f64::NAN,
            cold_cpu_seconds_per_request: f64::NAN,
            access_skew: f64::NAN,
            open_tenants_max: f64::NAN,
            idle_ttl_seconds: f64::NAN,
            syncs_per_request: f64::NAN,
            readers_per_tenant: f64::NAN,
            headroom_fraction: f64::NAN,
            price_usd_per_tenant_month: f64::NAN,
        }
    }

    fn meta(&self) -> &ProfileMeta {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut ProfileMeta {
        &mut self.meta
    }

    fn retired(name: &str) -> Option<&'static str> {
        (name == "files_per_open_tenant").then_some(
            "replaced by `readers_per_tenant`: an open tenant holds 3 + 2 x readers_per_tenant \
             files, the server's own bound (its default of 2 readers gives 7)",
        )
    }

    fn check_relations(&self) -> Result<(), (String, String)> {
        if self.storage_bytes_per_tenant() <= 0.0 {
            // Name the factor that is 0: the horizon (`--years 0`), else the growth.
            let field = if self.retention_years == 0.0 {
                "retention_years"
            } else {
                "tenant_growth_mb_per_year"
            };
            return Err((
                field.to_string(),
                format!(
                    "is 0 while tenant_create_mb is 0, so a tenant would store nothing: \
                     tenant_create_mb + tenant_growth_mb_per_year x retention_years must be \
                     above 0 (raise {field} or tenant_create_mb)"
                ),
            ));
        }
        Ok(())
    }
}
