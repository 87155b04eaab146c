//! The index: a memory-mapped file that maps each record of a segment to its
//! position in the store, so a read by offset costs one lookup and one
//! `pread`.
//!
//! The index is a cache of the store, never the truth. It is checked against
//! the store on every open and rebuilt from it when they disagree; it is never
//! fsynced on the write path because losing it loses nothing.
//!
//! Layout: a file header (see [`super::header`], magic `WKVINDEX`) and then
//! fixed-width entries, [`INDEX_ENTRY_BYTES`] = 8 bytes each, little-endian,
//! entry `i` describing the record at offset `base + i`:
//!
//! 1. `0..4` offset relative to the segment's base (`u32`), i.e. `i`
//! 2. `4..8` position of the record in the store (`u32`)
//!
//! A store position is never below the store's 32-byte header, so an entry of
//! all zeros is "no entry": the preallocated (sparse) tail of the active
//! segment's index, which is what an unclean shutdown leaves behind.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use memmap2::MmapMut;

use super::Offset;
use super::error::{LogError, Result};
use super::header::{self, FILE_HEADER_BYTES, INDEX_MAGIC};

pub const INDEX_ENTRY_BYTES: usize = 8;

pub struct Index {
    file: File,
    /// Maps exactly the file's length; remapped whenever the length changes.
    /// Safety: only this process touches the file (it holds the directory
    /// lock), and the file is never shortened while this mapping covers the
    /// cut part and is still read.
    mmap: MmapMut,
    path: PathBuf,
    /// Entries the file has room for.
    capacity: u64,
    /// Entries written.
    len: u64,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("path", &self.path)
            .field("capacity", &self.capacity)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

fn file_len_for(entries: u64) -> u64 {
    FILE_HEADER_BYTES as u64 + entries * INDEX_ENTRY_BYTES as u64
}

fn entry(rel: u64, pos: u64) -> [u8; INDEX_ENTRY_BYTES] {
    let rel = u32::try_from(rel).expect("segment holds at most u32::MAX records");
    let pos = u32::try_from(pos).expect("records start below max_segment_bytes <= u32::MAX");
    let mut e = [0u8; INDEX_ENTRY_BYTES];
    e[0..4].copy_from_slice(&rel.to_le_bytes());
    e[4..8].copy_from_slice(&pos.to_le_bytes());
    e
}

impl Index {
    /// Writes a fresh index for `positions` with room for `capacity` entries,
    /// atomically (temp, fsync, rename, fsync dir), and opens it.
    pub fn rebuild(path: &Path, base: Offset, positions: &[u64], capacity: u64) -> Result<Index> {
        let capacity = capacity.max(positions.len() as u64);
        let mut bytes = Vec::with_capacity(file_len_for(positions.len() as u64) as usize);
        bytes.extend_from_slice(&header::encode(INDEX_MAGIC, base));
        for (rel, &pos) in positions.iter().enumerate() {
            bytes.extend_from_slice(&entry(rel as u64, pos));
        }
        super::dir::create_atomic(path, &bytes, file_len_for(capacity))?;
        match Self::open_checked(path, base, positions)? {
            Ok(index) => Ok(index),
            Err(reason) => Err(LogError::corruption(
                path,
                0,
                format!("index just written does not read back: {reason}"),
            )),
        }
    }

    /// Opens the index and checks it against the store's record positions.
    /// `Ok(Err(reason))` means the index must be rebuilt, and why.
    pub fn open_checked(path: &Path, base: Offset, positions: &[u64]) -> Result<Result<Index, String>> {
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Err("index file is missing".into()));
            }
            Err(e) => return Err(LogError::io("opening index", path, e)),
        };
        let file_len = file
            .metadata()
            .map_err(|e| LogError::io("reading metadata of", path, e))?
            .len();
        if file_len < FILE_HEADER_BYTES as u64 {
            return Ok(Err(format!("index is {file_len} bytes, shorter than its header")));
        }
        let body = file_len - FILE_HEADER_BYTES as u64;
        if !body.is_multiple_of(INDEX_ENTRY_BYTES as u64) {
            return Ok(Err(format!("index ends inside an entry ({file_len} bytes)")));
        }
        let mmap = map(&file, path)?;
        if let Err(reason) = header::check(&mmap[..FILE_HEADER_BYTES], INDEX_MAGIC, base) {
            return Ok(Err(reason));
        }
        let index = Index {
            file,
            mmap,
            path: path.to_path_buf(),
            capacity: body / INDEX_ENTRY_BYTES as u64,
            len: positions.len() as u64,
        };
        Ok(index.agrees_with(positions).map(|()| index))
    }

    /// Whether the entries are exactly `positions`, followed only by zeros.
    fn agrees_with(&self, positions: &[u64]) -> Result<(), String> {
        if self.capacity < positions.len() as u64 {
            return Err(format!(
                "index holds {} entries but the store {} records",
                self.capacity,
                positions.len()
            ));
        }
        for (rel, &pos) in positions.iter().enumerate() {
            if self.entry_bytes(rel as u64) != entry(rel as u64, pos) {
                return Err(format!("entry {rel} disagrees with the store"));
            }
        }
        match self.first_nonzero_after(file_len_for(positions.len() as u64)) {
            Ok(None) => Ok(()),
            Ok(Some(at)) => {
                let rel = (at - FILE_HEADER_BYTES as u64) / INDEX_ENTRY_BYTES as u64;
                Err(format!("entry {rel} points past the store's last record"))
            }
            Err(e) => Err(format!("reading the index tail failed ({e})")),
        }
    }

    /// The position of the first non-zero byte from `start` on. Read with
    /// `pread`, not through the mapping: the preallocated tail is a sparse
    /// hole, and on some filesystems (tmpfs) a read fault in a hole allocates
    /// a page, which on a full filesystem is SIGBUS rather than an error.
    fn first_nonzero_after(&self, start: u64) -> std::io::Result<Option<u64>> {
        let end = file_len_for(self.capacity);
        let mut buf = vec![0u8; (1 << 20).min((end - start.min(end)) as usize)];
        let mut at = start;
        while at < end {
            let n = ((end - at) as usize).min(buf.len());
            self.file.read_exact_at(&mut buf[..n], at)?;
            if let Some(i) = buf[..n].iter().position(|&b| b != 0) {
                return Ok(Some(at + i as u64));
            }
            at += n as u64;
        }
        Ok(None)
    }

    fn entry_bytes(&self, rel: u64) -> &[u8] {
        let start = file_len_for(rel) as usize;
        &self.mmap[start..start + INDEX_ENTRY_BYTES]
    }

    /// Entries written: the records in the segment.
    pub fn entries(&self) -> u64 {
        self.len
    }

    pub fn is_full(&self) -> bool {
        self.len >= self.capacity
    }

    /// Entries that can still be pushed.
    pub fn room(&self) -> u64 {
        self.capacity - self.len
    }

    /// The store position of the record `rel` records after the base.
    pub fn position(&self, rel: u64) -> Option<u64> {
        if rel >= self.len {
            return None;
        }
        let e = self.entry_bytes(rel);
        Some(u32::from_le_bytes(e[4..8].try_into().expect("4 bytes")) as u64)
    }

    /// Records the entries of the next records, whose store positions are
    /// `positions`, with one `pwrite`. The caller checked [`Index::room`].
    ///
    /// Entries are written with `pwrite`, not through the mapping: the
    /// preallocated tail is a sparse hole, and a store through a mapping into
    /// a hole needs a disk block; on a full disk the kernel answers that with
    /// SIGBUS, which would kill the process instead of fencing the log. A
    /// `pwrite` returns ENOSPC. Reads through the mapping see the same page
    /// cache, so they stay coherent.
    pub fn push_all(&mut self, positions: &[u64]) -> Result<()> {
        assert!(
            positions.len() as u64 <= self.room(),
            "index push past capacity: len {} + {} > capacity {}",
            self.len,
            positions.len(),
            self.capacity
        );
        let mut bytes = Vec::with_capacity(positions.len() * INDEX_ENTRY_BYTES);
        for (i, &pos) in positions.iter().enumerate() {
            bytes.extend_from_slice(&entry(self.len + i as u64, pos));
        }
        self.file
            .write_all_at(&bytes, file_len_for(self.len))
            .map_err(|e| LogError::io("writing index", &self.path, e))?;
        self.len += positions.len() as u64;
        Ok(())
    }

    /// Makes room for `capacity` entries (never fewer than are written).
    pub fn set_capacity(&mut self, capacity: u64) -> Result<()> {
        let capacity = capacity.max(self.len);
        if capacity == self.capacity {
            return Ok(());
        }
        self.file
            .set_len(file_len_for(capacity))
            .map_err(|e| LogError::io("resizing index", &self.path, e))?;
        self.mmap = map(&self.file, &self.path)?;
        self.capacity = capacity;
        Ok(())
    }

    /// Trims the preallocated tail and makes the index durable, so a clean
    /// shutdown leaves an index that the next open accepts as it is.
    pub fn seal(&mut self) -> Result<()> {
        self.mmap
            .flush()
            .map_err(|e| LogError::io("flushing index", &self.path, e))?;
        self.set_capacity(self.len)?;
        self.file
            .sync_all()
            .map(|()| super::trace::synced(&self.file, &self.path))
            .map_err(|e| LogError::io("fsyncing index", &self.path, e))
    }
}

fn map(file: &File, path: &Path) -> Result<MmapMut> {
    // SAFETY: see the `mmap` field: the directory lock keeps other processes
    // out, and this process only resizes the file through `set_capacity`,
    // which replaces the mapping before it is read again.
    unsafe { MmapMut::map_mut(file) }.map_err(|e| LogError::io("mapping index", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebuild_then_reopen_agrees_and_tail_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000010.index");
        let positions = [32, 60, 99];
        let index = Index::rebuild(&path, 10, &positions, 8).unwrap();
        assert_eq!(index.position(2), Some(99));
        assert_eq!(index.position(3), None);
        drop(index);
        let again = Index::open_checked(&path, 10, &positions).unwrap().unwrap();
        assert_eq!(again.entries(), 3);
        assert!(!again.is_full());
        // Fewer records in the store than entries: the index is stale.
        let reason = Index::open_checked(&path, 10, &positions[..2])
            .unwrap()
            .unwrap_err();
        assert!(reason.contains("entry 2 points past"), "{reason}");
    }

    #[test]
    fn seal_trims_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.index");
        let mut index = Index::rebuild(&path, 0, &[], 100).unwrap();
        index.push_all(&[32, 50]).unwrap();
        index.seal().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), file_len_for(2));
        assert!(index.is_full());
        let again = Index::open_checked(&path, 0, &[32, 50]).unwrap().unwrap();
        assert_eq!(again.position(1), Some(50));
    }

    #[test]
    fn unsealed_index_reopens_with_its_preallocated_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000003.index");
        let mut index = Index::rebuild(&path, 3, &[], 4).unwrap();
        index.push_all(&[32, 47]).unwrap();
        // Dropped without seal: what a crash leaves (the page cache kept the
        // mapped writes, the file keeps its full preallocated size).
        drop(index);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), file_len_for(4));
        let mut again = Index::open_checked(&path, 3, &[32, 47]).unwrap().unwrap();
        assert_eq!((again.entries(), again.room()), (2, 2));
        assert_eq!(again.position(1), Some(47));
        again.push_all(&[60]).unwrap();
        assert_eq!(again.position(2), Some(60));
    }

    #[test]
    fn missing_short_or_foreign_index_asks_for_a_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.index");
        let reason = Index::open_checked(&path, 0, &[32]).unwrap().unwrap_err();
        assert!(reason.contains("missing"), "{reason}");

        drop(Index::rebuild(&path, 0, &[32, 50], 2).unwrap());
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(file_len_for(2) - 3).unwrap();
        let reason = Index::open_checked(&path, 0, &[32, 50]).unwrap().unwrap_err();
        assert!(reason.contains("inside an entry"), "{reason}");
        file.set_len(file_len_for(1)).unwrap();
        let reason = Index::open_checked(&path, 0, &[32, 50]).unwrap().unwrap_err();
        assert!(reason.contains("holds 1 entries"), "{reason}");
        file.set_len(10).unwrap();
        let reason = Index::open_checked(&path, 0, &[32, 50]).unwrap().unwrap_err();
        assert!(reason.contains("shorter than its header"), "{reason}");

        // An index written for another segment is not this one's.
        drop(Index::rebuild(&path, 9, &[32], 1).unwrap());
        assert!(Index::open_checked(&path, 0, &[32]).unwrap().is_err());
    }
}
