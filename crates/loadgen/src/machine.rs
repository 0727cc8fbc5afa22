//! The machine a run measured: CPU model, cores, RAM, kernel, and the filesystem of the data
//! directory, read from `/proc` (fields are "unknown" / 0 where it cannot be read).

use std::path::Path;

use serde::Serialize;

/// A description of this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachineInfo {
    /// `model name` of /proc/cpuinfo.
    pub cpu_model: String,
    /// CPUs this process may run on.
    pub cores: usize,
    /// MemTotal.
    pub ram_bytes: u64,
    /// Kernel release.
    pub kernel: String,
    /// Filesystem type (and device) holding `dir`.
    pub filesystem: String,
}

impl MachineInfo {
    /// One line for reports: `Intel(R) Xeon(R), 2 cores, 23.6 GiB RAM, Linux 6.1, ext4 (/dev/vda)`.
    pub fn describe(&self) -> String {
        format!(
            "{}, {} cores, {:.1} GiB RAM, Linux {}, {}",
            self.cpu_model,
            self.cores,
            self.ram_bytes as f64 / (1u64 << 30) as f64,
            self.kernel,
            self.filesystem
        )
    }

    /// Describes this machine and the filesystem of `dir`; never fails.
    pub fn detect(dir: &Path) -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpu_model = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|v| v.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let ram_bytes = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024);
        let kernel = match read("/proc/sys/kernel/osrelease").trim() {
            "" => "unknown".into(),
            k => k.into(),
        };
        MachineInfo {
            cpu_model,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            ram_bytes,
            kernel,
            filesystem: filesystem_of(dir, &read("/proc/self/mounts")),
        }
    }
}

/// "ext4 (/dev/sda1)": the mount in `mounts` (a /proc/mounts text) with the longest mount
/// point that is a prefix of `dir`.
fn filesystem_of(dir: &Path, mounts: &str) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, at, fs) = (f.next()?, f.next()?, f.next()?);
            dir.starts_with(at)
                .then(|| (at.len(), format!("{fs} ({dev})")))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "unknown".into(), |(_, fs)| fs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_this_machine() {
        let m = MachineInfo::detect(Path::new("/"));
        assert!(m.cores >= 1 && m.ram_bytes > 0);
        assert_ne!(m.kernel, "unknown");
        assert_ne!(m.filesystem, "unknown");
    }

    #[test]
    fn picks_the_longest_mount_point() {
        let mounts = "/dev/root / ext4 rw 0 0\ntmpfs /tmp tmpfs rw 0 0\n";
        assert_eq!(
            filesystem_of(Path::new("/tmp/x/y"), mounts),
            "tmpfs (tmpfs)"
        );
        assert_eq!(
            filesystem_of(Path::new("/var/x"), mounts),
            "ext4 (/dev/root)"
        );
    }
}
