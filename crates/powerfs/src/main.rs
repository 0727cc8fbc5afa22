//! `powerfs [--ordered] BACKING MOUNTPOINT`: mounts (`--ordered`: any fsync makes every
//! earlier directory change durable, see `Metadata`), prints `powerfs: mounted` and waits. `SIGUSR1` cuts
//! the power (undoes everything not durable, detaches) and exits 0 after printing what it
//! undid; `SIGTERM` or `SIGINT` unmounts cleanly (everything becomes durable).

use std::path::PathBuf;

fn main() {
    let mut args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let metadata = match args.first().and_then(|a| a.to_str()) {
        Some("--ordered") => {
            args.remove(0);
            powerfs::Metadata::Ordered
        }
        _ => powerfs::Metadata::Posix,
    };
    let [backing, mountpoint] = args.as_slice() else {
        eprintln!(
            "usage: powerfs [--ordered] BACKING MOUNTPOINT (SIGUSR1 cuts the power, SIGTERM \
             unmounts)"
        );
        std::process::exit(2);
    };
    // Block the signals before any thread starts, so they are only taken by `sigwait` below.
    // SAFETY: a sigset we own, filled and installed as this thread's mask before any other
    // thread exists; threads spawned later inherit it.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGUSR1, libc::SIGTERM, libc::SIGINT] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let mount = match powerfs::Mount::with_metadata(backing, mountpoint, metadata) {
        Ok(m) => m,
        Err(e) => {
            eprintln!(
                "powerfs: cannot mount {} at {}: {e}",
                backing.display(),
                mountpoint.display()
            );
            std::process::exit(1);
        }
    };
    println!("powerfs: mounted");
    let mut sig = 0;
    // SAFETY: waits for one of the blocked signals in `set`.
    unsafe { libc::sigwait(&set, &mut sig) };
    if sig == libc::SIGUSR1 {
        let r = mount.cut();
        println!(
            "powerfs: cut: {} files restored ({} pages), {} directory changes undone, {} failed",
            r.files, r.pages, r.dir_ops, r.failed
        );
        std::process::exit(if r.failed == 0 { 0 } else { 1 });
    }
    if let Err(e) = mount.unmount() {
        eprintln!("powerfs: unmount: {e}");
        std::process::exit(1);
    }
    println!("powerfs: unmounted");
}
