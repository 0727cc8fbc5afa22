//! What tenant SQL may plant in the schema or change on the shared connection, and how it is
//! kept from reserved objects outside the guard's lifetime: triggers and views fired by trusted
//! SQL, TEMP objects, renames to reserved names, foreign keys to reserved tables, and the
//! `foreign_keys` pragmas (allowed, reset when the guard ends).

use hrana::guard::{Guard, GuardConfig};
use rusqlite::Connection;

use crate::util::*;

fn items(conn: &Connection) -> i64 {
    count(conn, "items")
}

#[test]
fn regression_dropped_guard_lets_trusted_sql_fire_tenant_triggers_unguarded() {
    let (_dir, conn) = tenant_db();
    tenant_sql(&conn, false, "CREATE TABLE loot(v)").unwrap();
    tenant_sql(
        &conn,
        false,
        "CREATE TRIGGER steal AFTER INSERT ON items BEGIN
             INSERT INTO loot SELECT v FROM _tenantd_config;
             UPDATE _tenantd_config SET v = 'pwned';
         END",
    )
    .unwrap();
    // The guard is gone; trusted code inserts into the tenant's table and fires the trigger.
    let err = conn
        .execute("INSERT INTO items(name) VALUES ('from tenantd')", [])
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("access to _tenantd_config.v is prohibited"),
        "{err}"
    );
    // Through a view the tenant planted, too.
    tenant_sql(
        &conn,
        false,
        "CREATE VIEW peek AS SELECT v FROM _tenantd_config",
    )
    .unwrap();
    let err = conn
        .query_row("SELECT v FROM peek", [], |r| r.get::<_, String>(0))
        .unwrap_err();
    assert!(err.to_string().contains("prohibited"), "{err}");
    assert_eq!(count(&conn, "loot"), 0);
    assert_eq!(
        reserved_rows(&conn),
        vec![("secret".to_owned(), SECRET.to_owned())]
    );
    // Trusted code itself still reads and writes reserved tables, and inserts into tenant
    // tables whose triggers keep to tenant tables.
    tenant_sql(&conn, false, "DROP TRIGGER steal").unwrap();
    conn.execute("INSERT INTO items(name) VALUES ('from tenantd')", [])
        .unwrap();
    conn.execute("UPDATE _tenantd_config SET v = v", [])
        .unwrap();
}

#[test]
fn regression_temp_objects_escape_the_quota_and_outlive_the_request() {
    let (_dir, conn) = tenant_db();
    for sql in [
        "CREATE TEMP TABLE scratch(x)",
        "CREATE TEMP TABLE _tenantd_config(k, v)",
        "CREATE TEMPORARY TABLE scratch AS SELECT 1",
        "CREATE TABLE temp.scratch(x)",
        "CREATE TEMP VIEW v AS SELECT 1",
        "CREATE TEMP TRIGGER tr AFTER INSERT ON items BEGIN SELECT 1; END",
        "CREATE VIRTUAL TABLE temp.f USING fts5(x)",
        "CREATE VIRTUAL TABLE temp.r USING rtree(id, a, b)",
        "CREATE VIEW temp.v AS SELECT 1",
        "CREATE TRIGGER temp.tr AFTER INSERT ON items BEGIN SELECT 1; END",
    ] {
        assert_err(tenant_sql(&conn, false, sql), "SQLITE_AUTH", "TEMP tables");
    }
    let temp_objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_temp_master", [], |r| r.get(0))
        .unwrap();
    assert_eq!(temp_objects, 0);
    // A regular table, and its index, are still fine.
    tenant_sql(&conn, false, "CREATE TABLE scratch(x)").unwrap();
    tenant_sql(&conn, false, "CREATE INDEX scratch_x ON scratch(x)").unwrap();
}

#[test]
fn regression_rename_to_reserved_name_squats_it_for_good() {
    let (_dir, conn) = tenant_db();
    tenant_sql(&conn, false, "CREATE VIRTUAL TABLE fts USING fts5(body)").unwrap();
    assert_err(
        tenant_sql(
            &conn,
            false,
            "CREATE VIRTUAL TABLE _tenantd USING fts5(body)",
        ),
        "SQLITE_AUTH",
        "`_tenantd_data` is reserved",
    );
    for sql in [
        "ALTER TABLE items RENAME TO _tenantd_x",
        "alter table ITEMS rename to _TenantD_X",
        "ALTER TABLE main.items RENAME TO \"_tenantd_x\"",
        "ALTER TABLE \"main\".\"items\" RENAME TO `_tenantd_x`",
        "ALTER TABLE [items] RENAME TO [_tenantd_x]",
        "ALTER TABLE items RENAME TO '_tenantd_x'",
        "ALTER /* x */ TABLE items -- y\n RENAME TO _tenantd_x",
        // Its shadow tables would become `_tenantd_data`, … (creating it is refused already).
        "ALTER TABLE fts RENAME TO _tenantd",
    ] {
        assert_err(
            tenant_sql(&conn, false, sql),
            "SQLITE_AUTH",
            "reserved for tenantd",
        );
    }
    // In a `sequence`, after a harmless statement, too.
    let guard = Guard::enter(&conn, &GuardConfig::default(), false).unwrap();
    let req = hrana::proto::StreamRequest::Sequence {
        sql: Some("SELECT 1; ALTER TABLE items RENAME TO _tenantd_x".into()),
        sql_id: None,
    };
    match stream().execute(&guard, req).unwrap() {
        hrana::proto::StreamResult::Error { error } => {
            assert!(error.message.contains("reserved for tenantd"), "{error:?}")
        }
        other => panic!("sequence renamed to a reserved name: {other:?}"),
    }
    drop(guard);
    assert_eq!(items(&conn), 2, "items is still there under its name");
    // A normal rename, and a column rename, still work.
    tenant_sql(&conn, false, "ALTER TABLE items RENAME TO things").unwrap();
    tenant_sql(
        &conn,
        false,
        "ALTER TABLE things RENAME COLUMN name TO label",
    )
    .unwrap();
    tenant_sql(&conn, false, "ALTER TABLE things RENAME TO \"items\"").unwrap();
    assert_eq!(items(&conn), 2);
}

fn pragma_on(conn: &Connection, name: &str) -> bool {
    conn.pragma_query_value(None, name, |r| r.get(0)).unwrap()
}

#[test]
fn regression_foreign_keys_pragmas_refused_so_libsql_migrate_failed() {
    let (_dir, conn) = tenant_db();
    assert!(pragma_on(&conn, "foreign_keys"), "the baseline is on");
    tenant_sql(&conn, false, "CREATE TABLE parent(id INTEGER PRIMARY KEY)").unwrap();
    tenant_sql(
        &conn,
        false,
        "CREATE TABLE child(id INTEGER PRIMARY KEY, p INTEGER REFERENCES parent(id))",
    )
    .unwrap();
    {
        // What @libsql/client's migrate() sends first and last, around its transaction.
        let guard = Guard::enter(&conn, &GuardConfig::default(), false).unwrap();
        let mut s = stream();
        sql(&mut s, &guard, "PRAGMA foreign_keys=off").unwrap();
        sql(&mut s, &guard, "PRAGMA defer_foreign_keys = ON").unwrap();
        sql(&mut s, &guard, "INSERT INTO child VALUES (1, 42)").unwrap();
        assert!(!pragma_on(&guard, "foreign_keys"));
        sql(&mut s, &guard, "PRAGMA foreign_keys").unwrap();
    }
    // The guard put both back: trusted code and the next request see the baseline.
    assert!(pragma_on(&conn, "foreign_keys"));
    assert!(!pragma_on(&conn, "defer_foreign_keys"));
    assert_err(
        tenant_sql(&conn, false, "INSERT INTO child VALUES (2, 43)"),
        "SQLITE_CONSTRAINT",
        "FOREIGN KEY",
    );
}

#[test]
fn foreign_keys_changed_before_an_open_transaction_is_reset_when_it_ends() {
    let (_dir, conn) = tenant_db();
    {
        let guard = Guard::enter(&conn, &GuardConfig::default(), false).unwrap();
        let mut s = stream();
        sql(&mut s, &guard, "PRAGMA foreign_keys = OFF").unwrap();
        sql(&mut s, &guard, "BEGIN").unwrap();
        sql(&mut s, &guard, "PRAGMA defer_foreign_keys = ON").unwrap();
    }
    // The stream's transaction is still open: SQLite ignores foreign_keys inside it, and the
    // tenant's deferred checks last until it ends.
    assert!(!pragma_on(&conn, "foreign_keys"));
    assert!(pragma_on(&conn, "defer_foreign_keys"));
    tenant_sql(&conn, false, "COMMIT").unwrap();
    assert!(pragma_on(&conn, "foreign_keys"));
    assert!(!pragma_on(&conn, "defer_foreign_keys"));
}

#[test]
fn regression_foreign_key_to_reserved_table_blocks_trusted_deletes() {
    let (_dir, conn) = tenant_db();
    for sql in [
        "CREATE TABLE pin(k TEXT REFERENCES _tenantd_config(k))",
        "CREATE TABLE pin(k TEXT, FOREIGN KEY (k) REFERENCES \"_TENANTD_config\" (k))",
        "CREATE TABLE pin(k TEXT CONSTRAINT c REFERENCES [_tenantd_config])",
        "ALTER TABLE items ADD COLUMN k TEXT REFERENCES `_tenantd_config`(k)",
    ] {
        assert_err(
            tenant_sql(&conn, false, sql),
            "SQLITE_AUTH",
            "reserved for tenantd",
        );
    }
    // Had it been created, with foreign_keys off the tenant could pin reserved rows.
    let mut s = stream();
    let guard = Guard::enter(&conn, &GuardConfig::default(), false).unwrap();
    sql(&mut s, &guard, "PRAGMA foreign_keys = OFF").unwrap();
    let _ = sql(
        &mut s,
        &guard,
        "CREATE TABLE pin(k TEXT REFERENCES _tenantd_config(k))",
    );
    let _ = sql(&mut s, &guard, "INSERT INTO pin VALUES ('secret')");
    drop(guard);
    conn.execute("DELETE FROM _tenantd_config WHERE k = 'secret'", [])
        .expect("a tenant table must not block tenantd's own deletes");
    // References between the tenant's own tables still work.
    tenant_sql(
        &conn,
        false,
        "CREATE TABLE refs(i INTEGER REFERENCES items(id))",
    )
    .unwrap();
}
