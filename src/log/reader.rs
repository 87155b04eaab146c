//! Reading the log in order from an offset: the replay path, and later the
//! tailing path. [`LogReader`] lends each payload without copying it;
//! [`LogIter`] is the same walk as an ordinary iterator of owned payloads.

use std::collections::VecDeque;
use std::fs::File;
use std::path::PathBuf;

use super::Offset;
use super::error::{LogError, Result};
use super::scan::{Next, StoreReader};

/// One segment's share of a read: records `first..end`, starting at byte
/// `start_pos` of a store whose readable length is `file_len`.
pub(crate) struct Part {
    pub file: File,
    pub path: PathBuf,
    pub first: Offset,
    pub end: Offset,
    pub start_pos: u64,
    pub file_len: u64,
}

pub struct LogReader {
    parts: VecDeque<Part>,
    /// The reader of the segment being walked, and the offset it ends at.
    current: Option<(StoreReader, Offset)>,
    /// Kept apart from `current` so that error paths can name the file while
    /// a payload borrowed from `current` is being returned elsewhere.
    current_path: PathBuf,
    /// The store position of the record returned last.
    last_pos: u64,
    next: Offset,
    max_payload: u32,
}

impl LogReader {
    pub(crate) fn new(parts: Vec<Part>, from: Offset, max_payload: u32) -> Self {
        LogReader {
            parts: parts.into(),
            current: None,
            current_path: PathBuf::new(),
            last_pos: 0,
            next: from,
            max_payload,
        }
    }

    /// The store file and byte position of the record returned last, for
    /// errors about its contents.
    pub fn last_location(&self) -> (&std::path::Path, u64) {
        (&self.current_path, self.last_pos)
    }

    /// The offset of the record the next call returns.
    pub fn next_offset(&self) -> Offset {
        self.next
    }

    /// The next record, or `None` at the end the log had when the reader was
    /// made. Every record's checksum and offset are verified.
    pub fn next_record(&mut self) -> Result<Option<(Offset, &[u8])>> {
        while self.current.as_ref().is_none_or(|(_, end)| self.next >= *end) {
            let Some(part) = self.parts.pop_front() else {
                return Ok(None);
            };
            debug_assert_eq!(part.first, self.next, "parts are contiguous");
            let reader = StoreReader::new(
                part.file,
                &part.path,
                part.file_len,
                part.start_pos,
                self.max_payload,
            );
            self.current = Some((reader, part.end));
            self.current_path = part.path;
        }
        let offset = self.next;
        let (reader, _) = self.current.as_mut().expect("set above");
        let pos = reader.position();
        let path = &self.current_path;
        match reader.next(offset)? {
            Next::Record { payload, pos } => {
                self.next += 1;
                self.last_pos = pos;
                Ok(Some((offset, payload)))
            }
            Next::End => Err(LogError::corruption(
                path,
                pos,
                "store ends before its indexed records do",
            )),
            Next::Short { pos, .. } => Err(LogError::corruption(path, pos, "short record")),
            Next::Invalid { pos, why } => Err(LogError::corruption(path, pos, why.to_string())),
        }
    }
}

/// An iterator of `(offset, payload)`; it ends after the first error.
pub struct LogIter {
    reader: Option<LogReader>,
}

impl LogIter {
    pub(crate) fn new(reader: LogReader) -> Self {
        LogIter { reader: Some(reader) }
    }
}

impl Iterator for LogIter {
    type Item = Result<(Offset, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        let reader = self.reader.as_mut()?;
        match reader.next_record() {
            Ok(Some((offset, payload))) => Some(Ok((offset, payload.to_vec()))),
            Ok(None) => {
                self.reader = None;
                None
            }
            Err(e) => {
                self.reader = None;
                Some(Err(e))
            }
        }
    }
}
