//! Crash durability with the real binary, over the HTTP contract only: per durability mode, ten
//! cycles on one data dir, each one a start, webhooks posted concurrently to several tenants and
//! a `kill -9` with requests in flight. Every cycle first reads every tenant's events, and after
//! the last one a final restart reads them again; each read checks that every acknowledged
//! write is stored exactly once under the id its `202` gave, that ids increase and never change
//! owner, and that no event appears at or below an id an earlier read returned (a consumer
//! polling with `after` would skip it). Then a clean stop exits 0 and every tenant file passes
//! `PRAGMA integrity_check`.
//!
//! A third of the deliveries carry a delivery id (`webhook-id` or `Idempotency-Key`, which an
//! unsigned source dedupes on). Like a real sender, the test retries those until acknowledged
//! (the ones in flight at a kill are retried after the restart) and redelivers some that were
//! acknowledged: each redelivery must answer `200` with the original id and store nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

const TENANTS: [&str; 6] = [
    "crash-a", "crash-b", "crash-c", "crash-d", "crash-e", "crash-f",
];
const WRITERS: usize = 16;
const CYCLES: usize = 10;
/// New writes acknowledged in a cycle before its `kill -9`.
const ACKS_PER_CYCLE: usize = 300;
/// Events per page when reading back, so that every tenant takes several pages.
const PAGE: usize = 100;
/// Bound on every wait (acknowledgements, a request, an exit): a hang fails, it never blocks.
const WAIT: Duration = Duration::from_secs(30);

/// One webhook delivery: its body is `marker`, unique over the whole test.
#[derive(Clone, Debug)]
struct Delivery {
    tenant: &'static str,
    marker: String,
    /// The delivery-id header it carries, if any (its value is the marker).
    id_header: Option<&'static str>,
}

/// What the test knows, across cycles.
#[derive(Default)]
struct Ledger {
    /// (tenant, event id) -> marker, for every id acknowledged or read so far: an id never
    /// changes owner and never disappears.
    seen: BTreeMap<(&'static str, i64), String>,
    /// Per tenant, the highest id a read returned: a consumer polling with `after` is past it,
    /// so no event may later appear at or below it.
    cursor: HashMap<&'static str, i64>,
    /// Every (tenant, id) a read returned.
    read: BTreeSet<(&'static str, i64)>,
    /// Deliveries with a delivery id that were acknowledged, with their id: redelivered.
    keyed_acks: Vec<(Delivery, i64)>,
    /// Deliveries with a delivery id not acknowledged yet (in flight at a kill): retried.
    retry: Vec<Delivery>,
    acked: usize,
    redelivered: usize,
    retried: usize,
    /// Retries answered `200` duplicate: the killed server had stored them unacknowledged.
    retries_found: usize,
}

impl Ledger {
    /// Records that `d` is stored as event `id` (a `202`, or a `200` duplicate of a retry).
    fn stored(&mut self, d: &Delivery, id: i64) -> Result<(), String> {
        match self.seen.insert((d.tenant, id), d.marker.clone()) {
            Some(old) if old != d.marker => Err(format!(
                "{}: id {id} acknowledged for {} but it belonged to {old}",
                d.tenant, d.marker
            )),
            _ => Ok(()),
        }
    }
}

/// A running `tenantd serve`, killed when dropped so a failing test leaves no server behind.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn spawn(data: &Path, durability: &str) -> Server {
    let (child, url) = common::spawn_serve(common::tenantd(), data, &["--durability", durability]);
    Server { child, url }
}

/// Waits at most [`WAIT`] for the child to exit.
fn wait_exit(child: &mut Child, what: &str) -> ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("tenantd did not exit within {WAIT:?} after {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Posts `d`; returns the status and the answered event id, or `None` if the server is gone.
async fn post(http: &reqwest::Client, url: &str, d: &Delivery) -> Option<(u16, i64, bool)> {
    let mut req = http
        .post(format!("{url}/t/{}/hooks/load", d.tenant))
        .header("content-type", "text/plain")
        .body(d.marker.clone());
    if let Some(h) = d.id_header {
        req = req.header(h, &d.marker);
    }
    let r = req.send().await.ok()?;
    let status = r.status().as_u16();
    let v: serde_json::Value = r.json().await.ok()?; // cut short by a kill
    assert!(
        status == 200 || status == 202,
        "{}: unexpected {status} for {}: {v}",
        d.tenant,
        d.marker
    );
    let id = v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"));
    Some((status, id, v["duplicate"] == true))
}

/// Why a delivery is sent.
enum Kind {
    /// First send of a new marker: must answer `202`.
    New,
    /// A delivery-id delivery not acknowledged before a kill: `202`, or `200` duplicate if the
    /// killed server had stored it.
    Retry,
    /// An acknowledged delivery-id delivery sent again: `200` duplicate with this id.
    Redelivery(i64),
}

/// Sends deliveries until the server is gone: retries first, every tenth a redelivery of an
/// acknowledged one, the rest new. Counts acknowledgements in `acks`. Panics on a broken
/// contract.
async fn writer(
    w: usize,
    cycle: usize,
    http: reqwest::Client,
    url: String,
    ledger: Arc<Mutex<Ledger>>,
    acks: Arc<AtomicUsize>,
) {
    for i in 0.. {
        let (d, kind) = {
            let mut l = ledger.lock().unwrap();
            if let Some(d) = l.retry.pop() {
                l.retried += 1;
                (d, Kind::Retry)
            } else if i % 10 == 9 && !l.keyed_acks.is_empty() {
                let (d, id) = l.keyed_acks[(w * 7919 + i * 31) % l.keyed_acks.len()].clone();
                (d, Kind::Redelivery(id))
            } else {
                let id_header = match i % 6 {
                    0 => Some("webhook-id"),
                    3 => Some("idempotency-key"),
                    _ => None,
                };
                let d = Delivery {
                    tenant: TENANTS[(w + i) % TENANTS.len()],
                    marker: format!("c{cycle}-w{w}-{i}"),
                    id_header,
                };
                (d, Kind::New)
            }
        };
        let Some((status, id, duplicate)) = post(&http, &url, &d).await else {
            if d.id_header.is_some() && !matches!(kind, Kind::Redelivery(_)) {
                ledger.lock().unwrap().retry.push(d);
            }
            return; // the server is gone
        };
        let mut l = ledger.lock().unwrap();
        let verdict = match kind {
            Kind::Redelivery(orig) if status == 200 && duplicate && id == orig => {
                l.redelivered += 1;
                Ok(())
            }
            Kind::Redelivery(orig) => Err(format!(
                "redelivery of acknowledged {} (id {orig}) answered {status} id {id} \
                 duplicate {duplicate}: expected 200, the original id, duplicate true",
                d.marker
            )),
            Kind::New if status == 202 && !duplicate => l.stored(&d, id),
            Kind::Retry if (status == 202) != duplicate => {
                l.retries_found += usize::from(duplicate);
                l.stored(&d, id)
            }
            Kind::New | Kind::Retry => Err(format!(
                "{} ({}) answered {status} id {id} duplicate {duplicate}",
                d.marker,
                if matches!(kind, Kind::New) {
                    "new"
                } else {
                    "retry"
                }
            )),
        };
        if verdict.is_ok() && !matches!(kind, Kind::Redelivery(_)) {
            acks.fetch_add(1, Ordering::Relaxed);
            l.acked += 1;
            if d.id_header.is_some() {
                l.keyed_acks.push((d, id));
            }
        }
        drop(l); // not poisoned by the panic below
        if let Err(e) = verdict {
            panic!("cycle {cycle}: {e}");
        }
    }
}

/// Every tenant's events, `(id, body)` in the order read, fetched page by page.
async fn read_events(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    when: &str,
) -> Vec<(&'static str, Vec<(i64, String)>)> {
    let mut out = Vec::new();
    for t in TENANTS {
        let mut events = Vec::new();
        let mut after = 0;
        loop {
            let r = http
                .get(format!("{url}/t/{t}/events?after={after}&limit={PAGE}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{when}: reading {t}'s events: {e}"));
            assert_eq!(r.status(), 200, "{when}: reading {t}'s events");
            let v: serde_json::Value = r.json().await.unwrap();
            for e in v["events"].as_array().unwrap() {
                let body = e["body"].as_str().expect("bodies are text");
                events.push((e["id"].as_i64().unwrap(), body.to_owned()));
            }
            let next = v["next_after"].as_i64().unwrap();
            assert_eq!(
                next,
                events.last().map_or(after, |e| e.0),
                "{when}: {t}'s cursor"
            );
            after = next;
            if !v["more"].as_bool().unwrap() {
                break;
            }
        }
        out.push((t, events));
    }
    out
}

/// Checks what was read against the ledger, then adds it: ids strictly increasing, each
/// marker stored once, every id seen or acknowledged before still there with its marker, and
/// nothing new at or below the previous read's last id (a consumer would skip it). Panics
/// listing what is wrong.
fn check_events(ledger: &mut Ledger, read: Vec<(&'static str, Vec<(i64, String)>)>, when: &str) {
    let mut wrong = Vec::new();
    for (t, events) in read {
        let mut by_marker: HashMap<&str, Vec<i64>> = HashMap::new();
        for pair in events.windows(2) {
            if pair[0].0 >= pair[1].0 {
                wrong.push(format!(
                    "{t}: id {} after {}: not increasing",
                    pair[1].0, pair[0].0
                ));
            }
        }
        for (id, marker) in &events {
            by_marker.entry(marker).or_default().push(*id);
        }
        for (marker, ids) in &by_marker {
            if ids.len() > 1 {
                wrong.push(format!(
                    "{t}: {marker} stored {} times, ids {ids:?}",
                    ids.len()
                ));
            }
        }
        let by_id: BTreeMap<i64, &str> = events.iter().map(|(i, m)| (*i, m.as_str())).collect();
        let cursor = ledger.cursor.get(t).copied().unwrap_or(0);
        for (id, marker) in by_id.range(..=cursor) {
            if !ledger.read.contains(&(t, *id)) {
                wrong.push(format!(
                    "{t}: {marker} (id {id}) appeared at or below id {cursor}, which an \
                     earlier read already returned"
                ));
            }
        }
        for ((_, id), marker) in ledger.seen.range((t, i64::MIN)..=(t, i64::MAX)) {
            match by_id.get(id) {
                Some(m) if m == marker => {}
                Some(m) => wrong.push(format!("{t}: id {id} was {marker}, now {m}")),
                None => match by_marker.get(marker.as_str()) {
                    Some(ids) => wrong.push(format!("{t}: {marker} was id {id}, now {ids:?}")),
                    None => wrong.push(format!("{t}: {marker} (id {id}) lost")),
                },
            }
        }
        if let Some((last, _)) = events.last() {
            ledger.cursor.insert(t, *last);
        }
        for (id, marker) in events {
            ledger.read.insert((t, id));
            ledger.seen.insert((t, id), marker);
        }
    }
    assert!(
        wrong.is_empty(),
        "{when}: {} problems, first ones: {:#?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
}

fn token(data: &Path) -> String {
    std::fs::read_to_string(data.join("admin.token"))
        .unwrap()
        .trim()
        .to_owned()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(WAIT).build().unwrap()
}

/// One cycle: start, check, load, `kill -9` once [`ACKS_PER_CYCLE`] more writes were
/// acknowledged (writers still sending), wait for the writers to see the server gone.
async fn cycle(data: &Path, durability: &str, cycle: usize, ledger: &Arc<Mutex<Ledger>>) {
    let mut srv = spawn(data, durability);
    let http = client();
    let token = token(data);
    if cycle == 0 {
        for t in TENANTS {
            let r = http
                .put(format!("{}/admin/tenants/{t}", srv.url))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201, "creating {t}");
        }
    }
    let when = format!("{durability} mode, start of cycle {cycle}");
    let read = read_events(&http, &srv.url, &token, &when).await;
    check_events(&mut ledger.lock().unwrap(), read, &when);

    let acks = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (http, url) = (http.clone(), srv.url.clone());
            tokio::spawn(writer(w, cycle, http, url, ledger.clone(), acks.clone()))
        })
        .collect();
    let deadline = Instant::now() + WAIT;
    while acks.load(Ordering::Relaxed) < ACKS_PER_CYCLE && !writers.iter().any(|w| w.is_finished())
    {
        assert!(
            Instant::now() < deadline,
            "{durability} mode, cycle {cycle}: only {} of {ACKS_PER_CYCLE} writes acknowledged \
             within {WAIT:?}",
            acks.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    srv.child.kill().unwrap(); // SIGKILL
    wait_exit(&mut srv.child, "SIGKILL");
    for w in writers {
        tokio::time::timeout(WAIT, w)
            .await
            .expect("a writer notices the server is gone")
            .expect("a writer saw the contract kept");
    }
    assert!(
        acks.load(Ordering::Relaxed) >= ACKS_PER_CYCLE,
        "{durability} mode, cycle {cycle}: the writers stopped before the kill"
    );
}

async fn kill_9_cycles(durability: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    for c in 0..CYCLES {
        cycle(data, durability, c, &ledger).await;
    }

    // Restart, let the sender finish its retries, check, stop cleanly.
    let mut srv = spawn(data, durability);
    let http = client();
    let token = token(data);
    let retries = std::mem::take(&mut ledger.lock().unwrap().retry);
    for d in retries {
        let (status, id, duplicate) = post(&http, &srv.url, &d)
            .await
            .unwrap_or_else(|| panic!("{durability} mode: final retry of {} failed", d.marker));
        assert!(
            (status == 202) != duplicate,
            "{durability} mode: final retry of {} answered {status} duplicate {duplicate}",
            d.marker
        );
        let mut l = ledger.lock().unwrap();
        l.stored(&d, id).unwrap();
        l.acked += 1;
        l.retried += 1;
        l.retries_found += usize::from(duplicate);
    }
    let when = format!("{durability} mode, after {CYCLES} kill -9 cycles");
    let read = read_events(&http, &srv.url, &token, &when).await;
    let mut l = ledger.lock().unwrap();
    check_events(&mut l, read, &when);
    assert!(
        l.redelivered > 0,
        "no redelivery was answered: dedupe not exercised"
    );
    eprintln!(
        "{durability}: {CYCLES} cycles, {} writes acknowledged, {} events stored, {} \
         redeliveries answered as duplicates, {} retries ({} found stored)",
        l.acked,
        l.seen.len(),
        l.redelivered,
        l.retried,
        l.retries_found
    );
    drop(l);

    // SAFETY: sending SIGTERM to our own child process.
    unsafe { libc::kill(srv.child.id() as i32, libc::SIGTERM) };
    assert!(
        wait_exit(&mut srv.child, "SIGTERM").success(),
        "graceful shutdown exits 0"
    );
    // Only `tenants/` is walked: the data dir also holds node-level files.
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
async fn kill_9_ten_times_loses_no_acknowledged_write_and_stores_each_once_in_crash_mode() {
    kill_9_cycles("crash").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_ten_times_loses_no_acknowledged_write_and_stores_each_once_in_fsync_mode() {
    kill_9_cycles("fsync").await;
}
