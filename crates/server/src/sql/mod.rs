//! SQL for every tenant: libSQL's Hrana over HTTP (v2/v3 pipelines, the v3 cursor, the legacy
//! `/v1` and `POST /` shapes) on the tenant's connection, behind per-tenant tokens, so
//! `@libsql/client` and other libSQL clients work against a tenant unchanged.
//!
//! - [`config`]: addressing, guard, caps and expiry settings;
//! - [`tenant`]: the one extractor resolving tenant + token, before any file is opened;
//! - [`streams`]: open streams between requests (batons, held writers, idle expiry);
//! - [`pipeline`]: `v2/pipeline`, `v3/pipeline`;
//! - [`cursor`]: `v3/cursor`, JSON lines while the batch runs;
//! - [`legacy`]: `v1/execute`, `v1/batch`, `POST /` with `{"statements": [...]}`;
//! - [`reader`]: read-only requests on a reader connection, not waiting for the writer;
//! - [`probe`]: version probes, `/health`, `/version`, and the clear refusals (no trailing
//!   slash, Protobuf, WebSocket);
//! - [`error`]: failures and their HTTP form.
//!
//! Every use of tenant SQL runs inside `hrana::guard::Guard`, created on the blocking thread
//! that runs the executor (the guard's denial notes are thread-local; see `docs/HRANA.md`).

pub mod config;
pub mod cursor;
pub mod error;
pub mod legacy;
pub mod pipeline;
pub mod probe;
pub mod reader;
pub mod streams;
pub mod tenant;

use std::sync::Arc;

use auth::Keys;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use hrana::baton::BatonCodec;
use tokio::sync::Notify;

pub use config::SqlConfig;
pub use error::SqlError;
pub use streams::{spawn_expiry, Streams};
pub use tenant::SqlTenant;

use crate::state::AppState;

/// The SQL part of the server state.
pub struct SqlState {
    /// Settings.
    pub config: SqlConfig,
    /// The key pair that verifies tenant tokens.
    pub keys: Arc<Keys>,
    /// Open streams.
    pub streams: Arc<Streams>,
    stop: Arc<Notify>,
}

impl SqlState {
    /// SQL state with `config`, verifying tokens with `keys`; batons are signed with a random
    /// per-process key (streams do not outlive the process).
    pub fn new(config: SqlConfig, keys: Keys) -> Self {
        SqlState {
            keys: Arc::new(keys),
            streams: Arc::new(Streams::new(BatonCodec::random(), config.stream_limits())),
            stop: Arc::new(Notify::new()),
            config,
        }
    }
}

/// The SQL routes: under `/t/{tenant}/`, and at the root for host or `x-namespace` addressing.
pub fn router(sql: &SqlConfig) -> Router<AppState> {
    let mut r = Router::new()
        .route("/health", get(probe::health))
        .route("/version", get(probe::version))
        .route("/", get(probe::websocket).post(legacy::query));
    for base in ["/t/{tenant}", ""] {
        r = r
            .route(&format!("{base}/v2"), get(probe::v2))
            .route(&format!("{base}/v3"), get(probe::v3))
            .route(&format!("{base}/v2/pipeline"), post(pipeline::pipeline))
            .route(&format!("{base}/v3/pipeline"), post(pipeline::pipeline))
            .route(&format!("{base}/v3/cursor"), post(cursor::cursor))
            .route(&format!("{base}/v1/execute"), post(legacy::v1_execute))
            .route(&format!("{base}/v1/batch"), post(legacy::v1_batch));
    }
    r = r.route("/t/{tenant}/", get(probe::websocket).post(legacy::query));
    // A client URL without its trailing slash loses the tenant: `/t/acme` + `v2/pipeline`
    // resolves to `/t/v2/pipeline`. Answer those with the fix instead of a bare 404.
    for lost in [
        "/t/v2",
        "/t/v3",
        "/t/v2/pipeline",
        "/t/v3/pipeline",
        "/t/v3/cursor",
        "/t/v1/execute",
        "/t/v1/batch",
    ] {
        r = r.route(lost, get(probe::missing_slash).post(probe::missing_slash));
    }
    r.layer(DefaultBodyLimit::max(sql.max_body_bytes))
}
