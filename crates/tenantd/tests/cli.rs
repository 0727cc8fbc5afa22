//! The CLI against the real binary: `tenantd tenant …` and `tenantd hook …` drive a running
//! server through the admin API; bad flags and config give clear errors.

mod common;

use common::tenantd;

fn run(args: &[&str], data: &std::path::Path, url: &str) -> (bool, String, String) {
    let out = tenantd()
        .args(args)
        .arg("--url")
        .arg(url)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn tenant_and_hook_commands_drive_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (mut child, url) = common::spawn_serve(common::tenantd(), data, &[]);

    let (ok, out, err) = run(&["tenant", "create", "acme"], data, &url);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "created acme");
    let (ok, _, err) = run(&["tenant", "create", "acme"], data, &url);
    assert!(!ok);
    assert!(err.contains("tenant_exists"), "{err}");
    let (ok, _, err) = run(&["tenant", "create", "Bad"], data, &url);
    assert!(!ok);
    assert!(err.contains("invalid_tenant_id"), "{err}");
    run(&["tenant", "create", "beta"], data, &url);
    let (ok, out, _) = run(&["tenant", "list", "--page", "1"], data, &url);
    assert!(ok);
    let mut listed: Vec<&str> = out.lines().collect();
    listed.sort();
    assert_eq!(listed, ["acme", "beta"]);
    let (ok, out, err) = run(
        &[
            "hook", "set", "--tenant", "acme", "--source", "gh", "--scheme", "github", "--secret",
            "s",
        ],
        data,
        &url,
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("\"secret_set\":true") && !out.contains("\"s\""),
        "{out}"
    );
    let (ok, out, _) = run(&["tenant", "show", "acme"], data, &url);
    assert!(ok);
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["hooks"][0]["scheme"], "github");
    assert_eq!(shown["policy"]["webhooks"], "open");
    let (ok, out, err) = run(
        &["tenant", "policy", "acme", "--webhooks", "signed"],
        data,
        &url,
    );
    assert!(ok && out.contains("signed"), "{out}{err}");
    let (ok, _, err) = run(
        &["tenant", "policy", "acme", "--webhooks", "maybe"],
        data,
        &url,
    );
    assert!(!ok && err.contains("maybe"), "{err}");
    let (ok, out, err) = run(
        &["hook", "delete", "--tenant", "acme", "--source", "gh"],
        data,
        &url,
    );
    assert!(ok && out.contains("deleted hook gh"), "{out}{err}");
    let (ok, _, err) = run(
        &["hook", "delete", "--tenant", "acme", "--source", "gh"],
        data,
        &url,
    );
    assert!(!ok && err.contains("hook_not_found"), "{err}");
    let (ok, out, _) = run(&["tenant", "show", "acme"], data, &url);
    assert!(ok);
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["policy"]["webhooks"], "signed");
    assert_eq!(shown["hooks"], serde_json::json!([]));
    let (ok, out, _) = run(&["tenant", "delete", "beta"], data, &url);
    assert!(ok, "{out}");
    let (ok, _, err) = run(&["tenant", "show", "beta"], data, &url);
    assert!(!ok && err.contains("tenant_not_found"), "{err}");
    // Without a token file the CLI says where it looked.
    let empty = tempfile::tempdir().unwrap();
    let (ok, _, err) = run(&["tenant", "list"], empty.path(), &url);
    assert!(!ok && err.contains("admin.token"), "{err}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn bad_serve_settings_fail_fast_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let out = tenantd()
        .args(["serve", "--idle-ttl", "soon", "--listen", "127.0.0.1:0"])
        .arg("--data")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("idle_ttl"));
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "max_opn = 3\n").unwrap();
    let out = tenantd()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("max_opn"), "{err}");
}

#[test]
fn migrate_reports_every_tenant_and_fails_on_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let pool = store::TenantPool::open(store::PoolConfig::new(&data)).unwrap();
        for id in ["a", "b", "c"] {
            let id = store::TenantId::parse(id).unwrap();
            pool.create(&id, store::events::init_schema).await.unwrap();
        }
        let c = store::TenantId::parse("c").unwrap();
        pool.write(&c, |conn| Ok(conn.execute_batch("CREATE TABLE notes(x)")?))
            .await
            .unwrap();
        pool.shutdown(std::time::Duration::from_secs(5)).await;
    });
    let migrations = dir.path().join("migrations");
    std::fs::create_dir(&migrations).unwrap();
    std::fs::write(
        migrations.join("0001_notes.sql"),
        "CREATE TABLE notes(id INTEGER PRIMARY KEY);",
    )
    .unwrap();
    let migrate = |extra: &[&str]| {
        let out = tenantd()
            .arg("migrate")
            .arg("--dir")
            .arg(&migrations)
            .arg("--data")
            .arg(&data)
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, out) = migrate(&["--dry-run"]);
    assert!(!ok);
    assert!(
        out.contains("3 tenants: would migrate 2") && out.contains("FAILED c"),
        "{out}"
    );
    let (ok, out) = migrate(&[]);
    assert!(!ok);
    assert!(
        out.contains("3 tenants: migrated 2") && out.contains("FAILED c"),
        "{out}"
    );
    // Editing a migration that tenants already applied is refused, not skipped.
    let applied = std::fs::read(migrations.join("0001_notes.sql")).unwrap();
    std::fs::write(
        migrations.join("0001_notes.sql"),
        "CREATE TABLE IF NOT EXISTS notes(id INTEGER PRIMARY KEY);",
    )
    .unwrap();
    let (ok, out) = migrate(&["--dry-run"]);
    assert!(!ok);
    assert!(
        out.contains("FAILED a: migration 1 was applied as 0001_notes.sql")
            && out.contains("FAILED b: migration 1 was applied as 0001_notes.sql")
            && out.contains("failed 2"),
        "{out}"
    );
    // The supported fix: restore the applied file, repair the failed tenant, run again.
    std::fs::write(migrations.join("0001_notes.sql"), applied).unwrap();
    rt.block_on(async {
        let mut cfg = store::PoolConfig::new(&data);
        cfg.maintenance = false;
        let pool = store::TenantPool::open(cfg).unwrap();
        let c = store::TenantId::parse("c").unwrap();
        pool.write(&c, |conn| {
            Ok(conn.execute_batch("ALTER TABLE notes RENAME TO notes_v0")?)
        })
        .await
        .unwrap();
        pool.shutdown(std::time::Duration::from_secs(5)).await;
    });
    let (ok, out) = migrate(&[]);
    assert!(ok, "{out}");
    assert!(
        out.contains("3 tenants: migrated 1, already at version 1 2, failed 0"),
        "{out}"
    );
}

/// Kills the server when a test ends, also when it panics (a leaked server would keep the
/// test's stderr open).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn regression_cli_builds_urls_from_raw_ids() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (child, url) = common::spawn_serve(common::tenantd(), data, &[]);
    let _server = KillOnDrop(child);
    for id in ["victim", "victim2"] {
        let (ok, _, err) = run(&["tenant", "create", id], data, &url);
        assert!(ok, "{err}");
    }
    for args in [
        &["tenant", "delete", "nonexistent/../victim"][..],
        &["tenant", "delete", "victim2#typo"],
        &["tenant", "create", "a?b"],
        &["tenant", "show", "victim?x"],
        &[
            "hook", "set", "--tenant", "victim", "--source", "gh/../x", "--scheme", "none",
        ],
    ] {
        let (ok, out, err) = run(args, data, &url);
        assert!(!ok, "{args:?} was accepted: {out}");
        assert!(
            err.contains("invalid_tenant_id") || err.contains("invalid_source"),
            "{args:?}: {err}"
        );
        assert!(
            err.contains("is not a"),
            "{args:?} says what is wrong: {err}"
        );
    }
    let (ok, out, err) = run(&["tenant", "list"], data, &url);
    assert!(ok, "{err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["victim", "victim2"]);
}

#[test]
fn regression_tenant_list_is_not_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (child, url) = common::spawn_serve(common::tenantd(), data, &[]);
    let _server = KillOnDrop(child);
    let ids: Vec<String> = (0..8).map(|i| format!("t{i}")).collect();
    for id in &ids {
        assert!(run(&["tenant", "create", id], data, &url).0);
    }
    let (ok, out, err) = run(&["tenant", "list", "--page", "3"], data, &url);
    assert!(ok, "{err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), ids, "sorted, every page");
}

/// `tenantd token …` with `args` over `data`: (success, last stdout line, stderr).
fn token_cmd(args: &[&str], data: &std::path::Path) -> (bool, String, String) {
    let out = tenantd()
        .arg("token")
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    (
        out.status.success(),
        stdout.lines().last().unwrap_or_default().to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn token_revoke_and_recreate_refuse_old_tokens_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (child, url) = common::spawn_serve(common::tenantd(), data, &[]);
    let _server = KillOnDrop(child);
    assert!(run(&["tenant", "create", "acme"], data, &url).0);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let select = |token: &str| {
        let body = serde_json::json!({"requests": [
            {"type": "execute", "stmt": {"sql": "SELECT 1"}}, {"type": "close"}
        ]});
        rt.block_on(async {
            let r = reqwest::Client::new()
                .post(format!("{url}/t/acme/v2/pipeline"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let v: serde_json::Value = r.json().await.unwrap();
            (status, v["code"].as_str().unwrap_or_default().to_owned())
        })
    };
    let (ok, old, err) = token_cmd(&["create", "--tenant", "acme"], data);
    assert!(ok, "{err}");
    assert_eq!(select(&old).0, 200);

    let revoke = tenantd()
        .args([
            "token", "revoke", "--tenant", "acme", "--url", &url, "--data",
        ])
        .arg(data)
        .output()
        .unwrap();
    assert!(revoke.status.success(), "{:?}", revoke);
    assert_eq!(select(&old), (401, "token_revoked".into()));
    let (_, fresh, _) = token_cmd(&["create", "--tenant", "acme"], data);
    assert_eq!(select(&fresh).0, 200);

    // Delete + re-create: the new tenant does not honour the old tenant's tokens.
    assert!(run(&["tenant", "delete", "acme"], data, &url).0);
    assert!(run(&["tenant", "create", "acme"], data, &url).0);
    assert_eq!(select(&fresh), (401, "token_revoked".into()));

    // A missing tenant, and a directory that is not a data dir, are errors (no key made).
    let (ok, _, err) = token_cmd(&["create", "--tenant", "ghost"], data);
    assert!(!ok && err.contains("ghost does not exist"), "{err}");
    let elsewhere = tempfile::tempdir().unwrap();
    let (ok, _, err) = token_cmd(&["create", "--tenant", "acme"], elsewhere.path());
    assert!(!ok && err.contains("not a tenantd data directory"), "{err}");
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    let (ok, _, err) = token_cmd(&["revoke", "--tenant", "a/b"], data);
    assert!(!ok && err.contains("invalid tenant id"), "{err}");
}
