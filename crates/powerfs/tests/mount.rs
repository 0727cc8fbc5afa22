//! The `powerfs` binary over a real FUSE mount: what survives a `SIGUSR1` cut. Skips (with a
//! message) without `/dev/fuse` or root, unless `TENANTD_REQUIRE_FUSE=1`.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn fuse_usable() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let ok = root
        && std::fs::File::options()
            .read(true)
            .write(true)
            .open("/dev/fuse")
            .is_ok();
    if !ok {
        assert!(
            std::env::var("TENANTD_REQUIRE_FUSE").as_deref() != Ok("1"),
            "TENANTD_REQUIRE_FUSE=1 but /dev/fuse is not usable (root: {root})"
        );
        eprintln!("skipped: needs root and /dev/fuse (set TENANTD_REQUIRE_FUSE=1 to fail instead)");
    }
    ok
}

/// A temp dir with an empty `backing` and `mnt` in it.
fn dirs() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let (backing, mnt) = (tmp.path().join("backing"), tmp.path().join("mnt"));
    std::fs::create_dir(&backing).unwrap();
    std::fs::create_dir(&mnt).unwrap();
    (tmp, backing, mnt)
}

struct Powerfs(Child);

impl Drop for Powerfs {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mount(backing: &Path, mnt: &Path) -> Powerfs {
    let mut child = Command::new(env!("CARGO_BIN_EXE_powerfs"))
        .arg(backing)
        .arg(mnt)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "powerfs: mounted");
    Powerfs(child)
}

/// Sends `sig` and waits (bounded) for the exit; returns what it printed.
fn stop(mut p: Powerfs, sig: i32) -> String {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(p.0.id() as i32, sig) };
    let deadline = Instant::now() + Duration::from_secs(30);
    while p.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "powerfs did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut out = String::new();
    std::io::Read::read_to_string(p.0.stdout.as_mut().unwrap(), &mut out).unwrap();
    out
}

#[test]
fn a_cut_keeps_exactly_what_was_fsynced() {
    if !fuse_usable() {
        return;
    }
    let (_tmp, backing, mnt) = dirs();
    std::fs::write(backing.join("old"), b"durable").unwrap();
    std::fs::write(backing.join("doomed"), b"still here").unwrap();
    let p = mount(&backing, &mnt);

    // A file and its entry both synced: kept.
    let mut f = std::fs::File::create(mnt.join("synced")).unwrap();
    f.write_all(b"one").unwrap();
    f.sync_all().unwrap();
    std::fs::File::open(&mnt).unwrap().sync_all().unwrap();
    f.write_all(b" two").unwrap(); // after the sync: lost
    assert_eq!(std::fs::read(mnt.join("synced")).unwrap(), b"one two");
    // Synced data, entry never synced: gone.
    let mut g = std::fs::File::create(mnt.join("no-dirsync")).unwrap();
    g.write_all(b"x").unwrap();
    g.sync_all().unwrap();
    // Overwritten and unlinked without syncs: back as it was.
    std::fs::write(mnt.join("old"), b"changed!").unwrap();
    std::fs::remove_file(mnt.join("doomed")).unwrap();
    // Written without fsync, then syncfs(2) on the mount.
    std::fs::write(mnt.join("old"), b"changed by syncfs?").unwrap();
    let d = std::fs::File::open(&mnt).unwrap();
    // SAFETY: syncfs on a descriptor we own.
    assert_eq!(unsafe { libc::syncfs(d.as_raw_fd()) }, 0);
    drop((f, g, d));

    let out = stop(p, libc::SIGUSR1);
    assert!(out.contains("powerfs: cut:"), "{out}");
    let mut names: Vec<String> = std::fs::read_dir(&backing)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != powerfs::GRAVE && n != powerfs::SYNCFS_FILE)
        .collect();
    names.sort();
    assert_eq!(names, ["doomed", "old", "synced"]);
    assert_eq!(std::fs::read(backing.join("synced")).unwrap(), b"one");
    assert_eq!(
        std::fs::read(backing.join("doomed")).unwrap(),
        b"still here"
    );
    // syncfs is not forwarded to FUSE servers, so powerfs cannot honour it (see the crate
    // docs): the write before it is lost.
    assert_eq!(std::fs::read(backing.join("old")).unwrap(), b"durable");
}

#[test]
fn a_syncfs_through_the_preloaded_shim_makes_everything_durable() {
    if !fuse_usable() {
        return;
    }
    let (_tmp, backing, mnt) = dirs();
    let p = mount(&backing, &mnt);
    std::fs::create_dir(mnt.join("d")).unwrap();
    std::fs::write(mnt.join("d/f"), b"kept by syncfs").unwrap();
    // The control file is found by name but not listed.
    let listed: Vec<_> = std::fs::read_dir(&mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(listed, ["d"]);
    assert!(mnt.join(powerfs::SYNCFS_FILE).exists());

    // coreutils' `sync -f` calls syncfs(2): once without the shim (not seen), once with it.
    let sync = |env: &[(&str, std::ffi::OsString)]| {
        let st = Command::new("sync")
            .arg("-f")
            .arg(&mnt)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .status()
            .unwrap();
        assert!(st.success());
    };
    sync(&[]);
    std::fs::write(mnt.join("after-plain-sync"), b"x").unwrap();
    sync(&[]);
    std::fs::write(mnt.join("d/f"), b"kept by syncfs, then changed").unwrap();
    sync(&powerfs::syncfs_env(&mnt));
    std::fs::write(mnt.join("after-shim-sync"), b"lost").unwrap();

    let out = stop(p, libc::SIGUSR1);
    assert!(out.contains("powerfs: cut:"), "{out}");
    assert_eq!(
        std::fs::read(backing.join("d/f")).unwrap(),
        b"kept by syncfs, then changed"
    );
    assert!(
        backing.join("after-plain-sync").exists(),
        "made durable by the later shim syncfs"
    );
    assert!(!backing.join("after-shim-sync").exists());
}

#[test]
fn a_syncfs_without_the_shim_is_not_seen() {
    if !fuse_usable() {
        return;
    }
    let (_tmp, backing, mnt) = dirs();
    let p = mount(&backing, &mnt);
    std::fs::write(mnt.join("f"), b"x").unwrap();
    let st = Command::new("sync").arg("-f").arg(&mnt).status().unwrap();
    assert!(st.success());
    stop(p, libc::SIGUSR1);
    assert!(!backing.join("f").exists());
}

#[test]
fn a_clean_unmount_keeps_everything() {
    if !fuse_usable() {
        return;
    }
    let (_tmp, backing, mnt) = dirs();
    std::fs::write(backing.join("gone"), b"x").unwrap();
    let p = mount(&backing, &mnt);
    std::fs::create_dir(mnt.join("d")).unwrap();
    std::fs::write(mnt.join("d/f"), b"kept").unwrap();
    std::fs::rename(mnt.join("d/f"), mnt.join("d/g")).unwrap();
    std::fs::remove_file(mnt.join("gone")).unwrap();
    let out = stop(p, libc::SIGTERM);
    assert!(out.contains("powerfs: unmounted"), "{out}");
    assert_eq!(std::fs::read(backing.join("d/g")).unwrap(), b"kept");
    assert!(!backing.join("gone").exists());
    assert_eq!(
        std::fs::read_dir(backing.join(powerfs::GRAVE))
            .unwrap()
            .count(),
        0
    );
}
