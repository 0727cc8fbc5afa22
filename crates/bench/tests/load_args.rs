//! `tenantd bench load`'s flags become a validated plan in one step: defaults, our own server
//! vs --url, {tenant} URLs, open loop, and refusals that name the flag. And `bench::server`
//! reports a server that does not start, with its log, instead of waiting.

use std::time::Duration;

use bench::load_cmd::LoadArgs;
use bench::server::{LocalServer, ServerSpec};
use clap::Parser;
use loadgen::workload::Workload;
use loadgen::Pace;

#[derive(Parser)]
struct Top {
    #[command(flatten)]
    load: LoadArgs,
}

fn plan(args: &[&str]) -> anyhow::Result<bench::load_cmd::LoadPlan> {
    let mut argv = vec!["load"];
    argv.extend_from_slice(args);
    Top::try_parse_from(argv)?.load.resolve()
}

#[test]
fn defaults_start_our_own_server_with_its_token() {
    let p = plan(&["--workload", "sql-write"]).unwrap();
    let server = p.own_server.expect("no --url: our own server");
    assert!(server.kv_schema, "SQL workloads need the kv table");
    assert_eq!(server.tenants, 1000);
    assert_eq!(p.spec.token.as_deref(), Some(server.admin_token.as_str()));
    assert_eq!(p.spec.pace, Pace::Closed { concurrency: 64 });
    assert_eq!(p.spec.duration, Duration::from_secs(10));
    assert_eq!(p.spec.chooser.n(), 1000);
    assert!(p.spec.threads >= 1);
    let webhook = plan(&[]).unwrap();
    assert!(!webhook.own_server.unwrap().kv_schema);
    assert_eq!(webhook.spec.workload, Workload::Webhook);
}

#[test]
fn a_url_template_sets_the_workload_path_and_host() {
    let p = plan(&[
        "--url",
        "http://127.0.0.1:3000/t/{tenant}/webhook",
        "--rate",
        "500",
        "--connections",
        "8",
        "--dist",
        "uniform",
        "--tenants",
        "10",
        "--pid",
        "42",
    ])
    .unwrap();
    assert!(p.own_server.is_none());
    assert_eq!(p.spec.addr, "127.0.0.1:3000".parse().unwrap());
    assert_eq!(p.spec.host, "127.0.0.1:3000");
    assert_eq!(p.spec.webhook_path.render("a"), "/t/a/webhook");
    assert_eq!(
        p.spec.pace,
        Pace::Open {
            rate_per_second: 500.0,
            connections: 8
        }
    );
    assert!((p.spec.chooser.probability(3) - 0.1).abs() < 1e-12);
    assert!(matches!(
        p.spec.sampler,
        Some(loadgen::sample::Sampler::Local { pid: 42, .. })
    ));
    let get = plan(&["--url", "http://127.0.0.1:3000/ping", "--workload", "get"]).unwrap();
    assert_eq!(get.spec.get_path, "/ping");
    assert!(get.spec.sampler.is_none());
}

#[test]
fn bad_flags_are_refused_naming_what_to_do() {
    let err = |args: &[&str]| plan(args).unwrap_err().to_string();
    assert!(err(&["--url", "http://127.0.0.1:1", "--workload", "sql-read"]).contains("--token"));
    assert!(err(&["--concurrency", "0"]).contains("at least 1"));
    assert!(err(&["--threads", "0"]).contains("--threads"));
    assert!(err(&["--duration", "0s"]).contains("--duration"));
    assert!(err(&["--metrics", "http://127.0.0.1:1/metrics"]).contains("--url"));
    assert!(
        err(&["--url", "http://127.0.0.1:1", "--serve-arg=--max-open=8"]).contains("--serve-arg")
    );
    assert!(err(&["--zipf-s", "0"]).contains("exponent"));
    assert!(err(&[
        "--url",
        "http://127.0.0.1:1/t/{tenant}",
        "--workload",
        "mixed"
    ])
    .contains("one path"));
    // clap refuses these itself.
    assert!(plan(&["--concurrency", "4", "--rate", "10"]).is_err());
    assert!(plan(&["--connections", "4"]).is_err());
}

#[test]
fn a_server_that_exits_at_start_is_reported_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("fake-tenantd");
    std::fs::write(
        &script,
        "#!/bin/sh\necho 'no such flag: --listen' >&2\nexit 2\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut spec = ServerSpec::new(3).unwrap();
    spec.binary = script;
    spec.data_dir = Some(dir.path().join("data"));
    let err = format!("{:#}", LocalServer::start(&spec).unwrap_err());
    assert!(err.contains("exited"), "{err}");
    assert!(err.contains("no such flag: --listen"), "{err}");
    // It provisioned before starting: the tenants are there.
    assert!(dir.path().join("data/catalog.db").exists());
}
