//! Property tests: capacity is monotone in machine resources, in per-tenant demands and in the
//! server's open cap and idle TTL, doubling every machine resource never lowers it, and with no
//! cold cost the CPU limits are the plain warm formula.

use capacity::field::{Profile, ProfileMeta};
use capacity::limits::{evaluate, Constraint};
use capacity::machine::MachineProfile;
use capacity::workload::WorkloadProfile;
use proptest::prelude::*;

prop_compose! {
    fn machine()(
        vcpu in 0.25f64..256.0,
        cpu_baseline_fraction in 0.01f64..=1.0,
        os_reserve_gb in 0.0f64..8.0,
        tenant_ram_gb in 0.1f64..1024.0,
        disk_gb in 1.0f64..20_000.0,
        disk_sync_ops_per_second in 10.0f64..1e6,
        open_files_max in 1024.0f64..1e7,
        price_usd_per_month in 0.0f64..10_000.0,
    ) -> MachineProfile {
        let m = MachineProfile {
            meta: ProfileMeta { name: "prop".into(), ..ProfileMeta::default() },
            vcpu,
            cpu_baseline_fraction,
            ram_gb: os_reserve_gb + tenant_ram_gb,
            os_reserve_gb,
            disk_gb,
            disk_sync_ops_per_second,
            open_files_max,
            price_usd_per_month,
        };
        m.validate().unwrap();
        m
    }
}

prop_compose! {
    /// Cold requests: their extra CPU and what decides how many there are.
    fn cold()(
        cold_cpu_seconds_per_request in prop_oneof![Just(0.0), 1e-6f64..0.01],
        access_skew in 0.0f64..2.0,
        open_tenants_max in 1.0f64..100_000.0,
        idle_ttl_seconds in 0.0f64..3600.0,
    ) -> (f64, f64, f64, f64) {
        (cold_cpu_seconds_per_request, access_skew, open_tenants_max, idle_ttl_seconds)
    }
}

prop_compose! {
    fn workload()(
        (cold_cpu_seconds_per_request, access_skew, open_tenants_max, idle_ttl_seconds) in cold(),
        tenant_create_mb in 0.01f64..100.0,
        tenant_growth_mb_per_year in 0.0f64..1000.0,
        retention_years in 0.0f64..20.0,
        requests_per_tenant_per_day in 1.0f64..1e6,
        peak_to_average_ratio in 1.0f64..100.0,
        op_in_flight_seconds in 0.001f64..10.0,
        ram_mb_per_in_flight_op in 0.01f64..100.0,
        ram_mb_per_idle_tenant in 0.0f64..100.0,
        cpu_seconds_per_request in 1e-6f64..1.0,
        syncs_per_request in 0.0f64..10.0,
        readers_per_tenant in 0.0f64..10.0,
        headroom_fraction in 0.0f64..0.9,
        price_usd_per_tenant_month in 0.0f64..100.0,
    ) -> WorkloadProfile {
        let w = WorkloadProfile {
            meta: ProfileMeta { name: "prop".into(), ..ProfileMeta::default() },
            tenant_create_mb,
            tenant_growth_mb_per_year,
            retention_years,
            requests_per_tenant_per_day,
            peak_to_average_ratio,
            op_in_flight_seconds,
            ram_mb_per_in_flight_op,
            ram_mb_per_idle_tenant,
            cpu_seconds_per_request,
            cold_cpu_seconds_per_request,
            access_skew,
            open_tenants_max,
            idle_ttl_seconds,
            syncs_per_request,
            readers_per_tenant,
            headroom_fraction,
            price_usd_per_tenant_month,
        };
        w.validate().unwrap();
        w
    }
}

/// Machine fields that are resources: more of any of them is better.
const RESOURCES: [&str; 6] = [
    "vcpu",
    "cpu_baseline_fraction",
    "ram_gb",
    "disk_gb",
    "disk_sync_ops_per_second",
    "open_files_max",
];

/// Workload fields that keep tenants open longer: more of either means fewer cold requests.
const KEEP_OPEN: [&str; 2] = ["open_tenants_max", "idle_ttl_seconds"];

/// Workload fields that are per-tenant demands: more of any of them is worse.
const DEMANDS: [&str; 12] = [
    "tenant_create_mb",
    "tenant_growth_mb_per_year",
    "retention_years",
    "requests_per_tenant_per_day",
    "peak_to_average_ratio",
    "op_in_flight_seconds",
    "ram_mb_per_in_flight_op",
    "ram_mb_per_idle_tenant",
    "cpu_seconds_per_request",
    "cold_cpu_seconds_per_request",
    "syncs_per_request",
    "readers_per_tenant",
];

proptest! {
    #[test]
    fn doubling_every_machine_resource_never_lowers_capacity(m in machine(), w in workload()) {
        let before = evaluate(&m, &w);
        let after = evaluate(&m.scaled_resources(2.0), &w);
        prop_assert!(after.supported_tenants >= before.supported_tenants);
        prop_assert!(after.max_tenants >= before.max_tenants);
        for (a, b) in after.limits.iter().zip(&before.limits) {
            prop_assert!(a.max_tenants >= b.max_tenants, "{:?}", a.constraint);
        }
    }

    #[test]
    fn capacity_is_monotone_in_each_machine_resource(
        m in machine(),
        w in workload(),
        which in 0..RESOURCES.len(),
        factor in 1.0f64..10.0,
    ) {
        let field = MachineProfile::field(RESOURCES[which]).unwrap();
        let mut more = m.clone();
        let grown = ((field.get)(&m) * factor).min(field.max);
        (field.set)(&mut more, grown);
        prop_assume!(more.validate().is_ok());
        let (after, before) = (evaluate(&more, &w), evaluate(&m, &w));
        prop_assert!(after.supported_tenants >= before.supported_tenants);
    }

    #[test]
    fn capacity_is_antitone_in_each_workload_demand(
        m in machine(),
        w in workload(),
        which in 0..DEMANDS.len(),
        factor in 1.0f64..10.0,
    ) {
        let field = WorkloadProfile::field(DEMANDS[which]).unwrap();
        let mut heavier = w.clone();
        let grown = ((field.get)(&w) * factor).min(field.max);
        (field.set)(&mut heavier, grown);
        prop_assume!(heavier.validate().is_ok());
        let (after, before) = (evaluate(&m, &heavier), evaluate(&m, &w));
        prop_assert!(after.supported_tenants <= before.supported_tenants);
    }

    #[test]
    fn capacity_is_monotone_in_the_open_cap_and_the_idle_ttl(
        m in machine(),
        w in workload(),
        which in 0..KEEP_OPEN.len(),
        factor in 1.0f64..10.0,
    ) {
        let field = WorkloadProfile::field(KEEP_OPEN[which]).unwrap();
        let mut longer = w.clone();
        let grown = ((field.get)(&w) * factor).min(field.max);
        (field.set)(&mut longer, grown);
        prop_assume!(longer.validate().is_ok());
        let (after, before) = (evaluate(&m, &longer), evaluate(&m, &w));
        for k in [Constraint::CpuPeak, Constraint::CpuSustained] {
            prop_assert!(
                after.limit(k).max_tenants >= before.limit(k).max_tenants * (1.0 - 1e-9),
                "{:?}", k
            );
        }
        prop_assert!(after.supported_tenants >= before.supported_tenants);
    }

    #[test]
    fn with_no_cold_cost_the_cpu_limits_are_the_warm_formula(m in machine(), w in workload()) {
        let w = WorkloadProfile { cold_cpu_seconds_per_request: 0.0, ..w };
        let c = evaluate(&m, &w);
        let peak = m.vcpu / (w.cpu_seconds_per_request * w.peak_requests_per_second());
        let sustained =
            m.sustained_vcpu() / (w.cpu_seconds_per_request * w.average_requests_per_second());
        prop_assert_eq!(c.limit(Constraint::CpuPeak).max_tenants, peak);
        prop_assert_eq!(c.limit(Constraint::CpuSustained).max_tenants, sustained);
    }

    #[test]
    fn a_cpu_limit_is_where_the_demand_meets_the_cpu(m in machine(), w in workload()) {
        let c = evaluate(&m, &w);
        for (k, vcpu, rate) in [
            (Constraint::CpuPeak, m.vcpu, w.peak_requests_per_second()),
            (Constraint::CpuSustained, m.sustained_vcpu(), w.average_requests_per_second()),
        ] {
            let n = c.limit(k).max_tenants;
            let demand = |n: f64| n * rate * w.effective_cpu_seconds_per_request(n, rate);
            prop_assert!(demand(n) <= vcpu * (1.0 + 1e-9), "{:?}: {} > {}", k, demand(n), vcpu);
            let all_warm = vcpu / (w.cpu_seconds_per_request * rate);
            if n < all_warm * (1.0 - 1e-9) {
                // Below the all-warm limit only because one more bit of tenants would not fit.
                prop_assert!(demand(n * (1.0 + 1e-9)) >= vcpu * (1.0 - 1e-9), "{:?}", k);
            }
        }
    }

    #[test]
    fn the_binding_limit_is_the_smallest_and_supported_fits_under_it(
        m in machine(),
        w in workload(),
    ) {
        let c = evaluate(&m, &w);
        for l in &c.limits {
            prop_assert!(c.max_tenants <= l.max_tenants);
        }
        prop_assert_eq!(c.limit(c.binding).max_tenants, c.max_tenants);
        prop_assert!(c.supported_tenants as f64 <= c.max_tenants * (1.0 + 1e-9));
    }
}
