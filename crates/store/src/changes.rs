//! The tenants whose files changed since a consumer last looked: what a backup round copies.
//!
//! Marked by every writer commit (the writer's WAL hook, see `connection::watch_commits`), by
//! tenant creation and by an imported file. Only a pool with `PoolConfig::track_changes` keeps
//! one, and it holds only tenants changed since the last [`ChangeSet::take`]: an idle tenant
//! costs nothing here.

use std::collections::HashSet;

use parking_lot::Mutex;

use crate::name::TenantId;

/// A set of tenant ids, marked from any thread, taken whole; and the ids of tenants new here
/// (created, imported), kept apart so a consumer can copy those first.
#[derive(Debug, Default)]
pub struct ChangeSet {
    changed: Mutex<HashSet<TenantId>>,
    new: Mutex<HashSet<TenantId>>,
}

fn mark_in(set: &Mutex<HashSet<TenantId>>, id: &TenantId) {
    let mut set = set.lock();
    if !set.contains(id) {
        set.insert(id.clone());
    }
}

fn take_sorted(set: &Mutex<HashSet<TenantId>>) -> Vec<TenantId> {
    let mut ids: Vec<TenantId> = std::mem::take(&mut *set.lock()).into_iter().collect();
    ids.sort();
    ids
}

impl ChangeSet {
    /// Notes that `id`'s file changed (cheap when it is already noted: no allocation).
    pub fn mark(&self, id: &TenantId) {
        mark_in(&self.changed, id);
    }

    /// Notes that `id` is new here (created or imported): changed, and among the new ones.
    pub fn mark_new(&self, id: &TenantId) {
        mark_in(&self.changed, id);
        mark_in(&self.new, id);
    }

    /// Every tenant marked since the last take, sorted; the set is empty afterwards.
    pub fn take(&self) -> Vec<TenantId> {
        take_sorted(&self.changed)
    }

    /// Every tenant marked new since the last `take_new`, sorted (they stay among the changed).
    pub fn take_new(&self) -> Vec<TenantId> {
        take_sorted(&self.new)
    }

    /// Tenants marked and not taken yet.
    pub fn len(&self) -> usize {
        self.changed.lock().len()
    }

    /// True when nothing changed since the last take.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_once_and_take_empties() {
        let set = ChangeSet::default();
        let (a, b) = (TenantId::parse("a").unwrap(), TenantId::parse("b").unwrap());
        set.mark(&b);
        set.mark(&a);
        set.mark(&b);
        assert_eq!(set.len(), 2);
        assert_eq!(set.take(), vec![a.clone(), b.clone()]);
        assert!(set.is_empty());
        set.mark(&a);
        assert_eq!(set.take(), vec![a.clone()]);
        set.mark_new(&b);
        assert_eq!(set.take_new(), vec![b.clone()]);
        assert!(set.take_new().is_empty());
        assert_eq!(set.take(), vec![b], "a new tenant is a changed one too");
    }
}
