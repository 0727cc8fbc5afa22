//! The rebalance planner (pure): given the slot table, the nodes' weights and a cost per slot
//! (tenants or bytes on disk; unknown = 1 per slot), the slot moves that bring every node within
//! a tolerance of its weighted share. Greedy and deterministic: while some node is outside its
//! band, the most loaded node gives the most underloaded one the costliest slot that does not
//! overshoot either (ties: lowest slot), so only overloaded nodes give and only underloaded nodes
//! take — no slot moves twice and a balanced table plans nothing.

use std::collections::{BTreeMap, BTreeSet};

use crate::slot::SLOTS;
use crate::table::SlotTable;

/// Default tolerance: each node within 5% of its weighted share.
pub const DEFAULT_TOLERANCE: f64 = 0.05;

/// One planned move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    /// The slot.
    pub slot: u16,
    /// Its owner now.
    pub from: String,
    /// Its owner after the move.
    pub to: String,
}

/// Why no plan can be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// Every weight is 0.
    #[error("no node has a weight above 0: nothing can own the slots")]
    NoWeight,
    /// The cost list is not one entry per slot.
    #[error("costs must list one value per slot (16384), got {0}")]
    Costs(usize),
}

/// Plans the moves. `weights`: every node that should own slots (a node of the table missing
/// here gets weight 0, i.e. is emptied); `costs`: per slot, `None` = 1 each. Errors: see
/// [`PlanError`].
pub fn plan(
    table: &SlotTable,
    weights: &[(String, u32)],
    costs: Option<&[u64]>,
    tolerance: f64,
) -> Result<Vec<Move>, PlanError> {
    if let Some(c) = costs {
        if c.len() != usize::from(SLOTS) {
            return Err(PlanError::Costs(c.len()));
        }
    }
    let cost = |s: u16| costs.map_or(1, |c| c[usize::from(s)]);
    let mut w: BTreeMap<String, u64> = weights
        .iter()
        .map(|(n, w)| (n.clone(), u64::from(*w)))
        .collect();
    let mut held: BTreeMap<String, BTreeSet<(u64, u16)>> =
        w.keys().map(|n| (n.clone(), BTreeSet::new())).collect();
    for s in 0..SLOTS {
        let owner = table.slot_owner(s).to_string();
        w.entry(owner.clone()).or_insert(0);
        held.entry(owner).or_default().insert((cost(s), s));
    }
    let total_w: u64 = w.values().sum();
    if total_w == 0 {
        return Err(PlanError::NoWeight);
    }
    let total: u64 = (0..SLOTS).map(cost).sum();
    let target: BTreeMap<&str, f64> = w
        .iter()
        .map(|(n, &wt)| (n.as_str(), total as f64 * wt as f64 / total_w as f64))
        .collect();
    let mut load: BTreeMap<String, f64> = held
        .iter()
        .map(|(n, s)| (n.clone(), s.iter().map(|(c, _)| *c as f64).sum()))
        .collect();
    let band = |n: &str| target[n] * tolerance;
    let mut moved: BTreeMap<u16, (String, String)> = BTreeMap::new();
    for _ in 0..usize::from(SLOTS) {
        // Deviation from the share, and relative to it (the band is relative); names break
        // ties so the plan is deterministic.
        let dev = |n: &String| load[n] - target[n.as_str()];
        let rel = |n: &String| dev(n) / target[n.as_str()].max(1e-9);
        let donor = load
            .keys()
            .max_by(|a, b| rel(a).total_cmp(&rel(b)).then(b.cmp(a)))
            .cloned();
        let taker = load
            .keys()
            .min_by(|a, b| rel(a).total_cmp(&rel(b)).then(a.cmp(b)))
            .cloned();
        let (Some(donor), Some(taker)) = (donor, taker) else {
            break;
        };
        let (excess, deficit) = (dev(&donor), -dev(&taker));
        if excess <= band(&donor) && deficit <= band(&taker) {
            break;
        }
        let limit = excess.min(deficit).max(0.0) as u64;
        let set = &held[&donor];
        let fit = set.range(..=(limit, u16::MAX)).next_back().copied();
        let pick = match fit {
            Some(p) if p.0 > 0 => p,
            // Nothing fits without overshoot: the cheapest slot, if it still narrows the gap.
            _ => match set.iter().find(|(c, _)| *c > 0) {
                Some(&p) if (p.0 as f64) < excess + deficit => p,
                _ => break,
            },
        };
        held.get_mut(&donor).map(|s| s.remove(&pick));
        held.get_mut(&taker).map(|s| s.insert(pick));
        *load.get_mut(&donor).expect("donor is a node") -= pick.0 as f64;
        *load.get_mut(&taker).expect("taker is a node") += pick.0 as f64;
        let from = table.slot_owner(pick.1).to_string();
        if from == taker {
            moved.remove(&pick.1);
        } else {
            moved.insert(pick.1, (from, taker));
        }
    }
    Ok(moved
        .into_iter()
        .map(|(slot, (from, to))| Move { slot, from, to })
        .collect())
}

/// Applies `moves` to `table` and raises its epoch once for the whole plan.
pub fn apply(table: &SlotTable, moves: &[Move]) -> SlotTable {
    let mut t = table.clone();
    for m in moves {
        // Names were valid table or cluster-file names, and slots come from the table.
        t.assign(m.slot, &m.to)
            .expect("planned moves name valid nodes and slots");
    }
    let mut f = t.to_file();
    f.epoch = table.epoch() + 1;
    SlotTable::from_file(&f).expect("a table with reassigned slots stays complete")
}

/// A node's load by one measure (slots, tenants or bytes), now and after a plan, against its
/// weighted share.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    /// The node.
    pub node: String,
    /// Its load now.
    pub now: u64,
    /// Its load once the plan ran.
    pub after: u64,
    /// Its weighted share of the total.
    pub target: f64,
}

impl Load {
    /// True when the load after the plan is within `tolerance` of the share (and one
    /// `unit` of slack: the costliest slot, since a slot is what moves).
    pub fn balanced(&self, tolerance: f64, unit: u64) -> bool {
        (self.after as f64 - self.target).abs() <= self.target * tolerance + unit as f64
    }
}

/// Each node's load by `costs` (per slot) now and after `moves`, and its weighted share.
/// Nodes are those of `weights` and of the table, in name order.
pub fn loads(
    table: &SlotTable,
    weights: &[(String, u32)],
    moves: &[Move],
    costs: &[u64],
) -> Vec<Load> {
    let mut now: BTreeMap<String, u64> = weights.iter().map(|(n, _)| (n.clone(), 0)).collect();
    let mut owner: Vec<String> = (0..SLOTS)
        .map(|s| table.slot_owner(s).to_string())
        .collect();
    for (s, o) in owner.iter().enumerate() {
        *now.entry(o.clone()).or_default() += costs.get(s).copied().unwrap_or(0);
    }
    for m in moves {
        owner[usize::from(m.slot)] = m.to.clone();
    }
    let mut after: BTreeMap<String, u64> = now.keys().map(|n| (n.clone(), 0)).collect();
    for (s, o) in owner.iter().enumerate() {
        *after.entry(o.clone()).or_default() += costs.get(s).copied().unwrap_or(0);
    }
    let total: u64 = costs.iter().sum();
    let total_w: u64 = weights.iter().map(|(_, w)| u64::from(*w)).sum();
    now.iter()
        .map(|(node, n)| {
            let w = weights
                .iter()
                .find(|(m, _)| m == node)
                .map_or(0, |(_, w)| *w);
            Load {
                node: node.clone(),
                now: *n,
                after: after[node],
                target: if total_w == 0 {
                    0.0
                } else {
                    total as f64 * f64::from(w) / total_w as f64
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
