//! The FUSE filesystem: [`PowerFs`] passes every operation through to the backing directory,
//! recording in [`State`] what a power cut must undo (file data through `TrackedFile`,
//! directory changes through `Journal`). One mutex covers all of it, so a cut never
//! interleaves with an operation; after a cut every operation fails with `EIO`.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use parking_lot::Mutex;

use crate::journal::Journal;
use crate::tracked::TrackedFile;
use crate::{CutReport, Metadata};

/// Name of the grave directory inside the backing root, hidden from the mount.
pub const GRAVE: &str = ".powerfs-grave";
/// Name of the control file in the root: an fsync of it is taken as `syncfs(2)` of the whole
/// mount (the kernel does not forward `syncfs` to FUSE; `shim/syncfs.rs` turns a program's
/// `syncfs` into this fsync). Hidden from listings, found by name.
pub const SYNCFS_FILE: &str = ".powerfs-syncfs";
/// How long the kernel may cache attributes and names: every change goes through us, so its
/// caches stay true.
const TTL: Duration = Duration::from_secs(1);

/// Everything a cut needs, behind one lock.
#[derive(Debug)]
pub(crate) struct State {
    root: PathBuf,
    /// Backing inode number of the root (swapped with FUSE's root number 1).
    root_ino: u64,
    /// FUSE inode -> one backing path of it.
    paths: HashMap<u64, PathBuf>,
    /// FUSE inode -> its open backing file, for every regular file opened so far.
    files: HashMap<u64, TrackedFile>,
    journal: Journal,
    metadata: Metadata,
    /// Set by a cut: the disk is gone.
    dead: bool,
}

impl State {
    pub(crate) fn new(root: &Path, metadata: Metadata) -> io::Result<Self> {
        let root = root.canonicalize()?;
        let root_ino = root.metadata()?.ino();
        let journal = Journal::new(root.join(GRAVE))?;
        File::options()
            .create(true)
            .append(true)
            .open(root.join(SYNCFS_FILE))?;
        let mut paths = HashMap::new();
        paths.insert(1, root.clone());
        Ok(State {
            root,
            root_ino,
            paths,
            files: HashMap::new(),
            journal,
            metadata,
            dead: false,
        })
    }

    /// Power cut: restores every file's durable image, undoes directory changes, then fails
    /// everything.
    pub(crate) fn cut(&mut self) -> CutReport {
        let mut report = CutReport::default();
        for t in self.files.values_mut() {
            if t.is_dirty() {
                report.files += 1;
            }
            match t.cut() {
                Ok(n) => report.pages += n,
                Err(e) => {
                    eprintln!("powerfs: cannot restore a file: {e}");
                    report.failed += 1;
                }
            }
        }
        let undone = self.journal.cut();
        report.dir_ops = undone.ops;
        report.failed += undone.failed;
        self.dead = true;
        report
    }

    /// Clean unmount: everything written becomes durable.
    pub(crate) fn sync_all(&mut self) {
        for t in self.files.values_mut() {
            t.sync();
        }
        self.journal.sync_all();
    }

    fn fuse_ino(&self, backing: u64) -> u64 {
        match backing {
            b if b == self.root_ino => 1,
            1 => self.root_ino,
            b => b,
        }
    }

    fn path(&self, ino: INodeNo) -> Result<PathBuf, Errno> {
        self.paths.get(&ino.0).cloned().ok_or(Errno::ENOENT)
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        if parent.0 == 1 && name == GRAVE {
            return Err(Errno::ENOENT);
        }
        Ok(self.path(parent)?.join(name))
    }

    fn attr_of(&self, md: &std::fs::Metadata) -> FileAttr {
        attr(self.fuse_ino(md.ino()), md)
    }

    /// Stats `path`, remembers its inode's path, returns its attributes.
    fn entry(&mut self, path: PathBuf) -> Result<FileAttr, Errno> {
        let md = path.symlink_metadata().map_err(errno)?;
        let a = self.attr_of(&md);
        self.paths.insert(a.ino.0, path);
        Ok(a)
    }

    fn tracked(&mut self, ino: INodeNo) -> Result<&mut TrackedFile, Errno> {
        if !self.files.contains_key(&ino.0) {
            let path = self.path(ino)?;
            let f = File::options()
                .read(true)
                .write(true)
                .open(&path)
                .or_else(|_| File::open(&path))
                .map_err(errno)?;
            self.files.insert(ino.0, TrackedFile::new(f));
        }
        Ok(self.files.get_mut(&ino.0).expect("inserted above"))
    }

    fn getattr(&self, ino: INodeNo) -> Result<FileAttr, Errno> {
        let md = match self.files.get(&ino.0) {
            Some(t) => t.file().metadata(),
            None => self.path(ino)?.symlink_metadata(),
        }
        .map_err(errno)?;
        Ok(self.attr_of(&md))
    }

    /// Updates every remembered path under `from` to be under `to`.
    fn renamed(&mut self, from: &Path, to: &Path) {
        for p in self.paths.values_mut() {
            if let Ok(rest) = p.strip_prefix(from) {
                *p = if rest.as_os_str().is_empty() {
                    to.to_owned()
                } else {
                    to.join(rest)
                };
            }
        }
    }
}

/// The filesystem handed to `fuser`; shares its state with the [`crate::Mount`].
pub(crate) struct PowerFs {
    pub(crate) state: Arc<Mutex<State>>,
}

fn errno(e: io::Error) -> Errno {
    Errno::from(e)
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs as u32)
    } else {
        UNIX_EPOCH
    }
}

fn attr(ino: u64, md: &std::fs::Metadata) -> FileAttr {
    let ft = md.file_type();
    let kind = FileType::from_std(ft).unwrap_or(FileType::RegularFile);
    FileAttr {
        ino: INodeNo(ino),
        size: md.size(),
        blocks: md.blocks(),
        atime: time(md.atime(), md.atime_nsec()),
        mtime: time(md.mtime(), md.mtime_nsec()),
        ctime: time(md.ctime(), md.ctime_nsec()),
        crtime: UNIX_EPOCH,
        kind,
        perm: (md.mode() & 0o7777) as u16,
        nlink: md.nlink() as u32,
        uid: md.uid(),
        gid: md.gid(),
        rdev: md.rdev() as u32,
        blksize: 4096,
        flags: 0,
    }
}

/// Runs `f` on the state unless the power is cut (then `EIO`).
macro_rules! live {
    ($self:ident, $reply:ident, |$st:ident| $body:expr) => {{
        let mut guard = $self.state.lock();
        if guard.dead {
            $reply.error(Errno::EIO);
            return;
        }
        let $st: &mut State = &mut guard;
        $body
    }};
}

impl Filesystem for PowerFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        live!(
            self,
            reply,
            |st| match st.child(parent, name).and_then(|p| st.entry(p)) {
                Ok(a) => reply.entry(&TTL, &a, Generation(0)),
                Err(e) => reply.error(e),
            }
        )
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        live!(self, reply, |st| match st.getattr(ino) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        })
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        live!(self, reply, |st| {
            let res = (|| {
                if let Some(size) = size {
                    st.tracked(ino)?.set_len(size).map_err(errno)?;
                }
                if let Some(mode) = mode {
                    let p = st.path(ino)?;
                    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode & 0o7777))
                        .map_err(errno)?;
                }
                if uid.is_some() || gid.is_some() {
                    std::os::unix::fs::lchown(st.path(ino)?, uid, gid).map_err(errno)?;
                }
                // Times are not modelled: SQLite and tenantd never set them.
                st.getattr(ino)
            })();
            match res {
                Ok(a) => reply.attr(&TTL, &a),
                Err(e) => reply.error(e),
            }
        })
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        live!(self, reply, |st| match st
            .path(ino)
            .and_then(|p| std::fs::read_link(p).map_err(errno))
        {
            Ok(t) => reply.data(t.as_os_str().as_encoded_bytes()),
            Err(e) => reply.error(e),
        })
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        live!(self, reply, |st| {
            let res = (|| {
                let dir = st.path(parent)?;
                let p = st.child(parent, name)?;
                std::fs::create_dir(&p).map_err(errno)?;
                let perm = std::fs::Permissions::from_mode(mode & !umask & 0o7777);
                std::fs::set_permissions(&p, perm).map_err(errno)?;
                st.journal.created(parent.0, &dir, name).map_err(errno)?;
                st.entry(p)
            })();
            match res {
                Ok(a) => reply.entry(&TTL, &a, Generation(0)),
                Err(e) => reply.error(e),
            }
        })
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        live!(self, reply, |st| match remove(st, parent, name, false) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        })
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        live!(self, reply, |st| match remove(st, parent, name, true) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        })
    }

    fn symlink(
        &self,
        _req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        live!(self, reply, |st| {
            let res = (|| {
                let dir = st.path(parent)?;
                let p = st.child(parent, link_name)?;
                std::os::unix::fs::symlink(target, &p).map_err(errno)?;
                st.journal
                    .created(parent.0, &dir, link_name)
                    .map_err(errno)?;
                st.entry(p)
            })();
            match res {
                Ok(a) => reply.entry(&TTL, &a, Generation(0)),
                Err(e) => reply.error(e),
            }
        })
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        live!(self, reply, |st| {
            let res = (|| {
                if flags.contains(RenameFlags::RENAME_EXCHANGE) {
                    return Err(Errno::EINVAL);
                }
                let (from_dir, to_dir) = (st.path(parent)?, st.path(newparent)?);
                let (from, to) = (st.child(parent, name)?, st.child(newparent, newname)?);
                let src = from.symlink_metadata().map_err(errno)?;
                if let Ok(dst) = to.symlink_metadata() {
                    if flags.contains(RenameFlags::RENAME_NOREPLACE) {
                        return Err(Errno::EEXIST);
                    }
                    if dst.ino() == src.ino() {
                        return Ok(());
                    }
                    if dst.is_dir() != src.is_dir() {
                        return Err(if dst.is_dir() {
                            Errno::EISDIR
                        } else {
                            Errno::ENOTDIR
                        });
                    }
                    if dst.is_dir() && std::fs::read_dir(&to).map_err(errno)?.next().is_some() {
                        return Err(Errno::ENOTEMPTY);
                    }
                }
                st.journal
                    .rename((parent.0, &from_dir, name), (newparent.0, &to_dir, newname))
                    .map_err(errno)?;
                st.renamed(&from, &to);
                Ok(())
            })();
            match res {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e),
            }
        })
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        live!(self, reply, |st| {
            let res = (|| {
                let (src, dir) = (st.path(ino)?, st.path(newparent)?);
                let p = st.child(newparent, newname)?;
                std::fs::hard_link(&src, &p).map_err(errno)?;
                st.journal
                    .created(newparent.0, &dir, newname)
                    .map_err(errno)?;
                st.entry(p)
            })();
            match res {
                Ok(a) => reply.entry(&TTL, &a, Generation(0)),
                Err(e) => reply.error(e),
            }
        })
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        live!(self, reply, |st| {
            let res = st.tracked(ino).and_then(|t| {
                if flags.0 & libc::O_TRUNC != 0 {
                    t.set_len(0).map_err(errno)?;
                }
                Ok(())
            });
            match res {
                Ok(()) => reply.opened(FileHandle(0), FopenFlags::empty()),
                Err(e) => reply.error(e),
            }
        })
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        live!(self, reply, |st| match st
            .tracked(ino)
            .and_then(|t| t.read_at(offset, size as usize).map_err(errno))
        {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        })
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyWrite,
    ) {
        live!(self, reply, |st| match st
            .tracked(ino)
            .and_then(|t| t.write_at(offset, data).map_err(errno))
        {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e),
        })
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: fuser::LockOwner,
        reply: ReplyEmpty,
    ) {
        // close(2) makes nothing durable.
        live!(self, reply, |_st| reply.ok())
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // fdatasync is taken as fsync: data and length become durable either way.
        live!(self, reply, |st| {
            if st.paths.get(&ino.0) == Some(&st.root.join(SYNCFS_FILE)) {
                st.sync_all();
                return reply.ok();
            }
            match st.tracked(ino) {
                Ok(t) => {
                    t.sync();
                    if st.metadata == Metadata::Ordered {
                        st.journal.sync_all();
                    }
                    reply.ok()
                }
                Err(e) => reply.error(e),
            }
        })
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        live!(self, reply, |st| {
            let res = (|| {
                let dir = st.path(ino)?;
                let mut entries = vec![
                    (ino.0, FileType::Directory, ".".into()),
                    (1, FileType::Directory, "..".into()),
                ];
                for e in std::fs::read_dir(&dir).map_err(errno)? {
                    let e = e.map_err(errno)?;
                    if ino.0 == 1 && (e.file_name() == GRAVE || e.file_name() == SYNCFS_FILE) {
                        continue;
                    }
                    let ft = e.file_type().map_err(errno)?;
                    let kind = FileType::from_std(ft).unwrap_or(FileType::RegularFile);
                    let ino = st.fuse_ino(std::os::unix::fs::DirEntryExt::ino(&e));
                    entries.push((ino, kind, e.file_name()));
                }
                Ok(entries)
            })();
            match res {
                Ok(entries) => {
                    for (i, (ino, kind, name)) in
                        entries.into_iter().enumerate().skip(offset as usize)
                    {
                        if reply.add(INodeNo(ino), i as u64 + 1, kind, name) {
                            break;
                        }
                    }
                    reply.ok()
                }
                Err(e) => reply.error(e),
            }
        })
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        live!(self, reply, |st| {
            match st.metadata {
                Metadata::Posix => st.journal.sync_dir(ino.0),
                Metadata::Ordered => st.journal.sync_all(),
            }
            reply.ok()
        })
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        live!(self, reply, |st| {
            let c = std::ffi::CString::new(st.root.as_os_str().as_encoded_bytes())
                .expect("paths have no NUL");
            // SAFETY: statvfs writes into a zeroed struct we own, from a valid C string.
            let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
            if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
                reply.error(errno(io::Error::last_os_error()));
                return;
            }
            reply.statfs(
                s.f_blocks,
                s.f_bfree,
                s.f_bavail,
                s.f_files,
                s.f_ffree,
                s.f_bsize as u32,
                s.f_namemax as u32,
                s.f_frsize as u32,
            )
        })
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        live!(self, reply, |_st| reply.ok())
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        live!(self, reply, |st| {
            let res = (|| {
                let dir = st.path(parent)?;
                let p = st.child(parent, name)?;
                let existed = p.symlink_metadata().is_ok();
                if existed && flags & libc::O_EXCL != 0 {
                    return Err(Errno::EEXIST);
                }
                let f = std::os::unix::fs::OpenOptionsExt::mode(
                    File::options().read(true).write(true).create(true),
                    mode & !umask & 0o7777,
                )
                .open(&p)
                .map_err(errno)?;
                if !existed {
                    st.journal.created(parent.0, &dir, name).map_err(errno)?;
                }
                let a = st.entry(p)?;
                st.files
                    .entry(a.ino.0)
                    .or_insert_with(|| TrackedFile::new(f));
                if existed && flags & libc::O_TRUNC != 0 {
                    st.tracked(a.ino)?.set_len(0).map_err(errno)?;
                }
                st.getattr(a.ino)
            })();
            match res {
                Ok(a) => reply.created(&TTL, &a, Generation(0), FileHandle(0), FopenFlags::empty()),
                Err(e) => reply.error(e),
            }
        })
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        // Not modelled: posix_fallocate falls back to writing zeros, which is.
        reply.error(Errno::from_i32(libc::EOPNOTSUPP))
    }
}

/// unlink/rmdir: the entry moves to the grave (see `Journal::remove`).
fn remove(st: &mut State, parent: INodeNo, name: &OsStr, dir: bool) -> Result<(), Errno> {
    let parent_path = st.path(parent)?;
    let p = st.child(parent, name)?;
    let md = p.symlink_metadata().map_err(errno)?;
    match (dir, md.is_dir()) {
        (true, false) => return Err(Errno::ENOTDIR),
        (false, true) => return Err(Errno::EISDIR),
        (true, true) if std::fs::read_dir(&p).map_err(errno)?.next().is_some() => {
            return Err(Errno::ENOTEMPTY)
        }
        _ => {}
    }
    let grave = st
        .journal
        .remove(parent.0, &parent_path, name)
        .map_err(errno)?;
    st.renamed(&p, &grave);
    Ok(())
}
