//! The `/v3/cursor` executor: entry order, skipped steps, errors before and after
//! `step_begin`, stopping when the client goes away, and the JSON-lines encoding.

use hrana::exec::{ProtocolError, Stream, StreamConfig};
use hrana::proto::{Batch, BatchCond, BatchStep, CursorEntry, Stmt};
use rusqlite::Connection;

use crate::util::*;

fn step(sql: &str, condition: Option<BatchCond>) -> BatchStep {
    BatchStep {
        condition,
        stmt: Stmt::sql(sql),
    }
}

fn collect(stream: &mut Stream, conn: &Connection, batch: &Batch) -> Vec<CursorEntry> {
    let mut out = Vec::new();
    stream
        .cursor(conn, batch, &mut |e| {
            out.push(e);
            true
        })
        .unwrap();
    out
}

#[test]
fn entries_follow_the_spec_order() {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("CREATE TABLE t(x INTEGER)").unwrap();
    let batch = Batch {
        steps: vec![
            step("INSERT INTO t VALUES (1), (2)", None),
            step(
                "SELECT x FROM t ORDER BY x",
                Some(BatchCond::Ok { step: 0 }),
            ),
            step("SELECT nope FROM t", None),
            step("SELECT 'skipped'", Some(BatchCond::Ok { step: 2 })),
            step("SELECT 'ran'", Some(BatchCond::Error { step: 2 })),
        ],
    };
    let entries = collect(&mut stream(), &conn, &batch);
    let kinds: Vec<String> = entries
        .iter()
        .map(|e| match e {
            CursorEntry::StepBegin { step, .. } => format!("begin{step}"),
            CursorEntry::StepEnd {
                affected_row_count, ..
            } => format!("end{affected_row_count}"),
            CursorEntry::StepError { step, .. } => format!("error{step}"),
            CursorEntry::Row { row } => format!("row{:?}", row[0]),
            CursorEntry::Error { .. } => "batch-error".into(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "begin0",
            "end2",
            "begin1",
            &format!("row{:?}", int(1)),
            &format!("row{:?}", int(2)),
            "end0",
            "error2",
            "begin4",
            &format!("row{:?}", text("ran")),
            "end0",
        ]
    );
    let CursorEntry::StepEnd {
        last_insert_rowid, ..
    } = &entries[1]
    else {
        panic!()
    };
    assert_eq!(*last_insert_rowid, Some(2));
}

#[test]
fn cap_error_after_step_begin_is_a_step_error() {
    let conn = Connection::open_in_memory().unwrap();
    let mut s = Stream::new(StreamConfig {
        max_result_bytes: 500,
        ..StreamConfig::default()
    });
    let batch = Batch {
        steps: vec![step(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 100) SELECT x FROM c",
            None,
        )],
    };
    let entries = collect(&mut s, &conn, &batch);
    assert!(matches!(
        entries.first(),
        Some(CursorEntry::StepBegin { step: 0, .. })
    ));
    match entries.last() {
        Some(CursorEntry::StepError { step: 0, error }) => {
            assert_eq!(error.code.as_deref(), Some("RESPONSE_TOO_LARGE"))
        }
        other => panic!("expected a step error, got {other:?}"),
    }
    assert!(entries.len() < 20, "stopped at the cap");
}

#[test]
fn client_gone_stops_the_batch() {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("CREATE TABLE t(x)").unwrap();
    let batch = Batch {
        steps: vec![
            step(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c",
                None,
            ),
            step("INSERT INTO t VALUES (1)", None),
        ],
    };
    let mut seen = 0;
    stream()
        .cursor(&conn, &batch, &mut |_| {
            seen += 1;
            seen < 5
        })
        .unwrap();
    assert_eq!(seen, 5);
    assert_eq!(count(&conn, "t"), 0, "later steps did not run");
}

#[test]
fn protocol_errors_come_before_any_entry() {
    let conn = Connection::open_in_memory().unwrap();
    let batch = Batch {
        steps: vec![BatchStep {
            condition: None,
            stmt: Stmt {
                sql_id: Some(9),
                ..Stmt::default()
            },
        }],
    };
    let mut entries = 0;
    let err = stream().cursor(&conn, &batch, &mut |_| {
        entries += 1;
        true
    });
    assert_eq!(err, Err(ProtocolError::SqlNotFound { sql_id: 9 }));
    assert_eq!(entries, 0);
}

#[test]
fn entries_encode_as_json_lines() {
    let conn = Connection::open_in_memory().unwrap();
    let batch = Batch {
        steps: vec![step("SELECT 1 AS one", None)],
    };
    let body: Vec<u8> = collect(&mut stream(), &conn, &batch)
        .iter()
        .flat_map(|e| e.to_json_line())
        .collect();
    assert_eq!(
        String::from_utf8(body).unwrap(),
        concat!(
            r#"{"type":"step_begin","step":0,"cols":[{"name":"one","decltype":null}]}"#,
            "\n",
            r#"{"type":"row","row":[{"type":"integer","value":"1"}]}"#,
            "\n",
            r#"{"type":"step_end","affected_row_count":0,"last_insert_rowid":null}"#,
            "\n",
        )
    );
}
