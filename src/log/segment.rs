//! A segment: one store and its index, named by the offset of its first
//! record. Recovery of one segment happens here in named steps: check the
//! store's header, scan its records, decide what the ending means, then check
//! (or rebuild) the index against what the scan found.

use std::fs;
use std::path::Path;

use tracing::{info, warn};

use super::Offset;
use super::config::LogConfig;
use super::dir::{index_path, store_path, temp_path};
use super::error::{LogError, Result};
use super::index::Index;
use super::record;
use super::roll::{Created, Durable, Steps};
use super::scan::{self, Ending, Scan};
use super::store::Store;

pub struct Segment {
    base: Offset,
    store: Store,
    index: Index,
}

/// What opening one segment found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentRecovery {
    pub records: u64,
    pub bytes: u64,
    /// Bytes cut from a torn tail (0 when the store ended cleanly).
    pub torn_bytes: u64,
    pub index_rebuilt: bool,
}

impl Segment {
    /// Creates an empty segment durably: the store, then the index (so a
    /// crash in between leaves a store whose index is simply rebuilt).
    pub fn create(dir: &Path, base: Offset, config: &LogConfig) -> Result<Segment> {
        let store = Store::create(&store_path(dir, base), base)?;
        let index = Index::rebuild(&index_path(dir, base), base, &[], config.index_capacity())?;
        Ok(Segment { base, store, index })
    }

    /// Opens an existing segment. Only the last segment may be repaired (its
    /// torn tail cut); damage anywhere else is corruption.
    pub fn recover(
        dir: &Path,
        base: Offset,
        config: &LogConfig,
        is_last: bool,
    ) -> Result<(Segment, SegmentRecovery)> {
        let mut store = Store::open(&store_path(dir, base), base)?;
        let scan = scan::scan(store.clone_file()?, store.path(), base, config.max_record_bytes)?;
        let torn_bytes = decide(&mut store, &scan, is_last)?;
        let capacity = if is_last {
            config.index_capacity()
        } else {
            scan.positions.len() as u64
        };
        let path = index_path(dir, base);
        let (index, index_rebuilt) = match Index::open_checked(&path, base, &scan.positions)? {
            Ok(mut index) => {
                index.set_capacity(capacity)?;
                (index, false)
            }
            Err(reason) => {
                info!(file = %path.display(), %reason, "rebuilding index from store");
                (Index::rebuild(&path, base, &scan.positions, capacity)?, true)
            }
        };
        let recovery = SegmentRecovery {
            records: scan.positions.len() as u64,
            bytes: store.size(),
            torn_bytes,
            index_rebuilt,
        };
        Ok((Segment { base, store, index }, recovery))
    }

    pub fn base(&self) -> Offset {
        self.base
    }

    /// The offset the next record appended here would get.
    pub fn next_offset(&self) -> Offset {
        self.base + self.index.entries()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn is_full(&self, config: &LogConfig) -> bool {
        self.store.size() >= config.max_segment_bytes || self.index.is_full()
    }

    /// Appends as many of `payloads` as fit, framed into `scratch`, with one
    /// write; returns how many. A segment always takes at least one record
    /// when it is not full. The caller checked each payload's size.
    pub fn append<P: AsRef<[u8]>>(
        &mut self,
        payloads: &[P],
        scratch: &mut Vec<u8>,
        config: &LogConfig,
    ) -> Result<usize> {
        scratch.clear();
        let mut free_entries = self.index.room();
        let mut count = 0;
        for payload in payloads {
            let pos = self.store.size() + scratch.len() as u64;
            if free_entries == 0 || pos >= config.max_segment_bytes {
                break;
            }
            record::encode_into(scratch, self.next_offset() + count as u64, payload.as_ref());
            free_entries -= 1;
            count += 1;
        }
        if count == 0 {
            return Ok(0);
        }
        let mut pos = self.store.append_framed(scratch)?;
        let positions: Vec<u64> = payloads[..count]
            .iter()
            .map(|payload| {
                let at = pos;
                pos += record::framed_len(payload.as_ref().len()) as u64;
                at
            })
            .collect();
        self.index.push_all(&positions)?;
        Ok(count)
    }

    /// Reads the record at `offset`, which must be in this segment.
    pub fn read(&self, offset: Offset, max_record_bytes: u32) -> Result<Vec<u8>> {
        let pos = self
            .index
            .position(offset - self.base)
            .expect("caller checked the offset is in this segment");
        self.store.read_at(pos, offset, max_record_bytes)
    }

    /// The store position of the record at `offset` in this segment, or the
    /// end of the store when `offset` is this segment's next offset.
    pub fn position(&self, offset: Offset) -> u64 {
        self.index
            .position(offset - self.base)
            .unwrap_or(self.store.size())
    }

    pub fn sync(&self) -> Result<()> {
        self.store.sync()
    }

    /// Makes the segment read-only for good: its records durable, its index
    /// trimmed. Called before the next segment is created, so that a later
    /// segment never holds records while an earlier one can still lose some.
    pub fn seal(&mut self) -> Result<()> {
        self.store.sync()?;
        self.index.seal()
    }

    /// Starts the segment that follows this full one: the fast half of a
    /// roll (see [`super::roll`]). This one's index entries are written and
    /// it takes no more records; the next one's files are created under
    /// temporary names. Nothing is fsynced: the steps returned do that.
    pub fn start_next(&mut self, dir: &Path, config: &LogConfig) -> Result<(Segment, Steps)> {
        let base = self.next_offset();
        let (full_index, full_index_len) = self.index.begin_seal()?;
        let (store_final, index_final) = (store_path(dir, base), index_path(dir, base));
        let store = Store::create_unsynced(&temp_path(&store_final), base)?;
        let index = Index::create_unsynced(&temp_path(&index_final), base, config.index_capacity())?;
        let steps = Steps {
            dir: dir.to_path_buf(),
            full_store: Durable {
                file: self.store.clone_file()?,
                path: self.store.path().to_path_buf(),
            },
            full_index: Durable {
                file: full_index,
                path: self.index.path().to_path_buf(),
            },
            full_index_len,
            new_store: Created {
                file: Durable {
                    file: store.clone_file()?,
                    path: store.path().to_path_buf(),
                },
                final_path: store_final,
            },
            new_index: Created {
                file: Durable {
                    file: index.clone_file()?,
                    path: index.path().to_path_buf(),
                },
                final_path: index_final,
            },
        };
        Ok((Segment { base, store, index }, steps))
    }

    /// Records that the roll that started this segment renamed its files
    /// into place.
    pub fn renamed_into_place(&mut self, dir: &Path) {
        self.store.renamed(store_path(dir, self.base));
        self.index.renamed(index_path(dir, self.base));
    }

    /// Deletes the segment's files: the store first, so that a crash in
    /// between leaves an orphan index (recognised and removed) rather than a
    /// store without its index below the others (which would look like data).
    pub fn remove(self, dir: &Path) -> Result<()> {
        let store = store_path(dir, self.base);
        let index = index_path(dir, self.base);
        drop(self);
        fs::remove_file(&store).map_err(|e| LogError::io("removing", &store, e))?;
        fs::remove_file(&index).map_err(|e| LogError::io("removing", &index, e))
    }
}

/// Acts on how the store ends: cut a torn tail of the last segment (returns
/// the bytes cut), refuse anything else that is not clean.
fn decide(store: &mut Store, scan: &Scan, is_last: bool) -> Result<u64> {
    match &scan.ending {
        Ending::Clean => Ok(0),
        Ending::Torn { pos, reason } if is_last => {
            let cut = scan.file_len - pos;
            warn!(
                file = %store.path().display(),
                position = pos,
                bytes_cut = cut,
                %reason,
                "truncating torn tail of the last segment"
            );
            store.truncate(*pos)?;
            Ok(cut)
        }
        Ending::Torn { pos, reason } => Err(LogError::corruption(
            store.path(),
            *pos,
            format!("{reason}, in a segment that is not the last"),
        )),
        Ending::Corrupt { pos, reason } => Err(LogError::corruption(store.path(), *pos, reason.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four records fill a segment's index; about five fill its store.
    fn tiny() -> LogConfig {
        LogConfig {
            max_segment_bytes: 200,
            max_index_bytes: 32 + 8 * 4,
            max_record_bytes: 1024,
        }
    }

    fn payload(offset: Offset) -> Vec<u8> {
        format!("segment payload {offset}").into_bytes()
    }

    /// A segment at `base` holding `count` records, left unsealed.
    fn filled(dir: &Path, base: Offset, count: u64) -> Segment {
        let config = tiny();
        let mut segment = Segment::create(dir, base, &config).unwrap();
        let payloads: Vec<_> = (base..base + count).map(payload).collect();
        let mut scratch = Vec::new();
        assert_eq!(
            segment.append(&payloads, &mut scratch, &config).unwrap(),
            count as usize
        );
        segment
    }

    fn assert_holds(segment: &Segment, base: Offset, count: u64) {
        assert_eq!(segment.base(), base);
        assert_eq!(segment.next_offset(), base + count);
        for offset in base..base + count {
            assert_eq!(segment.read(offset, 1024).unwrap(), payload(offset));
        }
    }

    #[test]
    fn append_stops_when_the_index_is_full() {
        let dir = tempfile::tempdir().unwrap();
        let config = tiny();
        let mut segment = Segment::create(dir.path(), 0, &config).unwrap();
        let payloads: Vec<_> = (0..6).map(payload).collect();
        let mut scratch = Vec::new();
        assert_eq!(segment.append(&payloads, &mut scratch, &config).unwrap(), 4);
        assert!(segment.is_full(&config));
        assert_eq!(segment.append(&payloads[4..], &mut scratch, &config).unwrap(), 0);
        assert_holds(&segment, 0, 4);
    }

    #[test]
    fn sealed_segment_reopens_as_it_was_without_a_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let mut segment = filled(dir.path(), 10, 3);
        segment.seal().unwrap();
        let size = segment.store().size();
        drop(segment);

        for is_last in [false, true] {
            let (again, found) = Segment::recover(dir.path(), 10, &tiny(), is_last).unwrap();
            assert_eq!(
                found,
                SegmentRecovery {
                    records: 3,
                    bytes: size,
                    torn_bytes: 0,
                    index_rebuilt: false
                }
            );
            assert_holds(&again, 10, 3);
            // Only the last segment gets its index room back.
            assert_eq!(again.is_full(&tiny()), !is_last);
        }
    }

    #[test]
    fn unsealed_last_segment_reopens_and_takes_more_records() {
        let dir = tempfile::tempdir().unwrap();
        drop(filled(dir.path(), 0, 2));
        let config = tiny();
        let (mut again, found) = Segment::recover(dir.path(), 0, &config, true).unwrap();
        assert_eq!(
            (found.records, found.torn_bytes, found.index_rebuilt),
            (2, 0, false)
        );
        let mut scratch = Vec::new();
        let more: Vec<_> = (2..4).map(payload).collect();
        assert_eq!(again.append(&more, &mut scratch, &config).unwrap(), 2);
        drop(again);

        let (again, found) = Segment::recover(dir.path(), 0, &config, true).unwrap();
        assert_eq!(found.records, 4);
        assert_holds(&again, 0, 4);
    }

    #[test]
    fn torn_tail_is_cut_only_in_the_last_segment() {
        let dir = tempfile::tempdir().unwrap();
        let segment = filled(dir.path(), 0, 3);
        let full = segment.store().size();
        let third = segment.position(2);
        drop(segment);
        let cut_at = third + 5;
        let store = store_path(dir.path(), 0);
        fs::OpenOptions::new()
            .write(true)
            .open(&store)
            .unwrap()
            .set_len(cut_at)
            .unwrap();
        assert!(cut_at < full);

        let err = Segment::recover(dir.path(), 0, &tiny(), false).err().unwrap();
        assert!(
            matches!(&err, LogError::Corruption { file, offset, .. } if file == &store && *offset == third),
            "{err}"
        );

        let (again, found) = Segment::recover(dir.path(), 0, &tiny(), true).unwrap();
        assert_eq!(found.torn_bytes, cut_at - third);
        assert!(found.index_rebuilt, "the index still named the cut record");
        assert_eq!(fs::metadata(&store).unwrap().len(), third);
        assert_holds(&again, 0, 2);
    }

    #[test]
    fn remove_deletes_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let segment = filled(dir.path(), 4, 1);
        segment.remove(dir.path()).unwrap();
        assert!(!store_path(dir.path(), 4).exists());
        assert!(!index_path(dir.path(), 4).exists());
    }
}
