//! `POST /t/{tenant}/hooks/{source}`: verify, dedupe and durably store one webhook delivery.
//!
//! What is accepted is decided inside the writer call, from the tenant file: the tenant's webhook
//! policy (`open`, `configured`, `signed`; see `store::policy`) and the source's stored scheme.
//! Anything unreadable there fails closed: the delivery is refused with `500
//! hook_misconfigured` (logged at error) and never stored unverified. A 5xx, not a 4xx, because
//! the fault is the server's (corruption or a newer tenantd's value) and senders retry 5xx, so
//! no delivery is lost once the operator fixes the settings.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use store::events::{self, NewEvent};
use store::policy::{self, WebhookPolicy};

use crate::error::ApiError;
use crate::extract::{Source, Tenant};
use crate::signature::{self, Scheme, SigError};
use crate::state::AppState;
use store::{SourceName, TenantId};

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
    let src = source.clone();
    let outcome = st
        .pool
        .write(&tenant, move |conn| {
            let policy = match policy::webhook_policy(conn)? {
                Ok(p) => p,
                Err(e) => return Ok(Err(Refusal::Misconfigured(e.to_string()))),
            };
            let hook = events::get_hook(conn, src.as_str())?;
            let scheme = match &hook {
                Some(h) => match Scheme::parse(&h.scheme) {
                    Ok(s) => s,
                    Err(e) => return Ok(Err(Refusal::Misconfigured(e))),
                },
                None if policy == WebhookPolicy::Open => Scheme::None,
                None => return Ok(Err(Refusal::UnknownSource(policy))),
            };
            if scheme == Scheme::None && policy == WebhookPolicy::Signed {
                return Ok(Err(Refusal::Unsigned));
            }
            let secret = hook.as_ref().and_then(|h| h.secret.as_deref());
            if let Err(e) = signature::verify(scheme, secret, &headers, &body, now.as_secs() as i64)
            {
                return Ok(Err(Refusal::Signature(e)));
            }
            let delivery = signature::delivery_id(scheme, &headers, &body);
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            let ev = NewEvent {
                source: src.as_str(),
                delivery_id: delivery.as_deref(),
                content_type,
                received_at_ms: now.as_millis() as i64,
                body: &body,
            };
            Ok(Ok(events::insert_event(conn, &ev)?))
        })
        .await?;
    let inserted = outcome.map_err(|r| r.into_api_error(&tenant, &source))?;
    let status = if inserted.duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(inserted)).into_response())
}

/// Why a delivery was refused before anything was stored.
enum Refusal {
    /// The signature did not verify.
    Signature(SigError),
    /// The source has no settings and the policy accepts only configured sources.
    UnknownSource(WebhookPolicy),
    /// The source is configured with scheme `none` and the policy is `signed`.
    Unsigned,
    /// The stored scheme or policy cannot be read.
    Misconfigured(String),
}

impl Refusal {
    fn into_api_error(self, tenant: &TenantId, source: &SourceName) -> ApiError {
        match self {
            Refusal::Signature(e) => ApiError::InvalidSignature(e.to_string()),
            Refusal::UnknownSource(policy) => ApiError::SourceNotAllowed(format!(
                "source \"{source}\" has no webhook settings and this tenant's webhook policy is \
                 {:?}: configure the source (PUT /admin/tenants/{tenant}/hooks/{source})",
                policy.as_str()
            )),
            Refusal::Unsigned => ApiError::SourceNotAllowed(format!(
                "source \"{source}\" is configured without a signature scheme and this tenant's \
                 webhook policy is \"signed\": configure a scheme and secret for it"
            )),
            Refusal::Misconfigured(why) => ApiError::HookMisconfigured(format!(
                "tenant {tenant} source {source}: stored webhook settings are unreadable: {why}"
            )),
        }
    }
}

/// Maps a body read failure: over the limit is 413, anything else 400.
pub fn body_error(e: &BytesRejection, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(limit)
    } else {
        ApiError::BadRequest(format!("cannot read body: {e}"))
    }
}
