//! Reading a store from front to back: the one mechanism behind recovery on
//! open, replay, and (later) the offline checker, so they can never disagree
//! about which records are valid.
//!
//! [`StoreReader`] hands out records without copying them, reading the file in
//! large chunks. [`scan`] walks a whole store and classifies how it ends:
//! cleanly, in a torn tail (nothing valid after the first bad byte), or in
//! corruption (a bad record followed by a valid one).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::Offset;
use super::error::{LogError, Result};
use super::header::FILE_HEADER_BYTES;
use super::record::{self, Decoded, RECORD_HEADER_BYTES};

/// How much of a store is read per system call. Large enough that the
/// syscall cost vanishes next to CRC work; small enough not to matter in RSS.
const CHUNK_BYTES: usize = 1 << 20;

/// What sits at the reader's position.
#[derive(Debug)]
pub enum Next<'a> {
    Record {
        pos: u64,
        payload: &'a [u8],
    },
    /// The position is the end of the file.
    End,
    /// A record starts here but the file ends inside it.
    Short {
        pos: u64,
        available: u64,
    },
    /// The bytes here are not the expected record.
    Invalid {
        pos: u64,
        why: record::Invalid,
    },
}

/// A sequential, zero-copy reader of one store file.
pub struct StoreReader {
    file: File,
    path: PathBuf,
    /// The file's length when the reader was made; nothing past it is read.
    file_len: u64,
    max_payload: u32,
    buf: Vec<u8>,
    /// The file position of `buf[0]`.
    buf_pos: u64,
    /// Bytes of `buf` already handed out.
    consumed: usize,
}

impl StoreReader {
    /// A reader of `file` from byte `pos` to `file_len`.
    pub fn new(file: File, path: &Path, file_len: u64, pos: u64, max_payload: u32) -> Self {
        StoreReader {
            file,
            path: path.to_path_buf(),
            file_len,
            max_payload,
            buf: Vec::new(),
            buf_pos: pos,
            consumed: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn position(&self) -> u64 {
        self.buf_pos + self.consumed as u64
    }

    /// Decodes the record at the current position, expecting offset
    /// `expected`, and moves past it if it is whole and valid.
    pub fn next(&mut self, expected: Offset) -> Result<Next<'_>> {
        let pos = self.position();
        if pos >= self.file_len {
            return Ok(Next::End);
        }
        loop {
            match record::decode(&self.buf[self.consumed..], expected, self.max_payload) {
                Decoded::Record { size, .. } => {
                    let start = self.consumed;
                    self.consumed += size;
                    let payload = &self.buf[start + RECORD_HEADER_BYTES..start + size];
                    return Ok(Next::Record { pos, payload });
                }
                Decoded::Invalid(why) => return Ok(Next::Invalid { pos, why }),
                Decoded::Incomplete { needed } => {
                    if pos + needed as u64 > self.file_len {
                        let available = self.file_len - pos;
                        return Ok(Next::Short { pos, available });
                    }
                    self.fill(needed)?;
                }
            }
        }
    }

    /// Makes at least `needed` unconsumed bytes available (the caller checked
    /// that the file holds them), reading a whole chunk when it can.
    fn fill(&mut self, needed: usize) -> Result<()> {
        self.buf.drain(..self.consumed);
        self.buf_pos += self.consumed as u64;
        self.consumed = 0;
        let have = self.buf.len();
        let file_left = self.file_len - (self.buf_pos + have as u64);
        let want = needed.max(CHUNK_BYTES).saturating_sub(have);
        let read = (want as u64).min(file_left) as usize;
        self.buf.resize(have + read, 0);
        self.file
            .read_exact_at(&mut self.buf[have..], self.buf_pos + have as u64)
            .map_err(|e| LogError::io("reading", &self.path, e))
    }
}

/// How a store ends after its last valid record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Clean,
    /// Nothing valid follows the first bad byte at `pos`: what a crash during
    /// an append leaves. Safe to cut in the active segment.
    Torn {
        pos: u64,
        reason: String,
    },
    /// A bad record at `pos` is followed by a valid one: not a crash artefact.
    Corrupt {
        pos: u64,
        reason: String,
    },
}

/// A whole store, walked.
#[derive(Debug)]
pub struct Scan {
    /// The position of each valid record, in offset order from the base.
    pub positions: Vec<u64>,
    /// Where the last valid record ends.
    pub valid_end: u64,
    pub file_len: u64,
    pub ending: Ending,
}

/// Walks the store at `path` (whose header was already checked) from its
/// first record to the end of the file.
pub fn scan(file: File, path: &Path, base: Offset, max_payload: u32) -> Result<Scan> {
    let file_len = file
        .metadata()
        .map_err(|e| LogError::io("reading metadata of", path, e))?
        .len();
    let mut reader = StoreReader::new(file, path, file_len, FILE_HEADER_BYTES as u64, max_payload);
    let mut positions = Vec::new();
    let ending = loop {
        let expected = base + positions.len() as u64;
        let (pos, reason, why) = match reader.next(expected)? {
            Next::Record { pos, .. } => {
                positions.push(pos);
                continue;
            }
            Next::End => break Ending::Clean,
            Next::Short { pos, available } => (
                pos,
                format!("short record: {available} bytes left where a record starts"),
                None,
            ),
            Next::Invalid { pos, why } => (pos, why.to_string(), Some(why)),
        };
        break classify_damage(&reader, pos, expected, reason, why.as_ref())?;
    };
    let valid_end = reader.position().min(file_len);
    let valid_end = match &ending {
        Ending::Clean => valid_end,
        Ending::Torn { pos, .. } | Ending::Corrupt { pos, .. } => *pos,
    };
    Ok(Scan {
        positions,
        valid_end,
        file_len,
        ending,
    })
}

/// Decides whether the damage at `pos` is a torn tail or corruption, by
/// looking for any valid record at or past the expected offset from `pos` on.
/// Only runs once per damaged store; it streams the tail, so memory stays
/// bounded whatever the file's size.
fn classify_damage(
    reader: &StoreReader,
    pos: u64,
    expected: Offset,
    reason: String,
    why: Option<&record::Invalid>,
) -> Result<Ending> {
    let tail = Tail {
        file: &reader.file,
        path: &reader.path,
        file_len: reader.file_len,
    };
    // An intact record over the limit was written under a larger
    // max_record_bytes: cutting it would drop an acknowledged write.
    if let Some(record::Invalid::TooLong { len, max }) = why
        && tail.intact_at(pos, record::framed_len(*len as usize) as u64)?
    {
        let reason = format!(
            "an intact record of {len} bytes exceeds max_record_bytes ({max}); \
             was the limit lowered? raise it to open this log"
        );
        return Ok(Ending::Corrupt { pos, reason });
    }
    if tail.all_zero_from(pos)? {
        let reason = format!("zero-filled tail of {} bytes", reader.file_len - pos);
        return Ok(Ending::Torn { pos, reason });
    }
    match tail.find_valid_record(pos, expected, reader.max_payload)? {
        Some((at, offset)) => Ok(Ending::Corrupt {
            pos,
            reason: format!("{reason}, yet a valid record (offset {offset}) follows at byte {at}"),
        }),
        None => Ok(Ending::Torn { pos, reason }),
    }
}

/// The first position at or after `start` (below `file_len`) of the store at
/// `path` holding an intact record whose offset is at least `min_offset` and
/// plausible there, with that offset: the search [`scan`] makes to tell
/// corruption from a torn tail. The offline checker uses it to count what
/// lies past a corruption; it streams, so memory stays bounded.
pub fn find_valid_record(
    file: &File,
    path: &Path,
    file_len: u64,
    start: u64,
    min_offset: Offset,
    max_payload: u32,
) -> Result<Option<(u64, Offset)>> {
    if start >= file_len {
        return Ok(None);
    }
    Tail { file, path, file_len }.find_valid_record(start, min_offset, max_payload)
}

/// The part of a store past its last valid record, read in bounded chunks.
struct Tail<'a> {
    file: &'a File,
    path: &'a Path,
    file_len: u64,
}

impl Tail<'_> {
    fn read(&self, buf: &mut [u8], pos: u64) -> Result<()> {
        self.file
            .read_exact_at(buf, pos)
            .map_err(|e| LogError::io("reading", self.path, e))
    }

    fn all_zero_from(&self, mut pos: u64) -> Result<bool> {
        let mut buf = vec![0u8; CHUNK_BYTES];
        while pos < self.file_len {
            let n = (self.file_len - pos).min(CHUNK_BYTES as u64) as usize;
            self.read(&mut buf[..n], pos)?;
            if buf[..n].iter().any(|&b| b != 0) {
                return Ok(false);
            }
            pos += n as u64;
        }
        Ok(true)
    }

    /// Whether the `size` bytes at `pos` are a record whose checksum holds
    /// (whatever its offset), checked without holding it all in memory.
    fn intact_at(&self, pos: u64, size: u64) -> Result<bool> {
        if size < RECORD_HEADER_BYTES as u64 || pos + size > self.file_len {
            return Ok(false);
        }
        let mut head = [0u8; RECORD_HEADER_BYTES];
        self.read(&mut head, pos)?;
        let stored = u32::from_le_bytes(head[0..4].try_into().expect("4 bytes"));
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&head[4..]);
        let mut buf = vec![0u8; CHUNK_BYTES.min((size as usize).saturating_sub(RECORD_HEADER_BYTES))];
        let mut at = pos + RECORD_HEADER_BYTES as u64;
        while at < pos + size {
            let n = (pos + size - at).min(CHUNK_BYTES as u64) as usize;
            self.read(&mut buf[..n], at)?;
            hasher.update(&buf[..n]);
            at += n as u64;
        }
        Ok(hasher.finalize() == stored)
    }

    /// The first position at or after `start` holding an intact record whose
    /// offset is at least `min_offset` (and small enough to be plausible).
    fn find_valid_record(
        &self,
        start: u64,
        min_offset: Offset,
        max_payload: u32,
    ) -> Result<Option<(u64, Offset)>> {
        let max_records = (self.file_len - start) / RECORD_HEADER_BYTES as u64 + 1;
        let mut buf = Vec::new();
        let mut window = start;
        // Windows overlap by a header's width less one, so every position
        // with a whole header is examined exactly once.
        while window + RECORD_HEADER_BYTES as u64 <= self.file_len {
            let len = (self.file_len - window).min((CHUNK_BYTES + RECORD_HEADER_BYTES - 1) as u64) as usize;
            buf.resize(len, 0);
            self.read(&mut buf, window)?;
            for at in 0..=len - RECORD_HEADER_BYTES {
                let head = &buf[at..at + RECORD_HEADER_BYTES];
                let offset = record::announced_offset(head);
                let payload_len = record::announced_len(head);
                if offset < min_offset || offset - min_offset > max_records || payload_len > max_payload {
                    continue;
                }
                let pos = window + at as u64;
                if self.intact_at(pos, record::framed_len(payload_len as usize) as u64)? {
                    return Ok(Some((pos, offset)));
                }
            }
            window += (len - (RECORD_HEADER_BYTES - 1)) as u64;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(offsets: std::ops::Range<u64>) -> Vec<u8> {
        let mut v = Vec::new();
        for o in offsets {
            record::encode_into(&mut v, o, format!("payload-{o}").as_bytes());
        }
        v
    }

    /// Runs `check` on a [`Tail`] over a file holding `bytes`.
    fn with_tail(bytes: &[u8], check: impl FnOnce(&Tail)) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, bytes).unwrap();
        let file = f.reopen().unwrap();
        check(&Tail {
            file: &file,
            path: f.path(),
            file_len: bytes.len() as u64,
        });
    }

    #[test]
    fn finds_a_valid_record_after_garbage() {
        let mut bytes = vec![0xAB; 37];
        bytes.extend(records(10..11));
        with_tail(&bytes, |tail| {
            assert_eq!(tail.find_valid_record(0, 9, 1024).unwrap(), Some((37, 10)));
            assert_eq!(tail.find_valid_record(0, 11, 1024).unwrap(), None);
        });
    }

    #[test]
    fn finds_a_record_straddling_two_windows() {
        let mut bytes = vec![0xAB; CHUNK_BYTES - 5];
        bytes.extend(records(3..4));
        with_tail(&bytes, |tail| {
            let found = tail.find_valid_record(0, 3, 1024).unwrap();
            assert_eq!(found, Some(((CHUNK_BYTES - 5) as u64, 3)));
        });
    }

    #[test]
    fn garbage_alone_has_no_valid_record() {
        let bytes: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
        with_tail(&bytes, |tail| {
            assert_eq!(tail.find_valid_record(0, 0, 1 << 20).unwrap(), None);
            assert!(!tail.all_zero_from(0).unwrap());
        });
    }
}
