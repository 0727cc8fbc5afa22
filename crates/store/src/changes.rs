//! The tenants whose files changed since a consumer last looked: what a backup round copies.
//!
//! Marked by every writer commit (the writer's WAL hook, see `connection::watch_commits`), by
//! tenant creation and by an imported file. Only a pool with `PoolConfig::track_changes` keeps
//! one, and it holds only tenants changed since the last [`ChangeSet::take`]: an idle tenant
//! costs nothing here.

use std::collections::HashSet;

use parking_lot::Mutex;

use crate::name::TenantId;

/// A set of tenant ids, marked from any thread, taken whole.
#[derive(Debug, Default)]
pub struct ChangeSet(Mutex<HashSet<TenantId>>);

impl ChangeSet {
    /// Notes that `id`'s file changed (cheap when it is already noted: no allocation).
    pub fn mark(&self, id: &TenantId) {
        let mut set = self.0.lock();
        if !set.contains(id) {
            set.insert(id.clone());
        }
    }

    /// Every tenant marked since the last take, sorted; the set is empty afterwards.
    pub fn take(&self) -> Vec<TenantId> {
        let mut ids: Vec<TenantId> = std::mem::take(&mut *self.0.lock()).into_iter().collect();
        ids.sort();
        ids
    }

    /// Tenants marked and not taken yet.
    pub fn len(&self) -> usize {
        self.0.lock().len()
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
        assert_eq!(set.take(), vec![a.clone(), b]);
        assert!(set.is_empty());
        set.mark(&a);
        assert_eq!(set.take(), vec![a]);
    }
}
