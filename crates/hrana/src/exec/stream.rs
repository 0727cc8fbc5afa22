//! A Hrana stream's state and its request executor. The state holds nothing tied to the
//! connection (only stored SQL texts and whether it is closed), so the server can keep it in
//! its stream table between HTTP requests and hand it the tenant's connection per request.

use std::collections::HashMap;

use rusqlite::limits::Limit;
use rusqlite::Connection;

use super::batch::{self, CollectBatch};
use super::cursor::CursorSink;
use super::error::{ProtocolError, StmtError};
use super::stmt::{self, ResultBudget, RowSink, DEFAULT_MAX_RESULT_BYTES};
use crate::proto::{
    Batch, Col, CursorEntry, StmtResult, StreamRequest, StreamResponse, StreamResult, Value,
};

/// Default of [`StreamConfig::max_stored_sqls`].
pub const DEFAULT_MAX_STORED_SQLS: usize = 1_000;

/// Default of [`StreamConfig::max_stored_sql_bytes`].
pub const DEFAULT_MAX_STORED_SQL_BYTES: usize = 128 << 10;

/// Per-stream limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamConfig {
    /// Result-size cap of one pipeline or cursor request, in approximate JSON bytes.
    pub max_result_bytes: usize,
    /// Most SQL texts one stream may hold with `store_sql`.
    pub max_stored_sqls: usize,
    /// Most bytes of SQL text one stream may hold with `store_sql`, all texts together. (Each
    /// text is also limited to the connection's SQL length limit, the guard's 1 MiB.)
    pub max_stored_sql_bytes: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            max_result_bytes: DEFAULT_MAX_RESULT_BYTES,
            max_stored_sqls: DEFAULT_MAX_STORED_SQLS,
            max_stored_sql_bytes: DEFAULT_MAX_STORED_SQL_BYTES,
        }
    }
}

/// One Hrana stream: stored SQL texts by id, and whether `close` was received.
#[derive(Debug, Default)]
pub struct Stream {
    cfg: StreamConfig,
    sqls: HashMap<i32, String>,
    /// Bytes of all texts in `sqls`.
    stored_bytes: usize,
    closed: bool,
}

impl Stream {
    /// A new, open stream.
    pub fn new(cfg: StreamConfig) -> Self {
        Stream {
            cfg,
            sqls: HashMap::new(),
            stored_bytes: 0,
            closed: false,
        }
    }

    /// True once a `close` request ran: the server drops the stream and answers `baton: null`.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The stored SQL texts by id.
    pub(crate) fn stored_sqls(&self) -> &HashMap<i32, String> {
        &self.sqls
    }

    /// Executes one request with its own result budget. Statement failures are in-band
    /// (`StreamResult::Error`); `Err` is a protocol violation (HTTP 400, stream not continued).
    pub fn execute(
        &mut self,
        conn: &Connection,
        req: StreamRequest,
    ) -> Result<StreamResult, ProtocolError> {
        let mut budget = ResultBudget::new(self.cfg.max_result_bytes);
        self.execute_with_budget(conn, req, &mut budget)
    }

    /// Executes a pipeline's requests in order, sharing one result budget. Errors: the first
    /// protocol violation (requests before it have run).
    pub fn execute_pipeline(
        &mut self,
        conn: &Connection,
        requests: Vec<StreamRequest>,
    ) -> Result<Vec<StreamResult>, ProtocolError> {
        let mut budget = ResultBudget::new(self.cfg.max_result_bytes);
        requests
            .into_iter()
            .map(|req| self.execute_with_budget(conn, req, &mut budget))
            .collect()
    }

    /// Runs `batch` as a `/v3/cursor` request, passing each entry to `emit` (which returns
    /// false to stop: the client went away). Errors: a protocol violation, before any entry.
    pub fn cursor(
        &mut self,
        conn: &Connection,
        batch: &Batch,
        emit: &mut dyn FnMut(CursorEntry) -> bool,
    ) -> Result<(), ProtocolError> {
        if self.closed {
            return Err(ProtocolError::StreamClosed);
        }
        let mut budget = ResultBudget::new(self.cfg.max_result_bytes);
        batch::run(
            conn,
            &self.sqls,
            batch,
            &mut budget,
            &mut CursorSink::new(emit),
        )
    }

    /// Closes the stream without a `close` request (expiry, server shutdown), rolling back any
    /// transaction it left open. Errors: the rollback failed.
    pub fn abandon(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        self.closed = true;
        self.sqls.clear();
        self.stored_bytes = 0;
        rollback_if_open(conn).map(drop)
    }

    pub(crate) fn execute_with_budget(
        &mut self,
        conn: &Connection,
        req: StreamRequest,
        budget: &mut ResultBudget,
    ) -> Result<StreamResult, ProtocolError> {
        if self.closed {
            return Err(ProtocolError::StreamClosed);
        }
        let response = match req {
            StreamRequest::Close => {
                self.closed = true;
                self.sqls.clear();
                self.stored_bytes = 0;
                match rollback_if_open(conn) {
                    Ok(_) => Ok(StreamResponse::Close),
                    Err(e) => Err(StmtError::from(e)),
                }
            }
            StreamRequest::Execute { stmt } => {
                let sql = batch::resolve_sql(stmt.sql.as_deref(), stmt.sql_id, &self.sqls)?;
                let mut collect = CollectStmt::default();
                stmt::run(conn, sql, &stmt, budget, &mut collect).map(|outcome| {
                    let mut result = collect.result;
                    result.affected_row_count = outcome.affected_row_count;
                    result.last_insert_rowid = outcome.last_insert_rowid;
                    StreamResponse::Execute { result }
                })
            }
            StreamRequest::Batch { batch } => {
                let mut collect = CollectBatch::default();
                batch::run(conn, &self.sqls, &batch, budget, &mut collect)?;
                Ok(StreamResponse::Batch {
                    result: collect.result,
                })
            }
            StreamRequest::Sequence { sql, sql_id } => {
                let sql = batch::resolve_sql(sql.as_deref(), sql_id, &self.sqls)?;
                stmt::sequence(conn, sql).map(|()| StreamResponse::Sequence)
            }
            StreamRequest::Describe { sql, sql_id } => {
                let sql = batch::resolve_sql(sql.as_deref(), sql_id, &self.sqls)?;
                stmt::describe(conn, sql).map(|result| StreamResponse::Describe { result })
            }
            StreamRequest::StoreSql { sql_id, sql } => {
                self.store_sql(conn, sql_id, sql)?;
                Ok(StreamResponse::StoreSql)
            }
            StreamRequest::CloseSql { sql_id } => {
                if let Some(sql) = self.sqls.remove(&sql_id) {
                    self.stored_bytes -= sql.len();
                }
                Ok(StreamResponse::CloseSql)
            }
            StreamRequest::GetAutocommit => Ok(StreamResponse::GetAutocommit {
                is_autocommit: conn.is_autocommit(),
            }),
        };
        Ok(match response {
            Ok(response) => StreamResult::Ok { response },
            Err(e) => StreamResult::Error {
                error: e.to_proto(),
            },
        })
    }
}

impl Stream {
    /// Keeps `sql` as text `sql_id`. Errors: the id is taken; the text is longer than the
    /// connection's SQL length limit (it could never run); the stream's count or byte cap.
    fn store_sql(
        &mut self,
        conn: &Connection,
        sql_id: i32,
        sql: String,
    ) -> Result<(), ProtocolError> {
        if self.sqls.contains_key(&sql_id) {
            return Err(ProtocolError::SqlExists { sql_id });
        }
        let max_len = conn
            .limit(Limit::SQLITE_LIMIT_SQL_LENGTH)
            .unwrap_or(i32::MAX);
        let max_len = usize::try_from(max_len).unwrap_or(0);
        if sql.len() > max_len {
            return Err(ProtocolError::StoredSqlTooLong {
                len: sql.len(),
                max: max_len,
            });
        }
        if self.sqls.len() >= self.cfg.max_stored_sqls {
            return Err(ProtocolError::TooManySqls {
                max: self.cfg.max_stored_sqls,
            });
        }
        if self.stored_bytes + sql.len() > self.cfg.max_stored_sql_bytes {
            return Err(ProtocolError::StoredSqlFull {
                max: self.cfg.max_stored_sql_bytes,
            });
        }
        self.stored_bytes += sql.len();
        self.sqls.insert(sql_id, sql);
        Ok(())
    }
}

/// Rolls back the connection's open transaction, if any; true if there was one.
/// Errors: the rollback failed.
pub fn rollback_if_open(conn: &Connection) -> rusqlite::Result<bool> {
    if conn.is_autocommit() {
        return Ok(false);
    }
    conn.execute_batch("ROLLBACK")?;
    Ok(true)
}

/// Collects one statement's columns and rows.
#[derive(Default)]
struct CollectStmt {
    result: StmtResult,
}

impl RowSink for CollectStmt {
    fn begin(&mut self, cols: Vec<Col>) -> bool {
        self.result.cols = cols;
        true
    }
    fn row(&mut self, row: Vec<Value>) -> bool {
        self.result.rows.push(row);
        true
    }
}
