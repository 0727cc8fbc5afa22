//! The pool's counters and gauges, read by `/metrics`.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Counters (monotonic) and gauges of the pool. All relaxed atomics: metrics, not control flow,
/// except `open_tenants`, which the pool also uses for its cap.
#[derive(Debug, Default)]
pub struct PoolStats {
    /// Gauge: tenants open right now.
    pub open_tenants: AtomicUsize,
    /// Gauge: tenants removed from the pool whose connections are still being closed.
    pub closing_tenants: AtomicUsize,
    /// Tenants opened (a slot created for a closed tenant).
    pub tenants_opened: AtomicU64,
    /// SQLite connections opened (writers and readers).
    pub connections_opened: AtomicU64,
    /// Tenants closed because the open cap was reached (LRU).
    pub evictions: AtomicU64,
    /// Tenants closed because they were idle for the TTL.
    pub idle_closes: AtomicU64,
    /// Background checkpoints of WALs past their bound.
    pub checkpoints: AtomicU64,
    /// Fast-evicted tenants later checkpointed and closed cleanly.
    pub tidies: AtomicU64,
    /// Writes refused because the tenant's write queue was full.
    pub rejected_queue_full: AtomicU64,
    /// Opens refused because every open tenant stayed in use for `open_wait`.
    pub rejected_pool_exhausted: AtomicU64,
    /// Requests that had to wait for a place in the pool (every open tenant was in use).
    pub open_waits: AtomicU64,
    /// Gauge: requests waiting for a place in the pool right now.
    pub open_waiting: AtomicUsize,
    /// Times the pool ran a tenant's pending migrations (successful or not).
    pub migration_runs: AtomicU64,
    /// Tenants whose migration failed (each is then refused until the migrations change).
    pub migration_failures: AtomicU64,
}

impl PoolStats {
    /// Tenants open right now.
    pub fn open(&self) -> usize {
        self.open_tenants.load(Ordering::Relaxed)
    }
}
