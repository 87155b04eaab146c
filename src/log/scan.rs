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
        let (pos, reason) = match reader.next(expected)? {
            Next::Record { pos, .. } => {
                positions.push(pos);
                continue;
            }
            Next::End => break Ending::Clean,
            Next::Short { pos, available } => (
                pos,
                format!("short record: {available} bytes left where a record starts"),
            ),
            Next::Invalid { pos, why } => (pos, why.to_string()),
        };
        break classify_damage(&reader, pos, expected, reason)?;
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
/// looking for any valid record at or past the expected offset later in the
/// file. Only runs once per damaged store, so a byte-by-byte search is fine.
fn classify_damage(reader: &StoreReader, pos: u64, expected: Offset, reason: String) -> Result<Ending> {
    let mut rest = vec![0u8; (reader.file_len - pos) as usize];
    reader
        .file
        .read_exact_at(&mut rest, pos)
        .map_err(|e| LogError::io("reading", &reader.path, e))?;
    if rest.iter().all(|&b| b == 0) {
        let reason = format!("zero-filled tail of {} bytes", rest.len());
        return Ok(Ending::Torn { pos, reason });
    }
    match find_valid_record(&rest[1..], expected, reader.max_payload) {
        Some((at, offset)) => Ok(Ending::Corrupt {
            pos,
            reason: format!(
                "{reason}, yet a valid record (offset {offset}) follows at byte {}",
                pos + 1 + at as u64
            ),
        }),
        None => Ok(Ending::Torn { pos, reason }),
    }
}

/// The first position in `bytes` holding a valid record whose offset is at
/// least `min_offset` (and small enough to be plausible there).
fn find_valid_record(bytes: &[u8], min_offset: Offset, max_payload: u32) -> Option<(usize, Offset)> {
    let max_records = (bytes.len() / RECORD_HEADER_BYTES) as u64 + 1;
    (0..bytes.len().saturating_sub(RECORD_HEADER_BYTES - 1)).find_map(|at| {
        let head = &bytes[at..];
        let offset = record::announced_offset(head);
        if offset < min_offset || offset - min_offset > max_records {
            return None;
        }
        match record::decode(head, offset, max_payload) {
            Decoded::Record { .. } => Some((at, offset)),
            _ => None,
        }
    })
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

    #[test]
    fn finds_a_valid_record_after_garbage() {
        let mut bytes = vec![0xAB; 37];
        bytes.extend(records(10..11));
        assert_eq!(find_valid_record(&bytes, 9, 1024), Some((37, 10)));
        assert_eq!(find_valid_record(&bytes, 11, 1024), None);
    }

    #[test]
    fn garbage_alone_has_no_valid_record() {
        let bytes: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
        assert_eq!(find_valid_record(&bytes, 0, 1 << 20), None);
    }
}
