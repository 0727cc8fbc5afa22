//! The on-disk layout of a data directory, and the one function that builds a tenant's path.
//!
//! ```text
//! <data>/tenants/<aa>/<bb>/<tenant>.db     aa, bb: first two bytes of sha256(tenant), hex
//! <data>/moved/<tenant>.db, <tenant>.json  a tenant that moved to another node (grace period)
//! <data>/moving/<tenant>.<tag>             a snapshot or an import in transit
//! ```
//! The two fan-out levels (65,536 directories) keep every directory small at 1M tenants
//! (~15 files each). Listing walks the tree in (aa, bb, id) order, one directory at a time, so a
//! page never needs the whole tenant set in memory.

use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::name::TenantId;

/// Name of the directory under the data dir that holds tenant files.
pub const TENANTS_DIR: &str = "tenants";
const DB_SUFFIX: &str = ".db";

/// The path of `tenant`'s database file under `data_dir`. The only place such a path is built.
pub fn tenant_path(data_dir: &Path, tenant: &TenantId) -> PathBuf {
    let (aa, bb) = fan_out(tenant);
    let mut path = data_dir.join(TENANTS_DIR);
    path.push(aa);
    path.push(bb);
    path.push(format!("{tenant}{DB_SUFFIX}"));
    path
}

/// Directory under the data dir of tenants that moved to another node (kept for a grace
/// period, see `handoff`).
pub const MOVED_DIR: &str = "moved";
/// Directory under the data dir of files in transit (snapshots for a move, imports being
/// received); emptied at start.
pub const MOVING_DIR: &str = "moving";

/// Where a tenant that moved away keeps its file, and the marker naming its new owner:
/// `<data>/moved/<tenant>.db` and `<data>/moved/<tenant>.json`.
pub fn retired_paths(data_dir: &Path, tenant: &TenantId) -> (PathBuf, PathBuf) {
    let dir = data_dir.join(MOVED_DIR);
    (
        dir.join(format!("{tenant}{DB_SUFFIX}")),
        dir.join(format!("{tenant}.json")),
    )
}

/// A file in transit for `tenant`: `<data>/moving/<tenant>.<tag>` (`tag` names the use and
/// makes it unique, e.g. `export.<token>`).
pub fn transit_path(data_dir: &Path, tenant: &TenantId, tag: &str) -> PathBuf {
    data_dir.join(MOVING_DIR).join(format!("{tenant}.{tag}"))
}

/// The `-wal` and `-shm` companions of a database file.
pub fn companion_paths(db: &Path) -> [PathBuf; 2] {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let mut shm = db.as_os_str().to_owned();
    shm.push("-shm");
    [wal.into(), shm.into()]
}

fn fan_out(tenant: &TenantId) -> (String, String) {
    let digest = Sha256::digest(tenant.as_str().as_bytes());
    (hex::encode(&digest[..1]), hex::encode(&digest[1..2]))
}

/// Position in the listing order; `Cursor::encode` makes it opaque for API users.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListKey {
    aa: String,
    bb: String,
    id: String,
}

impl ListKey {
    /// The key of a tenant.
    pub fn of(tenant: &TenantId) -> Self {
        let (aa, bb) = fan_out(tenant);
        ListKey {
            aa,
            bb,
            id: tenant.as_str().to_owned(),
        }
    }

    /// An opaque cursor string (hex of `aa bb id`).
    pub fn encode(&self) -> String {
        hex::encode(format!("{}{}{}", self.aa, self.bb, self.id))
    }

    /// Parses a cursor made by [`ListKey::encode`]; `None` if it is not one.
    pub fn decode(cursor: &str) -> Option<Self> {
        let raw = String::from_utf8(hex::decode(cursor).ok()?).ok()?;
        if raw.len() < 5 || !raw.is_char_boundary(4) {
            return None;
        }
        let tenant = TenantId::parse(&raw[4..]).ok()?;
        let key = ListKey::of(&tenant);
        (key.aa == raw[..2] && key.bb == raw[2..4]).then_some(key)
    }
}

/// Lists up to `limit` tenants after `after` in listing order; the second value is the key to
/// continue from, `None` at the end. Errors are I/O errors reading the tenants directory.
pub fn list_tenants(
    data_dir: &Path,
    after: Option<&ListKey>,
    limit: usize,
) -> io::Result<(Vec<TenantId>, Option<ListKey>)> {
    let root = data_dir.join(TENANTS_DIR);
    let mut out = Vec::new();
    for aa in sorted_hex_dirs(&root)? {
        if after.is_some_and(|k| aa < k.aa) {
            continue;
        }
        for bb in sorted_hex_dirs(&root.join(&aa))? {
            if after.is_some_and(|k| (aa.as_str(), bb.as_str()) < (k.aa.as_str(), k.bb.as_str())) {
                continue;
            }
            let mut ids = tenant_files(&root.join(&aa).join(&bb))?;
            ids.sort();
            for id in ids {
                let key = ListKey {
                    aa: aa.clone(),
                    bb: bb.clone(),
                    id: id.as_str().to_owned(),
                };
                if after.is_some_and(|k| &key <= k) {
                    continue;
                }
                if out.len() == limit {
                    let last = out.last().map(ListKey::of);
                    return Ok((out, last));
                }
                out.push(id);
            }
        }
    }
    Ok((out, None))
}

/// Every tenant whose `-wal` file exists (a tenant closed without a checkpoint). Walks the
/// whole tree: meant for one background pass at start. Errors are I/O errors.
pub fn tenants_with_wal(data_dir: &Path) -> io::Result<Vec<TenantId>> {
    let root = data_dir.join(TENANTS_DIR);
    let mut out = Vec::new();
    for aa in sorted_hex_dirs(&root)? {
        for bb in sorted_hex_dirs(&root.join(&aa))? {
            for entry in std::fs::read_dir(root.join(&aa).join(&bb))? {
                let name = entry?.file_name();
                let stem = name.to_str().and_then(|n| n.strip_suffix(".db-wal"));
                if let Some(id) = stem.and_then(|s| TenantId::parse(s).ok()) {
                    out.push(id);
                }
            }
        }
    }
    Ok(out)
}

fn sorted_hex_dirs(dir: &Path) -> io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        let name = entry?.file_name();
        if let Some(name) = name.to_str() {
            if name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                names.push(name.to_owned());
            }
        }
    }
    names.sort();
    Ok(names)
}

fn tenant_files(dir: &Path) -> io::Result<Vec<TenantId>> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(DB_SUFFIX)) else {
            continue;
        };
        if let Ok(id) = TenantId::parse(stem) {
            ids.push(id);
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }

    #[test]
    fn path_is_stable_and_fanned_out() {
        let p = tenant_path(Path::new("/d"), &t("acme"));
        let s = p.to_str().unwrap();
        assert!(s.starts_with("/d/tenants/"), "{s}");
        assert!(s.ends_with("/acme.db"), "{s}");
        assert_eq!(p.components().count(), 6, "{s}");
        assert_eq!(p, tenant_path(Path::new("/d"), &t("acme")));
        // sha256("acme") starts with 0x82 0x2b — pinned so the layout never silently changes.
        assert_eq!(s, "/d/tenants/82/2b/acme.db");
    }

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let k = ListKey::of(&t("tenant42"));
        assert_eq!(ListKey::decode(&k.encode()), Some(k));
        for bad in ["", "zz", "00", &hex::encode("ffffacme")] {
            assert_eq!(ListKey::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn listing_pages_through_everything_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut want = Vec::new();
        for i in 0..250 {
            let id = t(&format!("t{i}"));
            let p = tenant_path(dir.path(), &id);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, b"").unwrap();
            std::fs::write(companion_paths(&p)[0].clone(), b"").unwrap();
            want.push(id);
        }
        want.sort_by_key(ListKey::of);
        let mut got = Vec::new();
        let mut after = None;
        loop {
            let (page, next) = list_tenants(dir.path(), after.as_ref(), 7).unwrap();
            assert!(page.len() <= 7);
            got.extend(page);
            match next {
                Some(k) => after = Some(ListKey::decode(&k.encode()).unwrap()),
                None => break,
            }
        }
        assert_eq!(got, want);
    }
}
