//! `POST v3/cursor`: one batch answered as JSON lines while it runs.
//!
//! The stream is registered before anything runs, so the first line can carry the next baton.
//! The batch runs in its own task on a reader when it cannot write and the stream holds no
//! writer (see [`super::reader`]), else on the tenant's writer; entries go through a bounded
//! channel to the response body. The body ends only after the stream is back in the table, so
//! a client that reads to the end can use the next baton at once. Dropping the body (the
//! client went away, or stopped reading: the `libsql` crate drops a result it has read enough
//! of) cancels the batch. Outside a transaction the stream is kept if the first line (the next
//! baton) went out, since the client may go on with it (idle expiry reclaims it if not); a
//! request that comes with that baton while the cancelled batch winds down waits for it (see
//! [`Streams::take`]). A stream left inside a transaction, or before the first line, is
//! abandoned (rolled back) and dropped: the tenant's writer is free at once.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use hrana::exec::{looks_read_only, prepares_read_only, Stream};
use hrana::guard::{Cancel, CancelOnDrop};
use hrana::proto::{Batch, CursorEntry, CursorReqBody, CursorRespBody};
use parking_lot::Mutex;
use rusqlite::Connection;
use store::WriterGuard;
use tokio::sync::{mpsc, oneshot};

use super::error::SqlError;
use super::pipeline::{abandon_in_place, parse_body, protocol_error, with_guard, writer_for};
use super::reader::try_reader;
use super::streams::{Held, Streams};
use super::tenant::SqlTenant;
use crate::error::ApiError;
use crate::state::AppState;

/// Lines buffered between the executor thread and the response body of a cursor.
const CURSOR_CHANNEL: usize = 64;

/// Tells the handler whether the batch got a connection (then the body starts) or why not.
type Ready = Arc<Mutex<Option<oneshot::Sender<Result<(), SqlError>>>>>;

/// What became of the response: the batch's cancel flag (set when the body is dropped) and
/// whether the first line, with the next baton, went out.
#[derive(Clone, Default)]
struct Delivery {
    cancel: Cancel,
    head_sent: Arc<AtomicBool>,
}

impl Delivery {
    /// True if the client went away and the stream must not outlive it: it never saw the next
    /// baton, or the stream is in a transaction (kept, it would hold the tenant's writer until
    /// idle expiry; a client that really went away must not block the tenant that long).
    fn abandons(&self, conn: &Connection) -> bool {
        self.cancel.is_cancelled()
            && (!self.head_sent.load(Ordering::Acquire) || !conn.is_autocommit())
    }
}

fn signal(ready: &Ready, result: Result<(), SqlError>) {
    if let Some(tx) = ready.lock().take() {
        let _ = tx.send(result);
    }
}

/// Answers a batch as JSON lines: the `{baton, base_url}` line, then the batch's entries
/// (`step_begin`, `row`, `step_end`, `step_error`; a final `error` on a protocol error).
/// Errors before the first line: body (400/413), baton (400), stream caps (429/503), tenant
/// (404), pool (429/503).
pub async fn cursor(
    State(st): State<AppState>,
    tenant: SqlTenant,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, SqlError> {
    let body: CursorReqBody = parse_body(body, &st)?;
    let (id, held, next_baton) = st
        .sql
        .streams
        .take_registered(&tenant.id, body.baton.as_deref(), &st.sql.config.stream)
        .await?;
    let head = CursorRespBody {
        baton: Some(next_baton),
        base_url: st.sql.config.base_url(tenant.id.as_str()),
    };
    let (ready_tx, ready_rx) = oneshot::channel();
    let (tx, rx) = mpsc::channel::<Vec<u8>>(CURSOR_CHANNEL);
    // Dropping the response body (or this future, before the body exists) cancels the work.
    let delivery = Delivery::default();
    let on_drop = delivery.cancel.on_drop();
    let ready: Ready = Arc::new(Mutex::new(Some(ready_tx)));
    let job = Job {
        id,
        held,
        batch: body.batch,
    };
    let head_sent = delivery.head_sent.clone();
    tokio::spawn(run(st, tenant, job, tx, ready, delivery));
    match ready_rx.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(ApiError::Internal("cursor task ended early".into()).into()),
    }
    let mut resp = Body::from_stream(lines(head, head_sent, rx, on_drop)).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(resp)
}

/// The response body: the head line (noted in `head_sent`), then every line the batch sends.
fn lines(
    head: CursorRespBody,
    head_sent: Arc<AtomicBool>,
    rx: mpsc::Receiver<Vec<u8>>,
    on_drop: CancelOnDrop,
) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> {
    let first = futures_util::stream::once(async move {
        head_sent.store(true, Ordering::Release);
        Ok(head.to_json_line())
    });
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
    futures_util::StreamExt::map(lines, |l: Result<Vec<u8>, Infallible>| l.map(Bytes::from))
}

/// A cursor request's stream (registered as `id`) and its batch.
struct Job {
    id: u64,
    held: Held,
    batch: Batch,
}

async fn run(
    st: AppState,
    tenant: SqlTenant,
    job: Job,
    tx: mpsc::Sender<Vec<u8>>,
    ready: Ready,
    delivery: Delivery,
) {
    let streams = st.sql.streams.clone();
    // The body ends when the last sender is gone: keep one until the stream is back.
    let body_open = tx.clone();
    let Job { id, held, batch } = job;
    let (mut stream, mut batch, mut tx) = (held.stream, batch, tx);
    if held.writer.is_none() && stream.batch_reads_only(&batch, looks_read_only) {
        let (ready2, delivery2) = (ready.clone(), delivery.clone());
        let work = (stream, batch, tx);
        let ran = try_reader(
            &st,
            &tenant,
            delivery.cancel.clone(),
            work,
            move |work, conn| {
                let (mut stream, batch, tx) = work;
                if !stream.batch_reads_only(&batch, |sql| prepares_read_only(conn, sql)) {
                    return Err((stream, batch, tx));
                }
                signal(&ready2, Ok(()));
                let outcome = execute(&mut stream, conn, &batch, &tx);
                let ok = end(&mut stream, conn, outcome, &tx, &delivery2);
                Ok((stream, ok))
            },
        )
        .await;
        match ran {
            Ok(Ok((stream, ok))) => return keep_or_forget(&streams, &tenant, id, stream, ok, None),
            Ok(Err(work)) => (stream, batch, tx) = work,
            Err(e) => {
                streams.forget(Some(id));
                return signal(&ready, Err(e));
            }
        }
    }
    let writer = match writer_for(&st, &tenant, held.writer).await {
        Ok(w) => w,
        Err(e) => {
            streams.forget(Some(id));
            return signal(&ready, Err(e));
        }
    };
    signal(&ready, Ok(()));
    let cfg = st.sql.config.guard.clone();
    let read_only = tenant.read_only();
    let ran = writer
        .run(move |conn| {
            let outcome = with_guard(conn, &cfg, read_only, delivery.cancel.clone(), |guard| {
                execute(&mut stream, guard, &batch, &tx)
            });
            let ok = end(&mut stream, conn, outcome, &tx, &delivery);
            (stream, ok, !conn.is_autocommit())
        })
        .await;
    match ran {
        Ok((writer, (stream, ok, in_txn))) => {
            keep_or_forget(&streams, &tenant, id, stream, ok, in_txn.then_some(writer))
        }
        Err(e) => {
            tracing::error!(tenant = %tenant.id, error = %e, "cursor failed");
            streams.forget(Some(id));
        }
    }
    drop(body_open);
}

/// Runs the batch on a guarded connection, sending each entry as a line.
fn execute(
    stream: &mut Stream,
    conn: &Connection,
    batch: &Batch,
    tx: &mpsc::Sender<Vec<u8>>,
) -> Result<(), SqlError> {
    let mut emit = |entry: CursorEntry| tx.blocking_send(entry.to_json_line()).is_ok();
    stream
        .cursor(conn, batch, &mut emit)
        .map_err(protocol_error)
}

/// After the batch: a failure ends the body with an `error` line; a failed stream, or one
/// [`Delivery::abandons`] names, is abandoned (rolled back). True if the stream may be kept.
fn end(
    stream: &mut Stream,
    conn: &Connection,
    outcome: Result<(), SqlError>,
    tx: &mpsc::Sender<Vec<u8>>,
    delivery: &Delivery,
) -> bool {
    if let Err(e) = &outcome {
        let (code, _, _) = e.parts();
        let entry = CursorEntry::Error {
            error: hrana::proto::Error {
                message: e.to_string(),
                code: Some(code),
            },
        };
        let _ = tx.blocking_send(entry.to_json_line());
    }
    if outcome.is_err() || delivery.abandons(conn) {
        abandon_in_place(stream, conn);
    }
    outcome.is_ok() && !stream.is_closed()
}

fn keep_or_forget(
    streams: &Streams,
    tenant: &SqlTenant,
    id: u64,
    stream: Stream,
    ok: bool,
    writer: Option<WriterGuard>,
) {
    if ok {
        streams.put_back(&tenant.id, id, Held { stream, writer });
    } else {
        streams.forget(Some(id));
    }
}
