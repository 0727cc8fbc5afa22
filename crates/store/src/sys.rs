//! Process-wide resources the pool depends on: the file-descriptor limit, SQLite's heap limit,
//! and handing freed memory back to the OS.

use std::io;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the new soft limit.
pub fn raise_fd_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit; raising the soft limit up to the hard one is allowed.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(io::Error::last_os_error());
        }
        lim.rlim_cur = lim.rlim_max;
    }
    Ok(lim.rlim_cur)
}

/// Process-wide SQLite settings that must be made before SQLite initialises (the first
/// connection): no per-connection lookaside buffer. A tenant connection lives for a few requests;
/// its 48 KiB lookaside (touched when it is set up) was a fifth of an open tenant's RSS and an
/// allocation on every open. Returns false if SQLite was already initialised in this process
/// (then the default stays; nothing else changes).
pub fn configure_sqlite_once() -> bool {
    static DONE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *DONE.get_or_init(|| {
        // SAFETY: sqlite3_config is called with the documented arguments for
        // SQLITE_CONFIG_LOOKASIDE (two ints); it fails cleanly (SQLITE_MISUSE) if SQLite is
        // already initialised, and OnceLock keeps two threads from calling it together.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_config(
                rusqlite::ffi::SQLITE_CONFIG_LOOKASIDE,
                0 as std::ffi::c_int,
                0 as std::ffi::c_int,
            )
        };
        rc == rusqlite::ffi::SQLITE_OK
    })
}

/// Sets SQLite's process-wide soft heap limit (0 = none): past it, SQLite recycles page-cache
/// memory before allocating more.
pub fn set_sqlite_heap_limit(bytes: u64) {
    let limit = i64::try_from(bytes).unwrap_or(i64::MAX);
    // SAFETY: sqlite3_soft_heap_limit64 is thread-safe and takes any non-negative value.
    unsafe {
        rusqlite::ffi::sqlite3_soft_heap_limit64(limit);
    }
}

/// Bytes SQLite has allocated right now, process-wide.
pub fn sqlite_memory_used() -> i64 {
    // SAFETY: sqlite3_memory_used only reads a counter.
    unsafe { rusqlite::ffi::sqlite3_memory_used() }
}

/// Caps glibc's malloc arenas at `n` (its default is 8 per core). Each thread that finds the
/// arenas busy gets one of its own, and memory freed into an arena stays there: a backup round
/// (snapshots and compressed bodies, freed on many blocking threads) left RSS several MB higher
/// per arena, round after round (docs/BACKUP.md "Measured"). Does nothing if the user set
/// `MALLOC_ARENA_MAX` or `GLIBC_TUNABLES` (theirs wins) or off glibc. Call it before threads
/// start. Returns whether the cap was set.
pub fn limit_malloc_arenas(n: usize) -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_some()
            || std::env::var_os("GLIBC_TUNABLES").is_some()
        {
            return false;
        }
        let n = std::ffi::c_int::try_from(n.max(1)).unwrap_or(std::ffi::c_int::MAX);
        // SAFETY: mallopt with M_ARENA_MAX takes any positive int; it only sets a limit.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, n) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = n;
        false
    }
}

/// Returns free heap pages to the OS (glibc keeps them otherwise, and RSS would stay at its peak
/// after a burst of open tenants).
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Flushes every dirty page and inode of the filesystem holding `dir` to disk (`syncfs(2)`):
/// one call makes every tenant file written since durable, however many there are.
/// Errors: opening `dir`, or the sync's I/O error.
pub fn sync_filesystem(dir: &std::path::Path) -> io::Result<()> {
    let f = std::fs::File::open(dir)?;
    // SAFETY: syncfs takes any open file descriptor; `f` outlives the call.
    let rc = unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f)) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
