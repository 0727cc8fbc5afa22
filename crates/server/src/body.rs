//! Bounded request bodies: a size limit checked before any byte is read, and a deadline on
//! receiving the whole body.
//!
//! hyper times out only the headers; a client that declares `Content-Length: 100` and sends 3
//! bytes would otherwise hold its in-flight slot (and a task) for as long as it keeps the socket
//! open. [`guard`] answers `413 payload_too_large` from the declared length alone (so an
//! `Expect: 100-continue` client is refused before hyper sends `100 Continue`), and gives the body
//! a deadline `body_read_timeout` after the headers: a handler still waiting for body bytes then
//! is dropped and the client gets `408 request_timeout`, which ends the request and frees its
//! slot. The body still streams to the handler, read by its extractor after the tenant and the
//! token are checked, so an unauthenticated client never gets a body buffered.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::error::ApiError;

/// The bounds of one group of routes' bodies.
#[derive(Debug, Clone, Copy)]
pub struct BodyRule {
    /// Largest accepted body, bytes.
    pub limit: usize,
    /// Time allowed to receive the whole body.
    pub timeout: Duration,
}

/// Middleware: refuses a declared length over `rule.limit` (413) without reading, and answers
/// 408 if the handler is still waiting for body bytes `rule.timeout` after the headers. The
/// size limit of a body without a declared length is the route's `DefaultBodyLimit` (413).
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
    let deadline = Instant::now() + rule.timeout;
    let (timed_out, on_timeout) = oneshot::channel();
    let (parts, body) = req.into_parts();
    let body = Body::from_stream(with_deadline(body, deadline, timed_out));
    tokio::select! {
        resp = next.run(Request::from_parts(parts, body)) => resp,
        // Fires only if the body stream hit the deadline; a finished body drops the sender.
        Ok(()) = on_timeout => ApiError::RequestTimeout(rule.timeout).into_response(),
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

/// `body`'s chunks until `deadline`; past it, signals `timed_out` and yields nothing more (the
/// middleware then answers 408 and drops the handler, so the handler never sees a half body).
fn with_deadline(
    body: Body,
    deadline: Instant,
    timed_out: oneshot::Sender<()>,
) -> impl Stream<Item = Result<Bytes, axum::Error>> + Send + 'static {
    let state = (body.into_data_stream(), Some(timed_out));
    futures_util::stream::unfold(state, move |(mut data, mut signal)| async move {
        match tokio::time::timeout_at(deadline, data.next()).await {
            Ok(Some(chunk)) => Some((chunk, (data, signal))),
            Ok(None) => None,
            Err(_elapsed) => {
                if let Some(tx) = signal.take() {
                    let _ = tx.send(());
                }
                std::future::pending().await
            }
        }
    })
}
