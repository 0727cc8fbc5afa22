//! Measured profile files: written by `capacity::profile_file`, read back by `capacity::load`
//! and `tenantd capacity`; older files without the measured-input fields still load.

use std::path::Path;

use capacity::load::{load_machine, load_workload};
use capacity::profile_file::{update_profile_file, Measured, ProfileFileError};
use capacity::workload::{DEFAULT_IDLE_TTL_SECONDS, DEFAULT_OPEN_TENANTS_MAX};
use capacity::{MachineProfile, Provenance, WorkloadProfile};

mod common;

fn measured(field: &str, value: f64, source: &str) -> Measured {
    Measured {
        field: field.into(),
        value,
        source: source.into(),
    }
}

fn provenance(date: &str, scenario: &str) -> Provenance {
    Provenance {
        date: date.into(),
        machine: "AMD EPYC 7B13, 2 cores, 4 GB, Linux 6.1, ext4".into(),
        version: "0.1.0".into(),
        scenarios: vec![scenario.into()],
        emulated: None,
    }
}

fn write_workload(path: &Path, fields: &[Measured], p: &Provenance) {
    update_profile_file::<WorkloadProfile>(path, "seed", "measured", "seed, measured", fields, p)
        .unwrap();
}

#[test]
fn a_written_workload_reads_back_with_values_sources_and_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("measured.toml");
    let p = Provenance {
        emulated: Some("fly-shared-cpu-2x".into()),
        ..provenance("2026-12-01", "cpu")
    };
    write_workload(
        &path,
        &[
            measured("cpu_seconds_per_request", 0.00004, "measured: cpu, warm"),
            measured(
                "cold_cpu_seconds_per_request",
                0.0006,
                "measured: cpu, cold",
            ),
        ],
        &p,
    );
    let w = load_workload(path.to_str().unwrap()).unwrap();
    assert_eq!(w.meta.name, "measured");
    assert_eq!(w.cpu_seconds_per_request, 0.00004);
    assert_eq!(w.cold_cpu_seconds_per_request, 0.0006);
    assert_eq!(
        w.meta.sources["cold_cpu_seconds_per_request"],
        "measured: cpu, cold"
    );
    // Everything else comes from the base, with the base's sources.
    let seed = capacity::builtin::workload("seed").unwrap();
    assert_eq!(w.ram_mb_per_in_flight_op, seed.ram_mb_per_in_flight_op);
    assert_eq!(
        w.meta.sources["headroom_fraction"],
        seed.meta.sources["headroom_fraction"]
    );
    assert_eq!(w.meta.provenance, Some(p));

    // `tenantd capacity` reads it and says where it comes from, in text and JSON.
    let out = common::run(&["--workload", path.to_str().unwrap()])
        .unwrap()
        .stdout;
    assert!(
        out.contains("Workload `measured` measured on AMD EPYC 7B13")
            && out.contains("(scenarios cpu), 2026-12-01, emulating fly-shared-cpu-2x"),
        "{out}"
    );
    let out = common::run(&["--workload", path.to_str().unwrap(), "--format", "json"]).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["workload"]["provenance"]["scenarios"][0], "cpu");
    assert_eq!(v["workload"]["provenance"]["emulated"], "fly-shared-cpu-2x");
    assert!(v["machine"]["provenance"].is_null());
    let out = common::run(&["profiles", path.to_str().unwrap(), "--format", "markdown"]).unwrap();
    assert!(
        out.stdout.contains("Provenance: measured on AMD"),
        "{}",
        out.stdout
    );
    let out = common::run(&["check-seed", "--workload", path.to_str().unwrap()]).unwrap();
    assert!(
        out.stdout.contains("Workload `measured` measured on AMD"),
        "{}",
        out.stdout
    );
    let out = common::run(&[
        "roadmap",
        "--workload",
        path.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out.unwrap().stdout).unwrap();
    assert_eq!(v["provenance"]["date"], "2026-12-01");
}

#[test]
fn two_scenarios_merge_into_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("measured.toml");
    write_workload(
        &path,
        &[
            measured("cpu_seconds_per_request", 0.00004, "measured: cpu"),
            measured("syncs_per_request", 0.5, "measured: cpu, fsync"),
        ],
        &provenance("2026-12-02", "cpu"),
    );
    // The second scenario ran on a clock that reads earlier: the later date stays.
    write_workload(
        &path,
        &[
            measured("ram_mb_per_in_flight_op", 0.2, "measured: inflight slope"),
            measured("syncs_per_request", 1.0, "measured: disk"),
        ],
        &provenance("2026-12-01", "inflight"),
    );
    let w = load_workload(path.to_str().unwrap()).unwrap();
    assert_eq!(w.cpu_seconds_per_request, 0.00004);
    assert_eq!(w.meta.sources["cpu_seconds_per_request"], "measured: cpu");
    assert_eq!(w.ram_mb_per_in_flight_op, 0.2);
    assert_eq!(w.syncs_per_request, 1.0);
    assert_eq!(w.meta.sources["syncs_per_request"], "measured: disk");
    let p = w.meta.provenance.unwrap();
    assert_eq!(p.scenarios, vec!["cpu", "inflight"]);
    assert_eq!(p.date, "2026-12-02");
    // Re-running a scenario does not list it twice.
    write_workload(&path, &[], &provenance("2026-12-03", "cpu"));
    let p = load_workload(path.to_str().unwrap())
        .unwrap()
        .meta
        .provenance
        .unwrap();
    assert_eq!((p.scenarios.len(), p.date.as_str()), (2, "2026-12-03"));
}

#[test]
fn a_bad_field_is_rejected_and_the_file_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("measured.toml");
    write_workload(
        &path,
        &[measured(
            "cpu_seconds_per_request",
            0.00004,
            "measured: cpu",
        )],
        &provenance("2026-12-01", "cpu"),
    );
    let before = std::fs::read(&path).unwrap();
    let update = |fields: &[Measured]| {
        update_profile_file::<WorkloadProfile>(
            &path,
            "seed",
            "measured",
            "seed, measured",
            fields,
            &provenance("2026-12-02", "disk"),
        )
        .unwrap_err()
    };

    let err = update(&[
        measured("syncs_per_request", 0.0, "measured: disk"),
        measured("cpu_per_request", 1.0, "typo"),
    ]);
    assert!(
        matches!(err, ProfileFileError::UnknownField { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("`cpu_per_request` is not a workload field"),
        "{err}"
    );
    // A machine field in a workload file is just as unknown.
    let err = update(&[measured("vcpu", 2.0, "measured")]);
    assert!(
        matches!(err, ProfileFileError::UnknownField { .. }),
        "{err:?}"
    );
    // Out of range: the result would not load.
    let err = update(&[measured("cpu_seconds_per_request", -1.0, "measured")]);
    assert!(matches!(err, ProfileFileError::Invalid { .. }), "{err:?}");
    assert!(err.to_string().contains("cpu_seconds_per_request"), "{err}");
    // Another base than the file's.
    let err = update_profile_file::<WorkloadProfile>(
        &path,
        "docker-per-tenant",
        "measured",
        "",
        &[],
        &provenance("2026-12-02", "disk"),
    )
    .unwrap_err();
    assert!(
        matches!(err, ProfileFileError::BaseMismatch { .. }),
        "{err:?}"
    );

    assert_eq!(std::fs::read(&path).unwrap(), before);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "temp files left: {leftovers:?}");
}

#[test]
fn a_machine_file_measured_on_this_host_overrides_its_base() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("this-host.toml");
    let fields = [
        measured("vcpu", 2.0, "measured: /proc/cpuinfo"),
        measured("ram_gb", 8.2, "measured: /proc/meminfo"),
        measured("disk_gb", 120.5, "measured: statvfs of the data dir"),
        measured(
            "disk_sync_ops_per_second",
            1850.0,
            "measured: disk scenario",
        ),
        measured(
            "open_files_max",
            1_048_576.0,
            "measured: RLIMIT_NOFILE hard limit",
        ),
    ];
    update_profile_file::<MachineProfile>(
        &path,
        "fly-shared-cpu-2x",
        "this-host",
        "this host, measured",
        &fields,
        &provenance("2026-12-01", "disk"),
    )
    .unwrap();
    let m = load_machine(path.to_str().unwrap()).unwrap();
    assert_eq!((m.vcpu, m.ram_gb, m.disk_gb), (2.0, 8.2, 120.5));
    assert_eq!(
        (m.disk_sync_ops_per_second, m.open_files_max),
        (1850.0, 1_048_576.0)
    );
    let fly = capacity::builtin::machine("fly-shared-cpu-2x").unwrap();
    assert_eq!(m.price_usd_per_month, fly.price_usd_per_month);
    assert_eq!(m.cpu_baseline_fraction, fly.cpu_baseline_fraction);
    let out = common::run(&["--machine", path.to_str().unwrap()])
        .unwrap()
        .stdout;
    assert!(out.contains("Capacity of one this-host"), "{out}");
    let out = common::run(&["profiles", path.to_str().unwrap()])
        .unwrap()
        .stdout;
    assert!(out.starts_with("machine profile `this-host`"), "{out}");
}

#[test]
fn a_file_from_before_the_measured_inputs_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    // Every field the model had before cold requests, no base: the new ones get defaults.
    let old = "name = \"old\"\ndescription = \"a full profile\"\n\
        tenant_create_mb = 0.1\ntenant_growth_mb_per_year = 10\nretention_years = 1\n\
        requests_per_tenant_per_day = 1000\npeak_to_average_ratio = 5\n\
        op_in_flight_seconds = 0.1\nram_mb_per_in_flight_op = 1\nram_mb_per_idle_tenant = 0\n\
        cpu_seconds_per_request = 0.0001\nsyncs_per_request = 1\nreaders_per_tenant = 2\n\
        headroom_fraction = 0.2\nprice_usd_per_tenant_month = 1\n";
    let path = dir.path().join("old.toml");
    std::fs::write(&path, old).unwrap();
    let w = load_workload(path.to_str().unwrap()).unwrap();
    assert_eq!(w.cold_cpu_seconds_per_request, 0.0);
    assert_eq!(w.access_skew, 0.0);
    assert_eq!(w.open_tenants_max, DEFAULT_OPEN_TENANTS_MAX);
    assert_eq!(w.idle_ttl_seconds, DEFAULT_IDLE_TTL_SECONDS);
    assert!(w.meta.sources["open_tenants_max"].starts_with("default"));
    assert_eq!(w.meta.provenance, None);
    // With a base, the base's values are inherited as before.
    let path = dir.path().join("based.toml");
    std::fs::write(&path, "base = \"seed\"\nidle_ttl_seconds = 0\n").unwrap();
    let w = load_workload(path.to_str().unwrap()).unwrap();
    assert_eq!((w.idle_ttl_seconds, w.open_tenants_max), (0.0, 1024.0));
}

#[test]
fn a_malformed_provenance_table_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    let cases = [
        ("[provenance]\ndate = \"x\"\nmachine = \"m\"\nversion = \"v\"\n", "provenance.scenarios"),
        (
            "[provenance]\ndate = 1\nmachine = \"m\"\nversion = \"v\"\nscenarios = []\n",
            "provenance.date",
        ),
        (
            "[provenance]\ndate = \"d\"\nmachine = \"m\"\nversion = \"v\"\nscenarios = []\nby = \"me\"\n",
            "provenance.by",
        ),
    ];
    for (table, field) in cases {
        std::fs::write(&path, format!("base = \"seed\"\n{table}")).unwrap();
        let err = load_workload(path.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("field `{field}`")), "{err}");
    }
}
