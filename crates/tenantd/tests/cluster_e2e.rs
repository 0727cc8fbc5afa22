//! The cluster end to end: a real HAProxy in front of three real `tenantd serve` nodes on
//! loopback, driven by `tenantd cluster`. 300 tenants; every request through HAProxy (path,
//! Host and `x-namespace` addressing; webhooks, and SQL also through the `libsql` crate) lands
//! on its owner; a tenant moves under continuous webhook and SQL write load and every
//! acknowledged write ends on the target exactly once; a mover that dies after fencing (one
//! that never continues, and a `tenantd cluster move` killed mid-copy) leaves the tenant
//! served by its source once the fence times out; a stopped node fails only its own tenants; a fourth node and a
//! rebalance move about a quarter of the slots, and nothing is lost.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::table::{SlotTable, TableFile};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use store::TenantId;

const TOKEN: &str = "e2e-admin-token-0123456789";
const TENANTS: usize = 300;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Cluster {
    dir: PathBuf,
    file: PathBuf,
    ports: BTreeMap<String, u16>,
    nodes: BTreeMap<String, Child>,
    haproxy: Option<Child>,
    api: String,
    front: String,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, mut c) in std::mem::take(&mut self.nodes) {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(mut h) = self.haproxy.take() {
            let _ = h.kill();
            let _ = h.wait();
        }
    }
}

impl Cluster {
    fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = common::tenantd()
            .arg("cluster")
            .arg("--file")
            .arg(&self.file)
            .args(args)
            .env("TENANTD_ADMIN_TOKEN", TOKEN)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn cli_ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.cli(args);
        assert!(ok, "tenantd cluster {args:?} failed:\n{out}\n{err}");
        out
    }

    fn start_node(&mut self, name: &str) {
        let data = self.dir.join(name);
        std::fs::create_dir_all(&data).unwrap();
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .mode(0o600)
                .open(data.join("admin.token"))
                .unwrap();
            std::io::Write::write_all(&mut f, TOKEN.as_bytes()).unwrap();
        }
        let listen = format!("127.0.0.1:{}", self.ports[name]);
        let (child, _) = common::spawn_serve(
            common::tenantd(),
            &data,
            &[
                "--listen",
                &listen,
                "--node-name",
                name,
                "--idle-ttl",
                "1s",
                "--base-domain",
                "db.test",
            ],
        );
        self.nodes.insert(name.to_string(), child);
    }

    fn stop_node(&mut self, name: &str) {
        let mut c = self.nodes.remove(name).unwrap();
        let _ = c.kill();
        let _ = c.wait();
    }

    fn start_haproxy(&mut self) {
        if let Some(mut h) = self.haproxy.take() {
            let _ = h.kill();
            let _ = h.wait();
        }
        let cfg = self.dir.join("maps").join("haproxy.cfg");
        self.haproxy = Some(
            Command::new("haproxy")
                .arg("-db")
                .arg("-f")
                .arg(cfg)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("haproxy must be installed (.ci/run installs it)"),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while cluster::runtime::Runtime::new(&self.api)
            .command("show info")
            .is_err()
        {
            assert!(Instant::now() < deadline, "haproxy did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn table(&self) -> SlotTable {
        let tf: TableFile = serde_json::from_str(
            &std::fs::read_to_string(self.dir.join("cluster-table.json")).unwrap(),
        )
        .unwrap();
        SlotTable::from_file(&tf).unwrap()
    }

    fn node_url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}", self.ports[name])
    }

    fn write_file(&self, nodes: &[&str]) {
        let mut text = format!(
            "base_domain = \"db.test\"\n[haproxy]\nruntime_api = \"{}\"\nbind = \"{}\"\nmap_dir = \"{}\"\n",
            self.api,
            self.front,
            self.dir.join("maps").display()
        );
        for n in nodes {
            text.push_str(&format!(
                "[[node]]\nname = \"{n}\"\ndata = \"127.0.0.1:{}\"\n",
                self.ports[*n]
            ));
        }
        std::fs::write(&self.file, text).unwrap();
    }
}

async fn call(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = http.request(method, url).bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A webhook through HAProxy with a delivery id; retried (as a sender would) on 503 and 421
/// until `deadline`. Returns the event id once acknowledged.
async fn deliver(
    http: &reqwest::Client,
    front: &str,
    tenant: &str,
    delivery: &str,
    deadline: Instant,
) -> Option<i64> {
    loop {
        let r = http
            .post(format!("http://{front}/t/{tenant}/hooks/load"))
            .header("webhook-id", delivery)
            .body(format!("{{\"d\":\"{delivery}\"}}"))
            .send()
            .await;
        if let Ok(r) = r {
            if r.status().is_success() {
                let v: Value = r.json().await.unwrap();
                return v["id"].as_i64();
            }
            assert!(
                matches!(r.status().as_u16(), 421 | 503),
                "unexpected {} for {tenant}",
                r.status()
            );
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One SQL statement through HAProxy (`x-namespace` addressing), retried on 503/421.
async fn sql(
    http: &reqwest::Client,
    front: &str,
    tenant: &str,
    stmt: &str,
    deadline: Instant,
) -> Option<Value> {
    loop {
        let r = http
            .post(format!("http://{front}/v2/pipeline"))
            .bearer_auth(TOKEN)
            .header("x-namespace", tenant)
            .json(&json!({"requests": [{"type": "execute", "stmt": {"sql": stmt}}, {"type": "close"}]}))
            .send()
            .await;
        if let Ok(r) = r {
            if r.status().is_success() {
                let v: Value = r.json().await.unwrap();
                assert_eq!(v["results"][0]["type"], "ok", "{stmt}: {v}");
                return Some(v["results"][0]["response"]["result"].clone());
            }
            assert!(
                matches!(r.status().as_u16(), 421 | 503),
                "{stmt}: {}",
                r.status()
            );
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every event of `tenant` through HAProxy, as (id, body). A 503 (HAProxy has not yet seen a
/// restarted node healthy: checks run every 2 s) is retried for up to 15 s.
async fn events(http: &reqwest::Client, front: &str, tenant: &str) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let mut after = 0;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, v) = call(
            http,
            Method::GET,
            &format!("http://{front}/t/{tenant}/events?after={after}&limit=1000"),
            None,
        )
        .await;
        if status == StatusCode::SERVICE_UNAVAILABLE && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        assert_eq!(status, StatusCode::OK, "events of {tenant}: {v}");
        for e in v["events"].as_array().unwrap() {
            out.push((
                e["id"].as_i64().unwrap(),
                e["body"].as_str().unwrap().to_string(),
            ));
        }
        if v["more"] != true {
            return out;
        }
        after = v["next_after"].as_i64().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_behind_haproxy_route_move_survive_and_rebalance() {
    let dir = tempfile::tempdir().unwrap();
    let mut ports = BTreeMap::new();
    for n in ["node1", "node2", "node3", "node4"] {
        ports.insert(n.to_string(), free_port());
    }
    let mut c = Cluster {
        dir: dir.path().to_path_buf(),
        file: dir.path().join("cluster.toml"),
        ports,
        nodes: BTreeMap::new(),
        haproxy: None,
        api: format!("127.0.0.1:{}", free_port()),
        front: format!("127.0.0.1:{}", free_port()),
    };
    c.write_file(&["node1", "node2", "node3"]);
    for n in ["node1", "node2", "node3"] {
        c.start_node(n);
    }
    c.cli_ok(&["init"]);
    c.cli_ok(&["haproxy-config"]);
    c.start_haproxy();
    c.cli_ok(&["push"]);
    let http = reqwest::Client::new();
    let front = c.front.clone();

    // 300 tenants, each created on its owner; a create on another node is refused.
    let table = c.table();
    let names: Vec<String> = (0..TENANTS).map(|i| format!("t{i:03}")).collect();
    for t in &names {
        let owner = table.owner(&TenantId::parse(t).unwrap()).to_string();
        let (s, v) = call(
            &http,
            Method::PUT,
            &format!("{}/admin/tenants/{t}", c.node_url(&owner)),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{t}: {v}");
    }
    let wrong = if table.owner(&TenantId::parse("t000").unwrap()) == "node1" {
        "node2"
    } else {
        "node1"
    };
    let (s, v) = call(
        &http,
        Method::PUT,
        &format!("{}/admin/tenants/newcomer-t000", c.node_url(wrong)),
        None,
    )
    .await;
    if s == StatusCode::MISDIRECTED_REQUEST {
        assert!(v["error"]["owner"].is_string(), "{v}");
    }

    // Every tenant through HAProxy: a webhook by path lands on its owner (others answer 421,
    // which HAProxy would pass on); SQL by x-namespace and by Host.
    let deadline = Instant::now() + Duration::from_secs(30);
    for t in &names {
        let r = http
            .post(format!("http://{front}/t/{t}/hooks/load"))
            .header("webhook-id", format!("first-{t}"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED, "{t}");
    }
    for t in names.iter().step_by(30) {
        sql(
            &http,
            &front,
            t,
            "CREATE TABLE kv(k TEXT PRIMARY KEY, v INTEGER)",
            deadline,
        )
        .await
        .unwrap();
        let r = http
            .post(format!("http://{front}/v2/pipeline"))
            .bearer_auth(TOKEN)
            .header("host", format!("{t}.db.test"))
            .json(&json!({"requests": [{"type": "execute", "stmt": {"sql": "SELECT count(*) FROM kv"}}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{t} by Host");
    }

    // A move under continuous webhook and SQL write load.
    let table = c.table();
    let mover_t = names
        .iter()
        .step_by(30)
        .find(|t| table.owner(&TenantId::parse(t).unwrap()) == "node1")
        .unwrap()
        .clone();
    let stop = Arc::new(AtomicBool::new(false));
    let hooks = {
        let (http, front, t, stop) = (http.clone(), front.clone(), mover_t.clone(), stop.clone());
        tokio::spawn(async move {
            let mut acked = BTreeMap::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let d = format!("load-{i}");
                let id = deliver(
                    &http,
                    &front,
                    &t,
                    &d,
                    Instant::now() + Duration::from_secs(20),
                )
                .await
                .expect("acknowledged within 20 s");
                acked.insert(d, id);
                i += 1;
            }
            acked
        })
    };
    // SQL through the Rust libsql client, as an application would use it (by path, via HAProxy).
    let writes = {
        let (front, t, stop) = (front.clone(), mover_t.clone(), stop.clone());
        tokio::spawn(async move {
            let db =
                libsql::Builder::new_remote(format!("http://{front}/t/{t}"), TOKEN.to_string())
                    .connector(hyper_014::client::HttpConnector::new())
                    .build()
                    .await
                    .unwrap();
            let conn = db.connect().unwrap();
            let mut acked = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let deadline = Instant::now() + Duration::from_secs(20);
                // Retried on any error (503 tenant_moving, 421 before HAProxy switched); the
                // primary key makes a retry of a write that did commit harmless.
                while let Err(e) = conn
                    .execute(
                        "INSERT OR IGNORE INTO kv VALUES (?1, ?2)",
                        libsql::params![format!("k{i}"), i],
                    )
                    .await
                {
                    assert!(
                        Instant::now() < deadline,
                        "k{i} not committed within 20 s: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                acked.push(format!("k{i}"));
                i += 1;
            }
            acked
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out = {
        let file = c.file.clone();
        let t = mover_t.clone();
        tokio::task::spawn_blocking(move || {
            common::tenantd()
                .args(["cluster", "--file"])
                .arg(&file)
                .args(["move", &t, "--to", "node2"])
                .env("TENANTD_ADMIN_TOKEN", TOKEN)
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("node1 -> node2"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let acked_hooks = hooks.await.unwrap();
    let acked_rows = writes.await.unwrap();
    assert!(
        acked_hooks.len() > 5 && acked_rows.len() > 5,
        "{} {}",
        acked_hooks.len(),
        acked_rows.len()
    );
    let stored = events(&http, &front, &mover_t).await;
    let mut by_body: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (id, body) in &stored {
        by_body.entry(body.clone()).or_default().push(*id);
    }
    for (d, id) in &acked_hooks {
        let ids = by_body
            .get(&format!("{{\"d\":\"{d}\"}}"))
            .unwrap_or_else(|| panic!("acknowledged {d} lost"));
        assert_eq!(ids, &vec![*id], "{d} stored once under its id");
    }
    let ids: Vec<i64> = stored.iter().map(|(id, _)| *id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase");
    let rows = sql(
        &http,
        &front,
        &mover_t,
        "SELECT k FROM kv",
        Instant::now() + Duration::from_secs(5),
    )
    .await
    .unwrap();
    let keys: Vec<String> = rows["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0]["value"].as_str().unwrap().to_string())
        .collect();
    let unique: BTreeSet<&String> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len(), "no row twice");
    for k in &acked_rows {
        assert!(unique.contains(k), "committed row {k} lost");
    }
    // The data is on node2; node1 names it.
    let (s, v) = call(
        &http,
        Method::GET,
        &format!("{}/t/{mover_t}/events?limit=1", c.node_url("node1")),
        None,
    )
    .await;
    assert_eq!(
        (s, v["error"]["owner"].as_str()),
        (StatusCode::MISDIRECTED_REQUEST, Some("node2")),
        "{v}"
    );
    let (s, _) = call(
        &http,
        Method::GET,
        &format!("{}/t/{mover_t}/events?limit=1", c.node_url("node2")),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);

    // A mover that dies after fencing: writes wait or get 503, then the fence times out and
    // the source serves them again; the move can be run again.
    let table = c.table();
    let victim = names
        .iter()
        .find(|t| table.owner(&TenantId::parse(t).unwrap()) == "node3")
        .unwrap()
        .clone();
    let (s, v) = call(
        &http,
        Method::POST,
        &format!("{}/admin/tenants/{victim}/move", c.node_url("node3")),
        Some(json!({"to": "node1", "ttl_ms": 1500})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let fenced_at = Instant::now();
    let r = http
        .post(format!("http://{front}/t/{victim}/hooks/load"))
        .header("webhook-id", "during-fence")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert!(matches!(r.status().as_u16(), 202 | 503), "{}", r.status());
    let id = deliver(
        &http,
        &front,
        &victim,
        "after-fence",
        Instant::now() + Duration::from_secs(10),
    )
    .await;
    assert!(
        id.is_some(),
        "the source serves the tenant again after the fence expires"
    );
    assert!(
        fenced_at.elapsed() >= Duration::from_millis(1400),
        "not before the fence's ttl"
    );
    c.cli_ok(&["move", &victim, "--to", "node1"]);
    assert_eq!(
        events(&http, &front, &victim).await.len() as u64,
        2 + u64::from(r.status() == StatusCode::ACCEPTED)
    );

    // A mover killed (SIGKILL) in the middle of moving a 40 MB tenant: the tenant is served by
    // its source again once the fence's ttl has passed, and the move can run again.
    let table = c.table();
    let big = names
        .iter()
        .find(|t| table.owner(&TenantId::parse(t).unwrap()) == "node2" && **t != mover_t)
        .unwrap()
        .clone();
    let far = Instant::now() + Duration::from_secs(60);
    sql(&http, &front, &big, "CREATE TABLE blob(b BLOB)", far)
        .await
        .unwrap();
    for _ in 0..40 {
        sql(
            &http,
            &front,
            &big,
            "INSERT INTO blob VALUES (randomblob(1000000))",
            far,
        )
        .await
        .unwrap();
    }
    let mut mover = common::tenantd()
        .args(["cluster", "--file"])
        .arg(&c.file)
        .args(["move", &big, "--to", "node1", "--fence-ttl", "2s"])
        .env("TENANTD_ADMIN_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let show = format!("{}/admin/tenants/{big}", c.node_url("node2"));
    let watch_until = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = call(&http, Method::GET, &show, None).await;
        if v["moving_to"] == "node1" {
            break;
        }
        assert!(
            Instant::now() < watch_until,
            "the mover never fenced {big}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    mover.kill().unwrap();
    let _ = mover.wait();
    let id = deliver(
        &http,
        &front,
        &big,
        "after-kill",
        Instant::now() + Duration::from_secs(15),
    )
    .await;
    assert!(
        id.is_some(),
        "{big} is served again after its fence expired"
    );
    assert_eq!(c.table().owner(&TenantId::parse(&big).unwrap()), "node2");
    let (s, v) = call(&http, Method::GET, &show, None).await;
    assert_eq!(
        (s, v["moving_to"].clone()),
        (StatusCode::OK, Value::Null),
        "{v}"
    );
    c.cli_ok(&["move", &big, "--to", "node1"]);
    let rows = sql(&http, &front, &big, "SELECT count(*) FROM blob", far)
        .await
        .unwrap();
    assert_eq!(rows["rows"][0][0]["value"], "40", "{rows}");
    assert_eq!(
        events(&http, &front, &big).await.len(),
        2,
        "first + after-kill"
    );

    // A stopped node fails only its own tenants.
    c.stop_node("node3");
    let table = c.table();
    let mut failed = 0;
    for t in &names {
        let r = http
            .post(format!("http://{front}/t/{t}/hooks/load"))
            .body("{}")
            .send()
            .await
            .unwrap();
        let on3 = table.owner(&TenantId::parse(t).unwrap()) == "node3";
        if on3 {
            assert!(!r.status().is_success(), "{t} on the stopped node");
            failed += 1;
        } else {
            assert_eq!(
                r.status(),
                StatusCode::ACCEPTED,
                "{t} is not on the stopped node"
            );
        }
    }
    assert!((60..=140).contains(&failed), "{failed}");
    c.start_node("node3");

    // A fourth node: HAProxy learns its backend (reload), then a rebalance.
    let before: BTreeMap<String, usize> = {
        let mut m = BTreeMap::new();
        for t in &names {
            m.insert(t.clone(), events(&http, &front, t).await.len());
        }
        m
    };
    c.start_node("node4");
    let node4 = format!("127.0.0.1:{}", c.ports["node4"]);
    c.cli_ok(&["add-node", "node4", "--data", &node4]);
    c.cli_ok(&["haproxy-config"]);
    c.start_haproxy();
    c.cli_ok(&["push"]);
    let plan = c.cli_ok(&["rebalance", "--dry-run"]);
    assert!(plan.contains("-> node4"), "{plan}");
    assert!(plan.contains("node4: tenants 0 -> "), "{plan}");
    assert!(
        !plan.contains("warning"),
        "hashing spreads 300 tenants well enough: {plan}"
    );
    let out = c.cli_ok(&["rebalance", "--parallel", "4"]);
    assert!(out.contains("rebalanced"), "{out}");
    let table = c.table();
    let counts = table.slot_counts();
    assert!((3_600..=4_500).contains(&counts["node4"]), "{counts:?}");
    let pinned: BTreeSet<String> = table.to_file().overrides.into_keys().collect();
    let by_hand: BTreeSet<String> = [&mover_t, &victim, &big].into_iter().cloned().collect();
    assert!(
        pinned.is_subset(&by_hand),
        "only tenants moved by hand stay pinned: {pinned:?}"
    );
    assert!(!dir.path().join("cluster-moves.json").exists());
    let mut on4 = 0;
    for t in &names {
        assert_eq!(
            events(&http, &front, t).await.len(),
            before[t],
            "{t} lost nothing"
        );
        let owner = table.owner(&TenantId::parse(t).unwrap()).to_string();
        on4 += usize::from(owner == "node4");
        let (s, _) = call(
            &http,
            Method::GET,
            &format!("{}/t/{t}/events?limit=1", c.node_url(&owner)),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{t} is on {owner}");
    }
    assert!((40..=110).contains(&on4), "{on4} tenants moved to node4");
    drop(c);
}
