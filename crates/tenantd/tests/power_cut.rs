//! Power-loss durability with the real binary over powerfs (`crates/powerfs`): per durability
//! mode, [`CUTS`] cycles on one backing directory, each one a mount, a start, webhooks and SQL
//! inserts from concurrent clients, a power cut at a random moment (everything not fsynced is
//! undone), a `kill -9`, and a check of the backing directory's databases on a copy
//! (`PRAGMA integrity_check` on every `.db`). The next cycle starts the server on what the cut
//! left and reads every tenant's events and SQL rows back:
//!
//! - `fsync` mode: every acknowledged write (and everything a read returned before) is there;
//! - `crash` mode: per tenant and per kind, what is missing is a tail: nothing missing has an
//!   id (event id, SQL rowid) below one that is there;
//! - both: an event id or rowid never changes owner while its owner is there, nothing is stored
//!   twice, and the server starts;
//! - the continuous backup (to a moto S3 server, when installed: `common/moto.rs`) runs all
//!   along; its `backup.db` is checked like every database, and after the last clean stop
//!   `tenantd restore --all` into a fresh data dir serves exactly what the node served last.
//!
//! The counts of what each mode lost are printed (`docs/POWER.md` has them). Needs root and
//! `/dev/fuse`: skipped with a message otherwise, unless `TENANTD_REQUIRE_FUSE=1`. The default
//! tests mount with `Metadata::Ordered` (any fsync makes earlier directory changes durable, as a
//! journaling filesystem does); one more mounts with strict POSIX directories (see below).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

mod common;
#[path = "common/moto.rs"]
mod moto;

const TENANTS: [&str; 3] = ["power-a", "power-b", "power-c"];
const WRITERS: usize = 4;
const CUTS: usize = 20;
/// Bound on every wait: a hang fails, it never blocks.
const WAIT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    Hook,
    Sql,
}

/// What a read found: per (kind, tenant), its (id, marker) pairs.
type Stored = ((Kind, &'static str), Vec<(i64, String)>);

/// What the test knows: per (kind, tenant), id -> marker of everything acknowledged or read.
#[derive(Default)]
struct Ledger {
    known: BTreeMap<(Kind, &'static str), BTreeMap<i64, String>>,
    acked: HashMap<Kind, usize>,
    lost: HashMap<Kind, usize>,
    /// Cuts after which something was missing.
    lossy_cuts: usize,
}

fn fuse_usable() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let fuse = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .is_ok();
    if !(root && fuse) {
        assert!(
            std::env::var("TENANTD_REQUIRE_FUSE").as_deref() != Ok("1"),
            "TENANTD_REQUIRE_FUSE=1 but powerfs cannot mount (root: {root}, /dev/fuse: {fuse})"
        );
        eprintln!(
            "skipped: the power-cut test needs root and /dev/fuse (set TENANTD_REQUIRE_FUSE=1 \
             to fail instead)"
        );
    }
    root && fuse
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn token(data: &Path) -> String {
    std::fs::read_to_string(data.join("admin.token"))
        .unwrap()
        .trim()
        .to_owned()
}

/// Runs `sql` (with `args`) as one pipeline; returns the execute result, or what went wrong
/// (the server is gone, a status other than 200, or the statement's error).
async fn sql(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    tenant: &str,
    sql: &str,
    args: &[&str],
) -> Result<serde_json::Value, String> {
    let args: Vec<_> = args
        .iter()
        .map(|a| serde_json::json!({"type": "text", "value": a}))
        .collect();
    let body = serde_json::json!({"requests": [
        {"type": "execute", "stmt": {"sql": sql, "args": args}}, {"type": "close"}
    ]});
    let r = http
        .post(format!("{url}/t/{tenant}/v2/pipeline"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status();
    let v: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
    let res = &v["results"][0];
    match (status.as_u16(), res["type"].as_str()) {
        (200, Some("ok")) => Ok(res["response"]["result"].clone()),
        (200, _) => Err(res["error"]["message"].to_string()),
        _ => Err(format!("{status}: {v}")),
    }
}

/// Sends webhooks and inserts until `stop`; records every acknowledgement in `ledger`.
async fn writer(
    w: usize,
    cycle: usize,
    url: String,
    token: String,
    ledger: Arc<Mutex<Ledger>>,
    acks: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) {
    let http = reqwest::Client::builder().timeout(WAIT).build().unwrap();
    for i in 0.. {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let tenant = TENANTS[(w + i) % TENANTS.len()];
        let marker = format!("c{cycle}-w{w}-{i}");
        let acked = if i % 2 == 0 {
            let r = http
                .post(format!("{url}/t/{tenant}/hooks/load"))
                .header("content-type", "text/plain")
                .body(marker.clone())
                .send()
                .await;
            match r {
                Ok(r) if r.status() == 202 => match r.json::<serde_json::Value>().await {
                    Ok(v) => Some((Kind::Hook, v["id"].as_i64().expect("a 202 has an id"))),
                    Err(_) => None,
                },
                Ok(_) => None,
                Err(_) => return, // the server is gone
            }
        } else {
            let ins = "INSERT INTO notes(marker) VALUES (?)";
            sql(&http, &url, &token, tenant, ins, &[&marker])
                .await
                .ok()
                .map(|r| {
                    let id = r["last_insert_rowid"]
                        .as_str()
                        .expect("an insert has a rowid");
                    (Kind::Sql, id.parse().unwrap())
                })
        };
        match acked {
            Some((kind, id)) => {
                let mut l = ledger.lock().unwrap();
                let old = l
                    .known
                    .entry((kind, tenant))
                    .or_default()
                    .insert(id, marker.clone());
                assert!(
                    old.is_none(),
                    "{kind:?} {tenant}: id {id} acknowledged for {marker}, but it was {old:?}"
                );
                *l.acked.entry(kind).or_default() += 1;
                acks.fetch_add(1, Ordering::Relaxed);
            }
            // Refused (after the cut, I/O errors): try again a little later.
            None => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// Every tenant's stored (id, marker) pairs of `kind`.
async fn read_all(http: &reqwest::Client, url: &str, token: &str, when: &str) -> Vec<Stored> {
    let mut out = Vec::new();
    for t in TENANTS {
        let mut events = Vec::new();
        let mut after = 0;
        loop {
            let r = http
                .get(format!("{url}/t/{t}/events?after={after}&limit=500"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{when}: reading {t}'s events");
            let v: serde_json::Value = r.json().await.unwrap();
            for e in v["events"].as_array().unwrap() {
                let body = e["body"].as_str().unwrap().to_owned();
                events.push((e["id"].as_i64().unwrap(), body));
            }
            after = v["next_after"].as_i64().unwrap();
            if !v["more"].as_bool().unwrap() {
                break;
            }
        }
        out.push(((Kind::Hook, t), events));
        let q = "SELECT rowid, marker FROM notes ORDER BY rowid";
        let res = match sql(http, url, token, t, q, &[]).await {
            Ok(res) => res,
            // A CREATE TABLE lost with a cut (crash mode): its rows count as missing.
            Err(e) if e.contains("no such table") => {
                out.push(((Kind::Sql, t), Vec::new()));
                continue;
            }
            Err(e) => panic!("{when}: reading {t}'s notes: {e}"),
        };
        let rows = res["rows"].as_array().unwrap();
        let rows = rows
            .iter()
            .map(|r| {
                let id = r[0]["value"].as_str().unwrap().parse().unwrap();
                (id, r[1]["value"].as_str().unwrap().to_owned())
            })
            .collect();
        out.push(((Kind::Sql, t), rows));
    }
    out
}

/// Compares what was read with the ledger, then makes the ledger what was read. Returns the
/// problems found.
fn check(ledger: &mut Ledger, durability: &str, read: Vec<Stored>, when: &str) -> Vec<String> {
    let mut wrong = Vec::new();
    let mut lossy = false;
    for (key, rows) in read {
        let (kind, t) = key;
        let mut markers = HashMap::new();
        for (id, m) in &rows {
            if let Some(other) = markers.insert(m.clone(), *id) {
                wrong.push(format!(
                    "{when}: {kind:?} {t}: {m} stored twice ({other}, {id})"
                ));
            }
        }
        let present: BTreeMap<i64, String> = rows.into_iter().collect();
        let known = ledger.known.entry(key).or_default();
        let mut missing = Vec::new();
        for (id, m) in known.iter() {
            match present.get(id) {
                Some(p) if p == m => {}
                Some(p) => match markers.get(m) {
                    Some(now) => wrong.push(format!(
                        "{when}: {kind:?} {t}: {m} moved from id {id} to {now} (now {p})"
                    )),
                    None => missing.push((*id, m.clone())),
                },
                None => missing.push((*id, m.clone())),
            }
        }
        if !missing.is_empty() {
            lossy = true;
            *ledger.lost.entry(kind).or_default() += missing.len();
            let first_lost = missing[0].0;
            let kept_after: Vec<_> = known
                .keys()
                .filter(|id| *id > &first_lost && present.get(id) == known.get(id))
                .collect();
            if durability == "fsync" {
                wrong.push(format!(
                    "{when}: {kind:?} {t}: {} acknowledged writes lost, first ones {:?}",
                    missing.len(),
                    &missing[..missing.len().min(5)]
                ));
            } else if !kept_after.is_empty() {
                wrong.push(format!(
                    "{when}: {kind:?} {t}: lost {:?} but kept later ids {:?}: not a tail",
                    &missing[..missing.len().min(5)],
                    &kept_after[..kept_after.len().min(5)]
                ));
            }
        }
        *known = present;
    }
    if lossy {
        ledger.lossy_cuts += 1;
    }
    wrong
}

/// Copies `backing` and runs `PRAGMA integrity_check` on every `.db` of the copy (opening
/// recovers the WAL, which the server must find as it was). Returns the problems.
fn integrity(backing: &Path, when: &str) -> Vec<String> {
    let copy = tempfile::tempdir().unwrap();
    let mut dbs = Vec::new();
    copy_dir(backing, copy.path(), &mut dbs);
    let mut wrong = Vec::new();
    for db in &dbs {
        let res = rusqlite::Connection::open(db)
            .and_then(|c| c.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0)));
        match res {
            Ok(s) if s == "ok" => {}
            other => wrong.push(format!("{when}: {}: {other:?}", db.display())),
        }
    }
    assert!(
        dbs.iter().any(|d| d.ends_with("catalog.db")),
        "{when}: no catalog.db in {dbs:?}"
    );
    wrong
}

fn copy_dir(from: &Path, to: &Path, dbs: &mut Vec<PathBuf>) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_name() == powerfs::GRAVE {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            copy_dir(&src, &dst, dbs);
        } else {
            std::fs::copy(&src, &dst).unwrap();
            if dst.extension().is_some_and(|x| x == "db") {
                dbs.push(dst);
            }
        }
    }
}

/// The node lost after the last (clean) stop: `tenantd restore --all` into a new data dir,
/// served, must hold exactly what the last read returned, every tenant.
async fn restored_matches(
    http: &reqwest::Client,
    backup: &[String],
    dir: &Path,
    last_read: Vec<Stored>,
) -> Vec<String> {
    let data = dir.join("restored");
    let out = common::tenantd()
        .args(["restore", "--all", "--data"])
        .arg(&data)
        .args(backup)
        .output()
        .unwrap();
    if !out.status.success() {
        return vec![format!(
            "restore --all failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )];
    }
    let (child, url) = common::spawn_serve(common::tenantd(), &data, &[]);
    let _srv = Server(child);
    let restored = read_all(http, &url, &token(&data), "after restore --all").await;
    let count = |r: &[Stored]| r.iter().map(|(_, rows)| rows.len()).sum::<usize>();
    if restored == last_read {
        eprintln!(
            "restore --all after the last stop: {} events and rows, as served",
            count(&restored)
        );
        return Vec::new();
    }
    let differ: Vec<_> = last_read
        .iter()
        .zip(&restored)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| {
            format!(
                "{:?}: served {} rows, restored {}",
                a.0,
                a.1.len(),
                b.1.len()
            )
        })
        .collect();
    vec![format!(
        "restore --all differs from the last read: {differ:?}"
    )]
}

fn wait_exit(child: &mut Child) {
    let deadline = Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "tenantd did not exit within {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

async fn power_cuts(durability: &'static str, metadata: powerfs::Metadata) {
    if !fuse_usable() {
        return;
    }
    let seed: u64 = std::env::var("TENANTD_POWER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    eprintln!("{durability} ({metadata:?} metadata): seed {seed} (TENANTD_POWER_SEED={seed} repeats the cut points)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let (backing, mnt) = (dir.path().join("backing"), dir.path().join("mnt"));
    std::fs::create_dir(&backing).unwrap();
    std::fs::create_dir(&mnt).unwrap();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut wrong = Vec::new();
    let http = reqwest::Client::builder().timeout(WAIT).build().unwrap();
    let mut report = powerfs::CutReport::default();
    // Continuous backup to a real S3 API all along (its state file, `backup.db`, is on the
    // mount like the rest), restored at the end; without moto the run goes on without it.
    let moto = moto::Moto::start(None).await;
    let backup = moto
        .as_ref()
        .map(|m| moto::backup_flags(&m.url(), dir.path()))
        .unwrap_or_default();
    let mut serve_args = vec!["--durability", durability];
    if !backup.is_empty() {
        serve_args.extend(backup.iter().map(String::as_str));
        serve_args.extend(["--backup-interval", "1s", "--backup-log-interval", "200ms"]);
    }
    let mut last_read = Vec::new();

    for cycle in 0..=CUTS {
        let mount =
            powerfs::Mount::with_metadata(&backing, &mnt, metadata).expect("powerfs mounts");
        // The shim shows powerfs the server's syncfs(2) calls (crash mode's checkpoints).
        let mut cmd = common::tenantd();
        cmd.envs(powerfs::syncfs_env(&mnt));
        let (child, url) = common::spawn_serve(cmd, &mnt, &serve_args);
        let mut srv = Server(child);
        let token = token(&mnt);
        if cycle == 0 {
            for t in TENANTS {
                let r = http
                    .put(format!("{url}/admin/tenants/{t}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201, "creating {t}");
            }
        }
        // Again after every cut: in `crash` mode a cut may take the table away.
        for t in TENANTS {
            let ddl = "CREATE TABLE IF NOT EXISTS notes(marker TEXT NOT NULL UNIQUE)";
            sql(&http, &url, &token, t, ddl, &[]).await.unwrap();
        }
        let when = format!("{durability} mode, after cut {cycle}");
        let read = read_all(&http, &url, &token, &when).await;
        last_read = read.clone();
        wrong.extend(check(&mut ledger.lock().unwrap(), durability, read, &when));
        if cycle == CUTS {
            // SAFETY: SIGTERM to our own child.
            unsafe { libc::kill(srv.0.id() as i32, libc::SIGTERM) };
            wait_exit(&mut srv.0);
            mount.unmount().expect("a clean unmount");
            break;
        }

        let (acks, stop) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let args = (url.clone(), token.clone(), ledger.clone());
                tokio::spawn(writer(
                    w,
                    cycle,
                    args.0,
                    args.1,
                    args.2,
                    acks.clone(),
                    stop.clone(),
                ))
            })
            .collect();
        // The cut comes after a random number of acknowledgements plus a random delay.
        let target = rng.gen_range(1..50);
        let deadline = Instant::now() + WAIT;
        while acks.load(Ordering::Relaxed) < target {
            assert!(Instant::now() < deadline, "{when}: writes not acknowledged");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Up to 2.5 s: past `crash` mode's 1 s log sync interval in some cycles, not in others.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..2_500))).await;
        let r = tokio::task::block_in_place(|| mount.cut());
        assert_eq!(r.failed, 0, "{when}: powerfs could not undo everything");
        report.files += r.files;
        report.pages += r.pages;
        report.dir_ops += r.dir_ops;
        srv.0.kill().unwrap();
        wait_exit(&mut srv.0);
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            tokio::time::timeout(WAIT, w).await.unwrap().unwrap();
        }
        wrong.extend(integrity(&backing, &when));
    }
    wrong.extend(integrity(
        &backing,
        &format!("{durability} mode, at the end"),
    ));
    if !backup.is_empty() {
        wrong.extend(restored_matches(&http, &backup, dir.path(), last_read).await);
    }

    let l = ledger.lock().unwrap();
    let n = |m: &HashMap<Kind, usize>, k| m.get(&k).copied().unwrap_or(0);
    eprintln!(
        "{durability} ({metadata:?} metadata): {CUTS} cuts; acknowledged {} webhooks and {} SQL inserts; lost {} \
         webhooks and {} SQL rows, in {} of {CUTS} cuts; powerfs undid {} files ({} pages) \
         and {} directory changes",
        n(&l.acked, Kind::Hook),
        n(&l.acked, Kind::Sql),
        n(&l.lost, Kind::Hook),
        n(&l.lost, Kind::Sql),
        l.lossy_cuts,
        report.files,
        report.pages,
        report.dir_ops
    );
    assert!(
        wrong.is_empty(),
        "{durability} mode: {} problems, first ones: {:#?}",
        wrong.len(),
        &wrong[..wrong.len().min(12)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_cuts_lose_no_acknowledged_write_in_fsync_mode() {
    power_cuts("fsync", powerfs::Metadata::Ordered).await;
}

/// Crash mode's inbox checkpoint makes tenant files durable with `syncfs(2)` before it releases
/// the log; the kernel does not forward syncfs to a FUSE server, so the server runs with
/// powerfs's preloaded shim (`powerfs::syncfs_env`). Without it this test failed: events a
/// restart had returned were lost at the next cut (docs/POWER.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_cuts_lose_only_an_acknowledged_tail_and_corrupt_nothing_in_crash_mode() {
    power_cuts("crash", powerfs::Metadata::Ordered).await;
}

/// Strict POSIX: a directory change is durable only once its directory is fsynced. The
/// regression test of a bug this suite found: tenantd created `<data>/log/` and
/// `<data>/tenants/<aa>/<bb>/` with `create_dir_all` and fsynced only the leaf, so the first
/// cut lost the whole ingest log and every tenant file; now every new directory's parent is
/// fsynced (`ingest::segment::create_dir_durably`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_cuts_lose_no_acknowledged_write_in_fsync_mode_under_strict_posix_directories() {
    power_cuts("fsync", powerfs::Metadata::Posix).await;
}
