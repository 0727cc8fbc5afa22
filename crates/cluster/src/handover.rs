//! Moving slots between nodes, the pure part: the table changes of a slot move and the journal
//! that makes a rebalance resumable (the I/O is `tenantd cluster move-slot` / `rebalance`).
//!
//! A slot moves in two phases. **Flip**: the slot is given to its new owner, and every tenant
//! the old owner holds in it is pinned to the old owner by an override, so nothing changes for
//! them while tenants created from now on land on the new owner. **Drain**: each pinned tenant
//! is moved (fence, snapshot, import, commit) and its override removed. When no tenant of the
//! slot is pinned away from its owner, the slot move is done. The journal lists slot moves
//! between flip and the end of drain; a rerun drains what it lists before planning anything new.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use store::TenantId;

use crate::slot::slot_of;
use crate::table::{SlotTable, TableError};

/// One slot move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotMove {
    /// The slot.
    pub slot: u16,
    /// Its owner before the move (where its tenants are until drained).
    pub from: String,
    /// Its owner after.
    pub to: String,
}

/// Slot moves flipped but not yet drained (`cluster-moves.json` next to the table).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// In flip order.
    pub moves: Vec<SlotMove>,
}

impl Journal {
    /// Reads the journal at `path`; none there is an empty journal. Errors: unreadable or not
    /// a journal.
    pub fn load(path: &Path) -> Result<Journal, String> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}: not a move journal: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Journal::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Writes it atomically at `path`, or removes the file when empty. Errors: I/O.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if self.moves.is_empty() {
            return match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        let text = serde_json::to_vec_pretty(self).expect("a journal serialises");
        crate::runtime::write_atomic(path, &text)
    }

    /// The slots it lists.
    pub fn slots(&self) -> BTreeSet<u16> {
        self.moves.iter().map(|m| m.slot).collect()
    }
}

/// The flip of `moves`: each slot to its new owner, each tenant listed for it in `held` (the
/// tenants the old owner has in that slot) pinned to the old owner. A move to the slot's
/// current owner changes nothing. Errors: a bad node name.
pub fn flip(
    table: &SlotTable,
    moves: &[SlotMove],
    held: &BTreeMap<u16, Vec<TenantId>>,
) -> Result<SlotTable, TableError> {
    let mut next = table.clone();
    for m in moves.iter().filter(|m| table.slot_owner(m.slot) != m.to) {
        next.assign(m.slot, &m.to)?;
        for t in held.get(&m.slot).into_iter().flatten() {
            if table.owner(t) == m.from {
                next.set_override(t, Some(&m.from))?;
            }
        }
    }
    Ok(next)
}

/// Tenants of the journal's slots still pinned to the slot's old owner, with where they are
/// and where they go, in (slot, tenant) order. A tenant pinned elsewhere by hand stays put.
pub fn pending(table: &SlotTable, journal: &Journal) -> Vec<(TenantId, String, String)> {
    let from: BTreeMap<u16, &str> = journal
        .moves
        .iter()
        .map(|m| (m.slot, m.from.as_str()))
        .collect();
    let mut out: Vec<(u16, TenantId, String, String)> = table
        .to_file()
        .overrides
        .into_iter()
        .filter_map(|(t, node)| {
            let id = TenantId::parse(&t).ok()?;
            let slot = slot_of(&id);
            let owner = table.slot_owner(slot);
            let moving = from.get(&slot).is_some_and(|f| *f == node && owner != node);
            moving.then(|| (slot, id, node, owner.to_string()))
        })
        .collect();
    out.sort();
    out.into_iter()
        .map(|(_, t, from, to)| (t, from, to))
        .collect()
}

/// The table after `moved` tenants reached their slot's owner: their overrides go.
pub fn drained(table: &SlotTable, moved: &[TenantId]) -> SlotTable {
    let mut next = table.clone();
    for t in moved {
        next.set_override(t, None)
            .expect("removing an override is always valid");
    }
    next
}

/// Journal entries whose slot has no tenant pending any more.
pub fn finished(table: &SlotTable, journal: &Journal) -> Vec<u16> {
    let busy: BTreeSet<u16> = pending(table, journal)
        .iter()
        .map(|(t, _, _)| slot_of(t))
        .collect();
    journal
        .slots()
        .into_iter()
        .filter(|s| !busy.contains(s))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> SlotTable {
        SlotTable::even(&[("a".into(), 1), ("b".into(), 1)], 1).unwrap()
    }

    fn id(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }

    #[test]
    fn a_slot_moves_by_flip_then_drain() {
        let t = table();
        let acme = id("acme"); // slot 14910: b
        let slot = slot_of(&acme);
        assert_eq!(t.slot_owner(slot), "b");
        let m = SlotMove {
            slot,
            from: "b".into(),
            to: "a".into(),
        };
        let held = BTreeMap::from([(slot, vec![acme.clone()])]);
        let flipped = flip(&t, std::slice::from_ref(&m), &held).unwrap();
        assert!(flipped.epoch() > t.epoch());
        assert_eq!(flipped.slot_owner(slot), "a", "new tenants land on a");
        assert_eq!(flipped.owner(&acme), "b", "acme stays where its file is");
        let journal = Journal { moves: vec![m] };
        assert_eq!(
            pending(&flipped, &journal),
            [(acme.clone(), "b".into(), "a".into())]
        );
        assert!(finished(&flipped, &journal).is_empty());
        let done = drained(&flipped, std::slice::from_ref(&acme));
        assert_eq!(done.owner(&acme), "a");
        assert!(done.to_file().overrides.is_empty());
        assert!(pending(&done, &journal).is_empty());
        assert_eq!(finished(&done, &journal), [slot]);
    }

    #[test]
    fn a_move_to_the_current_owner_and_pins_elsewhere_are_left_alone() {
        let t = table();
        let acme = id("acme");
        let slot = slot_of(&acme);
        let same = SlotMove {
            slot,
            from: "b".into(),
            to: "b".into(),
        };
        let held = BTreeMap::from([(slot, vec![acme.clone()])]);
        assert_eq!(flip(&t, &[same], &held).unwrap(), t);
        // A tenant pinned by hand outside the journal's slots, or inside one but to another
        // node than the slot's old owner, is not pending.
        let mut pinned = t.clone();
        pinned.set_override(&id("globex"), Some("b")).unwrap();
        let mut elsewhere = t.clone();
        elsewhere.assign(slot, "a").unwrap();
        elsewhere.set_override(&acme, Some("c")).unwrap();
        let journal = Journal {
            moves: vec![SlotMove {
                slot,
                from: "b".into(),
                to: "a".into(),
            }],
        };
        assert!(pending(&pinned, &journal).is_empty());
        assert!(pending(&elsewhere, &journal).is_empty());
    }

    #[test]
    fn the_journal_round_trips_and_an_empty_one_leaves_no_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("cluster-moves.json");
        assert_eq!(Journal::load(&p).unwrap(), Journal::default());
        let j = Journal {
            moves: vec![SlotMove {
                slot: 7,
                from: "a".into(),
                to: "b".into(),
            }],
        };
        j.save(&p).unwrap();
        assert_eq!(Journal::load(&p).unwrap(), j);
        Journal::default().save(&p).unwrap();
        assert!(!p.exists());
        std::fs::write(&p, b"{").unwrap();
        assert!(Journal::load(&p)
            .unwrap_err()
            .contains("cluster-moves.json"));
    }
}
