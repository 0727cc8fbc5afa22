//! `tenantd bench cold-open` against the real binary: every variant runs and reports sane
//! numbers (no timing is asserted), `--prepared` works on files made by `bench provision`, and
//! bad flag combinations are refused.

use std::process::Command;

/// The built binary (the bench commands read no environment).
fn tenantd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tenantd"))
}

const VARIANTS: [&str; 11] = [
    "tenantd",
    "fast-close",
    "seed",
    "replica",
    "exclusive",
    "no-authorizer",
    "no-defensive",
    "no-quota",
    "no-wal-check",
    "persist-wal",
    "bare",
];

#[test]
fn cold_open_runs_every_variant_and_reports_each() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let scratch = dir.path().join("scratch");
    let out = tenantd()
        .args([
            "bench",
            "cold-open",
            "--count",
            "20",
            "--repeat",
            "1",
            "--dir",
        ])
        .arg(&scratch)
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
    for v in VARIANTS {
        let modes: &[&str] = if v == "seed" {
            &["normal"]
        } else {
            &["fsync", "crash"]
        };
        for m in modes {
            let line = stdout
                .lines()
                .find(|l| l.split_whitespace().take(2).eq([v, *m]) && l.contains("run 1"))
                .unwrap_or_else(|| panic!("no {v} {m} line in\n{stdout}"));
            assert!(
                line.contains("us CPU/cycle") && line.contains("20 cycles"),
                "{line}"
            );
        }
    }
    assert!(stdout.contains("vs tenantd"), "{stdout}");

    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let samples = doc["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 2 * VARIANTS.len() - 1, "{doc}");
    for s in samples {
        assert_eq!(s["cycles"], 20, "{s}");
        for key in ["cpu_us", "user_us", "sys_us", "wall_us"] {
            let v = s[key].as_f64().unwrap();
            assert!(v.is_finite() && v >= 0.0, "{key} in {s}");
        }
        assert!(s["cpu_us"].as_f64().unwrap() > 0.0, "{s}");
    }
    assert_eq!(doc["summary"].as_array().unwrap().len(), samples.len());
    // Every run's files are removed afterwards.
    assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0);
}

#[test]
fn cold_open_prepared_inserts_one_event_per_provisioned_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let made = tenantd()
        .args(["bench", "provision", "--count", "5", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(made.status.success());
    let out = tenantd()
        .args([
            "bench",
            "cold-open",
            "--prepared",
            "--count",
            "5",
            "--repeat",
            "1",
        ])
        .args(["--variant", "exclusive", "--durability", "crash", "--dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut files = Vec::new();
    // Tenant files only (provisioning also builds the node catalog, data/catalog.db).
    let mut dirs = vec![data.join("tenants")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                files.push(p);
            }
        }
    }
    let dbs: Vec<_> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "db"))
        .collect();
    assert_eq!(dbs.len(), 5, "{files:?}");
    // Exclusive locking keeps the WAL index in memory: no -shm was ever left behind.
    assert!(
        !files.iter().any(|p| p.to_string_lossy().ends_with("-shm")),
        "{files:?}"
    );
    for db in dbs {
        let conn = rusqlite::Connection::open(db).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM _tenantd_events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1, "{}", db.display());
    }
}

#[test]
fn cold_open_refuses_prepared_runs_it_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--variant", "tenantd", "--variant", "seed"][..],
        &["--variant", "tenantd"][..],
        &["--variant", "persist-wal", "--durability", "crash"][..],
        &[
            "--variant",
            "tenantd",
            "--durability",
            "crash",
            "--repeat",
            "2",
        ][..],
    ] {
        let out = tenantd()
            .args(["bench", "cold-open", "--prepared", "--count", "1", "--dir"])
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(err.contains("--prepared"), "{args:?}: {err}");
    }
}
