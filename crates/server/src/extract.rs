//! Extractors that turn raw request parts into validated values once: the tenant id, the
//! source name, and the admin bearer token. Handlers never see raw path strings.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;
use store::{SourceName, TenantId};

/// The tenant named by the `{tenant}` (or `{id}`) path segment, validated, and served by this
/// node (in a cluster, another node's tenant is `421 misdirected` here).
pub struct Tenant(pub TenantId);

/// The tenant named by the `{id}` path segment, validated, whether or not this node serves it
/// (the move and import endpoints, which check ownership themselves).
pub struct AnyTenant(pub TenantId);

/// The webhook source named by the `{source}` path segment, validated.
pub struct Source(pub SourceName);

/// Proof that the request carried the admin bearer token.
pub struct Admin;

async fn path_param(parts: &mut Parts, names: &[&str]) -> Result<String, ApiError> {
    let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, &())
        .await
        .map_err(|e| ApiError::BadRequest(format!("bad path: {e}")))?;
    names
        .iter()
        .find_map(|n| params.get(*n).cloned())
        .ok_or_else(|| ApiError::BadRequest("missing path parameter".into()))
}

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let raw = path_param(parts, &["tenant", "id"]).await?;
        let id = TenantId::parse(&raw).map_err(ApiError::InvalidTenantId)?;
        st.check_owner(&id)?;
        Ok(Tenant(id))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AnyTenant {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let raw = path_param(parts, &["id"]).await?;
        TenantId::parse(&raw)
            .map(AnyTenant)
            .map_err(ApiError::InvalidTenantId)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Source {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let raw = path_param(parts, &["source"]).await?;
        SourceName::parse(&raw)
            .map(Source)
            .map_err(ApiError::InvalidSource)
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let given = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized)?;
        let want = st.admin_token.as_bytes();
        if given.len() == want.len() && bool::from(given.as_bytes().ct_eq(want)) {
            Ok(Admin)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}
