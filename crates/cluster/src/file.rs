//! The cluster file (TOML, on the operator's machine): the nodes (name, data-plane address,
//! admin URL, weight), HAProxy's runtime API, bind address and map directory, the optional base
//! domain, and where the slot table lives (`cluster-table.json` next to the file by default).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use store::TenantId;

/// Table file name used when the cluster file names none.
pub const DEFAULT_TABLE: &str = "cluster-table.json";

/// HAProxy's part of the cluster file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Haproxy {
    /// Runtime API: `host:port` or a unix socket path.
    pub runtime_api: String,
    /// Where HAProxy listens for clients (`host:port`).
    pub bind: String,
    /// Directory holding `slots.map` and `tenants.map`.
    pub map_dir: PathBuf,
}

/// One node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Node name (tenant id rules).
    pub name: String,
    /// `host:port` of its data plane.
    pub data: String,
    /// Base URL of its admin API (default `http://{data}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<String>,
    /// Relative share of slots (default 1).
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

impl Node {
    /// The admin base URL, without a trailing slash.
    pub fn admin_url(&self) -> String {
        match &self.admin {
            Some(a) => a.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.data),
        }
    }
}

/// The cluster file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// Domain under which a Host's first label is the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_domain: Option<String>,
    /// Slot table path (relative paths are relative to the cluster file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<PathBuf>,
    /// HAProxy settings.
    pub haproxy: Haproxy,
    /// The nodes.
    #[serde(default, rename = "node")]
    pub nodes: Vec<Node>,
}

/// Why a cluster file is refused; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file cannot be read or written.
    #[error("cannot access cluster file {0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// Not valid TOML for this shape (the message names the field).
    #[error("cluster file {0}: {1}")]
    Parse(PathBuf, String),
    /// A field holds a bad value.
    #[error("cluster file {file}: {field}: {reason}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// The field, e.g. `node[2].name`.
        field: String,
        /// What is wrong and what to do.
        reason: String,
    },
}

impl ClusterFile {
    /// Reads and validates `path`. Errors: unreadable, bad TOML, or [`ClusterFile::validate`].
    pub fn load(path: &Path) -> Result<ClusterFile, FileError> {
        let text = std::fs::read_to_string(path).map_err(|e| FileError::Io(path.into(), e))?;
        let f: ClusterFile =
            toml::from_str(&text).map_err(|e| FileError::Parse(path.into(), e.to_string()))?;
        f.validate(path)?;
        Ok(f)
    }

    /// Writes the file (temp file + rename). Errors: I/O.
    pub fn save(&self, path: &Path) -> Result<(), FileError> {
        let text = toml::to_string_pretty(self)
            .map_err(|e| FileError::Parse(path.into(), e.to_string()))?;
        crate::runtime::write_atomic(path, text.as_bytes())
            .map_err(|e| FileError::Io(path.into(), e))
    }

    /// Where the slot table lives for a cluster file at `path`.
    pub fn table_path(&self, path: &Path) -> PathBuf {
        let dir = path.parent().unwrap_or(Path::new("."));
        match &self.table {
            Some(t) if t.is_absolute() => t.clone(),
            Some(t) => dir.join(t),
            None => dir.join(DEFAULT_TABLE),
        }
    }

    /// Checks names, addresses, weights and duplicates. Errors: [`FileError::Invalid`] naming
    /// the field.
    pub fn validate(&self, path: &Path) -> Result<(), FileError> {
        let bad = |field: String, reason: String| FileError::Invalid {
            file: path.into(),
            field,
            reason,
        };
        if !is_host_port(&self.haproxy.bind) {
            return Err(bad("haproxy.bind".into(), "expected host:port".into()));
        }
        if self.haproxy.runtime_api.is_empty() {
            return Err(bad(
                "haproxy.runtime_api".into(),
                "expected host:port or a unix socket path".into(),
            ));
        }
        if let Some(d) = &self.base_domain {
            if d.trim_matches('.').is_empty() || d.contains(['/', ':', ' ']) {
                return Err(bad("base_domain".into(), "expected a DNS name".into()));
            }
        }
        let (mut names, mut datas) = (BTreeSet::new(), BTreeSet::new());
        for (i, n) in self.nodes.iter().enumerate() {
            if TenantId::parse(&n.name).is_err() {
                return Err(bad(
                    format!("node[{i}].name"),
                    format!(
                        "{:?}: use 1-63 of a-z 0-9 _ -, starting and ending with a letter or digit",
                        n.name
                    ),
                ));
            }
            if !is_host_port(&n.data) {
                return Err(bad(
                    format!("node[{i}].data"),
                    format!("{:?}: expected host:port", n.data),
                ));
            }
            if let Some(a) = &n.admin {
                if !(a.starts_with("http://") || a.starts_with("https://")) {
                    return Err(bad(
                        format!("node[{i}].admin"),
                        format!("{a:?}: expected an http:// or https:// URL"),
                    ));
                }
            }
            if n.weight == 0 {
                return Err(bad(
                    format!("node[{i}].weight"),
                    "must be at least 1".into(),
                ));
            }
            if !names.insert(n.name.as_str()) {
                return Err(bad(
                    format!("node[{i}].name"),
                    format!("{:?} is used twice", n.name),
                ));
            }
            if !datas.insert(n.data.as_str()) {
                return Err(bad(
                    format!("node[{i}].data"),
                    format!("{:?} is used twice", n.data),
                ));
            }
        }
        Ok(())
    }

    /// `(name, weight)` of every node, in file order.
    pub fn weights(&self) -> Vec<(String, u32)> {
        self.nodes
            .iter()
            .map(|n| (n.name.clone(), n.weight))
            .collect()
    }
}

fn is_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((h, p)) => !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"
base_domain = "db.example.com"
[haproxy]
runtime_api = "127.0.0.1:9999"
bind = "127.0.0.1:8000"
map_dir = "/tmp/maps"
[[node]]
name = "node1"
data = "127.0.0.1:8081"
[[node]]
name = "node2"
data = "127.0.0.1:8082"
admin = "http://127.0.0.1:9082/"
weight = 2
"#;

    fn parse(text: &str) -> Result<ClusterFile, FileError> {
        let f: ClusterFile =
            toml::from_str(text).map_err(|e| FileError::Parse("c.toml".into(), e.to_string()))?;
        f.validate(Path::new("c.toml"))?;
        Ok(f)
    }

    #[test]
    fn defaults_and_table_path() {
        let f = parse(OK).unwrap();
        assert_eq!(f.nodes[0].weight, 1);
        assert_eq!(f.nodes[0].admin_url(), "http://127.0.0.1:8081");
        assert_eq!(f.nodes[1].admin_url(), "http://127.0.0.1:9082");
        assert_eq!(
            f.table_path(Path::new("/etc/c/c.toml")),
            Path::new("/etc/c/cluster-table.json")
        );
        let back: ClusterFile = toml::from_str(&toml::to_string_pretty(&f).unwrap()).unwrap();
        assert_eq!(back, f);
    }

    #[test]
    fn errors_name_the_file_the_field_and_the_reason() {
        let e = parse(&OK.replace("node2", "node1"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("c.toml") && e.contains("node[1].name") && e.contains("twice"),
            "{e}"
        );
        let e = parse(&OK.replace("8082", "8081")).unwrap_err().to_string();
        assert!(e.contains("node[1].data") && e.contains("twice"), "{e}");
        let e = parse(&OK.replace("weight = 2", "weight = 0"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("node[1].weight"), "{e}");
        let e = parse(&OK.replace("\"node1\"", "\"Node 1\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("node[0].name"), "{e}");
        let e = parse(&OK.replace("weight = 2", "wieght = 2"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("wieght"), "{e}");
    }
}
