//! A node of a cluster, through the built binary: `--node-name`, a slot table installed with
//! `PUT /admin/cluster` (newer epochs only, kept across a restart), and `421 misdirected` with
//! the owner and the epoch for every tenant route of a tenant the table gives to another node
//! — webhooks, events, SQL, and tenant creation (which creates no file).

use serde_json::{json, Value};

mod common;

/// Two nodes, even split: slots 0..=8191 on node1, the rest on node2.
fn table(epoch: u64, overrides: Value) -> Value {
    json!({
        "epoch": epoch,
        "ranges": [
            {"from": 0, "to": 8191, "node": "node1"},
            {"from": 8192, "to": 16383, "node": "node2"}
        ],
        "overrides": overrides,
    })
}

/// An admin-authorised request to the node at `url`, sent.
async fn send(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut req = http
        .request(method, format!("{url}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        req = req.json(body);
    }
    req.send().await.unwrap()
}

/// A tenant name whose slot is on `node1` (first half) or not.
fn tenant_on(first_half: bool, prefix: &str) -> String {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|n| (cluster::slot::slot_of_bytes(n.as_bytes()) < 8192) == first_half)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_serves_only_its_tenants_and_names_the_owner_of_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut child, url) = common::spawn_serve(common::tenantd(), &data, &["--node-name", "node1"]);
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap();
    let token = token.trim().to_owned();
    let http = reqwest::Client::new();
    let admin = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{url}{path}"))
            .bearer_auth(&token)
    };
    let ours = tenant_on(true, "ours");
    let theirs = tenant_on(false, "theirs");

    // Before any table: a node with a name still serves every tenant.
    let r = admin(reqwest::Method::GET, "/admin/cluster")
        .send()
        .await
        .unwrap();
    let shown: Value = r.json().await.unwrap();
    assert_eq!(shown, json!({"node": "node1", "table": null}));
    for t in [&ours, &theirs] {
        let r = admin(reqwest::Method::PUT, &format!("/admin/tenants/{t}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{t}");
    }

    // The table gives `theirs` to node2.
    let r = admin(reqwest::Method::PUT, "/admin/cluster")
        .json(&table(3, json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["epoch"], 3);

    let misdirected = |r: reqwest::Response| async move {
        assert_eq!(r.status(), 421);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "misdirected", "{body}");
        assert_eq!(body["error"]["owner"], "node2", "{body}");
        assert_eq!(body["error"]["epoch"], 3, "{body}");
    };
    let hook = http
        .post(format!("{url}/t/{theirs}/hooks/gh"))
        .body("{}")
        .send()
        .await
        .unwrap();
    misdirected(hook).await;
    let events = admin(reqwest::Method::GET, &format!("/t/{theirs}/events"))
        .send()
        .await
        .unwrap();
    misdirected(events).await;
    let sql = admin(reqwest::Method::POST, &format!("/t/{theirs}/v2/pipeline"))
        .json(&json!({"requests": [{"type": "execute", "stmt": {"sql": "SELECT 1"}}]}))
        .send()
        .await
        .unwrap();
    misdirected(sql).await;
    let by_header = admin(reqwest::Method::POST, "/v2/pipeline")
        .header("x-namespace", &theirs)
        .json(&json!({"requests": [{"type": "execute", "stmt": {"sql": "SELECT 1"}}]}))
        .send()
        .await
        .unwrap();
    misdirected(by_header).await;
    // Creating a tenant that belongs to another node is refused the same way, with no file.
    let new_theirs = tenant_on(false, "newtheirs");
    let create = admin(
        reqwest::Method::PUT,
        &format!("/admin/tenants/{new_theirs}"),
    )
    .send()
    .await
    .unwrap();
    misdirected(create).await;
    let file_of = |t: &str| {
        let id = store::TenantId::parse(t).unwrap();
        store::layout::tenant_path(&data, &id)
    };
    assert!(!file_of(&new_theirs).exists());
    // Our tenants are served as before.
    let r = admin(reqwest::Method::GET, &format!("/t/{ours}/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Older epochs are refused; the same table again is accepted (a retried push).
    let r = admin(reqwest::Method::PUT, "/admin/cluster")
        .json(&table(2, json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "stale_table"
    );
    let r = admin(reqwest::Method::PUT, "/admin/cluster")
        .json(&table(3, json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A table that does not cover every slot is a 400 naming the slot.
    let r = admin(reqwest::Method::PUT, "/admin/cluster")
        .json(&json!({"epoch": 9, "ranges": [{"from": 0, "to": 10, "node": "node1"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("slot 11"),
        "{body}"
    );
    // Without the admin token the table is neither shown nor changed.
    let r = http
        .get(format!("{url}/admin/cluster"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // A restart keeps the table.
    child.kill().unwrap();
    child.wait().unwrap();
    let (mut child, url) = common::spawn_serve(common::tenantd(), &data, &["--node-name", "node1"]);
    let events = format!("/t/{theirs}/events");
    let r = send(&http, &url, &token, reqwest::Method::GET, &events, None).await;
    assert_eq!(r.status(), 421);
    // An override pins `theirs` here.
    let pinned = table(4, json!({ theirs.clone(): "node1" }));
    let put = reqwest::Method::PUT;
    let r = send(&http, &url, &token, put, "/admin/cluster", Some(&pinned)).await;
    assert_eq!(r.status(), 200);
    let r = send(&http, &url, &token, reqwest::Method::GET, &events, None).await;
    assert_eq!(r.status(), 200);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_bad_node_name_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::tenantd()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--node-name",
            "Node One",
            "--data",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("node_name"), "{err}");
}
