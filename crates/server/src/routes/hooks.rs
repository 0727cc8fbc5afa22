//! `POST /t/{tenant}/hooks/{source}`: verify, dedupe and durably store one webhook delivery.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use store::events::{self, NewEvent};

use crate::error::ApiError;
use crate::extract::{Source, Tenant};
use crate::signature::{self, Scheme, SigError};
use crate::state::AppState;

/// Stores the delivery and answers `202 {"id", "duplicate": false}` after the commit, or
/// `200 {"id", "duplicate": true}` for a redelivery (nothing stored).
pub async fn ingest(
    State(st): State<AppState>,
    Tenant(tenant): Tenant,
    Source(source): Source,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| body_error(&e, st.http.max_body_bytes))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let outcome = st
        .pool
        .write(&tenant, move |conn| {
            let hook = events::get_hook(conn, source.as_str())?;
            let scheme = match &hook {
                Some(h) => Scheme::parse(&h.scheme).unwrap_or(Scheme::None),
                None => Scheme::None,
            };
            let secret = hook.as_ref().and_then(|h| h.secret.as_deref());
            if let Err(e) = signature::verify(scheme, secret, &headers, &body, now.as_secs() as i64)
            {
                return Ok(Err(e));
            }
            let delivery = signature::delivery_id(scheme, &headers, &body);
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            let ev = NewEvent {
                source: source.as_str(),
                delivery_id: delivery.as_deref(),
                content_type,
                received_at_ms: now.as_millis() as i64,
                body: &body,
            };
            Ok(Ok(events::insert_event(conn, &ev)?))
        })
        .await?;
    let inserted = outcome.map_err(|e: SigError| ApiError::InvalidSignature(e.to_string()))?;
    let status = if inserted.duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(inserted)).into_response())
}

/// Maps a body read failure: over the limit is 413, anything else 400.
pub fn body_error(e: &BytesRejection, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(limit)
    } else {
        ApiError::BadRequest(format!("cannot read body: {e}"))
    }
}
