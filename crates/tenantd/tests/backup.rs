//! Continuous backup against a real S3 API: a moto server (PyPI `moto[server]`, installed by
//! `scripts/test.sh`, run as `python3 -m moto.server`) started on a free port. Without it the
//! tests skip with a note, unless `TENANTD_REQUIRE_MOTO=1` (set by `scripts/test.sh` as root,
//! i.e. in CI).
//!
//! Checked: every acknowledged webhook and committed SQL row is in the bucket, and after the
//! data dir is destroyed `tenantd restore --all` brings every tenant back exactly once and a
//! server serves them; a point-in-time restore lands between two known writes; a damaged
//! object is reported and never installed; with the store down the server keeps serving, the
//! backlog shows in /metrics, and it catches up once the store is back; a restore into a data
//! dir a server holds is refused.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;
#[path = "common/moto.rs"]
mod moto;
#[path = "common/token.rs"]
mod token_cmd;

use common::tenantd;
use moto::{backup_flags, Moto, BUCKET, PREFIX};

const TENANTS: [&str; 3] = ["acme", "globex", "initech"];
/// How long the bucket may take to hold a write (rounds every 200 ms here).
const CAUGHT_UP: Duration = Duration::from_secs(30);
/// Snapshots once an hour, the log every 100 ms: only the shipped log carries new webhooks.
const LOG_ONLY: [&str; 4] = ["--backup-interval", "1h", "--backup-log-interval", "100ms"];

/// A moto server with its bucket, a work dir, the backup flags, and the data dir to use.
async fn setup() -> Option<(Moto, tempfile::TempDir, Vec<String>, std::path::PathBuf)> {
    let moto = Moto::start(None).await?;
    let work = tempfile::tempdir().unwrap();
    let flags = backup_flags(&moto.url(), work.path());
    let data = work.path().join("data");
    Some((moto, work, flags, data))
}

struct Server {
    child: Child,
    url: String,
    token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(data: &Path, flags: &[String]) -> Server {
        Self::start_with(data, flags, &["--backup-interval", "200ms"])
    }

    fn start_with(data: &Path, flags: &[String], more: &[&str]) -> Server {
        let mut extra: Vec<&str> = flags.iter().map(String::as_str).collect();
        extra.extend(more);
        let (child, url) = common::spawn_serve(common::tenantd(), data, &extra);
        let token = std::fs::read_to_string(data.join("admin.token"))
            .unwrap()
            .trim()
            .to_owned();
        Server { child, url, token }
    }

    /// SIGTERM, and wait for the clean stop (which runs a last backup round).
    fn stop(mut self) {
        let pid = self.child.id() as i32;
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "clean stop: {status}");
                return;
            }
            assert!(Instant::now() < deadline, "tenantd did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (bounded) until the log shipper has put `n` webhooks in the bucket.
    async fn wait_shipped(&self, n: u64) {
        let deadline = Instant::now() + CAUGHT_UP;
        while self.metric("tenantd_backup_log_records_total").await < n {
            assert!(Instant::now() < deadline, "{n} webhooks never shipped");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// kill -9, the data dir lost, then `restore --all` into it; returns restore's output.
    fn lose_node_and_restore(mut self, data: &Path, flags: &[String]) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        std::fs::remove_dir_all(data).unwrap();
        let (ok, out) = restore(flags, &["--all", "--data", data.to_str().unwrap()]);
        assert!(ok, "{out}");
        out
    }

    async fn create(&self, t: &str) {
        let r = reqwest::Client::new()
            .put(format!("{}/admin/tenants/{t}", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "create {t}");
    }

    async fn webhook(&self, t: &str, marker: &str) {
        let r = reqwest::Client::new()
            .post(format!("{}/t/{t}/hooks/test", self.url))
            .json(&json!({ "marker": marker }))
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "webhook {t} {marker}: {}",
            r.status()
        );
    }

    async fn sql(&self, t: &str, token: &str, stmt: &str) {
        let body =
            json!({"requests": [{"type": "execute", "stmt": {"sql": stmt}}, {"type": "close"}]});
        let r = reqwest::Client::new()
            .post(format!("{}/t/{t}/v2/pipeline", self.url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert!(
            status.is_success() && v["results"][0]["type"] == "ok",
            "{t}: {stmt}: {v}"
        );
    }

    async fn metric(&self, name: &str) -> u64 {
        let text = reqwest::get(format!("{}/metrics", self.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no metric {name}"))
    }
}

fn sql_token(data: &Path, t: &str) -> String {
    token_cmd::create(data, &["--tenant", t])
}

/// `tenantd restore ARGS` with the backup flags; (success, stdout + stderr).
fn restore(flags: &[String], args: &[&str]) -> (bool, String) {
    let out = tenantd()
        .arg("restore")
        .args(args)
        .args(flags)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Webhook markers and SQL rows of a tenant file, sorted.
fn contents(db: &Path) -> (Vec<String>, Vec<String>) {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut markers: Vec<String> = c
        .prepare("SELECT body FROM _tenantd_events")
        .unwrap()
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|b| {
            serde_json::from_slice::<Value>(&b.unwrap()).unwrap()["marker"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let has_rows: bool = c
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'notes'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let mut rows: Vec<String> = if has_rows {
        c.prepare("SELECT v FROM notes")
            .unwrap()
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    } else {
        Vec::new()
    };
    markers.sort();
    rows.sort();
    (markers, rows)
}

/// Restores every tenant into `dir` until each holds `want(tenant)`, or panics at the deadline.
async fn wait_in_bucket(
    flags: &[String],
    dir: &Path,
    want: impl Fn(&str) -> (Vec<String>, Vec<String>),
) {
    let deadline = Instant::now() + CAUGHT_UP;
    loop {
        let (ok, out) = restore(flags, &["--all", "--force", "--to", dir.to_str().unwrap()]);
        let all = ok
            && TENANTS.iter().all(|t| {
                let db = dir.join(format!("{t}.db"));
                db.exists() && contents(&db) == want(t)
            });
        if all {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the bucket never caught up: {out}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn expected(t: &str, hooks: usize, rows: usize) -> (Vec<String>, Vec<String>) {
    let mut m: Vec<String> = (0..hooks).map(|i| format!("{t}-hook-{i}")).collect();
    let mut r: Vec<String> = (0..rows).map(|i| format!("{t}-row-{i}")).collect();
    m.sort();
    r.sort();
    (m, r)
}

/// Every blob of `db`'s `blobs` table, in rowid order.
fn blobs(db: &Path) -> Vec<Vec<u8>> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut s = c.prepare("SELECT b FROM blobs ORDER BY rowid").unwrap();
    let rows = s.query_map([], |r| r.get(0)).unwrap();
    rows.map(Result::unwrap).collect()
}

/// A tenant bigger than one upload part (20 MiB of random blobs, which zstd cannot shrink) goes
/// up as a multipart upload, read from the compressed file a part at a time, and is restored
/// (downloaded to a file, not into memory) byte for byte.
#[tokio::test]
async fn a_tenant_larger_than_one_part_goes_up_in_parts_and_comes_back_whole() {
    let Some((_moto, work, flags, data)) = setup().await else {
        return;
    };
    let srv = Server::start(&data, &flags);
    srv.create("acme").await;
    let token = sql_token(&data, "acme");
    srv.sql("acme", &token, "CREATE TABLE blobs(b BLOB NOT NULL)")
        .await;
    let fill = "INSERT INTO blobs SELECT randomblob(1048576) FROM (WITH RECURSIVE \
                c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20) SELECT x FROM c)";
    srv.sql("acme", &token, fill).await;
    let deadline = Instant::now() + CAUGHT_UP;
    // More than two parts' worth uploaded: the snapshot with the blobs went up in parts.
    while srv.metric("tenantd_backup_uploaded_bytes_total").await < 2 * (8 << 20) {
        assert!(Instant::now() < deadline, "the big snapshot never went up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(srv.metric("tenantd_backup_failures_total").await, 0);
    let out = work.path().join("out");
    let (ok, text) = restore(&flags, &["acme", "--to", out.to_str().unwrap()]);
    assert!(ok, "{text}");
    let restored = blobs(&out.join("acme.db"));
    assert_eq!(restored.len(), 20);
    let source = std::fs::read_dir(data.join("tenants"))
        .unwrap()
        .flat_map(|a| std::fs::read_dir(a.unwrap().path()).unwrap())
        .map(|b| b.unwrap().path().join("acme.db"))
        .find(|p| p.exists())
        .expect("acme's file");
    assert!(restored == blobs(&source), "the restored blobs differ");
}

#[tokio::test]
async fn a_destroyed_node_comes_back_from_the_bucket_with_every_acknowledged_write_once() {
    let Some((_moto, work, flags, data)) = setup().await else {
        return;
    };
    let srv = Server::start(&data, &flags);
    for t in TENANTS {
        srv.create(t).await;
        let token = sql_token(&data, t);
        srv.sql(t, &token, "CREATE TABLE notes(v TEXT NOT NULL)")
            .await;
        for i in 0..20 {
            srv.webhook(t, &format!("{t}-hook-{i}")).await;
            srv.sql(
                t,
                &token,
                &format!("INSERT INTO notes VALUES ('{t}-row-{i}')"),
            )
            .await;
        }
    }
    let seen = work.path().join("seen");
    wait_in_bucket(&flags, &seen, |t| expected(t, 20, 20)).await;
    assert!(srv.metric("tenantd_backup_uploads_total").await >= 3);

    // A tenant backed up, then deleted: it gets a tombstone, and a node restore leaves it out.
    srv.create("hooli").await;
    srv.webhook("hooli", "hooli-hook-0").await;
    let pit = work.path().join("hooli");
    wait_until_restored(&flags, &pit, "hooli", &["hooli-hook-0"]).await;
    let before_delete = backup::worker::now_ms().to_string();
    let r = reqwest::Client::new()
        .delete(format!("{}/admin/tenants/hooli", srv.url))
        .bearer_auth(&srv.token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "delete: {}", r.status());
    let deadline = Instant::now() + CAUGHT_UP;
    loop {
        let (ok, out) = restore(&flags, &["hooli", "--force", "--to", pit.to_str().unwrap()]);
        if !ok && out.contains("hooli was deleted or moved away") {
            break;
        }
        assert!(Instant::now() < deadline, "no tombstone: {out}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Refused while the server holds the data dir.
    let (ok, out) = restore(&flags, &["acme", "--data", data.to_str().unwrap()]);
    assert!(!ok && out.contains("running tenantd"), "{out}");

    // A last write, then a clean stop: its last round carries it.
    srv.webhook("acme", "acme-hook-20").await;
    srv.stop();
    std::fs::remove_dir_all(&data).unwrap();

    let (ok, out) = restore(&flags, &["--all", "--data", data.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(out.contains("hooli: skipped"), "{out}");
    let hooli = store::TenantId::parse("hooli").unwrap();
    assert!(
        !store::layout::tenant_path(&data, &hooli).exists(),
        "deleted stays deleted"
    );
    // Before its deletion it is still there to restore.
    let at = [
        "hooli",
        "--at",
        &before_delete,
        "--force",
        "--to",
        pit.to_str().unwrap(),
    ];
    let (ok, out) = restore(&flags, &at);
    assert!(ok, "{out}");
    assert_eq!(
        contents(&pit.join("hooli.db")).0,
        vec!["hooli-hook-0".to_owned()]
    );
    for t in TENANTS {
        let db = store::layout::tenant_path(&data, &store::TenantId::parse(t).unwrap());
        let hooks = if t == "acme" { 21 } else { 20 };
        assert_eq!(contents(&db), expected(t, hooks, 20), "{t} restored");
    }
    // Rerun: everything is in place already.
    let (ok, out) = restore(&flags, &["--all", "--data", data.to_str().unwrap()]);
    assert!(ok && out.matches("already in place").count() == 3, "{out}");

    // A server on the restored dir serves the events, and their ids go on.
    let (mut child, url) = common::spawn_serve(common::tenantd(), &data, &[]);
    let admin = std::fs::read_to_string(data.join("admin.token")).unwrap();
    let v: Value = reqwest::Client::new()
        .get(format!("{url}/t/acme/events?limit=100"))
        .bearer_auth(admin.trim())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["events"].as_array().unwrap().len(), 21, "{v}");
    let r = reqwest::Client::new()
        .post(format!("{url}/t/acme/hooks/test"))
        .json(&json!({"marker": "after"}))
        .send()
        .await
        .unwrap();
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    assert!(
        id > v["events"][20]["id"].as_i64().unwrap(),
        "ids continue: {id}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn point_in_time_damage_and_an_outage() {
    let Some(mut moto) = Moto::start(None).await else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let flags = backup_flags(&moto.url(), work.path());
    let data = work.path().join("data");
    let srv = Server::start(&data, &flags);
    for t in TENANTS {
        srv.create(t).await;
        srv.webhook(t, &format!("{t}-hook-0")).await;
    }
    let seen = work.path().join("seen");
    wait_in_bucket(&flags, &seen, |t| expected(t, 1, 0)).await;

    // Point in time: between the first and the second write.
    let between = backup::worker::now_ms();
    srv.webhook("acme", "acme-hook-1").await;
    wait_in_bucket(&flags, &seen, |t| {
        expected(t, if t == "acme" { 2 } else { 1 }, 0)
    })
    .await;
    let pit = work.path().join("pit");
    let at = between.to_string();
    let (ok, out) = restore(
        &flags,
        &["acme", "--at", &at, "--to", pit.to_str().unwrap()],
    );
    assert!(ok, "{out}");
    assert_eq!(
        contents(&pit.join("acme.db")),
        expected("acme", 1, 0),
        "{out}"
    );
    let (ok, out) = restore(
        &flags,
        &[
            "acme",
            "--at",
            "2001-01-01T00:00:00Z",
            "--to",
            pit.to_str().unwrap(),
        ],
    );
    assert!(
        !ok && out.contains("no backup of tenant acme at or before 2001-01-01"),
        "{out}"
    );

    // A damaged newest object: reported, nothing installed, the older file stays.
    let key = format!(
        "{PREFIX}/tenants/globex/{:016}-{}.db.zst",
        backup::worker::now_ms() + 60_000,
        "ab".repeat(32)
    );
    let r = reqwest::Client::new()
        .put(format!("{}/{BUCKET}/{key}", moto.url()))
        .body(zstd_garbage())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let dmg = work.path().join("dmg");
    std::fs::create_dir_all(&dmg).unwrap();
    std::fs::copy(seen.join("globex.db"), dmg.join("globex.db")).unwrap();
    let (ok, out) = restore(
        &flags,
        &["globex", "--force", "--to", dmg.to_str().unwrap()],
    );
    assert!(
        !ok && out.contains("damaged") && out.contains("not installed"),
        "{out}"
    );
    assert_eq!(
        contents(&dmg.join("globex.db")),
        expected("globex", 1, 0),
        "the old file stays"
    );

    // The store goes down: writes are still acknowledged, the backlog shows, then catches up.
    let port = moto.port;
    drop(moto);
    let failures = srv.metric("tenantd_backup_failures_total").await;
    srv.webhook("initech", "initech-hook-1").await;
    let deadline = Instant::now() + CAUGHT_UP;
    while srv.metric("tenantd_backup_failures_total").await == failures
        || srv.metric("tenantd_backup_pending_tenants").await == 0
    {
        assert!(
            Instant::now() < deadline,
            "the outage never showed in /metrics"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    srv.webhook("initech", "initech-hook-2").await;
    moto = Moto::start(Some(port)).await.unwrap();
    let flags = backup_flags(&moto.url(), work.path());
    let deadline = Instant::now() + CAUGHT_UP;
    while srv.metric("tenantd_backup_pending_tenants").await > 0 {
        assert!(Instant::now() < deadline, "the backlog never drained");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let back = work.path().join("back");
    let (ok, out) = restore(&flags, &["initech", "--to", back.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert_eq!(
        contents(&back.join("initech.db")),
        expected("initech", 3, 0)
    );
    drop(moto);
}

#[tokio::test]
async fn webhooks_reach_the_bucket_with_the_log_between_snapshots_and_survive_kill_9() {
    let Some((_moto, work, flags, data)) = setup().await else {
        return;
    };
    let srv = Server::start(&data, &flags);
    for t in TENANTS {
        srv.create(t).await;
    }
    let seen = work.path().join("seen");
    wait_in_bucket(&flags, &seen, |t| expected(t, 0, 0)).await;
    srv.stop();

    // Snapshots now once an hour: only the shipped log can carry the webhooks.
    let srv = Server::start_with(&data, &flags, &LOG_ONLY);
    for i in 0..10 {
        for t in TENANTS {
            srv.webhook(t, &format!("{t}-hook-{i}")).await;
        }
    }
    wait_in_bucket(&flags, &seen, |t| expected(t, 10, 0)).await;
    assert!(srv.metric("tenantd_backup_log_records_total").await >= 30);
    let out = tenantd()
        .args(["backup", "status", "--data", data.to_str().unwrap()])
        .args(&flags)
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{status}");
    assert!(
        status.contains("tenants here: 3; with an upload: 3"),
        "{status}"
    );
    assert!(status.contains("(0 records not shipped)"), "{status}");
    let snapshots = srv.metric("tenantd_backup_uploads_total").await;

    // kill -9: no last round. The data dir is lost; the bucket has every acknowledged webhook.
    let mut srv = srv;
    srv.child.kill().unwrap();
    srv.child.wait().unwrap();
    std::fs::remove_dir_all(&data).unwrap();
    let (ok, out) = restore(&flags, &["--all", "--data", data.to_str().unwrap()]);
    assert!(ok, "{out}");
    for t in TENANTS {
        let db = store::layout::tenant_path(&data, &store::TenantId::parse(t).unwrap());
        assert_eq!(
            contents(&db),
            expected(t, 10, 0),
            "{t}: snapshots uploaded: {snapshots}"
        );
    }
    let (ok, out) = restore(&flags, &["--all", "--data", data.to_str().unwrap()]);
    assert!(ok && out.matches("already in place").count() == 3, "{out}");
}

/// Keys in the bucket under `prefix` (one listing page is enough here).
async fn keys(moto: &Moto, prefix: &str) -> Vec<String> {
    let url = format!("{}/{BUCKET}?list-type=2&prefix={prefix}", moto.url());
    let xml = reqwest::get(url).await.unwrap().text().await.unwrap();
    xml.split("<Key>")
        .skip(1)
        .filter_map(|k| k.split_once("</Key>").map(|(k, _)| k.to_owned()))
        .collect()
}

/// A snapshot's key names the log position it holds, and a restore reads only the shipped log
/// after it: damaged log chunks older than the snapshot are never downloaded, so they cannot
/// fail the restore (nor fill its memory with a week of other tenants' webhooks).
#[tokio::test]
async fn a_restore_reads_only_the_log_after_its_snapshot() {
    let Some((moto, _work, flags, data)) = setup().await else {
        return;
    };
    let srv = Server::start_with(&data, &flags, &LOG_ONLY);
    srv.create("acme").await;
    for i in 0..5 {
        srv.webhook("acme", &format!("acme-hook-{i}")).await;
    }
    srv.wait_shipped(5).await;
    srv.stop(); // the last round: a snapshot holding all five
    let snaps = keys(&moto, &format!("{PREFIX}/tenants/acme/")).await;
    let newest = snaps.iter().max().expect("a snapshot");
    assert!(
        newest.ends_with("-00000000000000000005.db.zst"),
        "the key names the log position: {newest}"
    );
    // Damaged chunks of old records (new keys: moto refuses an anonymous overwrite).
    let chunks = keys(&moto, &format!("{PREFIX}/log/")).await;
    assert!(!chunks.is_empty());
    let damaged: Vec<String> = [(1, 4), (2, 5), (1, 5), (3, 4)]
        .iter()
        .map(|(a, b)| format!("{PREFIX}/log/{a:020}-{b:020}.log.zst"))
        .filter(|k| !chunks.contains(k))
        .collect();
    assert!(!damaged.is_empty());
    for key in &damaged {
        let r = reqwest::Client::new()
            .put(format!("{}/{BUCKET}/{key}", moto.url()))
            .body(zstd_garbage())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{key}: {}", r.status());
    }
    std::fs::remove_dir_all(&data).unwrap();
    let (ok, out) = restore(&flags, &["--all", "--data", data.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(!out.contains("damaged"), "{out}");
    let db = store::layout::tenant_path(&data, &store::TenantId::parse("acme").unwrap());
    assert_eq!(contents(&db), expected("acme", 5, 0));
    // `backup verify` still reads every chunk, and reports them.
    let out = tenantd()
        .args(["backup", "verify"])
        .args(&flags)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("DAMAGED"));
}

/// Retention reaches tenants that stopped changing: the daily sweep (which also runs in the
/// first round after a start) removes their snapshots past the window but the newest.
#[tokio::test]
async fn retention_sweeps_the_snapshots_of_a_tenant_that_stopped_changing() {
    let Some((moto, _work, flags, data)) = setup().await else {
        return;
    };
    let dir = format!("{PREFIX}/tenants/acme/");
    let srv = Server::start(&data, &flags);
    srv.create("acme").await;
    for i in 0..3 {
        let before = keys(&moto, &dir).await.len();
        srv.webhook("acme", &format!("acme-hook-{i}")).await;
        let deadline = Instant::now() + CAUGHT_UP;
        while keys(&moto, &dir).await.len() == before {
            assert!(Instant::now() < deadline, "no new snapshot");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    srv.stop();
    assert!(keys(&moto, &dir).await.len() >= 3);
    tokio::time::sleep(Duration::from_millis(1100)).await; // all of them past a 1 s window
    let short = ["--backup-interval", "200ms", "--backup-retention", "1s"];
    let _srv = Server::start_with(&data, &flags, &short);
    let deadline = Instant::now() + CAUGHT_UP;
    while keys(&moto, &dir).await.len() > 1 {
        assert!(Instant::now() < deadline, "old snapshots never swept");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = tempfile::tempdir().unwrap();
    let (ok, text) = restore(&flags, &["acme", "--to", out.path().to_str().unwrap()]);
    assert!(ok, "{text}");
    assert_eq!(
        contents(&out.path().join("acme.db")),
        expected("acme", 3, 0)
    );
}

/// A tenant created since the last round had no snapshot, so the webhooks the log shipped
/// for it had no file to go into and a restore left them out (RPO: a round, not the log
/// interval). New tenants are now copied at the next log shipment, before it.
#[tokio::test]
async fn regression_a_webhook_for_a_tenant_created_since_the_last_round_is_restored() {
    let Some((_moto, _work, flags, data)) = setup().await else {
        return;
    };
    let srv = Server::start_with(&data, &flags, &LOG_ONLY);
    srv.create("acme").await;
    srv.webhook("acme", "acme-hook-0").await;
    srv.wait_shipped(1).await;
    srv.lose_node_and_restore(&data, &flags);
    let db = store::layout::tenant_path(&data, &store::TenantId::parse("acme").unwrap());
    assert_eq!(contents(&db), expected("acme", 1, 0));
}

/// Under steady load a log shipment chased the writer: it looped until no whole frame was
/// left, so each shipment sent a chunk per upload's worth of new webhooks (at 100,000 tenants,
/// 69,000 log PUTs an hour instead of 360, nearly all under 10 KB). A shipment now stops at the
/// log's end as it was when it started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_log_shipment_chased_the_writer_in_tiny_chunks() {
    let Some((_moto, _work, flags, data)) = setup().await else {
        return;
    };
    let every = ["--backup-interval", "1h", "--backup-log-interval", "1s"];
    let srv = Server::start_with(&data, &flags, &every);
    srv.create("acme").await;
    // Senders on kept-alive connections: new webhooks are logged faster than a chunk's PUT.
    let (http, url) = (
        reqwest::Client::new(),
        format!("{}/t/acme/hooks/test", srv.url),
    );
    let started = Instant::now();
    let senders: Vec<_> = (0..8)
        .map(|w| {
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while started.elapsed() < Duration::from_secs(3) {
                    let r = http
                        .post(&url)
                        .json(&json!({ "marker": format!("w{w}-{i}") }));
                    assert!(r.send().await.unwrap().status().is_success());
                    i += 1;
                }
                i
            })
        })
        .collect();
    let mut sent = 0;
    for s in senders {
        sent += s.await.unwrap();
    }
    srv.wait_shipped(sent).await;
    let shipments = started.elapsed().as_secs() + 2;
    let chunks = srv.metric("tenantd_backup_log_chunks_total").await;
    assert!(
        chunks <= shipments + 2,
        "{chunks} chunks for {sent} webhooks in about {shipments} shipments"
    );
}

/// `tenantd backup status` on `data`; its output.
fn status(data: &Path, flags: &[String]) -> String {
    let out = tenantd()
        .args(["backup", "status", "--data", data.to_str().unwrap()])
        .args(flags)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A start snapshotted again every tenant whose file was rewritten after its last upload
/// without a change of content (a leftover WAL, a checkpoint): finding it unchanged did not
/// count, so it happened at every start (32,599 tenants and 45 s at 100,000). Now a snapshot
/// that finds the content in the bucket counts, and the tenant is not waiting any more.
#[tokio::test]
async fn regression_an_unchanged_tenant_was_snapshotted_again_at_every_start() {
    let Some((_moto, _work, flags, data)) = setup().await else {
        return;
    };
    let srv = Server::start(&data, &flags);
    srv.create("acme").await;
    srv.webhook("acme", "acme-hook-0").await;
    srv.stop();
    let db = store::layout::tenant_path(&data, &store::TenantId::parse("acme").unwrap());
    let rewritten = std::time::SystemTime::now();
    std::fs::File::options()
        .write(true)
        .open(&db)
        .unwrap()
        .set_modified(rewritten)
        .unwrap();
    assert!(status(&data, &flags).contains("waiting for an upload: 1"));

    let srv = Server::start(&data, &flags);
    let deadline = Instant::now() + CAUGHT_UP;
    while srv.metric("tenantd_backup_rounds_total").await < 1 {
        assert!(Instant::now() < deadline, "no round");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(srv.metric("tenantd_backup_pending_tenants").await, 0);
    srv.stop();
    let text = status(&data, &flags);
    assert!(text.contains("waiting for an upload: 0"), "{text}");
}

/// A node restored into a fresh data dir numbered its log from 1 again, so the records it
/// shipped took LSNs the bucket already held for the old node's records, and the next restore
/// kept one record per LSN: the new webhooks were lost (only the shipped log carried them).
#[tokio::test]
async fn regression_a_restored_node_gives_its_records_lsns_the_bucket_does_not_hold() {
    let Some((_moto, _work, flags, data)) = setup().await else {
        return;
    };
    let db = store::layout::tenant_path(&data, &store::TenantId::parse("acme").unwrap());
    // The old node: six webhooks, shipped in one chunk at its clean stop.
    let quiet = ["--backup-interval", "1h", "--backup-log-interval", "1h"];
    let srv = Server::start_with(&data, &flags, &quiet);
    srv.create("acme").await;
    for i in 0..6 {
        srv.webhook("acme", &format!("acme-hook-{i}")).await;
    }
    srv.stop();
    std::fs::remove_dir_all(&data).unwrap();
    let (ok, out) = restore(&flags, &["--all", "--data", data.to_str().unwrap()]);
    assert!(ok && out.contains("starts after LSN 6"), "{out}");

    // The restored node: three more, each shipped in a chunk of its own, then lost (kill -9,
    // and snapshots only hourly: the log alone carries them).
    let srv = Server::start_with(&data, &flags, &LOG_ONLY);
    for i in 6..9u64 {
        srv.webhook("acme", &format!("acme-hook-{i}")).await;
        srv.wait_shipped(i - 5).await;
    }
    srv.lose_node_and_restore(&data, &flags);
    assert_eq!(contents(&db).0, expected("acme", 9, 0).0);
}

/// A proxy in front of moto that answers the first `refuse` connections with
/// `503 Slow Down` after `delay` (as S3 does under load), then passes everything through;
/// with `stall_puts`, a connection whose request is a PUT is held without an answer instead
/// (counted). Returns its port and the count of refused (or stalled) connections.
async fn flaky_proxy(
    to: u16,
    refuse: usize,
    delay: Duration,
    stall_puts: bool,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let refused = std::sync::Arc::new(AtomicUsize::new(0));
    let count = refused.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let count = count.clone();
            tokio::spawn(async move {
                if stall_puts {
                    let mut head = [0u8; 3];
                    if client.peek(&mut head).await.is_ok() && &head == b"PUT" {
                        count.fetch_add(1, Ordering::SeqCst);
                        let mut sink = Vec::new();
                        let _ = client.read_to_end(&mut sink).await; // until the client dies
                        return;
                    }
                } else if count.fetch_add(1, Ordering::SeqCst) < refuse {
                    let mut buf = [0u8; 4096];
                    let _ = client.read(&mut buf).await;
                    tokio::time::sleep(delay).await;
                    let body = "<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>";
                    let resp = format!(
                        "HTTP/1.1 503 Slow Down\r\ncontent-type: application/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = client.write_all(resp.as_bytes()).await;
                    return;
                }
                if !stall_puts {
                    count.fetch_sub(1, Ordering::SeqCst);
                }
                let Ok(mut upstream) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (port, refused)
}

// Multi-threaded: the proxy runs in this runtime while the test blocks on `tenantd restore`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_erroring_responses_are_retried_within_a_round() {
    let Some((moto, work, _, data)) = setup().await else {
        return;
    };
    let (port, refused) = flaky_proxy(moto.port, 3, Duration::from_millis(300), false).await;
    let flags = backup_flags(&format!("http://127.0.0.1:{port}"), work.path());
    let srv = Server::start(&data, &flags);
    srv.create("acme").await;
    srv.webhook("acme", "acme-hook-0").await;
    let deadline = Instant::now() + CAUGHT_UP;
    while srv.metric("tenantd_backup_uploads_total").await == 0 {
        assert!(
            Instant::now() < deadline,
            "never uploaded through the flaky store"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refusals = refused.load(std::sync::atomic::Ordering::SeqCst);
    assert!(refusals >= 3, "the proxy refused {refusals} connections");
    assert_eq!(
        srv.metric("tenantd_backup_failures_total").await,
        0,
        "the client's retries absorbed every 503"
    );
    let out = work.path().join("out");
    let (ok, text) = restore(&flags, &["acme", "--to", out.to_str().unwrap()]);
    assert!(ok, "{text}");
    assert_eq!(
        contents(&out.join("acme.db")).0,
        vec!["acme-hook-0".to_owned()]
    );
}

// Multi-threaded: the proxy runs in this runtime while the test blocks on `tenantd restore`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_upload_leaves_nothing_half_listed_and_resumes() {
    let Some((moto, work, direct, data)) = setup().await else {
        return;
    };
    let (port, stalled) = flaky_proxy(moto.port, 0, Duration::ZERO, true).await;
    let flags = backup_flags(&format!("http://127.0.0.1:{port}"), work.path());
    let mut srv = Server::start(&data, &flags);
    srv.create("acme").await;
    srv.webhook("acme", "acme-hook-0").await;
    let deadline = Instant::now() + CAUGHT_UP;
    while stalled.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "no upload started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    srv.child.kill().unwrap(); // kill -9 with a PUT in flight
    srv.child.wait().unwrap();
    drop(srv);
    let (ok, text) = restore(
        &direct,
        &["--all", "--to", work.path().join("x").to_str().unwrap()],
    );
    assert!(
        !ok && text.contains("holds no tenant"),
        "nothing half-listed: {text}"
    );

    // Restarted against the store itself: the start scan finds acme never uploaded.
    let srv = Server::start(&data, &direct);
    let out = work.path().join("out");
    wait_until_restored(&direct, &out, "acme", &["acme-hook-0"]).await;
    assert_eq!(srv.metric("tenantd_backup_failures_total").await, 0);
    let leftovers = std::fs::read_dir(data.join(backup::worker::TMP_DIR))
        .unwrap()
        .count();
    assert_eq!(leftovers, 0, "the killed run's temp snapshot is gone");
}

/// Restores `tenant` into `dir` until it holds exactly `markers`, or panics at the deadline.
async fn wait_until_restored(flags: &[String], dir: &Path, tenant: &str, markers: &[&str]) {
    let want: Vec<String> = markers.iter().map(|m| m.to_string()).collect();
    let deadline = Instant::now() + CAUGHT_UP;
    loop {
        let (ok, out) = restore(flags, &[tenant, "--force", "--to", dir.to_str().unwrap()]);
        if ok && contents(&dir.join(format!("{tenant}.db"))).0 == want {
            return;
        }
        assert!(Instant::now() < deadline, "never restored: {out}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Bytes that are not a compressed snapshot.
fn zstd_garbage() -> Vec<u8> {
    b"bit rot: this was a snapshot once".to_vec()
}
