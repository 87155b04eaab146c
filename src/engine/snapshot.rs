//! Snapshots: the whole table as of a log offset, in one file, so that
//! replay starts there and the segments below it can be deleted.
//!
//! A snapshot is *fuzzy*: it is taken shard by shard while writes go on, so it
//! may hold some effects of records at or after its offset `S`. Replay starts
//! at `S` and re-applies those records; because every record states an effect
//! (a value, a deadline, a removal) applying it again changes nothing, and the
//! result is exactly the state the log describes.
//!
//! File `snapshot-<S, 20 digits>` in the data directory, integers
//! little-endian:
//!
//! 1. `0..8`   magic `WKVSNAPS`
//! 2. `8..12`  format version (`u32`), currently [`SNAPSHOT_VERSION`]
//! 3. `12..16` flags (`u32`), 0
//! 4. `16..24` `S`: replay continues at this log offset (`u64`)
//! 5. `24..32` creation time, ms since the Unix epoch (`u64`)
//! 6. entries, each: `1` (`u8`), key length `u32`, key, value length `u32`,
//!    value, has-deadline `u8`, deadline ms `u64`
//! 7. end: `0xFF` (`u8`), entry count (`u64`), then (version 2) `E` (`u64`),
//!    then the CRC32 of every byte before it
//!
//! `E` bounds the fuzziness: the table had begun to apply no record at or
//! after `E` when the copy finished, so the snapshot holds effects of records
//! below `E` only, and the log was made durable up to `E` before the snapshot
//! was. A log that ends below `E` has lost records the snapshot proves were
//! written (opening refuses it), and a repair that drops records below `E`
//! cannot give the state of any prefix of the log (`walkvctl repair` refuses
//! it). Version 1 files, written before `E` was kept, load with `E` unknown.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::error::{EngineError, Result};
use super::table::{SHARDS, Table};
use crate::log::{Offset, dir::sync_dir};

mod load;
pub use load::{load, load_counting};

pub const SNAPSHOT_MAGIC: [u8; 8] = *b"WKVSNAPS";
pub const SNAPSHOT_VERSION: u32 = 2;
/// The format before `E` was recorded; still read.
const SNAPSHOT_VERSION_1: u32 = 1;
const PREFIX: &str = "snapshot-";
const ENTRY_TAG: u8 = 1;
const END_TAG: u8 = 0xFF;
const HEADER_BYTES: usize = 32;
/// Where the header states the snapshot's offset `S`.
pub const OFFSET_AT: u64 = 16;

/// Where a version 2 snapshot of `len` bytes states its bound `E` (the
/// trailer's last fields: `E`, then the CRC).
pub fn bound_at(len: u64) -> u64 {
    len.saturating_sub(12)
}
/// How much of a snapshot is handed to writeback at a time (see `write`).
const WRITEBACK_BYTES: u64 = 1 << 20;

/// A snapshot that is durable on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub path: PathBuf,
    /// Replay continues at this offset.
    pub offset: Offset,
    pub keys: u64,
    pub bytes: u64,
    pub duration: Duration,
    /// When it was taken, ms since the Unix epoch (`LASTSAVE`).
    pub created_ms: u64,
    /// `E`: it holds effects of no record at or after this offset (`None`
    /// for a version 1 file, which did not record it).
    pub effects_below: Option<Offset>,
}

pub fn path_for(dir: &Path, offset: Offset) -> PathBuf {
    dir.join(format!("{PREFIX}{offset:020}"))
}

/// What a file name in the data directory says, for snapshots.
enum SnapshotName {
    /// `snapshot-<20 digits>`: a snapshot at that offset.
    Snapshot(Offset),
    /// `snapshot-<20 digits>.tmp` or `.deleting`: an interrupted write or removal.
    Leftover,
    /// Starts like a snapshot but is none (or names an impossible offset).
    Unexpected,
}

/// Every file of `dir` whose name starts like a snapshot's, parsed strictly.
fn snapshot_names(dir: &Path) -> Result<Vec<(SnapshotName, PathBuf)>> {
    let mut names = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| EngineError::io("listing", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| EngineError::io("listing", dir, e))?;
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        let digits = |s: &str| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit());
        let kind = if rest
            .strip_suffix(".tmp")
            .or_else(|| rest.strip_suffix(".deleting"))
            .is_some_and(digits)
        {
            SnapshotName::Leftover
        } else if digits(rest) {
            rest.parse()
                .map_or(SnapshotName::Unexpected, SnapshotName::Snapshot)
        } else {
            SnapshotName::Unexpected
        };
        names.push((kind, entry.path()));
    }
    Ok(names)
}

/// The snapshots in `dir`, oldest first. Names are parsed strictly; leftover
/// temporary files of an interrupted snapshot are removed.
pub fn list(dir: &Path) -> Result<Vec<(Offset, PathBuf)>> {
    let mut found = Vec::new();
    for (kind, path) in snapshot_names(dir)? {
        match kind {
            SnapshotName::Snapshot(offset) => found.push((offset, path)),
            SnapshotName::Leftover => {
                warn!(file = %path.display(), "removing an unfinished snapshot, or one half deleted");
                crate::log::trace::remove_file(&path).map_err(|e| EngineError::io("removing", &path, e))?;
            }
            SnapshotName::Unexpected => warn!(file = %path.display(), "ignoring unexpected file"),
        }
    }
    found.sort();
    Ok(found)
}

/// The snapshots in `dir`, oldest first, by the same strict names as
/// [`list`], but removing nothing: for the offline checker, which changes
/// nothing. Leftovers of an interrupted snapshot are not returned.
pub fn find(dir: &Path) -> Result<Vec<(Offset, PathBuf)>> {
    let mut found: Vec<(Offset, PathBuf)> = snapshot_names(dir)?
        .into_iter()
        .filter_map(|(kind, path)| match kind {
            SnapshotName::Snapshot(offset) => Some((offset, path)),
            _ => None,
        })
        .collect();
    found.sort();
    Ok(found)
}

/// Checks the snapshot at `path` exactly as opening the engine does, by
/// loading it into a table that is then dropped (so it needs the memory of
/// the whole table for a moment).
pub fn verify(path: &Path, expected_offset: Offset) -> Result<std::result::Result<Loaded, Damage>> {
    load(path, expected_offset, &Table::default())
}

/// Writes the table as a snapshot covering the log up to `offset`: to a
/// temporary file, fsynced, renamed into place, directory fsynced. Each shard
/// is copied under its read lock for a few microseconds; writes continue.
///
/// Once every shard is copied, `effects_below` is called: it must return `E`
/// (see the module doc), with the log durable up to it, before the snapshot
/// is made durable.
pub fn write(
    dir: &Path,
    offset: Offset,
    table: &Table,
    now_ms: u64,
    effects_below: impl FnOnce() -> Result<Offset>,
) -> Result<SnapshotInfo> {
    let started = Instant::now();
    let path = path_for(dir, offset);
    let tmp = path.with_extension("tmp");
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| EngineError::io("creating", &tmp, e))?;
    let mut out = Checksummed::new(BufWriter::with_capacity(1 << 20, file));
    let io = |e| EngineError::io("writing", &tmp, e);
    let mut header = [0u8; HEADER_BYTES];
    header[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
    header[8..12].copy_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    header[16..24].copy_from_slice(&offset.to_le_bytes());
    header[24..32].copy_from_slice(&now_ms.to_le_bytes());
    out.write_all(&header).map_err(io)?;
    let mut keys = 0u64;
    let mut writeback = Writeback::default();
    let mut last_report = Instant::now();
    for shard in 0..SHARDS {
        // Expired keys are kept: their removal is the log's business (a
        // logged delete). Dropping them here, by this thread's clock, could
        // drop a key whose deadline a later record (SetDeadline, which only
        // applies to a key that exists) moved or removed.
        for (key, entry) in table.shard_entries(shard) {
            write_entry(&mut out, &key, &entry.value, entry.expire_at_ms).map_err(io)?;
            keys += 1;
        }
        if out.position - writeback.started_to >= WRITEBACK_BYTES {
            // Write back as we go, a little at a time: a snapshot that
            // leaves hundreds of MB dirty makes the kernel throttle every
            // writer when it flushes them, and one that flushes 8 MiB at once
            // puts the log's fdatasync behind 8 MiB in the disk's queue.
            out.flush().map_err(io)?;
            writeback.advance(out.inner.get_ref(), out.position).map_err(io)?;
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            info!(percent = shard * 100 / SHARDS, keys, "snapshot in progress");
            last_report = Instant::now();
        }
    }
    let effects_below = effects_below()?;
    out.write_all(&[END_TAG]).map_err(io)?;
    out.write_all(&keys.to_le_bytes()).map_err(io)?;
    out.write_all(&effects_below.to_le_bytes()).map_err(io)?;
    let crc = out.hasher.clone().finalize();
    let mut file = out.inner.into_inner().map_err(|e| io(e.into_error()))?;
    file.write_all(&crc.to_le_bytes()).map_err(io)?;
    file.sync_all()
        .map(|()| crate::log::trace::synced(&file, &tmp))
        .map_err(|e| EngineError::io("fsyncing", &tmp, e))?;
    let bytes = file.metadata().map_err(io)?.len();
    drop(file);
    crate::log::trace::rename(&tmp, &path).map_err(|e| EngineError::io("renaming into place", &path, e))?;
    sync_dir(dir)?;
    let info = SnapshotInfo {
        path,
        offset,
        keys,
        bytes,
        duration: started.elapsed(),
        created_ms: now_ms,
        effects_below: Some(effects_below),
    };
    info!(file = %info.path.display(), offset, effects_below, keys, bytes, elapsed_ms = info.duration.as_millis() as u64, "snapshot written");
    Ok(info)
}

/// Writeback of a file being written, a range at a time: each range is
/// started (`SYNC_FILE_RANGE_WRITE`, which does not wait) once written, and
/// waited for when the next one starts, so that at most two ranges are in
/// the disk's queue. Nothing here makes data durable: the `fsync` at the end
/// does. (As RocksDB's `bytes_per_sync`.)
#[derive(Default)]
struct Writeback {
    /// The range handed to writeback last, and not yet waited for.
    in_flight: Option<(u64, u64)>,
    /// Bytes handed to writeback so far.
    started_to: u64,
}

impl Writeback {
    fn advance(&mut self, file: &File, written: u64) -> std::io::Result<()> {
        let range = |from, to, flags| crate::log::store::sync_file_range(file, from, to, flags);
        if let Some((from, to)) = self.in_flight.take() {
            let wait = libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER;
            range(from, to, wait)?;
        }
        range(self.started_to, written, libc::SYNC_FILE_RANGE_WRITE)?;
        self.in_flight = Some((self.started_to, written));
        self.started_to = written;
        Ok(())
    }
}

fn write_entry(out: &mut impl Write, key: &[u8], value: &[u8], at: Option<u64>) -> std::io::Result<()> {
    out.write_all(&[ENTRY_TAG])?;
    out.write_all(&(key.len() as u32).to_le_bytes())?;
    out.write_all(key)?;
    out.write_all(&(value.len() as u32).to_le_bytes())?;
    out.write_all(value)?;
    out.write_all(&[at.is_some() as u8])?;
    out.write_all(&at.unwrap_or(0).to_le_bytes())
}

/// Removes every snapshot older than `offset` (the one just made durable
/// supersedes them), then fsyncs the directory.
pub fn remove_older(dir: &Path, offset: Offset) -> Result<usize> {
    let mut removed = 0;
    for (old, path) in list(dir)? {
        if old < offset {
            crate::log::dir::remove_gradually(&path)?;
            removed += 1;
        }
    }
    if removed > 0 {
        sync_dir(dir)?;
    }
    Ok(removed)
}

/// Why a snapshot file cannot be used, and where.
#[derive(Debug)]
pub struct Damage {
    pub offset: u64,
    pub reason: String,
}

/// What loading a snapshot found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    pub keys: u64,
    pub created_ms: u64,
    /// `E` (see the module doc); `None` for a version 1 file.
    pub effects_below: Option<Offset>,
}

/// A writer that checksums every byte through it.
struct Checksummed<T> {
    inner: T,
    hasher: crc32fast::Hasher,
    position: u64,
}

impl<T> Checksummed<T> {
    fn new(inner: T) -> Self {
        Checksummed {
            inner,
            hasher: crc32fast::Hasher::new(),
            position: 0,
        }
    }
}

impl<W: Write> Write for Checksummed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.position += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::super::mutation::Mutation;
    use super::*;

    fn table_with(n: usize) -> Table {
        let t = Table::default();
        for i in 0..n {
            let m = Mutation::Set {
                key: Bytes::from(format!("key{i}")),
                value: Bytes::from(vec![i as u8; i % 50]),
                expire_at_ms: (i % 3 == 0).then_some(10_000 + i as u64),
            };
            t.apply(&m, i as u64);
        }
        t
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let t = table_with(1000);
        let info = write(dir.path(), 77, &t, 5, || Ok(80)).unwrap();
        assert_eq!(info.effects_below, Some(80));
        assert_eq!(info.keys, 1000);
        assert_eq!(list(dir.path()).unwrap(), vec![(77, info.path.clone())]);
        let loaded = Table::default();
        let found = load(&info.path, 77, &loaded).unwrap().unwrap();
        assert_eq!(
            found,
            Loaded {
                keys: 1000,
                created_ms: 5,
                effects_below: Some(80),
            }
        );
        for i in 0..1000 {
            let key = format!("key{i}");
            let (a, b) = (
                t.get(key.as_bytes(), 5).unwrap(),
                loaded.get(key.as_bytes(), 5).unwrap(),
            );
            assert_eq!((a.value, a.expire_at_ms), (b.value, b.expire_at_ms));
        }
    }

    #[test]
    fn entries_across_read_chunks_and_larger_than_one_load_whole() {
        // Values of many sizes, one of 3 MiB, so that entries straddle the
        // loader's 1 MiB chunks and one spans several.
        let t = Table::default();
        let value = |i: usize| vec![(i % 251) as u8; if i == 7 { 3 << 20 } else { i * 37 % 5000 }];
        for i in 0..3000 {
            let m = Mutation::Set {
                key: Bytes::from(format!("key{i}")),
                value: Bytes::from(value(i)),
                expire_at_ms: (i % 3 == 0).then_some(i as u64),
            };
            t.apply(&m, i as u64);
        }
        let dir = tempfile::tempdir().unwrap();
        let info = write(dir.path(), 3000, &t, 5, || Ok(3000)).unwrap();
        assert!(info.bytes > 8 << 20, "{} bytes", info.bytes);
        let loaded = Table::default();
        assert_eq!(load(&info.path, 3000, &loaded).unwrap().unwrap().keys, 3000);
        for i in 0..3000 {
            let got = loaded.get(format!("key{i}").as_bytes(), 0).unwrap();
            assert_eq!(
                (&got.value[..], got.expire_at_ms),
                (&value(i)[..], (i % 3 == 0).then_some(i as u64))
            );
        }
    }

    #[test]
    fn expired_keys_are_kept_for_the_log_to_remove() {
        let dir = tempfile::tempdir().unwrap();
        let info = write(dir.path(), 0, &table_with(30), 20_000, || Ok(0)).unwrap();
        assert_eq!(
            info.keys, 30,
            "a record after the snapshot may still revive their deadline"
        );
    }

    #[test]
    fn every_flipped_byte_and_every_cut_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let info = write(dir.path(), 3, &table_with(20), 5, || Ok(9)).unwrap();
        let good = fs::read(&info.path).unwrap();
        let bad_path = dir.path().join("bad");
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            fs::write(&bad_path, &bad).unwrap();
            assert!(
                load(&bad_path, 3, &Table::default()).unwrap().is_err(),
                "flip at byte {i} accepted"
            );
        }
        for cut in 0..good.len() {
            fs::write(&bad_path, &good[..cut]).unwrap();
            assert!(
                load(&bad_path, 3, &Table::default()).unwrap().is_err(),
                "cut at {cut} accepted"
            );
        }
    }

    /// Rewrites a version 2 file as version 1 would have written it.
    fn as_version_1(v2: &[u8]) -> Vec<u8> {
        let body = &v2[..v2.len() - 12]; // without E and the CRC
        let mut v1 = body.to_vec();
        v1[8..12].copy_from_slice(&1u32.to_le_bytes());
        let crc = crc32fast::hash(&v1);
        v1.extend_from_slice(&crc.to_le_bytes());
        v1
    }

    #[test]
    fn a_version_1_file_loads_with_its_bound_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let info = write(dir.path(), 3, &table_with(20), 5, || Ok(9)).unwrap();
        fs::write(&info.path, as_version_1(&fs::read(&info.path).unwrap())).unwrap();
        let table = Table::default();
        let found = load(&info.path, 3, &table).unwrap().unwrap();
        assert_eq!((found.keys, found.effects_below), (20, None));
        assert_eq!(table.len(), 20);
    }

    #[test]
    fn a_bound_below_the_snapshots_offset_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        let info = write(dir.path(), 10, &table_with(2), 5, || Ok(9)).unwrap();
        let damage = load(&info.path, 10, &Table::default()).unwrap().unwrap_err();
        assert!(
            damage.reason.contains("effects below offset 9"),
            "{}",
            damage.reason
        );
    }

    #[test]
    fn remove_older_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let t = table_with(3);
        for off in [5, 9, 12] {
            write(dir.path(), off, &t, 0, || Ok(off)).unwrap();
        }
        fs::write(dir.path().join("snapshot-00000000000000000013.tmp"), b"partial").unwrap();
        assert_eq!(remove_older(dir.path(), 12).unwrap(), 2);
        assert_eq!(list(dir.path()).unwrap().len(), 1);
        assert!(!dir.path().join("snapshot-00000000000000000013.tmp").exists());
    }
}
