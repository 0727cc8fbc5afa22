//! The legacy shapes: `/v1/execute`, `/v1/batch` (a fresh stream per request) and `POST /`
//! (one transaction, rolled back on the first failure).

use hrana::exec::legacy::{query, v1_batch, v1_execute};
use hrana::exec::StreamConfig;
use hrana::proto::legacy::{QueryBody, V1BatchReq, V1ExecuteReq};
use hrana::proto::{Batch, BatchStep, Stmt};
use rusqlite::Connection;
use serde_json::json;

use crate::util::*;

fn db() -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
        .unwrap();
    conn
}

fn body(v: serde_json::Value) -> QueryBody {
    serde_json::from_value(v).unwrap()
}

#[test]
fn v1_execute_and_its_errors() {
    let conn = db();
    let cfg = StreamConfig::default();
    let ok = v1_execute(
        &conn,
        V1ExecuteReq {
            stmt: Stmt::sql("INSERT INTO t(v) VALUES (1)"),
        },
        &cfg,
    )
    .unwrap();
    assert_eq!(ok.result.affected_row_count, 1);
    let err = v1_execute(
        &conn,
        V1ExecuteReq {
            stmt: Stmt::sql("INSERT INTO t(id) VALUES (1)"),
        },
        &cfg,
    )
    .unwrap_err();
    assert_eq!(err.code.as_deref(), Some("SQLITE_CONSTRAINT"));
    // A transaction cannot outlive the request.
    v1_execute(
        &conn,
        V1ExecuteReq {
            stmt: Stmt::sql("BEGIN"),
        },
        &cfg,
    )
    .unwrap();
    assert!(conn.is_autocommit());
}

#[test]
fn v1_batch_reports_per_step() {
    let conn = db();
    let steps = ["INSERT INTO t(v) VALUES (1)", "SELEC"]
        .iter()
        .map(|s| BatchStep {
            condition: None,
            stmt: Stmt::sql(*s),
        })
        .collect();
    let r = v1_batch(
        &conn,
        V1BatchReq {
            batch: Batch { steps },
        },
        &StreamConfig::default(),
    )
    .unwrap();
    assert!(r.result.step_results[0].is_some());
    assert!(r.result.step_errors[1].is_some());
    assert_eq!(count(&conn, "t"), 1);
}

#[test]
fn query_commits_all_statements() {
    let conn = db();
    let out = query(
        &conn,
        body(json!({"statements": [
            "INSERT INTO t(v) VALUES ('a')",
            {"q": "INSERT INTO t(v) VALUES (?)", "params": [{"base64": "AAE="}]},
            {"q": "SELECT id, v FROM t WHERE id > :min ORDER BY id", "params": {"min": 0}}
        ]})),
        &StreamConfig::default(),
    )
    .unwrap();
    assert_eq!(
        serde_json::to_value(&out).unwrap(),
        json!([
            {"results": {"columns": [], "rows": []}},
            {"results": {"columns": [], "rows": []}},
            {"results": {"columns": ["id", "v"], "rows": [[1, "a"], [2, {"base64": "AAE"}]]}}
        ])
    );
    assert_eq!(count(&conn, "t"), 2);
    assert!(conn.is_autocommit());
}

#[test]
fn query_rolls_back_on_the_first_failure() {
    let conn = db();
    let out = query(
        &conn,
        body(json!({"statements": [
            "INSERT INTO t(id) VALUES (1)",
            "INSERT INTO t(id) VALUES (1)",
            "INSERT INTO t(id) VALUES (2)"
        ]})),
        &StreamConfig::default(),
    )
    .unwrap();
    let v = serde_json::to_value(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2, "stops at the failure: {v}");
    assert!(v[1]["error"].as_str().unwrap().contains("UNIQUE"));
    assert_eq!(count(&conn, "t"), 0);
    assert!(conn.is_autocommit());
}

#[test]
fn query_refuses_transaction_control() {
    let conn = db();
    let err = query(
        &conn,
        body(json!({"statements": ["INSERT INTO t(v) VALUES (1)", "COMMIT"]})),
        &StreamConfig::default(),
    )
    .unwrap_err();
    assert_eq!(err.code.as_deref(), Some("TRANSACTION_NOT_ALLOWED"));
    assert_eq!(count(&conn, "t"), 0, "nothing ran");
}
