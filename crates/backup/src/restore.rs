//! Restoring tenants from the bucket: pick the snapshot, download, check, install.
//!
//! A snapshot is installed only after its sha256 matches its key and SQLite's
//! `integrity_check` passes on the downloaded copy; it is written to a temp file next to the
//! target, fsynced, and renamed over it (the tenant's stale `-wal`/`-shm` removed first, so
//! nothing of the replaced file is replayed on top). A target already holding the wanted
//! snapshot is skipped, which makes `--all` resumable.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::BackupError;
use crate::key::{pick, SnapshotKey};
use crate::remote::Remote;

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

/// Restores `tenant` to the file `dest`: the newest snapshot at or before `at_ms` (`None`:
/// the newest). Refuses to replace a different existing file unless `force`. The caller makes
/// sure nothing has `dest` open (no server on that data dir).
pub async fn restore_tenant(
    remote: &Remote,
    tenant: &str,
    at_ms: Option<u64>,
    dest: &Path,
    force: bool,
) -> Result<Restored, BackupError> {
    let snaps = remote.snapshots(tenant).await?;
    let snap = pick(&snaps, at_ms)
        .ok_or_else(|| BackupError::NoSnapshot {
            tenant: tenant.to_owned(),
            at: at_ms.map(format_ms),
        })?
        .clone();
    if dest.exists() {
        let path = dest.to_owned();
        let held = tokio::task::spawn_blocking(move || sha256_file(&path))
            .await
            .map_err(|e| BackupError::Io(std::io::Error::other(e)))??;
        if held.0 == snap.sha256 && !has_wal(dest) {
            return Ok(Restored {
                snapshot: snap,
                bytes: held.1,
                skipped: true,
            });
        }
        if !force {
            return Err(BackupError::Exists {
                tenant: tenant.to_owned(),
                path: dest.to_owned(),
            });
        }
    }
    let body = remote.get(&snap).await?;
    let (dest2, snap2) = (dest.to_owned(), snap.clone());
    let bytes =
        tokio::task::spawn_blocking(move || install(&body, &snap2, &dest2, remote_key(&snap2)))
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

/// Unpacks `body` next to `dest`, checks it, and renames it over `dest`; returns its size.
fn install(body: &[u8], snap: &SnapshotKey, dest: &Path, name: String) -> Result<u64, BackupError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.restore.{:016x}",
        snap.tenant,
        rand::random::<u64>()
    ));
    let result = unpack_checked(body, snap, &tmp, &name).and_then(|bytes| {
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
    body: &[u8],
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

/// sha256 (hex) and size of a file.
fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n_all = 0;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        n_all += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), n_all))
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
        let err = install(&bad, &snap, &dest, "k".into()).unwrap_err();
        assert!(matches!(err, BackupError::Corrupt { .. }), "{err}");
        assert_eq!(std::fs::read(&dest).unwrap(), b"old");
        // Right bytes under a wrong checksum: refused too.
        let wrong = SnapshotKey {
            sha256: "0".repeat(64),
            ..snap.clone()
        };
        let err = install(&body, &wrong, &dest, "k".into())
            .unwrap_err()
            .to_string();
        assert!(err.contains("sha256"), "{err}");

        install(&body, &snap, &dest, "k".into()).unwrap();
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
