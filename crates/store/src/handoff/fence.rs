//! Fences: which tenants are in the middle of a move (writes wait, then are refused) or have
//! moved away from this node (answered with their new owner). Only such tenants have an entry,
//! so an idle tenant costs nothing here. Pure state with the time passed in, plus one async
//! wait ([`Fences::pass`]) for writers.
//!
//! A fence has a token and an expiry: a mover that dies leaves the tenant fenced only until
//! the expiry, after which writes pass again and the fence cannot be committed any more. The
//! mover renews it with its token while it works. Commit turns a valid fence into `Moved`
//! under the same lock writers check, so once a commit succeeds no write got past the fence
//! after the snapshot.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::name::TenantId;

/// What a tenant's entry says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// A move is under way: writes wait.
    Fenced {
        /// The mover's token.
        token: u64,
        /// When the fence lifts by itself.
        until: Instant,
        /// The node the tenant is moving to.
        to: String,
    },
    /// The tenant has moved to `to`; this node keeps its old file only for a grace period.
    Moved {
        /// Its new owner.
        to: String,
    },
}

/// What a writer may do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pass {
    /// No move: go ahead.
    Open,
    /// A move is under way: retry after about this long.
    Fenced {
        /// Until the fence lifts by itself.
        retry_after: Duration,
    },
    /// Moved to another node.
    Moved {
        /// Its new owner.
        to: String,
    },
}

/// A fence granted (or renewed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The token that renews, commits or lifts it.
    pub token: u64,
    /// How long it holds unless renewed.
    pub ttl: Duration,
}

/// Why a fence or a commit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FenceError {
    /// Another move holds the tenant.
    #[error("another move (to {to}) holds this tenant for {remaining:?} more")]
    Held {
        /// Where that move goes.
        to: String,
        /// Until its fence lifts by itself.
        remaining: Duration,
    },
    /// The tenant already moved.
    #[error("the tenant has moved to {to}")]
    Moved {
        /// Its new owner.
        to: String,
    },
    /// The fence is gone (expired, lifted, or never held with this token).
    #[error("no fence with this token: it expired or was lifted; start the move again")]
    Expired,
}

/// The registry; one per pool.
#[derive(Default)]
pub struct Fences {
    map: Mutex<HashMap<TenantId, Mark>>,
    /// Wakes writers waiting on a fence when one is lifted or committed.
    changed: Notify,
    tokens: AtomicU64,
}

impl Fences {
    /// An empty registry.
    pub fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Fences {
            tokens: AtomicU64::new(seed | 1),
            ..Default::default()
        }
    }

    /// Fences `id` for a move to `to` for `ttl`, or renews the fence whose token is `renew`.
    /// Errors: `Held` (another live fence), `Moved`, `Expired` (renewing a fence that is gone).
    pub fn fence(
        &self,
        id: &TenantId,
        to: &str,
        ttl: Duration,
        renew: Option<u64>,
        now: Instant,
    ) -> Result<Grant, FenceError> {
        let mut map = self.map.lock();
        match (map.get(id), renew) {
            (Some(Mark::Moved { to }), _) => {
                return Err(FenceError::Moved { to: to.clone() });
            }
            (Some(Mark::Fenced { token, until, .. }), Some(r)) if *token == r && *until > now => {}
            (Some(Mark::Fenced { until, to, .. }), _) if *until > now => {
                return Err(FenceError::Held {
                    to: to.clone(),
                    remaining: *until - now,
                });
            }
            (_, Some(_)) => return Err(FenceError::Expired),
            (_, None) => {}
        }
        let token = renew.unwrap_or_else(|| self.tokens.fetch_add(2, Ordering::Relaxed));
        map.insert(
            id.clone(),
            Mark::Fenced {
                token,
                until: now + ttl,
                to: to.to_string(),
            },
        );
        Ok(Grant { token, ttl })
    }

    /// What a writer of `id` may do at `now` (an expired fence is dropped here).
    pub fn check(&self, id: &TenantId, now: Instant) -> Pass {
        let mut map = self.map.lock();
        match map.get(id) {
            None => Pass::Open,
            Some(Mark::Moved { to }) => Pass::Moved { to: to.clone() },
            Some(Mark::Fenced { until, .. }) if *until > now => Pass::Fenced {
                retry_after: *until - now,
            },
            Some(Mark::Fenced { .. }) => {
                map.remove(id);
                Pass::Open
            }
        }
    }

    /// The node `id` moved to, if it moved away from here.
    pub fn moved_to(&self, id: &TenantId) -> Option<String> {
        match self.map.lock().get(id) {
            Some(Mark::Moved { to }) => Some(to.clone()),
            _ => None,
        }
    }

    /// Where `id` is being moved, if a live fence holds it at `now`.
    pub fn moving_to(&self, id: &TenantId, now: Instant) -> Option<String> {
        match self.map.lock().get(id) {
            Some(Mark::Fenced { until, to, .. }) if *until > now => Some(to.clone()),
            _ => None,
        }
    }

    /// Whether `token` holds a live fence on `id` at `now`.
    pub fn holds(&self, id: &TenantId, token: u64, now: Instant) -> bool {
        matches!(self.map.lock().get(id),
            Some(Mark::Fenced { token: t, until, .. }) if *t == token && *until > now)
    }

    /// Turns the live fence `token` into `Moved`: from now on no write of `id` passes. Returns
    /// the destination. Errors: `Expired`, `Moved` (committed before: returns it as an error
    /// so the caller can tell a rerun).
    pub fn commit(&self, id: &TenantId, token: u64, now: Instant) -> Result<String, FenceError> {
        let mut map = self.map.lock();
        let to = match map.get(id) {
            Some(Mark::Fenced {
                token: t,
                until,
                to,
            }) if *t == token && *until > now => to.clone(),
            Some(Mark::Moved { to }) => return Err(FenceError::Moved { to: to.clone() }),
            _ => return Err(FenceError::Expired),
        };
        map.insert(id.clone(), Mark::Moved { to: to.clone() });
        drop(map);
        self.changed.notify_waiters();
        Ok(to)
    }

    /// Lifts the fence `token` (a move that gave up); `false` if it was not there.
    pub fn lift(&self, id: &TenantId, token: u64) -> bool {
        let mut map = self.map.lock();
        let held = matches!(map.get(id), Some(Mark::Fenced { token: t, .. }) if *t == token);
        if held {
            map.remove(id);
            drop(map);
            self.changed.notify_waiters();
        }
        held
    }

    /// Marks `id` as moved to `to` (a retired tenant found at start).
    pub fn set_moved(&self, id: &TenantId, to: &str) {
        self.map
            .lock()
            .insert(id.clone(), Mark::Moved { to: to.to_string() });
        self.changed.notify_waiters();
    }

    /// Forgets that `id` moved away (it came back, or its move was undone).
    pub fn clear_moved(&self, id: &TenantId) {
        let mut map = self.map.lock();
        if matches!(map.get(id), Some(Mark::Moved { .. })) {
            map.remove(id);
        }
    }

    /// Entries (fenced or moved), for metrics.
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// Whether no tenant is fenced or moved.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits while `id` is fenced, at most `wait`: `Open` once the fence lifts (or expires),
    /// `Moved` if it was committed, `Fenced` if it still holds after `wait`.
    pub async fn pass(&self, id: &TenantId, wait: Duration) -> Pass {
        let deadline = Instant::now() + wait;
        loop {
            let changed = self.changed.notified();
            let now = Instant::now();
            match self.check(id, now) {
                Pass::Fenced { retry_after } if now < deadline => {
                    // Wake at the fence's own expiry too: nobody notifies that.
                    let until = deadline.min(now + retry_after);
                    let _ = tokio::time::timeout_at(until, changed).await;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acme() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    #[test]
    fn a_fence_holds_until_its_ttl_then_lets_writes_through() {
        let f = Fences::new();
        let t0 = Instant::now();
        let g = f
            .fence(&acme(), "node2", Duration::from_secs(30), None, t0)
            .unwrap();
        assert_eq!(
            f.check(&acme(), t0 + Duration::from_secs(10)),
            Pass::Fenced {
                retry_after: Duration::from_secs(20)
            }
        );
        assert!(f.holds(&acme(), g.token, t0 + Duration::from_secs(29)));
        assert_eq!(f.check(&acme(), t0 + Duration::from_secs(30)), Pass::Open);
        assert!(f.is_empty(), "an expired fence leaves no entry");
        assert_eq!(
            f.commit(&acme(), g.token, t0 + Duration::from_secs(31)),
            Err(FenceError::Expired),
            "a crashed mover's fence can no longer be committed"
        );
    }

    #[test]
    fn renewal_needs_the_token_and_another_mover_is_refused() {
        let f = Fences::new();
        let t0 = Instant::now();
        let ttl = Duration::from_secs(30);
        let g = f.fence(&acme(), "node2", ttl, None, t0).unwrap();
        let t1 = t0 + Duration::from_secs(20);
        assert!(matches!(
            f.fence(&acme(), "node3", ttl, None, t1),
            Err(FenceError::Held { .. })
        ));
        assert!(matches!(
            f.fence(&acme(), "node2", ttl, Some(g.token + 2), t1),
            Err(FenceError::Held { .. })
        ));
        f.fence(&acme(), "node2", ttl, Some(g.token), t1).unwrap();
        assert!(f.holds(&acme(), g.token, t0 + Duration::from_secs(45)));
        assert_eq!(
            f.fence(
                &acme(),
                "node2",
                ttl,
                Some(g.token),
                t0 + Duration::from_secs(60)
            ),
            Err(FenceError::Expired)
        );
    }

    #[test]
    fn commit_turns_the_fence_into_moved_and_lift_needs_the_token() {
        let f = Fences::new();
        let t0 = Instant::now();
        let g = f
            .fence(&acme(), "node2", Duration::from_secs(30), None, t0)
            .unwrap();
        assert!(!f.lift(&acme(), g.token + 2));
        assert_eq!(f.commit(&acme(), g.token, t0).unwrap(), "node2");
        assert_eq!(f.check(&acme(), t0), Pass::Moved { to: "node2".into() });
        assert_eq!(
            f.commit(&acme(), g.token, t0),
            Err(FenceError::Moved { to: "node2".into() })
        );
        assert!(matches!(
            f.fence(&acme(), "node3", Duration::from_secs(1), None, t0),
            Err(FenceError::Moved { .. })
        ));
        f.clear_moved(&acme());
        assert_eq!(f.check(&acme(), t0), Pass::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_writer_passes_when_the_fence_lifts_or_is_refused_after_its_wait() {
        let f = std::sync::Arc::new(Fences::new());
        let g = f
            .fence(
                &acme(),
                "node2",
                Duration::from_secs(30),
                None,
                Instant::now(),
            )
            .unwrap();
        let waited = f.pass(&acme(), Duration::from_secs(2)).await;
        assert!(matches!(waited, Pass::Fenced { .. }), "{waited:?}");
        let f2 = f.clone();
        let writer = tokio::spawn(async move { f2.pass(&acme(), Duration::from_secs(5)).await });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(f.lift(&acme(), g.token));
        assert_eq!(writer.await.unwrap(), Pass::Open);
        // A fence that expires while a writer waits lets it through at the expiry.
        f.fence(
            &acme(),
            "node2",
            Duration::from_secs(3),
            None,
            Instant::now(),
        )
        .unwrap();
        let start = Instant::now();
        assert_eq!(f.pass(&acme(), Duration::from_secs(10)).await, Pass::Open);
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }
}
