//! The admin API: create, delete, list and show tenants; configure and remove webhook sources;
//! set a tenant's webhook policy.
//! Every route needs the admin bearer token.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use store::events::{self, HookConfig};
use store::inbox::write_created_lsn;
use store::layout::{self, ListKey};
use store::policy::{self, WebhookPolicy};
use store::token_epoch;

use crate::error::ApiError;
use crate::extract::{Admin, Source, Tenant};
use crate::signature::Scheme;
use crate::state::AppState;

/// Largest page of the tenant listing.
pub const MAX_LIST_PAGE: usize = 1000;

/// `PUT /admin/tenants/{id}`: 201 when created, 409 if it exists.
pub async fn create(
    State(st): State<AppState>,
    _: Admin,
    Tenant(id): Tenant,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // Records logged for an earlier tenant of this id are never applied to the new file.
    let created_lsn = st.inbox.creation_lsn().await?;
    let epoch = std::sync::Arc::new(std::sync::Mutex::new(None));
    let epoch_out = epoch.clone();
    st.pool
        .create(&id, move |conn| {
            events::init_schema(conn)?;
            write_created_lsn(conn, created_lsn)?;
            *epoch_out.lock().unwrap_or_else(|e| e.into_inner()) = token_epoch::read(conn)?;
            Ok(())
        })
        .await?;
    let epoch = epoch.lock().unwrap_or_else(|e| e.into_inner()).take();
    st.inbox.tenant_created(&id, epoch)?;
    tracing::info!(tenant = %id, "tenant created");
    Ok((StatusCode::CREATED, Json(json!({"id": id.as_str()}))))
}

/// `DELETE /admin/tenants/{id}`: 204; 409 while the tenant is in use.
pub async fn delete(
    State(st): State<AppState>,
    _: Admin,
    Tenant(id): Tenant,
) -> Result<StatusCode, ApiError> {
    // In use (a stream holds it): `Busy` before anything changes. A delivery accepted while
    // the file goes is dropped with the tenant.
    match st.pool.delete(&id).await {
        Ok(()) => {}
        Err(e @ store::StoreError::NotFound) => {
            st.inbox.tenant_deleted(&id)?;
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    }
    let dropped = st.inbox.tenant_deleted(&id)?;
    tracing::info!(tenant = %id, dropped, "tenant deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Query of the listing.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Page size, 1..=1000 (default 100).
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `GET /admin/tenants?limit=N&cursor=C`: `{"tenants": [{"id", "open"}], "next_cursor"}`.
/// Reads the tenant directories page by page; never loads the whole set.
pub async fn list(
    State(st): State<AppState>,
    _: Admin,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_LIST_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be 1..={MAX_LIST_PAGE}"
        )));
    }
    let after = match q.cursor.as_deref() {
        Some(c) => {
            Some(ListKey::decode(c).ok_or_else(|| ApiError::BadRequest("bad cursor".into()))?)
        }
        None => None,
    };
    let dir = st.pool.config().data_dir.clone();
    let (ids, next) =
        tokio::task::spawn_blocking(move || layout::list_tenants(&dir, after.as_ref(), limit))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(|e| ApiError::Internal(format!("listing tenants: {e}")))?;
    let tenants: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id.as_str(), "open": st.pool.is_open(id)}))
        .collect();
    Ok(Json(
        json!({"tenants": tenants, "next_cursor": next.map(|k| k.encode())}),
    ))
}

/// `GET /admin/tenants/{id}`: size on disk, event count, last write, open or not, sources,
/// the webhook policy, schema version, the last migration error, and the node it is being
/// moved to (`moving_to`, while a move's fence holds it). Read outside the pool:
/// showing a tenant does not open it, migrate it, or count it as open — unless it has
/// acknowledged webhooks not yet in its file, which are applied first (read your writes).
pub async fn show(
    State(st): State<AppState>,
    _: Admin,
    Tenant(id): Tenant,
) -> Result<Json<Value>, ApiError> {
    // Applying needs a migrated tenant: a remembered migration failure is shown, not raised.
    if st.pool.migration_failure(&id).is_none() {
        st.pool.settle(&id).await?;
    }
    let path = st.pool.path_of(&id);
    let summary = st.pool.inspect(&id).await?;
    let mut size = 0;
    for p in std::iter::once(path.clone()).chain(layout::companion_paths(&path)) {
        size += std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    }
    let hooks: Vec<Value> = summary
        .hooks
        .into_iter()
        .map(|(source, scheme)| json!({"source": source, "scheme": scheme}))
        .collect();
    Ok(Json(json!({
        "id": id.as_str(),
        "open": st.pool.is_open(&id),
        "size_bytes": size,
        "events": summary.events,
        "last_event_at_ms": summary.last_event_at_ms,
        "hooks": hooks,
        "policy": {"webhooks": summary.webhook_policy},
        "schema_version": summary.schema_version,
        "migration_error": summary.migration_error,
        "moving_to": st.pool.fences().moving_to(&id, tokio::time::Instant::now()),
    })))
}

/// Body of a hook configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookBody {
    /// `standard-webhooks`, `github`, `stripe`, `shopify` or `none`.
    pub scheme: String,
    /// The shared secret (absent for `none`). Never returned by the API.
    pub secret: Option<String>,
}

/// `PUT /admin/tenants/{id}/hooks/{source}`: sets the source's verification scheme and secret.
pub async fn set_hook(
    State(st): State<AppState>,
    _: Admin,
    Tenant(id): Tenant,
    Source(source): Source,
    body: Result<Json<HookBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.map_err(|e| json_error(&e, st.http.max_body_bytes))?;
    let scheme = Scheme::parse(&body.scheme).map_err(ApiError::BadRequest)?;
    scheme
        .check_secret(body.secret.as_deref())
        .map_err(ApiError::BadRequest)?;
    let cfg = HookConfig {
        scheme: scheme.as_str().to_owned(),
        secret: body.secret,
    };
    let (src, stored) = (source.clone(), cfg.clone());
    st.pool
        .write(&id, move |conn| {
            Ok(events::set_hook(conn, src.as_str(), &stored)?)
        })
        .await?;
    st.inbox.hook_changed(&id, &source, Some(&cfg)).await?;
    tracing::info!(tenant = %id, source = %source, scheme = scheme.as_str(), "hook configured");
    Ok(Json(json!({
        "source": source.as_str(),
        "scheme": scheme.as_str(),
        "secret_set": scheme != Scheme::None,
    })))
}

/// `DELETE /admin/tenants/{id}/hooks/{source}`: 204; `404 hook_not_found` if the source had no
/// settings. Deliveries from the source are then treated as from an unknown source.
pub async fn delete_hook(
    State(st): State<AppState>,
    _: Admin,
    Tenant(id): Tenant,
    Source(source): Source,
) -> Result<StatusCode, ApiError> {
    let src = source.clone();
    let deleted = st
        .pool
        .write(&id, move |conn| {
            Ok(events::delete_hook(conn, src.as_str())?)
        })
        .await?;
    st.inbox.hook_changed(&id, &source, None).await?;
    if !deleted {
        return Err(ApiError::HookNotFound);
    }
    tracing::info!(tenant = %id, source = %source, "hook removed");
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `PUT /admin/tenants/{id}/policy`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    /// `open` (any source), `configured` (only configured sources) or `signed` (only sources
    /// with a signature scheme).
    pub webhooks: String,
}

/// `PUT /admin/tenants/{id}/policy`: sets the tenant's webhook policy; answers
/// `{"webhooks": ...}`. Errors: 400 for an unknown policy name.
pub async fn set_policy(
    State(st): State<AppState>,
    _: Admin,
    Tenant(id): Tenant,
    body: Result<Json<PolicyBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.map_err(|e| json_error(&e, st.http.max_body_bytes))?;
    let policy =
        WebhookPolicy::parse(&body.webhooks).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    st.pool
        .write(&id, move |conn| {
            Ok(policy::set_webhook_policy(conn, policy)?)
        })
        .await?;
    st.inbox.tenant_changed(&id, Some(policy), None).await?;
    tracing::info!(tenant = %id, webhooks = policy.as_str(), "webhook policy set");
    Ok(Json(json!({"webhooks": policy.as_str()})))
}

/// Maps a JSON body failure: over the limit is 413, anything else 400 with serde's reason.
pub(crate) fn json_error(e: &JsonRejection, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(limit)
    } else {
        ApiError::BadRequest(e.body_text())
    }
}
