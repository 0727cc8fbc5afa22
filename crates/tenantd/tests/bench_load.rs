//! `tenantd bench load` against the real binary: it starts its own tenantd, drives each
//! workload for a short while and writes a report whose fields are present and add up (no
//! speed is asserted); the webhooks it counted as acknowledged are in the tenant files.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

mod common;

fn tenantd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tenantd"));
    c.env_remove("TENANTD_BENCH_TOKEN")
        .env("TENANTD_LOG", "warn");
    c
}

/// Runs `bench load` with `args` on our own server for 2 s; returns the JSON report.
fn load(dir: &Path, args: &[&str]) -> Value {
    let json = dir.join("report.json");
    let out = tenantd()
        .args([
            "bench",
            "load",
            "--duration",
            "2s",
            "--tenants",
            "20",
            "--threads",
            "1",
        ])
        .args(args)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("latency  p50"), "{stdout}");
    serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// The fields every report has, and how they relate.
fn check_consistent(r: &Value, workload: &str) {
    let res = &r["result"];
    assert_eq!(r["spec"]["workload"], workload);
    let requests = u(&res["requests"]);
    assert!(requests > 0, "{res}");
    assert_eq!(
        u(&res["ok"]) + u(&res["sql_errors"]) + u(&res["non_2xx"]) + u(&res["errors"]),
        requests,
        "{res}"
    );
    let by_status: u64 = res["statuses"].as_object().unwrap().values().map(u).sum();
    assert_eq!(by_status + u(&res["errors"]), requests, "{res}");
    assert_eq!(u(&res["latency"]["count"]), by_status, "{res}");
    let lat = &res["latency"];
    assert!(
        u(&lat["p50_us"]) <= u(&lat["p99_us"]) && u(&lat["p99_us"]) <= u(&lat["max_us"]),
        "{lat}"
    );
    assert!(res["elapsed_s"].as_f64().unwrap() > 0.0);
    let server = &r["server"];
    assert!(
        !server["samples"].as_array().unwrap().is_empty(),
        "{server}"
    );
    assert!(u(&server["before"]["rss_bytes"]) > 0);
    assert!(u(&server["peak_rss_bytes"]) >= u(&server["after"]["rss_bytes"]));
    assert!(server["cpu_seconds_used"].as_f64().unwrap() >= 0.0);
    assert!(u(&server["after"]["disk_bytes"]) > 0);
    let m = &r["machine"];
    assert!(u(&m["cores"]) >= 1 && u(&m["ram_bytes"]) > 0, "{m}");
    for field in ["cpu_model", "kernel", "filesystem"] {
        assert!(!m[field].as_str().unwrap().is_empty(), "{m}");
    }
    assert_eq!(r["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn bench_load_runs_each_workload_against_its_own_server() {
    for workload in ["sql-read", "sql-write", "mixed", "get"] {
        let dir = tempfile::tempdir().unwrap();
        let r = load(dir.path(), &["--workload", workload, "--concurrency", "4"]);
        check_consistent(&r, workload);
        if workload != "get" {
            assert!(u(&r["result"]["ok"]) > 0, "{workload}: {}", r["result"]);
        }
        if workload == "mixed" {
            let ops = r["result"]["latency_by_op"].as_object().unwrap();
            assert_eq!(ops.len(), 3, "{ops:?}");
        }
    }
}

#[test]
fn bench_load_webhooks_acknowledged_are_in_the_tenant_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let r = load(
        dir.path(),
        &[
            "--workload",
            "webhook",
            "--rate",
            "200",
            "--connections",
            "4",
            "--data",
            data.to_str().unwrap(),
        ],
    );
    check_consistent(&r, "webhook");
    assert_eq!(r["spec"]["pace"], "open");
    let ok = u(&r["result"]["ok"]);
    assert!(ok > 0);
    assert!(u(&r["result"]["intended"]) >= u(&r["result"]["requests"]));
    // The server was stopped (SIGTERM) before the report: every acknowledged event is stored.
    let mut stored = 0u64;
    for id in 0..20 {
        let path = store::layout::tenant_path(
            &data,
            &store::TenantId::parse(&format!("tenant{id:05}")).unwrap(),
        );
        let conn = rusqlite::Connection::open(&path).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM _tenantd_events", [], |r| r.get(0))
            .unwrap();
        stored += n as u64;
    }
    assert_eq!(stored, ok, "events stored vs webhooks acknowledged");
}

#[test]
fn bench_load_samples_a_tenantd_it_did_not_start_through_its_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = common::spawn_serve(common::tenantd(), &dir.path().join("data"), &[]);
    let json = dir.path().join("r.json");
    let out = tenantd()
        .args(["bench", "load", "--workload", "get", "--duration", "1s"])
        .args(["--concurrency", "2", "--url", &url, "--metrics"])
        .arg(format!("{url}/metrics"))
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let after = &r["server"]["after"];
    assert!(u(&after["rss_bytes"]) > 1 << 20, "{after}");
    assert!(after["cpu_seconds"].as_f64().unwrap() > 0.0, "{after}");
    assert!(u(&after["fds"]) > 0 && u(&after["threads"]) > 0, "{after}");
    assert_eq!(after["open_tenants"], 0, "{after}");
}

#[test]
fn bench_load_refuses_bad_flags_with_a_reason() {
    for (args, says) in [
        (&["--workload", "post"][..], "unknown workload"),
        (&["--rate", "0"][..], "--rate"),
        (&["--url", "https://example.com"][..], "only http://"),
        (
            &["--url", "http://127.0.0.1:1/x", "--workload", "webhook"][..],
            "has no {tenant}",
        ),
        (&["--pid", "1"][..], "--pid and --metrics"),
        (&["--tenants", "0"][..], "at least 1"),
    ] {
        let out = tenantd()
            .args(["bench", "load"])
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
