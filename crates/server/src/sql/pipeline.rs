//! `POST v2/pipeline`, `POST v3/pipeline` and `POST v3/cursor` on a tenant.
//!
//! A request takes its stream (a fresh one, or the one its baton names), takes the tenant's
//! writer unless the stream already holds it, and runs the requests on the writer's blocking
//! thread inside the tenant SQL guard. Afterwards the stream is closed (a `close` request),
//! forgotten (a protocol error: its transaction is rolled back first), or kept for the next
//! baton — keeping the writer only while a transaction is open. The work after the stream is
//! taken runs in its own task, so a client that disconnects mid-request cannot leave a stream
//! half-returned or a transaction open on a released writer. A disconnect cancels the request
//! (`hrana::guard::Cancel`): its running statement is interrupted, its transaction rolled back
//! and its stream dropped (nobody holds the next baton), which frees the tenant's writer.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hrana::exec::{ProtocolError, Stream};
use hrana::guard::{Cancel, Guard, GuardConfig};
use hrana::proto::{
    CursorEntry, CursorReqBody, CursorRespBody, PipelineReqBody, PipelineRespBody, StreamRequest,
    StreamResult,
};
use rusqlite::Connection;
use serde::de::DeserializeOwned;
use store::WriterGuard;

use super::error::SqlError;
use super::streams::Held;
use super::tenant::SqlTenant;
use crate::error::ApiError;
use crate::routes::hooks::body_error;
use crate::state::AppState;

/// Lines buffered between the executor thread and the response body of a cursor.
const CURSOR_CHANNEL: usize = 64;

/// Answers a pipeline with one result per request, and the baton of the stream (`null` once
/// closed). Errors: body (400/413), baton (400), tenant (404), pool (429/503), a protocol
/// error (400; the stream is dropped and its transaction rolled back).
pub async fn pipeline(
    State(st): State<AppState>,
    tenant: SqlTenant,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<PipelineRespBody>, SqlError> {
    let body: PipelineReqBody = parse_body(body, &st)?;
    let will_close = body
        .requests
        .iter()
        .any(|r| matches!(r, StreamRequest::Close));
    let (id, held) = st.sql.streams.take(
        &tenant.id,
        body.baton.as_deref(),
        will_close,
        &st.sql.config.stream,
    )?;
    // Dropping this future (the client disconnected) cancels the work, which runs on.
    let cancel = Cancel::new();
    let on_drop = cancel.on_drop();
    let work = tokio::spawn(run_pipeline(st, tenant, id, held, body, cancel));
    let answer = work
        .await
        .map_err(|e| SqlError::Api(ApiError::Internal(format!("pipeline task: {e}"))))?;
    on_drop.disarm();
    answer
}

async fn run_pipeline(
    st: AppState,
    tenant: SqlTenant,
    id: Option<u64>,
    held: Held,
    body: PipelineReqBody,
    cancel: Cancel,
) -> Result<Json<PipelineRespBody>, SqlError> {
    let streams = &st.sql.streams;
    let writer = match writer_for(&st, &tenant, held.writer).await {
        Ok(w) => w,
        Err(e) => {
            streams.forget(id);
            return Err(e);
        }
    };
    let cfg = st.sql.config.guard.clone();
    let read_only = tenant.read_only();
    let mut stream = held.stream;
    let ran = writer
        .run(move |conn| {
            let outcome = with_guard(conn, &cfg, read_only, cancel.clone(), |guard| {
                stream
                    .execute_pipeline(guard, body.requests)
                    .map_err(protocol_error)
            });
            // A cancelled request's client never sees the next baton: close the stream.
            if outcome.is_err() || cancel.is_cancelled() {
                abandon_in_place(&mut stream, conn);
            }
            (stream, outcome, !conn.is_autocommit())
        })
        .await;
    let (writer, (stream, outcome, in_txn)) = match ran {
        Ok(done) => done,
        Err(e) => {
            streams.forget(id);
            return Err(e.into());
        }
    };
    let results: Vec<StreamResult> = match outcome {
        Ok(results) => results,
        Err(e) => {
            streams.forget(id);
            return Err(e);
        }
    };
    let writer = in_txn.then_some(writer);
    let baton = match id {
        _ if stream.is_closed() => {
            streams.forget(id);
            None
        }
        Some(id) => streams.put_back(&tenant.id, id, Held { stream, writer }),
        None => {
            // Unreachable: a pipeline without `close` on a new stream was registered up front.
            tracing::error!(tenant = %tenant.id, "an unregistered stream stayed open");
            super::streams::abandon(Held { stream, writer }).await;
            None
        }
    };
    Ok(Json(PipelineRespBody {
        baton,
        base_url: st.sql.config.base_url(tenant.id.as_str()),
        results,
    }))
}

/// Answers a batch as JSON lines: the `{baton, base_url}` line, then the batch's entries
/// (`step_begin`, `row`, `step_end`, `step_error`; a final `error` on a protocol error).
/// Errors before the first line as for [`pipeline`].
pub async fn cursor(
    State(st): State<AppState>,
    tenant: SqlTenant,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, SqlError> {
    let body: CursorReqBody = parse_body(body, &st)?;
    let (id, held, next_baton) =
        st.sql
            .streams
            .take_registered(&tenant.id, body.baton.as_deref(), &st.sql.config.stream)?;
    let head = CursorRespBody {
        baton: Some(next_baton),
        base_url: st.sql.config.base_url(tenant.id.as_str()),
    };
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(CURSOR_CHANNEL);
    // Dropping the response body (or this future, before the body exists) cancels the work.
    let cancel = Cancel::new();
    let on_drop = cancel.on_drop();
    tokio::spawn(async move {
        let streams = st.sql.streams.clone();
        let writer = match writer_for(&st, &tenant, held.writer).await {
            Ok(w) => w,
            Err(e) => {
                streams.forget(Some(id));
                let _ = ready_tx.send(Err(e));
                return;
            }
        };
        let _ = ready_tx.send(Ok(()));
        // The body ends when the last sender is gone: keep one until the stream is back in
        // the table, so a client that reads to the end can use the next baton at once.
        let body_open = tx.clone();
        let cfg = st.sql.config.guard.clone();
        let read_only = tenant.read_only();
        let mut stream = held.stream;
        let ran = writer
            .run(move |conn| {
                let mut emit = |entry: CursorEntry| tx.blocking_send(entry.to_json_line()).is_ok();
                let outcome = with_guard(conn, &cfg, read_only, cancel.clone(), |guard| {
                    stream
                        .cursor(guard, &body.batch, &mut emit)
                        .map_err(protocol_error)
                });
                if let Err(e) = &outcome {
                    let (code, _, _) = e.parts();
                    emit(CursorEntry::Error {
                        error: hrana::proto::Error {
                            message: e.to_string(),
                            code: Some(code),
                        },
                    });
                    abandon_in_place(&mut stream, conn);
                } else if cancel.is_cancelled() {
                    // The client is gone, and with it the next baton.
                    abandon_in_place(&mut stream, conn);
                }
                (stream, outcome.is_ok(), !conn.is_autocommit())
            })
            .await;
        match ran {
            Ok((_, (stream, _, _))) if stream.is_closed() => streams.forget(Some(id)),
            Ok((writer, (stream, true, in_txn))) => {
                let writer = in_txn.then_some(writer);
                streams.put_back(&tenant.id, id, Held { stream, writer });
            }
            Ok(_) => streams.forget(Some(id)),
            Err(e) => {
                tracing::error!(tenant = %tenant.id, error = %e, "cursor failed");
                streams.forget(Some(id));
            }
        }
        drop(body_open);
    });
    match ready_rx.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(ApiError::Internal("cursor task ended early".into()).into()),
    }
    let first = futures_util::stream::once(async move { Ok(head.to_json_line()) });
    let rest =
        futures_util::stream::unfold((rx, Some(on_drop)), |(mut rx, mut on_drop)| async move {
            match rx.recv().await {
                Some(line) => Some((Ok(line), (rx, on_drop))),
                None => {
                    // The whole batch was delivered: the end of the body is not a disconnect.
                    if let Some(on_drop) = on_drop.take() {
                        on_drop.disarm();
                    }
                    None
                }
            }
        });
    let lines = futures_util::StreamExt::chain(first, rest);
    let lines =
        futures_util::StreamExt::map(lines, |l: Result<Vec<u8>, Infallible>| l.map(Bytes::from));
    let mut resp = Body::from_stream(lines).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(resp)
}

/// The stream's writer if it holds one, else the tenant's (waiting behind other writers).
/// Errors: unknown tenant (404), write queue full (429), pool exhausted or shutdown (503).
pub async fn writer_for(
    st: &AppState,
    tenant: &SqlTenant,
    held: Option<WriterGuard>,
) -> Result<WriterGuard, SqlError> {
    match held {
        Some(w) => Ok(w),
        None => Ok(st.pool.writer(&tenant.id).await?),
    }
}

/// Runs `f` on `conn` inside the tenant SQL guard, on the current (blocking) thread; the guard's
/// one time budget covers everything `f` runs, and setting `cancel` interrupts it.
/// The open-time settings the guard relies on (DEFENSIVE, untrusted schema, no extension
/// loading) are applied by the store to every connection and asserted on pool connections by
/// `the_guard_is_on_for_every_request` in tests/it/sql.rs; probing them here cost a query on
/// every request. Errors: the guard cannot be applied (500).
pub fn with_guard<R>(
    conn: &Connection,
    cfg: &GuardConfig,
    read_only: bool,
    cancel: Cancel,
    f: impl FnOnce(&Connection) -> Result<R, SqlError>,
) -> Result<R, SqlError> {
    let guard = Guard::enter_with(conn, cfg, read_only, cancel)
        .map_err(|e| SqlError::Api(ApiError::Internal(e.to_string())))?;
    f(&guard)
}

/// Rolls back what a stream left open after a failure; logs if even that fails.
fn abandon_in_place(stream: &mut Stream, conn: &Connection) {
    if let Err(e) = stream.abandon(conn) {
        tracing::error!(error = %e, "cannot roll back a failed stream");
    }
}

fn protocol_error(e: ProtocolError) -> SqlError {
    SqlError::Protocol {
        code: e.code(),
        message: e.to_string(),
    }
}

/// Parses a JSON body. Errors: too large (413), unreadable or not the expected shape (400).
pub fn parse_body<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
    st: &AppState,
) -> Result<T, SqlError> {
    let bytes = body.map_err(|e| body_error(&e, st.sql.config.max_body_bytes))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid request body: {e}")).into())
}
