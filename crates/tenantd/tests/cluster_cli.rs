//! `tenantd cluster …` through the real binary: init writes an even table, add-node extends the
//! file (no slots yet), haproxy-config renders what `haproxy -c` accepts, rebalance --dry-run
//! plans about a quarter of the slots onto a fourth node (executed in cluster_e2e.rs).

mod common;

use std::path::Path;

use common::tenantd;

fn run(file: &Path, args: &[&str]) -> (bool, String, String) {
    let out = tenantd()
        .arg("cluster")
        .arg("--file")
        .arg(file)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn regression_init_force_reset_the_epoch_so_nodes_refused_the_push() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("cluster.toml");
    std::fs::write(
        &file,
        format!(
            "[haproxy]\nruntime_api = \"127.0.0.1:9999\"\nbind = \"127.0.0.1:8000\"\n\
             map_dir = \"{}\"\n[[node]]\nname = \"node1\"\ndata = \"127.0.0.1:8081\"\n",
            d.path().join("maps").display()
        ),
    )
    .unwrap();
    let epoch = || {
        let t: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(d.path().join("cluster-table.json")).unwrap(),
        )
        .unwrap();
        t["epoch"].as_u64().unwrap()
    };
    assert!(run(&file, &["init"]).0);
    assert_eq!(epoch(), 1);
    // Nodes refuse a table whose epoch is not above theirs: a replaced table must outrank.
    let (ok, out, err) = run(&file, &["init", "--force"]);
    assert!(ok, "{err}");
    assert!(out.contains("(epoch 2)"), "{out}");
    assert_eq!(epoch(), 2);
}

#[test]
fn cluster_init_add_node_haproxy_config_and_rebalance_dry_run() {
    let d = tempfile::tempdir().unwrap();
    let maps = d.path().join("maps");
    let file = d.path().join("cluster.toml");
    std::fs::write(
        &file,
        format!(
            "base_domain = \"db.example.com\"\n[haproxy]\nruntime_api = \"127.0.0.1:9999\"\n\
             bind = \"127.0.0.1:8000\"\nmap_dir = \"{}\"\n\
             [[node]]\nname = \"node1\"\ndata = \"127.0.0.1:8081\"\n\
             [[node]]\nname = \"node2\"\ndata = \"127.0.0.1:8082\"\n\
             [[node]]\nname = \"node3\"\ndata = \"127.0.0.1:8083\"\n",
            maps.display()
        ),
    )
    .unwrap();

    let (ok, out, err) = run(&file, &["init"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("node1\t5461 slots") && out.contains("node2\t5462 slots"),
        "{out}"
    );
    let table: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.path().join("cluster-table.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(table["epoch"], 1);
    assert_eq!(table["ranges"].as_array().unwrap().len(), 3);
    let (ok, _, err) = run(&file, &["init"]);
    assert!(!ok && err.contains("--force"), "{err}");

    let (ok, _, err) = run(&file, &["add-node", "node4", "--data", "127.0.0.1:8081"]);
    assert!(
        !ok && err.contains("node[3].data") && err.contains("twice"),
        "{err}"
    );
    let (ok, out, err) = run(&file, &["add-node", "node4", "--data", "127.0.0.1:8084"]);
    assert!(ok && out.contains("owns no slot"), "{err}");
    assert!(std::fs::read_to_string(&file).unwrap().contains("node4"));

    let (ok, _, err) = run(&file, &["haproxy-config"]);
    assert!(ok, "{err}");
    let slots = std::fs::read_to_string(maps.join("slots.map")).unwrap();
    assert_eq!(slots.lines().count(), 16_384);
    assert!(
        !slots.contains("node4"),
        "a new node owns nothing before a rebalance"
    );
    let check = std::process::Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(maps.join("haproxy.cfg"))
        .output()
        .expect("haproxy must be installed (.ci/run installs it)");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    let (ok, out, err) = run(&file, &["rebalance", "--dry-run"]);
    assert!(ok, "{err}");
    let moves: Vec<&str> = out.lines().filter(|l| l.starts_with("slot ")).collect();
    assert!(moves.iter().all(|l| l.ends_with("-> node4")), "{out}");
    assert!((3_600..=4_096).contains(&moves.len()), "{}", moves.len());
    assert!(out.contains("(dry run: nothing changed)"), "{out}");

    let (ok, _, err) = run(&d.path().join("missing.toml"), &["status"]);
    assert!(!ok && err.contains("missing.toml"), "{err}");
}

#[test]
fn cluster_status_says_which_nodes_answer_and_which_do_not() {
    let d = tempfile::tempdir().unwrap();
    let (mut child, url) = common::spawn_serve(common::tenantd(), &d.path().join("data"), &[]);
    let data = url.trim_start_matches("http://").trim_end_matches('/');
    let file = d.path().join("cluster.toml");
    // node2 on port 1 of loopback: nothing listens there.
    std::fs::write(
        &file,
        format!(
            "[haproxy]\nruntime_api = \"127.0.0.1:9999\"\nbind = \"127.0.0.1:8000\"\nmap_dir = \"m\"\n\
             [[node]]\nname = \"node1\"\ndata = \"{data}\"\n\
             [[node]]\nname = \"node2\"\ndata = \"127.0.0.1:1\"\n"
        ),
    )
    .unwrap();
    assert!(run(&file, &["init"]).0);
    let (ok, out, err) = run(&file, &["status"]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "{err}");
    assert!(out.contains("node1\t8192 slots\thealthy"), "{out}");
    assert!(
        out.contains("node2\t8192 slots\tnot answering\tadmin not answering"),
        "{out}"
    );
}

#[test]
fn cluster_push_installs_the_table_on_live_nodes_sets_haproxy_and_names_silent_nodes() {
    let d = tempfile::tempdir().unwrap();
    // node1 is a live tenantd; node2 and node3 sit on ports where nothing listens.
    let node1_data = d.path().join("node1");
    let (mut node1, node1_url) =
        common::spawn_serve(common::tenantd(), &node1_data, &["--node-name", "node1"]);
    let node1_addr = node1_url.trim_start_matches("http://").to_string();
    let token = std::fs::read_to_string(node1_data.join("admin.token")).unwrap();
    let maps = d.path().join("maps");
    let file = d.path().join("cluster.toml");
    let port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (api, bind) = (
        format!("127.0.0.1:{}", port()),
        format!("127.0.0.1:{}", port()),
    );
    std::fs::write(
        &file,
        format!(
            "[haproxy]\nruntime_api = \"{api}\"\nbind = \"{bind}\"\nmap_dir = \"{}\"\n\
             [[node]]\nname = \"node1\"\ndata = \"{node1_addr}\"\n\
             [[node]]\nname = \"node2\"\ndata = \"127.0.0.1:2\"\n",
            maps.display()
        ),
    )
    .unwrap();
    assert!(run(&file, &["init"]).0);
    assert!(run(&file, &["haproxy-config"]).0);
    let mut ha = std::process::Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(maps.join("haproxy.cfg"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("haproxy must be installed (.ci/run installs it)");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while cluster::runtime::Runtime::new(&api)
        .command("show info")
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "haproxy's runtime API did not come up"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // A third node with weight 2 in a fresh table: 4096-8191 go to node2, 8192-16383 to node3.
    assert!(
        run(
            &file,
            &[
                "add-node",
                "node3",
                "--data",
                "127.0.0.1:3",
                "--weight",
                "2"
            ]
        )
        .0
    );
    assert!(run(&file, &["init", "--force"]).0);
    let (ok, out, err) = run(&file, &["push", "--token", token.trim()]);
    let live = cluster::runtime::Runtime::new(&api).show_map(&maps.join("slots.map"));
    let _ = ha.kill();
    let _ = ha.wait();
    // The live node took the table (and keeps it on disk); the silent ones are named.
    let installed = std::fs::read_to_string(node1_data.join("cluster.json"));
    let _ = node1.kill();
    let _ = node1.wait();
    // `init --force` replaced the table with a higher epoch than the first `init`'s.
    assert!(out.contains("node1: epoch 2"), "{out}\n{err}");
    assert!(
        !ok && err.contains("node2, node3") && !err.contains("node1"),
        "{err}"
    );
    let installed: cluster::table::TableFile =
        serde_json::from_str(&installed.expect("node1 wrote cluster.json")).unwrap();
    assert_eq!(installed.ranges.len(), 3);
    assert_eq!(installed.ranges[2].node, "node3");
    assert!(
        out.contains("haproxy: 12288 slots and 0 overrides changed"),
        "{out}"
    );
    let live = live.unwrap();
    assert_eq!(live.len(), 16_384);
    assert_eq!(live[16_383], ("16383".to_string(), "node3".to_string()));
    let file_map = std::fs::read_to_string(maps.join("slots.map")).unwrap();
    assert!(file_map.ends_with("16383 node3\n"), "the map file follows");
}

#[test]
fn regression_status_said_no_table_for_a_node_that_had_one() {
    // `status` parsed GET /admin/cluster's whole answer as a table, so a node holding one was
    // reported as "no table in its answer".
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("node1");
    let (mut child, url) = common::spawn_serve(common::tenantd(), &data, &["--node-name", "node1"]);
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap();
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let file = d.path().join("cluster.toml");
    std::fs::write(
        &file,
        format!(
            "[haproxy]\nruntime_api = \"127.0.0.1:1\"\nbind = \"127.0.0.1:8000\"\nmap_dir = \"{}\"\n\
             [[node]]\nname = \"node1\"\ndata = \"{addr}\"\n",
            d.path().join("maps").display()
        ),
    )
    .unwrap();
    assert!(run(&file, &["init"]).0);
    // No HAProxy listens: push installs the table on the node, then fails on the runtime API.
    let (ok, out, _) = run(&file, &["push", "--token", token.trim()]);
    assert!(!ok && out.contains("node1: epoch 1"), "{out}");
    let (ok, out, err) = run(&file, &["status", "--token", token.trim()]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "{err}");
    assert!(
        out.contains("node1\t16384 slots\thealthy\tepoch 1\t0 tenants\t0 bytes"),
        "{out}"
    );
}
