//! The store: the append-only file that holds a segment's records, after a
//! file header (see [`super::header`]). The store is the truth about a
//! segment; everything else is derived from it.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::Offset;
use super::error::{LogError, Result};
use super::header::{self, FILE_HEADER_BYTES, STORE_MAGIC};
use super::record::{self, Decoded};

/// Appended bytes are handed to the kernel's writeback (without waiting)
/// every this many, so that the fdatasync that seals a full segment finds
/// at most this much left to write. Under `everysec` and `no` a 64 MiB
/// segment would otherwise be sealed with most of it dirty, and every write
/// waits behind the lock for that fdatasync: 30 to 70 ms measured (the
/// engine bench's writer under `no`). Under `always` the range is already
/// clean and the call is cheap. As RocksDB's `wal_bytes_per_sync`, or
/// Redis's incremental fsync of its rewrite.
const WRITEBACK_BYTES: u64 = 1 << 20;

pub struct Store {
    file: File,
    path: PathBuf,
    base: Offset,
    /// Bytes in the file, header included: where the next record goes. Only
    /// the owner of the log changes it, after a write that fully succeeded.
    size: u64,
    /// Bytes handed to writeback so far.
    written_back: u64,
}

impl Store {
    /// Creates an empty store durably (its header written and fsynced, the
    /// directory fsynced).
    pub fn create(path: &Path, base: Offset) -> Result<Store> {
        super::dir::create_atomic(path, &header::encode(STORE_MAGIC, base), 0)?;
        Self::open(path, base)
    }

    /// Creates an empty store at `path` (a temporary name) with nothing
    /// fsynced: the fast half of a roll, see [`super::roll`].
    pub fn create_unsynced(path: &Path, base: Offset) -> Result<Store> {
        let file = super::dir::create_file(path)
            .and_then(|f| f.write_all_at(&header::encode(STORE_MAGIC, base), 0).map(|()| f))
            .map_err(|e| LogError::io("creating store", path, e))?;
        Ok(Store {
            file,
            path: path.to_path_buf(),
            base,
            size: FILE_HEADER_BYTES as u64,
            written_back: 0,
        })
    }

    /// Records that the file now bears the name `path` (its roll renamed it).
    pub fn renamed(&mut self, path: PathBuf) {
        self.path = path;
    }

    /// Opens an existing store and checks its header. The records are not
    /// checked here: that is [`super::scan`]'s job.
    pub fn open(path: &Path, base: Offset) -> Result<Store> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| LogError::io("opening store", path, e))?;
        let size = file
            .metadata()
            .map_err(|e| LogError::io("reading metadata of", path, e))?
            .len();
        let mut head = vec![0u8; FILE_HEADER_BYTES.min(size as usize)];
        file.read_exact_at(&mut head, 0)
            .map_err(|e| LogError::io("reading header of", path, e))?;
        header::check(&head, STORE_MAGIC, base).map_err(|reason| LogError::corruption(path, 0, reason))?;
        Ok(Store {
            file,
            path: path.to_path_buf(),
            base,
            size,
            written_back: size,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn base(&self) -> Offset {
        self.base
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Writes already-framed records at the end with one `pwrite` loop and
    /// returns the position of the first. On a write error the store's size
    /// is left unchanged, but the file may hold part of the bytes; on a
    /// writeback error (see [`WRITEBACK_BYTES`]) they are all in. Either way
    /// the caller fences, and no caller is told they were written.
    pub fn append_framed(&mut self, framed: &[u8]) -> Result<u64> {
        let pos = self.size;
        self.file
            .write_all_at(framed, pos)
            .map_err(|e| LogError::io("appending to", &self.path, e))?;
        self.size += framed.len() as u64;
        if self.size - self.written_back >= WRITEBACK_BYTES {
            self.start_writeback()?;
        }
        Ok(pos)
    }

    /// Starts writeback of what was appended since the last call, and
    /// returns without waiting for it. Nothing is durable because of it: an
    /// error still fences (the kernel may have dropped pages it could not
    /// write).
    fn start_writeback(&mut self) -> Result<()> {
        sync_file_range(
            &self.file,
            self.written_back,
            self.size,
            libc::SYNC_FILE_RANGE_WRITE,
        )
        .map_err(|e| LogError::io("starting writeback of", &self.path, e))?;
        self.written_back = self.size;
        Ok(())
    }

    /// Reads the record at `pos`, which must carry `offset`. The announced
    /// length is checked against `max_payload` and the file's size before a
    /// buffer is allocated for it.
    pub fn read_at(&self, pos: u64, offset: Offset, max_payload: u32) -> Result<Vec<u8>> {
        let mut head = [0u8; record::RECORD_HEADER_BYTES];
        if pos + head.len() as u64 > self.size {
            return Err(LogError::corruption(
                &self.path,
                pos,
                "record header past end of store",
            ));
        }
        self.file
            .read_exact_at(&mut head, pos)
            .map_err(|e| LogError::io("reading", &self.path, e))?;
        let len = record::announced_len(&head);
        let framed = record::framed_len(len as usize) as u64;
        if len > max_payload || pos + framed > self.size {
            return Err(LogError::corruption(
                &self.path,
                pos,
                format!("record length {len} is invalid at this position"),
            ));
        }
        let mut buf = vec![0u8; framed as usize];
        self.file
            .read_exact_at(&mut buf, pos)
            .map_err(|e| LogError::io("reading", &self.path, e))?;
        match record::decode(&buf, offset, max_payload) {
            Decoded::Record { size, .. } => {
                buf.truncate(size);
                buf.drain(..record::RECORD_HEADER_BYTES);
                Ok(buf)
            }
            Decoded::Incomplete { .. } => unreachable!("buffer holds the whole announced record"),
            Decoded::Invalid(why) => Err(LogError::corruption(&self.path, pos, why.to_string())),
        }
    }

    /// fdatasync: every record appended so far is on disk when this returns
    /// `Ok`. An error is fatal to the log (see [`LogError`]).
    pub fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .map(|()| super::trace::synced(&self.file, &self.path))
            .map_err(|e| LogError::io("fsyncing", &self.path, e))
    }

    /// Cuts the file at `len` and fsyncs, so that the cut survives a crash
    /// and later appends cannot be followed by the old tail.
    pub fn truncate(&mut self, len: u64) -> Result<()> {
        self.file
            .set_len(len)
            .and_then(|()| self.file.sync_all())
            .map(|()| super::trace::synced(&self.file, &self.path))
            .map_err(|e| LogError::io("truncating", &self.path, e))?;
        self.size = len;
        self.written_back = self.written_back.min(len);
        Ok(())
    }

    /// A second handle on the same open file, for readers that must keep
    /// working if the segment is removed meanwhile.
    pub fn clone_file(&self) -> Result<File> {
        self.file
            .try_clone()
            .map_err(|e| LogError::io("duplicating handle of", &self.path, e))
    }
}

/// `sync_file_range(2)` of the bytes `from..to` of `file`, with `flags`
/// (`SYNC_FILE_RANGE_*`): writeback started or waited for, never made
/// durable (only an fsync does that).
pub fn sync_file_range(file: &File, from: u64, to: u64, flags: libc::c_uint) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain system call on an open descriptor.
    let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), from as i64, (to - from) as i64, flags) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(offsets: std::ops::Range<Offset>) -> Vec<u8> {
        let mut v = Vec::new();
        for o in offsets {
            record::encode_into(&mut v, o, format!("payload {o}").as_bytes());
        }
        v
    }

    #[test]
    fn reopen_keeps_size_and_every_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000007.store");
        let mut store = Store::create(&path, 7).unwrap();
        assert_eq!(store.size(), FILE_HEADER_BYTES as u64);
        let first = store.append_framed(&framed(7..9)).unwrap();
        let third = store.append_framed(&framed(9..10)).unwrap();
        assert_eq!(first, FILE_HEADER_BYTES as u64);
        store.sync().unwrap();
        let size = store.size();
        drop(store);

        let again = Store::open(&path, 7).unwrap();
        assert_eq!(again.size(), size);
        assert_eq!(again.base(), 7);
        assert_eq!(again.read_at(first, 7, 1024).unwrap(), b"payload 7");
        let second = first + record::framed_len(b"payload 7".len()) as u64;
        assert_eq!(again.read_at(second, 8, 1024).unwrap(), b"payload 8");
        assert_eq!(again.read_at(third, 9, 1024).unwrap(), b"payload 9");
    }

    #[test]
    fn truncate_survives_reopen_and_reads_past_it_are_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.store");
        let mut store = Store::create(&path, 0).unwrap();
        let first = store.append_framed(&framed(0..1)).unwrap();
        let second = store.append_framed(&framed(1..2)).unwrap();
        store.truncate(second).unwrap();
        drop(store);

        let again = Store::open(&path, 0).unwrap();
        assert_eq!(again.size(), second);
        assert_eq!(again.read_at(first, 0, 1024).unwrap(), b"payload 0");
        let err = again.read_at(second, 1, 1024).unwrap_err();
        assert!(
            matches!(err, LogError::Corruption { offset, .. } if offset == second),
            "{err}"
        );
    }

    #[test]
    fn reading_with_the_wrong_offset_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.store");
        let mut store = Store::create(&path, 0).unwrap();
        let pos = store.append_framed(&framed(0..1)).unwrap();
        let err = store.read_at(pos, 1, 1024).unwrap_err();
        assert!(matches!(err, LogError::Corruption { .. }), "{err}");
    }

    #[test]
    fn open_refuses_a_header_for_another_base_or_a_short_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000005.store");
        drop(Store::create(&path, 5).unwrap());
        let err = Store::open(&path, 6).err().expect("base 6 must be refused");
        assert!(
            matches!(&err, LogError::Corruption { file, offset: 0, .. } if file == &path),
            "{err}"
        );

        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(FILE_HEADER_BYTES as u64 - 1)
            .unwrap();
        let err = Store::open(&path, 5)
            .err()
            .expect("a short header must be refused");
        assert!(matches!(err, LogError::Corruption { offset: 0, .. }), "{err}");
    }
}
