//! `tenantd prove --quick` end to end, with the smallest budget: the built binary calibrates
//! against servers it starts, under emulation where the host can (root + cgroup v1; required
//! when TENANTD_REQUIRE_CGROUP=1, as scripts/test.sh sets as root) and natively elsewhere, and
//! writes its report folder. Checks that every
//! part of the report is there and agrees with itself — not that any number reaches a speed.

use std::process::Command;

use serde_json::Value;

#[test]
fn prove_quick_writes_a_consistent_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let scratch = dir.path().join("scratch");
    let emulate = bench::emulate::available();
    assert!(
        emulate || !bench::emulate::required_by_tests(),
        "TENANTD_REQUIRE_CGROUP=1 but this host cannot emulate"
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenantd"));
    cmd.args([
        "prove",
        "--quick",
        "--budget",
        "40s",
        "--requests-per-tenant-per-day",
        "1000",
    ])
    .arg("--out")
    .arg(&out)
    .arg("--scratch")
    .arg(&scratch);
    if emulate {
        cmd.arg("--emulate");
    }
    let run = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "prove failed\n{stdout}\n{stderr}");

    // The folder.
    for f in [
        "report.md",
        "raw.json",
        "workload.toml",
        "machine.toml",
        "capacity.svg",
        "inflight.svg",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let raw: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("raw.json")).unwrap()).unwrap();
    let scenarios: Vec<&str> = raw["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["scenario"].as_str().unwrap())
        .collect();
    // Every scenario ran, or was skipped (and said so) when the budget ran out.
    let skipped: Vec<&str> = raw["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let all: Vec<&str> = scenarios.iter().chain(&skipped).copied().collect();
    assert_eq!(all, ["disk", "idle", "inflight", "cpu", "cold"], "{raw}");
    assert!(scenarios.len() >= 3, "{raw}");
    assert_eq!(raw["failed"], serde_json::json!([]));
    assert_eq!(raw["provenance"]["emulated"].is_string(), emulate, "{raw}");
    let levels = raw["scenarios"][2]["raw"]["levels"].as_array().unwrap();
    assert!(levels.len() >= 2);
    for l in levels {
        assert!(l["peak_rss_bytes"].as_u64().unwrap() >= l["rss_before_bytes"].as_u64().unwrap());
        // Under emulation the cgroup's counters are read; natively they are absent.
        assert_eq!(l["cgroup_peak_bytes"].is_u64(), emulate, "{l}");
        assert_eq!(l["cgroup_throttled_periods"].is_u64(), emulate, "{l}");
    }
    // The chart has one point per level.
    let svg = std::fs::read_to_string(out.join("inflight.svg")).unwrap();
    assert_eq!(svg.matches("class=\"point\"").count(), levels.len());

    // The measured profiles load in `tenantd capacity` and give the report's verdict.
    let cap = Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .args(["capacity", "--format", "json", "--workload"])
        .arg(out.join("workload.toml"))
        .arg("--machine")
        .arg(out.join("machine.toml"))
        .output()
        .unwrap();
    assert!(
        cap.status.success(),
        "{}",
        String::from_utf8_lossy(&cap.stderr)
    );
    let cap: Value = serde_json::from_slice(&cap.stdout).unwrap();
    let supported = &raw["verdict"]["measured"]["capacity"]["supported_tenants"];
    assert_eq!(&cap["capacity"]["supported_tenants"], supported);
    assert_eq!(cap["workload"]["requests_per_tenant_per_day"], 1000.0);
    let sources = &cap["workload"]["sources"];
    for f in bench::prove::verdict::MEASURED_WORKLOAD_FIELDS {
        assert!(
            sources[f].as_str().unwrap().starts_with("measured:"),
            "{f}: {}",
            sources[f]
        );
    }
    assert!(sources["requests_per_tenant_per_day"]
        .as_str()
        .unwrap()
        .starts_with("flag:"));

    // The text on stdout and the markdown say the same verdict, with the seed's claim.
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let n = supported.as_u64().unwrap();
    let holds = format!("holds {} active tenants", capacity::units::count(n as f64));
    assert!(
        md.contains(&holds) && stdout.contains(&holds),
        "{holds}\n{md}"
    );
    assert!(md.contains("the seed claimed 1,500"));
    assert!(md.contains(if emulate {
        "emulated (cgroup v1"
    } else {
        "native"
    }));
    assert!(
        md.contains("requests_per_tenant_per_day"),
        "assumed inputs listed"
    );
    // Nothing left behind in the scratch directory.
    let left: Vec<_> = std::fs::read_dir(&scratch).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}
