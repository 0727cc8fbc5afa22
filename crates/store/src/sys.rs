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

/// Returns free heap pages to the OS (glibc keeps them otherwise, and RSS would stay at its peak
/// after a burst of open tenants).
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
