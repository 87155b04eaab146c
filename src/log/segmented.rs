//! The log: the ordered segments of one directory, of which only the last,
//! the active one, is written. Opening it takes the directory's lock and
//! recovers every segment; appending rolls a new segment when the active one
//! is full (the roll's fsyncs are left to another thread, see [`super::roll`]);
//! compaction removes whole segments from the front.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::Offset;
use super::config::LogConfig;
use super::dir::{self, Listing};
use super::error::{LogError, Result};
use super::reader::{LogIter, LogReader, Part};
use super::roll::{Roll, SyncHandle};
use super::segment::Segment;

pub struct Log {
    dir: PathBuf,
    config: LogConfig,
    /// Held open for the life of the log: the kernel drops the lock with it.
    _lock: File,
    /// Oldest first, contiguous in offsets, never empty; the last is active.
    segments: Vec<Segment>,
    /// The roll that started the active segment, until it is finished and
    /// settled ([`Log::settle_roll`]); the active segment's files bear
    /// temporary names meanwhile.
    roll: Option<Arc<Roll>>,
    recovery: Recovery,
    /// Set by the first failed write or fsync; from then on nothing is
    /// written (see [`LogError::Fenced`]).
    fenced: Option<String>,
    stats: LogStats,
    /// Reused framing buffer, so an append does not allocate.
    scratch: Vec<u8>,
}

/// A log dropped without [`Log::close`] (a crash, in tests) lets go of its
/// directory: a roll still unfinished is abandoned, so that no thread
/// holding a [`SyncHandle`] renames files in a directory another `Log` may
/// have opened since. The next open adopts or deletes its store.
impl Drop for Log {
    fn drop(&mut self) {
        if let Some(roll) = &self.roll {
            roll.abandon();
        }
    }
}

/// What opening the log found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    pub segments: usize,
    pub records: u64,
    pub bytes: u64,
    /// Bytes cut from a torn tail of the last segment.
    pub torn_bytes: u64,
    pub indexes_rebuilt: usize,
    pub duration: Duration,
}

impl Recovery {
    fn add(&mut self, found: &super::segment::SegmentRecovery) {
        self.records += found.records;
        self.bytes += found.bytes;
        self.torn_bytes += found.torn_bytes;
        self.indexes_rebuilt += found.index_rebuilt as usize;
    }
}

/// Counters of the work the log has done since it was opened. Tests use them
/// to assert a sync policy; the server reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogStats {
    pub records_appended: u64,
    /// `pwrite` calls; a batch is one (or one per segment it spans).
    pub writes: u64,
    pub bytes_written: u64,
    pub syncs: u64,
    pub last_sync: Duration,
    pub total_sync: Duration,
}

impl Log {
    /// Opens (or creates) the log in `dir`, recovering every segment.
    ///
    /// Fails with [`LogError::Locked`] if another process holds the directory,
    /// and with [`LogError::Corruption`] if any segment is damaged in a way a
    /// crash cannot explain. A torn tail of the last segment is cut.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Log> {
        let started = Instant::now();
        let dir = dir.as_ref().to_path_buf();
        config.validate()?;
        dir::create_dir(&dir)?;
        let lock = dir::lock(&dir)?;
        let listing = dir::list(&dir)?;
        dir::clean(&listing)?;
        remove_orphan_indexes(&dir, &listing)?;
        let (mut segments, mut recovery) = recover_segments(&dir, &listing.stores, &config)?;
        if let Some(base) = listing.unfinished_roll {
            adopt_unfinished_roll(&dir, base, &mut segments, &mut recovery, &config)?;
        }
        // What the last store holds may be in the page cache only (a process
        // killed between its write and its fsync): make it durable before
        // anyone reads it, so that nothing served after a restart can still
        // be lost.
        segments.last().expect("never empty").sync()?;
        recovery.segments = segments.len();
        recovery.duration = started.elapsed();
        let log = Log {
            dir,
            config,
            _lock: lock,
            segments,
            roll: None,
            recovery,
            fenced: None,
            stats: LogStats::default(),
            scratch: Vec::new(),
        };
        info!(
            dir = %log.dir.display(),
            segments = log.recovery.segments,
            records = log.recovery.records,
            torn_bytes = log.recovery.torn_bytes,
            first_offset = log.lowest_offset(),
            next_offset = log.next_offset(),
            elapsed_ms = log.recovery.duration.as_millis() as u64,
            "log opened"
        );
        Ok(log)
    }

    /// Appends one record and returns its offset. Not durable until
    /// [`Log::sync`] returns.
    pub fn append(&mut self, payload: &[u8]) -> Result<Offset> {
        self.append_batch(&[payload]).map(|range| range.start)
    }

    /// Appends records with one write (one per segment when the batch rolls a
    /// segment) and returns their offsets. Payloads are checked first, so a
    /// too-large one means nothing is written.
    pub fn append_batch<P: AsRef<[u8]>>(&mut self, payloads: &[P]) -> Result<Range<Offset>> {
        self.check_fenced()?;
        let max = self.config.max_record_bytes;
        if let Some(p) = payloads.iter().find(|p| p.as_ref().len() > max as usize) {
            return Err(LogError::RecordTooLarge {
                len: p.as_ref().len(),
                max,
            });
        }
        let start = self.next_offset();
        let mut done = 0;
        while done < payloads.len() {
            let result = self.append_to_active(&payloads[done..]);
            done += self.fence_on_error(result)?;
        }
        Ok(start..self.next_offset())
    }

    fn append_to_active<P: AsRef<[u8]>>(&mut self, payloads: &[P]) -> Result<usize> {
        if self.active().is_full(&self.config) {
            self.roll()?;
        }
        let active = self.segments.last_mut().expect("never empty");
        let count = active.append(payloads, &mut self.scratch, &self.config)?;
        assert!(count > 0, "a segment that is not full took no record");
        self.stats.records_appended += count as u64;
        self.stats.writes += 1;
        self.stats.bytes_written += self.scratch.len() as u64;
        Ok(count)
    }

    /// Starts a new segment after the full active one, leaving the fsyncs
    /// that make both durable to [`Log::unfinished_roll`]'s taker (or to the
    /// next sync). The previous roll is finished first: one at a time.
    fn roll(&mut self) -> Result<()> {
        self.finish_roll()?;
        let active = self.segments.last_mut().expect("never empty");
        let (segment, steps) = active.start_next(&self.dir, &self.config)?;
        debug!(base = segment.base(), "rolled to a new segment");
        self.segments.push(segment);
        self.roll = Some(Arc::new(Roll::new(steps)));
        Ok(())
    }

    /// The roll that started the active segment, while it is unfinished:
    /// for a thread to finish without the log ([`Roll::finish`]), which
    /// then tells the log ([`Log::settle_roll`]).
    pub fn unfinished_roll(&self) -> Option<Arc<Roll>> {
        self.roll.as_ref().filter(|roll| !roll.is_done()).cloned()
    }

    /// Takes note of a roll finished on another thread: the active
    /// segment's files now bear their names. Its failure fences the log, as
    /// a failed fsync does. Does nothing while the roll is unfinished.
    pub fn settle_roll(&mut self) -> Result<()> {
        // Taken either way: a failure fences once, not at every call.
        let Some(roll) = self.roll.take_if(|roll| roll.is_done()) else {
            return Ok(());
        };
        let result = roll.finish();
        self.fence_on_error(result)?;
        let dir = self.dir.clone();
        self.segments
            .last_mut()
            .expect("never empty")
            .renamed_into_place(&dir);
        Ok(())
    }

    /// Finishes the roll that started the active segment here, if no other
    /// thread did.
    fn finish_roll(&mut self) -> Result<()> {
        if let Some(roll) = &self.roll {
            let result = roll.finish();
            self.fence_on_error(result)?;
        }
        self.settle_roll()
    }

    /// fdatasyncs the active segment: every record appended before this call
    /// is durable when it returns `Ok` (it finishes the active segment's roll
    /// first, which makes the segment before durable; earlier ones were made
    /// durable by their own rolls). An error fences the log and must be
    /// treated as fatal.
    pub fn sync(&mut self) -> Result<()> {
        self.check_fenced()?;
        self.finish_roll()?;
        let started = Instant::now();
        let result = self.active().sync();
        self.fence_on_error(result)?;
        let took = started.elapsed();
        self.stats.syncs += 1;
        self.stats.last_sync = took;
        self.stats.total_sync += took;
        Ok(())
    }

    /// Records an fdatasync of the active store made on another thread,
    /// through [`Log::sync_handle`] (it covers what was appended
    /// before it started): its time goes into the stats as [`Log::sync`]'s
    /// would, and an error fences the log, as it would there.
    pub fn record_sync(&mut self, result: std::io::Result<()>, took: std::time::Duration) -> Result<()> {
        self.check_fenced()?;
        let path = self.active().store().path().to_path_buf();
        let result = result.map_err(|e| LogError::io("fsyncing", &path, e));
        self.fence_on_error(result)?;
        self.stats.syncs += 1;
        self.stats.last_sync = took;
        self.stats.total_sync += took;
        self.settle_roll()
    }

    /// Reads the record at `offset`.
    pub fn read(&self, offset: Offset) -> Result<Vec<u8>> {
        self.check_range(offset)?;
        if offset == self.next_offset() {
            return Err(self.out_of_range(offset));
        }
        self.segment_of(offset).read(offset, self.config.max_record_bytes)
    }

    /// A zero-copy reader of the records from `from` up to the current next
    /// offset. It holds its own file handles, so it keeps working while the
    /// log appends or removes segments.
    pub fn reader(&self, from: Offset) -> Result<LogReader> {
        self.check_range(from)?;
        let mut parts = Vec::new();
        for segment in self.segments.iter().filter(|s| s.next_offset() > from) {
            let first = from.max(segment.base());
            parts.push(Part {
                file: segment.store().clone_file()?,
                path: segment.store().path().to_path_buf(),
                first,
                end: segment.next_offset(),
                start_pos: segment.position(first),
                file_len: segment.store().size(),
            });
        }
        Ok(LogReader::new(parts, from, self.config.max_record_bytes))
    }

    /// The records from `from` up to the current next offset, copied out.
    pub fn iter_from(&self, from: Offset) -> Result<LogIter> {
        Ok(LogIter::new(self.reader(from)?))
    }

    /// Removes every segment whose records are all below `offset`, oldest
    /// first, fsyncing the directory after each, so that a crash leaves a
    /// contiguous log. The active segment is never removed. Returns how many
    /// segments were removed.
    pub fn remove_below(&mut self, offset: Offset) -> Result<usize> {
        self.check_fenced()?;
        // Never leave the active segment's files under temporary names as
        // the only ones: finish its roll first.
        self.finish_roll()?;
        let mut removed = 0;
        while self.segments.len() > 1 && self.segments[0].next_offset() <= offset {
            let segment = self.segments.remove(0);
            debug!(base = segment.base(), "removing segment");
            // A failed unlink or directory fsync leaves the directory in
            // doubt; like a failed write it fences the log.
            super::trace::unlinking(&dir::store_path(&self.dir, segment.base()));
            super::trace::unlinking(&dir::index_path(&self.dir, segment.base()));
            let result = segment.remove(&self.dir).and_then(|()| dir::sync_dir(&self.dir));
            self.fence_on_error(result)?;
            removed += 1;
        }
        Ok(removed)
    }

    /// A handle through which any thread makes every record appended so
    /// far durable: it finishes the active segment's roll if need be, then
    /// fdatasyncs the active store (see [`SyncHandle`]). Report what it
    /// did with [`Log::record_sync`].
    pub fn sync_handle(&self) -> Result<SyncHandle> {
        Ok(SyncHandle::new(
            self.active().store().clone_file()?,
            self.roll.clone(),
        ))
    }

    /// Drops from the log, without touching any file, every segment whose
    /// records are all below `offset` (never the active one): for when
    /// [`remove_segments_below`] already deleted their files from another
    /// thread. Returns how many.
    pub fn forget_below(&mut self, offset: Offset) -> usize {
        let keep_from = self.segments[..self.segments.len() - 1]
            .iter()
            .take_while(|s| s.next_offset() <= offset)
            .count();
        self.segments.drain(..keep_from);
        keep_from
    }

    /// Shuts the log down cleanly: the active segment is synced and its index
    /// trimmed, so the next open finds nothing to repair. Dropping a log
    /// without closing it is what a crash looks like, minus the page cache
    /// (and minus the active index's entries held in memory, which a drop
    /// still writes; a process killed outright loses them, and the next open
    /// rebuilds that index).
    pub fn close(mut self) -> Result<()> {
        self.check_fenced()?;
        self.finish_roll()?;
        let result = self.segments.last_mut().expect("never empty").seal();
        self.fence_on_error(result)
    }

    /// The offset of the oldest record held (equal to [`Log::next_offset`]
    /// when the log is empty).
    pub fn lowest_offset(&self) -> Offset {
        self.segments[0].base()
    }

    /// The offset the next appended record will get.
    pub fn next_offset(&self) -> Offset {
        self.active().next_offset()
    }

    /// The base offset of the active segment (it changes when the log rolls).
    pub fn active_base(&self) -> Offset {
        self.active().base()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Bytes held in all stores.
    pub fn total_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.store().size()).sum()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    pub fn stats(&self) -> &LogStats {
        &self.stats
    }

    /// Why the log refuses writes, if it does.
    pub fn fenced(&self) -> Option<&str> {
        self.fenced.as_deref()
    }

    fn active(&self) -> &Segment {
        self.segments.last().expect("never empty")
    }

    fn segment_of(&self, offset: Offset) -> &Segment {
        let i = self.segments.partition_point(|s| s.base() <= offset);
        &self.segments[i - 1]
    }

    fn check_range(&self, offset: Offset) -> Result<()> {
        if offset < self.lowest_offset() || offset > self.next_offset() {
            return Err(self.out_of_range(offset));
        }
        Ok(())
    }

    fn out_of_range(&self, offset: Offset) -> LogError {
        LogError::OffsetOutOfRange {
            offset,
            lowest: self.lowest_offset(),
            next: self.next_offset(),
        }
    }

    fn check_fenced(&self) -> Result<()> {
        match &self.fenced {
            Some(cause) => Err(LogError::Fenced { cause: cause.clone() }),
            None => Ok(()),
        }
    }

    /// After a failed write or fsync the state of the file is unknown, so
    /// the log fences itself rather than let anyone retry.
    fn fence_on_error<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Err(err @ (LogError::Io { .. } | LogError::Corruption { .. })) = &result {
            warn!(error = %err, "log fenced: no further writes will be accepted");
            self.fenced = Some(err.to_string());
        }
        result
    }
}

/// Deletes, from the log directory `dir`, every segment whose records are
/// all below `offset`, as [`Log::remove_below`] does (oldest first, store then
/// index, the directory fsynced after each) but from the files alone, so that
/// a thread other than the log's owner can do the slow unlinks. The last
/// store is never deleted. The owner then calls [`Log::forget_below`].
/// Callers must not run two of these on one directory at once.
pub fn remove_segments_below(dir: &Path, offset: Offset) -> Result<usize> {
    let stores = dir::list(dir)?.stores;
    let mut removed = 0;
    for pair in stores.windows(2) {
        let (base, next_base) = (pair[0], pair[1]);
        if next_base > offset {
            break;
        }
        // The store first (an index left behind below the first store is an
        // orphan the next open removes); the index is small.
        dir::remove_gradually(&dir::store_path(dir, base))?;
        let index = dir::index_path(dir, base);
        match super::trace::remove_file(&index) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LogError::io("removing", &index, e)),
        }
        dir::sync_dir(dir)?;
        removed += 1;
    }
    Ok(removed)
}

/// Removes index files whose store is gone: what a crash in the middle of
/// [`Log::remove_below`] leaves, below the first store. An index without its
/// store anywhere else means a store was lost, which is corruption.
fn remove_orphan_indexes(dir: &Path, listing: &Listing) -> Result<()> {
    for &base in &listing.indexes {
        if listing.stores.binary_search(&base).is_ok() {
            continue;
        }
        let path = dir::index_path(dir, base);
        if !orphan_is_leftover(listing, base) {
            return Err(LogError::corruption(&path, 0, ORPHAN_REASON));
        }
        warn!(file = %path.display(), "removing index left behind by an interrupted segment removal");
        super::trace::remove_file(&path).map_err(|e| LogError::io("removing", &path, e))?;
    }
    dir::sync_dir(dir)
}

/// The corruption of a store at `base` that follows a segment ending at
/// `prev_next`, if they do not meet: a segment is missing, or they overlap.
/// Shared with the offline checker ([`super::check`]).
pub(crate) fn gap_error(dir: &Path, base: Offset, prev_next: Offset) -> Option<LogError> {
    if base == prev_next {
        return None;
    }
    let reason = if base > prev_next {
        format!(
            "segment starts at offset {base} but the one before it ends at {prev_next}: a segment is missing"
        )
    } else {
        format!(
            "segment starts at offset {base} but the one before it already holds records up to {}: segments overlap",
            prev_next - 1
        )
    };
    Some(LogError::corruption(dir::store_path(dir, base), 0, reason))
}

/// Whether an index at `base` whose store is missing is the leftover of an
/// interrupted segment removal (below the lowest store: safe to delete) or
/// the sign of a lost store (anywhere else: corruption). Shared with the
/// offline checker.
pub(crate) fn orphan_is_leftover(listing: &Listing, base: Offset) -> bool {
    listing.stores.first().is_some_and(|&first| base < first)
}

/// The reason given for an index whose store is lost.
pub(crate) const ORPHAN_REASON: &str = "index without its store: the store file is missing";

fn recover_segments(dir: &Path, stores: &[Offset], config: &LogConfig) -> Result<(Vec<Segment>, Recovery)> {
    let mut recovery = Recovery::default();
    let mut segments: Vec<Segment> = Vec::with_capacity(stores.len().max(1));
    for (i, &base) in stores.iter().enumerate() {
        if let Some(err) = segments
            .last()
            .and_then(|prev| gap_error(dir, base, prev.next_offset()))
        {
            return Err(err);
        }
        let is_last = i + 1 == stores.len();
        let (segment, found) = Segment::recover(dir, base, config, is_last)?;
        recovery.add(&found);
        segments.push(segment);
    }
    if segments.is_empty() {
        segments.push(Segment::create(dir, 0, config)?);
    }
    Ok((segments, recovery))
}

/// Finishes, at open, the roll that left the store at `base` under its
/// temporary name (see [`super::roll`]). When the last segment ends exactly
/// where it starts, its records follow the log's: a process killed before
/// the roll finished leaves them in the page cache, and under `everysec` or
/// `no` they were acknowledged. The roll's steps are done here in the same
/// order, and the store is recovered as the last segment. Otherwise (the
/// last segment lost its tail to a power failure, or the header never
/// reached the file) nothing in it was ever durable, and it is deleted.
fn adopt_unfinished_roll(
    dir: &Path,
    base: Offset,
    segments: &mut Vec<Segment>,
    recovery: &mut Recovery,
    config: &LogConfig,
) -> Result<()> {
    let final_path = dir::store_path(dir, base);
    let tmp = dir::temp_path(&final_path);
    let continues = segments.last().is_some_and(|s| s.next_offset() == base);
    let store = match super::store::Store::open(&tmp, base) {
        Ok(store) if continues => store,
        Ok(_) | Err(LogError::Corruption { .. }) => {
            warn!(file = %tmp.display(), "removing the store of an unfinished roll that does not continue the log");
            super::trace::remove_file(&tmp).map_err(|e| LogError::io("removing", &tmp, e))?;
            return dir::sync_dir(dir);
        }
        Err(err) => return Err(err),
    };
    info!(file = %tmp.display(), base, "adopting the store of an unfinished roll");
    segments.last_mut().expect("continues").seal()?;
    store.sync()?;
    drop(store);
    super::trace::rename(&tmp, &final_path)
        .map_err(|e| LogError::io("renaming into place", &final_path, e))?;
    dir::sync_dir(dir)?;
    let (segment, found) = Segment::recover(dir, base, config, true)?;
    recovery.add(&found);
    segments.push(segment);
    Ok(())
}
