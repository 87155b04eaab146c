//! Walking the records of a log directory in order, without opening the
//! log: for `walkvctl dump` and the checker's decode pass. The reader is the
//! one replay and the scan use ([`StoreReader`]).

use std::fs::File;
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::log::Offset;
use crate::log::dir::{self, store_path};
use crate::log::error::{LogError, Result};
use crate::log::header::{self, FILE_HEADER_BYTES, STORE_MAGIC};
use crate::log::scan::{Next, StoreReader};
use crate::log::segmented::gap_error;

/// One record, as [`walk`] hands it out.
#[derive(Debug)]
pub struct RecordRef<'a> {
    pub offset: Offset,
    /// The base offset of its segment.
    pub segment: Offset,
    pub store: &'a Path,
    /// Byte position of its header in the store.
    pub position: u64,
    pub payload: &'a [u8],
}

/// Where a walk stopped early: the first byte that is not the next record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    pub file: PathBuf,
    pub position: u64,
    /// The offset expected there.
    pub offset: Offset,
    pub reason: String,
}

/// Walks the records of the log directory `dir` from offset `from`, in
/// order, with the reader replay uses (every checksum and offset verified),
/// handing each to `visit` until it breaks. Returns the offset after the last
/// record walked, and where the walk stopped if it met a byte that is not
/// the next record (which [`super::check`] then classifies). Changes nothing and
/// takes no lock. The store an unfinished roll left under its temporary
/// name is walked last when the log ends exactly at its base: the open
/// adopts it then (see [`crate::log::roll`]).
pub fn walk(
    dir: &Path,
    from: Offset,
    max_record_bytes: u32,
    visit: &mut dyn FnMut(RecordRef<'_>) -> ControlFlow<()>,
) -> Result<(Offset, Option<Stop>)> {
    let listing = dir::list(dir)?;
    let mut stores: Vec<(Offset, PathBuf)> =
        listing.stores.iter().map(|&b| (b, store_path(dir, b))).collect();
    let mut unfinished = listing
        .unfinished_roll
        .map(|b| (b, dir::temp_path(&store_path(dir, b))));
    // Start in the last store whose base is at or below `from`.
    let first = stores.partition_point(|(b, _)| *b <= from).saturating_sub(1);
    let mut expected: Option<Offset> = None;
    let mut at = first;
    while let Some((base, path)) = stores.get(at).cloned() {
        at += 1;
        if let Some(LogError::Corruption { file, reason, .. }) =
            expected.and_then(|e| gap_error(dir, base, e))
        {
            let at = expected.unwrap_or(base);
            return Ok((at, Some(stop(&file, 0, at, reason))));
        }
        match walk_store(&path, base, from, max_record_bytes, visit)? {
            StoreWalk::End(next) => {
                expected = Some(next);
                // Taken once: an empty store ends where it starts.
                if at == stores.len()
                    && let Some(roll) = unfinished.take_if(|(b, _)| *b == next)
                {
                    stores.push(roll);
                }
            }
            StoreWalk::Stopped(next, stopped) => return Ok((next, Some(stopped))),
            StoreWalk::Broke(next) => return Ok((next, None)),
        }
    }
    Ok((expected.unwrap_or(0), None))
}

fn stop(file: &Path, position: u64, offset: Offset, reason: String) -> Stop {
    Stop {
        file: file.to_path_buf(),
        position,
        offset,
        reason,
    }
}

/// How the walk of one store ended, and the offset after its last record.
enum StoreWalk {
    End(Offset),
    Stopped(Offset, Stop),
    /// The visitor asked to stop.
    Broke(Offset),
}

fn walk_store(
    path: &Path,
    base: Offset,
    from: Offset,
    max: u32,
    visit: &mut dyn FnMut(RecordRef<'_>) -> ControlFlow<()>,
) -> Result<StoreWalk> {
    let file = File::open(path).map_err(|e| LogError::io("opening store", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| LogError::io("reading metadata of", path, e))?
        .len();
    let mut head = vec![0u8; FILE_HEADER_BYTES.min(len as usize)];
    file.read_exact_at(&mut head, 0)
        .map_err(|e| LogError::io("reading header of", path, e))?;
    if let Err(reason) = header::check(&head, STORE_MAGIC, base) {
        return Ok(StoreWalk::Stopped(base, stop(path, 0, base, reason)));
    }
    let mut reader = StoreReader::new(file, path, len, FILE_HEADER_BYTES as u64, max);
    let mut offset = base;
    loop {
        let (position, reason) = match reader.next(offset)? {
            Next::Record { pos, payload } => {
                let record = RecordRef {
                    offset,
                    segment: base,
                    store: path,
                    position: pos,
                    payload,
                };
                let wanted = offset >= from;
                offset += 1;
                if wanted && visit(record).is_break() {
                    return Ok(StoreWalk::Broke(offset));
                }
                continue;
            }
            Next::End => return Ok(StoreWalk::End(offset)),
            Next::Short { pos, available } => (pos, format!("short record: {available} bytes left")),
            Next::Invalid { pos, why } => (pos, why.to_string()),
        };
        return Ok(StoreWalk::Stopped(offset, stop(path, position, offset, reason)));
    }
}
