//! The stream executor: every request type, argument binding, batches and their conditions,
//! in-band errors vs protocol errors, transactions spanning requests, the result-size cap.

use hrana::exec::{ProtocolError, Stream, StreamConfig, DEFAULT_MAX_STORED_SQLS};
use hrana::guard::{Guard, GuardConfig, SqlLimits};
use hrana::proto::{
    Batch, BatchCond, BatchStep, Col, DescribeParam, NamedArg, PipelineReqBody, Stmt,
    StreamRequest, StreamResponse, StreamResult, Value,
};
use rusqlite::Connection;
use serde_json::json;

use crate::util::*;

fn mem() -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("CREATE TABLE t(i INTEGER, f REAL, s TEXT, b BLOB, n)")
        .unwrap();
    conn
}

fn ok(r: StreamResult) -> StreamResponse {
    match r {
        StreamResult::Ok { response } => response,
        StreamResult::Error { error } => panic!("unexpected error {error:?}"),
    }
}

fn step(sql: &str, condition: Option<BatchCond>) -> BatchStep {
    BatchStep {
        condition,
        stmt: Stmt::sql(sql),
    }
}

#[test]
fn execute_roundtrips_every_value_type() {
    let conn = mem();
    let mut s = stream();
    let values = vec![
        int(i64::MAX),
        Value::Float { value: -1.25 },
        text("héllo"),
        Value::Blob {
            value: vec![0, 1, 2, 255],
        },
        Value::Null,
    ];
    let insert = Stmt {
        args: values.clone(),
        ..Stmt::sql("INSERT INTO t VALUES (?, ?, ?, ?, ?)")
    };
    let r = exec(&mut s, &conn, insert).unwrap();
    assert_eq!(r.affected_row_count, 1);
    assert_eq!(r.last_insert_rowid, Some(1));
    assert!(r.cols.is_empty() && r.rows.is_empty());
    let r = sql(&mut s, &conn, "SELECT i, f, s, b, n, i - 1 AS e FROM t").unwrap();
    let mut expected = values;
    expected.push(int(i64::MAX - 1));
    assert_eq!(r.rows, vec![expected]);
    assert_eq!(
        r.cols[0],
        Col {
            name: Some("i".into()),
            decltype: Some("INTEGER".into())
        }
    );
    assert_eq!(
        r.cols[5],
        Col {
            name: Some("e".into()),
            decltype: None
        }
    );
    assert_eq!(r.affected_row_count, 0, "a SELECT changes nothing");
    assert_eq!(
        r.last_insert_rowid, None,
        "read-only statements report no rowid"
    );
}

#[test]
fn want_rows_false_runs_but_returns_no_rows() {
    let conn = mem();
    let mut s = stream();
    let stmt = Stmt {
        want_rows: Some(false),
        ..Stmt::sql("INSERT INTO t(i) VALUES (1), (2) RETURNING i")
    };
    let r = exec(&mut s, &conn, stmt).unwrap();
    assert!(r.rows.is_empty());
    assert_eq!(r.affected_row_count, 2);
    assert_eq!(count(&conn, "t"), 2);
}

#[test]
fn positional_and_named_arguments() {
    let conn = mem();
    let mut s = stream();
    let named = |name: &str, v: Value| NamedArg {
        name: name.into(),
        value: v,
    };
    let stmt = Stmt {
        named_args: vec![named("a", int(1)), named("@b", int(2)), named("$c", int(3))],
        ..Stmt::sql("SELECT :a, @b, $c")
    };
    assert_eq!(
        exec(&mut s, &conn, stmt).unwrap().rows,
        vec![vec![int(1), int(2), int(3)]]
    );
    // Named wins over positional for the same parameter.
    let stmt = Stmt {
        args: vec![int(10), int(20)],
        named_args: vec![named(":x", int(99))],
        ..Stmt::sql("SELECT :x, ?")
    };
    assert_eq!(
        exec(&mut s, &conn, stmt).unwrap().rows,
        vec![vec![int(99), int(20)]]
    );
    let gap = Stmt {
        args: vec![],
        named_args: vec![named("?3", int(3))],
        ..Stmt::sql("SELECT ?3")
    };
    assert_eq!(exec(&mut s, &conn, gap).unwrap().rows, vec![vec![int(3)]]);
}

#[test]
fn argument_mismatches_are_in_band_errors() {
    let conn = mem();
    let mut s = stream();
    let too_many = Stmt {
        args: vec![int(1), int(2)],
        ..Stmt::sql("SELECT ?")
    };
    assert_err(
        exec(&mut s, &conn, too_many),
        "ARGS_INVALID",
        "2 positional arguments",
    );
    assert_err(
        exec(&mut s, &conn, Stmt::sql("SELECT ?")),
        "ARGS_INVALID",
        "parameter 1",
    );
    assert_err(
        exec(&mut s, &conn, Stmt::sql("SELECT :a")),
        "ARGS_INVALID",
        "`:a`",
    );
    let unknown = Stmt {
        named_args: vec![NamedArg {
            name: "zz".into(),
            value: int(1),
        }],
        ..Stmt::sql("SELECT 1")
    };
    assert_err(
        exec(&mut s, &conn, unknown),
        "ARGS_INVALID",
        "no parameter named `zz`",
    );
}

#[test]
fn sql_errors_are_in_band_and_the_stream_continues() {
    let conn = mem();
    conn.execute_batch("CREATE TABLE u(id INTEGER PRIMARY KEY)")
        .unwrap();
    let mut s = stream();
    assert_err(
        sql(&mut s, &conn, "SELEC 1"),
        "SQL_INPUT_ERROR",
        "syntax error",
    );
    assert_err(
        sql(&mut s, &conn, "SELECT * FROM nope"),
        "SQLITE_ERROR",
        "no such table",
    );
    assert_err(
        sql(&mut s, &conn, "  -- only a comment"),
        "SQL_NO_STATEMENT",
        "any statement",
    );
    assert_err(
        sql(&mut s, &conn, "SELECT 1; SELECT 2"),
        "SQL_MANY_STATEMENTS",
        "more than one",
    );
    sql(&mut s, &conn, "INSERT INTO u VALUES (1)").unwrap();
    assert_err(
        sql(&mut s, &conn, "INSERT INTO u VALUES (1)"),
        "SQLITE_CONSTRAINT",
        "UNIQUE",
    );
    assert_eq!(
        sql(&mut s, &conn, "SELECT count(*) FROM u").unwrap().rows,
        vec![vec![int(1)]]
    );
}

#[test]
fn batch_like_libsql_client_commits_on_success() {
    let conn = mem();
    let mut s = stream();
    // @libsql/client's batch(): BEGIN, statements chained on ok, COMMIT, ROLLBACK on failure.
    let batch = Batch {
        steps: vec![
            step("BEGIN", None),
            step(
                "INSERT INTO t(i) VALUES (1)",
                Some(BatchCond::Ok { step: 0 }),
            ),
            step(
                "INSERT INTO t(i) VALUES (2)",
                Some(BatchCond::Ok { step: 1 }),
            ),
            step("COMMIT", Some(BatchCond::Ok { step: 2 })),
            step(
                "ROLLBACK",
                Some(BatchCond::Not {
                    cond: Box::new(BatchCond::Ok { step: 3 }),
                }),
            ),
        ],
    };
    let StreamResponse::Batch { result } =
        ok(s.execute(&conn, StreamRequest::Batch { batch }).unwrap())
    else {
        panic!("not a batch response")
    };
    assert_eq!(
        result
            .step_results
            .iter()
            .map(Option::is_some)
            .collect::<Vec<_>>(),
        [true, true, true, true, false]
    );
    assert!(result.step_errors.iter().all(Option::is_none));
    assert_eq!(
        result.step_results[1].as_ref().unwrap().affected_row_count,
        1
    );
    assert_eq!(count(&conn, "t"), 2);
    assert!(conn.is_autocommit());
}

#[test]
fn batch_rolls_back_when_a_step_fails() {
    let conn = mem();
    conn.execute_batch("CREATE TABLE u(id INTEGER PRIMARY KEY)")
        .unwrap();
    let mut s = stream();
    let batch = Batch {
        steps: vec![
            step("BEGIN", None),
            step("INSERT INTO u VALUES (1)", Some(BatchCond::Ok { step: 0 })),
            step("INSERT INTO u VALUES (1)", Some(BatchCond::Ok { step: 1 })),
            step("COMMIT", Some(BatchCond::Ok { step: 2 })),
            step(
                "ROLLBACK",
                Some(BatchCond::And {
                    conds: vec![
                        BatchCond::Not {
                            cond: Box::new(BatchCond::Ok { step: 3 }),
                        },
                        BatchCond::Not {
                            cond: Box::new(BatchCond::IsAutocommit),
                        },
                    ],
                }),
            ),
            step(
                "SELECT 1",
                Some(BatchCond::Or {
                    conds: vec![BatchCond::Error { step: 2 }],
                }),
            ),
        ],
    };
    let StreamResponse::Batch { result } =
        ok(s.execute(&conn, StreamRequest::Batch { batch }).unwrap())
    else {
        panic!("not a batch response")
    };
    assert_eq!(
        result.step_errors[2].as_ref().unwrap().code.as_deref(),
        Some("SQLITE_CONSTRAINT")
    );
    assert!(
        result.step_results[3].is_none() && result.step_errors[3].is_none(),
        "COMMIT skipped"
    );
    assert!(result.step_results[4].is_some(), "ROLLBACK ran");
    assert!(result.step_results[5].is_some(), "error condition held");
    assert_eq!(count(&conn, "u"), 0);
    assert!(conn.is_autocommit());
}

#[test]
fn batch_condition_on_a_later_step_is_a_protocol_error() {
    let conn = mem();
    let mut s = stream();
    for cond in [
        BatchCond::Ok { step: 0 },
        BatchCond::Not {
            cond: Box::new(BatchCond::Error { step: 5 }),
        },
    ] {
        let batch = Batch {
            steps: vec![step("INSERT INTO t(i) VALUES (1)", Some(cond))],
        };
        let err = s
            .execute(&conn, StreamRequest::Batch { batch })
            .unwrap_err();
        assert!(
            matches!(err, ProtocolError::BatchCondBadStep { step: 0, .. }),
            "{err}"
        );
    }
    assert_eq!(count(&conn, "t"), 0, "nothing ran");
}

#[test]
fn sequence_describe_and_autocommit() {
    let conn = mem();
    let mut s = stream();
    let seq = StreamRequest::Sequence {
        sql: Some("BEGIN; INSERT INTO t(i) VALUES (1); SELECT 1;".into()),
        sql_id: None,
    };
    assert_eq!(ok(s.execute(&conn, seq).unwrap()), StreamResponse::Sequence);
    assert_eq!(
        ok(s.execute(&conn, StreamRequest::GetAutocommit).unwrap()),
        StreamResponse::GetAutocommit {
            is_autocommit: false
        }
    );
    let failing = StreamRequest::Sequence {
        sql: Some("INSERT INTO t(i) VALUES (2); SELEC; INSERT INTO t(i) VALUES (3)".into()),
        sql_id: None,
    };
    assert!(matches!(
        s.execute(&conn, failing).unwrap(),
        StreamResult::Error { .. }
    ));
    sql(&mut s, &conn, "COMMIT").unwrap();
    let ids: Vec<_> = sql(&mut s, &conn, "SELECT i FROM t ORDER BY i")
        .unwrap()
        .rows;
    assert_eq!(
        ids,
        vec![vec![int(1)], vec![int(2)]],
        "statements after the failure did not run"
    );

    let describe = StreamRequest::Describe {
        sql: Some("SELECT i AS x, s FROM t WHERE i = :a AND s = ?3".into()),
        sql_id: None,
    };
    let StreamResponse::Describe { result } = ok(s.execute(&conn, describe).unwrap()) else {
        panic!("not describe")
    };
    assert_eq!(
        result.params,
        vec![
            DescribeParam {
                name: Some(":a".into())
            },
            DescribeParam { name: None },
            DescribeParam {
                name: Some("?3".into())
            }
        ]
    );
    assert_eq!(result.cols[0].name, "x");
    assert_eq!(result.cols[1].decltype.as_deref(), Some("TEXT"));
    assert!(result.is_readonly && !result.is_explain);
    let explain = StreamRequest::Describe {
        sql: Some("EXPLAIN DELETE FROM t".into()),
        sql_id: None,
    };
    let StreamResponse::Describe { result } = ok(s.execute(&conn, explain).unwrap()) else {
        panic!("not describe")
    };
    assert!(result.is_explain);
    let write = StreamRequest::Describe {
        sql: Some("DELETE FROM t".into()),
        sql_id: None,
    };
    let StreamResponse::Describe { result } = ok(s.execute(&conn, write).unwrap()) else {
        panic!("not describe")
    };
    assert!(!result.is_readonly);
    assert_eq!(count(&conn, "t"), 2, "describe does not run the statement");
}

#[test]
fn stored_sql_texts() {
    let conn = mem();
    let mut s = stream();
    let store = |id: i32, sql: &str| StreamRequest::StoreSql {
        sql_id: id,
        sql: sql.into(),
    };
    ok(s.execute(&conn, store(1, "INSERT INTO t(i) VALUES (?)"))
        .unwrap());
    let by_id = Stmt {
        sql_id: Some(1),
        args: vec![int(5)],
        ..Stmt::default()
    };
    exec(&mut s, &conn, by_id.clone()).unwrap();
    assert_eq!(
        s.execute(&conn, store(1, "x")).unwrap_err(),
        ProtocolError::SqlExists { sql_id: 1 }
    );
    let both = Stmt {
        sql: Some("SELECT 1".into()),
        sql_id: Some(1),
        ..Stmt::default()
    };
    let err = s
        .execute(&conn, StreamRequest::Execute { stmt: both })
        .unwrap_err();
    assert_eq!(err, ProtocolError::SqlAndSqlId);
    let neither = StreamRequest::Execute {
        stmt: Stmt::default(),
    };
    assert_eq!(s.execute(&conn, neither).unwrap_err(), ProtocolError::NoSql);
    ok(s.execute(&conn, StreamRequest::CloseSql { sql_id: 1 })
        .unwrap());
    ok(s.execute(&conn, StreamRequest::CloseSql { sql_id: 1 })
        .unwrap());
    let err = s
        .execute(&conn, StreamRequest::Execute { stmt: by_id })
        .unwrap_err();
    assert_eq!(err, ProtocolError::SqlNotFound { sql_id: 1 });
    assert_eq!(count(&conn, "t"), 1);
    for id in 0..DEFAULT_MAX_STORED_SQLS as i32 {
        ok(s.execute(&conn, store(id, "SELECT 1")).unwrap());
    }
    let full = s.execute(&conn, store(-1, "SELECT 1")).unwrap_err();
    assert_eq!(
        full,
        ProtocolError::TooManySqls {
            max: DEFAULT_MAX_STORED_SQLS
        }
    );
}

#[test]
fn regression_store_sql_accepted_a_text_over_the_sql_length_limit() {
    let conn = mem();
    let guard = Guard::enter(&conn, &GuardConfig::default(), false).unwrap();
    let mut s = Stream::new(StreamConfig {
        max_stored_sql_bytes: usize::MAX,
        ..StreamConfig::default()
    });
    let limit = SqlLimits::default().sql_length as usize;
    let text = |len: usize| format!("SELECT '{}'", "x".repeat(len - 9));
    let err = s
        .execute(
            &guard,
            StreamRequest::StoreSql {
                sql_id: 1,
                sql: text(7 << 20),
            },
        )
        .unwrap_err();
    assert_eq!(
        err,
        ProtocolError::StoredSqlTooLong {
            len: 7 << 20,
            max: limit
        }
    );
    assert_eq!(err.code(), "SQL_TOO_LONG");
    let at_limit = StreamRequest::StoreSql {
        sql_id: 1,
        sql: text(limit),
    };
    ok(s.execute(&guard, at_limit).unwrap());
}

#[test]
fn stored_sql_is_capped_in_bytes_per_stream() {
    let conn = mem();
    let mut s = Stream::new(StreamConfig {
        max_stored_sql_bytes: 100,
        ..StreamConfig::default()
    });
    let store = |id: i32, len: usize| StreamRequest::StoreSql {
        sql_id: id,
        sql: "x".repeat(len),
    };
    ok(s.execute(&conn, store(1, 60)).unwrap());
    ok(s.execute(&conn, store(2, 40)).unwrap());
    let err = s.execute(&conn, store(3, 1)).unwrap_err();
    assert_eq!(err, ProtocolError::StoredSqlFull { max: 100 });
    assert_eq!(err.code(), "SQL_STORE_FULL");
    // `close_sql` gives the bytes back.
    ok(s.execute(&conn, StreamRequest::CloseSql { sql_id: 1 })
        .unwrap());
    ok(s.execute(&conn, store(3, 60)).unwrap());
}

#[test]
fn close_rolls_back_and_ends_the_stream() {
    let conn = mem();
    let mut s = stream();
    sql(&mut s, &conn, "BEGIN").unwrap();
    sql(&mut s, &conn, "INSERT INTO t(i) VALUES (1)").unwrap();
    assert_eq!(
        ok(s.execute(&conn, StreamRequest::Close).unwrap()),
        StreamResponse::Close
    );
    assert!(s.is_closed());
    assert!(conn.is_autocommit());
    assert_eq!(count(&conn, "t"), 0);
    let err = s.execute(&conn, StreamRequest::GetAutocommit).unwrap_err();
    assert_eq!(err, ProtocolError::StreamClosed);
}

#[test]
fn transaction_spans_requests_and_abandon_rolls_back() {
    let conn = mem();
    let mut s = stream();
    // Two HTTP requests on the same stream: the transaction stays open in between.
    sql(&mut s, &conn, "BEGIN").unwrap();
    sql(&mut s, &conn, "INSERT INTO t(i) VALUES (1)").unwrap();
    assert!(!conn.is_autocommit());
    assert_eq!(
        sql(&mut s, &conn, "SELECT count(*) FROM t").unwrap().rows,
        vec![vec![int(1)]]
    );
    // The stream expires: the server abandons it.
    s.abandon(&conn).unwrap();
    assert!(s.is_closed() && conn.is_autocommit());
    assert_eq!(count(&conn, "t"), 0);
}

#[test]
fn result_cap_applies_across_a_pipeline() {
    let conn = mem();
    let mut s = Stream::new(StreamConfig {
        max_result_bytes: 4_000,
        ..StreamConfig::default()
    });
    let big = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 100) SELECT x, printf('%.20c', 'y') FROM c";
    let results = s
        .execute_pipeline(
            &conn,
            vec![
                StreamRequest::Execute {
                    stmt: Stmt::sql("SELECT 1"),
                },
                StreamRequest::Execute {
                    stmt: Stmt::sql(big),
                },
            ],
        )
        .unwrap();
    assert!(matches!(results[0], StreamResult::Ok { .. }));
    let StreamResult::Error { error } = &results[1] else {
        panic!("cap not applied")
    };
    assert_eq!(error.code.as_deref(), Some("RESPONSE_TOO_LARGE"));
    assert!(error.message.contains("4000 bytes"), "{}", error.message);
    // Each request alone fits: a fresh budget per `execute`.
    let small = "SELECT x FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 50) SELECT x FROM c)";
    assert_eq!(sql(&mut s, &conn, small).unwrap().rows.len(), 50);
}

#[test]
fn returning_past_the_cap_is_undone() {
    let conn = mem();
    let mut s = Stream::new(StreamConfig {
        max_result_bytes: 1_000,
        ..StreamConfig::default()
    });
    let insert = "INSERT INTO t(i) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 500) SELECT x FROM c RETURNING i";
    assert_err(
        sql(&mut s, &conn, insert),
        "RESPONSE_TOO_LARGE",
        "result too large",
    );
    assert_eq!(count(&conn, "t"), 0, "the insert was rolled back");
    assert!(conn.is_autocommit());
    // Inside an explicit transaction only the statement is undone.
    sql(&mut s, &conn, "BEGIN").unwrap();
    sql(&mut s, &conn, "INSERT INTO t(i) VALUES (-1)").unwrap();
    assert_err(
        sql(&mut s, &conn, insert),
        "RESPONSE_TOO_LARGE",
        "result too large",
    );
    assert!(!conn.is_autocommit());
    sql(&mut s, &conn, "COMMIT").unwrap();
    assert_eq!(count(&conn, "t"), 1);
    // A small RETURNING works and its rows come back.
    let r = sql(&mut s, &conn, "INSERT INTO t(i) VALUES (7) RETURNING i").unwrap();
    assert_eq!(r.rows, vec![vec![int(7)]]);
    assert_eq!(count(&conn, "t"), 2);
}

#[test]
fn json_pipeline_as_libsql_client_sends_it() {
    let conn = mem();
    let body: PipelineReqBody = serde_json::from_value(json!({
        "baton": null,
        "requests": [
            {"type": "execute", "stmt": {"sql": "INSERT INTO t(i, b) VALUES (?, ?)", "args": [
                {"type": "integer", "value": "9223372036854775807"},
                {"type": "blob", "base64": "AAEC/w=="}
            ], "named_args": [], "want_rows": true}},
            {"type": "execute", "stmt": {"sql": "SELECT i, b FROM t", "args": [], "named_args": [], "want_rows": true}},
            {"type": "close"}
        ]
    }))
    .unwrap();
    let results = stream().execute_pipeline(&conn, body.requests).unwrap();
    let v = serde_json::to_value(&results).unwrap();
    assert_eq!(v[0]["response"]["result"]["last_insert_rowid"], json!("1"));
    assert_eq!(
        v[1]["response"]["result"]["rows"],
        json!([[{"type": "integer", "value": "9223372036854775807"}, {"type": "blob", "base64": "AAEC/w"}]])
    );
    assert_eq!(v[2], json!({"type": "ok", "response": {"type": "close"}}));
}
