//! Open Hrana streams between HTTP requests, per node.
//!
//! A stream lives in a [`StreamTable`] under a random id; its baton (HMAC, bound to the tenant,
//! single use) names the id and the one sequence number the table accepts next. Between
//! requests a stream keeps its stored SQL texts and, **only while its transaction is open**, the
//! tenant's [`WriterGuard`]: other writes to that tenant (webhooks, other streams) queue behind
//! it, as behind a held write lock. A stream idle for `stream_idle` expires: its transaction is
//! rolled back on the writer and the writer released, so an abandoned transaction blocks its
//! tenant for at most that long. Live streams are capped per tenant and per node
//! (`too_many_streams`, 429 / 503): a stream counts from its first request until it is closed,
//! dropped or expired; a request on a new stream that ends with `close` never enters the table
//! and does not count. The expiry task is owned by the server state, stops on
//! [`SqlState::stop_expiry`], and once shutdown begins it expires every idle stream at once so
//! the pool can close tenants cleanly.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use hrana::baton::BatonCodec;
use hrana::exec::{Stream, StreamConfig};
use hrana::stream_table::{StreamLimits, StreamTable, TakeError};
use parking_lot::Mutex;
use store::{TenantId, WriterGuard};
use tokio::sync::Notify;

use super::error::SqlError;
use super::SqlState;
use crate::state::{AppState, Shared};

/// A stream between requests: its state and, while a transaction is open, the tenant's writer.
pub struct Held {
    /// Stored SQL texts and the closed flag.
    pub stream: Stream,
    /// The tenant's writer, kept only while the stream's transaction is open.
    pub writer: Option<WriterGuard>,
}

/// How long a request carrying a stream's next baton waits for the request before it to be
/// put back (see [`TakeError::Busy`]). A cancelled request winds down in milliseconds; a
/// client that really sends two requests at once gets `BATON_REUSED` after this.
pub const BUSY_WAIT: Duration = Duration::from_secs(5);

/// The node's open streams and the codec of their batons.
pub struct Streams {
    table: Mutex<StreamTable<Held>>,
    codec: BatonCodec,
    /// Woken whenever a stream in use is put back or forgotten.
    freed: Notify,
}

impl Streams {
    /// An empty registry whose batons are signed with `codec`'s key, holding at most `limits`
    /// live streams.
    pub fn new(codec: BatonCodec, limits: StreamLimits) -> Self {
        Streams {
            table: Mutex::new(StreamTable::with_limits(limits)),
            codec,
            freed: Notify::new(),
        }
    }

    /// Live streams of `tenant` right now.
    pub fn of_tenant(&self, tenant: &TenantId) -> usize {
        self.table.lock().owned_by(tenant.as_str())
    }

    /// Streams held right now (idle or in a request).
    pub fn len(&self) -> usize {
        self.table.lock().len()
    }

    /// True when no stream is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Streams taken by a request right now.
    pub fn in_use(&self) -> usize {
        self.table.lock().in_use()
    }

    /// Takes the stream `baton` names for one request; without a baton, a fresh stream that
    /// is registered (and counted against the caps) when `will_close` is false, and otherwise
    /// stays out of the table (`id` is then `None`). Errors: `BATON_INVALID` (malformed,
    /// forged, another tenant's, unknown stream), `BATON_REUSED`, `STREAM_EXPIRED`,
    /// `too_many_streams`. A baton whose stream is still finishing the request before waits
    /// for it (up to [`BUSY_WAIT`]).
    pub async fn take(
        &self,
        tenant: &TenantId,
        baton: Option<&str>,
        will_close: bool,
        cfg: &StreamConfig,
    ) -> Result<(Option<u64>, Held), SqlError> {
        let Some(baton) = baton else {
            if will_close {
                return Ok((None, fresh(cfg)));
            }
            let (id, _) = self.table.lock().reserve(tenant.as_str())?;
            return Ok((Some(id), fresh(cfg)));
        };
        let (id, seq) = self.decode(tenant, baton)?;
        let held = self.take_slot(id, seq).await?;
        Ok((Some(id), held))
    }

    /// Like [`Streams::take`], but a new stream is always registered, and the baton for the
    /// request after this one is returned up front (a cursor writes it before any row).
    pub async fn take_registered(
        &self,
        tenant: &TenantId,
        baton: Option<&str>,
        cfg: &StreamConfig,
    ) -> Result<(u64, Held, String), SqlError> {
        let (id, seq, held) = match baton {
            Some(baton) => {
                let (id, seq) = self.decode(tenant, baton)?;
                let held = self.take_slot(id, seq).await?;
                (id, seq, held)
            }
            None => {
                let (id, next) = self.table.lock().reserve(tenant.as_str())?;
                (id, next.wrapping_sub(1), fresh(cfg))
            }
        };
        let next = self.codec.encode(tenant.as_str(), id, seq.wrapping_add(1));
        Ok((id, held, next))
    }

    /// Takes stream `id` at `seq`, waiting while it is [`TakeError::Busy`].
    async fn take_slot(&self, id: u64, seq: u64) -> Result<Held, SqlError> {
        let deadline = tokio::time::Instant::now() + BUSY_WAIT;
        loop {
            // Registered before the check, so a put_back in between still wakes us.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let taken = self.table.lock().take(id, seq, Instant::now());
            match taken {
                Err(TakeError::Busy) => {}
                taken => return taken.map_err(|e| SqlError::baton(e.code(), e)),
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(SqlError::baton(TakeError::Busy.code(), TakeError::Busy));
            }
        }
    }

    /// Keeps `held` (taken with stream `id`) for the next request; returns its baton, or `None`
    /// if the stream left the table meanwhile (a bug: `held` is dropped, which rolls back).
    pub fn put_back(&self, tenant: &TenantId, id: u64, held: Held) -> Option<String> {
        let seq = self.table.lock().put_back(id, held, Instant::now());
        self.freed.notify_waiters();
        if seq.is_none() {
            tracing::error!(tenant = %tenant, "a stream left the table while in use");
        }
        seq.map(|seq| self.codec.encode(tenant.as_str(), id, seq))
    }

    /// Forgets a taken stream (closed, or broken by a protocol error).
    pub fn forget(&self, id: Option<u64>) {
        if let Some(id) = id {
            self.table.lock().remove(id);
            self.freed.notify_waiters();
        }
    }

    /// Expires streams idle for `idle` as of `now`, rolling back their transactions and
    /// releasing their writers; returns how many expired. Tests pass a `now` in the future.
    pub async fn expire_at(&self, now: Instant, idle: Duration) -> usize {
        let expired = self.table.lock().expire(now, idle);
        let n = expired.len();
        for (_, held) in expired {
            abandon(held).await;
        }
        n
    }

    fn decode(&self, tenant: &TenantId, baton: &str) -> Result<(u64, u64), SqlError> {
        self.codec
            .decode(tenant.as_str(), baton)
            .map_err(|e| SqlError::baton("BATON_INVALID", e))
    }
}

fn fresh(cfg: &StreamConfig) -> Held {
    Held {
        stream: Stream::new(cfg.clone()),
        writer: None,
    }
}

/// Rolls back a stream's open transaction on its writer and releases the writer.
pub async fn abandon(held: Held) {
    let Held { mut stream, writer } = held;
    let Some(writer) = writer else {
        return; // no transaction: nothing to undo
    };
    let tenant = writer.tenant().clone();
    match writer.run(move |conn| stream.abandon(conn)).await {
        Ok((_, Ok(()))) => tracing::debug!(tenant = %tenant, "stream expired: rolled back"),
        Ok((_, Err(e))) => {
            tracing::error!(tenant = %tenant, error = %e, "cannot roll back an expired stream")
        }
        Err(e) => {
            tracing::error!(tenant = %tenant, error = %e, "cannot roll back an expired stream")
        }
    }
}

/// Starts the stream expiry task of `state`: every tick it expires streams idle for
/// `stream_idle`, or every idle stream once shutdown has begun (`/readyz` false). It ends on
/// [`SqlState::stop_expiry`] or when the state is dropped.
pub fn spawn_expiry(state: &AppState) -> tokio::task::JoinHandle<()> {
    let weak: Weak<Shared> = Arc::downgrade(&state.0);
    let stop = state.sql.stop.clone();
    let tick =
        (state.sql.config.stream_idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                () = stop.notified() => return,
            }
            let Some(shared) = weak.upgrade() else { return };
            let ready = shared.ready.load(std::sync::atomic::Ordering::Acquire);
            let idle = if ready {
                shared.sql.config.stream_idle
            } else {
                Duration::ZERO
            };
            let streams = shared.sql.streams.clone();
            drop(shared);
            streams.expire_at(Instant::now(), idle).await;
        }
    })
}

impl SqlState {
    /// Stops the expiry task started by [`spawn_expiry`].
    pub fn stop_expiry(&self) {
        self.stop.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streams() -> (Arc<Streams>, TenantId, StreamConfig) {
        let streams = Streams::new(BatonCodec::random(), StreamLimits::UNLIMITED);
        let tenant = TenantId::parse("acme").unwrap();
        (Arc::new(streams), tenant, StreamConfig::default())
    }

    #[tokio::test(start_paused = true)]
    async fn the_next_baton_waits_for_its_stream_to_be_put_back() {
        let (streams, tenant, cfg) = streams();
        let (id, held, next) = streams.take_registered(&tenant, None, &cfg).await.unwrap();
        let early = {
            let (streams, tenant, cfg) = (streams.clone(), tenant.clone(), cfg.clone());
            tokio::spawn(async move {
                streams
                    .take(&tenant, Some(next.as_str()), false, &cfg)
                    .await
                    .map(|(id, _)| id)
            })
        };
        tokio::time::sleep(BUSY_WAIT / 2).await;
        assert!(!early.is_finished(), "it waits while the stream is in use");
        streams.put_back(&tenant, id, held).unwrap();
        assert_eq!(early.await.unwrap().unwrap(), Some(id));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_busy_past_the_wait_is_refused_and_a_forgotten_one_is_invalid() {
        let (streams, tenant, cfg) = streams();
        let (id, _held, next) = streams.take_registered(&tenant, None, &cfg).await.unwrap();
        let busy = streams.take(&tenant, Some(next.as_str()), false, &cfg);
        let err = busy.await.err().expect("still in use after the wait");
        assert_eq!(err.parts().0, "BATON_REUSED");

        let waiting = {
            let (streams, tenant, cfg) = (streams.clone(), tenant.clone(), cfg.clone());
            tokio::spawn(async move {
                let taken = streams.take(&tenant, Some(next.as_str()), false, &cfg);
                taken.await.err().map(|e| e.parts().0)
            })
        };
        tokio::time::sleep(BUSY_WAIT / 2).await;
        streams.forget(Some(id));
        assert_eq!(waiting.await.unwrap().as_deref(), Some("BATON_INVALID"));
    }
}
