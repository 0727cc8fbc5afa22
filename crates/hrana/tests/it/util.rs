//! Shared helpers: a tenant-like connection (open settings applied, a reserved table holding a
//! secret, a tenant table) and shortcuts to run SQL through a stream, guarded or not.

use hrana::exec::{Stream, StreamConfig};
use hrana::guard::{apply_open_settings, Guard, GuardConfig};
use hrana::proto::{self, Stmt, StmtResult, StreamRequest, StreamResponse, StreamResult, Value};
use rusqlite::Connection;

pub const SECRET: &str = "webhook-signing-secret";

/// A file-backed connection configured as the store does, with `_tenantd_config` (secret) and
/// a tenant table `items`.
pub fn tenant_db() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join("tenant.db")).unwrap();
    apply_open_settings(&conn).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=WAL;
         CREATE TABLE _tenantd_config(k TEXT PRIMARY KEY, v TEXT);
         INSERT INTO _tenantd_config VALUES ('secret', '{SECRET}');
         CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, data BLOB);
         INSERT INTO items(name) VALUES ('a'), ('b');"
    ))
    .unwrap();
    (dir, conn)
}

/// The reserved table, read by trusted code (no guard): proves nothing leaked or changed.
pub fn reserved_rows(conn: &Connection) -> Vec<(String, String)> {
    let mut s = conn
        .prepare("SELECT k, v FROM _tenantd_config ORDER BY k")
        .unwrap();
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

pub fn count(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

pub fn stream() -> Stream {
    Stream::new(StreamConfig::default())
}

/// Executes one statement on `stream`; Ok(result) or the in-band error.
pub fn exec(
    stream: &mut Stream,
    conn: &Connection,
    stmt: Stmt,
) -> Result<StmtResult, proto::Error> {
    match stream
        .execute(conn, StreamRequest::Execute { stmt })
        .expect("no protocol error")
    {
        StreamResult::Ok {
            response: StreamResponse::Execute { result },
        } => Ok(result),
        StreamResult::Ok { response } => panic!("unexpected response {response:?}"),
        StreamResult::Error { error } => Err(error),
    }
}

pub fn sql(stream: &mut Stream, conn: &Connection, text: &str) -> Result<StmtResult, proto::Error> {
    exec(stream, conn, Stmt::sql(text))
}

/// Runs `text` as tenant SQL under a default guard.
pub fn tenant_sql(
    conn: &Connection,
    read_only: bool,
    text: &str,
) -> Result<StmtResult, proto::Error> {
    tenant_sql_with(conn, &GuardConfig::default(), read_only, text)
}

pub fn tenant_sql_with(
    conn: &Connection,
    cfg: &GuardConfig,
    read_only: bool,
    text: &str,
) -> Result<StmtResult, proto::Error> {
    let guard = Guard::enter(conn, cfg, read_only).unwrap();
    sql(&mut stream(), &guard, text)
}

/// Asserts `r` is an in-band error with `code` whose message contains `needle`.
#[track_caller]
pub fn assert_err(r: Result<StmtResult, proto::Error>, code: &str, needle: &str) {
    match r {
        Ok(res) => panic!("expected {code} error containing {needle:?}, got {res:?}"),
        Err(e) => {
            assert_eq!(e.code.as_deref(), Some(code), "{e:?}");
            assert!(
                e.message.contains(needle),
                "message {:?} lacks {needle:?}",
                e.message
            );
        }
    }
}

pub fn int(value: i64) -> Value {
    Value::Integer { value }
}

pub fn text(value: &str) -> Value {
    Value::Text {
        value: value.into(),
    }
}
