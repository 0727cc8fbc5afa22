//! The slot table: which node owns each of the 16,384 slots, under an epoch that only grows,
//! plus per-tenant overrides (a tenant pinned to another node than its slot's, e.g. mid-move).
//! Its wire and file form lists contiguous ranges, so the whole table of a 20-node cluster is
//! a few hundred bytes whatever the tenant count; overrides are the only per-tenant part.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use store::TenantId;

use crate::slot::{slot_of, SLOTS};

/// A run of slots owned by one node (inclusive bounds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// First slot.
    pub from: u16,
    /// Last slot (inclusive).
    pub to: u16,
    /// The owning node's name.
    pub node: String,
}

/// The table as stored and sent: ranges covering every slot exactly once, and overrides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableFile {
    /// Grows with every change; a node refuses a table older than the one it has.
    pub epoch: u64,
    /// Slot ranges, in slot order.
    pub ranges: Vec<Range>,
    /// Tenant id → node, for tenants not on their slot's node.
    #[serde(default)]
    pub overrides: BTreeMap<String, String>,
}

/// Why a table is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// The ranges leave a slot unowned or give it twice.
    #[error("slot {0} is {1}: the ranges must cover 0..=16383 exactly once, in order")]
    Coverage(u16, &'static str),
    /// A range's bounds are reversed or past the last slot.
    #[error("range {from}..={to} is not within 0..=16383 with from <= to")]
    BadRange {
        /// First slot given.
        from: u16,
        /// Last slot given.
        to: u16,
    },
    /// A node name is empty or not a valid name (same rules as tenant ids).
    #[error("node name {0:?} is not valid (lowercase letters, digits, '-' and '_', 1-64)")]
    BadNode(String),
    /// An override names something that is not a valid tenant id.
    #[error("override for {0:?}: not a valid tenant id")]
    BadTenant(String),
}

/// The slot table in memory: one owner index per slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotTable {
    epoch: u64,
    nodes: Vec<String>,
    owner: Vec<u16>,
    overrides: BTreeMap<String, String>,
}

fn check_node(name: &str) -> Result<(), TableError> {
    // Node names follow the tenant id rules: they appear in HAProxy map files and URLs.
    TenantId::parse(name)
        .map(|_| ())
        .map_err(|_| TableError::BadNode(name.to_string()))
}

impl SlotTable {
    /// Slots split over `nodes` in proportion to their weights, in contiguous runs (the first
    /// nodes take the rounding remainder). Errors: no node, a bad name, or all weights 0.
    pub fn even(nodes: &[(String, u32)], epoch: u64) -> Result<SlotTable, TableError> {
        let total: u64 = nodes.iter().map(|(_, w)| u64::from(*w)).sum();
        if nodes.is_empty() || total == 0 {
            return Err(TableError::Coverage(0, "unowned"));
        }
        for (name, _) in nodes {
            check_node(name)?;
        }
        let mut owner = Vec::with_capacity(usize::from(SLOTS));
        let mut given = 0u64;
        let mut acc = 0u64;
        for (i, (_, w)) in nodes.iter().enumerate() {
            acc += u64::from(*w);
            // Cumulative share, rounded: the last node ends exactly at SLOTS.
            let end = (acc * u64::from(SLOTS) + total / 2) / total;
            let end = if i + 1 == nodes.len() {
                u64::from(SLOTS)
            } else {
                end
            };
            while given < end {
                owner.push(i as u16);
                given += 1;
            }
        }
        Ok(SlotTable {
            epoch,
            nodes: nodes.iter().map(|(n, _)| n.clone()).collect(),
            owner,
            overrides: BTreeMap::new(),
        })
    }

    /// Builds the table from its file form. Errors: see [`TableError`].
    pub fn from_file(f: &TableFile) -> Result<SlotTable, TableError> {
        let mut nodes: Vec<String> = Vec::new();
        let mut owner = Vec::with_capacity(usize::from(SLOTS));
        for r in &f.ranges {
            if r.from > r.to || r.to >= SLOTS {
                return Err(TableError::BadRange {
                    from: r.from,
                    to: r.to,
                });
            }
            if usize::from(r.from) != owner.len() {
                let at = owner.len().min(usize::from(r.from)) as u16;
                let what = if usize::from(r.from) > owner.len() {
                    "unowned"
                } else {
                    "owned twice"
                };
                return Err(TableError::Coverage(at, what));
            }
            check_node(&r.node)?;
            let idx = match nodes.iter().position(|n| *n == r.node) {
                Some(i) => i,
                None => {
                    nodes.push(r.node.clone());
                    nodes.len() - 1
                }
            };
            owner.extend(std::iter::repeat_n(
                idx as u16,
                usize::from(r.to - r.from) + 1,
            ));
        }
        if owner.len() != usize::from(SLOTS) {
            return Err(TableError::Coverage(owner.len() as u16, "unowned"));
        }
        for (tenant, node) in &f.overrides {
            TenantId::parse(tenant).map_err(|_| TableError::BadTenant(tenant.clone()))?;
            check_node(node)?;
        }
        Ok(SlotTable {
            epoch: f.epoch,
            nodes,
            owner,
            overrides: f.overrides.clone(),
        })
    }

    /// The file form: contiguous ranges in slot order, and the overrides.
    pub fn to_file(&self) -> TableFile {
        let mut ranges: Vec<Range> = Vec::new();
        for (slot, &idx) in self.owner.iter().enumerate() {
            let node = &self.nodes[usize::from(idx)];
            match ranges.last_mut() {
                Some(r) if r.node == *node => r.to = slot as u16,
                _ => ranges.push(Range {
                    from: slot as u16,
                    to: slot as u16,
                    node: node.clone(),
                }),
            }
        }
        TableFile {
            epoch: self.epoch,
            ranges,
            overrides: self.overrides.clone(),
        }
    }

    /// The table's epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The node that owns `slot` (< [`SLOTS`]).
    pub fn slot_owner(&self, slot: u16) -> &str {
        &self.nodes[usize::from(self.owner[usize::from(slot)])]
    }

    /// The node that owns `tenant`: its override if it has one, else its slot's owner.
    pub fn owner(&self, tenant: &TenantId) -> &str {
        match self.overrides.get(tenant.as_str()) {
            Some(node) => node,
            None => self.slot_owner(slot_of(tenant)),
        }
    }

    /// Slots each node owns, by node name.
    pub fn slot_counts(&self) -> BTreeMap<&str, u32> {
        let mut counts: BTreeMap<&str, u32> = self.nodes.iter().map(|n| (n.as_str(), 0)).collect();
        for &idx in &self.owner {
            *counts
                .entry(self.nodes[usize::from(idx)].as_str())
                .or_default() += 1;
        }
        counts
    }

    /// Gives `slot` to `node` (a new node name is added) and raises the epoch.
    pub fn assign(&mut self, slot: u16, node: &str) -> Result<(), TableError> {
        check_node(node)?;
        if slot >= SLOTS {
            return Err(TableError::BadRange {
                from: slot,
                to: slot,
            });
        }
        let idx = match self.nodes.iter().position(|n| n == node) {
            Some(i) => i,
            None => {
                self.nodes.push(node.to_string());
                self.nodes.len() - 1
            }
        };
        self.owner[usize::from(slot)] = idx as u16;
        self.epoch += 1;
        Ok(())
    }

    /// Pins `tenant` to `node` (`None`: back to its slot's owner) and raises the epoch.
    pub fn set_override(
        &mut self,
        tenant: &TenantId,
        node: Option<&str>,
    ) -> Result<(), TableError> {
        match node {
            Some(n) => {
                check_node(n)?;
                self.overrides
                    .insert(tenant.as_str().to_string(), n.to_string());
            }
            None => {
                self.overrides.remove(tenant.as_str());
            }
        }
        self.epoch += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(ws: &[u32]) -> Vec<(String, u32)> {
        ws.iter()
            .enumerate()
            .map(|(i, w)| (format!("node{}", i + 1), *w))
            .collect()
    }

    #[test]
    fn even_split_follows_weights_and_covers_every_slot() {
        let t = SlotTable::even(&nodes(&[1, 1, 1]), 1).unwrap();
        let c = t.slot_counts();
        assert_eq!(c.values().sum::<u32>(), 16_384);
        assert!(c.values().all(|&n| (5_461..=5_462).contains(&n)), "{c:?}");
        let t = SlotTable::even(&nodes(&[2, 1, 1]), 1).unwrap();
        assert_eq!(t.slot_counts()["node1"], 8_192);
        assert!(SlotTable::even(&[], 1).is_err());
        assert!(SlotTable::even(&nodes(&[0, 0]), 1).is_err());
    }

    #[test]
    fn file_round_trip_is_three_ranges_for_three_nodes() {
        let t = SlotTable::even(&nodes(&[1, 1, 1]), 7).unwrap();
        let f = t.to_file();
        assert_eq!(f.ranges.len(), 3);
        assert_eq!(f.ranges[0].from, 0);
        assert_eq!(f.ranges[2].to, 16_383);
        let back = SlotTable::from_file(&f).unwrap();
        assert_eq!(back, t);
        let json = serde_json::to_string(&f).unwrap();
        assert!(json.len() < 200, "{json}");
    }

    #[test]
    fn gaps_overlaps_and_bad_names_are_refused_with_the_slot() {
        let mut f = SlotTable::even(&nodes(&[1, 1]), 1).unwrap().to_file();
        f.ranges[1].from += 1;
        assert_eq!(
            SlotTable::from_file(&f).unwrap_err(),
            TableError::Coverage(8_192, "unowned")
        );
        f.ranges[1].from -= 2;
        assert_eq!(
            SlotTable::from_file(&f).unwrap_err(),
            TableError::Coverage(8_191, "owned twice")
        );
        let mut f = SlotTable::even(&nodes(&[1, 1]), 1).unwrap().to_file();
        f.ranges[1].node = "Bad Node".into();
        assert!(matches!(
            SlotTable::from_file(&f),
            Err(TableError::BadNode(_))
        ));
        let mut f = SlotTable::even(&nodes(&[1]), 1).unwrap().to_file();
        f.ranges[0].to = 16_000;
        assert!(SlotTable::from_file(&f).is_err());
    }

    #[test]
    fn an_override_wins_over_the_slot_and_every_change_raises_the_epoch() {
        let mut t = SlotTable::even(&nodes(&[1, 1]), 1).unwrap();
        let acme = TenantId::parse("acme").unwrap(); // slot 14910: node2's half
        assert_eq!(t.owner(&acme), "node2");
        t.set_override(&acme, Some("node1")).unwrap();
        assert_eq!((t.owner(&acme), t.epoch()), ("node1", 2));
        t.set_override(&acme, None).unwrap();
        assert_eq!((t.owner(&acme), t.epoch()), ("node2", 3));
        t.assign(14_910, "node3").unwrap();
        assert_eq!((t.owner(&acme), t.epoch()), ("node3", 4));
        assert_eq!(t.slot_counts()["node3"], 1);
    }
}
