//! The cold fraction: the share of requests that find their tenant closed, so pay an open and
//! a close on top of the warm cost. Tenants are picked Zipf(skew) over a machine's tenants; the
//! server keeps at most `open_cap` of them open (LRU eviction) and closes one idle for the idle
//! TTL. Che's approximation of an LRU cache: every open tenant stays open for the same
//! characteristic time T_c after its last request, where T_c fills the cap,
//! Σ (1 − e^{−λ_i T_c}) = open_cap; the idle TTL cuts it to T = min(T_c, ttl); a request is cold
//! when its tenant had no request in the last T: cold fraction = Σ p_i e^{−λ_i T}.
//!
//! Fast for any tenant count: the first [`EXACT_RANKS`] ranks are summed one by one, the rest
//! is integrated over the rank (the sum over ranks a..b is taken as the integral from a − ½ to
//! b + ½) with 4-point Gauss–Legendre on buckets of ranks growing by [`BUCKET_RATIO`]: about
//! 200 terms for 1,000,000 tenants. A test bounds the difference to the exact sum
//! (`bucketed_sum_matches_the_exact_rank_by_rank_sum`).

use serde::Serialize;

/// Ranks summed one by one before the tail is integrated.
const EXACT_RANKS: usize = 32;
/// Ratio of a tail bucket's last rank to its first.
const BUCKET_RATIO: f64 = 1.25;
/// Gauss–Legendre nodes and weights on [−1, 1], 4 points (exact for polynomials of degree 7).
const GAUSS_LEGENDRE: [(f64, f64); 4] = [
    (-0.861_136_311_594_052_6, 0.347_854_845_137_453_85),
    (-0.339_981_043_584_856_3, 0.652_145_154_862_546_2),
    (0.339_981_043_584_856_3, 0.652_145_154_862_546_2),
    (0.861_136_311_594_052_6, 0.347_854_845_137_453_85),
];
/// Newton steps allowed when solving for T_c (it converges in tens; this is a safety bound).
const MAX_NEWTON_STEPS: usize = 500;

/// Che's approximation for one machine: the times it uses and the cold fraction they give.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ColdEstimate {
    /// T_c in seconds: how long an LRU of `open_cap` tenants keeps one after its last request;
    /// infinite when every tenant fits (`open_cap >= tenants`).
    pub characteristic_seconds: f64,
    /// min(T_c, idle TTL): how long a tenant actually stays open after its last request.
    pub open_seconds: f64,
    /// Share of requests whose tenant is closed when they arrive, in [0, 1].
    pub cold_fraction: f64,
}

/// The fraction of requests that find their tenant closed: Zipf(`skew`) popularity over
/// `tenants`, `total_requests_per_second` over all of them, an LRU of `open_cap` open tenants
/// and an idle TTL of `idle_ttl_seconds` (see the module doc). Never fails: tenants below 1
/// count as 1, a negative skew as 0, and no traffic, no open cap or no TTL give 1.
pub fn cold_fraction(
    tenants: f64,
    total_requests_per_second: f64,
    skew: f64,
    open_cap: f64,
    idle_ttl_seconds: f64,
) -> f64 {
    estimate(
        tenants,
        total_requests_per_second,
        skew,
        open_cap,
        idle_ttl_seconds,
    )
    .cold_fraction
}

/// [`cold_fraction`] with the characteristic and open times it used; the same inputs and
/// contract.
pub fn estimate(
    tenants: f64,
    total_requests_per_second: f64,
    skew: f64,
    open_cap: f64,
    idle_ttl_seconds: f64,
) -> ColdEstimate {
    let ranks = Ranks::zipf(tenants, skew);
    ranks.estimate(total_requests_per_second, open_cap, idle_ttl_seconds)
}

/// Tenant popularity as weighted terms: Σ_j weight_j f(p_j) stands for Σ_i f(p_i) over ranks.
pub(crate) struct Ranks {
    /// (weight: how many ranks the term stands for, popularity p of one of them); Σ w p = 1.
    terms: Vec<(f64, f64)>,
    /// The tenant count (Σ w).
    count: f64,
}

impl Ranks {
    /// Zipf(`skew`) over `tenants` ranks, exact for the first ranks, integrated beyond.
    pub(crate) fn zipf(tenants: f64, skew: f64) -> Ranks {
        let n = if tenants.is_nan() {
            1.0
        } else {
            tenants.max(1.0)
        };
        let s = if skew.is_nan() { 0.0 } else { skew.max(0.0) };
        let mut terms = Vec::new();
        // Ranks 1..=EXACT_RANKS one by one; a fractional tenant count weighs its last rank.
        for i in 1..=EXACT_RANKS.min(n.ceil() as usize) {
            let weight = (n - (i - 1) as f64).min(1.0);
            terms.push((weight, (i as f64).powf(-s)));
        }
        let (from, to) = (EXACT_RANKS as f64 + 0.5, n + 0.5);
        if to > from {
            let span = (to / from).ln();
            let buckets = (span / BUCKET_RATIO.ln()).ceil().max(1.0);
            let width = span / buckets;
            for b in 0..buckets as usize {
                let middle = from.ln() + width * (b as f64 + 0.5);
                for (node, w) in GAUSS_LEGENDRE {
                    let u = middle + width / 2.0 * node;
                    // x = e^u, dx = x du: weight = (width / 2) x w.
                    terms.push((width / 2.0 * w * u.exp(), (-s * u).exp()));
                }
            }
        }
        let total: f64 = terms.iter().map(|(w, q)| w * q).sum();
        for term in &mut terms {
            term.1 /= total;
        }
        Ranks { terms, count: n }
    }

    /// Che's approximation over these ranks (see [`estimate`]).
    pub(crate) fn estimate(&self, total_rps: f64, open_cap: f64, idle_ttl: f64) -> ColdEstimate {
        let closed = ColdEstimate {
            characteristic_seconds: 0.0,
            open_seconds: 0.0,
            cold_fraction: 1.0,
        };
        if total_rps.is_nan() || total_rps <= 0.0 || open_cap.is_nan() || open_cap <= 0.0 {
            return closed;
        }
        let characteristic = if open_cap >= self.count {
            f64::INFINITY
        } else {
            self.characteristic_time(total_rps, open_cap)
        };
        let open = if idle_ttl.is_nan() {
            0.0
        } else {
            characteristic.min(idle_ttl.max(0.0))
        };
        let cold: f64 = self
            .terms
            .iter()
            .map(|&(w, p)| w * p * (-total_rps * p * open).exp())
            .sum();
        ColdEstimate {
            characteristic_seconds: characteristic,
            open_seconds: open,
            cold_fraction: cold.clamp(0.0, 1.0),
        }
    }

    /// T_c solving Σ w (1 − e^{−λ T}) = cap, for cap below the tenant count. The left side is
    /// concave and increasing in T, so Newton's method from T = 0 stays below the root and
    /// climbs to it monotonically.
    fn characteristic_time(&self, total_rps: f64, cap: f64) -> f64 {
        let mut t = 0.0_f64;
        for _ in 0..MAX_NEWTON_STEPS {
            let (mut open, mut slope) = (0.0, 0.0);
            for &(w, p) in &self.terms {
                let rate = total_rps * p;
                // e^{-rate t} - 1, precise when rate t is tiny.
                let closed_minus_one = (-rate * t).exp_m1();
                open -= w * closed_minus_one;
                slope += w * rate * (1.0 + closed_minus_one);
            }
            if slope <= 0.0 || !slope.is_finite() {
                break;
            }
            let step = (cap - open) / slope;
            t += step;
            if step <= t * 1e-13 {
                break;
            }
        }
        t
    }

    /// The same ranks summed one by one (tests only: the reference for the bucketed sum).
    #[cfg(test)]
    pub(crate) fn exact(tenants: usize, skew: f64) -> Ranks {
        let mut terms: Vec<(f64, f64)> = (1..=tenants)
            .map(|i| (1.0, (i as f64).powf(-skew)))
            .collect();
        let total: f64 = terms.iter().map(|(_, q)| q).sum();
        terms.iter_mut().for_each(|t| t.1 /= total);
        Ranks {
            terms,
            count: tenants as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucketed_sum_matches_the_exact_rank_by_rank_sum() {
        let mut worst: f64 = 0.0;
        for n in [10usize, 33, 100, 1_000, 10_000, 100_000] {
            for skew in [0.0, 0.5, 0.8, 1.0, 1.2, 2.0, 3.0] {
                let (bucketed, exact) = (Ranks::zipf(n as f64, skew), Ranks::exact(n, skew));
                for cap_share in [0.01, 0.1, 0.5, 0.9] {
                    for (rps_per_tenant, ttl) in
                        [(10.0, 1.0), (1.0, 10.0), (0.1, 10.0), (0.01, 1e9)]
                    {
                        let (rps, cap) = (rps_per_tenant * n as f64, cap_share * n as f64);
                        let a = bucketed.estimate(rps, cap, ttl).cold_fraction;
                        let b = exact.estimate(rps, cap, ttl).cold_fraction;
                        worst = worst.max((a - b).abs());
                    }
                }
            }
        }
        // The bound docs/CAPACITY.md states.
        assert!(worst < 1e-5, "worst difference {worst}");
    }

    #[test]
    fn characteristic_time_fills_the_cap() {
        for skew in [0.0, 0.7, 1.0, 1.5, 3.0] {
            for cap in [1.0, 100.0, 500_000.0, 999_999.0] {
                let ranks = Ranks::zipf(1e6, skew);
                let t = ranks.characteristic_time(1e5, cap);
                let open: f64 = ranks
                    .terms
                    .iter()
                    .map(|&(w, p)| w * -(-1e5 * p * t).exp_m1())
                    .sum();
                assert!(
                    (open - cap).abs() <= 1e-6 * cap,
                    "skew {skew}, cap {cap}: {open}"
                );
            }
        }
    }

    #[test]
    fn uniform_lru_misses_one_minus_cap_over_tenants() {
        // Che is exact for uniform popularity: a cap of C of N tenants hits C / N.
        let cold = cold_fraction(1_000.0, 1_000.0, 0.0, 250.0, f64::INFINITY);
        assert!((cold - 0.75).abs() < 1e-9, "{cold}");
    }

    #[test]
    fn fractional_tenant_counts_are_continuous() {
        let at = |n: f64| cold_fraction(n, n * 0.5, 1.0, 20.0, 10.0);
        for n in [20.0, 31.999, 32.0, 32.001, 100.0] {
            assert!((at(n) - at(n + 1e-6)).abs() < 1e-5, "jump at {n}");
        }
    }
}
