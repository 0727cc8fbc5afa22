//! `POST v2/pipeline` and `POST v3/pipeline` on a tenant, and what the cursor and legacy
//! routes share with them (writer, guard, body parsing).
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

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use hrana::exec::{looks_read_only, prepares_read_only, ProtocolError, Stream};
use hrana::guard::{Cancel, Guard, GuardConfig};
use hrana::proto::{PipelineReqBody, PipelineRespBody, StreamRequest, StreamResult};
use rusqlite::Connection;
use serde::de::DeserializeOwned;
use store::WriterGuard;

use super::error::SqlError;
use super::reader::try_reader;
use super::streams::Held;
use super::tenant::SqlTenant;
use crate::error::ApiError;
use crate::routes::hooks::body_error;
use crate::state::AppState;

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
    let (id, held) = st
        .sql
        .streams
        .take(
            &tenant.id,
            body.baton.as_deref(),
            will_close,
            &st.sql.config.stream,
        )
        .await?;
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
    let mut stream = held.stream;
    let mut requests = body.requests;
    if held.writer.is_none() && stream.reads_only(&requests, looks_read_only) {
        let work = (stream, requests);
        let cancel2 = cancel.clone();
        let ran = try_reader(&st, &tenant, cancel.clone(), work, move |work, conn| {
            let (mut stream, requests) = work;
            if !stream.reads_only(&requests, |sql| prepares_read_only(conn, sql)) {
                return Err((stream, requests));
            }
            let outcome = run_requests(&mut stream, conn, requests, &cancel2);
            Ok((stream, outcome))
        })
        .await;
        match ran {
            Ok(Ok((stream, outcome))) => {
                return finish(&st, &tenant, id, stream, outcome, None).await
            }
            Ok(Err((s, r))) => (stream, requests) = (s, r),
            Err(e) => {
                streams.forget(id);
                return Err(e);
            }
        }
    }
    let writer = match writer_for(&st, &tenant, held.writer).await {
        Ok(w) => w,
        Err(e) => {
            streams.forget(id);
            return Err(e);
        }
    };
    let cfg = st.sql.config.guard.clone();
    let read_only = tenant.read_only();
    let ran = writer
        .run(move |conn| {
            let outcome = with_guard(conn, &cfg, read_only, cancel.clone(), |guard| {
                Ok(run_requests(&mut stream, guard, requests, &cancel))
            })
            .and_then(|outcome| outcome);
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
    finish(&st, &tenant, id, stream, outcome, in_txn.then_some(writer)).await
}

/// Runs a pipeline's requests on `conn` (guarded); a stream that broke the protocol or whose
/// request was cancelled is abandoned (its client never sees the next baton).
fn run_requests(
    stream: &mut Stream,
    conn: &Connection,
    requests: Vec<StreamRequest>,
    cancel: &Cancel,
) -> Result<Vec<StreamResult>, SqlError> {
    let outcome = stream
        .execute_pipeline(conn, requests)
        .map_err(protocol_error);
    if outcome.is_err() || cancel.is_cancelled() {
        abandon_in_place(stream, conn);
    }
    outcome
}

/// After a pipeline ran: forgets a closed or broken stream, else keeps it for the next baton
/// (with `writer` if its transaction is open) and answers.
async fn finish(
    st: &AppState,
    tenant: &SqlTenant,
    id: Option<u64>,
    stream: Stream,
    outcome: Result<Vec<StreamResult>, SqlError>,
    writer: Option<WriterGuard>,
) -> Result<Json<PipelineRespBody>, SqlError> {
    let streams = &st.sql.streams;
    let results = match outcome {
        Ok(results) => results,
        Err(e) => {
            streams.forget(id);
            return Err(e);
        }
    };
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
pub(crate) fn abandon_in_place(stream: &mut Stream, conn: &Connection) {
    if let Err(e) = stream.abandon(conn) {
        tracing::error!(error = %e, "cannot roll back a failed stream");
    }
}

pub(crate) fn protocol_error(e: ProtocolError) -> SqlError {
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
