//! Latency histograms: HDR (microseconds, 1 µs to 60 s, 3 significant digits), one per
//! connection while running, merged at the end; quantiles and a serialisable summary.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The largest latency kept exactly (60 s); longer ones are recorded as 60 s.
pub const MAX_LATENCY: Duration = Duration::from_secs(60);

/// A mergeable latency histogram.
#[derive(Debug, Clone)]
pub struct Latency {
    h: Histogram<u64>,
}

/// Quantiles of a [`Latency`], in microseconds (all 0 when empty).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Values recorded.
    pub count: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest value.
    pub max_us: u64,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Self {
        let h = Histogram::new_with_bounds(1, MAX_LATENCY.as_micros() as u64, 3)
            .expect("constant bounds are valid");
        Latency { h }
    }

    /// Records one latency (below 1 µs counts as 1 µs, above 60 s as 60 s).
    pub fn record(&mut self, d: Duration) {
        let us = (d.as_micros() as u64).clamp(1, MAX_LATENCY.as_micros() as u64);
        self.h.saturating_record(us);
    }

    /// Adds every value of `other` to this one.
    pub fn merge(&mut self, other: &Latency) {
        // Both have the same bounds, so adding cannot go out of range.
        self.h
            .add(&other.h)
            .expect("histograms with equal bounds merge");
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.h.len()
    }

    /// The latency at quantile `q` in 0..=1 (zero when empty).
    pub fn quantile(&self, q: f64) -> Duration {
        Duration::from_micros(self.h.value_at_quantile(q.clamp(0.0, 1.0)))
    }

    /// The largest latency recorded (zero when empty).
    pub fn max(&self) -> Duration {
        Duration::from_micros(self.h.max())
    }

    /// The mean latency (zero when empty).
    pub fn mean(&self) -> Duration {
        Duration::from_secs_f64(self.h.mean() / 1e6)
    }

    /// Count, mean and the usual quantiles.
    pub fn summary(&self) -> LatencySummary {
        if self.count() == 0 {
            return LatencySummary::default();
        }
        let q = |q: f64| self.h.value_at_quantile(q);
        LatencySummary {
            count: self.count(),
            mean_us: self.h.mean(),
            p50_us: q(0.5),
            p90_us: q(0.9),
            p99_us: q(0.99),
            p999_us: q(0.999),
            max_us: self.h.max(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn merging_equals_recording_everything_in_one() {
        let mut a = Latency::new();
        let mut b = Latency::new();
        let mut all = Latency::new();
        for i in 1..=1000u64 {
            let d = Duration::from_micros(i * 37);
            if i % 3 == 0 { &mut a } else { &mut b }.record(d);
            all.record(d);
        }
        b.record(ms(5000));
        all.record(ms(5000));
        a.merge(&b);
        assert_eq!(a.count(), 1001);
        assert_eq!(a.summary(), all.summary());
        // Merged quantiles are the union's, not an average of the parts'.
        assert_eq!(a.max(), all.max());
        assert!(a.max() >= ms(4995) && a.max() <= ms(5005), "{:?}", a.max());
    }

    #[test]
    fn quantiles_are_within_three_digits() {
        let mut h = Latency::new();
        for i in 1..=10_000u64 {
            h.record(Duration::from_micros(i));
        }
        let p50 = h.quantile(0.5).as_micros() as f64;
        assert!((p50 - 5000.0).abs() / 5000.0 < 0.001, "{p50}");
        let p99 = h.summary().p99_us as f64;
        assert!((p99 - 9900.0).abs() / 9900.0 < 0.001, "{p99}");
        assert!((h.mean().as_micros() as f64 - 5000.5).abs() < 10.0);
    }

    #[test]
    fn out_of_range_values_are_clamped_and_empty_is_zero() {
        let mut h = Latency::new();
        assert_eq!(h.summary(), LatencySummary::default());
        assert_eq!(h.quantile(0.99), Duration::ZERO);
        h.record(Duration::ZERO);
        h.record(Duration::from_secs(3600));
        assert_eq!(h.count(), 2);
        assert_eq!(h.quantile(0.0), Duration::from_micros(1));
        assert!(h.max() >= Duration::from_secs(59), "{:?}", h.max());
    }
}
