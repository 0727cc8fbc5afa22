//! Golden tests: the built-in seed profiles reproduce the seed's own figures
//! (docs/SEED.md), and `check-seed` gives the verdicts documented in
//! docs/CAPACITY.md.

use capacity::builtin;
use capacity::claims::{check_seed, SeedCase, Verdict};
use capacity::compare::compare;
use capacity::economics::{cost_per_user, gross_margin, machines_for};
use capacity::limits::{evaluate, Constraint};
use capacity::roadmap::{plan, SEED_ROADMAP};
use capacity::units::MB;

fn approx(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn storage_limit_is_5000_db_files() {
    let c = evaluate(
        &builtin::machine("fly-shared-cpu-2x").unwrap(),
        &builtin::workload("seed").unwrap(),
    );
    assert!(approx(c.limit(Constraint::Storage).max_tenants, 5_000.0));
}

#[test]
fn ram_limit_is_2000_concurrent_ops() {
    let fly = builtin::machine("fly-shared-cpu-2x").unwrap();
    let seed = builtin::workload("seed").unwrap();
    let ops = fly.usable_ram_bytes() / (seed.ram_mb_per_in_flight_op * MB);
    assert!(approx(ops, 2_000.0));
    // With the implied one operation in flight per tenant, that is 2,000 tenants.
    assert!(approx(seed.peak_concurrency(), 1.0));
    assert!(approx(
        evaluate(&fly, &seed).limit(Constraint::Memory).max_tenants,
        2_000.0
    ));
}

#[test]
fn launch_verdict_is_1500_from_memory_and_implied_headroom() {
    let fly = builtin::machine("fly-shared-cpu-2x").unwrap();
    let seed = builtin::workload("seed").unwrap();
    let c = evaluate(&fly, &seed);
    assert_eq!(c.binding, Constraint::Memory);
    assert_eq!(c.supported_tenants, 1_500);
    // The assumptions that yield 1,500 are implied, and say so.
    assert!(approx(seed.headroom_fraction, 0.25));
    assert!(seed.meta.sources["headroom_fraction"].starts_with("implied"));
    assert!(seed.meta.sources["requests_per_tenant_per_day"].starts_with("implied"));
}

#[test]
fn docker_idles_500_gb_for_10000_tenants() {
    let fly = builtin::machine("fly-shared-cpu-2x").unwrap();
    let docker = builtin::workload("docker-per-tenant").unwrap();
    let seed = builtin::workload("seed").unwrap();
    let rows = compare(&fly, &[&docker, &seed], 10_000);
    assert!(approx(rows[0].idle_ram_bytes, 500e9));
    assert!(
        rows[0].monthly_cost_idle_usd >= 2_000.0,
        "the seed's ~$2,000+"
    );
    assert_eq!(rows[1].idle_ram_bytes, 0.0);
}

#[test]
fn roadmap_costs_per_user_at_the_seeds_machine_counts() {
    let expected = [0.010, 0.001, 0.001];
    for (stated, want) in SEED_ROADMAP.iter().zip(expected) {
        let machine = builtin::machine(stated.machine).unwrap();
        let monthly = stated.machines as f64 * machine.price_usd_per_month;
        assert!(approx(monthly, stated.monthly_cost_usd), "{}", stated.name);
        let per_user = cost_per_user(monthly, stated.users).unwrap();
        assert!(approx(per_user, want), "{}: {per_user}", stated.name);
    }
}

#[test]
fn twenty_nodes_cost_1000_per_month() {
    let ovh = builtin::machine("ovh-vps-6").unwrap();
    assert!(approx(20.0 * ovh.price_usd_per_month, 1_000.0));
    assert_eq!(machines_for(1_000_000, 50_000), Some(20));
}

#[test]
fn gross_margin_is_99_8_percent_at_the_implied_price() {
    let seed = builtin::workload("seed").unwrap();
    let margin = gross_margin(seed.price_usd_per_tenant_month, 0.001).unwrap();
    assert!(approx(margin, 0.998));
}

#[test]
fn launch_phase_plans_one_fly_machine() {
    let fly = builtin::machine("fly-shared-cpu-2x").unwrap();
    let seed = builtin::workload("seed").unwrap();
    let p = plan("launch", 1_500, &fly, &seed);
    assert_eq!(p.machines, Some(1));
    assert!(approx(p.cost_per_user_usd.unwrap(), 0.010));
}

#[test]
fn growth_node_holds_42000_concurrent_ops_so_50000_users_need_concurrency_below_0_84() {
    let ovh = builtin::machine("ovh-vps-6").unwrap();
    let seed = builtin::workload("seed").unwrap();
    let c = evaluate(&ovh, &seed);
    assert!(approx(c.limit(Constraint::Memory).max_tenants, 42_000.0));
    let reqs = capacity::sensitivity::requirements(&ovh, &seed, 50_000.0);
    let memory = reqs
        .iter()
        .find(|r| r.constraint == Constraint::Memory)
        .unwrap();
    assert_eq!(memory.input, "peak_concurrency");
    assert!(approx(memory.required, 0.84));
}

#[test]
fn check_seed_verdicts() {
    let case = SeedCase::with_workload(builtin::workload("seed").unwrap()).unwrap();
    let verdicts: Vec<(&str, Verdict)> = check_seed(&case)
        .iter()
        .map(|c| (c.id, c.verdict))
        .collect();
    use Verdict::*;
    assert_eq!(
        verdicts,
        vec![
            ("docker-idle-ram", Holds),
            ("docker-idle-cost", HoldsIf),
            ("scale-to-zero-idle-ram", Holds),
            ("scale-to-zero-idle-cost", DoesNotHold),
            ("storage-limit", HoldsIf),
            ("ram-limit", Holds),
            ("cpu-limit", HoldsIf),
            ("launch-verdict", HoldsIf),
            ("growth-node", DoesNotHold),
            ("enterprise-nodes", DoesNotHold),
            ("enterprise-bill", Holds),
            ("cost-per-user-launch", Holds),
            ("cost-per-user-growth", DoesNotHold),
            ("cost-per-user-enterprise", DoesNotHold),
            ("gross-margin", DoesNotHold),
        ]
    );
}

#[test]
fn a_faster_workload_flips_the_growth_verdicts() {
    // With syncs off the hot path and half the time in flight, a node holds 50,000 users
    // before headroom: the verdicts are computed, not hard-coded.
    let mut w = builtin::workload("seed").unwrap();
    w.syncs_per_request = 0.0;
    w.op_in_flight_seconds = 0.5;
    let claims = check_seed(&SeedCase::with_workload(w).unwrap());
    let growth = claims.iter().find(|c| c.id == "growth-node").unwrap();
    assert_eq!(growth.verdict, Verdict::HoldsIf, "{}", growth.why);
}

#[test]
fn the_seed_assumes_the_servers_default_open_cap_and_idle_ttl() {
    let seed = builtin::workload("seed").unwrap();
    let server = store::PoolConfig::new("/unused");
    assert_eq!(seed.open_tenants_max, server.max_open as f64);
    assert_eq!(seed.idle_ttl_seconds, server.idle_ttl.as_secs_f64());
    assert_eq!(
        capacity::workload::DEFAULT_OPEN_TENANTS_MAX,
        server.max_open as f64
    );
    assert_eq!(
        capacity::workload::DEFAULT_IDLE_TTL_SECONDS,
        server.idle_ttl.as_secs_f64()
    );
}

#[test]
fn at_the_launch_verdict_a_third_of_the_seeds_requests_find_their_tenant_closed() {
    let c = evaluate(
        &builtin::machine("fly-shared-cpu-2x").unwrap(),
        &builtin::workload("seed").unwrap(),
    );
    // Uniform access, 1,500 tenants, 1,024 open at most: at peak the cap binds (T_c = 1.15 s
    // below the 10 s TTL), and Che is exact for uniform popularity: 1 - 1,024 / 1,500.
    assert!(approx(c.cold.peak.cold_fraction, 1.0 - 1024.0 / 1500.0));
    // On average (0.1 req/s) the TTL binds first: e^(-0.1 x 10).
    assert_eq!(c.cold.average.open_seconds, 10.0);
    assert!(approx(c.cold.average.cold_fraction, (-1.0f64).exp()));
}

#[test]
fn a_cold_cost_lowers_the_cpu_limits_between_all_warm_and_all_cold() {
    let fly = builtin::machine("fly-shared-cpu-2x").unwrap();
    let mut w = builtin::workload("seed").unwrap();
    w.cold_cpu_seconds_per_request = 0.001;
    let c = evaluate(&fly, &w);
    for (k, all_warm) in [
        (Constraint::CpuPeak, 8_000.0),
        (Constraint::CpuSustained, 5_000.0),
    ] {
        let l = c.limit(k);
        let all_cold = all_warm * 0.00025 / (0.00025 + 0.001);
        assert!(
            l.max_tenants > all_cold && l.max_tenants < all_warm,
            "{k:?}: {l:?}"
        );
        let cold = l.cold_fraction.unwrap();
        assert!(
            approx(l.demand_per_tenant * l.max_tenants, l.capacity),
            "{l:?}"
        );
        assert!(cold > 0.0 && cold < 1.0, "{cold}");
    }
    // At 0.001 s per cold request, CPU sustained binds instead of memory.
    assert_eq!(c.binding, Constraint::CpuSustained);
}
