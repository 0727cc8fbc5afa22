//! Failures of the SQL endpoints and their HTTP form.
//!
//! Every error body carries both shapes clients read: the server's
//! `{"error": {"code", "message"}}` and Hrana's top-level `{"message", "code"}` (what
//! `@libsql/client` shows to the user instead of a bare "HTTP status 401"). Statement failures
//! inside a pipeline are not errors here: they are in-band results (HTTP 200). There is no
//! catch-all arm: each variant has its own code and status.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hrana::stream_table::TooManyStreams;
use serde_json::json;

use crate::error::{ApiError, RejectReason, RETRY_AFTER_SECS};

/// A failure of a SQL request that is answered with an HTTP error status.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// A failure shared with the rest of the API (bad tenant id, unknown tenant, body too
    /// large, overload, shutdown, internal).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// No `Authorization: Bearer` header.
    #[error("missing bearer token: send `Authorization: Bearer <token>` (a tenant token from `tenantd token create`, or the admin token)")]
    MissingToken,
    /// The token is malformed, badly signed, expired, not yet valid, without an epoch
    /// (`token_unbound`), or revoked (`token_revoked`).
    #[error("invalid token: {0}")]
    InvalidToken(auth::AuthError),
    /// A valid token for another tenant.
    #[error("this token is for another tenant")]
    WrongTenant,
    /// The request names no tenant (a root route without `x-namespace` or a tenant host).
    #[error("no tenant in the request: use http://HOST:PORT/t/<tenant>/, a host under the configured base domain, or an x-namespace header")]
    NoTenant,
    /// The path and the `x-namespace` header name different tenants.
    #[error("the path names tenant {path:?} but x-namespace names {header:?}")]
    ConflictingTenant {
        /// The tenant in the path.
        path: String,
        /// The tenant in the header.
        header: String,
    },
    /// A client URL without the trailing slash (`/t/v2/pipeline`).
    #[error("no tenant in this URL: the client URL needs its trailing slash, e.g. {hint} (without it, clients resolve `v2/pipeline` against /t/ and drop the tenant)")]
    MissingSlash {
        /// The URL to use instead.
        hint: String,
    },
    /// A Hrana protocol error: a bad baton, an expired stream, a request the protocol forbids
    /// (the stream is not continued), or a body that does not parse.
    #[error("{message}")]
    Protocol {
        /// The Hrana code (`BATON_INVALID`, `BATON_REUSED`, `STREAM_EXPIRED`, `SQL_NOT_FOUND`, …).
        code: &'static str,
        /// What went wrong.
        message: String,
    },
    /// A legacy (`/v1/*`, `POST /`) statement failed: HTTP 400 with the statement's error.
    #[error("{}", .0.message)]
    Statement(hrana::proto::Error),
    /// A new stream would pass the cap on live streams of the tenant (429) or of the node (503).
    #[error(transparent)]
    TooManyStreams(#[from] hrana::stream_table::TooManyStreams),
    /// A protocol variant tenantd does not serve (Protobuf, WebSocket).
    #[error("{0}")]
    NotServed(&'static str),
}

impl SqlError {
    /// The machine-readable code, the status, and the reason counted in the metrics.
    pub fn parts(&self) -> (String, StatusCode, &'static str) {
        let own = |code: &'static str, status| (code.to_owned(), status, code);
        match self {
            SqlError::Api(e) => {
                let (code, status) = e.code_and_status();
                own(code, status)
            }
            SqlError::MissingToken => own("unauthorized", StatusCode::UNAUTHORIZED),
            SqlError::InvalidToken(e) => own(e.code(), StatusCode::UNAUTHORIZED),
            SqlError::WrongTenant => own("forbidden", StatusCode::FORBIDDEN),
            SqlError::NoTenant => own("no_tenant", StatusCode::BAD_REQUEST),
            SqlError::ConflictingTenant { .. } => {
                own("conflicting_tenant", StatusCode::BAD_REQUEST)
            }
            SqlError::MissingSlash { .. } => own("missing_trailing_slash", StatusCode::BAD_REQUEST),
            SqlError::Protocol { code, .. } => own(code, StatusCode::BAD_REQUEST),
            SqlError::Statement(e) => (
                e.code.clone().unwrap_or_else(|| "SQL_ERROR".to_owned()),
                StatusCode::BAD_REQUEST,
                "sql_statement_failed",
            ),
            SqlError::TooManyStreams(e) => match e {
                TooManyStreams::Owner { .. } => {
                    own("too_many_streams", StatusCode::TOO_MANY_REQUESTS)
                }
                TooManyStreams::Total { .. } => {
                    own("too_many_streams", StatusCode::SERVICE_UNAVAILABLE)
                }
            },
            SqlError::NotServed(_) => own("not_found", StatusCode::NOT_FOUND),
        }
    }

    /// A protocol error from a baton the stream table or codec refused.
    pub fn baton(code: &'static str, e: impl std::fmt::Display) -> Self {
        SqlError::Protocol {
            code,
            message: e.to_string(),
        }
    }
}

impl From<store::StoreError> for SqlError {
    fn from(e: store::StoreError) -> Self {
        SqlError::Api(e.into())
    }
}

impl From<store::inbox::InboxError> for SqlError {
    fn from(e: store::inbox::InboxError) -> Self {
        SqlError::Api(e.into())
    }
}

impl IntoResponse for SqlError {
    fn into_response(self) -> Response {
        let (code, status, reason) = self.parts();
        let misdirected = match &self {
            SqlError::Api(e) => e.misdirected(),
            _ => None,
        };
        let message = match &self {
            SqlError::Api(ApiError::Internal(detail)) => {
                crate::error::log_reject(status, &code, detail);
                "internal error".to_owned()
            }
            other => {
                crate::error::log_reject(status, &code, other);
                other.to_string()
            }
        };
        let mut body = json!({
            "error": {"code": code, "message": message},
            "message": message,
            "code": code,
        });
        crate::error::add_owner(&mut body["error"], misdirected);
        let mut resp = Response::new(Body::from(body.to_string()));
        *resp.status_mut() = status;
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        ) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        resp.extensions_mut().insert(RejectReason(reason));
        resp
    }
}
