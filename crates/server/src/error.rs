//! The one error type of the HTTP API and its mapping to responses.
//!
//! Every failure a client can see is a variant here with a fixed `code` string and status; the
//! body is always `{"error": {"code": "...", "message": "..."}}`. There is no catch-all arm: a
//! new store error forces a status decision in `From<StoreError>`. Each rejection is logged once,
//! here, with its code and reason ([`log_reject`]: 5xx at error, load shedding at warn, refused
//! credentials and signatures at info, other 4xx at debug), inside the request's span (which
//! carries `request_id` and `tenant`).

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use store::inbox::InboxError;
use store::{NameError, StoreError, TenantId};

/// Seconds a client is told to wait after a 429 or 503.
pub const RETRY_AFTER_SECS: u64 = 1;

/// A client-visible failure.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The tenant id in the path is not a valid id.
    #[error("invalid tenant id: {0}")]
    InvalidTenantId(NameError),
    /// The webhook source name in the path is not valid.
    #[error("invalid source name: {0}")]
    InvalidSource(NameError),
    /// A query parameter or JSON body field is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// Missing or wrong bearer token.
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// The webhook signature did not verify.
    #[error("webhook signature rejected: {0}")]
    InvalidSignature(String),
    /// The tenant's webhook policy refuses this source (unknown, or configured without a
    /// signature scheme).
    #[error("{0}")]
    SourceNotAllowed(String),
    /// The source's stored verification settings (or the tenant's stored policy) cannot be
    /// read: the delivery is refused, never accepted unverified. Details are logged.
    #[error("this webhook source's verification settings are unreadable on the server; the delivery was not stored (retry after the operator fixes them)")]
    HookMisconfigured(String),
    /// No verification settings for this source.
    #[error("no webhook settings for this source")]
    HookNotFound,
    /// The route exists, but not for this method.
    #[error("method {0} is not allowed here")]
    MethodNotAllowed(String),
    /// The client did not send its whole body in time.
    #[error("request body not received within {0:?}; send the whole body promptly")]
    RequestTimeout(Duration),
    /// No such tenant.
    #[error("tenant not found")]
    TenantNotFound,
    /// No such route.
    #[error("no route for {0}")]
    NoRoute(String),
    /// The tenant already exists.
    #[error("tenant already exists")]
    TenantExists,
    /// The tenant is in use by another operation.
    #[error("{0}")]
    TenantBusy(String),
    /// The body is larger than the configured limit.
    #[error("request body larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// Too many writes queued for this tenant.
    #[error("too many writes queued for this tenant; retry later")]
    TenantOverloaded,
    /// Too many requests in flight, or too many tenants in use.
    #[error("{0}; retry later")]
    Overloaded(&'static str),
    /// The tenant's size quota is used up.
    #[error("tenant size quota exceeded")]
    QuotaExceeded,
    /// The disk is full.
    #[error("disk full")]
    DiskFull,
    /// The tenant is behind the configured migrations and migrating it failed.
    #[error("{0}")]
    MigrationFailed(String),
    /// The server is shutting down.
    #[error("server is shutting down")]
    ShuttingDown,
    /// The node's (or the tenant's) backlog of acknowledged but unapplied webhooks is at its
    /// cap: retry after `Retry-After`.
    #[error("{0}; retry later")]
    IngestBacklog(String),
    /// The ingest log cannot take deliveries right now (a failed write or sync).
    #[error("{0}; retry later")]
    IngestUnavailable(String),
    /// Another node owns the tenant (cluster mode): retry there.
    #[error(
        "tenant {tenant} is served by node {owner} (slot table epoch {epoch}), not by this node"
    )]
    Misdirected {
        /// The tenant asked for.
        tenant: TenantId,
        /// The node this node's table gives it to.
        owner: String,
        /// The epoch of that table.
        epoch: u64,
    },
    /// The tenant moved to another node (this node keeps its old file for a grace period).
    #[error("tenant has moved to node {owner}")]
    MovedAway {
        /// Its new owner.
        owner: String,
    },
    /// The tenant is being moved to another node right now: retry shortly.
    #[error("tenant is being moved to another node; retry shortly")]
    TenantMoving,
    /// A move's fence is gone (it expired or was lifted): the move must start again.
    #[error("{0}")]
    FenceExpired(String),
    /// An imported file is not what was sent, or not a sound tenant database.
    #[error("{0}")]
    ImportRefused(String),
    /// A slot table older than (or conflicting with) the one this node has.
    #[error("{0}")]
    StaleTable(String),
    /// An unexpected internal failure (I/O or SQLite); details are logged, not returned.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The stable machine-readable code and the HTTP status.
    pub fn code_and_status(&self) -> (&'static str, StatusCode) {
        use ApiError::*;
        match self {
            InvalidTenantId(_) => ("invalid_tenant_id", StatusCode::BAD_REQUEST),
            InvalidSource(_) => ("invalid_source", StatusCode::BAD_REQUEST),
            BadRequest(_) => ("bad_request", StatusCode::BAD_REQUEST),
            Unauthorized => ("unauthorized", StatusCode::UNAUTHORIZED),
            InvalidSignature(_) => ("invalid_signature", StatusCode::UNAUTHORIZED),
            SourceNotAllowed(_) => ("source_not_allowed", StatusCode::FORBIDDEN),
            HookMisconfigured(_) => ("hook_misconfigured", StatusCode::INTERNAL_SERVER_ERROR),
            HookNotFound => ("hook_not_found", StatusCode::NOT_FOUND),
            MethodNotAllowed(_) => ("method_not_allowed", StatusCode::METHOD_NOT_ALLOWED),
            RequestTimeout(_) => ("request_timeout", StatusCode::REQUEST_TIMEOUT),
            TenantNotFound => ("tenant_not_found", StatusCode::NOT_FOUND),
            NoRoute(_) => ("not_found", StatusCode::NOT_FOUND),
            TenantExists => ("tenant_exists", StatusCode::CONFLICT),
            TenantBusy(_) => ("tenant_busy", StatusCode::CONFLICT),
            PayloadTooLarge(_) => ("payload_too_large", StatusCode::PAYLOAD_TOO_LARGE),
            TenantOverloaded => ("tenant_overloaded", StatusCode::TOO_MANY_REQUESTS),
            Overloaded(_) => ("overloaded", StatusCode::SERVICE_UNAVAILABLE),
            QuotaExceeded => ("quota_exceeded", StatusCode::INSUFFICIENT_STORAGE),
            DiskFull => ("disk_full", StatusCode::INSUFFICIENT_STORAGE),
            MigrationFailed(_) => ("migration_failed", StatusCode::SERVICE_UNAVAILABLE),
            ShuttingDown => ("shutting_down", StatusCode::SERVICE_UNAVAILABLE),
            IngestBacklog(_) => ("ingest_backlog", StatusCode::SERVICE_UNAVAILABLE),
            IngestUnavailable(_) => ("ingest_unavailable", StatusCode::SERVICE_UNAVAILABLE),
            Misdirected { .. } => ("misdirected", StatusCode::MISDIRECTED_REQUEST),
            MovedAway { .. } => ("misdirected", StatusCode::MISDIRECTED_REQUEST),
            TenantMoving => ("tenant_moving", StatusCode::SERVICE_UNAVAILABLE),
            FenceExpired(_) => ("fence_expired", StatusCode::CONFLICT),
            ImportRefused(_) => ("import_refused", StatusCode::UNPROCESSABLE_ENTITY),
            StaleTable(_) => ("stale_table", StatusCode::CONFLICT),
            Internal(_) => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

impl ApiError {
    /// For a 421: the owner and the table epoch (none for a tenant that moved away), which
    /// the error body carries.
    pub fn misdirected(&self) -> Option<(String, Option<u64>)> {
        match self {
            ApiError::Misdirected { owner, epoch, .. } => Some((owner.clone(), Some(*epoch))),
            ApiError::MovedAway { owner } => Some((owner.clone(), None)),
            _ => None,
        }
    }
}

/// Adds `owner` and `epoch` to an error object (a 421 names where the tenant is served).
pub fn add_owner(error: &mut serde_json::Value, misdirected: Option<(String, Option<u64>)>) {
    if let Some((owner, epoch)) = misdirected {
        error["owner"] = owner.into();
        if let Some(epoch) = epoch {
            error["epoch"] = epoch.into();
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::TenantNotFound,
            StoreError::AlreadyExists => ApiError::TenantExists,
            StoreError::Busy(why) => ApiError::TenantBusy(why.to_owned()),
            StoreError::QueueFull => ApiError::TenantOverloaded,
            StoreError::PoolExhausted => ApiError::Overloaded("too many tenants in use"),
            StoreError::QuotaExceeded => ApiError::QuotaExceeded,
            StoreError::DiskFull => ApiError::DiskFull,
            StoreError::MigrationFailed(why) => ApiError::MigrationFailed(why),
            StoreError::ShuttingDown => ApiError::ShuttingDown,
            StoreError::Moving { .. } => ApiError::TenantMoving,
            StoreError::Moved { to } => ApiError::MovedAway { owner: to },
            StoreError::Sqlite(e) => ApiError::Internal(format!("sqlite: {e}")),
            StoreError::Io(e) => ApiError::Internal(format!("io: {e}")),
        }
    }
}

impl From<InboxError> for ApiError {
    fn from(e: InboxError) -> Self {
        match e {
            InboxError::UnknownTenant => ApiError::TenantNotFound,
            e @ (InboxError::BacklogFull | InboxError::TenantBacklogFull) => {
                ApiError::IngestBacklog(e.to_string())
            }
            InboxError::DiskFull => ApiError::DiskFull,
            InboxError::QuotaExceeded => ApiError::QuotaExceeded,
            InboxError::MigrationFailed(why) => ApiError::MigrationFailed(why),
            InboxError::ShuttingDown => ApiError::ShuttingDown,
            e @ (InboxError::OriginalFailed | InboxError::Log(_)) => {
                ApiError::IngestUnavailable(e.to_string())
            }
            InboxError::Catalog(e) => ApiError::Internal(format!("catalog: {e}")),
            InboxError::Store(e) => e.into(),
        }
    }
}

/// Marks a response as a rejection, so the metrics layer can count it by reason.
#[derive(Debug, Clone, Copy)]
pub struct RejectReason(pub &'static str);

/// Logs one rejection once, at the level its status calls for (a full ingest backlog at debug:
/// it is shed per delivery and counted in the metrics): 5xx at error (load shedding —
/// `overloaded`, `shutting_down` — at warn), refused credentials, permissions and signatures
/// (401, 403) at info, every other 4xx at debug. The SQL routes' errors use it too.
pub fn log_reject(status: StatusCode, code: &str, reason: &dyn std::fmt::Display) {
    let status = status.as_u16();
    if code == "ingest_backlog" {
        // Shed at the rate deliveries arrive: counted in tenantd_ingest_refused_total, and the
        // appliers' own progress is what an operator needs to see.
        tracing::debug!(status, code, reason = %reason, "request rejected");
    } else if matches!(code, "overloaded" | "shutting_down") {
        tracing::warn!(status, code, reason = %reason, "request rejected");
    } else if status >= 500 {
        tracing::error!(status, code, reason = %reason, "request failed");
    } else if matches!(status, 401 | 403) {
        tracing::info!(status, code, reason = %reason, "request rejected");
    } else {
        tracing::debug!(status, code, reason = %reason, "request rejected");
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, status) = self.code_and_status();
        let misdirected = self.misdirected();
        let message = match &self {
            ApiError::Internal(detail) | ApiError::HookMisconfigured(detail) => {
                log_reject(status, code, detail);
                match self {
                    ApiError::Internal(_) => "internal error".to_owned(),
                    other => other.to_string(),
                }
            }
            other => {
                log_reject(status, code, other);
                other.to_string()
            }
        };
        let mut body = serde_json::json!({"error": {"code": code, "message": message}});
        add_owner(&mut body["error"], misdirected);
        let mut resp = (status, axum::Json(body)).into_response();
        if matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        ) {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        resp.extensions_mut().insert(RejectReason(code));
        resp
    }
}
