//! Bounded request bodies: every body is read whole, within a size limit and a time limit,
//! before a handler runs.
//!
//! hyper times out only the headers; a client that declares `Content-Length: 100` and sends 3
//! bytes would otherwise hold its in-flight slot (and a task) for as long as it keeps the socket
//! open. [`guard`] answers `413 payload_too_large` from the declared length alone (so an
//! `Expect: 100-continue` client is refused before hyper sends `100 Continue` and before any body
//! byte is read), reads the body within `body_read_timeout` (past it: `408 request_timeout`,
//! which ends the request and frees its slot), and hands the handler the buffered body.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use crate::error::ApiError;

/// The bounds of one group of routes' bodies.
#[derive(Debug, Clone, Copy)]
pub struct BodyRule {
    /// Largest accepted body, bytes.
    pub limit: usize,
    /// Time allowed to receive the whole body.
    pub timeout: Duration,
}

/// Middleware: refuses a declared length over `rule.limit` (413) without reading, reads the body
/// within `rule.timeout` (408) and `rule.limit` (413), then runs the handler on the bytes.
pub async fn guard(State(rule): State<BodyRule>, req: Request, next: Next) -> Response {
    let declared = declared_length(req.headers());
    if declared.is_some_and(|n| n > rule.limit as u64) {
        return ApiError::PayloadTooLarge(rule.limit).into_response();
    }
    // HTTP/1.1: a request with neither header has no body.
    let chunked = req.headers().contains_key(header::TRANSFER_ENCODING);
    if !chunked && declared.unwrap_or(0) == 0 {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let capacity = declared.map_or(0, |n| n as usize);
    match tokio::time::timeout(rule.timeout, read_all(body, rule.limit, capacity)).await {
        Err(_elapsed) => ApiError::RequestTimeout(rule.timeout).into_response(),
        Ok(Err(e)) => e.into_response(),
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    }
}

/// The `Content-Length` the client declared (hyper has already refused malformed ones).
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The whole body, or 413 past `limit`, or 400 if the connection fails mid-body.
async fn read_all(body: Body, limit: usize, capacity: usize) -> Result<Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    let mut buf: Vec<u8> = Vec::with_capacity(capacity.min(limit));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("cannot read body: {e}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}
