//! Restoring tenants from the bucket: pick the snapshot, download, check, add the shipped
//! webhooks, install.
//!
//! A snapshot is installed only after its sha256 matches its key and SQLite's
//! `integrity_check` passes on the downloaded copy. The tenant's webhooks from the shipped log
//! (received at or before the restore time) are then inserted into the copy (those already in
//! the snapshot are skipped by event id, as the appliers do), the copy is marked as created at
//! the target's log position (so the target's own older records are not replayed on top) and
//! with what it was restored from, fsynced, and renamed over the target (its stale
//! `-wal`/`-shm` removed first). A target already restored from the same snapshot and log is
//! skipped, which makes `--all` resumable.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ingest::record::Record;
use ingest::Lsn;
use rusqlite::OptionalExtension;
use sha2::{Digest, Sha256};

use crate::error::BackupError;
use crate::key::{pick, SnapshotKey};
use crate::log_ship::decode_chunk;
use crate::remote::Remote;

/// The `_tenantd_meta` key naming what a restored file came from: `<sha256>:<last log LSN>`.
pub const RESTORED_FROM_KEY: &str = "restored_from";

/// The shipped ingest log, by tenant, as a restore needs it.
#[derive(Debug, Default)]
pub struct ShippedLog {
    by_tenant: HashMap<String, Vec<(Lsn, Record)>>,
    /// The last LSN in the bucket (0 without a chunk).
    pub last_lsn: Lsn,
    /// Chunks that could not be read (key and reason): their webhooks are not restored.
    pub damaged: Vec<(String, String)>,
}

impl ShippedLog {
    /// The records a restore needs: for each tenant of `want`, its shipped records after the
    /// LSN given (its snapshot's applied position). Chunks wholly at or below the smallest of
    /// those are not downloaded; the others are checked (CRC per frame) and only the wanted
    /// records are kept, so memory follows what the snapshots lack, not the log's size. With
    /// an empty `want`, every chunk is downloaded and checked and nothing is kept.
    pub async fn load(remote: &Remote, want: &HashMap<String, Lsn>) -> Result<Self, BackupError> {
        let mut log = ShippedLog::default();
        let floor = want.values().min().copied();
        for (chunk, _) in remote.log_chunks().await? {
            log.last_lsn = log.last_lsn.max(chunk.last);
            if floor.is_some_and(|f| chunk.last <= f) {
                continue;
            }
            let body = remote.get_log(&chunk).await?;
            match decode_chunk(&body) {
                Ok(records) => {
                    for (lsn, r) in records {
                        if want.get(&r.tenant).is_some_and(|&after| lsn > after) {
                            log.by_tenant
                                .entry(r.tenant.clone())
                                .or_default()
                                .push((lsn, r));
                        }
                    }
                }
                Err(why) => log.damaged.push((chunk.key(remote.prefix()), why)),
            }
        }
        for records in log.by_tenant.values_mut() {
            records.sort_by_key(|(lsn, _)| *lsn);
            records.dedup_by_key(|(lsn, _)| *lsn);
        }
        Ok(log)
    }

    /// `tenant`'s records received at or before `at_ms` (all without it), in log order.
    pub fn for_tenant(&self, tenant: &str, at_ms: Option<u64>) -> Vec<(Lsn, Record)> {
        self.by_tenant
            .get(tenant)
            .map(|rs| {
                rs.iter()
                    .filter(|(_, r)| at_ms.is_none_or(|at| r.received_at_ms <= at as i64))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// How a restored file joins its target.
#[derive(Debug, Clone, Copy, Default)]
pub struct Placement {
    /// The target log's last LSN (0 for a fresh data dir or `--to`): the file counts as created
    /// there, so records of the target's log at or below it are not applied to it.
    pub created_lsn: Lsn,
    /// Replace an existing different file.
    pub force: bool,
}

/// What a restore of one tenant did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The snapshot installed (or already in place).
    pub snapshot: SnapshotKey,
    /// Size of the installed file.
    pub bytes: u64,
    /// True if the target already held this snapshot: nothing was written.
    pub skipped: bool,
}

/// The snapshot a restore of `tenant` at `at_ms` installs: the newest at or before it
/// (`None`: the newest). Errors: `NoSnapshot`, `Gone` (a tombstone: deleted or moved away),
/// listing.
pub async fn choose_snapshot(
    remote: &Remote,
    tenant: &str,
    at_ms: Option<u64>,
) -> Result<SnapshotKey, BackupError> {
    let snaps = remote.snapshots(tenant).await?;
    let snap = pick(&snaps, at_ms)
        .ok_or_else(|| BackupError::NoSnapshot {
            tenant: tenant.to_owned(),
            at: at_ms.map(format_ms),
        })?
        .clone();
    if snap.is_gone() {
        return Err(BackupError::Gone {
            tenant: tenant.to_owned(),
            at: format_ms(snap.at_ms),
        });
    }
    Ok(snap)
}

/// Restores snapshot `snap` (from [`choose_snapshot`]) to the file `dest`, plus `log`, its
/// tenant's shipped webhooks up to the restore time. Refuses to replace a different existing
/// file unless `place.force`. The caller makes sure nothing has `dest` open (no server on that
/// data dir).
pub async fn restore_tenant(
    remote: &Remote,
    snap: SnapshotKey,
    dest: &Path,
    log: Vec<(Lsn, Record)>,
    place: Placement,
) -> Result<Restored, BackupError> {
    let tenant = snap.tenant.as_str();
    let origin = format!("{}:{}", snap.sha256, log.last().map_or(0, |(l, _)| *l));
    if dest.exists() {
        let done = !has_wal(dest) && restored_from(dest).ok().flatten() == Some(origin.clone());
        if done {
            return Ok(Restored {
                snapshot: snap,
                bytes: std::fs::metadata(dest)?.len(),
                skipped: true,
            });
        }
        if !place.force {
            return Err(BackupError::Exists {
                tenant: tenant.to_owned(),
                path: dest.to_owned(),
            });
        }
    }
    let download = temp_beside(dest, &snap.tenant, "download")?;
    let fetched = remote.get_to_file(&snap, &download).await;
    let (dest2, snap2, file) = (dest.to_owned(), snap.clone(), download.clone());
    let finish = move |tmp: &Path| add_log(tmp, &log, place.created_lsn, &origin);
    let bytes = tokio::task::spawn_blocking(move || {
        let installed = fetched.and_then(|()| {
            let body = std::io::BufReader::new(std::fs::File::open(&file)?);
            install(body, &snap2, &dest2, remote_key(&snap2), finish)
        });
        let _ = std::fs::remove_file(&file);
        installed
    })
    .await
    .map_err(|e| BackupError::Io(std::io::Error::other(e)))??;
    Ok(Restored {
        snapshot: snap,
        bytes,
        skipped: false,
    })
}

fn remote_key(s: &SnapshotKey) -> String {
    format!("{}@{}", s.tenant, format_ms(s.at_ms))
}

/// What a restored file came from, if it was restored.
/// Only for a file without a WAL: it is read as immutable, so nothing (no `-wal`, no `-shm`)
/// is created beside it.
fn restored_from(db: &Path) -> rusqlite::Result<Option<String>> {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
        | rusqlite::OpenFlags::SQLITE_OPEN_URI;
    let uri = format!("file:{}?immutable=1", db.display());
    let conn = rusqlite::Connection::open_with_flags(uri, flags)?;
    conn.query_row(
        "SELECT value FROM _tenantd_meta WHERE key = ?1",
        [RESTORED_FROM_KEY],
        |r| r.get(0),
    )
    .optional()
}

/// Inserts `log` into the checked copy `tmp`, marks it created at `created_lsn` and restored
/// from `origin`, and closes it as one file (WAL checkpointed and removed).
fn add_log(
    tmp: &Path,
    log: &[(Lsn, Record)],
    created_lsn: Lsn,
    origin: &str,
) -> Result<(), BackupError> {
    let conn = rusqlite::Connection::open(tmp)?;
    let records: Vec<(u64, Lsn, Record)> = log
        .iter()
        .enumerate()
        .map(|(i, (lsn, r))| (i as u64, *lsn, r.clone()))
        .collect();
    // Applied as the node's appliers would (by event id, nothing twice), before the new
    // created_lsn is written: the snapshot's own created_lsn decides what belongs to it.
    store::inbox::insert_all(&conn, &records)?;
    store::inbox::write_created_lsn(&conn, created_lsn)?;
    conn.execute(
        "INSERT OR REPLACE INTO _tenantd_meta(key, value) VALUES (?1, ?2)",
        rusqlite::params![RESTORED_FROM_KEY, origin],
    )?;
    conn.close().map_err(|(_, e)| BackupError::from(e))?;
    std::fs::File::open(tmp)?.sync_all()?;
    Ok(())
}

/// A new temp file name `.<tenant>.<what>.<random>` in `dest`'s directory (created if missing),
/// so the final rename stays within one filesystem.
fn temp_beside(dest: &Path, tenant: &str, what: &str) -> std::io::Result<PathBuf> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    Ok(dir.join(format!(".{tenant}.{what}.{:016x}", rand::random::<u64>())))
}

/// Unpacks `body` next to `dest`, checks it, lets `finish` complete the copy, and renames it
/// over `dest`; returns its size.
fn install(
    body: impl Read,
    snap: &SnapshotKey,
    dest: &Path,
    name: String,
    finish: impl FnOnce(&Path) -> Result<(), BackupError>,
) -> Result<u64, BackupError> {
    let tmp = temp_beside(dest, &snap.tenant, "restore")?;
    let dir = dest.parent().unwrap_or(Path::new("."));
    let result = unpack_checked(body, snap, &tmp, &name).and_then(|_| {
        finish(&tmp)?;
        let bytes = std::fs::metadata(&tmp)?.len();
        for side in companions(dest) {
            match std::fs::remove_file(&side) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        std::fs::rename(&tmp, dest)?;
        std::fs::File::open(dir)?.sync_all()?;
        Ok(bytes)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Decompresses `body` into `tmp` (fsynced), checking the sha256 and `integrity_check`.
fn unpack_checked(
    body: impl Read,
    snap: &SnapshotKey,
    tmp: &Path,
    name: &str,
) -> Result<u64, BackupError> {
    let corrupt = |why: String| BackupError::Corrupt {
        key: name.to_owned(),
        why,
    };
    let mut dec = zstd::Decoder::new(body).map_err(|e| corrupt(format!("not zstd: {e}")))?;
    let mut out = std::fs::File::create(tmp)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = dec
            .read(&mut buf)
            .map_err(|e| corrupt(format!("cannot decompress: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        bytes += n as u64;
    }
    out.sync_all()?;
    drop(out);
    let sha = hex::encode(hasher.finalize());
    if sha != snap.sha256 {
        return Err(corrupt(format!(
            "sha256 {sha}, the key says {}",
            snap.sha256
        )));
    }
    let check = integrity_check(tmp).map_err(|e| corrupt(format!("not a database: {e}")))?;
    if check != "ok" {
        return Err(corrupt(format!("integrity_check: {check}")));
    }
    Ok(bytes)
}

/// `PRAGMA integrity_check` of the file at `path` (first line; "ok" when sound).
pub fn integrity_check(path: &Path) -> rusqlite::Result<String> {
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = rusqlite::Connection::open_with_flags(path, flags)?;
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
}

fn companions(db: &Path) -> [PathBuf; 2] {
    store::layout::companion_paths(db)
}

fn has_wal(db: &Path) -> bool {
    companions(db)[0].exists()
}

/// A Unix-ms time as RFC 3339 (UTC, milliseconds).
pub fn format_ms(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(t).to_string()
}

/// Reads `--at`: RFC 3339 (`2026-12-01T10:00:00Z`, fractions allowed) or Unix milliseconds.
pub fn parse_at(s: &str) -> Result<u64, BackupError> {
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(ms);
    }
    let t = humantime::parse_rfc3339_weak(s).map_err(|e| {
        BackupError::Config(format!(
            "--at {s:?}: {e}; give RFC 3339 (2026-12-01T10:00:00Z) or Unix milliseconds"
        ))
    })?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_and_format() {
        assert_eq!(parse_at("1700000000123").unwrap(), 1_700_000_000_123);
        assert_eq!(
            parse_at("2023-11-14T22:13:20.123Z").unwrap(),
            1_700_000_000_123
        );
        assert_eq!(format_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert!(parse_at("yesterday")
            .unwrap_err()
            .to_string()
            .contains("RFC 3339"));
    }

    fn snapshot_of(dir: &Path) -> (Vec<u8>, SnapshotKey) {
        let db = dir.join("src.db");
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (42);")
            .unwrap();
        drop(c);
        let raw = std::fs::read(&db).unwrap();
        let sha = hex::encode(Sha256::digest(&raw));
        let body = zstd::encode_all(&raw[..], 3).unwrap();
        let snap = SnapshotKey {
            at_ms: 1,
            tenant: "acme".into(),
            sha256: sha,
            applied_lsn: None,
        };
        (body, snap)
    }

    #[test]
    fn install_checks_before_it_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let (body, snap) = snapshot_of(dir.path());
        let dest = dir.path().join("acme.db");
        std::fs::write(&dest, b"old").unwrap();
        std::fs::write(companions(&dest)[0].clone(), b"stale wal").unwrap();

        // A damaged object (one byte flipped inside the frame) is refused; the old file stays.
        let mut bad = body.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0xff;
        let err = install(&bad[..], &snap, &dest, "k".into(), |_| Ok(())).unwrap_err();
        assert!(matches!(err, BackupError::Corrupt { .. }), "{err}");
        assert_eq!(std::fs::read(&dest).unwrap(), b"old");
        // Right bytes under a wrong checksum: refused too.
        let wrong = SnapshotKey {
            sha256: "0".repeat(64),
            ..snap.clone()
        };
        let err = install(&body[..], &wrong, &dest, "k".into(), |_| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("sha256"), "{err}");

        install(&body[..], &snap, &dest, "k".into(), |_| Ok(())).unwrap();
        assert!(!companions(&dest)[0].exists(), "the stale WAL went first");
        let c = rusqlite::Connection::open(&dest).unwrap();
        assert_eq!(
            c.query_row("SELECT x FROM t", [], |r| r.get::<_, i64>(0))
                .unwrap(),
            42
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".restore."))
            .collect();
        assert!(leftovers.is_empty(), "no temp file left");
    }
}
