//! The cold fraction (`capacity::cold`) against a discrete-event simulation of the pool's open
//! tenants (an LRU of `open_cap` with an idle TTL, Poisson arrivals, Zipf tenant choice), its
//! limits, and its monotonicity.

use std::collections::BTreeMap;

use capacity::cold::{cold_fraction, estimate};
use proptest::prelude::*;

/// Absolute difference allowed between Che's approximation and the simulation (docs/CAPACITY.md
/// states it): Che's error for an LRU under Zipf plus the simulation's sampling noise.
const TOLERANCE: f64 = 0.005;

/// SplitMix64: a small seeded generator, so the simulation is the same on every run.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }
}

/// One simulated machine: which tenants are open, in least-recently-used order.
struct Case {
    tenants: usize,
    skew: f64,
    open_cap: usize,
    idle_ttl: f64,
    rps_per_tenant: f64,
}

impl Case {
    fn total_rps(&self) -> f64 {
        self.rps_per_tenant * self.tenants as f64
    }

    fn model(&self) -> f64 {
        cold_fraction(
            self.tenants as f64,
            self.total_rps(),
            self.skew,
            self.open_cap as f64,
            self.idle_ttl,
        )
    }

    /// The share of `requests` (after `warmup` more) that found their tenant closed.
    fn simulate(&self, requests: usize, warmup: usize, seed: u64) -> f64 {
        let mut rng = Rng(seed);
        let mut cumulative = Vec::with_capacity(self.tenants);
        let mut total = 0.0;
        for i in 1..=self.tenants {
            total += (i as f64).powf(-self.skew);
            cumulative.push(total);
        }
        let mut last_used = vec![f64::NEG_INFINITY; self.tenants];
        let mut open_key: Vec<Option<u64>> = vec![None; self.tenants];
        let mut lru: BTreeMap<u64, usize> = BTreeMap::new();
        let (mut now, mut cold) = (0.0, 0);
        for seq in 0..(warmup + requests) as u64 {
            now += -rng.unit().ln() / self.total_rps();
            // Idle close: the least recently used tenants idle longer than the TTL.
            while let Some((&key, &tenant)) = lru.first_key_value() {
                if now - last_used[tenant] <= self.idle_ttl {
                    break;
                }
                lru.remove(&key);
                open_key[tenant] = None;
            }
            let pick = rng.unit() * total;
            let tenant = cumulative
                .partition_point(|&c| c < pick)
                .min(self.tenants - 1);
            match open_key[tenant] {
                Some(key) => {
                    lru.remove(&key);
                }
                None => {
                    if seq >= warmup as u64 {
                        cold += 1;
                    }
                    if lru.len() >= self.open_cap {
                        let (_, victim) = lru.pop_first().expect("cap is at least 1");
                        open_key[victim] = None;
                    }
                }
            }
            lru.insert(seq, tenant);
            open_key[tenant] = Some(seq);
            last_used[tenant] = now;
        }
        cold as f64 / requests as f64
    }
}

#[test]
fn che_matches_an_lru_ttl_simulation() {
    let cases = [
        // LRU-bound: the cap evicts long before the TTL.
        (1_000, 0.8, 100, f64::INFINITY, 1.0),
        (2_000, 1.2, 50, f64::INFINITY, 1.0),
        (1_000, 0.0, 250, f64::INFINITY, 1.0),
        // TTL-bound: every tenant fits, idle ones close.
        (500, 0.0, 1_000, 2.0, 0.5),
        (500, 1.0, 1_000, 5.0, 0.1),
        // Both: the cap and the TTL are of the same order.
        (2_000, 1.0, 200, 5.0, 0.2),
        (1_000, 0.5, 300, 1.0, 1.0),
    ];
    let mut report = Vec::new();
    for (seed, (tenants, skew, open_cap, idle_ttl, rps_per_tenant)) in cases.into_iter().enumerate()
    {
        let case = Case {
            tenants,
            skew,
            open_cap,
            idle_ttl,
            rps_per_tenant,
        };
        let simulated = case.simulate(200_000, 50_000, seed as u64 + 1);
        let model = case.model();
        report.push(format!(
            "n={tenants} skew={skew} cap={open_cap} ttl={idle_ttl}: model {model:.4}, \
             simulated {simulated:.4}"
        ));
        assert!(
            (model - simulated).abs() <= TOLERANCE,
            "{}",
            report.join("\n")
        );
    }
    eprintln!("{}", report.join("\n"));
}

#[test]
fn every_tenant_open_for_a_long_ttl_is_almost_never_cold() {
    let cold = cold_fraction(1_000.0, 1_000.0, 0.8, 1_000.0, 1e6);
    assert!(cold < 1e-6, "{cold}");
    let cold = cold_fraction(1_000_000.0, 1e5, 1.0, 2e6, 1e9);
    assert!(cold < 1e-3, "{cold}");
}

#[test]
fn a_zero_ttl_makes_every_request_cold() {
    for skew in [0.0, 1.0, 2.0] {
        let cold = cold_fraction(1_000.0, 1_000.0, skew, 1_000.0, 0.0);
        assert!((cold - 1.0).abs() < 1e-12, "{cold}");
        let tiny = cold_fraction(1_000.0, 1_000.0, skew, 1_000.0, 1e-9);
        assert!(tiny > 0.999_99, "{tiny}");
    }
}

#[test]
fn no_traffic_or_no_cap_is_all_cold_and_the_ttl_bounds_the_open_time() {
    assert_eq!(cold_fraction(100.0, 0.0, 1.0, 10.0, 10.0), 1.0);
    assert_eq!(cold_fraction(100.0, 10.0, 1.0, 0.0, 10.0), 1.0);
    let e = estimate(1_000.0, 100.0, 0.0, 2_000.0, 10.0);
    assert!(e.characteristic_seconds.is_infinite());
    assert_eq!(e.open_seconds, 10.0);
    let e = estimate(1_000_000.0, 1e6, 0.0, 1_024.0, 10.0);
    assert!(e.characteristic_seconds < 10.0);
    assert_eq!(e.open_seconds, e.characteristic_seconds);
}

#[test]
fn with_an_idle_ttl_more_skew_can_raise_the_cold_fraction() {
    // Every tenant fits and each sends 100 requests per TTL: uniform access is all warm, but
    // Zipf(2) leaves the tail so rarely used that its requests find their tenant closed.
    let uniform = cold_fraction(1_000.0, 10_000.0, 0.0, 2_000.0, 10.0);
    let skewed = cold_fraction(1_000.0, 10_000.0, 2.0, 2_000.0, 10.0);
    assert!(uniform < 1e-40 && skewed > 1e-3, "{uniform} vs {skewed}");
}

proptest! {
    #[test]
    fn a_larger_open_cap_never_raises_the_cold_fraction(
        tenants in 1.0f64..1e6,
        rps_per_tenant in 1e-4f64..10.0,
        skew in 0.0f64..2.5,
        cap in 1.0f64..1e6,
        more in 1.0f64..10.0,
        ttl in 0.0f64..1e5,
    ) {
        let total = tenants * rps_per_tenant;
        let before = cold_fraction(tenants, total, skew, cap, ttl);
        let after = cold_fraction(tenants, total, skew, cap * more, ttl);
        prop_assert!(after <= before + 1e-9, "{before} -> {after}");
    }

    #[test]
    fn more_skew_never_raises_the_cold_fraction_when_the_cap_binds(
        tenants in 2.0f64..1e6,
        rps_per_tenant in 1e-4f64..10.0,
        skew in 0.0f64..2.5,
        more in 0.0f64..1.0,
        cap_share in 0.001f64..0.99,
    ) {
        // Only while the cap (not the TTL) closes tenants: with an idle TTL, more skew starves
        // the tail and can raise the cold fraction (docs/CAPACITY.md).
        let (total, cap) = (tenants * rps_per_tenant, (tenants * cap_share).max(1.0));
        let before = cold_fraction(tenants, total, skew, cap, f64::INFINITY);
        let after = cold_fraction(tenants, total, skew + more, cap, f64::INFINITY);
        prop_assert!(after <= before + 1e-9, "{before} -> {after}");
    }

    #[test]
    fn more_tenants_at_the_same_rate_each_never_lower_the_cold_requests(
        tenants in 1.0f64..1e6,
        grow in 1.0f64..4.0,
        rps_per_tenant in 1e-4f64..10.0,
        skew in 0.0f64..2.5,
        cap in 1.0f64..1e5,
        ttl in 0.0f64..1e5,
    ) {
        // Cold requests per second (tenants x rate x cold fraction) rise with the tenant count:
        // what lets the CPU limits bisect on it.
        let cold_rps = |n: f64| n * rps_per_tenant * cold_fraction(n, n * rps_per_tenant, skew, cap, ttl);
        let (before, after) = (cold_rps(tenants), cold_rps(tenants * grow));
        prop_assert!(after >= before * (1.0 - 1e-9), "{before} -> {after}");
    }
}
