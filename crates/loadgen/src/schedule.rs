//! The open loop's schedule, pure: request i is intended at i/R from the start; connection k
//! of N sends requests k, k+N, k+2N, …; the run sends every request intended before the
//! deadline (capped by a request budget). A request sent more than [`LATE_AFTER`] past its
//! intended time counts as late, and its latency still runs from the intended time.

use std::time::Duration;

/// Slack before a send counts as late: the timer wakes up to a millisecond after its
/// deadline, which is not the server's doing.
pub const LATE_AFTER: Duration = Duration::from_millis(2);

/// The intended send times of one open-loop run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpenSchedule {
    rate: f64,
    connections: u64,
    total: u64,
}

impl OpenSchedule {
    /// `rate` requests per second (above 0) over `connections` (at least 1) for `duration`,
    /// at most `max_requests`.
    pub fn new(
        rate: f64,
        connections: usize,
        duration: Duration,
        max_requests: Option<u64>,
    ) -> Self {
        let due = (rate * duration.as_secs_f64()).ceil().max(0.0) as u64;
        OpenSchedule {
            rate,
            connections: connections.max(1) as u64,
            total: max_requests.map_or(due, |m| m.min(due)),
        }
    }

    /// Requests the run sends: those intended before the deadline, within the budget.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// When request `index` should be sent, from the start.
    pub fn intended(&self, index: u64) -> Duration {
        Duration::from_secs_f64(index as f64 / self.rate)
    }

    /// The requests connection `conn` sends, in order.
    pub fn indices(&self, conn: usize) -> impl Iterator<Item = u64> {
        (conn as u64..self.total).step_by(self.connections as usize)
    }

    /// Connection `conn`'s requests, as a cursor.
    pub fn slots(&self, conn: usize) -> Slots {
        Slots {
            total: self.total,
            next: conn as u64,
            step: self.connections,
        }
    }

    /// Whether a send at `actual` (from the start) is late for `intended`.
    pub fn is_late(intended: Duration, actual: Duration) -> bool {
        actual > intended + LATE_AFTER
    }
}

/// One connection's requests k, k+N, … below the total, taken one at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slots {
    total: u64,
    next: u64,
    step: u64,
}

impl Slots {
    /// The next request index, if any is left.
    pub fn take(&mut self) -> Option<u64> {
        let i = self.next;
        (i < self.total).then(|| {
            self.next += self.step;
            i
        })
    }

    /// Requests not taken yet.
    pub fn left(&self) -> u64 {
        self.total.saturating_sub(self.next).div_ceil(self.step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_before_the_deadline_once() {
        let s = OpenSchedule::new(100.0, 3, Duration::from_secs(1), None);
        assert_eq!(s.total(), 100);
        let mut all: Vec<u64> = (0..3).flat_map(|k| s.indices(k)).collect();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        let mut slots = s.slots(2);
        assert_eq!(slots.left(), 33);
        assert_eq!(
            (slots.take(), slots.take(), slots.left()),
            (Some(2), Some(5), 31)
        );
        assert_eq!(s.intended(50), Duration::from_millis(500));
        assert!(s.intended(99) < Duration::from_secs(1));
        assert_eq!(
            OpenSchedule::new(10.0, 1, Duration::from_millis(250), None).total(),
            3
        );
        assert_eq!(
            OpenSchedule::new(100.0, 1, Duration::from_secs(1), Some(7)).total(),
            7
        );
    }

    #[test]
    fn late_means_past_the_slack() {
        let t = Duration::from_millis(10);
        assert!(!OpenSchedule::is_late(t, t + Duration::from_millis(1)));
        assert!(OpenSchedule::is_late(t, t + Duration::from_millis(3)));
    }
}
