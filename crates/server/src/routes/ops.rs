//! Operations endpoints: liveness, readiness, Prometheus metrics, and the JSON fallbacks (404/400
//! for unknown paths, 405 for a known path with another method).

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;
use store::TenantId;

use crate::error::ApiError;
use crate::state::AppState;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 while serving, 503 from the moment shutdown begins (while the listener
/// still accepts during the shutdown delay, so a load balancer stops routing here first).
pub async fn readyz(State(st): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    if st.ready.load(Ordering::Acquire) {
        Ok(Json(json!({"status": "ready"})))
    } else {
        Err(ApiError::ShuttingDown)
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(st): State<AppState>) -> impl IntoResponse {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(&st),
    )
}

/// Any unmatched request: a tenant-shaped path with a bad tenant segment is 400
/// `invalid_tenant_id` (so `/t//hooks/x` and `/t/a%2Fb/…` are named for what they are), anything
/// else 404 `not_found`.
pub async fn fallback(uri: Uri) -> ApiError {
    let path = uri.path();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let tenant_segment = match segments.as_slice() {
        ["t", tenant, _, ..] => Some(*tenant),
        ["admin", "tenants", tenant, ..] => Some(*tenant),
        _ => None,
    };
    if let Some(raw) = tenant_segment {
        let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
        if let Err(e) = TenantId::parse(&decoded) {
            return ApiError::InvalidTenantId(e);
        }
    }
    ApiError::NoRoute(path.to_owned())
}

/// A known path with a method it does not serve: 405 `method_not_allowed` (axum keeps the
/// `Allow` header).
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} {}", uri.path()))
}
