//! Money: cost per tenant at the planned tenant count, gross margin at a price, the price that
//! reaches a target margin, and how many machines N tenants need. Infrastructure cost only.

use serde::Serialize;

use crate::limits::Capacity;
use crate::machine::MachineProfile;
use crate::workload::WorkloadProfile;

/// The money side of one machine under one workload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Economics {
    /// Price of the machine per month, USD.
    pub monthly_cost_usd: f64,
    /// Machine price divided by the planned tenants; None when the machine holds no tenant.
    pub cost_per_tenant_usd: Option<f64>,
    /// The workload's price per tenant per month, USD.
    pub price_usd_per_tenant_month: f64,
    /// `(price - cost) / price`; None when the price is 0 or the cost undefined.
    pub gross_margin: Option<f64>,
    /// The margin asked for by the caller.
    pub target_margin: f64,
    /// The price per tenant per month that reaches `target_margin`.
    pub price_for_target_margin_usd: Option<f64>,
}

/// Cost, margin and target price for `capacity` (computed from `machine` and `workload`).
pub fn economics(
    machine: &MachineProfile,
    workload: &WorkloadProfile,
    capacity: &Capacity,
    target_margin: f64,
) -> Economics {
    let cost = cost_per_user(machine.price_usd_per_month, capacity.supported_tenants);
    let price = workload.price_usd_per_tenant_month;
    Economics {
        monthly_cost_usd: machine.price_usd_per_month,
        cost_per_tenant_usd: cost,
        price_usd_per_tenant_month: price,
        gross_margin: cost.and_then(|c| gross_margin(price, c)),
        target_margin,
        price_for_target_margin_usd: cost.and_then(|c| price_for_margin(c, target_margin)),
    }
}

/// Monthly cost divided by users; None for zero users.
pub fn cost_per_user(monthly_cost_usd: f64, users: u64) -> Option<f64> {
    (users > 0).then(|| monthly_cost_usd / users as f64)
}

/// Gross margin `(price - cost) / price`; None when the price is not positive.
pub fn gross_margin(price_usd: f64, cost_usd: f64) -> Option<f64> {
    (price_usd > 0.0).then(|| (price_usd - cost_usd) / price_usd)
}

/// Price that gives `target` margin at `cost`: `cost / (1 - target)`; None unless
/// `0 <= target < 1`.
pub fn price_for_margin(cost_usd: f64, target: f64) -> Option<f64> {
    (0.0..1.0)
        .contains(&target)
        .then(|| cost_usd / (1.0 - target))
}

/// Machines needed for `users` tenants at `per_machine` tenants each (at least one); None when
/// a machine holds no tenant.
pub fn machines_for(users: u64, per_machine: u64) -> Option<u64> {
    (per_machine > 0).then(|| users.div_ceil(per_machine).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_and_target_price_are_inverse() {
        let price = price_for_margin(0.001, 0.998).unwrap();
        assert!((price - 0.5).abs() < 1e-12);
        assert!((gross_margin(price, 0.001).unwrap() - 0.998).abs() < 1e-12);
        assert_eq!(gross_margin(0.0, 0.001), None);
        assert_eq!(price_for_margin(0.001, 1.0), None);
    }

    #[test]
    fn machine_count_rounds_up() {
        assert_eq!(machines_for(1_000_000, 50_000), Some(20));
        assert_eq!(machines_for(1_000_001, 50_000), Some(21));
        assert_eq!(machines_for(0, 50_000), Some(1));
        assert_eq!(machines_for(10, 0), None);
    }
}
