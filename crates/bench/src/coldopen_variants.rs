//! The cold-open variants of `tenantd bench cold-open`: each is one way to do a tenant's
//! open + one insert + close, so their costs can be compared piece by piece.
//!
//! - `tenantd`, `fast-close`: the pool's writer exactly (`store::connection::open_existing` +
//!   `store::events::insert_event`), closed the way the pool closes an idle tenant
//!   (`close_clean`: checkpoint, delete `-wal`/`-shm`) or on shutdown (`close_fast`);
//! - `seed`: the seed design's open, on the flat layout (plain open, `journal_mode=WAL`,
//!   `synchronous=NORMAL`, `CREATE TABLE IF NOT EXISTS`, insert, default close);
//! - `replica`: [`Pieces::ALL`], a step-by-step re-implementation of tenantd's writer open; it
//!   must cost what `tenantd` costs, which checks that the pieces below are the real ones;
//! - the others: the replica with one piece changed (see [`Variant::pieces`]).

use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, FileControl, OpenFlags};
use store::connection::{self, Access, PAGE_SIZE};
use store::events::{self, NewEvent};
use store::PoolConfig;

use crate::template::{Layout, FLAT_SCHEMA};

/// Why a cycle failed.
#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    /// The store refused to open the tenant.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// SQLite failed.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// A tenant file was not in WAL mode.
    #[error("{0} is not in WAL mode")]
    NotWal(std::path::PathBuf),
}

/// One way to open, insert into and close a tenant file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Variant {
    /// The pool's writer open, insert_event, clean close (what an idle close does).
    Tenantd,
    /// As `tenantd`, closed with the fast close (no checkpoint; the `-wal` stays).
    FastClose,
    /// The seed design's open + insert + close on the flat layout (ignores the durability mode).
    Seed,
    /// tenantd's open re-implemented piece by piece (should cost what `tenantd` costs).
    Replica,
    /// Replica + `PRAGMA locking_mode=EXCLUSIVE` before the first access: no `-shm`.
    Exclusive,
    /// Replica without the trusted authorizer.
    NoAuthorizer,
    /// Replica without DEFENSIVE and trusted_schema=OFF.
    NoDefensive,
    /// Replica without the `max_page_count` quota pragma.
    NoQuota,
    /// Replica without the `journal_mode=WAL` check.
    NoWalCheck,
    /// Replica whose close checkpoints but keeps the (empty) `-wal` file for the next open.
    PersistWal,
    /// Only the open and `synchronous`: no other setting, then insert_event and clean close.
    Bare,
}

/// Every variant, in report order.
pub const ALL: [Variant; 11] = [
    Variant::Tenantd,
    Variant::FastClose,
    Variant::Seed,
    Variant::Replica,
    Variant::Exclusive,
    Variant::NoAuthorizer,
    Variant::NoDefensive,
    Variant::NoQuota,
    Variant::NoWalCheck,
    Variant::PersistWal,
    Variant::Bare,
];

/// The settings of a piece-by-piece open; `ALL` is tenantd's writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pieces {
    /// `locking_mode=EXCLUSIVE` first (WAL index in heap memory, no `-shm`).
    pub exclusive: bool,
    /// DEFENSIVE on, trusted_schema off.
    pub defensive: bool,
    /// The trusted authorizer.
    pub authorizer: bool,
    /// busy timeout, foreign_keys, no checkpoint on close, persistent WAL, cache size.
    pub settings: bool,
    /// `journal_mode=WAL` and its check.
    pub wal_check: bool,
    /// `max_page_count` (the size quota).
    pub quota: bool,
    /// The WAL hook the pool uses to learn the WAL size.
    pub wal_hook: bool,
}

impl Pieces {
    /// tenantd's writer settings, all of them.
    pub const ALL: Pieces = Pieces {
        exclusive: false,
        defensive: true,
        authorizer: true,
        settings: true,
        wal_check: true,
        quota: true,
        wal_hook: true,
    };
    /// Nothing but the open (and `synchronous`, which every variant sets).
    pub const NONE: Pieces = Pieces {
        exclusive: false,
        defensive: false,
        authorizer: false,
        settings: false,
        wal_check: false,
        quota: false,
        wal_hook: false,
    };
}

impl Variant {
    /// Lower-case name, as on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Tenantd => "tenantd",
            Variant::FastClose => "fast-close",
            Variant::Seed => "seed",
            Variant::Replica => "replica",
            Variant::Exclusive => "exclusive",
            Variant::NoAuthorizer => "no-authorizer",
            Variant::NoDefensive => "no-defensive",
            Variant::NoQuota => "no-quota",
            Variant::NoWalCheck => "no-wal-check",
            Variant::PersistWal => "persist-wal",
            Variant::Bare => "bare",
        }
    }

    /// The file layout it runs on.
    pub fn layout(self) -> Layout {
        match self {
            Variant::Seed => Layout::Flat,
            _ => Layout::Tenantd,
        }
    }

    /// Whether the durability mode changes what it does (the seed always uses NORMAL).
    pub fn uses_durability(self) -> bool {
        self != Variant::Seed
    }

    /// Whether every file needs one untimed cycle first (to leave the state it measures).
    pub fn needs_prepass(self) -> bool {
        self == Variant::PersistWal
    }

    /// The piece-by-piece settings, for the variants built from [`Pieces`].
    pub fn pieces(self) -> Option<Pieces> {
        let all = Pieces::ALL;
        Some(match self {
            Variant::Replica | Variant::PersistWal => all,
            Variant::Exclusive => Pieces {
                exclusive: true,
                ..all
            },
            Variant::NoAuthorizer => Pieces {
                authorizer: false,
                ..all
            },
            Variant::NoDefensive => Pieces {
                defensive: false,
                ..all
            },
            Variant::NoQuota => Pieces {
                quota: false,
                ..all
            },
            Variant::NoWalCheck => Pieces {
                wal_check: false,
                ..all
            },
            Variant::Bare => Pieces::NONE,
            Variant::Tenantd | Variant::FastClose | Variant::Seed => return None,
        })
    }

    /// Opens `path` the way this variant does. Errors: the store's or SQLite's.
    pub fn open(self, path: &Path, cfg: &PoolConfig) -> Result<Connection, CycleError> {
        match (self, self.pieces()) {
            (Variant::Seed, _) => Ok(open_seed(path)?),
            (_, Some(p)) => open_pieces(path, cfg, p),
            (_, None) => {
                let pages = Some(Arc::new(AtomicI32::new(0)));
                Ok(connection::open_existing(path, Access::Write, cfg, pages)?)
            }
        }
    }

    /// One cycle: open, insert event number `seq`, close. Errors: the store's or SQLite's.
    pub fn cycle(self, path: &Path, cfg: &PoolConfig, seq: u64) -> Result<(), CycleError> {
        let conn = self.open(path, cfg)?;
        if self == Variant::Seed {
            insert_seed(&conn)?;
            return Ok(conn.close().map_err(|(_, e)| e)?);
        }
        let delivery = format!("delivery-{seq}");
        let ev = NewEvent {
            source: "bench",
            delivery_id: Some(&delivery),
            content_type: Some("application/json"),
            received_at_ms: 1_700_000_000_000 + seq as i64,
            body: BODY.as_bytes(),
        };
        events::insert_event(&conn, &ev)?;
        match self {
            Variant::FastClose => connection::close_fast(conn),
            Variant::PersistWal => close_keeping_wal(conn)?,
            _ => connection::close_clean(conn),
        }
        Ok(())
    }
}

/// The webhook body every cycle stores (~300 bytes of JSON, like the load runs').
pub const BODY: &str = concat!(
    r#"{"id":"evt_1NqXbench","type":"order.created","created":1700000000,"#,
    r#""data":{"object":{"id":"ord_42","amount":1999,"currency":"usd","customer":"cus_9","#,
    r#""items":[{"sku":"sku_1","qty":1},{"sku":"sku_2","qty":3}],"#,
    r#""note":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}},"#,
    r#""livemode":false,"pending_webhooks":1,"request":{"id":"req_1"}}"#
);

/// tenantd's writer open (`store::connection::open_existing`, `Access::Write`), one piece at a
/// time, in the same order; pieces switched off are skipped.
fn open_pieces(path: &Path, cfg: &PoolConfig, p: Pieces) -> Result<Connection, CycleError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags)?;
    if p.exclusive {
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
    }
    if p.settings {
        conn.busy_timeout(cfg.busy_timeout)?;
    }
    if p.defensive {
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    }
    if p.authorizer {
        hrana::guard::install_trusted_authorizer(&conn);
    }
    if p.settings {
        let fk = hrana::guard::session::BASELINE_FOREIGN_KEYS;
        conn.pragma_update(None, "foreign_keys", fk)?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
        let mut persist = 1;
        conn.file_control(None::<&str>, FileControl::PersistWal(&mut persist))?;
        conn.pragma_update(None, "cache_size", -i64::from(cfg.cache_kib))?;
    }
    conn.pragma_update(None, "synchronous", cfg.durability.synchronous_pragma())?;
    if p.wal_check {
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(CycleError::NotWal(path.to_owned()));
        }
    }
    if p.quota {
        let max_pages = i64::try_from(cfg.quota_bytes.div_ceil(PAGE_SIZE)).unwrap_or(i64::MAX);
        conn.pragma_update(None, "max_page_count", max_pages)?;
    }
    if p.wal_hook {
        let pages = Arc::new(AtomicI32::new(0));
        conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, n: i32| {
            pages.store(n, Ordering::Relaxed);
            Ok(())
        }))?;
    }
    Ok(conn)
}

/// A clean close (checkpoint on close) that keeps the persistent `-wal` file.
fn close_keeping_wal(conn: Connection) -> rusqlite::Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, false)?;
    conn.close().map_err(|(_, e)| e)
}

/// The seed's open: default flags, WAL, `synchronous=NORMAL`, its table if missing.
fn open_seed(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
    conn.execute_batch("PRAGMA synchronous=NORMAL")?;
    conn.execute_batch(FLAT_SCHEMA)?;
    Ok(conn)
}

fn insert_seed(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "INSERT INTO events(received_at, body) VALUES (?1, ?2) RETURNING id",
        rusqlite::params![1_700_000_000_000i64, BODY],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings a connection ends up with, as far as SQLite reports them.
    fn settings(conn: &Connection) -> Vec<String> {
        let mut out: Vec<String> = [
            "journal_mode",
            "synchronous",
            "cache_size",
            "max_page_count",
            "foreign_keys",
            "busy_timeout",
            "locking_mode",
        ]
        .iter()
        .map(|p| {
            let v: rusqlite::types::Value = conn
                .query_row(&format!("PRAGMA {p}"), [], |r| r.get(0))
                .unwrap();
            format!("{p}={v:?}")
        })
        .collect();
        for (name, c) in [
            ("defensive", DbConfig::SQLITE_DBCONFIG_DEFENSIVE),
            ("trusted_schema", DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA),
            (
                "no_ckpt_on_close",
                DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            ),
        ] {
            out.push(format!("{name}={:?}", conn.db_config(c).unwrap()));
        }
        out.push(format!(
            "guard_ok={}",
            hrana::guard::expected_open_settings_ok(conn)
        ));
        out
    }

    fn tenant_file(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("t.db");
        connection::create_new(&path, events::init_schema).unwrap();
        path
    }

    #[test]
    fn replica_opens_with_exactly_tenantds_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = tenant_file(dir.path());
        for durability in [store::Durability::Fsync, store::Durability::Crash] {
            let mut cfg = PoolConfig::new(dir.path());
            cfg.durability = durability;
            let real = settings(&Variant::Tenantd.open(&path, &cfg).unwrap());
            let replica = settings(&Variant::Replica.open(&path, &cfg).unwrap());
            assert_eq!(real, replica);
            assert!(real.contains(&"guard_ok=true".to_owned()), "{real:?}");
        }
    }

    #[test]
    fn each_piece_variant_differs_from_the_replica_in_its_piece_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = tenant_file(dir.path());
        let cfg = PoolConfig::new(dir.path());
        let replica = settings(&Variant::Replica.open(&path, &cfg).unwrap());
        let changed = |v: Variant| {
            let s = settings(&v.open(&path, &cfg).unwrap());
            let mut d: Vec<String> = s.into_iter().filter(|x| !replica.contains(x)).collect();
            d.sort();
            d
        };
        assert_eq!(
            changed(Variant::Exclusive),
            ["locking_mode=Text(\"exclusive\")"]
        );
        assert_eq!(
            changed(Variant::NoDefensive),
            ["defensive=false", "guard_ok=false", "trusted_schema=true"]
        );
        assert_eq!(changed(Variant::NoQuota).len(), 1);
        assert!(changed(Variant::NoQuota)[0].starts_with("max_page_count="));
        // The authorizer and the WAL check are not visible as settings.
        assert!(changed(Variant::NoAuthorizer).is_empty());
        assert!(changed(Variant::NoWalCheck).is_empty());
    }

    #[test]
    fn every_variant_stores_its_event() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = PoolConfig::new(dir.path());
        for (i, v) in ALL.into_iter().enumerate() {
            let path = dir.path().join(format!("{i}.db"));
            match v.layout() {
                Layout::Tenantd => connection::create_new(&path, events::init_schema).unwrap(),
                Layout::Flat => drop(Connection::open(&path).unwrap()),
            }
            v.cycle(&path, &cfg, 1).unwrap();
            v.cycle(&path, &cfg, 2).unwrap();
            let table = match v.layout() {
                Layout::Tenantd => "_tenantd_events",
                Layout::Flat => "events",
            };
            let n: i64 = Connection::open(&path)
                .unwrap()
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .unwrap();
            assert_eq!(n, 2, "{}", v.as_str());
        }
    }
}
