//! `POST /admin/tenants/{id}/tokens/revoke`: revoke every token of a tenant by giving its file
//! a new token epoch (the node's signing key stays; other tenants' tokens are untouched).

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use store::token_epoch;

use crate::error::ApiError;
use crate::extract::{Admin, Tenant};
use crate::state::AppState;

/// Revokes the tenant's tokens: `200 {"id", "tokens_revoked": true}`; tokens issued before are
/// refused with `token_revoked` from the next request on (a request already running finishes).
/// Errors: admin token (401), unknown tenant (404), the pool's (429/503).
pub async fn revoke(
    State(st): State<AppState>,
    _: Admin,
    Tenant(id): Tenant,
) -> Result<Json<Value>, ApiError> {
    let epoch = st
        .pool
        .write(&id, |conn| Ok(token_epoch::renew(conn)?))
        .await?;
    st.inbox.tenant_changed(&id, None, Some(epoch)).await?;
    tracing::info!(tenant = %id, "tenant tokens revoked");
    Ok(Json(json!({"id": id.as_str(), "tokens_revoked": true})))
}
