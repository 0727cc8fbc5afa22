//! Directory changes not yet made durable: [`Journal`] records each create, remove and rename
//! with the directories it touched, forgets it once every one of them was fsynced after it,
//! and on a cut undoes what is left, newest first. A removed entry is not deleted but moved
//! to a grave directory, so that a cut can bring it back; it is deleted when its removal
//! becomes durable. Directories are held open and named through `/proc/self/fd`, so an entry
//! stays valid when an ancestor is renamed.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// An identifier of a directory (its inode number).
pub type DirId = u64;

/// Directory changes since the last fsync of the directories they touched.
#[derive(Debug)]
pub struct Journal {
    /// Where removed entries wait until their removal is durable.
    grave: PathBuf,
    next_grave: u64,
    /// Open descriptors of the directories named by entries.
    dirs: HashMap<DirId, File>,
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    op: Op,
    /// Directories touched and not fsynced since.
    pending: Vec<DirId>,
}

#[derive(Debug)]
enum Op {
    /// `name` appeared in `dir` (create, mkdir, symlink, link).
    Created { dir: DirId, name: OsString },
    /// `name` left `dir` (unlink, rmdir) and waits in the grave as `grave`.
    Removed {
        dir: DirId,
        name: OsString,
        grave: PathBuf,
    },
    /// `from` was renamed to `to`; what `to` named before waits in the grave.
    Renamed {
        from: (DirId, OsString),
        to: (DirId, OsString),
        displaced: Option<PathBuf>,
    },
}

/// What [`Journal::cut`] undid.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Undone {
    /// Entries undone.
    pub ops: usize,
    /// Entries that could not be undone (logged on stderr; the name had gone).
    pub failed: usize,
}

impl Journal {
    /// An empty journal whose removed entries go to `grave` (created if missing; it must be on
    /// the same filesystem as the tracked directories). Errors from `mkdir`.
    pub fn new(grave: PathBuf) -> io::Result<Self> {
        std::fs::create_dir_all(&grave)?;
        Ok(Journal {
            grave,
            next_grave: 0,
            dirs: HashMap::new(),
            entries: Vec::new(),
        })
    }

    /// Number of directory changes a cut would undo.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if no directory change is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records that `name` was created in the directory `dir` (open at `dir_path`).
    /// Errors from opening the directory.
    pub fn created(&mut self, dir: DirId, dir_path: &Path, name: &OsStr) -> io::Result<()> {
        self.hold(dir, dir_path)?;
        self.entries.push(Entry {
            op: Op::Created {
                dir,
                name: name.to_owned(),
            },
            pending: vec![dir],
        });
        Ok(())
    }

    /// Removes `name` from `dir` by moving it to the grave, and records it. Errors from
    /// opening the directory or the rename (then nothing changed).
    pub fn remove(&mut self, dir: DirId, dir_path: &Path, name: &OsStr) -> io::Result<PathBuf> {
        self.hold(dir, dir_path)?;
        let grave = self.bury(&dir_path.join(name))?;
        self.entries.push(Entry {
            op: Op::Removed {
                dir,
                name: name.to_owned(),
                grave: grave.clone(),
            },
            pending: vec![dir],
        });
        Ok(grave)
    }

    /// Renames `from` to `to` (each a directory and a name), moving what `to` named to the
    /// grave first, and records it. Errors from opening the directories or the renames (the
    /// displaced entry is put back if the rename fails).
    pub fn rename(
        &mut self,
        from: (DirId, &Path, &OsStr),
        to: (DirId, &Path, &OsStr),
    ) -> io::Result<()> {
        self.hold(from.0, from.1)?;
        self.hold(to.0, to.1)?;
        let (src, dst) = (from.1.join(from.2), to.1.join(to.2));
        let displaced = match dst.symlink_metadata() {
            Ok(_) => Some(self.bury(&dst)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        if let Err(e) = std::fs::rename(&src, &dst) {
            if let Some(g) = &displaced {
                let _ = std::fs::rename(g, &dst);
            }
            return Err(e);
        }
        let mut pending = vec![from.0];
        if to.0 != from.0 {
            pending.push(to.0);
        }
        self.entries.push(Entry {
            op: Op::Renamed {
                from: (from.0, from.2.to_owned()),
                to: (to.0, to.2.to_owned()),
                displaced,
            },
            pending,
        });
        Ok(())
    }

    /// fsync of directory `dir`: every change that touched it, and no other unsynced
    /// directory, becomes durable; graves of durable removals are deleted.
    pub fn sync_dir(&mut self, dir: DirId) {
        for e in &mut self.entries {
            e.pending.retain(|d| *d != dir);
        }
        let (durable, pending) = std::mem::take(&mut self.entries)
            .into_iter()
            .partition(|e| e.pending.is_empty());
        self.entries = pending;
        for e in durable {
            match e.op {
                Op::Removed { grave, .. }
                | Op::Renamed {
                    displaced: Some(grave),
                    ..
                } => remove_all(&grave),
                _ => {}
            }
        }
    }

    /// Clean shutdown: every change becomes durable.
    pub fn sync_all(&mut self) {
        let dirs: Vec<DirId> = self.dirs.keys().copied().collect();
        for d in dirs {
            self.sync_dir(d);
        }
    }

    /// Power cut: undoes every change not durable, newest first.
    pub fn cut(&mut self) -> Undone {
        let mut undone = Undone::default();
        for e in std::mem::take(&mut self.entries).into_iter().rev() {
            let res = match &e.op {
                Op::Created { dir, name } => {
                    let p = self.path(*dir, name);
                    match p.symlink_metadata() {
                        Ok(m) if m.is_dir() => std::fs::remove_dir_all(&p),
                        Ok(_) => std::fs::remove_file(&p),
                        Err(e) => Err(e),
                    }
                }
                Op::Removed { dir, name, grave } => std::fs::rename(grave, self.path(*dir, name)),
                Op::Renamed {
                    from,
                    to,
                    displaced,
                } => {
                    let dst = self.path(to.0, &to.1);
                    std::fs::rename(&dst, self.path(from.0, &from.1)).and_then(|()| {
                        displaced
                            .as_ref()
                            .map_or(Ok(()), |g| std::fs::rename(g, &dst))
                    })
                }
            };
            match res {
                Ok(()) => undone.ops += 1,
                Err(err) => {
                    eprintln!("powerfs: cannot undo {:?}: {err}", e.op);
                    undone.failed += 1;
                }
            }
        }
        undone
    }

    /// `dir`/`name` through the held descriptor of `dir`.
    fn path(&self, dir: DirId, name: &OsStr) -> PathBuf {
        let fd = self.dirs[&dir].as_raw_fd();
        Path::new(&format!("/proc/self/fd/{fd}")).join(name)
    }

    fn hold(&mut self, dir: DirId, dir_path: &Path) -> io::Result<()> {
        if let std::collections::hash_map::Entry::Vacant(v) = self.dirs.entry(dir) {
            v.insert(File::open(dir_path)?);
        }
        Ok(())
    }

    fn bury(&mut self, path: &Path) -> io::Result<PathBuf> {
        let grave = self.grave.join(self.next_grave.to_string());
        self.next_grave += 1;
        std::fs::rename(path, &grave)?;
        Ok(grave)
    }
}

fn remove_all(path: &Path) {
    let res = match path.symlink_metadata() {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    if let Err(e) = res {
        eprintln!("powerfs: cannot delete {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    struct Fixture {
        _tmp: tempfile::TempDir,
        root: PathBuf,
        j: Journal,
    }

    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let j = Journal::new(tmp.path().join("grave")).unwrap();
        Fixture { _tmp: tmp, root, j }
    }

    fn ino(p: &Path) -> DirId {
        p.metadata().unwrap().ino()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn unsynced_creates_removes_and_renames_are_undone_newest_first() {
        let mut f = fixture();
        let r = ino(&f.root);
        std::fs::write(f.root.join("old"), b"durable").unwrap();
        std::fs::write(f.root.join("a"), b"new").unwrap();
        f.j.created(r, &f.root, OsStr::new("a")).unwrap();
        f.j.rename(
            (r, &f.root, OsStr::new("a")),
            (r, &f.root, OsStr::new("old")),
        )
        .unwrap();
        assert_eq!(names(&f.root), ["old"]);
        assert_eq!(std::fs::read(f.root.join("old")).unwrap(), b"new");
        f.j.remove(r, &f.root, OsStr::new("old")).unwrap();
        assert!(names(&f.root).is_empty());
        assert_eq!(f.j.cut(), Undone { ops: 3, failed: 0 });
        assert_eq!(names(&f.root), ["old"]);
        assert_eq!(std::fs::read(f.root.join("old")).unwrap(), b"durable");
    }

    #[test]
    fn a_directory_fsync_makes_its_changes_durable_and_deletes_graves() {
        let mut f = fixture();
        let r = ino(&f.root);
        std::fs::write(f.root.join("gone"), b"x").unwrap();
        let grave = f.j.remove(r, &f.root, OsStr::new("gone")).unwrap();
        std::fs::write(f.root.join("kept"), b"y").unwrap();
        f.j.created(r, &f.root, OsStr::new("kept")).unwrap();
        f.j.sync_dir(r);
        assert!(f.j.is_empty());
        assert!(!grave.exists());
        std::fs::write(f.root.join("late"), b"z").unwrap();
        f.j.created(r, &f.root, OsStr::new("late")).unwrap();
        assert_eq!(f.j.cut().ops, 1);
        assert_eq!(names(&f.root), ["kept"]);
    }

    #[test]
    fn a_rename_across_directories_needs_both_synced() {
        let mut f = fixture();
        let (a, b) = (f.root.join("a"), f.root.join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        std::fs::write(a.join("x"), b"x").unwrap();
        f.j.rename(
            (ino(&a), &a, OsStr::new("x")),
            (ino(&b), &b, OsStr::new("y")),
        )
        .unwrap();
        f.j.sync_dir(ino(&b));
        assert_eq!(f.j.len(), 1);
        f.j.cut();
        assert_eq!(names(&a), ["x"]);
        assert!(names(&b).is_empty());
    }

    #[test]
    fn an_unsynced_mkdir_is_undone_with_its_synced_content() {
        let mut f = fixture();
        let r = ino(&f.root);
        let d = f.root.join("d");
        std::fs::create_dir(&d).unwrap();
        f.j.created(r, &f.root, OsStr::new("d")).unwrap();
        std::fs::write(d.join("inner"), b"i").unwrap();
        f.j.created(ino(&d), &d, OsStr::new("inner")).unwrap();
        f.j.sync_dir(ino(&d));
        assert_eq!(f.j.len(), 1);
        assert_eq!(f.j.cut().ops, 1);
        assert!(names(&f.root).is_empty());
    }
}
