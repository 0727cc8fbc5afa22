//! Provisioning: writes one copy of a template tenant file to each benchmark tenant's path.
//!
//! Creating 100,000 tenants through the admin API takes minutes (each is a SQLite create, a
//! checkpoint and two fsyncs); copying a ~30 KiB template takes seconds. Files are written with
//! `create_new`, so provisioning never overwrites a tenant. Nothing is fsynced: the benchmark
//! runner calls `sync` afterwards so writeback does not overlap a measurement.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::names::NameSet;
use crate::template::{self, Layout, TemplateError};

/// A validated provisioning request.
#[derive(Debug, Clone)]
pub struct Provision {
    /// The data directory (as passed to the server under test).
    pub data_dir: PathBuf,
    /// The tenants to create.
    pub names: NameSet,
    /// Where and in which shape.
    pub layout: Layout,
    /// Writer threads (at least 1).
    pub jobs: usize,
}

/// What a provisioning run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Tenant files written.
    pub files: u64,
    /// Size of each file (the template), bytes.
    pub file_bytes: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// Why provisioning failed (files already written are left in place).
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The template could not be built.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A tenant file already exists: provisioning never overwrites.
    #[error("{0} already exists (provision into an empty data directory)")]
    Exists(PathBuf),
    /// Creating a directory or writing a file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The path being written.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Builds the node catalog (`<data>/catalog.db`) from the tenant files, as `tenantd serve`
/// does on its first start; returns the tenants read and the time it took. Errors: the
/// catalog's (an unreadable tenant file is one).
pub fn build_catalog(data_dir: &Path) -> Result<(usize, Duration), store::catalog::CatalogError> {
    use store::catalog::{catalog_path, Catalog, CatalogConfig};
    let started = Instant::now();
    let catalog = Catalog::open(
        &catalog_path(data_dir),
        CatalogConfig::new(store::Durability::Fsync),
    )?;
    let report = catalog.rebuild_all(data_dir)?;
    if let Some((_, e)) = report.failures.into_iter().next() {
        return Err(e);
    }
    catalog.close()?;
    Ok((report.tenants, started.elapsed()))
}

/// The tenant indices writer `job` of `jobs` handles: every `jobs`-th index from `job`.
pub fn share(count: u64, jobs: usize, job: usize) -> impl Iterator<Item = u64> {
    let jobs = jobs.max(1) as u64;
    (job as u64..count).step_by(jobs as usize)
}

/// Writes the template to every tenant path. Errors: template, an existing file, I/O.
pub fn run(p: &Provision) -> Result<Report, ProvisionError> {
    let started = Instant::now();
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ProvisionError::Io { path, source }
    };
    std::fs::create_dir_all(&p.data_dir).map_err(io(&p.data_dir))?;
    let scratch = p
        .data_dir
        .join(format!(".bench-template-{}.db", std::process::id()));
    let bytes = template::build(p.layout, &scratch)?;
    let jobs = p.jobs.max(1);
    let bytes = bytes.as_slice();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..jobs)
            .map(|job| s.spawn(move || write_share(p, bytes, job, jobs)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("provisioning thread panicked"))
            .collect::<Result<Vec<()>, _>>()
    })?;
    Ok(Report {
        files: p.names.len(),
        file_bytes: bytes.len() as u64,
        elapsed: started.elapsed(),
    })
}

fn write_share(p: &Provision, bytes: &[u8], job: usize, jobs: usize) -> Result<(), ProvisionError> {
    // Fan-out directories are shared by many tenants: create each one once per thread.
    let mut made: HashSet<PathBuf> = HashSet::new();
    for i in share(p.names.len(), jobs, job) {
        let path = p.layout.path(&p.data_dir, &p.names.name(i));
        if let Some(dir) = path.parent() {
            if !made.contains(dir) {
                std::fs::create_dir_all(dir).map_err(|source| ProvisionError::Io {
                    path: dir.to_owned(),
                    source,
                })?;
                made.insert(dir.to_owned());
            }
        }
        let mut file = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(ProvisionError::Exists(path))
            }
            Err(source) => return Err(ProvisionError::Io { path, source }),
        };
        file.write_all(bytes)
            .map_err(|source| ProvisionError::Io { path, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_every_index_exactly_once() {
        for (count, jobs) in [(0, 1), (1, 2), (10, 3), (7, 7), (5, 8)] {
            let mut all: Vec<u64> = (0..jobs).flat_map(|j| share(count, jobs, j)).collect();
            all.sort();
            assert_eq!(all, (0..count).collect::<Vec<_>>(), "{count} over {jobs}");
        }
    }

    #[test]
    fn zero_jobs_means_one() {
        assert_eq!(share(3, 0, 0).collect::<Vec<_>>(), vec![0, 1, 2]);
    }
}
