//! Which tenants this node serves, in a cluster (docs/CLUSTER.md): the node's name and the
//! slot table it was given (`<data>/cluster.json`, replaced through `PUT /admin/cluster` with a
//! newer epoch only). A request for a tenant the table gives to another node is answered
//! `421 misdirected` with the owner this node knows and the table's epoch, before any tenant
//! file or catalog row is touched. A node without a name or a table owns every tenant (one
//! node, no cluster).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cluster::table::{SlotTable, TableError, TableFile};
use parking_lot::RwLock;
use store::TenantId;

use crate::error::ApiError;

/// The file, under the data directory, that holds the node's slot table.
pub const TABLE_FILE: &str = "cluster.json";

/// Why a table cannot be loaded or installed.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    /// The table is malformed.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The table is older than the one this node has.
    #[error("the table's epoch {given} is older than this node's {have}")]
    Stale {
        /// The node's epoch.
        have: u64,
        /// The epoch offered.
        given: u64,
    },
    /// The same epoch with different contents: someone changed the table without raising it.
    #[error("epoch {0} is already installed with different contents; raise the epoch")]
    Conflict(u64),
    /// The file could not be read, parsed or written.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// The node's view of the cluster.
pub struct Routing {
    node: Option<String>,
    file: Option<PathBuf>,
    table: RwLock<Option<Arc<SlotTable>>>,
}

impl Routing {
    /// One node, no cluster: every tenant is served here.
    pub fn single() -> Routing {
        Routing {
            node: None,
            file: None,
            table: RwLock::new(None),
        }
    }

    /// The node `name`, with the table in `<data_dir>/cluster.json` if there is one. Errors:
    /// the file exists but cannot be read or is not a valid table.
    pub fn load(name: String, data_dir: &Path) -> Result<Routing, RoutingError> {
        let path = data_dir.join(TABLE_FILE);
        let table = match std::fs::read(&path) {
            Ok(bytes) => {
                let file: TableFile =
                    serde_json::from_slice(&bytes).map_err(|e| RoutingError::File {
                        path: path.clone(),
                        reason: format!("not a slot table: {e}"),
                    })?;
                Some(Arc::new(SlotTable::from_file(&file)?))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(RoutingError::File {
                    path,
                    reason: e.to_string(),
                })
            }
        };
        Ok(Routing {
            node: Some(name),
            file: Some(path),
            table: RwLock::new(table),
        })
    }

    /// This node's name, if it has one.
    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// The table this node holds, in its file form.
    pub fn table(&self) -> Option<TableFile> {
        self.table.read().as_ref().map(|t| t.to_file())
    }

    /// `Ok` when this node serves `tenant`; else `421 misdirected` naming the owner.
    pub fn check(&self, tenant: &TenantId) -> Result<(), ApiError> {
        let (Some(node), Some(table)) = (&self.node, self.table.read().clone()) else {
            return Ok(());
        };
        let owner = table.owner(tenant);
        if owner == node {
            Ok(())
        } else {
            Err(ApiError::Misdirected {
                tenant: tenant.clone(),
                owner: owner.to_string(),
                epoch: table.epoch(),
            })
        }
    }

    /// Installs `file` if its epoch is newer than the node's (the same epoch with the same
    /// contents is accepted again, so a push can be retried): written durably to
    /// `<data>/cluster.json` first, then served. Returns the epoch now installed. Errors: a
    /// node without a name, a bad, stale or conflicting table, or the file write.
    pub fn install(&self, file: &TableFile) -> Result<u64, RoutingError> {
        let path = self.file.clone().ok_or_else(|| RoutingError::File {
            path: PathBuf::from(TABLE_FILE),
            reason: "this node has no --node-name: start it with one to join a cluster".into(),
        })?;
        let table = SlotTable::from_file(file)?;
        let mut current = self.table.write();
        if let Some(have) = current.as_ref() {
            if file.epoch < have.epoch() {
                return Err(RoutingError::Stale {
                    have: have.epoch(),
                    given: file.epoch,
                });
            }
            if file.epoch == have.epoch() {
                return if **have == table {
                    Ok(have.epoch())
                } else {
                    Err(RoutingError::Conflict(have.epoch()))
                };
            }
        }
        write_durably(
            &path,
            &serde_json::to_vec_pretty(file).expect("a table serialises"),
        )
        .map_err(|e| RoutingError::File {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        *current = Some(Arc::new(table));
        Ok(file.epoch)
    }
}

/// Temp file, fsync, rename, fsync of the directory: the old table or the new one, never half.
fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_nodes(epoch: u64) -> TableFile {
        let nodes = [("node1".to_string(), 1), ("node2".to_string(), 1)];
        let mut t = SlotTable::even(&nodes, epoch).unwrap().to_file();
        t.epoch = epoch;
        t
    }

    #[test]
    fn a_node_without_a_table_serves_everyone() {
        let acme = TenantId::parse("acme").unwrap();
        assert!(Routing::single().check(&acme).is_ok());
        let dir = tempfile::tempdir().unwrap();
        let r = Routing::load("node1".into(), dir.path()).unwrap();
        assert!(r.check(&acme).is_ok());
        assert!(r.table().is_none());
    }

    #[test]
    fn install_persists_refuses_stale_and_conflicting_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let r = Routing::load("node1".into(), dir.path()).unwrap();
        let acme = TenantId::parse("acme").unwrap(); // slot 14910: node2
        assert_eq!(r.install(&two_nodes(5)).unwrap(), 5);
        match r.check(&acme) {
            Err(ApiError::Misdirected { owner, epoch, .. }) => {
                assert_eq!((owner.as_str(), epoch), ("node2", 5))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.install(&two_nodes(5)).unwrap(), 5, "a retried push");
        let mut changed = two_nodes(5);
        changed.overrides.insert("acme".into(), "node1".into());
        assert!(matches!(
            r.install(&changed),
            Err(RoutingError::Conflict(5))
        ));
        assert!(matches!(
            r.install(&two_nodes(4)),
            Err(RoutingError::Stale { have: 5, given: 4 })
        ));
        changed.epoch = 6;
        r.install(&changed).unwrap();
        assert!(r.check(&acme).is_ok(), "the override gives acme to node1");
        // A restart reads what was installed.
        let again = Routing::load("node1".into(), dir.path()).unwrap();
        assert_eq!(again.table().unwrap(), changed);
        assert!(!dir.path().join("cluster.json.tmp").exists());
    }

    #[test]
    fn a_corrupt_table_file_stops_the_start_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(TABLE_FILE), b"{not json").unwrap();
        let err = Routing::load("node1".into(), dir.path()).err().unwrap();
        assert!(err.to_string().contains("cluster.json"), "{err}");
        assert!(Routing::single().install(&two_nodes(1)).is_err());
    }
}
