//! Hrana structures shared by every endpoint: statements, results, batches and their
//! conditions, describe results and errors (HRANA_3_SPEC.md, "Shared structures").

use serde::{Deserialize, Serialize};

use super::value::{opt_i64_string, Value};

/// An error as Hrana reports it, in-band or as an HTTP error body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Error {
    /// Human-readable English description.
    pub message: String,
    /// Machine-readable code (`SQLITE_CONSTRAINT`, `ARGS_INVALID`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// One SQL statement: its text (or a stored text id) and its arguments.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stmt {
    /// The SQL text; exactly one of `sql` and `sql_id` must be given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    /// The id of a text stored with `store_sql`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql_id: Option<i32>,
    /// Arguments bound by position (1-based in SQLite).
    #[serde(default)]
    pub args: Vec<Value>,
    /// Arguments bound by name; a name without `:`/`@`/`$` is tried with each prefix.
    #[serde(default)]
    pub named_args: Vec<NamedArg>,
    /// Whether rows are returned (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub want_rows: Option<bool>,
}

impl Stmt {
    /// A statement with this SQL text and no arguments.
    pub fn sql(sql: impl Into<String>) -> Self {
        Stmt {
            sql: Some(sql.into()),
            ..Stmt::default()
        }
    }
}

/// A named argument.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NamedArg {
    /// Parameter name, with or without its prefix.
    pub name: String,
    /// The value bound to it.
    pub value: Value,
}

/// The result of one statement.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StmtResult {
    /// Result columns.
    pub cols: Vec<Col>,
    /// Result rows (empty when `want_rows` was false).
    pub rows: Vec<Vec<Value>>,
    /// Rows changed by an INSERT/UPDATE/DELETE (0 for other statements).
    pub affected_row_count: u64,
    /// Rowid of the last insert, as a decimal string; `null` for read-only statements.
    #[serde(default, with = "opt_i64_string")]
    pub last_insert_rowid: Option<i64>,
}

/// A result column.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Col {
    /// Column name.
    #[serde(default)]
    pub name: Option<String>,
    /// Declared type when the column comes straight from a table.
    #[serde(default)]
    pub decltype: Option<String>,
}

/// A batch: steps run in order, each guarded by an optional condition.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// The steps.
    pub steps: Vec<BatchStep>,
}

/// One step of a batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchStep {
    /// Run the step only if this holds (always, if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<BatchCond>,
    /// The statement.
    pub stmt: Stmt,
}

/// A condition on the outcome of earlier steps (or on the autocommit state).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BatchCond {
    /// Step `step` ran and succeeded.
    Ok {
        /// 0-based index of an earlier step.
        step: u32,
    },
    /// Step `step` ran and failed.
    Error {
        /// 0-based index of an earlier step.
        step: u32,
    },
    /// Negation.
    Not {
        /// The negated condition.
        cond: Box<BatchCond>,
    },
    /// Conjunction (true when empty).
    And {
        /// The conditions.
        conds: Vec<BatchCond>,
    },
    /// Disjunction (false when empty).
    Or {
        /// The conditions.
        conds: Vec<BatchCond>,
    },
    /// The stream is not inside an explicit transaction (Hrana 3).
    IsAutocommit,
}

/// The outcome of a batch: for step `i`, a result or an error, or neither if it was skipped.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchResult {
    /// Results of steps that ran and succeeded.
    pub step_results: Vec<Option<StmtResult>>,
    /// Errors of steps that ran and failed.
    pub step_errors: Vec<Option<Error>>,
}

/// What `describe` learns about a statement without running it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescribeResult {
    /// Parameters, 1-based in SQLite: `params[0]` is parameter 1.
    pub params: Vec<DescribeParam>,
    /// Result columns.
    pub cols: Vec<DescribeCol>,
    /// The statement is an EXPLAIN.
    pub is_explain: bool,
    /// The statement does not write to the database.
    pub is_readonly: bool,
}

/// A parameter of a described statement.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescribeParam {
    /// Name including its prefix (`:a`, `?3`); `null` for `?` and unused indexes.
    pub name: Option<String>,
}

/// A result column of a described statement.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescribeCol {
    /// Column name.
    pub name: String,
    /// Declared type when the column comes straight from a table.
    #[serde(default)]
    pub decltype: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stmt_parses_client_shape() {
        // What @libsql/client 0.18 sends for `execute({sql, args})`.
        let s: Stmt = serde_json::from_value(json!({
            "sql": "SELECT ?", "args": [{"type": "integer", "value": "1"}],
            "named_args": [], "want_rows": true
        }))
        .unwrap();
        assert_eq!(s.sql.as_deref(), Some("SELECT ?"));
        assert_eq!(s.args, vec![Value::Integer { value: 1 }]);
        assert_eq!(s.want_rows, Some(true));
        let minimal: Stmt = serde_json::from_value(json!({"sql_id": 3})).unwrap();
        assert_eq!(minimal.sql_id, Some(3));
        assert!(minimal.args.is_empty() && minimal.want_rows.is_none());
    }

    #[test]
    fn stmt_result_rowid_is_string_or_null() {
        let r = StmtResult {
            last_insert_rowid: Some(i64::MAX),
            ..StmtResult::default()
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["last_insert_rowid"], json!("9223372036854775807"));
        assert_eq!(serde_json::from_value::<StmtResult>(v).unwrap(), r);
        let none = serde_json::to_value(StmtResult::default()).unwrap();
        assert_eq!(none["last_insert_rowid"], json!(null));
        assert_eq!(none["cols"], json!([]));
    }

    #[test]
    fn conditions_roundtrip_in_spec_shape() {
        let c = BatchCond::And {
            conds: vec![
                BatchCond::Ok { step: 0 },
                BatchCond::Not {
                    cond: Box::new(BatchCond::Error { step: 1 }),
                },
                BatchCond::Or {
                    conds: vec![BatchCond::IsAutocommit],
                },
            ],
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v,
            json!({"type": "and", "conds": [
                {"type": "ok", "step": 0},
                {"type": "not", "cond": {"type": "error", "step": 1}},
                {"type": "or", "conds": [{"type": "is_autocommit"}]}
            ]})
        );
        assert_eq!(serde_json::from_value::<BatchCond>(v).unwrap(), c);
    }

    #[test]
    fn batch_result_has_nulls_for_skipped_steps() {
        let r = BatchResult {
            step_results: vec![Some(StmtResult::default()), None],
            step_errors: vec![None, None],
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["step_results"][1], json!(null));
        assert_eq!(v["step_errors"], json!([null, null]));
    }

    #[test]
    fn error_code_is_optional() {
        let e: Error = serde_json::from_value(json!({"message": "m"})).unwrap();
        assert_eq!(e.code, None);
        let v = serde_json::to_value(Error {
            message: "m".into(),
            code: Some("C".into()),
        });
        assert_eq!(v.unwrap(), json!({"message": "m", "code": "C"}));
    }
}
