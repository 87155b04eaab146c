//! Loading a snapshot: the file is read in large chunks, entries are parsed
//! in place, and the checksum runs over long spans of parsed bytes. Reading
//! field by field through a buffered reader, with a checksum update per
//! field, cost more than the table's inserts (perf, 1M keys).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{
    Damage, END_TAG, ENTRY_TAG, HEADER_BYTES, Loaded, SNAPSHOT_MAGIC, SNAPSHOT_VERSION, SNAPSHOT_VERSION_1,
};
use crate::engine::apply::{Appliers, applier_threads};
use crate::engine::error::{EngineError, Result};
use crate::engine::table::{BLOCK_OVERHEAD, Table};
use crate::log::Offset;

/// How much is read at a time.
const CHUNK: u64 = 1 << 20;

/// Loads the snapshot at `path` into `table` (which should be empty). The
/// checksum covers the whole file and is only known at its end, so on
/// `Err` the table holds a partial load and must be discarded.
pub fn load(
    path: &Path,
    expected_offset: Offset,
    table: &Table,
) -> Result<std::result::Result<Loaded, Damage>> {
    load_counting(path, expected_offset, table, &AtomicU64::new(0))
}

/// As [`load`], publishing the number of entries loaded so far in `loaded`
/// (every few thousand), so a supervisor can tell a long load from a stuck one.
pub fn load_counting(
    path: &Path,
    expected_offset: Offset,
    table: &Table,
    loaded: &AtomicU64,
) -> Result<std::result::Result<Loaded, Damage>> {
    let file = File::open(path).map_err(|e| EngineError::io("opening", path, e))?;
    table.reserve(trailer_count(&file).unwrap_or(0));
    let mut input = Input::new(file);
    // As in the log's replay, applier threads insert while this one reads.
    Ok(std::thread::scope(|scope| {
        let mut appliers = Appliers::start(scope, table, applier_threads());
        let loaded = read_entries(&mut input, expected_offset, table, loaded, &mut appliers);
        appliers.finish();
        loaded
    }))
}

/// The entry count the trailer claims, as a hint for presizing the table
/// (checked against the entries when they are read); at most one entry per
/// 18 bytes of file (the smallest entry), so a damaged trailer cannot make
/// the table reserve more than the file could hold.
fn trailer_count(file: &File) -> Option<usize> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata().ok()?.len();
    let mut version = [0u8; 4];
    file.read_exact_at(&mut version, 8).ok()?;
    let from_end = match u32::from_le_bytes(version) {
        SNAPSHOT_VERSION_1 => 12,
        _ => 20,
    };
    let mut count = [0u8; 8];
    file.read_exact_at(&mut count, len.checked_sub(from_end)?).ok()?;
    let most = len / 18;
    usize::try_from(u64::from_le_bytes(count).min(most)).ok()
}

fn read_entries(
    input: &mut Input,
    expected: Offset,
    table: &Table,
    loaded: &AtomicU64,
    appliers: &mut Appliers<'_>,
) -> std::result::Result<Loaded, Damage> {
    let damage = |input: &Input, reason: String| Damage {
        offset: input.position(),
        reason,
    };
    let header: [u8; HEADER_BYTES] = input
        .take(HEADER_BYTES)
        .map(|h| h.try_into().expect("header bytes"))
        .map_err(|e| damage(input, format!("reading header: {e}")))?;
    if header[0..8] != SNAPSHOT_MAGIC {
        return Err(Damage {
            offset: 0,
            reason: "bad magic".into(),
        });
    }
    let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    if version != SNAPSHOT_VERSION && version != SNAPSHOT_VERSION_1 {
        return Err(Damage {
            offset: 8,
            reason: format!("unsupported version {version}"),
        });
    }
    let offset = u64::from_le_bytes(header[16..24].try_into().expect("8 bytes"));
    if offset != expected {
        return Err(Damage {
            offset: super::OFFSET_AT,
            reason: format!("header says offset {offset}, the name {expected}"),
        });
    }
    let mut count = 0u64;
    loop {
        let at = input.position();
        let tag = input
            .u8()
            .map_err(|e| damage(input, format!("reading entry: {e}")))?;
        match tag {
            ENTRY_TAG => {
                let (key, value, expire_at_ms) = input.entry().map_err(|e| Damage {
                    offset: at,
                    reason: format!("reading entry: {e}"),
                })?;
                appliers.set(table.prepare_set(key, value, expire_at_ms, expected.saturating_sub(1)));
                count += 1;
                if count.is_multiple_of(4096) {
                    loaded.store(count, Ordering::Relaxed);
                }
            }
            END_TAG => break,
            other => {
                return Err(Damage {
                    offset: at,
                    reason: format!("unknown entry tag {other:#x}"),
                });
            }
        }
    }
    let n = input
        .u64()
        .map_err(|e| damage(input, format!("reading trailer: {e}")))?;
    let effects_below = if version == SNAPSHOT_VERSION_1 {
        None
    } else {
        Some(
            input
                .u64()
                .map_err(|e| damage(input, format!("reading trailer: {e}")))?,
        )
    };
    let computed = input.checksum();
    let crc = input
        .take(4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        .map_err(|e| damage(input, format!("reading checksum: {e}")))?;
    if crc != computed {
        return Err(damage(input, "checksum mismatch".into()));
    }
    if n != count {
        return Err(damage(
            input,
            format!("trailer counts {n} entries, found {count}"),
        ));
    }
    if input.more().map_err(|e| damage(input, e.to_string()))? {
        return Err(damage(input, "bytes after the checksum".into()));
    }
    let created_ms = u64::from_le_bytes(header[24..32].try_into().expect("8 bytes"));
    if let Some(e) = effects_below
        && e < offset
    {
        return Err(damage(
            input,
            format!("trailer says effects below offset {e}, under the snapshot's own offset {offset}"),
        ));
    }
    Ok(Loaded {
        keys: count,
        created_ms,
        effects_below,
    })
}

/// The file, read a chunk at a time into one buffer that fields are parsed
/// from in place. Every byte parsed is checksummed, in spans as long as the
/// buffer allows.
struct Input {
    file: File,
    buf: Vec<u8>,
    /// The file position of `buf[0]`.
    base: u64,
    /// The next byte to parse.
    at: usize,
    /// Bytes of `buf` already checksummed (up to `at`).
    hashed: usize,
    hasher: crc32fast::Hasher,
}

impl Input {
    fn new(file: File) -> Input {
        Input {
            file,
            buf: Vec::with_capacity(CHUNK as usize),
            base: 0,
            at: 0,
            hashed: 0,
            hasher: crc32fast::Hasher::new(),
        }
    }

    fn position(&self) -> u64 {
        self.base + self.at as u64
    }

    /// Makes `n` bytes past `at` available, or fails with `UnexpectedEof`.
    /// The buffer grows only as bytes arrive, never on the word of a length
    /// field.
    fn fill(&mut self, n: usize) -> io::Result<()> {
        while self.buf.len() - self.at < n {
            if self.at > 0 {
                self.hasher.update(&self.buf[self.hashed..self.at]);
                self.buf.drain(..self.at);
                self.base += self.at as u64;
                self.at = 0;
                self.hashed = 0;
            }
            let want = CHUNK.max((n - self.buf.len()) as u64).min(64 * CHUNK);
            if (&mut self.file).take(want).read_to_end(&mut self.buf)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(())
    }

    /// The next `n` bytes, parsed.
    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        self.fill(n)?;
        let start = self.at;
        self.at += n;
        Ok(&self.buf[start..self.at])
    }

    fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32_at(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.buf[at..at + 4].try_into().expect("4 bytes"))
    }

    fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    /// One entry after its tag: key length, key, value length, value,
    /// has-deadline, deadline.
    fn entry(&mut self) -> io::Result<(&[u8], &[u8], Option<u64>)> {
        self.fill(4)?;
        let key_len = self.u32_at(self.at) as usize;
        self.fill(4 + key_len + 4)?;
        let value_len = self.u32_at(self.at + 4 + key_len) as usize;
        if key_len as u64 + value_len as u64 + BLOCK_OVERHEAD as u64 > u32::MAX as u64 {
            // No record could have written it (the log's framing is
            // bounded the same way), and the table could not hold it.
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "entry larger than any record",
            ));
        }
        let entry = self.take(4 + key_len + 4 + value_len + 9)?;
        let (key, rest) = entry[4..].split_at(key_len);
        let (value, deadline) = rest[4..].split_at(value_len);
        let expire_at_ms = match deadline[0] {
            0 => None,
            1 => Some(u64::from_le_bytes(deadline[1..9].try_into().expect("8 bytes"))),
            _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "bad deadline flag")),
        };
        Ok((key, value, expire_at_ms))
    }

    /// The checksum of every byte parsed so far.
    fn checksum(&mut self) -> u32 {
        self.hasher.update(&self.buf[self.hashed..self.at]);
        self.hashed = self.at;
        self.hasher.clone().finalize()
    }

    /// Whether anything follows what was parsed.
    fn more(&mut self) -> io::Result<bool> {
        match self.fill(1) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
            Err(e) => Err(e),
        }
    }
}
