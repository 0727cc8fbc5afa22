//! `libpowerfs_syncfs.so`, preloaded (`LD_PRELOAD`) into a program under test so that powerfs
//! sees its `syncfs(2)` calls, which the kernel does not forward to a FUSE server.
//!
//! Its `syncfs` runs the real one, then fsyncs the control file named by `POWERFS_SYNCFS`
//! (`<mountpoint>/.powerfs-syncfs`); powerfs takes an fsync of that file as a `syncfs` of the
//! whole mount: every file's data and every directory change become durable. Without the
//! variable it is the real `syncfs` only. Built by `build.rs` with the same `rustc`, no crates.

use std::ffi::{c_char, c_int, c_void};

extern "C" {
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
}

/// glibc's `RTLD_NEXT`: the next object after this one in the search order.
const RTLD_NEXT: *mut c_void = -1isize as *mut c_void;

type SyncFs = unsafe extern "C" fn(c_int) -> c_int;

/// # Safety
/// The contract of `syncfs(2)`: `fd` is any value; an invalid one gets `EBADF`.
#[no_mangle]
pub unsafe extern "C" fn syncfs(fd: c_int) -> c_int {
    // SAFETY: a NUL-terminated name; RTLD_NEXT finds libc's syncfs, which has this signature.
    let real = unsafe { dlsym(RTLD_NEXT, c"syncfs".as_ptr()) };
    let rc = if real.is_null() {
        0
    } else {
        // SAFETY: `real` is libc's `syncfs` (checked non-null above).
        unsafe { std::mem::transmute::<*mut c_void, SyncFs>(real)(fd) }
    };
    if rc != 0 {
        return rc;
    }
    match std::env::var_os("POWERFS_SYNCFS") {
        Some(control) => match std::fs::File::open(control).and_then(|f| f.sync_all()) {
            Ok(()) => 0,
            Err(_) => -1, // errno is set by the failed open or fsync
        },
        None => 0,
    }
}
