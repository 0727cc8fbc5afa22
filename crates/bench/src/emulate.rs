//! Emulating a smaller machine on a bigger one: a cgroup (v1) with a CPU quota and a memory
//! limit that the server under test is moved into, so `tenantd prove --emulate` can answer for
//! the machine a profile describes. The limits are computed by pure functions; the cgroup
//! files are the only I/O. Needs root and the v1 `cpu` and `memory` controllers.

use std::fs;
use std::path::{Path, PathBuf};

/// CFS period used for the CPU quota (the kernel's default, 100 ms).
pub const CPU_PERIOD_US: u64 = 100_000;

/// What the emulated machine offers the server.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Limits {
    /// CPUs the server may use (fractions allowed: 0.5 = half of one CPU).
    pub cpus: f64,
    /// Memory (RSS plus page cache charged to the server), bytes.
    pub memory_bytes: u64,
}

impl Limits {
    /// How reports name the emulation: `cgroup v1: 2 CPUs, 4000 MB of memory`.
    pub fn describe(&self) -> String {
        format!(
            "cgroup v1: {} CPUs, {} MB of memory",
            self.cpus,
            self.memory_bytes / 1_000_000
        )
    }
}

/// Why emulation cannot run here.
#[derive(Debug, thiserror::Error)]
pub enum EmulateError {
    /// A controller is not mounted as cgroup v1 at /sys/fs/cgroup/<name>.
    #[error(
        "the cgroup v1 `{0}` controller is not mounted at /sys/fs/cgroup/{0}: run without \
         --emulate (the report will say the numbers are native)"
    )]
    NoController(&'static str),
    /// A limit is out of range.
    #[error("cannot emulate {0}")]
    BadLimit(String),
    /// Creating or writing a cgroup file failed (usually: not root).
    #[error("cannot set up the cgroup {path}: {source} (emulation needs root)")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// The emulation limits for `machine` on this host: its vCPUs (at most the host's) and RAM.
pub fn limits_for(machine: &capacity::MachineProfile, host_cores: usize) -> Limits {
    Limits {
        cpus: machine.vcpu.min(host_cores as f64),
        memory_bytes: (machine.ram_gb * 1e9) as u64,
    }
}

/// Whether this host can emulate: root, with the v1 `cpu` and `memory` controllers mounted.
pub fn available() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    root && ["cpu", "memory"]
        .iter()
        .all(|c| Path::new("/sys/fs/cgroup").join(c).join("tasks").exists())
}

/// Whether the tests must emulate (`TENANTD_REQUIRE_CGROUP=1`, set by scripts/test.sh as root):
/// there a host that cannot is a failure, not a skip.
pub fn required_by_tests() -> bool {
    std::env::var_os("TENANTD_REQUIRE_CGROUP").is_some_and(|v| v == "1")
}

/// The CFS quota for `cpus` CPUs per [`CPU_PERIOD_US`], at least 1 ms (the kernel's minimum).
pub fn cpu_quota_us(cpus: f64) -> Result<u64, EmulateError> {
    if !(cpus.is_finite() && cpus > 0.0) {
        return Err(EmulateError::BadLimit(format!(
            "{cpus} CPUs: give a positive number"
        )));
    }
    Ok(((cpus * CPU_PERIOD_US as f64).round() as u64).max(1_000))
}

/// The cgroup path of this process for a v1 controller, from the text of /proc/self/cgroup
/// (`4:memory:/some/path`); `/` when it is not listed.
pub fn own_path(proc_self_cgroup: &str, controller: &str) -> String {
    proc_self_cgroup
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
            names
                .split(',')
                .any(|n| n == controller)
                .then(|| path.to_string())
        })
        .next()
        .unwrap_or_else(|| "/".to_string())
}

/// A pair of cgroups (cpu, memory) with limits; removed on drop once its processes exited.
#[derive(Debug)]
pub struct Cgroup {
    cpu: PathBuf,
    memory: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EmulateError + '_ {
    move |source| EmulateError::Io {
        path: path.to_owned(),
        source,
    }
}

fn write(path: &Path, value: impl ToString) -> Result<(), EmulateError> {
    fs::write(path, value.to_string()).map_err(io(path))
}

impl Cgroup {
    /// Creates `name` under this process's own cgroup in the cpu and memory controllers (so
    /// any limit already on this process still applies) and sets the limits.
    pub fn create(name: &str, limits: Limits) -> Result<Cgroup, EmulateError> {
        let quota = cpu_quota_us(limits.cpus)?;
        if limits.memory_bytes < 64 << 20 {
            return Err(EmulateError::BadLimit(format!(
                "{} bytes of memory: the server needs at least 64 MiB",
                limits.memory_bytes
            )));
        }
        let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let dir = |controller: &'static str| -> Result<PathBuf, EmulateError> {
            let root = Path::new("/sys/fs/cgroup").join(controller);
            if !root.join("tasks").exists() {
                return Err(EmulateError::NoController(controller));
            }
            let rel = own_path(&own, controller);
            let dir = root.join(rel.trim_start_matches('/')).join(name);
            fs::create_dir_all(&dir).map_err(io(&dir))?;
            Ok(dir)
        };
        let group = Cgroup {
            cpu: dir("cpu")?,
            memory: dir("memory")?,
        };
        write(&group.cpu.join("cpu.cfs_period_us"), CPU_PERIOD_US)?;
        write(&group.cpu.join("cpu.cfs_quota_us"), quota)?;
        write(
            &group.memory.join("memory.limit_in_bytes"),
            limits.memory_bytes,
        )?;
        Ok(group)
    }

    /// Moves a process (all its threads) into both cgroups.
    pub fn attach(&self, pid: u32) -> Result<(), EmulateError> {
        write(&self.cpu.join("cgroup.procs"), pid)?;
        write(&self.memory.join("cgroup.procs"), pid)
    }

    /// Peak memory charged to the cgroup since it was created, bytes.
    pub fn memory_peak_bytes(&self) -> Option<u64> {
        fs::read_to_string(self.memory.join("memory.max_usage_in_bytes"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// CFS periods in which the CPU quota stopped the server (`nr_throttled` of cpu.stat).
    pub fn throttled_periods(&self) -> Option<u64> {
        let stat = fs::read_to_string(self.cpu.join("cpu.stat")).ok()?;
        stat.lines()
            .find_map(|l| l.strip_prefix("nr_throttled "))?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Fails while a process is still inside; the server is stopped before this runs.
        let _ = fs::remove_dir(&self.cpu);
        let _ = fs::remove_dir(&self.memory);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emulation_takes_the_machines_cpus_up_to_the_hosts() {
        let fly = capacity::builtin::machine("fly-shared-cpu-2x").unwrap();
        let l = limits_for(&fly, 8);
        assert_eq!(l.cpus, fly.vcpu);
        assert_eq!(l.memory_bytes, (fly.ram_gb * 1e9) as u64);
        assert_eq!(limits_for(&fly, 1).cpus, 1.0);
    }

    #[test]
    fn quota_follows_the_cpu_count_with_the_kernel_minimum() {
        assert_eq!(cpu_quota_us(2.0).unwrap(), 200_000);
        assert_eq!(cpu_quota_us(0.125).unwrap(), 12_500);
        assert_eq!(cpu_quota_us(0.001).unwrap(), 1_000);
        assert!(cpu_quota_us(0.0).is_err());
        assert!(cpu_quota_us(f64::NAN).is_err());
    }

    #[test]
    fn own_path_reads_the_controller_line() {
        let text = "9:name=systemd:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/x\n0::/\n";
        assert_eq!(own_path(text, "memory"), "/process_api/abc");
        assert_eq!(own_path(text, "cpu"), "/x");
        assert_eq!(own_path(text, "blkio"), "/");
    }

    #[test]
    fn too_little_memory_is_refused_before_touching_cgroups() {
        let err = Cgroup::create(
            "never-created",
            Limits {
                cpus: 1.0,
                memory_bytes: 1 << 20,
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("64 MiB"), "{err}");
    }
}
