//! The emulation cgroup against the real kernel: limits written, a process moved in, the
//! memory charged to it visible. Needs root and the cgroup v1 cpu and memory controllers:
//! scripts/test.sh run as root (CI) sets TENANTD_REQUIRE_CGROUP=1 and then a host without them
//! fails; elsewhere the test says it skipped.

use bench::emulate::{self, Cgroup, Limits};

fn skip() -> bool {
    if emulate::available() {
        return false;
    }
    assert!(
        !emulate::required_by_tests(),
        "TENANTD_REQUIRE_CGROUP=1 but this host cannot emulate (root + cgroup v1 cpu, memory)"
    );
    eprintln!("skipped: not root, or no cgroup v1 cpu and memory controllers");
    true
}

#[test]
fn a_process_moved_into_the_cgroup_runs_under_its_limits() {
    if skip() {
        return;
    }
    let limits = Limits {
        cpus: 0.5,
        memory_bytes: 256 << 20,
    };
    let name = format!("tenantd-test-{}", std::process::id());
    let group = Cgroup::create(&name, limits).expect("cgroup v1 cpu+memory as root (CI)");
    // A child that waits (on its stdin) until it is killed.
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg("read _")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    group.attach(child.id()).unwrap();
    let procs = |controller: &str| {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let rel = bench::emulate::own_path(&own, controller);
        let dir = std::path::Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(rel.trim_start_matches('/'))
            .join(&name);
        (
            std::fs::read_to_string(dir.join("cgroup.procs")).unwrap(),
            dir,
        )
    };
    let (cpu_procs, cpu_dir) = procs("cpu");
    let (mem_procs, mem_dir) = procs("memory");
    assert!(cpu_procs.lines().any(|l| l == child.id().to_string()));
    assert!(mem_procs.lines().any(|l| l == child.id().to_string()));
    let read = |p: std::path::PathBuf| std::fs::read_to_string(p).unwrap().trim().to_string();
    assert_eq!(read(cpu_dir.join("cpu.cfs_quota_us")), "50000");
    assert_eq!(
        read(mem_dir.join("memory.limit_in_bytes")),
        (256u64 << 20).to_string()
    );
    assert!(group.memory_peak_bytes().is_some());
    assert!(group.throttled_periods().is_some());
    child.kill().unwrap();
    child.wait().unwrap();
    drop(group);
    assert!(!cpu_dir.exists() && !mem_dir.exists(), "removed once empty");
}
