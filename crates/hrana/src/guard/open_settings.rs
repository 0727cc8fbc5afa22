//! Connection-wide safety settings that belong at open time (the store applies them once per
//! connection): `SQLITE_DBCONFIG_DEFENSIVE` on, `trusted_schema` off, extension loading off,
//! the [`super::trusted`] authorizer, and `foreign_keys` at its baseline.
//! The guard relies on them; [`expected_open_settings_ok`] lets the server assert they hold.

use rusqlite::config::DbConfig;
use rusqlite::Connection;

/// Applies the open-time settings (the store calls this for every tenant connection it opens).
/// Errors: SQLite rejected a setting.
pub fn apply_open_settings(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    // Extension loading is off by default and rusqlite is built without `load_extension`.
    super::trusted::install_trusted_authorizer(conn);
    // Explicit, so that what a guard restores is what every connection starts with.
    conn.pragma_update(None, "foreign_keys", super::session::BASELINE_FOREIGN_KEYS)?;
    Ok(())
}

/// The open-time settings missing on `conn`, as short descriptions; empty when all hold.
/// Never fails: a setting that cannot be read counts as missing.
pub fn open_settings_problems(conn: &Connection) -> Vec<&'static str> {
    let mut problems = Vec::new();
    if conn.db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE).ok() != Some(true) {
        problems.push("SQLITE_DBCONFIG_DEFENSIVE is off");
    }
    if conn
        .db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA)
        .ok()
        != Some(false)
    {
        problems.push("trusted_schema is on");
    }
    // With loading disabled SQLite refuses the call before touching the path.
    let probe = conn.query_row(
        "SELECT load_extension('/nonexistent/tenantd-probe')",
        [],
        |_| Ok(()),
    );
    let disabled = matches!(&probe, Err(e) if e.to_string().contains("not authorized"));
    if !disabled {
        problems.push("extension loading is enabled");
    }
    problems
}

/// True when `conn` has every open-time setting the guard relies on.
pub fn expected_open_settings_ok(conn: &Connection) -> bool {
    open_settings_problems(conn).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_connection_is_not_ok_until_configured() {
        let conn = Connection::open_in_memory().unwrap();
        let problems = open_settings_problems(&conn);
        assert!(
            problems.contains(&"SQLITE_DBCONFIG_DEFENSIVE is off"),
            "{problems:?}"
        );
        assert!(problems.contains(&"trusted_schema is on"), "{problems:?}");
        assert!(!expected_open_settings_ok(&conn));
        apply_open_settings(&conn).unwrap();
        assert_eq!(open_settings_problems(&conn), Vec::<&str>::new());
        assert!(expected_open_settings_ok(&conn));
    }

    #[test]
    fn defensive_blocks_schema_corruption_even_for_trusted_code() {
        let conn = Connection::open_in_memory().unwrap();
        apply_open_settings(&conn).unwrap();
        conn.execute_batch("CREATE TABLE t(x)").unwrap();
        conn.execute_batch("PRAGMA writable_schema=ON").unwrap();
        let err = conn
            .execute("UPDATE sqlite_master SET sql='CREATE TABLE t(y)'", [])
            .unwrap_err();
        assert!(err.to_string().contains("may not be modified"), "{err}");
        let sql: String = conn
            .query_row("SELECT sql FROM sqlite_master WHERE name='t'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(sql, "CREATE TABLE t(x)");
    }
}
