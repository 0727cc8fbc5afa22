//! The authorizer's policy for untrusted tenant SQL, as a pure function of SQLite's
//! authorizer arguments: no ATTACH/DETACH, no access to reserved `_tenantd_*` objects, no
//! writes to SQLite's internal tables, no raw-page tables, pragmas only from an allow-list.

use rusqlite::ffi;

/// Prefix of the tables tenantd keeps inside each tenant file; tenant SQL never touches them.
pub const RESERVED_PREFIX: &str = "_tenantd_";

/// Pragmas tenant SQL may read but never set.
const READ_ONLY_PRAGMAS: &[&str] = &[
    "application_id",
    "auto_vacuum",
    "collation_list",
    "data_version",
    "encoding",
    "freelist_count",
    "function_list",
    "journal_mode",
    "module_list",
    "page_count",
    "page_size",
    "pragma_list",
    "schema_version",
    "user_version",
];

/// Pragmas tenant SQL may read and set: they change how the tenant's own statements run, and
/// the guard puts them back when it ends (`session.rs`), so trusted code and the next request
/// never see the tenant's value. (`@libsql/client`'s `migrate()` sends both.)
const SESSION_PRAGMAS: &[&str] = &["foreign_keys", "defer_foreign_keys"];

/// Introspection pragmas that take an optional table/index argument (checked against the
/// reserved prefix) and change nothing.
const ARG_PRAGMAS: &[&str] = &[
    "foreign_key_check",
    "foreign_key_list",
    "index_info",
    "index_list",
    "index_xinfo",
    "integrity_check",
    "quick_check",
    "table_info",
    "table_list",
    "table_xinfo",
];

/// Internal tables tenant SQL may read (schema introspection, autoincrement, statistics).
const READABLE_INTERNAL: &[&str] = &[
    "sqlite_master",
    "sqlite_schema",
    "sqlite_temp_master",
    "sqlite_temp_schema",
    "sqlite_sequence",
    "sqlite_stat1",
    "sqlite_stat4",
];

/// Internal tables SQLite itself writes while running tenant DDL and AUTOINCREMENT inserts;
/// direct edits of the schema tables are refused by SQLite (`DEFENSIVE`, no `writable_schema`).
const WRITABLE_INTERNAL: &[&str] = &[
    "sqlite_master",
    "sqlite_schema",
    "sqlite_temp_master",
    "sqlite_temp_schema",
    "sqlite_sequence",
];

/// Virtual tables/modules that expose raw pages or storage layout of every table.
const RAW_STORAGE: &[&str] = &["dbstat", "sqlite_dbpage", "sqlite_dbdata", "sqlite_dbptr"];

/// SQL functions tenant SQL may not call, even where the connection would allow them.
const DENIED_FUNCTIONS: &[&str] = &["load_extension", "fts3_tokenizer"];

/// Why TEMP objects are refused (they outlive the request on a shared connection).
const TEMP_REFUSED: &str = "TEMP tables, views, triggers and indexes are not available to tenant \
    SQL: they would live outside your database and its quota until the shared connection \
    closes; use a regular table (and drop it when done)";

/// True if `name` is a reserved tenantd object name (case-insensitive `_tenantd_` prefix).
pub fn is_reserved(name: &str) -> bool {
    name.len() >= RESERVED_PREFIX.len()
        && name.as_bytes()[..RESERVED_PREFIX.len()].eq_ignore_ascii_case(RESERVED_PREFIX.as_bytes())
}

fn is_internal(name: &str) -> bool {
    name.len() >= 7 && name.as_bytes()[..7].eq_ignore_ascii_case(b"sqlite_")
}

fn in_list(list: &[&str], name: &str) -> bool {
    list.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// [`decide`], knowing the schema (`main`, `temp`) the action is in: an object created in
/// `temp` is a TEMP object whatever SQLite calls the action (`CREATE TABLE temp.t` and
/// `CREATE VIRTUAL TABLE temp.t` come as `SQLITE_CREATE_TABLE` / `SQLITE_CREATE_VTABLE`).
pub fn decide_in(
    code: i32,
    arg1: Option<&str>,
    arg2: Option<&str>,
    db: Option<&str>,
) -> Result<(), String> {
    let creates = matches!(
        code,
        ffi::SQLITE_CREATE_TABLE
            | ffi::SQLITE_CREATE_INDEX
            | ffi::SQLITE_CREATE_VIEW
            | ffi::SQLITE_CREATE_TRIGGER
            | ffi::SQLITE_CREATE_VTABLE
    );
    if creates && db.is_some_and(|d| d.eq_ignore_ascii_case("temp")) {
        return Err(TEMP_REFUSED.into());
    }
    decide(code, arg1, arg2)
}

/// Decides one authorizer call: `Ok(())` allows, `Err(reason)` denies with a reason meant for
/// the tenant's error message. `code` is SQLite's action code, `arg1`/`arg2` its arguments.
pub fn decide(code: i32, arg1: Option<&str>, arg2: Option<&str>) -> Result<(), String> {
    if code == ffi::SQLITE_ANALYZE && arg1.is_some_and(is_reserved) {
        return Err(format!(
            "ANALYZE would read the reserved table `{}`; analyze your own tables by name (ANALYZE t)",
            arg1.unwrap_or_default()
        ));
    }
    for name in object_names(code, arg1, arg2).into_iter().flatten() {
        if is_reserved(name) {
            return Err(format!(
                "`{name}` is reserved for tenantd and not accessible to tenant SQL"
            ));
        }
    }
    match code {
        ffi::SQLITE_ATTACH => Err("ATTACH (and VACUUM INTO) is not allowed for tenant SQL".into()),
        ffi::SQLITE_DETACH => Err("DETACH is not allowed for tenant SQL".into()),
        ffi::SQLITE_PRAGMA => pragma(arg1.unwrap_or(""), arg2),
        // Every TEMP object, however its CREATE is spelled, is a row in the temp schema table.
        ffi::SQLITE_INSERT
            if arg1.is_some_and(|t| in_list(&["sqlite_temp_master", "sqlite_temp_schema"], t)) =>
        {
            Err(TEMP_REFUSED.into())
        }
        ffi::SQLITE_INSERT | ffi::SQLITE_UPDATE | ffi::SQLITE_DELETE => {
            let table = arg1.unwrap_or("");
            if (is_internal(table) && !in_list(WRITABLE_INTERNAL, table))
                || in_list(RAW_STORAGE, table)
            {
                Err(format!(
                    "SQLite's internal table `{table}` cannot be written by tenant SQL"
                ))
            } else {
                Ok(())
            }
        }
        ffi::SQLITE_READ => read(arg1.unwrap_or("")),
        ffi::SQLITE_CREATE_VTABLE | ffi::SQLITE_DROP_VTABLE => {
            let module = arg2.unwrap_or("");
            if in_list(RAW_STORAGE, module) {
                Err(format!(
                    "the `{module}` module is not available to tenant SQL"
                ))
            } else {
                Ok(())
            }
        }
        ffi::SQLITE_FUNCTION => {
            let f = arg2.unwrap_or("");
            if in_list(DENIED_FUNCTIONS, f) {
                Err(format!("the function {f}() is not available to tenant SQL"))
            } else {
                Ok(())
            }
        }
        ffi::SQLITE_CREATE_TEMP_INDEX
        | ffi::SQLITE_CREATE_TEMP_TABLE
        | ffi::SQLITE_CREATE_TEMP_TRIGGER
        | ffi::SQLITE_CREATE_TEMP_VIEW => Err(TEMP_REFUSED.into()),
        ffi::SQLITE_CREATE_INDEX
        | ffi::SQLITE_CREATE_TABLE
        | ffi::SQLITE_CREATE_TRIGGER
        | ffi::SQLITE_CREATE_VIEW
        | ffi::SQLITE_DROP_INDEX
        | ffi::SQLITE_DROP_TABLE
        | ffi::SQLITE_DROP_TEMP_INDEX
        | ffi::SQLITE_DROP_TEMP_TABLE
        | ffi::SQLITE_DROP_TEMP_TRIGGER
        | ffi::SQLITE_DROP_TEMP_VIEW
        | ffi::SQLITE_DROP_TRIGGER
        | ffi::SQLITE_DROP_VIEW
        | ffi::SQLITE_SELECT
        | ffi::SQLITE_TRANSACTION
        | ffi::SQLITE_ALTER_TABLE
        | ffi::SQLITE_REINDEX
        | ffi::SQLITE_ANALYZE
        | ffi::SQLITE_SAVEPOINT
        | ffi::SQLITE_RECURSIVE => Ok(()),
        other => Err(format!("operation {other} is not allowed for tenant SQL")),
    }
}

/// The object names an action refers to (tables, indexes, triggers, views).
pub(crate) fn object_names<'a>(
    code: i32,
    a1: Option<&'a str>,
    a2: Option<&'a str>,
) -> [Option<&'a str>; 2] {
    match code {
        // (index or trigger, table)
        ffi::SQLITE_CREATE_INDEX
        | ffi::SQLITE_CREATE_TEMP_INDEX
        | ffi::SQLITE_CREATE_TEMP_TRIGGER
        | ffi::SQLITE_CREATE_TRIGGER
        | ffi::SQLITE_DROP_INDEX
        | ffi::SQLITE_DROP_TEMP_INDEX
        | ffi::SQLITE_DROP_TEMP_TRIGGER
        | ffi::SQLITE_DROP_TRIGGER => [a1, a2],
        // (table or view, column/module/nothing)
        ffi::SQLITE_CREATE_TABLE
        | ffi::SQLITE_CREATE_TEMP_TABLE
        | ffi::SQLITE_CREATE_TEMP_VIEW
        | ffi::SQLITE_CREATE_VIEW
        | ffi::SQLITE_DELETE
        | ffi::SQLITE_DROP_TABLE
        | ffi::SQLITE_DROP_TEMP_TABLE
        | ffi::SQLITE_DROP_TEMP_VIEW
        | ffi::SQLITE_DROP_VIEW
        | ffi::SQLITE_INSERT
        | ffi::SQLITE_READ
        | ffi::SQLITE_UPDATE
        | ffi::SQLITE_REINDEX
        | ffi::SQLITE_ANALYZE
        | ffi::SQLITE_CREATE_VTABLE
        | ffi::SQLITE_DROP_VTABLE => [a1, None],
        // (database, table)
        ffi::SQLITE_ALTER_TABLE => [a2, None],
        _ => [None, None],
    }
}

fn read(table: &str) -> Result<(), String> {
    if in_list(RAW_STORAGE, table) {
        return Err(format!(
            "`{table}` exposes raw storage and is not available to tenant SQL"
        ));
    }
    if let Some(pragma_name) = table.strip_prefix("pragma_") {
        // Table-valued pragma functions (`SELECT * FROM pragma_table_info('t')`).
        return pragma(pragma_name, None);
    }
    if is_internal(table) && !in_list(READABLE_INTERNAL, table) {
        return Err(format!(
            "SQLite's internal table `{table}` is not readable by tenant SQL"
        ));
    }
    Ok(())
}

fn pragma(name: &str, value: Option<&str>) -> Result<(), String> {
    if in_list(ARG_PRAGMAS, name) {
        return match value {
            Some(v) if is_reserved(v.trim_matches(|c| c == '\'' || c == '"')) => Err(format!(
                "`{v}` is reserved for tenantd and not accessible to tenant SQL"
            )),
            _ => Ok(()),
        };
    }
    if in_list(SESSION_PRAGMAS, name) {
        return Ok(());
    }
    if in_list(READ_ONLY_PRAGMAS, name) {
        return match value {
            None => Ok(()),
            Some(_) => Err(format!("PRAGMA {name} is read-only for tenant SQL")),
        };
    }
    Err(format!("PRAGMA {name} is not allowed for tenant SQL"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_prefix_is_case_insensitive() {
        assert!(is_reserved("_tenantd_events"));
        assert!(is_reserved("_TenantD_x"));
        assert!(!is_reserved("tenantd_events"));
        assert!(!is_reserved("_tenant"));
        assert!(!is_reserved("é_tenantd_"));
    }

    #[test]
    fn denies_reserved_objects_in_every_position() {
        let r = Some("_tenantd_events");
        for (code, a1, a2) in [
            (ffi::SQLITE_READ, r, Some("id")),
            (ffi::SQLITE_INSERT, r, None),
            (ffi::SQLITE_UPDATE, r, Some("x")),
            (ffi::SQLITE_DELETE, r, None),
            (ffi::SQLITE_DROP_TABLE, r, None),
            (ffi::SQLITE_CREATE_INDEX, Some("i"), r),
            (ffi::SQLITE_CREATE_TRIGGER, Some("t"), r),
            (ffi::SQLITE_CREATE_TEMP_TRIGGER, r, Some("mine")),
            (ffi::SQLITE_CREATE_VIEW, r, None),
            (ffi::SQLITE_ALTER_TABLE, Some("main"), r),
            (ffi::SQLITE_CREATE_VTABLE, r, Some("fts5")),
            (ffi::SQLITE_PRAGMA, Some("table_info"), r),
            (
                ffi::SQLITE_PRAGMA,
                Some("TABLE_INFO"),
                Some("'_TENANTD_events'"),
            ),
        ] {
            let err = decide(code, a1, a2).unwrap_err();
            assert!(err.contains("reserved for tenantd"), "{code}: {err}");
        }
    }

    #[test]
    fn bare_analyze_names_the_fix() {
        let err = decide(ffi::SQLITE_ANALYZE, Some("_tenantd_events"), None).unwrap_err();
        assert!(err.contains("ANALYZE t"), "{err}");
        assert!(decide(ffi::SQLITE_ANALYZE, Some("items"), None).is_ok());
    }

    #[test]
    fn pragmas_follow_the_allow_list() {
        assert!(decide(ffi::SQLITE_PRAGMA, Some("table_info"), Some("t")).is_ok());
        assert!(decide(ffi::SQLITE_PRAGMA, Some("user_version"), None).is_ok());
        assert!(decide(ffi::SQLITE_PRAGMA, Some("table_list"), None).is_ok());
        for value in [None, Some("OFF"), Some("1")] {
            assert!(decide(ffi::SQLITE_PRAGMA, Some("foreign_keys"), value).is_ok());
            assert!(decide(ffi::SQLITE_PRAGMA, Some("DEFER_FOREIGN_KEYS"), value).is_ok());
        }
        for (name, value) in [
            ("user_version", Some("7")),
            ("journal_mode", Some("delete")),
        ] {
            let err = decide(ffi::SQLITE_PRAGMA, Some(name), value).unwrap_err();
            assert!(err.contains("read-only"), "{err}");
        }
        for name in [
            "query_only",
            "synchronous",
            "writable_schema",
            "database_list",
            "cache_size",
        ] {
            let err = decide(ffi::SQLITE_PRAGMA, Some(name), None).unwrap_err();
            assert!(err.contains("not allowed"), "{err}");
        }
    }

    #[test]
    fn internal_tables_and_raw_storage() {
        assert!(decide(ffi::SQLITE_READ, Some("sqlite_master"), Some("sql")).is_ok());
        assert!(decide(ffi::SQLITE_READ, Some("sqlite_sequence"), Some("seq")).is_ok());
        // SQLite writes these for tenant DDL; it refuses direct schema edits itself.
        assert!(decide(ffi::SQLITE_INSERT, Some("sqlite_master"), None).is_ok());
        assert!(decide(ffi::SQLITE_UPDATE, Some("sqlite_sequence"), Some("seq")).is_ok());
        assert!(decide(ffi::SQLITE_INSERT, Some("sqlite_stat1"), None).is_err());
        assert!(decide(ffi::SQLITE_DELETE, Some("sqlite_stat4"), None).is_err());
        assert!(decide(ffi::SQLITE_READ, Some("dbstat"), Some("name")).is_err());
        assert!(decide(ffi::SQLITE_READ, Some("sqlite_dbpage"), Some("data")).is_err());
        assert!(decide(ffi::SQLITE_CREATE_VTABLE, Some("x"), Some("dbstat")).is_err());
        assert!(decide(ffi::SQLITE_READ, Some("pragma_table_info"), Some("name")).is_ok());
        assert!(decide(ffi::SQLITE_READ, Some("pragma_database_list"), Some("file")).is_err());
    }

    #[test]
    fn temp_objects_are_refused_in_every_form() {
        for code in [
            ffi::SQLITE_CREATE_TEMP_TABLE,
            ffi::SQLITE_CREATE_TEMP_VIEW,
            ffi::SQLITE_CREATE_TEMP_TRIGGER,
            ffi::SQLITE_CREATE_TEMP_INDEX,
        ] {
            let err = decide(code, Some("x"), Some("items")).unwrap_err();
            assert!(err.contains("regular table"), "{err}");
        }
        let vtab = |db| decide_in(ffi::SQLITE_CREATE_VTABLE, Some("f"), Some("fts5"), Some(db));
        assert!(vtab("TEMP").is_err());
        assert!(vtab("main").is_ok());
        let table = |db| decide_in(ffi::SQLITE_CREATE_TABLE, Some("t"), None, Some(db));
        assert!(table("temp").is_err());
        assert!(table("main").is_ok());
        assert!(decide(ffi::SQLITE_INSERT, Some("sqlite_temp_master"), None).is_err());
        assert!(decide(ffi::SQLITE_INSERT, Some("sqlite_master"), None).is_ok());
    }

    #[test]
    fn attach_functions_and_unknown_codes() {
        assert!(decide(ffi::SQLITE_ATTACH, Some("/tmp/x.db"), None).is_err());
        assert!(decide(ffi::SQLITE_DETACH, Some("x"), None).is_err());
        assert!(decide(ffi::SQLITE_FUNCTION, None, Some("load_extension")).is_err());
        assert!(decide(ffi::SQLITE_FUNCTION, None, Some("upper")).is_ok());
        assert!(decide(ffi::SQLITE_SELECT, None, None).is_ok());
        assert!(decide(ffi::SQLITE_TRANSACTION, Some("BEGIN"), None).is_ok());
        assert!(decide(999, None, None).is_err());
    }
}
