//! The rendered configuration against a real HAProxy (Debian's 2.6; `.ci/run` installs it):
//! `haproxy -c` accepts it, and a HAProxy on 127.0.0.1 routes path, Host and `x-namespace`
//! requests for 300 tenants to the table's owner, an override wins, and `set map` through the
//! runtime API re-routes at once.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cluster::file::{ClusterFile, Haproxy, Node};
use cluster::haproxy::{map_paths, render_config, render_slots_map, render_tenants_map};
use cluster::runtime::{add_map_cmd, del_map_cmd, set_map_cmd, write_atomic, Runtime};
use cluster::slot::slot_of;
use cluster::table::SlotTable;
use store::TenantId;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A backend answering every request with its own name.
fn backend(name: &'static str) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut conn = conn;
                loop {
                    let mut line = String::new();
                    // One request per loop: headers to the blank line (no bodies are sent).
                    let mut seen = false;
                    while r.read_line(&mut line).unwrap_or(0) > 0 {
                        seen = true;
                        if line == "\r\n" {
                            break;
                        }
                        line.clear();
                    }
                    if !seen {
                        return;
                    }
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{name}",
                        name.len()
                    );
                    if conn.write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn get(addr: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nconnection: close\r\n");
    if !headers.iter().any(|(h, _)| *h == "host") {
        req.push_str("host: localhost\r\n");
    }
    for (h, v) in headers {
        req.push_str(&format!("{h}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split("\r\n\r\n").nth(1).unwrap_or("").to_string()
}

fn cluster(dir: &Path, nodes: &[(&str, String)]) -> ClusterFile {
    ClusterFile {
        base_domain: Some("db.example.com".into()),
        table: None,
        haproxy: Haproxy {
            runtime_api: format!("127.0.0.1:{}", free_port()),
            bind: format!("127.0.0.1:{}", free_port()),
            map_dir: dir.to_path_buf(),
        },
        nodes: nodes
            .iter()
            .map(|(n, a)| Node {
                name: n.to_string(),
                data: a.clone(),
                admin: None,
                weight: 1,
            })
            .collect(),
    }
}

fn write_all(dir: &Path, c: &ClusterFile, t: &SlotTable) -> std::path::PathBuf {
    let (slots, tenants) = map_paths(c);
    write_atomic(&slots, render_slots_map(t).as_bytes()).unwrap();
    write_atomic(&tenants, render_tenants_map(t).as_bytes()).unwrap();
    let cfg = dir.join("haproxy.cfg");
    write_atomic(&cfg, render_config(c).as_bytes()).unwrap();
    cfg
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn haproxy_accepts_the_rendered_config() {
    let d = tempfile::tempdir().unwrap();
    let c = cluster(
        d.path(),
        &[
            ("node1", "127.0.0.1:1".into()),
            ("node2", "127.0.0.1:2".into()),
        ],
    );
    let t = SlotTable::even(&c.weights(), 1).unwrap();
    let cfg = write_all(d.path(), &c, &t);
    let out = Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(&cfg)
        .output()
        .expect("haproxy must be installed (apt-get install haproxy; .ci/run does)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(render_slots_map(&t).lines().count(), 16_384);
}

#[test]
fn haproxy_routes_every_addressing_to_the_owner_and_set_map_reroutes() {
    let d = tempfile::tempdir().unwrap();
    let nodes = [
        ("node1", backend("node1")),
        ("node2", backend("node2")),
        ("node3", backend("node3")),
    ];
    let c = cluster(d.path(), &nodes);
    let mut t = SlotTable::even(&c.weights(), 1).unwrap();
    let pinned = TenantId::parse("tenant-7").unwrap();
    let pin_to = if t.owner(&pinned) == "node1" {
        "node2"
    } else {
        "node1"
    };
    t.set_override(&pinned, Some(pin_to)).unwrap();
    let cfg = write_all(d.path(), &c, &t);
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haproxy must be installed");
    let _guard = Kill(child);
    let bind = c.haproxy.bind.clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if TcpStream::connect(&bind).is_ok() && get(&bind, "/healthz", &[]).starts_with("node") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "haproxy did not come up on {bind}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for i in 0..300 {
        let id = TenantId::parse(&format!("tenant-{i}")).unwrap();
        let owner = t.owner(&id);
        let host = format!("{id}.db.example.com:8000");
        assert_eq!(
            get(&bind, &format!("/t/{id}/v2/pipeline"), &[]),
            owner,
            "path {id}"
        );
        assert_eq!(
            get(&bind, "/v2/pipeline", &[("host", &host)]),
            owner,
            "host {id}"
        );
        assert_eq!(
            get(&bind, "/v2/pipeline", &[("x-namespace", id.as_str())]),
            owner,
            "header {id}"
        );
    }
    assert_eq!(
        get(&bind, "/t/tenant-7/x", &[]),
        pin_to,
        "the override wins"
    );

    let acme = TenantId::parse("acme").unwrap();
    let before = t.owner(&acme).to_string();
    let to = if before == "node3" { "node1" } else { "node3" };
    let rt = Runtime::new(&c.haproxy.runtime_api);
    let (slots, tenants) = map_paths(&c);
    rt.batch(&[set_map_cmd(&slots, &slot_of(&acme).to_string(), to)])
        .unwrap();
    assert_eq!(
        get(&bind, "/t/acme/x", &[]),
        to,
        "set map re-routes at once"
    );
    rt.batch(&[add_map_cmd(&tenants, "acme", &before)]).unwrap();
    assert_eq!(
        get(&bind, "/t/acme/x", &[]),
        before,
        "add map on tenants.map overrides"
    );
    let shown = rt.show_map(&tenants).unwrap();
    assert!(
        shown.contains(&("acme".to_string(), before.clone())),
        "{shown:?}"
    );
    rt.batch(&[del_map_cmd(&tenants, "acme")]).unwrap();
    assert_eq!(get(&bind, "/t/acme/x", &[]), to);
    // Every slot to one node and back, a few connections for 2 x 16,384 commands.
    let all = |node: &str| -> Vec<String> {
        (0..cluster::slot::SLOTS)
            .map(|s| set_map_cmd(&slots, &s.to_string(), node))
            .collect()
    };
    let lines = rt.batch(&all("node2")).unwrap();
    assert!(
        (40..=200).contains(&lines),
        "{lines} lines for 16,384 commands"
    );
    let live = rt.show_map(&slots).unwrap();
    assert!(live.iter().all(|(_, v)| v == "node2"), "every slot moved");
    assert_eq!(get(&bind, "/t/tenant-9/x", &[]), "node2");
    let mut back: Vec<String> = (0..cluster::slot::SLOTS)
        .map(|s| set_map_cmd(&slots, &s.to_string(), t.slot_owner(s)))
        .collect();
    back.push(set_map_cmd(Path::new("/no/such.map"), "1", "node1"));
    let err = rt.batch(&back).unwrap_err().to_string();
    assert!(
        err.contains("HAProxy refused") && err.contains("/no/such.map"),
        "{err}"
    );
    let live = rt.show_map(&slots).unwrap();
    assert!(
        live.iter()
            .all(|(k, v)| v == t.slot_owner(k.parse().unwrap())),
        "the batches before the refused one were applied"
    );
}
