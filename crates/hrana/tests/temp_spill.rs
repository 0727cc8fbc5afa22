//! Where tenant SQL can still put data outside its file: the sorter and transient tables spill
//! to temp files (SQLite's default `temp_store`) once they outgrow the page cache. TEMP schema
//! objects, the only temp storage that outlived a statement, are refused by the guard; this
//! pins that the spill lives only while its statement runs (the files are deleted on open and
//! closed when the statement ends), so its size is bounded by what one statement can produce
//! within the time budget. Its own binary: it counts the process's open temp files.

use hrana::guard::{apply_open_settings, Guard, GuardConfig};
use rusqlite::Connection;

/// Open files that no longer have a name: SQLite's temp files are unlinked right after open.
fn open_spill_files() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().ends_with(" (deleted)"))
        .count()
}

#[test]
fn sort_spill_lives_only_while_its_statement_runs() {
    if !std::path::Path::new("/proc/self/fd").exists() {
        eprintln!("skipped: no /proc/self/fd on this system");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join("tenant.db")).unwrap();
    apply_open_settings(&conn).unwrap();
    // The store's small page cache, so that ~20 MB of sort input must spill.
    conn.pragma_update(None, "cache_size", -256).unwrap();
    assert_eq!(open_spill_files(), 0);

    let guard = Guard::enter(&conn, &GuardConfig::default(), true).unwrap();
    let mut stmt = guard
        .prepare(
            "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 100000)
             SELECT randomblob(200) AS x FROM c ORDER BY x",
        )
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    assert!(rows.next().unwrap().is_some());
    let during = open_spill_files();
    assert!(
        during > 0,
        "the sort did not spill; the test proves nothing"
    );
    drop(rows);
    drop(stmt);
    assert_eq!(open_spill_files(), 0, "spill files outlived the statement");
    drop(guard);
}
