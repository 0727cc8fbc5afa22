//! Waiting for a place in the pool when all `max_open` open tenants are in use.
//!
//! A request for a closed tenant that finds every open tenant with a user waits (`lease` in
//! `slot`, async, no thread) until a tenant's last user leaves or a delete frees a place: each
//! such event wakes one waiter through `Inner::slot_freed`, which then evicts the least recently
//! used idle tenant. The wait is bounded by `open_wait`; past it the request gets
//! `PoolExhausted` (a 503 with `Retry-After`). Background work (tidy) never waits.

use std::sync::atomic::Ordering;

use tokio::time::Instant;

use super::Inner;

/// Whether a lease of a closed tenant waits for a place when every open tenant is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wait {
    /// Up to `open_wait` (requests).
    ForPlace,
    /// Not at all (background work, which tries again later).
    No,
}

/// One request waiting for a place in the pool: counted in the gauge while it lives.
pub(super) struct Waiting<'a> {
    inner: &'a Inner,
    pub(super) deadline: Instant,
}

impl<'a> Waiting<'a> {
    pub(super) fn start(inner: &'a Inner) -> Self {
        inner.stats.open_waits.fetch_add(1, Ordering::Relaxed);
        inner.stats.open_waiting.fetch_add(1, Ordering::Relaxed);
        Waiting {
            inner,
            deadline: Instant::now() + inner.cfg.open_wait,
        }
    }
}

impl Drop for Waiting<'_> {
    /// Passes the wake-up on, however the wait ended: places freed while no waiter was
    /// registered leave a single stored wake-up, so the next waiter must look again.
    fn drop(&mut self) {
        self.inner
            .stats
            .open_waiting
            .fetch_sub(1, Ordering::Relaxed);
        self.inner.slot_freed.notify_one();
    }
}
