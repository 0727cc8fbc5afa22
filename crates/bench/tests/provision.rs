//! Provisioning on real files: tenantd can open what `tenantd` layout writes, the peers' schema
//! is in what `flat` writes, and nothing is ever overwritten.

use bench::names::NameSet;
use bench::provision::{self, Provision, ProvisionError};
use bench::template::Layout;
use store::connection::{open_existing, Access};
use store::PoolConfig;

fn plan(dir: &std::path::Path, layout: Layout, count: u64) -> Provision {
    Provision {
        data_dir: dir.to_owned(),
        names: NameSet::new("tenant", 5, count).unwrap(),
        layout,
        jobs: 3,
    }
}

#[test]
fn tenantd_layout_files_open_as_tenants_and_take_events() {
    let dir = tempfile::tempdir().unwrap();
    let p = plan(dir.path(), Layout::Tenantd, 20);
    let report = provision::run(&p).unwrap();
    assert_eq!(report.files, 20);
    let cfg = PoolConfig::new(dir.path());
    for i in 0..20 {
        let path = store::layout::tenant_path(dir.path(), &p.names.name(i));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), report.file_bytes);
        let conn = open_existing(&path, Access::Write, &cfg, None).unwrap();
        let ev = store::events::NewEvent {
            source: "bench",
            delivery_id: None,
            content_type: Some("application/json"),
            received_at_ms: 1,
            body: b"{}",
        };
        let ins = store::events::insert_event(&conn, &ev).unwrap();
        assert_eq!(ins.id, 1);
    }
    // Only tenant files (and their fan-out dirs) were written: the template is gone.
    let stray: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != store::layout::TENANTS_DIR)
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    let (listed, _) = store::layout::list_tenants(dir.path(), None, 100).unwrap();
    assert_eq!(listed.len(), 20);
}

#[test]
fn flat_layout_is_a_wal_file_with_the_peers_table() {
    let dir = tempfile::tempdir().unwrap();
    provision::run(&plan(dir.path(), Layout::Flat, 5)).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let want: Vec<String> = (0..5).map(|i| format!("tenant{i:05}.db")).collect();
    assert_eq!(names, want);
    let conn = rusqlite::Connection::open(dir.path().join("tenant00003.db")).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.execute("INSERT INTO events(received_at, body) VALUES (1, '{}')", [])
        .unwrap();
}

#[test]
fn never_overwrites_an_existing_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let p = plan(dir.path(), Layout::Flat, 3);
    let victim = dir.path().join("tenant00001.db");
    std::fs::write(&victim, b"precious").unwrap();
    assert!(matches!(provision::run(&p), Err(ProvisionError::Exists(path)) if path == victim));
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
}
