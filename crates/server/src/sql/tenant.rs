//! The one extractor of the SQL endpoints: which tenant a request is for, and what its token
//! may do there. Resolved once, before any file is touched, and used for both auth and data.
//!
//! The tenant comes from the `{tenant}` path segment (`/t/{tenant}/v2/pipeline`), else from
//! sqld's `x-namespace` header, else from the first label of `Host` under the configured base
//! domain (`acme.db.example.com` → `acme`). The bearer token is then checked: the admin token
//! grants every tenant read-write; a tenant token (JWT) must verify, name this tenant and carry
//! a token epoch. These checks are pure CPU, so a token for tenant A is refused before tenant
//! B's file is looked up. Last, a tenant token's epoch is compared with the one in the tenant
//! file (a read on a reader connection; a file that predates epochs gets one): a tenant
//! deleted and created again, or whose tokens were revoked, has a new epoch, and older tokens
//! are refused with `token_revoked`. The events API uses the same extractor.

use std::time::SystemTime;

use std::time::Duration;

use auth::{Access, AuthError, Claims};
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use subtle::ConstantTimeEq;

use super::error::SqlError;
use crate::error::ApiError;
use crate::state::AppState;
use store::{token_epoch, TenantId};

/// sqld's header naming the namespace (tenant) of a request.
pub const NAMESPACE_HEADER: &str = "x-namespace";

/// A tenant and the access the request's token grants on it.
#[derive(Debug, Clone)]
pub struct SqlTenant {
    /// The tenant.
    pub id: TenantId,
    /// What the token allows.
    pub access: Access,
}

impl SqlTenant {
    /// True when the token only allows reading.
    pub fn read_only(&self) -> bool {
        self.access.is_read_only()
    }
}

impl FromRequestParts<AppState> for SqlTenant {
    type Rejection = SqlError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, SqlError> {
        let path = match RawPathParams::from_request_parts(parts, &()).await {
            Ok(params) => params
                .iter()
                .find(|(k, _)| *k == "tenant")
                .map(|(_, v)| v.to_owned()),
            Err(_) => None, // a root route: no path parameters
        };
        let id = resolve(
            path.as_deref(),
            &parts.headers,
            parts.uri.host(),
            st.sql.config.base_domain.as_deref(),
        )?;
        st.check_owner(&id)?;
        let token = bearer(&parts.headers).ok_or(SqlError::MissingToken)?;
        let access = match authorize(st, token, &id)? {
            Granted::Admin => Access::ReadWrite,
            Granted::Token(claims) => {
                check_epoch(st, &id, &claims).await?;
                claims.access
            }
        };
        Ok(SqlTenant { id, access })
    }
}

/// The tenant a request names. Errors: an invalid id, no tenant at all, or a path and header
/// that disagree.
pub fn resolve(
    path: Option<&str>,
    headers: &HeaderMap,
    uri_host: Option<&str>,
    base_domain: Option<&str>,
) -> Result<TenantId, SqlError> {
    let parse = |raw: &str| TenantId::parse(raw).map_err(|e| ApiError::InvalidTenantId(e).into());
    let header =
        match headers.get(NAMESPACE_HEADER) {
            Some(v) => Some(v.to_str().map_err(|_| {
                SqlError::Api(ApiError::BadRequest("x-namespace is not ASCII".into()))
            })?),
            None => None,
        };
    match (path, header) {
        (Some(p), Some(h)) if p != h => Err(SqlError::ConflictingTenant {
            path: p.to_owned(),
            header: h.to_owned(),
        }),
        (Some(raw), _) | (None, Some(raw)) => parse(raw),
        (None, None) => {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .or(uri_host);
            match (host, base_domain) {
                // DNS names are case-insensitive and may be written fully qualified (`a.b.`).
                (Some(host), Some(base)) => match tenant_label(host, base) {
                    Some(label) => parse(&label.to_ascii_lowercase()),
                    None => Err(SqlError::NoTenant),
                },
                _ => Err(SqlError::NoTenant),
            }
        }
    }
}

/// The label in front of `base` in `host` (`acme.db.example.com:8080` under `db.example.com`
/// → `acme`); `None` unless `host` is exactly one label under `base`.
pub fn tenant_label<'h>(host: &'h str, base: &str) -> Option<&'h str> {
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    let base = base.trim_matches('.');
    if host.len() <= base.len() + 1 {
        return None;
    }
    let (label, rest) = host.split_at(host.len() - base.len() - 1);
    let matches = rest.as_bytes()[0] == b'.' && rest[1..].eq_ignore_ascii_case(base);
    (matches && !label.is_empty() && !label.contains('.')).then_some(label)
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// What a bearer token is, once its signature and tenant are checked.
#[derive(Debug)]
pub enum Granted {
    /// The admin token: read-write on every tenant, no epoch.
    Admin,
    /// A tenant token for this tenant; its epoch is still to be checked ([`check_epoch`]).
    Token(Claims),
}

/// What `token` is on `tenant`: the admin token, or a tenant JWT for this tenant with an epoch.
/// Pure CPU. Errors: invalid or unbound token (401), a token for another tenant (403).
pub fn authorize(st: &AppState, token: &str, tenant: &TenantId) -> Result<Granted, SqlError> {
    let admin = st.admin_token.as_bytes();
    if token.len() == admin.len() && bool::from(token.as_bytes().ct_eq(admin)) {
        return Ok(Granted::Admin);
    }
    match st
        .sql
        .keys
        .authorize(token, tenant.as_str(), SystemTime::now())
    {
        Ok(claims) => Ok(Granted::Token(claims)),
        Err(AuthError::WrongTenant) => Err(SqlError::WrongTenant),
        Err(e) => Err(SqlError::InvalidToken(e)),
    }
}

/// Checks `claims` against the tenant's current token epoch (from the node catalog, so the
/// check opens no tenant file; a file that predates epochs gets one on the writer first).
/// Errors: `token_revoked` (401), unknown tenant (404), and the pool's (overload 429/503,
/// migration 503).
pub async fn check_epoch(
    st: &AppState,
    tenant: &TenantId,
    claims: &Claims,
) -> Result<(), SqlError> {
    let current = current_epoch(st, tenant).await?;
    claims.check_epoch(&current).map_err(SqlError::InvalidToken)
}

/// The tenant's token epoch (the catalog's copy of its file's), written to the file (and the
/// catalog) first if the file has none. Errors: unknown tenant, the catalog's, the pool's.
pub async fn current_epoch(st: &AppState, tenant: &TenantId) -> Result<String, SqlError> {
    if let Some(epoch) = st.inbox.token_epoch(tenant).await? {
        return Ok(epoch);
    }
    let epoch = st
        .pool
        .write(tenant, |conn| Ok(token_epoch::ensure(conn)?))
        .await?;
    st.inbox
        .tenant_changed(tenant, None, Some(epoch.clone()))
        .await?;
    Ok(epoch)
}

/// A token for `tenant` at its current epoch (embedding and tests; operators use `tenantd
/// token create`). Errors: the pool's, e.g. an unknown tenant (404).
pub async fn issue(
    st: &AppState,
    tenant: &TenantId,
    access: Access,
    ttl: Option<Duration>,
) -> Result<String, SqlError> {
    let epoch = current_epoch(st, tenant).await?;
    Ok(st.sql.keys.issue(tenant.as_str(), &epoch, access, ttl))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn host_label_under_the_base_domain() {
        let base = "db.example.com";
        assert_eq!(tenant_label("acme.db.example.com", base), Some("acme"));
        assert_eq!(tenant_label("acme.DB.example.com:8080", base), Some("acme"));
        assert_eq!(tenant_label("db.example.com", base), None);
        assert_eq!(tenant_label(".db.example.com", base), None);
        assert_eq!(tenant_label("a.b.db.example.com", base), None);
        assert_eq!(tenant_label("acmedb.example.com", base), None);
        assert_eq!(tenant_label("acme.db.example.org", base), None);
        assert_eq!(tenant_label("127.0.0.1:8080", base), None);
    }

    #[test]
    fn path_then_header_then_host() {
        let base = Some("db.example.com");
        let h = headers(&[("host", "globex.db.example.com")]);
        assert_eq!(
            resolve(Some("acme"), &h, None, base).unwrap().as_str(),
            "acme"
        );
        assert_eq!(resolve(None, &h, None, base).unwrap().as_str(), "globex");
        let h = headers(&[
            ("host", "globex.db.example.com"),
            ("x-namespace", "initech"),
        ]);
        assert_eq!(resolve(None, &h, None, base).unwrap().as_str(), "initech");
        assert!(matches!(
            resolve(Some("acme"), &h, None, base),
            Err(SqlError::ConflictingTenant { .. })
        ));
        let h = headers(&[("host", "localhost:8080")]);
        assert!(matches!(
            resolve(None, &h, None, base),
            Err(SqlError::NoTenant)
        ));
        let h = headers(&[("host", "acme.db.example.com")]);
        assert!(matches!(
            resolve(None, &h, None, None),
            Err(SqlError::NoTenant)
        ));
        let h = headers(&[("x-namespace", "../etc")]);
        assert!(matches!(
            resolve(None, &h, None, base),
            Err(SqlError::Api(ApiError::InvalidTenantId(_)))
        ));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(
            bearer(&headers(&[("authorization", "Bearer abc")])),
            Some("abc")
        );
        assert_eq!(
            bearer(&headers(&[("authorization", "bearer abc")])),
            Some("abc")
        );
        assert_eq!(bearer(&headers(&[("authorization", "Basic abc")])), None);
        assert_eq!(bearer(&headers(&[("authorization", "Bearer ")])), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}
