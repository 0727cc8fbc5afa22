//! Object keys of snapshots, and the pure choices made on lists of them.
//!
//! `<prefix>/tenants/<id>/<ms>-<sha256>-<lsn>.db.zst`: `ms` is the snapshot's time (Unix ms, 16
//! digits, so keys list in time order), `sha256` the hex digest of the uncompressed database
//! file, which a restore checks before installing anything, and `lsn` (20 digits) the ingest
//! log position every record at or below which was in its tenant file before the snapshot
//! began: a restore needs only the shipped records after it. A key without it (`<ms>-<sha256>`,
//! tombstones and keys written before) counts as position 0: every shipped record may be
//! needed.

use std::time::Duration;

/// The folder of every tenant's snapshots.
pub const TENANTS: &str = "tenants";
/// The folder of the shipped ingest log.
pub const LOG: &str = "log";
const LOG_SUFFIX: &str = ".log.zst";
const SUFFIX: &str = ".db.zst";

/// The `sha256` of a tombstone: the tenant was deleted or moved away at `at_ms` (an empty
/// object, so a restore of the node does not bring it back).
pub const GONE: &str = "gone";

/// One snapshot object (or tombstone), as named by its key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SnapshotKey {
    /// When it was taken, Unix ms.
    pub at_ms: u64,
    /// The tenant id.
    pub tenant: String,
    /// sha256 (hex) of the uncompressed file.
    pub sha256: String,
    /// Every ingest-log record at or below this LSN was in its tenant's file before the
    /// snapshot began (`None`: a key written before keys carried it, read as 0).
    pub applied_lsn: Option<u64>,
}

/// `<prefix>/tenants` (or `tenants` without a prefix).
pub fn tenants_dir(prefix: &str) -> String {
    if prefix.is_empty() {
        TENANTS.to_owned()
    } else {
        format!("{prefix}/{TENANTS}")
    }
}

/// `<prefix>/tenants/<id>`: the folder of one tenant's snapshots.
pub fn tenant_dir(prefix: &str, tenant: &str) -> String {
    format!("{}/{tenant}", tenants_dir(prefix))
}

impl SnapshotKey {
    /// The object key under `prefix`.
    pub fn key(&self, prefix: &str) -> String {
        let dir = tenant_dir(prefix, &self.tenant);
        match self.applied_lsn {
            Some(lsn) => format!("{dir}/{:016}-{}-{lsn:020}{SUFFIX}", self.at_ms, self.sha256),
            None => format!("{dir}/{:016}-{}{SUFFIX}", self.at_ms, self.sha256),
        }
    }

    /// A tombstone for `tenant` at `at_ms`.
    pub fn gone(tenant: &str, at_ms: u64) -> Self {
        SnapshotKey {
            at_ms,
            tenant: tenant.to_owned(),
            sha256: GONE.to_owned(),
            applied_lsn: None,
        }
    }

    /// True for a tombstone.
    pub fn is_gone(&self) -> bool {
        self.sha256 == GONE
    }

    /// Reads a key back; `None` for anything that is not a snapshot key under `prefix`.
    pub fn parse(prefix: &str, key: &str) -> Option<Self> {
        let rest = key.strip_prefix(&tenants_dir(prefix))?.strip_prefix('/')?;
        let (tenant, name) = rest.split_once('/')?;
        let (ms, rest) = name.strip_suffix(SUFFIX)?.split_once('-')?;
        let (sha, applied_lsn) = match rest.split_once('-') {
            Some((sha, lsn)) if lsn.len() == 20 => (sha, Some(lsn.parse().ok()?)),
            Some(_) => return None,
            None => (rest, None),
        };
        let valid_sha =
            sha == GONE || (sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()));
        if tenant.is_empty() || ms.len() != 16 || !valid_sha {
            return None;
        }
        Some(SnapshotKey {
            at_ms: ms.parse().ok()?,
            tenant: tenant.to_owned(),
            sha256: sha.to_ascii_lowercase(),
            applied_lsn,
        })
    }
}

/// A chunk of the ingest log: the frames of LSNs `first..=last`, as the log holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogChunkKey {
    /// The first LSN in it.
    pub first: u64,
    /// The last LSN in it.
    pub last: u64,
}

/// `<prefix>/log` (or `log`).
pub fn log_dir(prefix: &str) -> String {
    if prefix.is_empty() {
        LOG.to_owned()
    } else {
        format!("{prefix}/{LOG}")
    }
}

impl LogChunkKey {
    /// The object key under `prefix` (20-digit LSNs: keys list in log order).
    pub fn key(&self, prefix: &str) -> String {
        format!(
            "{}/{:020}-{:020}{LOG_SUFFIX}",
            log_dir(prefix),
            self.first,
            self.last
        )
    }

    /// Reads a key back; `None` for anything else.
    pub fn parse(prefix: &str, key: &str) -> Option<Self> {
        let name = key.strip_prefix(&log_dir(prefix))?.strip_prefix('/')?;
        let (first, last) = name.strip_suffix(LOG_SUFFIX)?.split_once('-')?;
        if first.len() != 20 || last.len() != 20 {
            return None;
        }
        let (first, last) = (first.parse().ok()?, last.parse().ok()?);
        (first <= last).then_some(LogChunkKey { first, last })
    }
}

/// The snapshot a restore at `at_ms` installs: the newest taken at or before it (`None` = the
/// newest of all).
pub fn pick(snaps: &[SnapshotKey], at_ms: Option<u64>) -> Option<&SnapshotKey> {
    snaps
        .iter()
        .filter(|s| at_ms.is_none_or(|at| s.at_ms <= at))
        .max_by_key(|s| s.at_ms)
}

/// The snapshots retention removes at `now_ms`: every one older than the window except the
/// newest of those, which a restore at the window's start still needs.
pub fn expired(snaps: &[SnapshotKey], now_ms: u64, window: Duration) -> Vec<&SnapshotKey> {
    let cutoff = now_ms.saturating_sub(u64::try_from(window.as_millis()).unwrap_or(u64::MAX));
    let mut old: Vec<&SnapshotKey> = snaps.iter().filter(|s| s.at_ms < cutoff).collect();
    old.sort_by_key(|s| s.at_ms);
    old.pop();
    old
}

/// The log chunks retention removes at `now_ms`: uploaded before the window and `margin` more
/// (every record in them was applied and snapshotted long before; a restore at the window's
/// start uses a snapshot at least that new). `chunks` carry their upload time.
pub fn expired_log(
    chunks: &[(LogChunkKey, u64)],
    now_ms: u64,
    window: Duration,
    margin: Duration,
) -> Vec<LogChunkKey> {
    let keep = window.saturating_add(margin);
    let cutoff = now_ms.saturating_sub(u64::try_from(keep.as_millis()).unwrap_or(u64::MAX));
    chunks
        .iter()
        .filter(|(_, at)| *at < cutoff)
        .map(|(c, _)| *c)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(at_ms: u64) -> SnapshotKey {
        SnapshotKey {
            at_ms,
            tenant: "acme".into(),
            sha256: format!("{:064x}", at_ms),
            applied_lsn: Some(at_ms / 2),
        }
    }

    #[test]
    fn keys_round_trip_and_sort_by_time() {
        let s = snap(1_700_000_000_123);
        let key = s.key("backups/node1");
        assert_eq!(
            key,
            format!(
                "backups/node1/tenants/acme/0001700000000123-{}-00000000850000000061.db.zst",
                s.sha256
            )
        );
        // A key written before the log position was in it: position 0.
        let old = format!("tenants/acme/0001700000000123-{}.db.zst", s.sha256);
        let parsed = SnapshotKey::parse("", &old).unwrap();
        assert_eq!((parsed.at_ms, parsed.applied_lsn), (s.at_ms, None));
        assert_eq!(parsed.key(""), old, "and it is fetched under its own key");
        assert_eq!(SnapshotKey::parse("backups/node1", &key), Some(s.clone()));
        assert_eq!(SnapshotKey::parse("", &snap(5).key("")), Some(snap(5)));
        assert!(
            snap(9).key("") < snap(10).key(""),
            "zero padding keeps time order"
        );
        for bad in [
            "tenants/acme/0001700000000123-abc.db.zst",
            "tenants/acme/1700000000123-".to_owned().as_str(),
            "other/acme/0001700000000123-0.db.zst",
            "tenants/acme/x.db.zst",
            &format!("tenants/acme/0001700000000123-{}-12.db.zst", s.sha256),
        ] {
            assert_eq!(SnapshotKey::parse("", bad), None, "{bad}");
        }
        assert_eq!(SnapshotKey::parse("p", &s.key("q")), None, "another prefix");
        let tomb = SnapshotKey::gone("acme", 42);
        assert!(tomb.key("").ends_with("0000000000000042-gone.db.zst"));
        assert_eq!(SnapshotKey::parse("", &tomb.key("")), Some(tomb.clone()));
        assert!(tomb.is_gone() && !s.is_gone());
    }

    #[test]
    fn log_chunk_keys_round_trip() {
        let c = LogChunkKey {
            first: 7,
            last: 1234,
        };
        let key = c.key("n1");
        assert_eq!(
            key,
            "n1/log/00000000000000000007-00000000000000001234.log.zst"
        );
        assert_eq!(LogChunkKey::parse("n1", &key), Some(c));
        assert_eq!(LogChunkKey::parse("", &c.key("")), Some(c));
        let backwards = "log/00000000000000000009-00000000000000000008.log.zst";
        assert_eq!(LogChunkKey::parse("", backwards), None);
        assert_eq!(LogChunkKey::parse("n1", &snap(1).key("n1")), None);
    }

    #[test]
    fn old_log_chunks_expire_after_the_window_and_margin() {
        let c = |first| LogChunkKey { first, last: first };
        let chunks = vec![(c(1), 100), (c(2), 700), (c(3), 900)];
        let (w, m) = (Duration::from_millis(200), Duration::from_millis(100));
        assert_eq!(expired_log(&chunks, 1_000, w, m), vec![c(1)]);
        assert!(expired_log(&chunks, 300, w, m).is_empty());
    }

    #[test]
    fn pick_takes_the_newest_at_or_before() {
        let snaps = vec![snap(10), snap(30), snap(20)];
        assert_eq!(pick(&snaps, None).unwrap().at_ms, 30);
        assert_eq!(pick(&snaps, Some(29)).unwrap().at_ms, 20);
        assert_eq!(pick(&snaps, Some(20)).unwrap().at_ms, 20);
        assert_eq!(pick(&snaps, Some(9)), None);
    }

    #[test]
    fn expiry_keeps_the_base_of_the_window() {
        let w = Duration::from_millis(100);
        let snaps = vec![snap(10), snap(50), snap(120), snap(250)];
        let gone: Vec<u64> = expired(&snaps, 200, w).iter().map(|s| s.at_ms).collect();
        assert_eq!(
            gone,
            vec![10],
            "50 is the newest before the cutoff (100): kept"
        );
        assert!(expired(&snaps, 100, w).is_empty());
        assert!(
            expired(&[snap(1)], 10_000, w).is_empty(),
            "a lone old snapshot stays"
        );
    }
}
