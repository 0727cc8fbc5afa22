//! Batches: steps run in order, each behind an optional condition on earlier steps' outcomes
//! or on the autocommit state. One runner feeds both the pipeline (`BatchResult`) and the
//! cursor (JSON-lines entries) through [`BatchSink`].

use std::collections::HashMap;

use rusqlite::Connection;

use super::error::{ProtocolError, StmtError};
use super::stmt::{self, Outcome, ResultBudget, RowSink};
use crate::proto::{Batch, BatchCond, BatchResult, Col, StmtResult, Value};

/// Receives a batch's progress. Returning false stops the batch (the client is gone).
pub(crate) trait BatchSink: RowSink {
    fn start_step(&mut self, step: u32);
    fn step_ok(&mut self, outcome: &Outcome) -> bool;
    fn step_error(&mut self, error: StmtError) -> bool;
    fn skipped(&mut self);
}

/// Resolves `sql`/`sql_id` to a text. Errors: both or neither given, or an unknown id.
pub(crate) fn resolve_sql<'a>(
    sql: Option<&'a str>,
    sql_id: Option<i32>,
    sqls: &'a HashMap<i32, String>,
) -> Result<&'a str, ProtocolError> {
    match (sql, sql_id) {
        (Some(sql), None) => Ok(sql),
        (None, Some(sql_id)) => sqls
            .get(&sql_id)
            .map(String::as_str)
            .ok_or(ProtocolError::SqlNotFound { sql_id }),
        (Some(_), Some(_)) => Err(ProtocolError::SqlAndSqlId),
        (None, None) => Err(ProtocolError::NoSql),
    }
}

/// Checks the whole batch before running any step. Errors: a condition on a step that is not
/// earlier than its own, or unresolvable SQL.
fn validate(batch: &Batch, sqls: &HashMap<i32, String>) -> Result<(), ProtocolError> {
    fn check(cond: &BatchCond, step: u32) -> Result<(), ProtocolError> {
        match cond {
            BatchCond::Ok { step: s } | BatchCond::Error { step: s } if *s >= step => {
                Err(ProtocolError::BatchCondBadStep {
                    step,
                    cond_step: *s,
                })
            }
            BatchCond::Ok { .. } | BatchCond::Error { .. } | BatchCond::IsAutocommit => Ok(()),
            BatchCond::Not { cond } => check(cond, step),
            BatchCond::And { conds } | BatchCond::Or { conds } => {
                conds.iter().try_for_each(|c| check(c, step))
            }
        }
    }
    for (i, step) in batch.steps.iter().enumerate() {
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        if let Some(cond) = &step.condition {
            check(cond, i)?;
        }
        resolve_sql(step.stmt.sql.as_deref(), step.stmt.sql_id, sqls)?;
    }
    Ok(())
}

/// `outcomes[i]`: `None` skipped, `Some(true)` succeeded, `Some(false)` failed.
fn eval(cond: &BatchCond, outcomes: &[Option<bool>], conn: &Connection) -> bool {
    let outcome = |s: u32| outcomes.get(s as usize).copied().flatten();
    match cond {
        BatchCond::Ok { step } => outcome(*step) == Some(true),
        BatchCond::Error { step } => outcome(*step) == Some(false),
        BatchCond::Not { cond } => !eval(cond, outcomes, conn),
        BatchCond::And { conds } => conds.iter().all(|c| eval(c, outcomes, conn)),
        BatchCond::Or { conds } => conds.iter().any(|c| eval(c, outcomes, conn)),
        BatchCond::IsAutocommit => conn.is_autocommit(),
    }
}

/// Runs a batch into `sink`. Errors: protocol violations, found before any step runs.
pub(crate) fn run(
    conn: &Connection,
    sqls: &HashMap<i32, String>,
    batch: &Batch,
    budget: &mut ResultBudget,
    sink: &mut dyn BatchSink,
) -> Result<(), ProtocolError> {
    validate(batch, sqls)?;
    let mut outcomes = Vec::with_capacity(batch.steps.len());
    for (i, step) in batch.steps.iter().enumerate() {
        let run = step
            .condition
            .as_ref()
            .is_none_or(|c| eval(c, &outcomes, conn));
        if !run {
            outcomes.push(None);
            sink.skipped();
            continue;
        }
        sink.start_step(u32::try_from(i).unwrap_or(u32::MAX));
        let sql = resolve_sql(step.stmt.sql.as_deref(), step.stmt.sql_id, sqls)?;
        let keep_going = match stmt::run(conn, sql, &step.stmt, budget, sink) {
            Ok(outcome) => {
                outcomes.push(Some(true));
                !outcome.stopped && sink.step_ok(&outcome)
            }
            Err(e) => {
                outcomes.push(Some(false));
                sink.step_error(e)
            }
        };
        if !keep_going {
            break;
        }
    }
    Ok(())
}

/// Collects a batch into a `BatchResult` (for `batch` requests and `/v1/batch`).
#[derive(Default)]
pub(crate) struct CollectBatch {
    pub result: BatchResult,
    current: StmtResult,
}

impl RowSink for CollectBatch {
    fn begin(&mut self, cols: Vec<Col>) -> bool {
        self.current = StmtResult {
            cols,
            ..StmtResult::default()
        };
        true
    }
    fn row(&mut self, row: Vec<Value>) -> bool {
        self.current.rows.push(row);
        true
    }
}

impl BatchSink for CollectBatch {
    fn start_step(&mut self, _step: u32) {
        self.current = StmtResult::default();
    }
    fn step_ok(&mut self, outcome: &Outcome) -> bool {
        let mut result = std::mem::take(&mut self.current);
        result.affected_row_count = outcome.affected_row_count;
        result.last_insert_rowid = outcome.last_insert_rowid;
        self.result.step_results.push(Some(result));
        self.result.step_errors.push(None);
        true
    }
    fn step_error(&mut self, error: StmtError) -> bool {
        self.current = StmtResult::default();
        self.result.step_results.push(None);
        self.result.step_errors.push(Some(error.to_proto()));
        true
    }
    fn skipped(&mut self) {
        self.result.step_results.push(None);
        self.result.step_errors.push(None);
    }
}
