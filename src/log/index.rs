//! The index: a memory-mapped file that maps each record of a segment to its
//! position in the store, so a read by offset costs one lookup and one
//! `pread`.
//!
//! The index is a cache of the store, never the truth. It is checked against
//! the store on every open and rebuilt from it when they disagree; it is never
//! fsynced on the write path because losing it loses nothing.
//!
//! For the same reason new entries need not reach the file at every append:
//! they wait in memory ([`Index::push_all`]) and go to the file with one
//! `pwrite` per [`FLUSH_BOUNDARY_BYTES`] of index file, and always before the
//! file is resized, sealed or dropped. Lookups answer for waiting entries
//! from memory, so no reader depends on the file being complete while the
//! index is open; a crash that loses waiting entries leaves an index that
//! lags its store, which the next open rebuilds.
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
use tracing::debug;

use super::Offset;
use super::error::{LogError, Result};
use super::header::{self, FILE_HEADER_BYTES, INDEX_MAGIC};

pub const INDEX_ENTRY_BYTES: usize = 8;

/// Pushed entries wait in memory until they reach a multiple of this many
/// bytes of the index file, then all go with one `pwrite`. A page: a
/// `pwrite` costs its system call, not its bytes, up to a page, so this cuts
/// the index's system calls by ~500 under one-record appends (one flush per
/// 512 entries), and a flush of one-at-a-time appends fills exactly one page
/// of the page cache (the 32-byte header is a whole number of entries, so
/// the boundaries fall between entries). A larger size saves nothing
/// measurable more, while a crash could lose more entries (at most 511 now),
/// each of which widens the lag the next open turns into a rebuild. Memory:
/// one page per active segment.
pub const FLUSH_BOUNDARY_BYTES: u64 = 4096;
const _: () = assert!(
    (FLUSH_BOUNDARY_BYTES - FILE_HEADER_BYTES as u64).is_multiple_of(INDEX_ENTRY_BYTES as u64),
    "flush boundaries must fall between entries"
);

pub struct Index {
    file: File,
    /// Maps exactly the file's length; remapped whenever the length changes.
    /// Safety: only this process touches the file (it holds the directory
    /// lock), and the part of the mapping a shortened file no longer covers
    /// is never read: [`Index::set_capacity`] remaps, and the trim of a
    /// roll ([`Index::begin_seal`]) cuts only past the last entry.
    mmap: MmapMut,
    path: PathBuf,
    /// Entries the file has room for.
    capacity: u64,
    /// Entries pushed: those on file and those in `pending`. Everything the
    /// segment counts (its next offset, the room left) follows this, so the
    /// log never sees the difference between the two.
    len: u64,
    /// Entries written to the file; `0..flushed` can be read through the
    /// mapping.
    flushed: u64,
    /// The encoded entries `flushed..len`, not yet written. Emptied by every
    /// successful [`Index::flush`]; kept after a failed one (the log fences,
    /// and the entries still answer lookups).
    pending: Vec<u8>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("path", &self.path)
            .field("capacity", &self.capacity)
            .field("len", &self.len)
            .field("flushed", &self.flushed)
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

    /// Creates an empty index at `path` (a temporary name) with room for
    /// `capacity` entries and nothing fsynced: the fast half of a roll, see
    /// [`super::roll`].
    pub fn create_unsynced(path: &Path, base: Offset, capacity: u64) -> Result<Index> {
        let file = super::dir::create_file(path)
            .and_then(|f| f.write_all_at(&header::encode(INDEX_MAGIC, base), 0).map(|()| f))
            .and_then(|f| f.set_len(file_len_for(capacity)).map(|()| f))
            .map_err(|e| LogError::io("creating index", path, e))?;
        let mmap = map(&file, path)?;
        Ok(Index {
            file,
            mmap,
            path: path.to_path_buf(),
            capacity,
            len: 0,
            flushed: 0,
            pending: Vec::new(),
        })
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
            flushed: positions.len() as u64,
            pending: Vec::new(),
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

    /// Entry `rel` as the file holds it, read through the mapping. Only for
    /// entries on file: a pending one reads as zeros there.
    fn entry_bytes(&self, rel: u64) -> &[u8] {
        assert!(
            rel < self.flushed,
            "index entry {rel} read from the file, which holds only {} of {} entries",
            self.flushed,
            self.len
        );
        let start = file_len_for(rel) as usize;
        &self.mmap[start..start + INDEX_ENTRY_BYTES]
    }

    /// Entries pushed, on file or waiting in memory: the records in the
    /// segment.
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

    /// The store position of the record `rel` records after the base, from
    /// the file or, for an entry not yet flushed, from memory.
    pub fn position(&self, rel: u64) -> Option<u64> {
        if rel >= self.len {
            return None;
        }
        let e = if rel < self.flushed {
            self.entry_bytes(rel)
        } else {
            let start = (rel - self.flushed) as usize * INDEX_ENTRY_BYTES;
            &self.pending[start..start + INDEX_ENTRY_BYTES]
        };
        Some(u32::from_le_bytes(e[4..8].try_into().expect("4 bytes")) as u64)
    }

    /// Records the entries of the next records, whose store positions are
    /// `positions`. The caller checked [`Index::room`]. They count at once
    /// (in [`Index::entries`], [`Index::position`]) but reach the file only
    /// when the entries waiting reach a [`FLUSH_BOUNDARY_BYTES`] boundary of
    /// the file: most calls make no system call. An error is that flush's
    /// (see [`Index::flush`]); the entries stay pushed.
    pub fn push_all(&mut self, positions: &[u64]) -> Result<()> {
        assert!(
            positions.len() as u64 <= self.room(),
            "index push past capacity: len {} + {} > capacity {}",
            self.len,
            positions.len(),
            self.capacity
        );
        for &pos in positions {
            self.pending.extend_from_slice(&entry(self.len, pos));
            self.len += 1;
        }
        let page = |entries| file_len_for(entries) / FLUSH_BOUNDARY_BYTES;
        if page(self.len) > page(self.flushed) {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the entries waiting in memory, with one `pwrite`. A failure is
    /// `LogError::Io` "writing index", which fences the log whichever call
    /// flushed; the entries stay in memory (a retry rewrites the same bytes).
    ///
    /// Entries are written with `pwrite`, not through the mapping: the
    /// preallocated tail is a sparse hole, and a store through a mapping into
    /// a hole needs a disk block; on a full disk the kernel answers that with
    /// SIGBUS, which would kill the process instead of fencing the log. A
    /// `pwrite` returns ENOSPC. Reads through the mapping see the same page
    /// cache, so they stay coherent.
    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.file
            .write_all_at(&self.pending, file_len_for(self.flushed))
            .map_err(|e| LogError::io("writing index", &self.path, e))?;
        self.flushed = self.len;
        self.pending.clear();
        Ok(())
    }

    /// Makes room for `capacity` entries (never fewer than are pushed).
    /// Flushes first, so that the file is complete whenever its length, and
    /// with it the mapping, changes.
    pub fn set_capacity(&mut self, capacity: u64) -> Result<()> {
        self.flush()?;
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

    /// The fast half of sealing, for a roll (see [`super::roll`]): the
    /// entries waiting are written and the index takes no more. Returns a
    /// second handle on the file and the length to trim it to, exactly its
    /// entries; the trim and the fsync go through that handle, on whichever
    /// thread finishes the roll. The mapping keeps its length, but nothing
    /// past the entries is read through it.
    pub fn begin_seal(&mut self) -> Result<(File, u64)> {
        self.flush()?;
        self.pending = Vec::new();
        self.capacity = self.len;
        Ok((self.clone_file()?, file_len_for(self.len)))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn clone_file(&self) -> Result<File> {
        self.file
            .try_clone()
            .map_err(|e| LogError::io("duplicating handle of", &self.path, e))
    }

    /// Records that the file now bears the name `path` (its roll renamed it).
    pub fn renamed(&mut self, path: PathBuf) {
        self.path = path;
    }

    /// Trims the preallocated tail and makes the index durable, so a clean
    /// shutdown leaves an index that the next open accepts as it is.
    pub fn seal(&mut self) -> Result<()> {
        self.flush()?;
        // A sealed index takes no more entries: give back the buffer.
        self.pending = Vec::new();
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

/// Dropping an index without sealing it (a log dropped without `close`:
/// after a fence, on an error path, in tests) writes the entries waiting in
/// memory, so that it leaves what a crash just after a flush would, and the
/// next open accepts the index as it is instead of rebuilding it. A process
/// that dies without unwinding skips this and leaves an index that lags its
/// store, which the next open rebuilds. A failure here changes nothing the
/// open does not already check, so it is only noted.
impl Drop for Index {
    fn drop(&mut self) {
        if let Err(err) = self.flush() {
            debug!(error = %err, "index entries not written when the index was dropped");
        }
    }
}

fn map(file: &File, path: &Path) -> Result<MmapMut> {
    // SAFETY: see the `mmap` field: the directory lock keeps other processes
    // out, and this process only resizes the file through `set_capacity`,
    // which replaces the mapping before it is read again, and through a
    // roll's trim, which cuts nothing that is read (see `begin_seal`).
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
        // Dropped without seal: the waiting entries are written, and the
        // file keeps its full preallocated size (what a crash just after a
        // flush leaves).
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

    /// A fresh, empty index at `base` with room for `capacity` entries.
    fn empty(dir: &Path, base: Offset, capacity: u64) -> (PathBuf, Index) {
        let path = dir.join(format!("{base:020}.index"));
        let index = Index::rebuild(&path, base, &[], capacity).unwrap();
        (path, index)
    }

    /// Store positions of records of irregular sizes.
    fn positions(count: u64) -> Vec<u64> {
        (0..count)
            .scan(FILE_HEADER_BYTES as u64, |pos, i| {
                let at = *pos;
                *pos += 16 + i % 13;
                Some(at)
            })
            .collect()
    }

    /// The entries the file holds, up to the first all-zero one.
    fn entries_on_file(path: &Path) -> Vec<u64> {
        let bytes = std::fs::read(path).unwrap();
        bytes[FILE_HEADER_BYTES..]
            .chunks_exact(INDEX_ENTRY_BYTES)
            .take_while(|e| e.iter().any(|&b| b != 0))
            .map(|e| u32::from_le_bytes(e[4..8].try_into().unwrap()) as u64)
            .collect()
    }

    /// Entries that fit before the first flush boundary of the file.
    const FIRST_PAGE: u64 = (FLUSH_BOUNDARY_BYTES - FILE_HEADER_BYTES as u64) / INDEX_ENTRY_BYTES as u64;

    impl Index {
        /// What a process that dies without unwinding does: the entries
        /// waiting in memory never reach the file.
        fn crash(mut self) {
            self.pending.clear();
        }
    }

    #[test]
    fn entries_wait_in_memory_until_a_page_of_the_file_fills() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut index) = empty(dir.path(), 0, 3 * FIRST_PAGE);
        let all = positions(2 * FIRST_PAGE + 20);
        let one_page = FLUSH_BOUNDARY_BYTES / INDEX_ENTRY_BYTES as u64;
        for (rel, &pos) in all[..FIRST_PAGE as usize - 1].iter().enumerate() {
            index.push_all(&[pos]).unwrap();
            assert_eq!(index.position(rel as u64), Some(pos), "entry {rel}, waiting");
        }
        assert!(
            entries_on_file(&path).is_empty(),
            "nothing written before the boundary"
        );
        assert_eq!(index.entries(), FIRST_PAGE - 1);
        assert_eq!(index.room(), 2 * FIRST_PAGE + 1);

        // The entry that ends the file's first page flushes them all, with
        // one write ending exactly at the boundary.
        index
            .push_all(&all[FIRST_PAGE as usize - 1..FIRST_PAGE as usize])
            .unwrap();
        assert_eq!(entries_on_file(&path), all[..FIRST_PAGE as usize]);
        assert_eq!(index.flushed, FIRST_PAGE);

        // A batch that crosses the next boundary goes whole, past it too.
        let cross = (FIRST_PAGE + one_page + 3) as usize;
        index.push_all(&all[FIRST_PAGE as usize..cross]).unwrap();
        assert_eq!(entries_on_file(&path), all[..cross]);
        index.push_all(&all[cross..]).unwrap();
        assert_eq!(entries_on_file(&path).len(), cross, "short of the next boundary");
        for (rel, &pos) in all.iter().enumerate() {
            assert_eq!(index.position(rel as u64), Some(pos), "entry {rel}");
        }
        assert_eq!(index.position(all.len() as u64), None);
    }

    #[test]
    fn waiting_entries_are_written_before_a_resize_a_seal_or_a_drop() {
        let dir = tempfile::tempdir().unwrap();
        let all = positions(9);
        let (path, mut index) = empty(dir.path(), 5, 100);
        index.push_all(&all[..3]).unwrap();
        index.set_capacity(200).unwrap();
        assert_eq!(entries_on_file(&path), all[..3]);

        index.push_all(&all[3..6]).unwrap();
        index.seal().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), file_len_for(6));
        let again = Index::open_checked(&path, 5, &all[..6]).unwrap().unwrap();
        assert_eq!(again.position(5), Some(all[5]));
        drop(again);

        let (path, mut index) = empty(dir.path(), 7, 100);
        index.push_all(&all).unwrap();
        drop(index);
        assert!(Index::open_checked(&path, 7, &all).unwrap().is_ok());
    }

    #[test]
    fn a_crash_with_entries_waiting_leaves_an_index_the_open_rebuilds() {
        let dir = tempfile::tempdir().unwrap();
        let all = positions(FIRST_PAGE + 4);
        let (path, mut index) = empty(dir.path(), 0, 2 * FIRST_PAGE);
        index.push_all(&all[..FIRST_PAGE as usize]).unwrap();
        index.push_all(&all[FIRST_PAGE as usize..]).unwrap();
        index.crash();
        // The file holds the first page: it lags the store by the rest.
        assert_eq!(entries_on_file(&path), all[..FIRST_PAGE as usize]);
        let reason = Index::open_checked(&path, 0, &all).unwrap().unwrap_err();
        assert!(
            reason.contains(&format!("entry {FIRST_PAGE} disagrees")),
            "{reason}"
        );
        let rebuilt = Index::rebuild(&path, 0, &all, 2 * FIRST_PAGE).unwrap();
        assert_eq!(
            rebuilt.position(FIRST_PAGE + 3),
            Some(all[FIRST_PAGE as usize + 3])
        );
    }

    #[test]
    fn a_failed_flush_is_an_io_error_of_whichever_call_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let all = positions(FIRST_PAGE);
        let (path, mut index) = empty(dir.path(), 0, 2 * FIRST_PAGE);
        // A handle that cannot write: every pwrite fails (EBADF).
        index.file = File::open(&path).unwrap();
        index.push_all(&all[..1]).unwrap();
        let is_write_error = |r: Result<()>| matches!(&r, Err(LogError::Io { context: "writing index", path: p, .. }) if p == &path);
        assert!(is_write_error(index.set_capacity(2 * FIRST_PAGE + 1)));
        assert!(is_write_error(index.push_all(&all[1..])));
        assert!(is_write_error(index.seal()));
        // The entries stay pushed, and still answer lookups.
        assert_eq!(index.entries(), FIRST_PAGE);
        assert_eq!(index.position(FIRST_PAGE - 1), all.last().copied());
    }
}
