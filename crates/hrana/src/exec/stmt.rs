//! Runs one statement on a connection: binds Hrana arguments, steps it, hands columns and rows
//! to a sink under the result-size budget, and reports affected rows and the last rowid. Also
//! `describe` and `sequence`, which prepare or run SQL without returning rows.

use std::time::Instant;

use rusqlite::{Connection, Statement};

use super::error::StmtError;
use crate::guard;
use crate::proto::{Col, DescribeCol, DescribeParam, DescribeResult, Stmt, Value};

/// Default result-size cap of one pipeline or cursor request, in approximate JSON bytes.
pub const DEFAULT_MAX_RESULT_BYTES: usize = 8 * 1024 * 1024;

/// Receives a statement's columns, then its rows. Returning false stops (the client is gone).
pub(crate) trait RowSink {
    fn begin(&mut self, cols: Vec<Col>) -> bool;
    fn row(&mut self, row: Vec<Value>) -> bool;
}

/// How a statement ended.
pub(crate) struct Outcome {
    pub affected_row_count: u64,
    pub last_insert_rowid: Option<i64>,
    pub stopped: bool,
}

/// The result-size budget shared by the statements of one request: rows × bytes, counted as
/// the approximate JSON size of each value.
#[derive(Debug, Clone)]
pub struct ResultBudget {
    limit: usize,
    used: usize,
}

impl ResultBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        ResultBudget { limit, used: 0 }
    }

    fn charge(&mut self, row: &[Value]) -> Result<(), StmtError> {
        let size = 2 + row.iter().map(Value::wire_size).sum::<usize>();
        self.used = self.used.saturating_add(size);
        if self.used > self.limit {
            return Err(StmtError::ResponseTooLarge { limit: self.limit });
        }
        Ok(())
    }
}

const RETURNING_SAVEPOINT: &str = "tenantd_returning";

/// Runs `stmt` (whose SQL text is `sql`) to completion. Errors: preparing, binding or stepping
/// failed, or the rows exceed `budget` — then a writing statement's changes are undone.
pub(crate) fn run(
    conn: &Connection,
    sql: &str,
    stmt: &Stmt,
    budget: &mut ResultBudget,
    sink: &mut dyn RowSink,
) -> Result<Outcome, StmtError> {
    guard::statement_starting(Instant::now())?;
    guard::check_reserved_names(sql).map_err(|reason| StmtError::NotAuthorized { reason })?;
    let mut prepared = conn.prepare(sql)?;
    bind(&mut prepared, stmt)?;
    let want_rows = stmt.want_rows.unwrap_or(true);
    let readonly = prepared.readonly();
    // A writing statement that returns rows (RETURNING) runs in a savepoint, so that hitting
    // the result cap undoes its writes rather than leaving changes the client saw fail.
    let savepoint = !readonly && want_rows && prepared.column_count() > 0;
    if savepoint {
        conn.execute_batch(&format!("SAVEPOINT {RETURNING_SAVEPOINT}"))?;
    }
    let total_before = conn.total_changes();
    let cols = columns(&prepared);
    let stepped = step_all(&mut prepared, want_rows, budget, sink, cols);
    let affected_row_count = if conn.total_changes() != total_before {
        conn.changes()
    } else {
        0
    };
    let last_insert_rowid = (!readonly).then(|| conn.last_insert_rowid());
    drop(prepared);
    if savepoint {
        let end = match stepped {
            Ok(_) => format!("RELEASE {RETURNING_SAVEPOINT}"),
            Err(_) => format!("ROLLBACK TO {RETURNING_SAVEPOINT}; RELEASE {RETURNING_SAVEPOINT}"),
        };
        if let Err(e) = conn.execute_batch(&end) {
            // SQLite may already have rolled back the whole transaction (e.g. on interrupt),
            // taking the savepoint with it; the statement's own error is what matters then.
            tracing::debug!(error = %e, "cannot end the RETURNING savepoint");
            stepped.as_ref().map_err(Clone::clone)?;
            return Err(e.into());
        }
    }
    let stopped = stepped?;
    Ok(Outcome {
        affected_row_count,
        last_insert_rowid,
        stopped,
    })
}

/// Steps to completion; `Ok(true)` if the sink asked to stop.
fn step_all(
    prepared: &mut Statement<'_>,
    want_rows: bool,
    budget: &mut ResultBudget,
    sink: &mut dyn RowSink,
    cols: Vec<Col>,
) -> Result<bool, StmtError> {
    let n = cols.len();
    if !sink.begin(cols) {
        return Ok(true);
    }
    let mut rows = prepared.raw_query();
    while let Some(row) = rows.next()? {
        if !want_rows {
            continue;
        }
        let values: Vec<Value> = (0..n).map(|i| Value::from(row.get_ref_unwrap(i))).collect();
        budget.charge(&values)?;
        if !sink.row(values) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn columns(prepared: &Statement<'_>) -> Vec<Col> {
    prepared
        .columns()
        .map(|c| Col {
            name: Some(c.name().to_owned()),
            decltype: c.decl_type().map(str::to_owned),
        })
        .collect()
}

/// Binds positional then named arguments (named win). Errors: too many arguments, an unknown
/// name, or a parameter left unbound.
fn bind(p: &mut Statement<'_>, stmt: &Stmt) -> Result<(), StmtError> {
    let count = p.parameter_count();
    if stmt.args.len() > count {
        return Err(StmtError::ArgsInvalid(format!(
            "{} positional arguments given, but the statement has {count} parameters",
            stmt.args.len()
        )));
    }
    let mut bound = vec![false; count + 1];
    for (i, value) in stmt.args.iter().enumerate() {
        p.raw_bind_parameter(i + 1, value)?;
        bound[i + 1] = true;
    }
    for arg in &stmt.named_args {
        let index = find_param(p, &arg.name)?.ok_or_else(|| {
            StmtError::ArgsInvalid(format!(
                "the statement has no parameter named `{}`",
                arg.name
            ))
        })?;
        p.raw_bind_parameter(index, &arg.value)?;
        bound[index] = true;
    }
    // Unnamed indexes below a numbered/named parameter are gaps (`?5` leaves 1..4 unused).
    let last_named = (1..=count)
        .rev()
        .find(|&i| p.parameter_name(i).is_some())
        .unwrap_or(0);
    for (i, is_bound) in bound.iter().enumerate().skip(1) {
        if *is_bound {
            continue;
        }
        match p.parameter_name(i) {
            Some(name) => {
                return Err(StmtError::ArgsInvalid(format!(
                    "missing argument for `{name}`"
                )))
            }
            None if i > last_named => {
                return Err(StmtError::ArgsInvalid(format!(
                    "missing argument for parameter {i}"
                )))
            }
            None => {}
        }
    }
    Ok(())
}

fn find_param(p: &Statement<'_>, name: &str) -> Result<Option<usize>, StmtError> {
    if name.starts_with([':', '@', '$', '?']) {
        return Ok(p.parameter_index(name)?);
    }
    for prefix in [':', '@', '$'] {
        if let Some(i) = p.parameter_index(&format!("{prefix}{name}"))? {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// Prepares `sql` without running it. Errors: it does not prepare (syntax, guard, …).
pub(crate) fn describe(conn: &Connection, sql: &str) -> Result<DescribeResult, StmtError> {
    guard::statement_starting(Instant::now())?;
    let p = conn.prepare(sql)?;
    Ok(DescribeResult {
        params: (1..=p.parameter_count())
            .map(|i| DescribeParam {
                name: p.parameter_name(i).map(str::to_owned),
            })
            .collect(),
        cols: p
            .columns()
            .map(|c| DescribeCol {
                name: c.name().to_owned(),
                decltype: c.decl_type().map(str::to_owned),
            })
            .collect(),
        is_explain: p.is_explain() != 0,
        is_readonly: p.readonly(),
    })
}

/// Runs semicolon-separated statements, ignoring rows (under the request's time budget).
/// Errors: the first failing statement (later ones do not run).
pub(crate) fn sequence(conn: &Connection, sql: &str) -> Result<(), StmtError> {
    guard::statement_starting(Instant::now())?;
    guard::check_reserved_names(sql).map_err(|reason| StmtError::NotAuthorized { reason })?;
    conn.execute_batch(sql).map_err(Into::into)
}
