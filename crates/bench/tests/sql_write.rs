//! The SQL benchmark's write (bench/wrk/hrana.lua) against its schema (bench/sql/0001_kv.sql):
//! every write must change stored bytes, or the benchmark measures no WAL frame and no fsync.

use rusqlite::types::Value;
use rusqlite::{params, Connection};

fn repo_file(path: &str) -> String {
    let full = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("cannot read {full}: {e}"))
}

/// The upsert hrana.lua sends: the quoted SQL on its line that names `INSERT INTO kv`.
fn write_sql() -> String {
    let lua = repo_file("bench/wrk/hrana.lua");
    let line = lua
        .lines()
        .find(|l| l.contains("INSERT INTO kv") && !l.trim_start().starts_with("--"))
        .expect("hrana.lua has an INSERT INTO kv statement");
    let start = line.find("INSERT").unwrap();
    let end = line[start..].find('"').map_or(line.len(), |i| start + i);
    line[start..end].to_string()
}

fn row(conn: &Connection, k: i64) -> Vec<String> {
    let mut stmt = conn.prepare("SELECT * FROM kv WHERE k = ?").unwrap();
    let n = stmt.column_count();
    stmt.query_row([k], |r| {
        (0..n)
            .map(|i| r.get::<_, Value>(i).map(|v| format!("{v:?}")))
            .collect()
    })
    .unwrap()
}

#[test]
fn regression_sql_bench_write_stored_the_seeded_value_and_wrote_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join("t.db")).unwrap();
    conn.execute_batch(&repo_file("bench/sql/0001_kv.sql"))
        .unwrap();
    let sql = write_sql();
    let seeded: String = conn
        .query_row("SELECT v FROM kv WHERE k = 1", [], |r| r.get(0))
        .unwrap();

    // Even a write of the value already stored changes the row, so it costs a WAL frame.
    let before = row(&conn, 1);
    assert_eq!(conn.execute(&sql, params![1, seeded]).unwrap(), 1);
    let after = row(&conn, 1);
    assert_ne!(
        before, after,
        "`{sql}` with the seeded value left the row as it was"
    );

    // And the check's counter counts every write: bench/sql.sh sums it after the run.
    for (i, value) in ["w1-1-", "w1-2-", "w2-1-"].iter().enumerate() {
        conn.execute(&sql, params![2, value]).unwrap();
        let n: i64 = conn
            .query_row("SELECT n FROM kv WHERE k = 2", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, i as i64 + 1);
    }
    let total: f64 = conn
        .query_row("SELECT total(n) FROM kv", [], |r| r.get(0))
        .unwrap();
    assert_eq!(total, 4.0);
}
