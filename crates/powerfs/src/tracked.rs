//! One file's data as a disk would keep it: [`TrackedFile`] writes through to the backing file
//! at once (so reads see every write) and remembers, per 4 KiB page, what the page held at the
//! last fsync, plus the length then. A sync forgets that; a cut writes it back.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// The granularity of what a cut restores: a page is either wholly as at the last sync or
/// wholly as last written (no torn pages).
pub const PAGE: u64 = 4096;

/// A backing file and what a power cut would bring it back to.
#[derive(Debug)]
pub struct TrackedFile {
    file: File,
    /// `None` while the backing file equals its durable image (nothing written since a sync).
    undo: Option<Undo>,
}

/// The durable image of a file, as far as it differs from the backing file.
#[derive(Debug)]
struct Undo {
    /// Length at the last sync.
    len: u64,
    /// Page number -> its bytes at the last sync (short for the last page of the file).
    pages: BTreeMap<u64, Vec<u8>>,
}

impl TrackedFile {
    /// Tracks `file`, whose current content counts as durable.
    pub fn new(file: File) -> Self {
        TrackedFile { file, undo: None }
    }

    /// The backing file (for `fstat`).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Reads up to `len` bytes at `offset` (fewer at the end of the file). Errors from `pread`.
    pub fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; len];
        let mut done = 0;
        while done < len {
            match self.file.read_at(&mut buf[done..], offset + done as u64)? {
                0 => break,
                n => done += n,
            }
        }
        buf.truncate(done);
        Ok(buf)
    }

    /// Writes `data` at `offset`, first saving the durable bytes of every page it touches.
    /// Errors from `pread`/`pwrite` (what was saved stays saved).
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let end = offset + data.len() as u64;
        self.save_pages(offset / PAGE, end.div_ceil(PAGE))?;
        self.file.write_all_at(data, offset)
    }

    /// Sets the length, first saving the durable bytes of every page it cuts off or zeroes.
    /// Errors from `fstat`/`pread`/`ftruncate`.
    pub fn set_len(&mut self, len: u64) -> io::Result<()> {
        let cur = self.file.metadata()?.len();
        if len < cur {
            self.save_pages(len / PAGE, cur.div_ceil(PAGE))?;
        } else {
            self.undo_mut()?;
        }
        self.file.set_len(len)
    }

    /// fsync/fdatasync: the current content becomes the durable image.
    pub fn sync(&mut self) {
        self.undo = None;
    }

    /// True if something was written since the last sync.
    pub fn is_dirty(&self) -> bool {
        self.undo.is_some()
    }

    /// Power cut: puts the backing file back to its durable image; returns the number of pages
    /// restored. Errors from `pwrite`/`ftruncate`.
    pub fn cut(&mut self) -> io::Result<usize> {
        let Some(undo) = self.undo.take() else {
            return Ok(0);
        };
        for (page, bytes) in &undo.pages {
            self.file.write_all_at(bytes, page * PAGE)?;
        }
        self.file.set_len(undo.len)?;
        Ok(undo.pages.len())
    }

    fn undo_mut(&mut self) -> io::Result<&mut Undo> {
        if self.undo.is_none() {
            let len = self.file.metadata()?.len();
            self.undo = Some(Undo {
                len,
                pages: BTreeMap::new(),
            });
        }
        Ok(self.undo.as_mut().expect("set above"))
    }

    /// Saves pages `first..end` that lie within the durable length and are not saved yet.
    fn save_pages(&mut self, first: u64, end: u64) -> io::Result<()> {
        let durable_len = self.undo_mut()?.len;
        let end = end.min(durable_len.div_ceil(PAGE));
        for page in first..end {
            if self
                .undo
                .as_ref()
                .is_some_and(|u| u.pages.contains_key(&page))
            {
                continue;
            }
            let want = PAGE.min(durable_len - page * PAGE) as usize;
            let bytes = self.read_at(page * PAGE, want)?;
            self.undo_mut()?.pages.insert(page, bytes);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracked(content: &[u8]) -> (tempfile::NamedTempFile, TrackedFile) {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), content).unwrap();
        let f = File::options()
            .read(true)
            .write(true)
            .open(tmp.path())
            .unwrap();
        (tmp, TrackedFile::new(f))
    }

    fn all(t: &TrackedFile) -> Vec<u8> {
        t.read_at(0, 1 << 20).unwrap()
    }

    #[test]
    fn reads_see_unsynced_writes_and_a_cut_undoes_them() {
        let (_tmp, mut t) = tracked(b"hello world");
        t.write_at(6, b"there").unwrap();
        t.write_at(11, b"!!").unwrap();
        assert_eq!(all(&t), b"hello there!!");
        assert!(t.is_dirty());
        assert_eq!(t.cut().unwrap(), 1);
        assert_eq!(all(&t), b"hello world");
        assert!(!t.is_dirty());
    }

    #[test]
    fn a_sync_makes_writes_durable_and_only_later_ones_are_undone() {
        let (_tmp, mut t) = tracked(b"");
        t.write_at(0, &[1; 5000]).unwrap();
        t.sync();
        t.write_at(4000, &[2; 200]).unwrap();
        t.write_at(10_000, &[3; 10]).unwrap();
        assert_eq!(all(&t).len(), 10_010);
        t.cut().unwrap();
        assert_eq!(all(&t), vec![1; 5000]);
    }

    #[test]
    fn the_first_write_after_a_sync_saves_a_page_later_writes_do_not_change_it() {
        let mut content = vec![7u8; 3 * PAGE as usize];
        let (_tmp, mut t) = tracked(&content);
        t.write_at(PAGE + 10, b"abc").unwrap();
        t.write_at(PAGE + 10, b"xyz").unwrap();
        t.write_at(2 * PAGE - 1, b"spans two pages").unwrap();
        content[0] = 9;
        t.write_at(0, &[9]).unwrap();
        t.sync();
        t.write_at(PAGE, b"again").unwrap();
        t.cut().unwrap();
        let mut want = vec![7u8; 3 * PAGE as usize];
        want[0] = 9;
        want[PAGE as usize + 10..PAGE as usize + 13].copy_from_slice(b"xyz");
        want[2 * PAGE as usize - 1..2 * PAGE as usize + 14].copy_from_slice(b"spans two pages");
        assert_eq!(all(&t), want);
    }

    #[test]
    fn a_truncate_then_regrowth_is_undone_to_the_durable_bytes() {
        let durable: Vec<u8> = (0..3 * PAGE).map(|i| (i % 251) as u8).collect();
        let (_tmp, mut t) = tracked(&durable);
        t.set_len(100).unwrap();
        assert_eq!(all(&t).len(), 100);
        t.set_len(2 * PAGE).unwrap();
        assert_eq!(all(&t)[100..], vec![0; 2 * PAGE as usize - 100]);
        t.write_at(5 * PAGE, b"far").unwrap();
        t.cut().unwrap();
        assert_eq!(all(&t), durable);
    }

    #[test]
    fn a_synced_truncate_survives_a_cut() {
        let (_tmp, mut t) = tracked(&[5; 9000]);
        t.set_len(10).unwrap();
        t.sync();
        t.write_at(10, b"tail").unwrap();
        t.cut().unwrap();
        assert_eq!(all(&t), vec![5; 10]);
    }

    #[test]
    fn a_cut_with_nothing_unsynced_changes_nothing() {
        let (_tmp, mut t) = tracked(b"same");
        assert_eq!(t.cut().unwrap(), 0);
        t.write_at(0, b"SAME").unwrap();
        t.sync();
        assert_eq!(t.cut().unwrap(), 0);
        assert_eq!(all(&t), b"SAME");
    }
}
