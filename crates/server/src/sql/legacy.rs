//! The legacy sqld shapes some clients still send: `POST v1/execute`, `POST v1/batch` (one
//! fresh stream per request, closed after it) and `POST /` with `{"statements": [...]}` (one
//! transaction). Each runs on the tenant's writer inside the tenant SQL guard; a failing
//! statement is HTTP 400 with its Hrana error (`POST /` reports it in the array instead).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use hrana::exec::legacy;
use hrana::guard::Cancel;
use hrana::proto::legacy::V1ExecuteResp;
use hrana::proto::legacy::{LegacyQueryResult, QueryBody, V1BatchReq, V1BatchResp, V1ExecuteReq};
use rusqlite::Connection;

use super::error::SqlError;
use super::pipeline::{parse_body, with_guard, writer_for};
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
    run(&st, &tenant, move |conn| {
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
    run(&st, &tenant, move |conn| {
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
    run(&st, &tenant, move |conn| {
        legacy::query(conn, req, &stream_cfg).map_err(SqlError::Statement)
    })
    .await
    .map(Json)
}

/// Runs `f` on the tenant's writer inside the guard (one time budget for the whole request).
/// The legacy executors always leave the connection outside a transaction, so a cancelled
/// request cannot leave one open; dropping this future (the client disconnected) interrupts `f`.
async fn run<R: Send + 'static>(
    st: &AppState,
    tenant: &SqlTenant,
    f: impl FnOnce(&Connection) -> Result<R, SqlError> + Send + 'static,
) -> Result<R, SqlError> {
    let cancel = Cancel::new();
    let on_drop = cancel.on_drop();
    let writer = writer_for(st, tenant, None).await?;
    let cfg = st.sql.config.guard.clone();
    let read_only = tenant.read_only();
    let (_writer, result) = writer
        .run(move |conn| with_guard(conn, &cfg, read_only, cancel, f))
        .await?;
    on_drop.disarm();
    result
}
