//! Regression tests, one per defect found in `tenantd capacity` (issue 7, items 18 and 19),
//! each named after the defect it pins.

use capacity::{builtin, load, Profile};
use clap::CommandFactory;

mod common;

use common::{run, Cmd};

fn error(args: &[&str]) -> String {
    match run(args) {
        Ok(out) => panic!("`capacity {}` succeeded:\n{}", args.join(" "), out.stdout),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn regression_users_u64_max_printed_a_cluster_of_18_quintillion() {
    let err = error(&["roadmap", "--users", "18446744073709551615"]);
    assert!(
        err.contains("--users") && err.contains("1..=1000000000000"),
        "{err}"
    );
}

#[test]
fn regression_users_zero_sized_a_cluster_of_one_machine() {
    let err = error(&["roadmap", "--users", "0"]);
    assert!(
        err.contains("--users") && err.contains("1..=1000000000000"),
        "{err}"
    );
    assert!(run(&["roadmap", "--users", "1000000000000"]).is_ok());
}

#[test]
fn regression_compare_tenants_zero_costed_a_machine_for_nobody() {
    let err = error(&["compare", "--tenants", "0"]);
    assert!(
        err.contains("--tenants") && err.contains("1..=1000000000000"),
        "{err}"
    );
}

#[test]
fn regression_roadmap_ignored_machine_without_users() {
    let out = run(&["roadmap", "--machine", "ovh-vps-6"]).unwrap().stdout;
    let launch = out.lines().find(|l| l.starts_with("launch")).unwrap();
    assert!(launch.contains("ovh-vps-6"), "{out}");
    assert!(!launch.contains("  fly-shared-cpu-2x  "), "{out}");
    // The seed's own statement keeps naming the seed's machine.
    assert!(launch.contains("1 fly-shared-cpu-2x, $15"), "{out}");
    let json = run(&["roadmap", "--machine", "ovh-vps-6", "--format", "json"]).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["machine"], "ovh-vps-6");
    assert_eq!(v["phases"][0]["model"]["machine"], "ovh-vps-6");
}

#[test]
fn regression_years_zero_error_named_tenant_growth_mb_per_year() {
    let err = error(&["--years", "0"]);
    assert!(err.contains("--years 0"), "{err}");
    assert!(err.contains("field `retention_years`"), "{err}");
    assert!(!err.contains("field `tenant_growth_mb_per_year`"), "{err}");
}

/// Every float in `v`, as JSON text.
fn floats(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Number(n) if n.is_f64() => out.push(n.to_string()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| floats(x, out)),
        serde_json::Value::Object(m) => m.values().for_each(|x| floats(x, out)),
        _ => {}
    }
}

#[test]
fn regression_json_printed_float_noise_like_0_05000000000000001() {
    let mut checked = 0;
    for args in [
        &[][..],
        &["roadmap"],
        &["roadmap", "--users", "1000000"],
        &["check-seed"],
        &["compare"],
        &["explain"],
        &["profiles", "seed"],
    ] {
        let argv: Vec<&str> = args.iter().copied().chain(["--format", "json"]).collect();
        let out = run(&argv).unwrap().stdout;
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let mut all = Vec::new();
        floats(&v, &mut all);
        checked += all.len();
        for f in all {
            let digits = f
                .split(['e', 'E'])
                .next()
                .unwrap()
                .chars()
                .filter(char::is_ascii_digit)
                .collect::<String>();
            let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
            assert!(
                significant <= 12,
                "`capacity {}` prints {f}",
                argv.join(" ")
            );
        }
    }
    assert!(checked > 100, "only {checked} floats");
    let out = run(&["--format", "json"]).unwrap().stdout;
    assert!(
        out.contains("\"price_for_target_margin_usd\": 0.05"),
        "{out}"
    );
}

#[test]
fn regression_open_files_per_tenant_was_3_not_the_servers_formula() {
    let seed = builtin::workload("seed").unwrap();
    let server = store::PoolConfig::new("/unused");
    assert_eq!(
        seed.readers_per_tenant, server.readers_per_tenant as f64,
        "the seed workload assumes the server's default readers_per_tenant"
    );
    for readers in 0..5 {
        let w = capacity::WorkloadProfile {
            readers_per_tenant: readers as f64,
            ..seed.clone()
        };
        let cfg = store::PoolConfig {
            readers_per_tenant: readers,
            ..store::PoolConfig::new("/unused")
        };
        assert_eq!(w.files_per_open_tenant(), cfg.fds_per_tenant() as f64);
    }
    let fly = builtin::machine("fly-shared-cpu-2x").unwrap();
    let files = capacity::evaluate(&fly, &seed);
    let limit = files.limit(capacity::Constraint::OpenFiles);
    assert_eq!(limit.demand_per_tenant, 7.0);
}

#[test]
fn regression_a_profile_file_with_files_per_open_tenant_says_what_replaced_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.toml");
    std::fs::write(&path, "base = \"seed\"\nfiles_per_open_tenant = 3\n").unwrap();
    let err = load::load_workload(path.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("files_per_open_tenant") && err.contains("readers_per_tenant"),
        "{err}"
    );
    assert!(capacity::WorkloadProfile::field("readers_per_tenant").is_some());
}

#[test]
fn regression_profiles_help_listed_flags_that_do_nothing_there() {
    let mut top = Cmd::command();
    let capacity = top.find_subcommand_mut("capacity").unwrap();
    let profiles = capacity.find_subcommand_mut("profiles").unwrap();
    let help = profiles.render_long_help().to_string();
    assert!(help.contains("--format"), "{help}");
    for flag in [
        "--machine",
        "--workload",
        "--years",
        "--price",
        "--headroom",
        "--target-margin",
        "--svg",
    ] {
        assert!(
            !help.contains(flag),
            "`capacity profiles --help` lists {flag}:\n{help}"
        );
    }
    // Given before the subcommand, they are refused by name rather than ignored.
    let err = error(&["--years", "3", "profiles"]);
    assert!(
        err.contains("--years does not apply to `profiles`"),
        "{err}"
    );
    // Model flags still work on either side of a model subcommand.
    let before = run(&["--machine", "ovh-vps-6", "explain"]).unwrap().stdout;
    let after = run(&["explain", "--machine", "ovh-vps-6"]).unwrap().stdout;
    assert_eq!(before, after);
    assert!(before.contains("ovh-vps-6"), "{before}");
    let json = run(&["--format", "json", "profiles"]).unwrap().stdout;
    assert!(json.starts_with('{'), "{json}");
}
