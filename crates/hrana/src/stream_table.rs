//! The server's table of open streams between HTTP requests, keyed by a random stream id.
//! Each stream expects one sequence number (the one in its latest baton): `take` checks it and
//! marks the stream in use, `put_back` returns it with the next number, and `expire` retires
//! streams idle too long, keeping a tombstone for a while so late batons get "expired" rather
//! than "invalid". Pure: time is passed in, so tests use explicit `Instant`s.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long an expired stream is remembered (to answer "expired" instead of "invalid").
pub const TOMBSTONE_TTL: Duration = Duration::from_secs(300);

/// Default idle time after which a stream expires (sqld uses 10 s).
pub const DEFAULT_STREAM_IDLE: Duration = Duration::from_secs(10);

/// Why a baton could not take its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TakeError {
    /// No such stream (closed, never existed, or forgotten after expiry).
    #[error("invalid baton: the stream does not exist or was closed")]
    Unknown,
    /// The baton was already used, or the stream is busy with another request.
    #[error("baton already used: requests on a stream must be sent one after another")]
    Reused,
    /// The stream expired after being idle.
    #[error("the stream has expired due to inactivity")]
    Expired,
}

impl TakeError {
    /// A machine-readable code for the error body.
    pub fn code(&self) -> &'static str {
        match self {
            TakeError::Unknown => "BATON_INVALID",
            TakeError::Reused => "BATON_REUSED",
            TakeError::Expired => "STREAM_EXPIRED",
        }
    }
}

enum Slot<T> {
    Idle {
        value: T,
        seq: u64,
        last_used: Instant,
    },
    InUse {
        next_seq: u64,
    },
    Expired {
        at: Instant,
    },
}

/// Open streams by id. `T` is whatever the server keeps per stream.
pub struct StreamTable<T> {
    slots: HashMap<u64, Slot<T>>,
}

impl<T> Default for StreamTable<T> {
    fn default() -> Self {
        StreamTable {
            slots: HashMap::new(),
        }
    }
}

impl<T> StreamTable<T> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Streams held (idle or in use), not counting tombstones.
    pub fn len(&self) -> usize {
        self.slots
            .values()
            .filter(|s| !matches!(s, Slot::Expired { .. }))
            .count()
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

    /// Adds a new idle stream; returns its `(stream id, seq)` for the first baton. Never fails.
    pub fn insert(&mut self, value: T, now: Instant) -> (u64, u64) {
        let id = loop {
            let id: u64 = rand::random();
            if !self.slots.contains_key(&id) {
                break id;
            }
        };
        let seq: u64 = rand::random();
        self.slots.insert(
            id,
            Slot::Idle {
                value,
                seq,
                last_used: now,
            },
        );
        (id, seq)
    }

    /// Takes stream `id` for one request if `seq` is the expected one. Errors: unknown
    /// stream, reused baton (wrong seq or already in use), expired stream.
    pub fn take(&mut self, id: u64, seq: u64, _now: Instant) -> Result<T, TakeError> {
        match self.slots.get(&id) {
            None => return Err(TakeError::Unknown),
            Some(Slot::Expired { .. }) => return Err(TakeError::Expired),
            Some(Slot::InUse { .. }) => return Err(TakeError::Reused),
            Some(Slot::Idle { seq: expected, .. }) if *expected != seq => {
                return Err(TakeError::Reused)
            }
            Some(Slot::Idle { .. }) => {}
        }
        let next_seq = seq.wrapping_add(1);
        match self.slots.insert(id, Slot::InUse { next_seq }) {
            Some(Slot::Idle { value, .. }) => Ok(value),
            _ => unreachable!("checked above that the slot is idle"),
        }
    }

    /// Returns a taken stream after its request; returns the seq for the next baton. A stream
    /// that is not in use (a server bug) is re-added under a fresh seq. Never fails.
    pub fn put_back(&mut self, id: u64, value: T, now: Instant) -> u64 {
        let seq = match self.slots.get(&id) {
            Some(Slot::InUse { next_seq }) => *next_seq,
            _ => {
                debug_assert!(false, "put_back of stream {id} that is not in use");
                rand::random()
            }
        };
        self.slots.insert(
            id,
            Slot::Idle {
                value,
                seq,
                last_used: now,
            },
        );
        seq
    }

    /// Forgets stream `id` (closed); returns its value if it was idle.
    pub fn remove(&mut self, id: u64) -> Option<T> {
        match self.slots.remove(&id)? {
            Slot::Idle { value, .. } => Some(value),
            _ => None,
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
        due.into_iter()
            .filter_map(
                |id| match self.slots.insert(id, Slot::Expired { at: now }) {
                    Some(Slot::Idle { value, .. }) => Some((id, value)),
                    _ => None,
                },
            )
            .collect()
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
        let (id, seq) = table.insert("s", t0);
        assert_eq!(table.take(id, seq, t0), Ok("s"));
        assert_eq!(table.take(id, seq, t0), Err(TakeError::Reused), "in use");
        let next = table.put_back(id, "s", t0);
        assert_eq!(next, seq.wrapping_add(1));
        assert_eq!(table.take(id, seq, t0), Err(TakeError::Reused), "old baton");
        assert_eq!(table.take(id, next, t0), Ok("s"));
        assert_eq!(table.take(id ^ 1, next, t0), Err(TakeError::Unknown));
    }

    #[test]
    fn idle_streams_expire_and_leave_a_tombstone() {
        let t0 = Instant::now();
        let mut table = StreamTable::new();
        let (a, seq_a) = table.insert("a", t0);
        let (b, seq_b) = table.insert("b", t0);
        let b_val = table.take(b, seq_b, t0).unwrap();
        let seq_b = table.put_back(b, b_val, t0 + Duration::from_secs(5));
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
        let (id, seq) = table.insert(1, t0);
        let v = table.take(id, seq, t0).unwrap();
        assert!(table
            .expire(t0 + Duration::from_secs(3600), IDLE)
            .is_empty());
        let next = table.put_back(id, v, t0 + Duration::from_secs(3600));
        assert_eq!(table.take(id, next, t0 + Duration::from_secs(3601)), Ok(1));
    }

    #[test]
    fn remove_closes() {
        let t0 = Instant::now();
        let mut table = StreamTable::new();
        let (id, seq) = table.insert(1, t0);
        assert_eq!(table.remove(id), Some(1));
        assert!(table.is_empty());
        assert_eq!(table.take(id, seq, t0), Err(TakeError::Unknown));
    }
}
