//! The server's table of open streams between HTTP requests, keyed by a random stream id.
//! Each stream expects one sequence number (the one in its latest baton): `take` checks it and
//! marks the stream in use, `put_back` returns it with the next number, and `expire` retires
//! streams idle too long, keeping a tombstone for a while so late batons get "expired" rather
//! than "invalid". Every stream has an owner (the tenant); the table caps live streams per
//! owner and in total ([`StreamLimits`]), counting a stream from `insert`/`reserve` until
//! `remove`/`expire`. Pure: time is passed in, so tests use explicit `Instant`s.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long an expired stream is remembered (to answer "expired" instead of "invalid").
pub const TOMBSTONE_TTL: Duration = Duration::from_secs(300);

/// Default idle time after which a stream expires (sqld uses 10 s).
pub const DEFAULT_STREAM_IDLE: Duration = Duration::from_secs(10);

/// Caps on live streams (idle or in use; tombstones do not count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamLimits {
    /// Most live streams of one owner (tenant).
    pub per_owner: usize,
    /// Most live streams in the table.
    pub total: usize,
}

impl StreamLimits {
    /// No caps.
    pub const UNLIMITED: StreamLimits = StreamLimits {
        per_owner: usize::MAX,
        total: usize::MAX,
    };
}

/// A new stream would exceed a cap of [`StreamLimits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TooManyStreams {
    /// The owner (tenant) already has `max` live streams.
    #[error("too many open streams for this tenant (at most {max}): close streams when done (a `close` request, or `client.close()`), or wait for idle ones to expire")]
    Owner {
        /// The per-owner cap.
        max: usize,
    },
    /// The table already has `max` live streams.
    #[error("too many open streams on this server (at most {max}); retry later")]
    Total {
        /// The total cap.
        max: usize,
    },
}

/// Why a baton could not take its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TakeError {
    /// No such stream (closed, never existed, or forgotten after expiry).
    #[error("invalid baton: the stream does not exist or was closed")]
    Unknown,
    /// The baton was already used (or is not the stream's next one).
    #[error("baton already used: requests on a stream must be sent one after another")]
    Reused,
    /// The baton is the stream's next one, but the request before it has not finished on the
    /// server yet (a client that stopped reading a cursor's body sends its next request while
    /// the server is still winding the cursor down). Worth waiting for, briefly.
    #[error("the stream is still busy with its previous request")]
    Busy,
    /// The stream expired after being idle.
    #[error("the stream has expired due to inactivity")]
    Expired,
}

impl TakeError {
    /// A machine-readable code for the error body.
    pub fn code(&self) -> &'static str {
        match self {
            TakeError::Unknown => "BATON_INVALID",
            TakeError::Reused | TakeError::Busy => "BATON_REUSED",
            TakeError::Expired => "STREAM_EXPIRED",
        }
    }
}

enum Slot<T> {
    Idle {
        owner: String,
        value: T,
        seq: u64,
        last_used: Instant,
    },
    InUse {
        owner: String,
        next_seq: u64,
    },
    Expired {
        at: Instant,
    },
}

/// Open streams by id. `T` is whatever the server keeps per stream.
pub struct StreamTable<T> {
    slots: HashMap<u64, Slot<T>>,
    limits: StreamLimits,
    /// Live streams per owner (owners with none are removed).
    per_owner: HashMap<String, usize>,
    /// Live streams in total.
    live: usize,
}

impl<T> Default for StreamTable<T> {
    fn default() -> Self {
        Self::with_limits(StreamLimits::UNLIMITED)
    }
}

impl<T> StreamTable<T> {
    /// An empty table without caps.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty table that refuses new streams past `limits`.
    pub fn with_limits(limits: StreamLimits) -> Self {
        StreamTable {
            slots: HashMap::new(),
            limits,
            per_owner: HashMap::new(),
            live: 0,
        }
    }

    /// Streams held (idle or in use), not counting tombstones.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Streams held by `owner`.
    pub fn owned_by(&self, owner: &str) -> usize {
        self.per_owner.get(owner).copied().unwrap_or(0)
    }

    /// True when no stream is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Streams taken by a request right now.
    pub fn in_use(&self) -> usize {
        self.slots
            .values()
            .filter(|s| matches!(s, Slot::InUse { .. }))
            .count()
    }

    /// Adds a new idle stream of `owner`; returns its `(stream id, seq)` for the first baton.
    /// Errors: the owner or the table is at its cap.
    pub fn insert(
        &mut self,
        owner: &str,
        value: T,
        now: Instant,
    ) -> Result<(u64, u64), TooManyStreams> {
        let id = self.admit(owner)?;
        let seq: u64 = rand::random();
        self.slots.insert(
            id,
            Slot::Idle {
                owner: owner.to_owned(),
                value,
                seq,
                last_used: now,
            },
        );
        Ok((id, seq))
    }

    /// Adds a new stream of `owner` that is already in use (a request runs on it before its
    /// first `put_back`); returns its id and the seq its first `put_back` will give. Errors: the
    /// owner or the table is at its cap.
    pub fn reserve(&mut self, owner: &str) -> Result<(u64, u64), TooManyStreams> {
        let id = self.admit(owner)?;
        let next_seq: u64 = rand::random();
        self.slots.insert(
            id,
            Slot::InUse {
                owner: owner.to_owned(),
                next_seq,
            },
        );
        Ok((id, next_seq))
    }

    /// Counts a new stream of `owner` if the caps allow; returns a fresh id.
    fn admit(&mut self, owner: &str) -> Result<u64, TooManyStreams> {
        if self.owned_by(owner) >= self.limits.per_owner {
            return Err(TooManyStreams::Owner {
                max: self.limits.per_owner,
            });
        }
        if self.live >= self.limits.total {
            return Err(TooManyStreams::Total {
                max: self.limits.total,
            });
        }
        *self.per_owner.entry(owner.to_owned()).or_insert(0) += 1;
        self.live += 1;
        Ok(loop {
            let id: u64 = rand::random();
            if !self.slots.contains_key(&id) {
                break id;
            }
        })
    }

    /// Uncounts a stream of `owner` that left the table.
    fn release(&mut self, owner: &str) {
        self.live = self.live.saturating_sub(1);
        if let Some(n) = self.per_owner.get_mut(owner) {
            *n -= 1;
            if *n == 0 {
                self.per_owner.remove(owner);
            }
        }
    }

    /// Takes stream `id` for one request if `seq` is the expected one. Errors: unknown
    /// stream, reused baton (wrong seq, or in use by the request that got `seq`), busy (`seq`
    /// is the next baton but its request has not been put back yet), expired stream.
    pub fn take(&mut self, id: u64, seq: u64, _now: Instant) -> Result<T, TakeError> {
        match self.slots.get(&id) {
            None => return Err(TakeError::Unknown),
            Some(Slot::Expired { .. }) => return Err(TakeError::Expired),
            Some(Slot::InUse { next_seq, .. }) if *next_seq == seq => return Err(TakeError::Busy),
            Some(Slot::InUse { .. }) => return Err(TakeError::Reused),
            Some(Slot::Idle { seq: expected, .. }) if *expected != seq => {
                return Err(TakeError::Reused)
            }
            Some(Slot::Idle { .. }) => {}
        }
        let next_seq = seq.wrapping_add(1);
        match self.slots.remove(&id) {
            Some(Slot::Idle { owner, value, .. }) => {
                self.slots.insert(id, Slot::InUse { owner, next_seq });
                Ok(value)
            }
            _ => unreachable!("checked above that the slot is idle"),
        }
    }

    /// Returns a taken stream after its request; returns the seq for the next baton, or `None`
    /// if the stream is not in use (a server bug: it was removed meanwhile; `value` is dropped).
    pub fn put_back(&mut self, id: u64, value: T, now: Instant) -> Option<u64> {
        let Some(Slot::InUse { owner, next_seq }) = self.slots.remove(&id) else {
            debug_assert!(false, "put_back of stream {id} that is not in use");
            return None;
        };
        self.slots.insert(
            id,
            Slot::Idle {
                owner,
                value,
                seq: next_seq,
                last_used: now,
            },
        );
        Some(next_seq)
    }

    /// Forgets stream `id` (closed); returns its value if it was idle.
    pub fn remove(&mut self, id: u64) -> Option<T> {
        match self.slots.remove(&id)? {
            Slot::Idle { owner, value, .. } => {
                self.release(&owner);
                Some(value)
            }
            Slot::InUse { owner, .. } => {
                self.release(&owner);
                None
            }
            Slot::Expired { .. } => None,
        }
    }

    /// Expires streams idle for at least `idle` and forgets tombstones older than
    /// [`TOMBSTONE_TTL`]; returns the expired streams so the caller can roll them back.
    pub fn expire(&mut self, now: Instant, idle: Duration) -> Vec<(u64, T)> {
        self.slots.retain(|_, slot| match slot {
            Slot::Expired { at } => now.saturating_duration_since(*at) < TOMBSTONE_TTL,
            _ => true,
        });
        let due: Vec<u64> = self
            .slots
            .iter()
            .filter_map(|(id, slot)| match slot {
                Slot::Idle { last_used, .. }
                    if now.saturating_duration_since(*last_used) >= idle =>
                {
                    Some(*id)
                }
                _ => None,
            })
            .collect();
        let mut expired = Vec::with_capacity(due.len());
        for id in due {
            if let Some(Slot::Idle { owner, value, .. }) =
                self.slots.insert(id, Slot::Expired { at: now })
            {
                self.release(&owner);
                expired.push((id, value));
            }
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(10);

    #[test]
    fn take_put_back_advances_the_sequence() {
        let t0 = Instant::now();
        let mut table = StreamTable::new();
        let (id, seq) = table.insert("acme", "s", t0).unwrap();
        assert_eq!(table.take(id, seq, t0), Ok("s"));
        assert_eq!(table.take(id, seq, t0), Err(TakeError::Reused), "in use");
        let early = seq.wrapping_add(1);
        assert_eq!(
            table.take(id, early, t0),
            Err(TakeError::Busy),
            "next baton, too early"
        );
        let next = table.put_back(id, "s", t0).unwrap();
        assert_eq!(next, seq.wrapping_add(1));
        assert_eq!(table.take(id, seq, t0), Err(TakeError::Reused), "old baton");
        assert_eq!(table.take(id, next, t0), Ok("s"));
        assert_eq!(table.take(id ^ 1, next, t0), Err(TakeError::Unknown));
    }

    #[test]
    fn idle_streams_expire_and_leave_a_tombstone() {
        let t0 = Instant::now();
        let mut table = StreamTable::new();
        let (a, seq_a) = table.insert("acme", "a", t0).unwrap();
        let (b, seq_b) = table.insert("acme", "b", t0).unwrap();
        let b_val = table.take(b, seq_b, t0).unwrap();
        let seq_b = table
            .put_back(b, b_val, t0 + Duration::from_secs(5))
            .unwrap();
        assert!(table.expire(t0 + Duration::from_secs(9), IDLE).is_empty());
        let expired = table.expire(t0 + IDLE, IDLE);
        assert_eq!(expired, vec![(a, "a")]);
        assert_eq!(table.take(a, seq_a, t0 + IDLE), Err(TakeError::Expired));
        assert_eq!(table.len(), 1);
        assert_eq!(table.take(b, seq_b, t0 + IDLE), Ok("b"));
        // Tombstones are forgotten after TOMBSTONE_TTL.
        table.expire(t0 + IDLE + TOMBSTONE_TTL, IDLE);
        assert_eq!(table.take(a, seq_a, t0), Err(TakeError::Unknown));
    }

    #[test]
    fn streams_in_use_never_expire() {
        let t0 = Instant::now();
        let mut table = StreamTable::new();
        let (id, seq) = table.insert("acme", 1, t0).unwrap();
        let v = table.take(id, seq, t0).unwrap();
        assert!(table
            .expire(t0 + Duration::from_secs(3600), IDLE)
            .is_empty());
        let next = table
            .put_back(id, v, t0 + Duration::from_secs(3600))
            .unwrap();
        assert_eq!(table.take(id, next, t0 + Duration::from_secs(3601)), Ok(1));
    }

    #[test]
    fn remove_closes() {
        let t0 = Instant::now();
        let mut table = StreamTable::new();
        let (id, seq) = table.insert("acme", 1, t0).unwrap();
        assert_eq!(table.remove(id), Some(1));
        assert!(table.is_empty());
        assert_eq!(table.take(id, seq, t0), Err(TakeError::Unknown));
    }

    #[test]
    fn live_streams_are_capped_per_owner_and_in_total() {
        let t0 = Instant::now();
        let mut table = StreamTable::with_limits(StreamLimits {
            per_owner: 2,
            total: 3,
        });
        let (a1, _) = table.insert("a", 1, t0).unwrap();
        let (a2, _) = table.reserve("a").unwrap();
        assert_eq!(
            table.insert("a", 3, t0),
            Err(TooManyStreams::Owner { max: 2 })
        );
        assert_eq!(table.reserve("a"), Err(TooManyStreams::Owner { max: 2 }));
        let (b1, _) = table.insert("b", 4, t0).unwrap();
        assert_eq!(table.reserve("c"), Err(TooManyStreams::Total { max: 3 }));
        assert_eq!((table.len(), table.owned_by("a")), (3, 2));
        // Closing, forgetting an in-use stream and expiry each free a place.
        assert_eq!(table.remove(a1), Some(1));
        table.insert("c", 5, t0).unwrap();
        assert_eq!(table.remove(a2), None, "in use");
        assert_eq!(table.owned_by("a"), 0);
        table.reserve("a").unwrap();
        assert_eq!(table.expire(t0 + IDLE, IDLE).len(), 2, "b and c were idle");
        assert_eq!((table.len(), table.owned_by("b")), (1, 0));
        assert_eq!(table.remove(b1), None, "a tombstone is not live");
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn a_reserved_stream_gets_its_first_baton_from_put_back() {
        let t0 = Instant::now();
        let mut table = StreamTable::new();
        let (id, first) = table.reserve("a").unwrap();
        assert_eq!(table.take(id, first, t0), Err(TakeError::Busy), "in use");
        assert_eq!(table.take(id, first ^ 1, t0), Err(TakeError::Reused));
        assert_eq!(table.put_back(id, "v", t0), Some(first));
        assert_eq!(table.take(id, first, t0), Ok("v"));
    }
}
