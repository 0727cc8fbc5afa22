//! powerfs: a FUSE filesystem that simulates a power cut, to test what a program's fsyncs
//! really make durable.
//!
//! [`Mount::new`] mounts a view of a backing directory. Every operation passes through to the
//! backing directory at once (so reads see every write, and other programs see a normal
//! filesystem), while powerfs remembers what a disk would have kept so far:
//!
//! - **file data**: for each regular file, the length and the bytes of every 4 KiB page as they
//!   were at the file's last `fsync` or `fdatasync` (saved on the first write to a page after
//!   it; `tracked.rs`);
//! - **directory entries**: every create, mkdir, symlink, hard link, unlink, rmdir and rename
//!   since the last `fsync` of the directories it touched (both, for a rename across two);
//!   an unlinked entry waits in a hidden grave directory (`.powerfs-grave` in the backing
//!   root) until its removal is durable (`journal.rs`).
//!
//! Two models of directory changes ([`Metadata`]): `Posix` (the default, above: only an
//! fsync of the directory makes its changes durable) and `Ordered`, closer to ext4 and XFS,
//! whose journal commits metadata changes in order: any fsync (of a file or a directory)
//! makes every directory change made before it durable. File data follows the same rule in
//! both.
//!
//! [`Mount::cut`] is the power cut: every later operation fails with `EIO`, each file gets
//! its durable pages and length back, directory changes are undone newest first, and the
//! mount is detached. The backing directory then holds what a disk would hold after losing
//! power, and can be mounted again (or used directly) to restart the program on it.
//! [`Mount::unmount`] is a clean shutdown: everything becomes durable.
//!
//! What it models, and what it does not:
//! - a write is lost or kept whole per 4 KiB page: no torn sector writes, no reordering inside
//!   an unsynced file (a cut always returns to the last sync, never to a mix of older and newer
//!   unsynced pages), no bit rot; `fdatasync` is treated as `fsync`;
//! - an fsynced file whose directory entry was never fsynced disappears on a cut (strict POSIX;
//!   ext4 and XFS usually keep it);
//! - metadata other than length and names (mode, owner, times) is not rolled back;
//! - `syncfs(2)` and `sync(2)` are not seen by themselves: the Linux kernel does not forward
//!   them to a FUSE server (only virtiofs gets them). A program that relies on `syncfs` runs
//!   with [`syncfs_env`] (the preloaded shim [`SYNCFS_SHIM`] fsyncs the control file
//!   [`SYNCFS_FILE`] after each `syncfs`, and powerfs makes everything durable); without it,
//!   its writes are lost on a cut although a real disk would keep them. `sync(2)` stays unseen;
//! - shared `mmap` writes (SQLite's `-shm` WAL index) reach powerfs when the kernel writes the
//!   pages back, and are never fsynced, so a cut returns a `-shm` file to an older content.
//!   SQLite rebuilds the WAL index from the WAL when the first connection opens a database
//!   after a crash, so that content does not matter; tenant databases do not map their main
//!   file (SQLite's default `mmap_size` is 0, and the catalog sets it to 0 explicitly);
//! - POSIX and `flock` locks are kept by the kernel (powerfs does not implement them), which is
//!   right for one mount; `fallocate` is refused (`posix_fallocate` then writes zeros).
//!
//! Modules: `tracked.rs` (one file's durable image), `journal.rs` (directory changes),
//! `fs.rs` (the FUSE operations). The `powerfs` binary mounts from the command line and cuts
//! on `SIGUSR1`.
//!
//! ```no_run
//! let m = powerfs::Mount::new("/tmp/backing".as_ref(), "/tmp/mnt".as_ref()).unwrap();
//! std::fs::write("/tmp/mnt/unsynced", b"lost on a cut").unwrap();
//! let report = m.cut();
//! assert_eq!(report.dir_ops, 1);
//! assert!(!std::path::Path::new("/tmp/backing/unsynced").exists());
//! ```

#![deny(missing_docs)]

mod fs;
pub mod journal;
pub mod tracked;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

pub use fs::{GRAVE, SYNCFS_FILE};

/// The shared object to preload into a program under test so that its `syncfs(2)` reaches
/// powerfs (`shim/syncfs.rs`, built by `build.rs`).
pub const SYNCFS_SHIM: &str = env!("POWERFS_SYNCFS_SHIM");

/// The environment that makes a program's `syncfs` calls durable under the mount at
/// `mountpoint`: `LD_PRELOAD` of [`SYNCFS_SHIM`] and `POWERFS_SYNCFS`, the control file.
pub fn syncfs_env(mountpoint: &Path) -> [(&'static str, std::ffi::OsString); 2] {
    [
        ("LD_PRELOAD", SYNCFS_SHIM.into()),
        (
            "POWERFS_SYNCFS",
            mountpoint.join(SYNCFS_FILE).into_os_string(),
        ),
    ]
}

/// What a cut undid.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CutReport {
    /// Files that had unsynced writes.
    pub files: usize,
    /// Pages written back to their durable content.
    pub pages: usize,
    /// Directory changes undone.
    pub dir_ops: usize,
    /// Restorations that failed (printed on stderr).
    pub failed: usize,
}

/// When a directory change (create, unlink, rename, mkdir, ...) becomes durable.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Metadata {
    /// Once every directory it touched is fsynced after it (what POSIX promises).
    #[default]
    Posix,
    /// At the next fsync of anything (a journaling filesystem committing metadata in order).
    Ordered,
}

/// A mounted powerfs; dropping it unmounts without making anything durable or undoing it.
pub struct Mount {
    state: Arc<Mutex<fs::State>>,
    session: Option<fuser::BackgroundSession>,
    mountpoint: PathBuf,
}

impl Mount {
    /// Mounts a view of `backing` at `mountpoint` (both existing directories). Needs
    /// `/dev/fuse` and root or the `fusermount3` binary. Errors from opening `backing` or
    /// from the mount.
    pub fn new(backing: &Path, mountpoint: &Path) -> io::Result<Mount> {
        Self::with_metadata(backing, mountpoint, Metadata::Posix)
    }

    /// [`Mount::new`] with the given model of directory changes. Errors as `new`.
    pub fn with_metadata(
        backing: &Path,
        mountpoint: &Path,
        metadata: Metadata,
    ) -> io::Result<Mount> {
        let state = Arc::new(Mutex::new(fs::State::new(backing, metadata)?));
        let fs = fs::PowerFs {
            state: state.clone(),
        };
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            fuser::MountOption::FSName("powerfs".into()),
            fuser::MountOption::DefaultPermissions,
        ];
        let session = fuser::spawn_mount(fs, mountpoint, &config)?;
        Ok(Mount {
            state,
            session: Some(session),
            mountpoint: mountpoint.to_owned(),
        })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    /// Power cut: undoes everything not durable (see the crate docs), fails every later
    /// operation with `EIO` and detaches the mount (programs with open files keep them until
    /// they close them or exit).
    pub fn cut(mut self) -> CutReport {
        let report = self.state.lock().cut();
        self.detach();
        report
    }

    /// Clean unmount: everything written becomes durable. Errors from the unmount (busy if a
    /// program still has files open: then it is detached lazily).
    pub fn unmount(mut self) -> io::Result<()> {
        self.state.lock().sync_all();
        match self.session.take() {
            Some(s) => s.umount_and_join(),
            None => Ok(()),
        }
    }

    fn detach(&mut self) {
        if let Some(session) = self.session.take() {
            // A lazy unmount: the mount point is free at once even while programs keep files
            // open on it (a plain unmount would fail with EBUSY). The serving thread ends when
            // the kernel drops the connection, after the last such file is closed; nothing
            // waits for it.
            let c = std::ffi::CString::new(self.mountpoint.as_os_str().as_encoded_bytes())
                .expect("paths have no NUL");
            // SAFETY: umount2 reads a valid C string.
            if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
                let e = io::Error::last_os_error();
                eprintln!("powerfs: cannot detach {}: {e}", self.mountpoint.display());
            }
            drop(session);
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        self.detach();
    }
}
