//! The standard Prometheus `process_*` metrics of this process (RSS, CPU seconds, open fds,
//! threads), so a monitor or `tenantd bench load --metrics URL` on another machine sees what
//! `/proc/<pid>` shows locally. Read on each scrape from `getrusage` and `/proc/self`; a value
//! that cannot be read is left out rather than reported as 0.

use crate::metrics::sample;

/// Bytes resident, from the second field of `/proc/self/statm` (in pages).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// User + system CPU seconds of the whole process.
fn cpu_seconds() -> Option<f64> {
    // SAFETY: an all-zero rusage is a valid value for getrusage to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(secs(usage.ru_utime) + secs(usage.ru_stime))
}

/// Entries of a `/proc/self` directory (`fd`: open descriptors, `task`: threads).
fn entries(dir: &str) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/self/{dir}")).ok()?.count() as u64)
}

/// Appends the `process_*` metrics that could be read.
pub fn render(out: &mut String) {
    let mut metric = |name: &str, help: &str, kind: &str, v: Option<String>| {
        if let Some(v) = v {
            sample(out, name, help, kind, v);
        }
    };
    metric(
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        "gauge",
        resident_bytes().map(|v| v.to_string()),
    );
    metric(
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
        "counter",
        cpu_seconds().map(|v| format!("{v:.6}")),
    );
    // The read_dir handle itself is one of the fds it counts.
    metric(
        "process_open_fds",
        "Number of open file descriptors.",
        "gauge",
        entries("fd").map(|n| n.saturating_sub(1).to_string()),
    );
    metric(
        "process_threads",
        "Number of OS threads in the process.",
        "gauge",
        entries("task").map(|v| v.to_string()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_process_metric_is_read_on_linux() {
        let mut out = String::new();
        render(&mut out);
        for name in [
            "process_resident_memory_bytes",
            "process_cpu_seconds_total",
            "process_open_fds",
            "process_threads",
        ] {
            let line = out
                .lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("{name} missing:\n{out}"));
            let v: f64 = line.split(' ').nth(1).unwrap().parse().unwrap();
            assert!(v >= 0.0, "{line}");
        }
    }
}
