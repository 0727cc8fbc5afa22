//! The legacy sqld shapes some clients still send: `POST v1/execute`, `POST v1/batch` (one
//! fresh stream per request, closed after it) and `POST /` with `{"statements": [...]}` (one
//! transaction). Each runs inside the tenant SQL guard, on a reader when every statement is
//! read-only (see [`super::reader`]), else on the tenant's writer; a failing statement is HTTP
//! 400 with its Hrana error (`POST /` reports it in the array instead).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use hrana::exec::{legacy, looks_read_only, prepares_read_only};
use hrana::guard::Cancel;
use hrana::proto::legacy::V1ExecuteResp;
use hrana::proto::legacy::{LegacyQueryResult, QueryBody, V1BatchReq, V1BatchResp, V1ExecuteReq};
use rusqlite::Connection;

use super::error::SqlError;
use super::pipeline::{parse_body, with_guard, writer_for};
use super::reader::try_reader;
use super::tenant::SqlTenant;
use crate::state::AppState;

/// `POST v1/execute`: `{stmt}` → `{result}`. Errors: as a pipeline's, plus the statement's
/// failure (400 with its code).
pub async fn v1_execute(
    State(st): State<AppState>,
    tenant: SqlTenant,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<V1ExecuteResp>, SqlError> {
    let req: V1ExecuteReq = parse_body(body, &st)?;
    let stream_cfg = st.sql.config.stream.clone();
    let sqls = vec![req.stmt.sql.clone()];
    run(&st, &tenant, sqls, move |conn| {
        legacy::v1_execute(conn, req, &stream_cfg).map_err(SqlError::Statement)
    })
    .await
    .map(Json)
}

/// `POST v1/batch`: `{batch}` → `{result}` (step failures are in the result). Errors: as
/// [`v1_execute`].
pub async fn v1_batch(
    State(st): State<AppState>,
    tenant: SqlTenant,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<V1BatchResp>, SqlError> {
    let req: V1BatchReq = parse_body(body, &st)?;
    let stream_cfg = st.sql.config.stream.clone();
    let sqls = req.batch.steps.iter().map(|s| s.stmt.sql.clone()).collect();
    run(&st, &tenant, sqls, move |conn| {
        legacy::v1_batch(conn, req, &stream_cfg).map_err(SqlError::Statement)
    })
    .await
    .map(Json)
}

/// `POST /` (the tenant root): every statement in one transaction; the first failure rolls
/// back and ends the array with `{"error": ...}`. Errors: as [`v1_execute`], and 400
/// `TRANSACTION_NOT_ALLOWED` for BEGIN/COMMIT/… statements.
pub async fn query(
    State(st): State<AppState>,
    tenant: SqlTenant,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Vec<LegacyQueryResult>>, SqlError> {
    let req: QueryBody = parse_body(body, &st)?;
    let stream_cfg = st.sql.config.stream.clone();
    let sqls = req.statements.iter().map(|q| Some(q.q.clone())).collect();
    run(&st, &tenant, sqls, move |conn| {
        legacy::query(conn, req, &stream_cfg).map_err(SqlError::Statement)
    })
    .await
    .map(Json)
}

/// Runs `f` inside the guard (one time budget for the whole request): on a reader if every
/// statement of `sqls` is read-only (`None`: a statement without SQL text, never), else on the
/// tenant's writer. The legacy executors always leave the connection outside a transaction, so
/// a cancelled request cannot leave one open; dropping this future (the client disconnected)
/// interrupts `f`.
async fn run<R, F>(
    st: &AppState,
    tenant: &SqlTenant,
    sqls: Vec<Option<String>>,
    f: F,
) -> Result<R, SqlError>
where
    R: Send + 'static,
    F: FnOnce(&Connection) -> Result<R, SqlError> + Send + 'static,
{
    let cancel = Cancel::new();
    let on_drop = cancel.on_drop();
    let mut f = f;
    if sqls
        .iter()
        .all(|s| s.as_deref().is_some_and(looks_read_only))
    {
        let ran = try_reader(st, tenant, cancel.clone(), f, move |f, conn| {
            if sqls
                .iter()
                .flatten()
                .all(|sql| prepares_read_only(conn, sql))
            {
                Ok(f(conn))
            } else {
                Err(f)
            }
        })
        .await?;
        match ran {
            Ok(result) => {
                on_drop.disarm();
                return result;
            }
            Err(back) => f = back,
        }
    }
    let writer = writer_for(st, tenant, None).await?;
    let cfg = st.sql.config.guard.clone();
    let read_only = tenant.read_only();
    let (_writer, result) = writer
        .run(move |conn| with_guard(conn, &cfg, read_only, cancel, f))
        .await?;
    on_drop.disarm();
    result
}
