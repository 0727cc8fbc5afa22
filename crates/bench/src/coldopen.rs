//! `tenantd bench cold-open`: the cost of one cold tenant (open + one insert + close), measured
//! in one thread over N tenant files that are each opened once, per [`Variant`] and durability
//! mode. CPU is the thread's `getrusage` user+sys over the loop divided by N (it includes the
//! kernel's share: fsync, unlink, mmap); wall time is reported next to it. Syscalls and
//! profiles come from running the same command under `strace -c -f` / `perf record` on files
//! prepared with `tenantd bench provision` (`--prepared`); see `bench/coldopen.sh`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use store::{Durability, Locking, PoolConfig};

use crate::coldopen_variants::{CycleError, Variant};
use crate::names::{NameSet, NamesError, DEFAULT_PREFIX, DEFAULT_WIDTH};
use crate::provision::{self, Provision, ProvisionError};

/// A validated cold-open benchmark.
#[derive(Debug, Clone)]
pub struct ColdOpen {
    /// Scratch directory: one fresh subdirectory of provisioned files per run (removed after);
    /// with `prepared`, the already provisioned data directory itself (kept).
    pub dir: PathBuf,
    /// Tenants per run (each opened once).
    pub count: u64,
    /// Variants, in order.
    pub variants: Vec<Variant>,
    /// Durability modes (variants that ignore the mode run once per repetition).
    pub modes: Vec<Durability>,
    /// Runs of each variant and mode.
    pub repeat: u32,
    /// Locking mode of the pool's own open (the `tenantd` and `fast-close` variants).
    pub locking: Locking,
    /// Other tenants kept open during the loop (SQLite's per-process lists grow with them).
    pub hold: u64,
    /// `dir` already holds the files (one variant, one mode, one run; nothing is provisioned).
    pub prepared: bool,
}

/// One run of one variant.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sample {
    /// Variant name.
    pub variant: &'static str,
    /// `fsync`, `crash`, or `normal` for the seed (always `synchronous=NORMAL`).
    pub mode: &'static str,
    /// Repetition, from 1.
    pub run: u32,
    /// Cycles measured.
    pub cycles: u64,
    /// User CPU per cycle, µs.
    pub user_us: f64,
    /// System CPU per cycle, µs.
    pub sys_us: f64,
    /// User + system CPU per cycle, µs.
    pub cpu_us: f64,
    /// Wall time per cycle, µs.
    pub wall_us: f64,
}

/// Why the benchmark failed.
#[derive(Debug, thiserror::Error)]
pub enum ColdOpenError {
    /// The tenant names do not fit.
    #[error(transparent)]
    Names(#[from] NamesError),
    /// Provisioning the files failed.
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    /// A cycle failed.
    #[error("{variant} on {path}: {source}")]
    Cycle {
        /// The variant.
        variant: &'static str,
        /// The tenant file.
        path: PathBuf,
        /// What failed.
        source: CycleError,
    },
    /// Syncing or removing the scratch files failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The mode label of `variant` run under `mode`.
pub fn mode_label(variant: Variant, mode: Durability) -> &'static str {
    match (variant.uses_durability(), mode) {
        (false, _) => "normal",
        (true, Durability::Fsync) => "fsync",
        (true, Durability::Crash) => "crash",
    }
}

/// Runs every variant × mode × repetition; `each` sees every sample as it is made.
/// Errors: provisioning, a failed cycle, I/O on the scratch directory.
pub fn run(b: &ColdOpen, mut each: impl FnMut(&Sample)) -> Result<Vec<Sample>, ColdOpenError> {
    // The pool's process-wide SQLite settings, before the first connection.
    store::sys::configure_sqlite_once();
    store::sys::set_sqlite_heap_limit(store::config::DEFAULT_SQLITE_HEAP_LIMIT);
    let mut samples = Vec::new();
    for run in 1..=b.repeat {
        for &variant in &b.variants {
            let modes = if variant.uses_durability() {
                b.modes.as_slice()
            } else {
                &b.modes[..1]
            };
            for &mode in modes {
                let s = run_one(b, variant, mode, run)?;
                each(&s);
                samples.push(s);
            }
        }
    }
    Ok(samples)
}

fn run_one(
    b: &ColdOpen,
    variant: Variant,
    mode: Durability,
    run: u32,
) -> Result<Sample, ColdOpenError> {
    let label = mode_label(variant, mode);
    let names = NameSet::new(DEFAULT_PREFIX, DEFAULT_WIDTH, b.count + b.hold)?;
    let dir = if b.prepared {
        b.dir.clone()
    } else {
        let dir = b.dir.join(format!("{}-{label}-{run}", variant.as_str()));
        let _ = std::fs::remove_dir_all(&dir);
        let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
        provision::run(&Provision {
            data_dir: dir.clone(),
            names: names.clone(),
            layout: variant.layout(),
            jobs,
        })?;
        dir
    };
    let mut cfg = PoolConfig::new(&dir);
    cfg.durability = mode;
    cfg.locking = b.locking;
    let path = |i: u64| variant.layout().path(&dir, &names.name(i));
    let failed = |i: u64| {
        let path = path(i);
        move |source| ColdOpenError::Cycle {
            variant: variant.as_str(),
            path,
            source,
        }
    };
    if variant.needs_prepass() {
        for i in 0..b.count {
            variant.cycle(&path(i), &cfg, i).map_err(failed(i))?;
        }
    }
    let held = (b.count..b.count + b.hold)
        .map(|i| hold_open(variant, &path(i), &cfg).map_err(failed(i)))
        .collect::<Result<Vec<_>, _>>()?;
    if !b.prepared {
        sync_dir(&dir)?;
    }
    let (cpu0, wall0) = (thread_cpu(), Instant::now());
    for i in 0..b.count {
        variant
            .cycle(&path(i), &cfg, b.count + i)
            .map_err(failed(i))?;
    }
    let (cpu1, wall) = (thread_cpu(), wall0.elapsed());
    drop(held);
    if !b.prepared {
        std::fs::remove_dir_all(&dir).map_err(|source| ColdOpenError::Io {
            path: dir.clone(),
            source,
        })?;
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / b.count.max(1) as f64;
    let (user, sys) = (per(cpu1.0 - cpu0.0), per(cpu1.1 - cpu0.1));
    Ok(Sample {
        variant: variant.as_str(),
        mode: label,
        run,
        cycles: b.count,
        user_us: user,
        sys_us: sys,
        cpu_us: user + sys,
        wall_us: per(wall),
    })
}

/// Opens a tenant the variant's way and reads its schema, so its files stay open.
fn hold_open(
    variant: Variant,
    path: &Path,
    cfg: &PoolConfig,
) -> Result<rusqlite::Connection, CycleError> {
    let conn = variant.open(path, cfg)?;
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
    Ok(conn)
}

/// Flushes the provisioned files, so their writeback does not land in the measured loop.
fn sync_dir(dir: &Path) -> Result<(), ColdOpenError> {
    let io = |source| ColdOpenError::Io {
        path: dir.to_owned(),
        source,
    };
    let f = std::fs::File::open(dir).map_err(io)?;
    // SAFETY: syncfs takes any open file descriptor; `f` outlives the call.
    let rc = unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f)) };
    if rc != 0 {
        return Err(io(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// This thread's (user, system) CPU time so far.
fn thread_cpu() -> (Duration, Duration) {
    // SAFETY: getrusage writes one rusage struct into the zeroed value we own.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (tv(ru.ru_utime), tv(ru.ru_stime))
}
