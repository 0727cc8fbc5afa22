//! Tenant choice: which tenant index (0 = the hottest) the next request goes to, drawn
//! uniformly or from a Zipf(s) law over `n` tenants, as `bench/wrk/*.lua` draw it: rank k
//! has weight k^-s, sampled by inverting the cumulative distribution with a binary search.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rand::Rng;

/// Why a chooser cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChooserError {
    /// There must be at least one tenant to choose from.
    #[error("the tenant count must be at least 1")]
    NoTenants,
    /// The exponent must be a finite number above zero.
    #[error("the Zipf exponent must be finite and above 0, got {0}")]
    BadExponent(f64),
}

/// A distribution over tenant indices `0..n`.
#[derive(Debug, Clone)]
pub enum Chooser {
    /// Every index equally likely.
    Uniform {
        /// Number of tenants.
        n: u64,
    },
    /// Indices 0, 1, …, n−1, 0, … in turn, shared by every clone (so a run with
    /// `max_requests = n` reaches every tenant exactly once).
    Sequential {
        /// Number of tenants.
        n: u64,
        /// The next draw, shared by every clone.
        next: Arc<AtomicU64>,
    },
    /// Index i (rank i+1) has probability (i+1)^-s / H(n, s).
    Zipf {
        /// Number of tenants.
        n: u64,
        /// The exponent.
        s: f64,
        /// Cumulative probabilities, `cdf[i]` = P(index <= i); the last is exactly 1.
        cdf: Arc<Vec<f64>>,
    },
}

impl Chooser {
    /// Uniform over `n` tenants; errors if `n` is 0.
    pub fn uniform(n: u64) -> Result<Self, ChooserError> {
        if n == 0 {
            return Err(ChooserError::NoTenants);
        }
        Ok(Chooser::Uniform { n })
    }

    /// Every tenant in turn (0, 1, …, n−1, 0, …); errors if `n` is 0.
    pub fn sequential(n: u64) -> Result<Self, ChooserError> {
        if n == 0 {
            return Err(ChooserError::NoTenants);
        }
        Ok(Chooser::Sequential {
            n,
            next: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Zipf(s) over `n` tenants (an O(n) table); errors if `n` is 0 or `s` is not above 0.
    pub fn zipf(n: u64, s: f64) -> Result<Self, ChooserError> {
        if n == 0 {
            return Err(ChooserError::NoTenants);
        }
        if !(s.is_finite() && s > 0.0) {
            return Err(ChooserError::BadExponent(s));
        }
        let mut cdf = Vec::with_capacity(n as usize);
        let mut sum = 0.0;
        for k in 1..=n {
            sum += (k as f64).powf(-s);
            cdf.push(sum);
        }
        for c in &mut cdf {
            *c /= sum;
        }
        *cdf.last_mut().expect("n >= 1") = 1.0;
        Ok(Chooser::Zipf {
            n,
            s,
            cdf: Arc::new(cdf),
        })
    }

    /// Number of tenants.
    pub fn n(&self) -> u64 {
        match self {
            Chooser::Uniform { n } | Chooser::Sequential { n, .. } | Chooser::Zipf { n, .. } => *n,
        }
    }

    /// Draws one tenant index in `0..n` (0 = the hottest).
    pub fn pick(&self, rng: &mut impl Rng) -> u64 {
        match self {
            Chooser::Uniform { n } => rng.gen_range(0..*n),
            Chooser::Sequential { n, next } => next.fetch_add(1, Ordering::Relaxed) % n,
            Chooser::Zipf { cdf, .. } => {
                let u: f64 = rng.gen();
                // The first index whose cumulative probability reaches u.
                cdf.partition_point(|&c| c < u) as u64
            }
        }
    }

    /// The probability of index `i` (0 outside `0..n`).
    pub fn probability(&self, i: u64) -> f64 {
        match self {
            Chooser::Uniform { n } | Chooser::Sequential { n, .. } if i < *n => 1.0 / *n as f64,
            Chooser::Zipf { n, cdf, .. } if i < *n => {
                let i = i as usize;
                cdf[i] - if i == 0 { 0.0 } else { cdf[i - 1] }
            }
            _ => 0.0,
        }
    }

    /// "zipf(s=1.1) over 1000" / "uniform over 1000", for reports.
    pub fn describe(&self) -> String {
        match self {
            Chooser::Uniform { n } => format!("uniform over {n}"),
            Chooser::Sequential { n, .. } => format!("each of {n} in turn"),
            Chooser::Zipf { n, s, .. } => format!("zipf(s={s}) over {n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn sequential_visits_every_tenant_once_per_round_across_clones() {
        let c = Chooser::sequential(5).unwrap();
        let other = c.clone();
        let mut rng = StdRng::seed_from_u64(1);
        let mut seen: Vec<u64> = (0..5)
            .map(|i| if i % 2 == 0 { &c } else { &other }.pick(&mut rng))
            .collect();
        seen.sort();
        assert_eq!(seen, vec![0, 1, 2, 3, 4]);
        assert_eq!(c.pick(&mut rng), 0, "the sixth draw starts the next round");
        assert!(Chooser::sequential(0).is_err());
        assert_eq!(c.probability(4), 0.2);
    }

    /// Pearson's chi-square of `draws` samples against `probability`, over the first `bins`
    /// indices and one bin for the rest.
    fn chi_square(c: &Chooser, draws: u64, bins: usize, seed: u64) -> (f64, usize) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut counts = vec![0u64; bins + 1];
        for _ in 0..draws {
            let i = c.pick(&mut rng);
            assert!(i < c.n(), "{i} out of range");
            counts[(i as usize).min(bins)] += 1;
        }
        let mut p: Vec<f64> = (0..bins as u64).map(|i| c.probability(i)).collect();
        p.push(1.0 - p.iter().sum::<f64>());
        let chi = counts
            .iter()
            .zip(&p)
            .filter(|(_, &p)| p > 1e-12)
            .map(|(&o, &p)| {
                let e = p * draws as f64;
                (o as f64 - e).powi(2) / e
            })
            .sum();
        (chi, p.iter().filter(|&&p| p > 1e-12).count() - 1)
    }

    #[test]
    fn zipf_draws_follow_the_law() {
        // 20 degrees of freedom: the 99.9th percentile of chi-square(20) is 45.3.
        let c = Chooser::zipf(1000, 1.1).unwrap();
        let (chi, df) = chi_square(&c, 200_000, 20, 7);
        assert_eq!(df, 20);
        assert!(chi < 45.3, "chi-square {chi} over {df} degrees of freedom");
        // Rank 1 of Zipf(1.1) over 1000 tenants takes about 17% of the requests.
        assert!(
            (c.probability(0) - 0.17).abs() < 0.01,
            "{}",
            c.probability(0)
        );
        assert!(c.probability(0) > c.probability(1));
        let total: f64 = (0..1000).map(|i| c.probability(i)).sum();
        assert!((total - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_wrong_law_is_rejected_by_the_same_check() {
        // The check can fail: draws from Zipf(1.1) against the probabilities of Zipf(0.9).
        let drawn = Chooser::zipf(1000, 1.1).unwrap();
        let claimed = Chooser::zipf(1000, 0.9).unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        let draws = 200_000u64;
        let mut rank1 = 0u64;
        for _ in 0..draws {
            rank1 += u64::from(drawn.pick(&mut rng) == 0);
        }
        let e = claimed.probability(0) * draws as f64;
        let chi_rank1 = (rank1 as f64 - e).powi(2) / e;
        assert!(chi_rank1 > 45.3, "{chi_rank1}");
    }

    #[test]
    fn uniform_draws_are_uniform() {
        let c = Chooser::uniform(30).unwrap();
        let (chi, df) = chi_square(&c, 90_000, 30, 11);
        assert_eq!(df, 29);
        // The 99.9th percentile of chi-square(29) is 58.3.
        assert!(chi < 58.3, "chi-square {chi}");
        assert_eq!(c.probability(30), 0.0);
    }

    #[test]
    fn one_tenant_always_picks_it_and_bad_inputs_are_errors() {
        let mut rng = StdRng::seed_from_u64(1);
        let c = Chooser::zipf(1, 1.1).unwrap();
        assert!((0..100).all(|_| c.pick(&mut rng) == 0));
        assert_eq!(Chooser::zipf(0, 1.1).unwrap_err(), ChooserError::NoTenants);
        assert_eq!(Chooser::uniform(0).unwrap_err(), ChooserError::NoTenants);
        assert!(matches!(
            Chooser::zipf(5, 0.0),
            Err(ChooserError::BadExponent(_))
        ));
        assert!(Chooser::zipf(5, f64::NAN).is_err());
    }
}
