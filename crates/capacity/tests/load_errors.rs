//! Profile files: overrides of a base profile, and errors that name file, field and reason.

use std::path::{Path, PathBuf};

use capacity::load::{load_machine, load_workload, LoadError};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Loads `text` as a workload file and returns the error's (file, field, reason).
fn workload_error(text: &str) -> (String, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "w.toml", text);
    match load_workload(path.to_str().unwrap()) {
        Err(LoadError::Field {
            file,
            field,
            reason,
        }) => {
            assert_eq!(file, path.display().to_string());
            (file, field, reason)
        }
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn a_subset_overrides_a_named_base() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "measured.toml",
        "base = \"seed\"\ncpu_seconds_per_request = 0.00004\nsyncs_per_request = 0\n\
         [sources]\ncpu_seconds_per_request = \"measured: tenantd bench\"\n",
    );
    let w = load_workload(path.to_str().unwrap()).unwrap();
    assert_eq!(w.meta.name, "measured");
    assert_eq!(w.cpu_seconds_per_request, 0.00004);
    assert_eq!(w.syncs_per_request, 0.0);
    assert_eq!(w.ram_mb_per_in_flight_op, 1.5, "inherited from seed");
    assert_eq!(
        w.meta.sources["cpu_seconds_per_request"],
        "measured: tenantd bench"
    );
    assert_eq!(
        w.meta.sources["syncs_per_request"],
        path.display().to_string(),
        "a value without a stated source is sourced to its file"
    );
    assert!(w.meta.sources["ram_mb_per_in_flight_op"].starts_with("seed §2"));
}

#[test]
fn a_base_path_is_relative_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.toml",
        "base = \"seed\"\nretention_years = 3\n",
    );
    let b = write(
        dir.path(),
        "b.toml",
        "base = \"a.toml\"\nprice_usd_per_tenant_month = 9\n",
    );
    let w = load_workload(b.to_str().unwrap()).unwrap();
    assert_eq!(
        (w.retention_years, w.price_usd_per_tenant_month),
        (3.0, 9.0)
    );
}

#[test]
fn a_base_cycle_is_reported_on_base() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.toml", "base = \"b.toml\"\n");
    let b = write(dir.path(), "b.toml", "base = \"a.toml\"\n");
    let err = load_workload(b.to_str().unwrap()).unwrap_err().to_string();
    assert!(
        err.contains("field `base`") && err.contains("cycle"),
        "{err}"
    );
}

#[test]
fn unknown_fields_are_named() {
    let (_, field, reason) = workload_error("base = \"seed\"\ncpu_second_per_request = 1\n");
    assert_eq!(field, "cpu_second_per_request");
    assert!(reason.contains("unknown workload field"), "{reason}");
}

#[test]
fn wrong_types_are_named() {
    let (_, field, reason) = workload_error("base = \"seed\"\nretention_years = \"three\"\n");
    assert_eq!(field, "retention_years");
    assert!(reason.contains("expected a number"), "{reason}");
}

#[test]
fn negative_values_are_rejected() {
    let (_, field, reason) = workload_error("base = \"seed\"\ntenant_growth_mb_per_year = -1\n");
    assert_eq!(field, "tenant_growth_mb_per_year");
    assert!(reason.contains("at least 0"), "{reason}");
}

#[test]
fn nan_is_rejected() {
    let (_, field, reason) = workload_error("base = \"seed\"\nop_in_flight_seconds = nan\n");
    assert_eq!(field, "op_in_flight_seconds");
    assert!(reason.contains("NaN"), "{reason}");
}

#[test]
fn zero_divisors_are_rejected() {
    let (_, field, reason) = workload_error("base = \"seed\"\nram_mb_per_in_flight_op = 0\n");
    assert_eq!(field, "ram_mb_per_in_flight_op");
    assert!(reason.contains("greater than 0"), "{reason}");
}

#[test]
fn absurd_magnitudes_are_rejected() {
    let (_, field, reason) = workload_error("base = \"seed\"\nretention_years = 5000\n");
    assert_eq!(field, "retention_years");
    assert!(reason.contains("unit mistake"), "{reason}");
}

#[test]
fn zero_storage_per_tenant_is_rejected() {
    let (_, field, _) = workload_error("base = \"seed\"\ntenant_growth_mb_per_year = 0\n");
    assert_eq!(field, "tenant_growth_mb_per_year");
}

#[test]
fn without_a_base_every_field_is_required() {
    let (_, field, reason) = workload_error("name = \"bare\"\ntenant_create_mb = 1\n");
    assert_eq!(field, "tenant_growth_mb_per_year");
    assert!(reason.contains("missing"), "{reason}");
}

#[test]
fn an_unknown_base_is_reported_on_base() {
    let (_, field, reason) = workload_error("base = \"sead\"\n");
    assert_eq!(field, "base");
    assert!(
        reason.contains("no built-in workload profile named `sead`"),
        "{reason}"
    );
}

#[test]
fn syntax_errors_give_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "w.toml",
        "base = \"seed\"\nretention_years = = 3\n",
    );
    let err = load_workload(path.to_str().unwrap()).unwrap_err();
    assert!(matches!(err, LoadError::Syntax { .. }), "{err:?}");
    assert!(err.to_string().contains("line 2"), "{err}");
}

#[test]
fn machine_relations_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "m.toml",
        "base = \"fly-shared-cpu-2x\"\nos_reserve_gb = 4\n",
    );
    let err = load_machine(path.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("field `os_reserve_gb`: must be below ram_gb"),
        "{err}"
    );
}

#[test]
fn neither_builtin_nor_file_lists_the_builtins() {
    let err = load_machine("no-such-machine").unwrap_err().to_string();
    assert!(err.contains("fly-shared-cpu-2x, ovh-vps-6"), "{err}");
}

#[test]
fn sources_for_unknown_fields_are_rejected() {
    let (_, field, _) = workload_error("base = \"seed\"\n[sources]\nram = \"x\"\n");
    assert_eq!(field, "sources.ram");
}
