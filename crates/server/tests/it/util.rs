//! Shared harness: a real server on 127.0.0.1:0 over a temporary data dir.

use std::path::PathBuf;

use server::{AppState, HttpConfig};
use store::inbox::{Inbox, InboxConfig};
use store::{PoolConfig, TenantId, TenantPool};

pub const TOKEN: &str = "test-admin-token";

pub struct TestServer {
    pub url: String,
    pub state: AppState,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub data: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

pub async fn start() -> TestServer {
    start_with(|_, _| {}).await
}

pub async fn start_with(tweak: impl FnOnce(&mut PoolConfig, &mut HttpConfig)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_owned();
    start_at(dir, &data, tweak).await
}

/// A server whose data dir is `data` (e.g. on a special filesystem the test mounted).
pub async fn start_in(
    data: &std::path::Path,
    tweak: impl FnOnce(&mut PoolConfig, &mut HttpConfig),
) -> TestServer {
    std::fs::create_dir_all(data).unwrap();
    start_at(tempfile::tempdir().unwrap(), data, tweak).await
}

async fn start_at(
    dir: tempfile::TempDir,
    data: &std::path::Path,
    tweak: impl FnOnce(&mut PoolConfig, &mut HttpConfig),
) -> TestServer {
    start_full(dir, data, tweak, |_| {}).await
}

/// A server with the ingest path's settings changed by `tweak_inbox`.
pub async fn start_with_inbox(tweak_inbox: impl FnOnce(&mut InboxConfig)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_owned();
    start_full(dir, &data, |_, _| {}, tweak_inbox).await
}

/// A server over `data` (kept by `dir`) with every setting open to the test.
pub async fn start_full(
    dir: tempfile::TempDir,
    data: &std::path::Path,
    tweak: impl FnOnce(&mut PoolConfig, &mut HttpConfig),
    tweak_inbox: impl FnOnce(&mut InboxConfig),
) -> TestServer {
    let mut pool_cfg = PoolConfig::new(data);
    let mut http = HttpConfig::default();
    tweak(&mut pool_cfg, &mut http);
    let mut inbox_cfg = InboxConfig::new(data, pool_cfg.durability);
    tweak_inbox(&mut inbox_cfg);
    let pool = TenantPool::open(pool_cfg).unwrap();
    let inbox = open_inbox(&pool, inbox_cfg).await;
    let state = AppState::new(pool, inbox, TOKEN.to_owned(), http);
    serve_state(state, dir, data).await
}

/// The inbox over `pool`, as `tenantd serve` opens it.
pub async fn open_inbox(pool: &TenantPool, cfg: InboxConfig) -> Inbox {
    Inbox::open(pool.clone(), cfg).await.unwrap()
}

/// Serves `state` on 127.0.0.1:0 until `TestServer::stop`.
pub async fn serve_state(
    state: AppState,
    dir: tempfile::TempDir,
    data: &std::path::Path,
) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = server::app(state.clone());
    let st = state.clone();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        server::serve::serve(listener, app, st, shutdown)
            .await
            .unwrap();
    });
    TestServer {
        url,
        state,
        http: reqwest::Client::new(),
        dir,
        data: data.to_owned(),
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestServer {
    /// Applies every acknowledged webhook to its tenant file now (the appliers would soon).
    pub async fn drain(&self) {
        let empty = self
            .state
            .inbox
            .drain(std::time::Duration::from_secs(10))
            .await;
        assert!(empty, "the backlog did not drain in 10 s");
    }

    pub fn tenant_path(&self, id: &str) -> PathBuf {
        self.state.pool.path_of(&TenantId::parse(id).unwrap())
    }

    /// Every file under the data dir's tenants directory, relative names.
    pub fn tenant_files(&self) -> Vec<String> {
        fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).into_iter().flatten() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out)
                } else {
                    out.push(p.file_name().unwrap().to_string_lossy().into_owned())
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.data.join("tenants"), &mut out);
        out.sort();
        out
    }

    pub async fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::Response {
        self.http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
    }

    pub async fn create_tenant(&self, id: &str) {
        let r = self
            .admin(reqwest::Method::PUT, &format!("/admin/tenants/{id}"))
            .await;
        assert_eq!(r.status(), 201, "creating {id}");
    }

    pub async fn post_hook(&self, tenant: &str, source: &str, body: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/t/{tenant}/hooks/{source}", self.url))
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    /// The `/metrics` page as text.
    pub async fn metrics_text(&self) -> String {
        let r = self
            .http
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .unwrap();
        r.text().await.unwrap()
    }

    /// One unlabelled metric's value.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.metrics_text().await;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("metric {name} missing"))
    }

    /// Shuts the server down gracefully; the data dir lives on in the returned handle.
    pub async fn stop(mut self) -> tempfile::TempDir {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap();
        self.dir
    }
}

pub async fn error_code(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let v: serde_json::Value = r.json().await.unwrap();
    (
        status,
        v["error"]["code"].as_str().unwrap_or("<none>").to_owned(),
    )
}

/// Sends one request exactly as written (no URL normalisation: `..` and `%2e%2e` stay as
/// they are) and returns the status and the JSON error code.
pub async fn raw_request(url: &str, method: &str, path: &str, auth: bool) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = if auth {
        format!("Authorization: Bearer {TOKEN}\r\n")
    } else {
        String::new()
    };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).await.unwrap();
    let status = resp[9..12].parse().unwrap();
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or_default();
    let code = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, code)
}
