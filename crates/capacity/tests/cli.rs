//! The command line as the binary sees it: `tenantd capacity …` parsed by clap with the same
//! wiring as crates/tenantd, then rendered without printing.

mod common;

use common::run;

fn stdout(args: &[&str]) -> String {
    run(args).unwrap().stdout
}

/// The words of the first line of `text` that starts with `key`.
fn line<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no line starting with {key:?} in:\n{text}"))
        .split_whitespace()
        .collect()
}

#[test]
fn plain_capacity_is_the_launch_case() {
    let out = stdout(&[]);
    assert!(
        out.contains("Capacity of one fly-shared-cpu-2x under workload `seed`"),
        "{out}"
    );
    assert_eq!(line(&out, "tenants supported")[2], "1,500");
    assert_eq!(
        line(&out, "memory"),
        ["memory", "1.5", "MB", "3", "GB", "2,000", "<-", "binds"]
    );
    assert_eq!(line(&out, "gross margin")[2], "98%");
    assert_eq!(line(&out, "cost per tenant")[3], "$0.010");
}

#[test]
fn flags_override_machine_and_workload() {
    let out = stdout(&["--machine", "ovh-vps-6", "--years", "3", "--price", "9.99"]);
    assert!(
        out.contains("under workload `seed`") && out.contains("Data kept: 3 years"),
        "{out}"
    );
    assert!(out.contains("$9.99 per tenant per month"), "{out}");
}

#[test]
fn shared_flags_work_after_a_subcommand() {
    let out = stdout(&["roadmap", "--format", "markdown"]);
    assert!(out.starts_with("### Scaling roadmap"), "{out}");
    assert!(
        out.contains("| enterprise | 1,000,000 | ovh-vps-6 |"),
        "{out}"
    );
}

#[test]
fn roadmap_sizes_a_cluster_for_any_user_count() {
    let out = stdout(&["roadmap", "--users", "1000000", "--machine", "ovh-vps-6"]);
    assert!(out.contains("Cluster for 1,000,000 users"), "{out}");
    assert!(out.contains("186"), "{out}");
}

#[test]
fn check_seed_as_json_lists_every_claim() {
    let out = stdout(&["check-seed", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let claims = v["claims"].as_array().unwrap();
    assert_eq!(claims.len(), 15);
    assert_eq!(claims[0]["verdict"], "holds");
}

#[test]
fn check_seed_refuses_a_machine() {
    let err = run(&["check-seed", "--machine", "ovh-vps-6"]).unwrap_err();
    assert!(
        err.to_string().contains("--machine does not apply"),
        "{err}"
    );
}

#[test]
fn compare_explain_and_profiles_render() {
    assert!(stdout(&["compare"]).contains("docker-per-tenant   10,000    500 GB"));
    let explain = stdout(&["explain"]);
    assert!(
        explain.contains("= (4 GB - 1 GB) / (0 MB + 1 x 1.5 MB)"),
        "{explain}"
    );
    assert!(explain.contains("Sensitivity"), "{explain}");
    assert!(stdout(&["profiles"]).contains("docker-per-tenant"));
    let seed = stdout(&["profiles", "seed"]);
    assert!(
        seed.contains("ram_mb_per_in_flight_op") && seed.contains("seed §2"),
        "{seed}"
    );
    assert!(stdout(&["profiles", "ovh-vps-6"]).contains("disk_sync_ops_per_second"));
}

#[test]
fn svg_charts_are_produced_on_request() {
    let out = run(&["--svg", "chart.svg"]).unwrap();
    let (path, svg) = out.svg.unwrap();
    assert_eq!(path.to_str(), Some("chart.svg"));
    assert!(
        svg.starts_with("<svg") && svg.contains("Tenants per machine"),
        "{svg:.200}"
    );
    assert!(svg.contains("seed: enterprise"));
}

#[test]
fn bad_flag_values_name_the_field() {
    let err = format!("{:#}", run(&["--years", "-1"]).unwrap_err());
    assert!(
        err.contains("--years") && err.contains("retention_years"),
        "{err}"
    );
    let err = format!("{:#}", run(&["--target-margin", "1"]).unwrap_err());
    assert!(err.contains("--target-margin"), "{err}");
}

#[test]
fn a_cold_cost_shows_in_the_launch_report_explain_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cold.toml");
    std::fs::write(
        &path,
        "base = \"seed\"\ncold_cpu_seconds_per_request = 0.002\naccess_skew = 1\n",
    )
    .unwrap();
    let file = path.to_str().unwrap();
    let out = stdout(&["--workload", file]);
    // At 0.002 s per cold request, CPU sustained binds below memory's 2,000.
    assert_eq!(
        line(&out, "binding constraint")[2..],
        ["CPU", "sustained", "(baseline)"]
    );
    let cold = line(&out, "requests cold");
    assert!(cold[2].ends_with('%') && cold[2] != "0%", "{out}");
    assert!(out.contains("each costs 0.002 vCPU-s more"), "{out}");

    let out = stdout(&["explain", "--workload", file]);
    assert!(
        out.contains("cold requests at peak (Che's approximation)"),
        "{out}"
    );
    assert!(out.contains("= Zipf(1) over "), "{out}");
    assert!(
        out.contains("workload.cold_cpu_seconds_per_request")
            && out.contains("workload.idle_ttl_seconds"),
        "the cold inputs move the verdict, so the sensitivity table lists them:\n{out}"
    );

    let out = stdout(&["--workload", file, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let cpu = &v["capacity"]["limits"][3];
    assert_eq!(cpu["constraint"], "cpu-sustained");
    let cold = cpu["cold_fraction"].as_f64().unwrap();
    assert!(cold > 0.0 && cold < 1.0, "{cpu}");
    assert!(
        v["capacity"]["cold"]["peak"]["cold_fraction"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(v["workload"]["access_skew"], 1.0);
}
