//! `POST /t/{tenant}/hooks/{source}`: verify, dedupe and durably log one webhook delivery.
//!
//! Nothing here opens the tenant's file: the tenant's webhook policy (`open`, `configured`,
//! `signed`; see `store::policy`) and the source's stored scheme come from the node catalog,
//! and the delivery is acknowledged once it is in the node's ingest log (`store::inbox`);
//! background appliers move it to the tenant file. Anything unreadable in the settings fails
//! closed: the delivery is refused with `500 hook_misconfigured` (logged at error) and never
//! stored unverified. A 5xx, not a 4xx, because the fault is the server's (corruption or a
//! newer tenantd's value) and senders retry 5xx, so no delivery is lost once the operator
//! fixes the settings.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use store::inbox::{Delivery, HookView};
use store::policy::WebhookPolicy;

use crate::error::ApiError;
use crate::extract::{Source, Tenant};
use crate::signature::{self, Scheme, SigError};
use crate::state::AppState;
use store::{SourceName, TenantId};

/// Logs the delivery and answers `202 {"id", "duplicate": false}` once it is in the ingest log
/// (synced in `fsync` mode), or `200 {"id", "duplicate": true}` for a redelivery (nothing
/// logged).
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
    let view = st.inbox.hook_view(&tenant, &source).await?;
    let delivery_id = verify(&view, &headers, &body, now.as_secs() as i64)
        .map_err(|r| r.into_api_error(&tenant, &source))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let delivery = Delivery {
        source,
        delivery_id,
        content_type,
        received_at_ms: now.as_millis() as i64,
        body: body.to_vec(),
    };
    let inserted = st.inbox.accept(&tenant, delivery).await?;
    let status = if inserted.duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(inserted)).into_response())
}

/// Checks the delivery against the tenant's policy and the source's scheme; returns its
/// delivery id (the dedupe key), if the scheme gives one.
fn verify(
    view: &HookView,
    headers: &HeaderMap,
    body: &[u8],
    now_secs: i64,
) -> Result<Option<String>, Refusal> {
    let policy = match &view.policy {
        Ok(p) => *p,
        Err(e) => return Err(Refusal::Misconfigured(e.to_string())),
    };
    let scheme = match &view.hook {
        Some(h) => Scheme::parse(&h.scheme).map_err(Refusal::Misconfigured)?,
        None if policy == WebhookPolicy::Open => Scheme::None,
        None => return Err(Refusal::UnknownSource(policy)),
    };
    if scheme == Scheme::None && policy == WebhookPolicy::Signed {
        return Err(Refusal::Unsigned);
    }
    let secret = view.hook.as_ref().and_then(|h| h.secret.as_deref());
    signature::verify(scheme, secret, headers, body, now_secs).map_err(Refusal::Signature)?;
    Ok(signature::delivery_id(scheme, headers, body))
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
