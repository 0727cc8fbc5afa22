//! Executes the legacy sqld HTTP shapes with the same executor as Hrana streams.
//! `/v1/execute` and `/v1/batch` behave like a fresh stream closed after the request (an open
//! transaction is rolled back). `POST /` runs its statements in one transaction: the first
//! failure rolls everything back and ends the response array with `{"error": ...}`.
//! Every `Err` here is answered with HTTP 400 and the `proto::Error` as JSON body.

use rusqlite::Connection;

use super::error::{ProtocolError, StmtError};
use super::readonly::first_keyword;
use super::stmt::ResultBudget;
use super::stream::{rollback_if_open, Stream, StreamConfig};
use crate::proto::legacy::{
    LegacyParams, LegacyQueryResult, QueryBody, V1BatchReq, V1BatchResp, V1ExecuteReq,
    V1ExecuteResp,
};
use crate::proto::{self, NamedArg, Stmt, StreamRequest, StreamResponse, StreamResult};

/// `POST /v1/execute`. Errors: the statement failed or the request broke the protocol.
pub fn v1_execute(
    conn: &Connection,
    req: V1ExecuteReq,
    cfg: &StreamConfig,
) -> Result<V1ExecuteResp, proto::Error> {
    match one_shot(conn, StreamRequest::Execute { stmt: req.stmt }, cfg)? {
        StreamResponse::Execute { result } => Ok(V1ExecuteResp { result }),
        other => unreachable!("execute answered with {other:?}"),
    }
}

/// `POST /v1/batch`. Errors: the request broke the protocol (step failures are in-band).
pub fn v1_batch(
    conn: &Connection,
    req: V1BatchReq,
    cfg: &StreamConfig,
) -> Result<V1BatchResp, proto::Error> {
    match one_shot(conn, StreamRequest::Batch { batch: req.batch }, cfg)? {
        StreamResponse::Batch { result } => Ok(V1BatchResp { result }),
        other => unreachable!("batch answered with {other:?}"),
    }
}

fn one_shot(
    conn: &Connection,
    req: StreamRequest,
    cfg: &StreamConfig,
) -> Result<StreamResponse, proto::Error> {
    let mut stream = Stream::new(cfg.clone());
    let result = stream.execute(conn, req);
    stream
        .abandon(conn)
        .map_err(|e| StmtError::from(e).to_proto())?;
    match result.map_err(|e| e.to_proto())? {
        StreamResult::Ok { response } => Ok(response),
        StreamResult::Error { error } => Err(error),
    }
}

/// `POST /` with `{"statements": [...]}`, all in one transaction. Errors: a statement is
/// transaction control, or the connection is already inside a transaction, or COMMIT failed.
pub fn query(
    conn: &Connection,
    body: QueryBody,
    cfg: &StreamConfig,
) -> Result<Vec<LegacyQueryResult>, proto::Error> {
    for q in &body.statements {
        if is_transaction_control(&q.q) {
            return Err(StmtError::TransactionControl(q.q.clone()).to_proto());
        }
    }
    if !conn.is_autocommit() {
        return Err(proto::Error {
            message: "the tenant connection is inside another transaction".into(),
            code: Some("TRANSACTION_BUSY".into()),
        });
    }
    let sql_err = |e: rusqlite::Error| StmtError::from(e).to_proto();
    conn.execute_batch("BEGIN").map_err(sql_err)?;
    let mut stream = Stream::new(cfg.clone());
    let mut budget = ResultBudget::new(cfg.max_result_bytes);
    let mut out = Vec::with_capacity(body.statements.len());
    for q in body.statements {
        let stmt = legacy_stmt(q.q, q.params);
        let result = stream.execute_with_budget(conn, StreamRequest::Execute { stmt }, &mut budget);
        let failure = match result {
            Ok(StreamResult::Ok {
                response: StreamResponse::Execute { result },
            }) => {
                if conn.is_autocommit() {
                    Some("the statement ended the transaction".to_owned())
                } else {
                    let columns = result
                        .cols
                        .into_iter()
                        .map(|c| c.name.unwrap_or_default())
                        .collect();
                    out.push(LegacyQueryResult::Results {
                        columns,
                        rows: result.rows,
                    });
                    None
                }
            }
            Ok(StreamResult::Error { error }) => Some(error.message),
            Ok(StreamResult::Ok { response }) => Some(format!("unexpected response {response:?}")),
            Err(e) => Some(ProtocolError::to_string(&e)),
        };
        if let Some(message) = failure {
            rollback_if_open(conn).map_err(sql_err)?;
            out.push(LegacyQueryResult::Error(message));
            return Ok(out);
        }
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        rollback_if_open(conn).map_err(sql_err)?;
        return Err(sql_err(e));
    }
    Ok(out)
}

fn legacy_stmt(sql: String, params: LegacyParams) -> Stmt {
    let mut stmt = Stmt::sql(sql);
    match params {
        LegacyParams::None => {}
        LegacyParams::Positional(args) => stmt.args = args,
        LegacyParams::Named(named) => {
            stmt.named_args = named
                .into_iter()
                .map(|(name, value)| NamedArg { name, value })
                .collect()
        }
    }
    stmt
}

/// True if the first keyword of `sql` (after whitespace and comments) starts or ends a
/// transaction. A convenience for a clear error; isolation never depends on it.
fn is_transaction_control(sql: &str) -> bool {
    let word = first_keyword(sql);
    ["BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::is_transaction_control;

    #[test]
    fn detects_transaction_keywords_after_comments() {
        for sql in [
            "BEGIN",
            "  commit;",
            "-- x\nROLLBACK",
            "/* a */ savepoint s",
            "end transaction",
        ] {
            assert!(is_transaction_control(sql), "{sql}");
        }
        for sql in [
            "SELECT 1",
            "INSERT INTO begin_t VALUES (1)",
            "-- BEGIN\nSELECT 1",
            "beginning",
        ] {
            assert!(!is_transaction_control(sql), "{sql}");
        }
    }
}
