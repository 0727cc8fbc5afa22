//! docs/CAPACITY.md pastes real output of `tenantd capacity`; this keeps it real. If a change
//! to the model or the renderers breaks this test, regenerate the pasted output.

use capacity::cli::{output, CapacityCmd};
use clap::Parser;

#[derive(Parser)]
enum Cmd {
    Capacity(CapacityCmd),
}

fn stdout(args: &[&str]) -> String {
    let argv = ["tenantd", "capacity"].iter().chain(args);
    let Cmd::Capacity(cmd) = Cmd::try_parse_from(argv).unwrap();
    output(&cmd).unwrap().stdout
}

fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/CAPACITY.md");
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn pasted_text_output_is_current() {
    let doc = doc();
    for args in [
        &[][..],
        &["roadmap"],
        &["roadmap", "--users", "1000000"],
        &["compare"],
        &["explain"],
        &["profiles"],
        &["profiles", "seed"],
    ] {
        let out = stdout(args);
        assert!(
            doc.contains(out.trim_end()),
            "docs/CAPACITY.md does not show the current output of `tenantd capacity {}`:\n{out}",
            args.join(" ")
        );
    }
}

#[test]
fn pasted_check_seed_table_is_current() {
    let out = stdout(&["check-seed", "--format", "markdown"]);
    let table = out.split_once("\n\n").unwrap().1.trim_end();
    assert!(
        doc().contains(table),
        "regenerate the check-seed table:\n{out}"
    );
}

#[test]
fn the_documented_profile_file_gives_the_documented_output() {
    let doc = doc();
    let toml = doc
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("measured.toml");
    std::fs::write(&path, toml).unwrap();
    let out = stdout(&[
        "--machine",
        "ovh-vps-6",
        "--workload",
        path.to_str().unwrap(),
        "--years",
        "3",
        "--price",
        "9.99",
    ]);
    assert!(doc.contains(out.trim_end()), "{out}");
}
