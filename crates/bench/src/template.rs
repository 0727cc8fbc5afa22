//! Template tenant files: built once per provisioning run, then copied to every tenant's path.
//!
//! - [`Layout::Tenantd`]: a file made exactly the way `TenantPool::create` makes one
//!   (`store::connection::create_new` + `store::events::init_schema`), so tenantd serves it as
//!   a tenant created through the admin API;
//! - [`Layout::Flat`]: what the seed design's baseline server (`bench/baseline/server.ts`) creates on first write: a
//!   WAL-mode file with their `events` table, at `<data>/<tenant>.db`.
//!
//! Both are closed cleanly, so a template is a single `.db` file with no `-wal`/`-shm`.

use std::path::{Path, PathBuf};

use store::TenantId;

/// Where and in which shape tenant files are provisioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Layout {
    /// tenantd's layout and schema: `store::layout::tenant_path`, `_tenantd_*` tables.
    Tenantd,
    /// The baseline's layout and schema: `<data>/<tenant>.db` with an `events` table.
    Flat,
}

/// The baseline server's table, as it creates it on first write.
pub const FLAT_SCHEMA: &str =
    "CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, received_at INTEGER, body TEXT)";

/// Why a template could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The store refused to create the tenantd template.
    #[error("cannot create tenantd template {path}: {source}")]
    Store {
        /// The template path.
        path: PathBuf,
        /// The store's error.
        source: store::StoreError,
    },
    /// SQLite failed while creating the flat template.
    #[error("cannot create flat template {path}: {source}")]
    Sqlite {
        /// The template path.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// Reading or removing the template file failed.
    #[error("cannot read template {path}: {source}")]
    Io {
        /// The template path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Closing left a `-wal` or `-shm` beside the template, so copying the `.db` alone would
    /// lose data or state.
    #[error("template {0} left a -wal/-shm file after close")]
    NotClean(PathBuf),
}

impl Layout {
    /// The path of `tenant`'s file under `data_dir` in this layout.
    pub fn path(self, data_dir: &Path, tenant: &TenantId) -> PathBuf {
        match self {
            Layout::Tenantd => store::layout::tenant_path(data_dir, tenant),
            Layout::Flat => data_dir.join(format!("{tenant}.db")),
        }
    }

    /// Lower-case name, as on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Tenantd => "tenantd",
            Layout::Flat => "flat",
        }
    }
}

/// Builds this layout's template at `scratch` (which must not exist), returns its bytes and
/// removes it. Errors: SQLite/store failures, I/O, or a template that did not close cleanly.
pub fn build(layout: Layout, scratch: &Path) -> Result<Vec<u8>, TemplateError> {
    match layout {
        Layout::Tenantd => store::connection::create_new(scratch, store::events::init_schema)
            .map_err(|source| TemplateError::Store {
                path: scratch.to_owned(),
                source,
            })?,
        Layout::Flat => create_flat(scratch).map_err(|source| TemplateError::Sqlite {
            path: scratch.to_owned(),
            source,
        })?,
    }
    let io = |source| TemplateError::Io {
        path: scratch.to_owned(),
        source,
    };
    let leftovers = store::layout::companion_paths(scratch)
        .iter()
        .any(|p| p.exists());
    let bytes = std::fs::read(scratch).map_err(io)?;
    std::fs::remove_file(scratch).map_err(io)?;
    if leftovers {
        return Err(TemplateError::NotClean(scratch.to_owned()));
    }
    Ok(bytes)
}

fn create_flat(path: &Path) -> rusqlite::Result<()> {
    let conn = rusqlite::Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(FLAT_SCHEMA)?;
    // Default close: checkpoint, delete -wal/-shm. The file stays in WAL mode (it is persistent).
    conn.close().map_err(|(_, e)| e)
}
