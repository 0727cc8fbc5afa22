//! Pool configuration: durability mode and the knobs that bound RAM and file descriptors.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::migrate::MigrationSet;

/// What a 2xx promises about a committed write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// WAL + `synchronous=FULL`: every commit is fsynced; a 2xx survives power loss.
    Fsync,
    /// WAL + `synchronous=NORMAL`: a 2xx survives a process crash; the last commits may roll back
    /// on power loss or an OS crash, and the file is never corrupted.
    Crash,
}

impl Durability {
    /// The `PRAGMA synchronous` value for this mode.
    pub fn synchronous_pragma(self) -> &'static str {
        match self {
            Durability::Fsync => "FULL",
            Durability::Crash => "NORMAL",
        }
    }
}

impl std::str::FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fsync" => Ok(Durability::Fsync),
            "crash" => Ok(Durability::Crash),
            other => Err(format!(
                "unknown durability {other:?} (expected \"fsync\" or \"crash\")"
            )),
        }
    }
}

/// How a tenant's connections share its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Locking {
    /// `PRAGMA locking_mode=EXCLUSIVE` before the first access: the WAL index lives in the
    /// connection's heap (no `-shm`, 28 fewer `fcntl` locks per cold open), so the tenant's one
    /// connection (the writer) serves reads too, one at a time, with `query_only` on for a read.
    Exclusive,
    /// SQLite's default (`NORMAL`): a `-shm` WAL index shared by the writer and up to
    /// `readers_per_tenant` reader connections, so reads run beside the writer.
    Shared,
}

impl std::str::FromStr for Locking {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "exclusive" => Ok(Locking::Exclusive),
            "shared" => Ok(Locking::Shared),
            other => Err(format!(
                "unknown locking {other:?} (expected \"exclusive\" or \"shared\")"
            )),
        }
    }
}

/// Default idle time after which a tenant's file is checkpointed and closed.
pub const DEFAULT_IDLE_TTL: Duration = Duration::from_secs(10);
/// Default cap on tenants open at once.
pub const DEFAULT_MAX_OPEN: usize = 1024;
/// Default per-connection page cache, KiB (SQLite's own default is 2,000 KiB).
pub const DEFAULT_CACHE_KIB: u32 = 256;
/// Default per-tenant size quota, bytes.
pub const DEFAULT_QUOTA_BYTES: u64 = 1 << 30;
/// Default WAL size, in pages, past which a background checkpoint is scheduled.
pub const DEFAULT_WAL_CHECKPOINT_PAGES: u32 = 1000;
/// Default cap on writes queued behind one tenant's writer.
pub const DEFAULT_MAX_QUEUED_WRITES: usize = 64;
/// Default global SQLite soft heap limit, bytes.
pub const DEFAULT_SQLITE_HEAP_LIMIT: u64 = 256 << 20;
/// Default time a request for a closed tenant waits for a free place in the pool when every
/// open tenant is in use (past it: `PoolExhausted`, a 503 with `Retry-After`).
pub const DEFAULT_OPEN_WAIT: Duration = Duration::from_secs(2);
/// Default locking mode of tenant connections.
pub const DEFAULT_LOCKING: Locking = Locking::Shared;
/// Default wait of a write for a tenant fenced by a move before it is refused (503).
pub const DEFAULT_FENCE_WAIT: Duration = Duration::from_secs(2);
/// Default number of reader connections per open tenant (open at once, and kept when idle).
pub const DEFAULT_READERS_PER_TENANT: usize = 2;

/// Everything the tenant pool needs to know. `PoolConfig::new(dir)` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// The data directory (tenant files live under `<data>/tenants`).
    pub data_dir: PathBuf,
    /// Durability of a committed write.
    pub durability: Durability,
    /// One connection per tenant with its WAL index in memory, or a shared `-shm` and readers.
    pub locking: Locking,
    /// Close a tenant after this long without requests; zero closes after every request.
    pub idle_ttl: Duration,
    /// Most tenants open at once; the least recently used idle one is evicted past it. When every
    /// open tenant is in use, a request for another waits (no thread) up to `open_wait`.
    pub max_open: usize,
    /// How long a request for a closed tenant waits for a place when all `max_open` are in use.
    pub open_wait: Duration,
    /// Page cache per connection, KiB.
    pub cache_kib: u32,
    /// Per-tenant database size quota, bytes (enforced with `max_page_count`).
    pub quota_bytes: u64,
    /// WAL pages past which the tenant is checkpointed in the background.
    pub wal_checkpoint_pages: u32,
    /// Writes allowed to wait for one tenant's writer before new ones are refused.
    pub max_queued_writes: usize,
    /// Process-wide SQLite soft heap limit, bytes (0 = none).
    pub sqlite_heap_limit: u64,
    /// Read-only connections per open tenant, at most: reads past it wait (no thread) for one,
    /// and all of them are kept while the tenant is open. 0 is taken as 1.
    pub readers_per_tenant: usize,
    /// How long a statement waits for a lock held by another connection.
    pub busy_timeout: Duration,
    /// Migrations applied to a tenant that is behind when it is opened (none by default).
    pub migrations: Option<Arc<MigrationSet>>,
    /// Run the background maintenance loop (idle closes, WAL checkpoints, tidying), started by
    /// `TenantPool::open` and stopped by `shutdown`. Tests switch it off and call `maintain_at`.
    pub maintenance: bool,
    /// How long a write waits for a tenant fenced by a move before it gets `Moving` (503 with
    /// Retry-After); reads are not fenced.
    pub fence_wait: Duration,
    /// Keep the set of tenants whose files changed (`TenantPool::changes`), for backup. Off by
    /// default: without a consumer the set would grow to every tenant ever written.
    pub track_changes: bool,
}

impl PoolConfig {
    /// The defaults, with data in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        PoolConfig {
            data_dir: data_dir.into(),
            durability: Durability::Fsync,
            locking: DEFAULT_LOCKING,
            idle_ttl: DEFAULT_IDLE_TTL,
            max_open: DEFAULT_MAX_OPEN,
            open_wait: DEFAULT_OPEN_WAIT,
            cache_kib: DEFAULT_CACHE_KIB,
            quota_bytes: DEFAULT_QUOTA_BYTES,
            wal_checkpoint_pages: DEFAULT_WAL_CHECKPOINT_PAGES,
            max_queued_writes: DEFAULT_MAX_QUEUED_WRITES,
            sqlite_heap_limit: DEFAULT_SQLITE_HEAP_LIMIT,
            readers_per_tenant: DEFAULT_READERS_PER_TENANT,
            busy_timeout: Duration::from_secs(5),
            migrations: None,
            maintenance: true,
            fence_wait: DEFAULT_FENCE_WAIT,
            track_changes: false,
        }
    }

    /// Reader connections one open tenant may have at once (`readers_per_tenant`, at least 1;
    /// none in exclusive locking, where reads run on the writer).
    pub fn reader_cap(&self) -> usize {
        match self.locking {
            Locking::Exclusive => 0,
            Locking::Shared => self.readers_per_tenant.max(1),
        }
    }

    /// File descriptors one open tenant may hold: the writer's db + wal, and in shared locking
    /// the shared shm and db + wal per reader.
    pub fn fds_per_tenant(&self) -> usize {
        match self.locking {
            Locking::Exclusive => 2,
            Locking::Shared => 3 + 2 * self.reader_cap(),
        }
    }
}
