//! Small SQL-side endpoints: the version probes clients send (`GET v2`, `GET v3`), sqld's
//! `/health` and `/version`, and clear refusals: WebSocket upgrades (not served), and client
//! URLs that lost the tenant because they had no trailing slash.

use std::time::SystemTime;

use axum::extract::State;
use axum::http::{header, HeaderMap};

use super::error::SqlError;
use super::tenant::bearer;
use crate::state::AppState;

/// `GET v2`: Hrana 2 over HTTP is served.
pub async fn v2() -> &'static str {
    "Hrana over HTTP v2 (JSON)\n"
}

/// `GET v3`: Hrana 3 over HTTP (JSON, with `/v3/cursor`) is served. `v3-protobuf` is not:
/// it falls through to 404, so clients that probe it fall back to JSON.
pub async fn v3() -> &'static str {
    "Hrana over HTTP v3 (JSON)\n"
}

/// `GET /health`: the process is up (sqld's path; `/healthz` is the same).
pub async fn health() -> &'static str {
    "ok\n"
}

/// `GET /version`: the server's name and version.
pub async fn version() -> String {
    format!("tenantd {}\n", env!("CARGO_PKG_VERSION"))
}

/// `GET /` and `GET /t/{tenant}/`: Hrana over WebSocket is not served (404), nor anything else.
pub async fn websocket(headers: HeaderMap) -> SqlError {
    if headers.contains_key(header::UPGRADE) {
        SqlError::NotServed(
            "Hrana over WebSocket is not served: use an http:// or https:// URL \
             (not libsql://, ws:// or wss://)",
        )
    } else {
        SqlError::NotServed("not found: SQL clients POST to v2/pipeline under the tenant URL")
    }
}

/// `/t/v2/pipeline` and friends: the client URL lacked its trailing slash. The error names
/// the URL to use, with the tenant of the bearer token when it is a valid tenant token.
pub async fn missing_slash(State(st): State<AppState>, headers: HeaderMap) -> SqlError {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("HOST:PORT");
    let tenant = bearer(&headers)
        .and_then(|t| st.sql.keys.verify(t, SystemTime::now()).ok())
        .map_or_else(|| "<tenant>".to_owned(), |c| c.tenant);
    SqlError::MissingSlash {
        hint: format!("http://{host}/t/{tenant}/"),
    }
}
