//! Which requests cannot write, so the server may run them on a reader connection (WAL readers
//! never wait for the writer). Two checks: [`looks_read_only`], a cheap look at the first
//! keyword that lets obvious writes skip the reader, and [`prepares_read_only`], SQLite's own
//! answer (`sqlite3_stmt_readonly`) for the prepared statement. Neither is what makes a reader
//! safe: a reader has `query_only` on, so a statement misjudged here fails with
//! `SQLITE_READONLY` rather than writing.

use rusqlite::Connection;

use super::batch::resolve_sql;
use super::stream::Stream;
use crate::proto::{Batch, StreamRequest};

/// True if `sql`'s first keyword (after whitespace and comments) is `SELECT`, `WITH` or
/// `VALUES`: the statement may be read-only. Everything else (writes, DDL, pragmas,
/// transaction control) is not considered.
pub fn looks_read_only(sql: &str) -> bool {
    let word = first_keyword(sql);
    ["SELECT", "WITH", "VALUES"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(word))
}

/// True if `sql` is one statement that prepares on `conn` and that SQLite reports as not
/// writing the database, and that is not transaction control (`BEGIN`, `COMMIT`, … count as
/// read-only for SQLite, but open or end a transaction on the connection).
pub fn prepares_read_only(conn: &Connection, sql: &str) -> bool {
    if !looks_read_only(sql) {
        return false;
    }
    match conn.prepare(sql) {
        Ok(stmt) => stmt.readonly(),
        Err(_) => false, // let the writer report the error, as it always did
    }
}

/// The first word of `sql` after whitespace and `--`/`/* */` comments.
pub(crate) fn first_keyword(sql: &str) -> &str {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, after)| after);
        } else {
            break;
        }
    }
    let end = rest
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(rest.len());
    &rest[..end]
}

impl Stream {
    /// True if every statement `requests` would run passes `check` (e.g. [`looks_read_only`],
    /// or [`prepares_read_only`] on a connection), resolving `sql_id`s against this stream's
    /// texts and the pipeline's own `store_sql`s. `sequence` never passes (several statements);
    /// `close`, `describe`, `store_sql`, `close_sql` and `get_autocommit` run no statement.
    pub fn reads_only(
        &self,
        requests: &[StreamRequest],
        mut check: impl FnMut(&str) -> bool,
    ) -> bool {
        let mut stored = self.stored_sqls().clone();
        requests.iter().all(|req| match req {
            StreamRequest::Execute { stmt } => {
                resolve_sql(stmt.sql.as_deref(), stmt.sql_id, &stored).is_ok_and(&mut check)
            }
            StreamRequest::Batch { batch } => batch_passes(batch, &stored, &mut check),
            StreamRequest::Sequence { .. } => false,
            StreamRequest::StoreSql { sql_id, sql } => {
                stored.insert(*sql_id, sql.clone());
                true
            }
            StreamRequest::Close
            | StreamRequest::Describe { .. }
            | StreamRequest::CloseSql { .. }
            | StreamRequest::GetAutocommit => true,
        })
    }

    /// True if every step of `batch` passes `check` (see [`Stream::reads_only`]).
    pub fn batch_reads_only(&self, batch: &Batch, mut check: impl FnMut(&str) -> bool) -> bool {
        batch_passes(batch, self.stored_sqls(), &mut check)
    }
}

fn batch_passes(
    batch: &Batch,
    stored: &std::collections::HashMap<i32, String>,
    check: &mut impl FnMut(&str) -> bool,
) -> bool {
    batch.steps.iter().all(|step| {
        resolve_sql(step.stmt.sql.as_deref(), step.stmt.sql_id, stored).is_ok_and(&mut *check)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_queries_look_read_only() {
        for sql in [
            "SELECT 1",
            "  select 1",
            "-- c\nWITH x AS (SELECT 1) SELECT * FROM x",
            "/* a */values (1)",
        ] {
            assert!(looks_read_only(sql), "{sql}");
        }
        for sql in [
            "INSERT INTO t VALUES (1)",
            "BEGIN",
            "PRAGMA foreign_keys = ON",
            "",
            "selected",
            "-- SELECT\nDELETE FROM t",
        ] {
            assert!(!looks_read_only(sql), "{sql}");
        }
    }

    #[test]
    fn sqlite_decides_for_what_looks_read_only() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t(x)").unwrap();
        assert!(prepares_read_only(&conn, "SELECT x FROM t"));
        assert!(prepares_read_only(
            &conn,
            "WITH c AS (SELECT 1) SELECT * FROM c"
        ));
        assert!(!prepares_read_only(
            &conn,
            "WITH c(x) AS (SELECT 1) INSERT INTO t SELECT x FROM c"
        ));
        assert!(
            !prepares_read_only(&conn, "SELECT nope FROM t"),
            "does not prepare"
        );
        assert!(
            !prepares_read_only(&conn, "SELECT 1; SELECT 2"),
            "two statements"
        );
        assert!(!prepares_read_only(&conn, "BEGIN"));
    }
}
