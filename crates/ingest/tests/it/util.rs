// Shared helpers: records with varied fields, a seeded generator, log setup.

use std::path::Path;
use std::time::Duration;

use ingest::{Log, LogConfig, Record, Replay, SyncMode};

/// A record whose fields all depend on `i` (some optional fields absent, some empty).
pub fn rec(i: u64) -> Record {
    Record {
        tenant: format!("tenant-{}", i % 7),
        source: if i % 5 == 0 {
            String::new()
        } else {
            format!("src{}", i % 3)
        },
        delivery_id: (i % 2 == 0).then(|| format!("d-{i}")),
        event_id: i as i64 * 3 - 1,
        received_at_ms: 1_700_000_000_000 + i as i64,
        content_type: (i % 3 != 0).then(|| "application/json".to_string()),
        body: format!("{{\"n\":{i}}}").into_bytes(),
    }
}

/// A record with a body of `len` bytes derived from `i`.
pub fn rec_sized(i: u64, len: usize) -> Record {
    let mut r = rec(i);
    r.body = (0..len).map(|k| (k as u64 ^ i) as u8).collect();
    r
}

/// A small seeded generator (splitmix64), so failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Config for tests: `sync`, segments of `segment_bytes`.
pub fn cfg(dir: &Path, sync: SyncMode, segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        sync,
        ..LogConfig::new(dir)
    }
}

/// A long interval: nothing syncs until close, which keeps loops of opens fast.
pub const LAZY: SyncMode = SyncMode::Interval(Duration::from_secs(3600));

/// Opens the log in `dir` and replays everything.
pub fn open(dir: &Path, sync: SyncMode, segment_bytes: u64) -> (Log, Replay) {
    Log::open(cfg(dir, sync, segment_bytes), 0).unwrap()
}

/// Appends records `from..to` one after another; returns their LSNs.
pub async fn append_range(log: &Log, from: u64, to: u64) -> Vec<u64> {
    let mut lsns = Vec::new();
    for i in from..to {
        lsns.push(log.append(&rec(i)).await.unwrap());
    }
    lsns
}

/// The segment files in `dir` (path, length), oldest first.
pub fn segment_files(dir: &Path) -> Vec<(std::path::PathBuf, u64)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .map(|p| {
            let len = std::fs::metadata(&p).unwrap().len();
            (p, len)
        })
        .collect();
    v.sort();
    v
}
