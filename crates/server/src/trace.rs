//! The request span: every request runs inside a `request` span carrying `request_id` (the
//! client's `x-request-id` when it is sane, else a generated one; echoed in the response) and
//! `tenant` (the tenant the request names, by path, `x-namespace` or `Host`), so every log line
//! of a request — rejections included — names both.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use store::TenantId;
use tracing::Instrument;

use crate::state::AppState;

/// The request id header, read from clients and set on every response.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client request id that is kept (longer ones are replaced).
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Middleware: runs the request inside its span and echoes the request id.
pub async fn span(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_sane(v))
        .map_or_else(generate, str::to_owned);
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        route,
        tenant = tracing::field::Empty,
    );
    if let Some(tenant) = named_tenant(&req, route, st.sql.config.base_domain.as_deref()) {
        span.record("tenant", tracing::field::display(&tenant));
    }
    let mut resp = next.run(req).instrument(span).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    resp
}

/// A client id is kept if it is 1..=128 characters of `[A-Za-z0-9._:-]` (no spaces, quotes or
/// control characters that could forge log lines).
pub fn is_sane(id: &str) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

fn generate() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The valid tenant id the request names, if any (before any authentication).
fn named_tenant(req: &Request, route: &str, base_domain: Option<&str>) -> Option<TenantId> {
    let in_path = if route.starts_with("/t/{tenant}") || route.starts_with("/admin/tenants/{id}") {
        req.uri()
            .path()
            .split('/')
            .nth(if route.starts_with("/t/") { 2 } else { 3 })
    } else {
        None
    };
    crate::sql::tenant::resolve(in_path, req.headers(), req.uri().host(), base_domain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_client_ids_are_kept() {
        for ok in [
            "abc",
            "0f1e2d3c-aaaa-bbbb-cccc-1234567890ab",
            "a.b:c_d",
            &"x".repeat(128),
        ] {
            assert!(is_sane(ok), "{ok:?}");
        }
        for bad in ["", "a b", "a\"b", "a\nb", "é", &"x".repeat(129)] {
            assert!(!is_sane(bad), "{bad:?}");
        }
        assert_eq!(generate().len(), 16);
    }
}
