//! Crash durability with the real binary: post webhooks concurrently, `kill -9` the server
//! mid-load, restart it on the same data dir, and check that every acknowledged write is there
//! and every tenant file passes `PRAGMA integrity_check`.

use std::path::Path;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

const TENANTS: [&str; 4] = ["crash-a", "crash-b", "crash-c", "crash-d"];
const WRITERS: usize = 16;

struct Server {
    child: Child,
    url: String,
}

fn spawn(data: &Path, durability: &str) -> Server {
    let (child, url) = common::spawn_serve(data, &["--durability", durability]);
    Server { child, url }
}

fn token(data: &Path) -> String {
    std::fs::read_to_string(data.join("admin.token"))
        .unwrap()
        .trim()
        .to_owned()
}

async fn run_crash_test(durability: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let http = reqwest::Client::new();
    let mut srv = spawn(data, durability);
    let token = token(data);
    for t in TENANTS {
        let r = http
            .put(format!("{}/admin/tenants/{t}", srv.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }

    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (http, url, acked) = (http.clone(), srv.url.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let tenant = TENANTS[(w + i) % TENANTS.len()];
                let marker = format!("w{w}-{i}");
                let sent = http
                    .post(format!("{url}/t/{tenant}/hooks/load"))
                    .body(marker.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 202 => {
                        acked.lock().unwrap().push((tenant.to_owned(), marker))
                    }
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    // Kill once a few hundred writes were acknowledged, with requests still in flight.
    while acked.lock().unwrap().len() < 400 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    srv.child.kill().unwrap(); // SIGKILL
    srv.child.wait().unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 400);

    let mut srv = spawn(data, durability);
    let mut stored = std::collections::HashSet::new();
    for t in TENANTS {
        let mut after = 0;
        loop {
            let url = format!("{}/t/{t}/events?after={after}&limit=1000", srv.url);
            let v: serde_json::Value = http
                .get(url)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for e in v["events"].as_array().unwrap() {
                stored.insert((t.to_owned(), e["body"].as_str().unwrap().to_owned()));
            }
            after = v["next_after"].as_i64().unwrap();
            if !v["more"].as_bool().unwrap() {
                break;
            }
        }
    }
    let lost: Vec<_> = acked.iter().filter(|a| !stored.contains(*a)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );

    // Graceful stop, then check every file.
    // SAFETY: sending SIGTERM to our own child process.
    unsafe { libc::kill(srv.child.id() as i32, libc::SIGTERM) };
    assert!(
        srv.child.wait().unwrap().success(),
        "graceful shutdown exits 0"
    );
    let mut files = 0;
    for entry in walk(&data.join("tenants")) {
        if entry.extension().is_some_and(|e| e == "db") {
            let conn = rusqlite::Connection::open(&entry).unwrap();
            let check: String = conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(check, "ok", "{}", entry.display());
            files += 1;
        } else {
            panic!("left over after a clean shutdown: {}", entry.display());
        }
    }
    assert_eq!(files, TENANTS.len());
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_write_in_crash_mode() {
    run_crash_test("crash").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_write_in_fsync_mode() {
    run_crash_test("fsync").await;
}
