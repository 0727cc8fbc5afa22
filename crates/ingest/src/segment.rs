//! Segment files: `<dir>/<first LSN, 20 digits>.log`, each holding consecutive frames from its
//! first LSN on. The newest segment is the open one the writer appends to; a new one starts
//! when it passes `segment_bytes`. Creating or deleting a segment syncs the directory (in
//! `EveryBatch` mode at once, in `Interval` mode with the next sync) so the set of files is as
//! durable as their contents. Public for readers of the log beside its writer (the backup
//! ships the frames as they are).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use crate::Lsn;

/// The extension of segment files.
const EXT: &str = "log";
/// Digits of the zero-padded first LSN in a segment's name (u64::MAX has 20).
const DIGITS: usize = 20;

/// The path of the segment whose first record is `first`.
pub fn segment_path(dir: &Path, first: Lsn) -> PathBuf {
    dir.join(format!("{first:0DIGITS$}.{EXT}"))
}

/// The first LSN a file name encodes, if it is a segment name (exactly 20 digits + `.log`).
pub fn parse_segment_name(name: &str) -> Option<Lsn> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The first LSNs of the segments in `dir`, ascending; other files are ignored. Errors if the
/// directory cannot be read.
pub fn list_segments(dir: &Path) -> io::Result<Vec<Lsn>> {
    let mut firsts = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(first) = entry.file_name().to_str().and_then(parse_segment_name) {
            firsts.push(first);
        }
    }
    firsts.sort_unstable();
    Ok(firsts)
}

/// Creates (or reuses, if a crash left it empty) the segment starting at `first`, opened for
/// writing at its end. Errors from create/open; the caller syncs the directory.
pub fn create_segment(dir: &Path, first: Lsn) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(segment_path(dir, first))
}

/// Opens an existing segment for appending at its end. Errors if it cannot be opened.
pub fn open_segment(dir: &Path, first: Lsn) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .open(segment_path(dir, first))
}

/// Deletes the segment starting at `first` (already gone counts as deleted). Errors from unlink.
pub fn remove_segment(dir: &Path, first: Lsn) -> io::Result<()> {
    match fs::remove_file(segment_path(dir, first)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Creates `dir` and any missing ancestors so that they survive a power cut: after each
/// directory is made, its parent is fsynced (on a filesystem that orders metadata, ext4 or XFS,
/// this is cheap; under strict POSIX without it a new directory can vanish with everything in
/// it). Existing directories are left as they are. Errors from mkdir/fsync.
pub fn create_dir_durably(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut at = dir;
    while !at.as_os_str().is_empty() && !at.exists() {
        missing.push(at.to_path_buf());
        match at.parent() {
            Some(p) => at = p,
            None => break,
        }
    }
    for d in missing.iter().rev() {
        match fs::create_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let parent = d.parent().filter(|p| !p.as_os_str().is_empty());
        sync_dir(parent.unwrap_or(Path::new(".")))?;
    }
    Ok(())
}

/// Makes creations, deletions and truncations of entries in `dir` durable. Errors from
/// open/fsync.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durable_dirs_are_made_with_their_ancestors_and_existing_ones_kept() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("a/b/c");
        create_dir_durably(&deep).unwrap();
        assert!(deep.is_dir());
        std::fs::write(deep.join("f"), b"x").unwrap();
        create_dir_durably(&deep).unwrap();
        assert!(deep.join("f").exists(), "an existing dir is left alone");
        let file = root.path().join("a/file");
        std::fs::write(&file, b"x").unwrap();
        assert!(
            create_dir_durably(&file.join("d")).is_err(),
            "a file in the way is an error"
        );
    }

    #[test]
    fn names_are_twenty_digits_and_parse_back() {
        let p = segment_path(Path::new("/d"), 42);
        assert_eq!(p, Path::new("/d/00000000000000000042.log"));
        assert_eq!(parse_segment_name("00000000000000000042.log"), Some(42));
        assert_eq!(
            parse_segment_name("18446744073709551615.log"),
            Some(u64::MAX)
        );
        for bad in [
            "42.log",
            "0000000000000000004x.log",
            "00000000000000000042.tmp",
            "LOCK",
            "99999999999999999999.log",
        ] {
            assert_eq!(parse_segment_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn listing_is_sorted_and_skips_other_files() {
        let d = tempfile::tempdir().unwrap();
        for first in [30, 1, 200] {
            create_segment(d.path(), first).unwrap();
        }
        fs::write(d.path().join("LOCK"), b"").unwrap();
        assert_eq!(list_segments(d.path()).unwrap(), vec![1, 30, 200]);
        remove_segment(d.path(), 30).unwrap();
        remove_segment(d.path(), 30).unwrap();
        assert_eq!(list_segments(d.path()).unwrap(), vec![1, 200]);
    }
}
