//! The tenant SQL guard: every item tries the attack through the executor, checks the clear
//! error, and checks that nothing leaked or changed (read back by trusted code afterwards).

use std::time::Duration;

use hrana::guard::{expected_open_settings_ok, Guard, GuardConfig, SqlLimits};
use hrana::proto::{Stmt, Value};
use rusqlite::Connection;

use crate::util::*;

fn items(conn: &Connection) -> i64 {
    count(conn, "items")
}

#[test]
fn configured_connection_passes_the_open_settings_check() {
    let (_dir, conn) = tenant_db();
    assert!(expected_open_settings_ok(&conn));
}

#[test]
fn attach_and_vacuum_into_are_denied_and_create_no_file() {
    let (dir, conn) = tenant_db();
    let target = dir.path().join("stolen.db");
    let t = target.display();
    for sql in [
        format!("ATTACH DATABASE '{t}' AS x"),
        format!("VACUUM INTO '{t}'"),
        format!("ATTACH 'file:{t}?mode=rwc' AS x"),
    ] {
        assert_err(tenant_sql(&conn, false, &sql), "SQLITE_AUTH", "ATTACH");
    }
    assert_err(
        tenant_sql(&conn, false, "DETACH DATABASE main"),
        "SQLITE_AUTH",
        "DETACH",
    );
    assert!(!target.exists());
    let attached: i64 = conn
        .query_row("SELECT count(*) FROM pragma_database_list", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(attached, 1);
}

#[test]
fn reserved_tables_are_invisible_to_tenant_sql() {
    let (_dir, conn) = tenant_db();
    let before = reserved_rows(&conn);
    for sql in [
        "SELECT * FROM _tenantd_config",
        "SELECT count(*) FROM _tenantd_config",
        "SELECT rowid FROM _TENANTD_CONFIG",
        "SELECT 1 FROM items WHERE EXISTS (SELECT 1 FROM _tenantd_config)",
        "SELECT * FROM items JOIN main._tenantd_config",
        "WITH x AS (SELECT v FROM _tenantd_config) SELECT * FROM x",
        "INSERT INTO items(name) SELECT v FROM _tenantd_config",
        "INSERT INTO _tenantd_config VALUES ('k', 'v')",
        "UPDATE _tenantd_config SET v = 'pwned'",
        "DELETE FROM _tenantd_config",
        "DROP TABLE _tenantd_config",
        "ALTER TABLE _tenantd_config RENAME TO mine",
        "ALTER TABLE _tenantd_config ADD COLUMN c",
        "CREATE INDEX i ON _tenantd_config(v)",
        "CREATE TRIGGER tr AFTER INSERT ON _tenantd_config BEGIN SELECT 1; END",
        "CREATE TABLE _tenantd_new(x)",
        "CREATE VIEW _tenantd_v AS SELECT 1",
        "CREATE VIRTUAL TABLE _tenantd_fts USING fts5(x)",
        "PRAGMA table_info(_tenantd_config)",
        "PRAGMA index_list('_tenantd_config')",
    ] {
        assert_err(
            tenant_sql(&conn, false, sql),
            "SQLITE_AUTH",
            "reserved for tenantd",
        );
    }
    for sql in ["ANALYZE", "ANALYZE _tenantd_config"] {
        assert_err(
            tenant_sql(&conn, false, sql),
            "SQLITE_AUTH",
            "reserved table `_tenantd_config`",
        );
    }
    assert_eq!(reserved_rows(&conn), before);
    assert_eq!(items(&conn), 2);
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name LIKE '\\_tenantd\\_%' ESCAPE '\\'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1, "no reserved object was created");
}

#[test]
fn views_and_triggers_cannot_launder_access() {
    let (_dir, conn) = tenant_db();
    // SQLite does not authorize a view's body at CREATE time; reading through it is denied.
    tenant_sql(
        &conn,
        false,
        "CREATE VIEW peek AS SELECT v FROM _tenantd_config",
    )
    .unwrap();
    assert_err(
        tenant_sql(&conn, false, "SELECT * FROM peek"),
        "SQLITE_AUTH",
        "reserved",
    );
    // Same for a trigger on the tenant's own table that writes the reserved table: the body is
    // authorized when a tenant statement fires it.
    tenant_sql(
        &conn,
        false,
        "CREATE TRIGGER t AFTER INSERT ON items BEGIN UPDATE _tenantd_config SET v = 'pwned'; END",
    )
    .unwrap();
    assert_err(
        tenant_sql(&conn, false, "INSERT INTO items(name) VALUES ('x')"),
        "SQLITE_AUTH",
        "reserved",
    );
    assert_eq!(
        reserved_rows(&conn),
        vec![("secret".to_owned(), SECRET.to_owned())]
    );
    assert_eq!(items(&conn), 2);
}

#[test]
fn restriction_is_per_use_trusted_code_reads_reserved_tables_after() {
    let (_dir, conn) = tenant_db();
    // Trusted code caches a statement on the reserved table before tenant SQL runs.
    let trusted_sql = "SELECT v FROM _tenantd_config WHERE k = 'secret'";
    conn.prepare_cached(trusted_sql)
        .unwrap()
        .query_row([], |r| r.get::<_, String>(0))
        .unwrap();
    {
        let guard = Guard::enter(&conn, &GuardConfig::default(), false).unwrap();
        // Same text under the guard: re-authorized, denied.
        assert_err(
            sql(&mut stream(), &guard, trusted_sql),
            "SQLITE_AUTH",
            "reserved",
        );
        // Even the cached statement is re-prepared under the authorizer while the guard lives.
        let cached = guard
            .prepare_cached(trusted_sql)
            .and_then(|mut s| s.query_row([], |r| r.get::<_, String>(0)));
        assert!(cached.is_err(), "cached statement bypassed the guard");
    }
    let v: String = conn
        .prepare_cached(trusted_sql)
        .unwrap()
        .query_row([], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SECRET);
}

#[test]
fn internal_tables_cannot_be_written_or_raw_pages_read() {
    let (_dir, conn) = tenant_db();
    conn.execute_batch(
        "CREATE TABLE seq(id INTEGER PRIMARY KEY AUTOINCREMENT); INSERT INTO seq DEFAULT VALUES;",
    )
    .unwrap();
    assert!(tenant_sql(&conn, false, "SELECT name, sql FROM sqlite_master").is_ok());
    assert!(tenant_sql(&conn, false, "SELECT * FROM sqlite_sequence").is_ok());
    assert_err(
        tenant_sql(
            &conn,
            false,
            "UPDATE sqlite_master SET sql = 'CREATE TABLE items(x)' WHERE name = 'items'",
        ),
        "SQLITE_ERROR",
        "may not be modified",
    );
    conn.execute_batch("ANALYZE items").unwrap();
    assert_err(
        tenant_sql(&conn, false, "DELETE FROM sqlite_stat1"),
        "SQLITE_AUTH",
        "internal table",
    );
    assert_err(
        tenant_sql(
            &conn,
            false,
            "INSERT INTO sqlite_stat1 VALUES ('items', NULL, '1')",
        ),
        "SQLITE_AUTH",
        "internal table",
    );
    assert_err(
        tenant_sql(&conn, false, "PRAGMA writable_schema = ON"),
        "SQLITE_AUTH",
        "writable_schema",
    );
    assert_err(
        tenant_sql(&conn, false, "SELECT * FROM dbstat"),
        "SQLITE_AUTH",
        "dbstat",
    );
    assert_err(
        tenant_sql(&conn, false, "CREATE VIRTUAL TABLE s USING dbstat"),
        "SQLITE_AUTH",
        "dbstat",
    );
    let stat: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_stat1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stat, 1);
    let schema: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'items'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(schema.contains("name TEXT"), "{schema}");
}

#[test]
fn pragmas_outside_the_allow_list_are_denied_and_change_nothing() {
    let (_dir, conn) = tenant_db();
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    for (sql, needle) in [
        ("PRAGMA journal_mode = DELETE", "read-only"),
        ("PRAGMA user_version = 42", "read-only"),
        ("PRAGMA temp_store = MEMORY", "not allowed"),
        ("PRAGMA synchronous = OFF", "not allowed"),
        ("PRAGMA query_only = 0", "not allowed"),
        ("PRAGMA cache_size = -1000000", "not allowed"),
        ("PRAGMA database_list", "not allowed"),
        ("SELECT * FROM pragma_database_list", "not allowed"),
        ("PRAGMA trusted_schema = ON", "not allowed"),
        ("PRAGMA mmap_size = 1000000000", "not allowed"),
        ("PRAGMA temp_store_directory = '/tmp'", "not allowed"),
    ] {
        assert_err(tenant_sql(&conn, false, sql), "SQLITE_AUTH", needle);
    }
    let after: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(after, journal);
    assert_eq!(
        conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        0
    );
    assert!(expected_open_settings_ok(&conn), "trusted_schema still off");
    // Introspection still works.
    let cols = tenant_sql(&conn, false, "PRAGMA table_info(items)").unwrap();
    assert_eq!(cols.rows.len(), 3);
    assert!(tenant_sql(&conn, false, "PRAGMA user_version").is_ok());
    assert!(tenant_sql(&conn, false, "SELECT name FROM pragma_table_info('items')").is_ok());
    assert!(tenant_sql(&conn, false, "PRAGMA foreign_key_list(items)").is_ok());
}

#[test]
fn extension_loading_is_denied() {
    let (_dir, conn) = tenant_db();
    assert_err(
        tenant_sql(&conn, false, "SELECT load_extension('/tmp/evil.so')"),
        "SQLITE_AUTH",
        "load_extension",
    );
}

#[test]
fn limits_are_reduced_during_use_and_restored_after() {
    let (_dir, conn) = tenant_db();
    let cfg = GuardConfig {
        limits: SqlLimits {
            length: 1_000,
            sql_length: 500,
            expr_depth: 10,
            compound_select: 3,
            ..SqlLimits::default()
        },
        ..GuardConfig::default()
    };
    assert_err(
        tenant_sql_with(&conn, &cfg, false, "SELECT zeroblob(2000)"),
        "SQLITE_TOOBIG",
        "too big",
    );
    assert_err(
        tenant_sql_with(
            &conn,
            &cfg,
            false,
            "INSERT INTO items(data) VALUES (randomblob(5000))",
        ),
        "SQLITE_TOOBIG",
        "too big",
    );
    let long = format!("SELECT '{}'", "x".repeat(600));
    assert_err(
        tenant_sql_with(&conn, &cfg, false, &long),
        "SQLITE_TOOBIG",
        "statement too long",
    );
    let deep = format!("SELECT {}1", "1 + ".repeat(20));
    assert!(tenant_sql_with(&conn, &cfg, false, &deep)
        .unwrap_err()
        .message
        .contains("depth"));
    let compound = "SELECT 1 UNION SELECT 2 UNION SELECT 3 UNION SELECT 4 UNION SELECT 5";
    assert!(tenant_sql_with(&conn, &cfg, false, compound)
        .unwrap_err()
        .message
        .contains("too many terms"));
    let params = format!("SELECT ?{}", SqlLimits::default().variable_number + 1);
    assert!(tenant_sql(&conn, false, &params)
        .unwrap_err()
        .message
        .contains("variable number"));
    assert_eq!(items(&conn), 2);
    // Restored: trusted code is not limited.
    let n: i64 = conn
        .query_row("SELECT length(zeroblob(2000000))", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2_000_000);
    conn.query_row(&deep, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(
        conn.limit(rusqlite::limits::Limit::SQLITE_LIMIT_ATTACHED)
            .unwrap(),
        10
    );
}

#[test]
fn trigger_recursion_is_bounded() {
    let (_dir, conn) = tenant_db();
    conn.execute_batch(
        "PRAGMA recursive_triggers = ON;
         CREATE TABLE r(n);
         CREATE TRIGGER again AFTER INSERT ON r WHEN new.n < 1000 BEGIN INSERT INTO r VALUES (new.n + 1); END;",
    )
    .unwrap();
    let err = tenant_sql(&conn, false, "INSERT INTO r VALUES (0)").unwrap_err();
    assert!(err.message.contains("trigger"), "{err:?}");
    assert_eq!(count(&conn, "r"), 0, "the statement was rolled back");
}

#[test]
fn time_budget_interrupts_with_a_clear_error_and_changes_nothing() {
    let (_dir, conn) = tenant_db();
    let cfg = GuardConfig {
        time_budget: Duration::from_millis(50),
        ..GuardConfig::default()
    };
    let forever =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
    assert_err(
        tenant_sql_with(&conn, &cfg, false, forever),
        "SQLITE_INTERRUPT",
        "time budget exceeded",
    );
    let insert = "INSERT INTO items(name) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT 'n' || x FROM c";
    assert_err(
        tenant_sql_with(&conn, &cfg, false, insert),
        "SQLITE_INTERRUPT",
        "50 ms",
    );
    assert_eq!(items(&conn), 2);
    // After the guard the handler is gone: trusted work far longer than 1 ms runs to the end.
    drop(tenant_sql_with(
        &conn,
        &GuardConfig {
            time_budget: Duration::from_millis(1),
            ..cfg
        },
        false,
        "SELECT 1",
    ));
    let n: i64 = conn
        .query_row("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 2000000) SELECT count(*) FROM c", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2_000_000);
}

#[test]
fn read_only_is_enforced_by_sqlite_and_restored_after() {
    let (_dir, conn) = tenant_db();
    for sql in [
        "INSERT INTO items(name) VALUES ('x')",
        "UPDATE items SET name = 'x'",
        "DELETE FROM items",
        "CREATE TABLE t(x)",
        "DROP TABLE items",
        "INSERT INTO items(name) VALUES ('x') RETURNING id",
    ] {
        assert_err(tenant_sql(&conn, true, sql), "SQLITE_READONLY", "readonly");
    }
    assert_err(
        tenant_sql(&conn, true, "PRAGMA query_only = 0"),
        "SQLITE_AUTH",
        "query_only",
    );
    assert_eq!(
        tenant_sql(&conn, true, "SELECT count(*) FROM items")
            .unwrap()
            .rows,
        vec![vec![int(2)]]
    );
    // A read-only stream cannot escape through a sequence either.
    {
        let guard = Guard::enter(&conn, &GuardConfig::default(), true).unwrap();
        let seq = hrana::proto::StreamRequest::Sequence {
            sql: Some("PRAGMA query_only=0; INSERT INTO items(name) VALUES ('x');".into()),
            sql_id: None,
        };
        let r = stream().execute(&guard, seq).unwrap();
        assert!(matches!(r, hrana::proto::StreamResult::Error { .. }));
    }
    assert_eq!(items(&conn), 2);
    // Trusted code writes again once the guard is gone; a read-write guard writes too.
    conn.execute("INSERT INTO items(name) VALUES ('trusted')", [])
        .unwrap();
    tenant_sql(&conn, false, "INSERT INTO items(name) VALUES ('rw')").unwrap();
    assert_eq!(items(&conn), 4);
}

#[test]
fn ordinary_tenant_work_is_unaffected() {
    let (_dir, conn) = tenant_db();
    let mut s = stream();
    let guard = Guard::enter(&conn, &GuardConfig::default(), false).unwrap();
    for q in [
        "CREATE TABLE notes(id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT, tags TEXT)",
        "CREATE INDEX notes_body ON notes(body)",
        "CREATE VIEW v AS SELECT body FROM notes",
        "CREATE VIRTUAL TABLE search USING fts5(body)",
        "CREATE TRIGGER n AFTER INSERT ON notes BEGIN INSERT INTO search VALUES (new.body); END",
        "BEGIN",
        "SAVEPOINT sp",
        "RELEASE sp",
        "COMMIT",
        "ANALYZE notes",
        "SELECT json_object('a', 1), upper('x'), sqlite_version()",
    ] {
        sql(&mut s, &guard, q).unwrap_or_else(|e| panic!("{q}: {e:?}"));
    }
    let stmt = Stmt {
        args: vec![text("hello"), Value::Null],
        ..Stmt::sql("INSERT INTO notes(body, tags) VALUES (?, ?)")
    };
    exec(&mut s, &guard, stmt).unwrap();
    assert_eq!(
        sql(
            &mut s,
            &guard,
            "SELECT body FROM search WHERE search MATCH 'hello'"
        )
        .unwrap()
        .rows
        .len(),
        1
    );
}
