//! Checking a log directory without changing it, walking its records, and
//! cutting it at a damaged record: the library half of `walkvctl`.
//!
//! The checker judges every store with the functions `Log::open` uses (the
//! header check, [`scan::scan`]'s classification of how a store ends,
//! [`Index::open_checked`], the gap and orphan rules of `Log::open`), so the
//! tool and the daemon cannot disagree about what is valid. Unlike
//! `Log::open` it does not stop at the first damage: it reports all of it,
//! and counts the intact records that lie past a corruption, so that a
//! repair can say exactly which offsets it drops.
//!
//! A repair of corruption is a [`Cut`]: the log keeps the records before one
//! byte position of one store, and the bytes after it, every later segment
//! and every index whose store is lost move to a quarantine directory, never
//! deleted ([`CutPlan`], [`execute_cut`]). Torn tails and stale indexes need
//! no cut: `Log::open` itself repairs them ([`reopen`]).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::Offset;
use super::config::LogConfig;
use super::dir::{self, index_path, store_path};
use super::error::{LogError, Result};
use super::header::{self, FILE_HEADER_BYTES, INDEX_MAGIC, STORE_MAGIC};
use super::index::{INDEX_ENTRY_BYTES, Index};
use super::scan::{self, Ending, Next, StoreReader};
use super::segmented::{ORPHAN_REASON, gap_error, orphan_is_leftover};

mod cut;
mod walk;

pub use cut::{create_quarantine, execute_cut, move_into, reopen, tail_copy_path, utc_stamp};
pub use walk::{RecordRef, Stop, walk};

/// How to check.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// The limit the daemon runs with: a longer announced record is damage.
    pub max_record_bytes: u32,
    /// Another process may be appending (a running daemon, whose lock we do
    /// not hold). The last store's torn ending is then a write in flight, not
    /// damage, and its index is not checked: the daemon resizes it, and
    /// reading a mapping of a file that shrinks faults; and the daemon keeps
    /// its newest entries in memory, so the file lags the store by design
    /// (see [`super::index`]).
    pub live: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            max_record_bytes: LogConfig::default().max_record_bytes,
            live: false,
        }
    }
}

/// What kind of damage was found. Every kind but [`DamageKind::TornTail`]
/// stops `Log::open`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DamageKind {
    /// The last store ends in a torn or zero-filled record: what a crash
    /// during an append leaves. The next open cuts it.
    TornTail,
    /// A torn ending in a store that is not the last.
    TornSealed,
    /// A bad record followed by a valid one.
    CorruptRecord,
    /// The store's file header is not valid.
    BadHeader,
    /// A store starts after the end of the one before it.
    MissingSegment,
    /// A store starts before the end of the one before it.
    OverlappingSegments,
    /// An index whose store is missing, above the lowest store.
    LostStore,
}

impl DamageKind {
    /// The name used in reports and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            DamageKind::TornTail => "torn_tail",
            DamageKind::TornSealed => "torn_sealed_segment",
            DamageKind::CorruptRecord => "corrupt_record",
            DamageKind::BadHeader => "bad_header",
            DamageKind::MissingSegment => "missing_segment",
            DamageKind::OverlappingSegments => "overlapping_segments",
            DamageKind::LostStore => "lost_store",
        }
    }
}

/// Where a log is cut to drop damage. Cuts are ordered: the smaller cut
/// keeps less.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cut {
    /// The first segment touched, as an index into [`LogCheck::segments`]
    /// (their count when only lost stores' indexes go).
    pub segment: usize,
    /// The store is truncated at this byte position; `None`: it goes whole.
    pub position: Option<u64>,
}

/// One piece of damage.
#[derive(Debug, Clone)]
pub struct Damage {
    pub kind: DamageKind,
    pub file: PathBuf,
    /// Byte position in `file`.
    pub position: u64,
    /// The log offset of the first record the damage takes away.
    pub offset: Offset,
    /// Bytes from `position` to the end of `file`.
    pub bytes: u64,
    pub reason: String,
    /// Where the log would be cut to drop it; `None` for a torn tail, which
    /// the next open cuts by itself.
    pub cut: Option<Cut>,
}

/// What the index of a segment says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexState {
    Agrees,
    /// The next open rebuilds it from the store (never an error).
    Rebuild(String),
    NotChecked(&'static str),
}

/// One store and its index, checked.
#[derive(Debug, Clone)]
pub struct SegmentCheck {
    pub base: Offset,
    pub store: PathBuf,
    pub store_bytes: u64,
    /// The intact records from the base on, before any damage, and where
    /// each starts.
    pub positions: Vec<u64>,
    /// Where those records end.
    pub valid_end: u64,
    /// One past the highest offset of any intact record in the store,
    /// including those past a corruption (`base` when there is none).
    pub highest_next: Offset,
    pub index: IndexState,
}

impl SegmentCheck {
    pub fn records(&self) -> u64 {
        self.positions.len() as u64
    }
}

/// The overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Clean,
    /// Only a torn tail, which the next open cuts.
    Torn,
    Corrupt,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Clean => "clean",
            Status::Torn => "torn",
            Status::Corrupt => "corrupt",
        }
    }
}

/// A whole log directory, checked.
#[derive(Debug, Clone, Default)]
pub struct LogCheck {
    pub dir: PathBuf,
    /// One per store, in base order.
    pub segments: Vec<SegmentCheck>,
    pub damage: Vec<Damage>,
    /// Indexes of lost stores (also in `damage`): a cut moves them away.
    pub lost_indexes: Vec<PathBuf>,
    /// For each lost store, in the order of `lost_indexes`: its base, and
    /// how far its index says it went (`base` + the entries before the first
    /// all-zero one): a lower bound on the log's end, since an active
    /// index's last entries may never have reached the disk (they go to
    /// the file a page at a time: up to 511 may be missing).
    pub lost_ends: Vec<(Offset, Offset)>,
    /// Indexes left below the lowest store by an interrupted removal, and
    /// temporary files of an interrupted create: the next open deletes them.
    pub leftovers: Vec<PathBuf>,
    /// The store an unfinished segment roll left under its temporary name
    /// (see [`super::roll`]): the next open adopts it if the last segment
    /// ends where it starts, and removes it otherwise. In the first case it
    /// is checked as the last of `segments`.
    pub unfinished_roll: Option<PathBuf>,
    /// Files the log does not own; left alone.
    pub strays: Vec<PathBuf>,
    /// `live` only: the last store's torn ending (file, position), taken for
    /// an append in flight.
    pub in_flight: Option<(PathBuf, u64)>,
}

impl LogCheck {
    pub fn status(&self) -> Status {
        if self.damage.iter().any(|d| d.kind != DamageKind::TornTail) {
            Status::Corrupt
        } else if self.damage.is_empty() {
            Status::Clean
        } else {
            Status::Torn
        }
    }

    /// The offset of the oldest record held. With no store at all, the
    /// base of the lowest lost store (whose index is left), so that a log
    /// whose stores are all lost does not pass for one that starts at 0;
    /// 0 for an empty directory.
    pub fn first_offset(&self) -> Offset {
        match self.segments.first() {
            Some(s) => s.base,
            None => self.lost_ends.iter().map(|&(base, _)| base).min().unwrap_or(0),
        }
    }

    /// One past the highest offset of any intact record found, or of what a
    /// lost store's index lists: the log's next offset before any repair.
    /// For a clean or torn log, what `Log::next_offset` gives after open.
    /// When a store is lost this is only a lower bound
    /// ([`LogCheck::next_offset_is_lower_bound`]).
    pub fn next_offset(&self) -> Offset {
        let highest = self.segments.iter().map(|s| s.highest_next);
        highest
            .chain(self.lost_ends.iter().map(|&(_, end)| end))
            .max()
            .unwrap_or(0)
            .max(self.valid_next())
    }

    /// Whether the log may have gone further than [`LogCheck::next_offset`]:
    /// a store is lost (its index may lag it), no store is left at all, or
    /// an unfinished roll's store that does not follow on went unscanned.
    pub fn next_offset_is_lower_bound(&self) -> bool {
        !self.lost_ends.is_empty() || self.segments.is_empty() || self.unfinished_roll_outside()
    }

    /// Whether an unfinished roll's store was left out of `segments` (it
    /// does not follow on): its records, unscanned, are not counted.
    fn unfinished_roll_outside(&self) -> bool {
        self.unfinished_roll
            .as_ref()
            .is_some_and(|tmp| !self.segments.iter().any(|s| &s.store == tmp))
    }

    /// One past the last record of the intact prefix: what an open after
    /// the smallest cut (and the torn tail's) would hold.
    pub fn valid_next(&self) -> Offset {
        let last = Cut {
            segment: self.segments.len(),
            position: None,
        };
        self.kept_end(self.cut().unwrap_or(last))
    }

    pub fn store_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.store_bytes).sum()
    }

    /// The smallest cut that drops every corruption, if there is any.
    pub fn cut(&self) -> Option<Cut> {
        self.damage.iter().filter_map(|d| d.cut).min()
    }

    /// The cut that drops the record at `offset` and everything after it
    /// (for damage found above the log, such as a record that does not
    /// decode). `None` if the log holds no such record.
    pub fn cut_at_offset(&self, offset: Offset) -> Option<Cut> {
        self.segments.iter().enumerate().find_map(|(i, s)| {
            let rel = offset.checked_sub(s.base)?;
            let position = *s.positions.get(usize::try_from(rel).ok()?)?;
            Some(Cut {
                segment: i,
                position: Some(position),
            })
        })
    }

    /// The log's next offset after `cut`.
    pub fn kept_end(&self, cut: Cut) -> Offset {
        let whole = |i: usize| {
            self.segments
                .get(i)
                .map_or(0, |s: &SegmentCheck| s.base + s.records())
        };
        match (cut.position, self.segments.get(cut.segment)) {
            (Some(pos), Some(s)) => s.base + s.positions.partition_point(|&p| p < pos) as u64,
            _ if cut.segment == 0 => self.first_offset(),
            _ => whole(cut.segment - 1),
        }
    }

    /// What cutting at `cut` would do, computed before anything changes.
    pub fn plan_cut(&self, cut: Cut) -> CutPlan {
        let mut moves = self.lost_indexes.clone();
        // An unfinished roll's store that does not continue the log comes
        // after every cut: kept in quarantine, not deleted by the reopen.
        if self.unfinished_roll_outside() {
            moves.extend(self.unfinished_roll.clone());
        }
        let first_whole = cut.segment + cut.position.is_some() as usize;
        for s in self.segments.iter().skip(first_whole).rev() {
            moves.push(index_path(&self.dir, s.base));
            moves.push(s.store.clone());
        }
        let truncate = cut.position.and_then(|pos| {
            let s = self.segments.get(cut.segment)?;
            (pos < s.store_bytes).then(|| Truncate {
                store: s.store.clone(),
                base: s.base,
                position: pos,
                bytes: s.store_bytes - pos,
            })
        });
        // With no store left (none, or the first goes whole), an empty one
        // is created where the log started, never at 0 by default.
        let recreate_base = (cut.segment == 0 && cut.position.is_none()).then(|| self.first_offset());
        CutPlan {
            dir: self.dir.clone(),
            first_dropped: self.kept_end(cut),
            next_before: self.next_offset(),
            next_is_lower_bound: self.next_offset_is_lower_bound(),
            truncate,
            moves,
            recreate_base,
            covered: None,
        }
    }

    /// The repair that keeps the intact snapshot at offset `snapshot` as the
    /// base of the state: the segments wholly below it (which it covers,
    /// and which the daemon itself deletes after a snapshot) move to
    /// quarantine with whatever damage they hold, and the rest of the log is
    /// cut at its first damage, or at a cut of `more` (records found bad
    /// above the log, such as one that does not decode), if any. If the log
    /// cannot continue from the snapshot (it would start past it, or the cut
    /// falls below it), every segment goes and an empty one is created at
    /// `snapshot`: the records from there to the log's end are what is lost.
    pub fn plan_keeping_snapshot(&self, snapshot: Offset, more: &[Cut]) -> CutPlan {
        let k = self.segments_below(snapshot);
        let tail = self
            .damage
            .iter()
            .filter_map(|d| d.cut.filter(|&c| !lies_below(d.kind, c, k)))
            .chain(more.iter().copied().filter(|c| c.segment >= k))
            .min();
        let first = self.first_offset();
        let starts_ok = self.segments.get(k).is_some_and(|s| s.base <= snapshot);
        let keeps_log = starts_ok && tail.is_none_or(|c| self.kept_end(c) >= snapshot);
        let end = self.next_offset();
        let kept_from = if keeps_log { k } else { self.segments.len() };
        let mut prefix = Vec::new();
        for s in &self.segments[..kept_from] {
            prefix.push(index_path(&self.dir, s.base));
            prefix.push(s.store.clone());
        }
        let mut plan = match tail.filter(|_| keeps_log) {
            Some(cut) => self.plan_cut(cut),
            None => CutPlan {
                dir: self.dir.clone(),
                first_dropped: if keeps_log { end } else { snapshot },
                next_before: end.max(snapshot),
                // A log that ends below the snapshot lost what reached it,
                // and whatever came after: how much is unknown.
                next_is_lower_bound: self.next_offset_is_lower_bound() || end < snapshot,
                moves: self.lost_indexes.clone(),
                truncate: None,
                recreate_base: (!keeps_log).then_some(snapshot),
                covered: None,
            },
        };
        if keeps_log {
            // Only a store lost above the kept log's start leaves its end
            // unknown; one below is covered by the snapshot.
            let kept_base = self.segments[k].base;
            plan.next_is_lower_bound =
                self.lost_ends.iter().any(|&(base, _)| base >= kept_base) || self.unfinished_roll_outside();
        }
        // Lost stores' indexes first (below the kept log, they would pass
        // for leftovers, which the log's open deletes), then the covered
        // segments oldest first, each index before its store, so that a
        // crash part-way leaves a log the snapshot still covers.
        let lost = self.lost_indexes.len();
        plan.moves.splice(lost..lost, prefix);
        let covered_end = self.segments.get(kept_from).map_or(end.min(snapshot), |s| s.base);
        plan.covered = (first < covered_end).then_some((first, covered_end, snapshot));
        plan
    }

    /// How many segments, from the first, hold only records below
    /// `offset`: each is followed by one that starts at or below it (the
    /// last: it ends below it).
    fn segments_below(&self, offset: Offset) -> usize {
        let n = self.segments.len();
        let below = (0..n)
            .take_while(|&i| match self.segments.get(i + 1) {
                Some(next) => next.base <= offset,
                None => self.segments[i].highest_next < offset,
            })
            .count();
        // An unfinished roll's store is never the first segment kept: with
        // no named store before it, the open would take it for a leftover
        // and delete it. The last named one stays with it.
        let last_is_unfinished = n >= 2 && self.unfinished_roll.as_ref() == Some(&self.segments[n - 1].store);
        if last_is_unfinished && below == n - 1 {
            below - 1
        } else {
            below
        }
    }
}

/// Whether damage of `kind` cut at `cut` goes with the first `k` segments:
/// it is in one of them, or (a gap, an overlap, a lost store) just before
/// segment `k`, which then starts the log.
fn lies_below(kind: DamageKind, cut: Cut, k: usize) -> bool {
    let between = matches!(
        kind,
        DamageKind::MissingSegment | DamageKind::OverlappingSegments | DamageKind::LostStore
    );
    cut.segment < k || (cut.segment == k && cut.position.is_none() && between)
}

/// What a cut does, in the order it does it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutPlan {
    /// The log directory.
    pub dir: PathBuf,
    /// The log's next offset after the cut: the first offset dropped.
    pub first_dropped: Offset,
    /// The log's next offset before it: the end (exclusive) of the range
    /// dropped.
    pub next_before: Offset,
    /// `next_before` is only a lower bound: a store was lost, or none is
    /// left, so the log may have gone further ("at least N records lost").
    pub next_is_lower_bound: bool,
    /// Files moved whole to quarantine, in this order: lost stores'
    /// indexes; segments covered by a kept snapshot, oldest first (a crash
    /// part-way leaves a log the snapshot still covers); segments after the
    /// cut, the last first (a crash part-way leaves a log that is a
    /// prefix). Each index before its store.
    pub moves: Vec<PathBuf>,
    /// The store truncated, if the cut falls inside one.
    pub truncate: Option<Truncate>,
    /// When the cut leaves no store: an empty segment is created at this
    /// base, so that offsets go on from where they were rather than from 0.
    pub recreate_base: Option<Offset>,
    /// `(from, to, snapshot)`: the records `from..to` move to quarantine
    /// but lose nothing, since the snapshot at offset `snapshot`, which the
    /// repair keeps, holds their effects.
    pub covered: Option<(Offset, Offset, Offset)>,
}

impl CutPlan {
    /// Whether any offset is dropped (not merely moved under a snapshot
    /// that covers it).
    pub fn drops(&self) -> bool {
        self.first_dropped < self.next_before || self.next_is_lower_bound
    }
}

/// A store cut short by a [`CutPlan`]. The bytes past `position` are first
/// copied to quarantine as `<store name>.from-<position>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncate {
    pub store: PathBuf,
    pub base: Offset,
    pub position: u64,
    /// How many bytes go.
    pub bytes: u64,
}

/// Checks every store and index in the log directory `dir`, changing
/// nothing. `progress` is called with the store bytes checked so far.
pub fn check(dir: &Path, opts: &CheckOptions, progress: &mut dyn FnMut(u64)) -> Result<LogCheck> {
    let listing = dir::list(dir)?;
    let mut out = LogCheck {
        dir: dir.to_path_buf(),
        leftovers: listing.temps.clone(),
        unfinished_roll: listing
            .unfinished_roll
            .map(|base| dir::temp_path(&dir::store_path(dir, base))),
        strays: listing.strays.clone(),
        ..LogCheck::default()
    };
    let mut prev_next: Option<Offset> = None;
    let mut done = 0;
    for (i, &base) in listing.stores.iter().enumerate() {
        if let Some(err) = prev_next.and_then(|prev| gap_error(dir, base, prev)) {
            let prev = prev_next.unwrap_or(base);
            let kind = if base > prev {
                DamageKind::MissingSegment
            } else {
                DamageKind::OverlappingSegments
            };
            let cut = whole(out.segments.len());
            out.damage.push(damage_from(err, kind, prev, 0, Some(cut)));
        }
        let is_last = i + 1 == listing.stores.len();
        // After a damaged header the segment's end is unknown: no gap check.
        let store = store_path(dir, base);
        prev_next = match check_segment(dir, base, &store, out.segments.len(), is_last, opts, &mut out)? {
            Some(s) => {
                done += s.store_bytes;
                let next = (s.valid_end > 0).then_some(s.highest_next);
                out.segments.push(s);
                next
            }
            None => None,
        };
        progress(done);
    }
    check_unfinished_roll(dir, &listing, opts, &mut out)?;
    check_orphans(dir, &listing, &mut out);
    Ok(out)
}

/// The store an unfinished roll left under its temporary name is the log's
/// last segment when the records of the one before end exactly at its base
/// (the open adopts it then, if nothing before it is damaged): it is
/// checked as such. Otherwise the open deletes it, and it stays reported
/// only (a cut moves it to quarantine).
fn check_unfinished_roll(
    dir: &Path,
    listing: &dir::Listing,
    opts: &CheckOptions,
    out: &mut LogCheck,
) -> Result<()> {
    let (Some(base), Some(tmp)) = (listing.unfinished_roll, out.unfinished_roll.clone()) else {
        return Ok(());
    };
    // Its records follow on from the last intact record, even one past a
    // corruption: a cut drops (and quarantines) them with the rest.
    let continues = out
        .segments
        .last()
        .is_some_and(|s| s.valid_end > 0 && s.highest_next == base);
    if continues && let Some(s) = check_segment(dir, base, &tmp, out.segments.len(), true, opts, out)? {
        out.segments.push(s);
    }
    Ok(())
}

fn whole(segment: usize) -> Cut {
    Cut {
        segment,
        position: None,
    }
}

fn damage_from(err: LogError, kind: DamageKind, offset: Offset, bytes: u64, cut: Option<Cut>) -> Damage {
    let (file, position, reason) = match err {
        LogError::Corruption { file, offset, reason } => (file, offset, reason),
        other => (PathBuf::new(), 0, other.to_string()),
    };
    Damage {
        kind,
        file,
        position,
        offset,
        bytes,
        reason,
        cut,
    }
}

/// Indexes without their store: leftovers below the lowest store, lost
/// stores anywhere else (the rule of `Log::open`).
fn check_orphans(dir: &Path, listing: &dir::Listing, out: &mut LogCheck) {
    for &base in &listing.indexes {
        if listing.stores.binary_search(&base).is_ok() {
            continue;
        }
        let path = index_path(dir, base);
        if orphan_is_leftover(listing, base) {
            out.leftovers.push(path);
            continue;
        }
        // Every store above the lost one goes with it: its records would
        // not follow on from the log that is kept.
        let segment = out.segments.partition_point(|s| s.base <= base);
        let listed = listed_entries(&path, base);
        let reason = format!(
            "{ORPHAN_REASON}; its index lists {listed} records (offsets {base}..{}): at least \
             those are lost",
            base + listed
        );
        out.lost_indexes.push(path.clone());
        out.lost_ends.push((base, base + listed));
        out.damage.push(Damage {
            kind: DamageKind::LostStore,
            file: path,
            position: 0,
            offset: base,
            bytes: 0,
            reason,
            cut: Some(whole(segment)),
        });
    }
}

/// How many records the index of a lost store lists: its entries up to
/// the first all-zero one (an active index is preallocated with zeros) or
/// the first that is not the next relative offset. 0 if its header is not
/// valid or it cannot be read: the count is only ever a lower bound.
fn listed_entries(path: &Path, base: Offset) -> u64 {
    let Ok(bytes) = std::fs::read(path) else {
        return 0;
    };
    if bytes.len() < FILE_HEADER_BYTES
        || header::check(&bytes[..FILE_HEADER_BYTES], INDEX_MAGIC, base).is_err()
    {
        return 0;
    }
    let entries = bytes[FILE_HEADER_BYTES..].chunks_exact(INDEX_ENTRY_BYTES);
    entries
        .enumerate()
        .take_while(|(i, e)| {
            let rel = u32::from_le_bytes([e[0], e[1], e[2], e[3]]);
            let pos = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
            pos as usize >= FILE_HEADER_BYTES && u64::from(rel) == *i as u64
        })
        .count() as u64
}

/// Checks one store and its index. `None` when, in a live check, the store
/// was removed by its owner meanwhile.
fn check_segment(
    dir: &Path,
    base: Offset,
    path: &Path,
    seg: usize,
    is_last: bool,
    opts: &CheckOptions,
    out: &mut LogCheck,
) -> Result<Option<SegmentCheck>> {
    let scanned = match read_store(path, base, seg, is_last, opts) {
        Ok(scanned) => scanned,
        // `live`: removed by its owner while the check ran.
        Err(LogError::Io { .. }) if opts.live && !path.exists() => return Ok(None),
        Err(e) => return Err(e),
    };
    let (mut segment, damage) = scanned;
    match damage {
        Some(d) if opts.live && d.kind == DamageKind::TornTail => out.in_flight = Some((d.file, d.position)),
        Some(d) => out.damage.push(d),
        None => {}
    }
    segment.index = if is_last && opts.live {
        IndexState::NotChecked("the active segment of a running writer")
    } else if segment.valid_end == 0 {
        IndexState::NotChecked("the store's header is damaged")
    } else if path != store_path(dir, base) {
        IndexState::Rebuild("the store of an unfinished roll gets its index at open".into())
    } else {
        match Index::open_checked(&index_path(dir, base), base, &segment.positions)? {
            Ok(_) => IndexState::Agrees,
            Err(reason) => IndexState::Rebuild(reason),
        }
    };
    Ok(Some(segment))
}

/// Checks a store's header and scans its records. A damaged header leaves
/// `valid_end` at 0.
fn read_store(
    path: &Path,
    base: Offset,
    seg: usize,
    is_last: bool,
    opts: &CheckOptions,
) -> Result<(SegmentCheck, Option<Damage>)> {
    let file = File::open(path).map_err(|e| LogError::io("opening store", path, e))?;
    let store_bytes = file
        .metadata()
        .map_err(|e| LogError::io("reading metadata of", path, e))?
        .len();
    let mut segment = SegmentCheck {
        base,
        store: path.to_path_buf(),
        store_bytes,
        positions: Vec::new(),
        valid_end: 0,
        highest_next: base,
        index: IndexState::NotChecked(""),
    };
    let mut head = vec![0u8; FILE_HEADER_BYTES.min(store_bytes as usize)];
    file.read_exact_at(&mut head, 0)
        .map_err(|e| LogError::io("reading header of", path, e))?;
    if let Err(reason) = header::check(&head, STORE_MAGIC, base) {
        let err = LogError::corruption(path, 0, reason);
        let damage = damage_from(err, DamageKind::BadHeader, base, store_bytes, Some(whole(seg)));
        return Ok((segment, Some(damage)));
    }
    let found = scan::scan(clone(&file, path)?, path, base, opts.max_record_bytes)?;
    let expected = base + found.positions.len() as u64;
    segment.valid_end = found.valid_end;
    segment.highest_next = expected;
    segment.positions = found.positions;
    let at = |pos| {
        Some(Cut {
            segment: seg,
            position: Some(pos),
        })
    };
    let (kind, pos, reason, cut) = match found.ending {
        Ending::Clean => return Ok((segment, None)),
        Ending::Torn { pos, reason } if is_last => (DamageKind::TornTail, pos, reason, None),
        Ending::Torn { pos, reason } => (
            DamageKind::TornSealed,
            pos,
            format!("{reason}, in a segment that is not the last"),
            at(pos),
        ),
        Ending::Corrupt { pos, reason } => {
            let max = opts.max_record_bytes;
            segment.highest_next = count_past(&file, path, store_bytes, pos, expected, max)?;
            (DamageKind::CorruptRecord, pos, reason, at(pos))
        }
    };
    let err = LogError::corruption(path, pos, reason);
    let damage = damage_from(err, kind, expected, store_bytes - pos, cut);
    Ok((segment, Some(damage)))
}

fn clone(file: &File, path: &Path) -> Result<File> {
    file.try_clone()
        .map_err(|e| LogError::io("duplicating handle of", path, e))
}

/// One past the highest offset of the intact records found from byte `pos`
/// on, where a corruption stopped the scan expecting offset `expected`:
/// runs of records are walked, and the gaps between them searched, with the
/// scan's own search.
fn count_past(
    file: &File,
    path: &Path,
    len: u64,
    mut pos: u64,
    mut expected: Offset,
    max: u32,
) -> Result<Offset> {
    let mut highest_next = expected;
    while let Some((at, offset)) = scan::find_valid_record(file, path, len, pos, expected, max)? {
        let mut reader = StoreReader::new(clone(file, path)?, path, len, at, max);
        let mut next = offset;
        while let Next::Record { .. } = reader.next(next)? {
            next += 1;
        }
        if reader.position() <= at {
            break; // cannot happen (the search found an intact record), but never loop
        }
        highest_next = highest_next.max(next);
        expected = next;
        pos = reader.position();
    }
    Ok(highest_next)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::ops::ControlFlow;

    use super::*;
    use crate::log::Log;

    fn tiny() -> LogConfig {
        LogConfig {
            max_segment_bytes: 200,
            max_index_bytes: 32 + 8 * 4,
            max_record_bytes: 1024,
        }
    }

    /// A closed log of `n` records in segments of four.
    fn log_of(n: u64) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), tiny()).unwrap();
        for i in 0..n {
            log.append(format!("record {i}").as_bytes()).unwrap();
        }
        log.close().unwrap();
        dir
    }

    fn opts() -> CheckOptions {
        CheckOptions {
            max_record_bytes: 1024,
            live: false,
        }
    }

    fn flip(path: &Path, at: u64) {
        let mut bytes = fs::read(path).unwrap();
        bytes[at as usize] ^= 0x40;
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn utc_stamp_matches_known_dates() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(951_782_400), "20000229T000000Z");
        assert_eq!(utc_stamp(1_700_000_000), "20231114T221320Z");
    }

    #[test]
    fn clean_log_agrees_with_open() {
        let dir = log_of(11);
        let found = check(dir.path(), &opts(), &mut |_| {}).unwrap();
        assert_eq!(found.status(), Status::Clean);
        assert_eq!((found.first_offset(), found.next_offset()), (0, 11));
        assert!(found.segments.iter().all(|s| s.index == IndexState::Agrees));
        let log = Log::open(dir.path(), tiny()).unwrap();
        assert_eq!(log.next_offset(), found.next_offset());
    }

    #[test]
    fn corruption_counts_the_records_past_it_and_the_cut_keeps_the_prefix() {
        let dir = log_of(11);
        let found = check(dir.path(), &opts(), &mut |_| {}).unwrap();
        // A byte of record 9's payload, in the last segment (records 8..11).
        let pos = found.segments[2].positions[1] + 17;
        flip(&store_path(dir.path(), 8), pos);
        let found = check(dir.path(), &opts(), &mut |_| {}).unwrap();
        assert_eq!(found.status(), Status::Corrupt);
        assert_eq!(found.damage[0].kind, DamageKind::CorruptRecord);
        assert_eq!(found.damage[0].offset, 9);
        assert_eq!((found.valid_next(), found.next_offset()), (9, 11));
        let plan = found.plan_cut(found.cut().unwrap());
        assert_eq!((plan.first_dropped, plan.next_before), (9, 11));
        let q = tempfile::tempdir().unwrap();
        execute_cut(&plan, q.path(), &tiny()).unwrap();
        let log = Log::open(dir.path(), tiny()).unwrap();
        assert_eq!(log.next_offset(), 9);
    }

    #[test]
    fn walk_visits_from_an_offset_to_the_end() {
        let dir = log_of(11);
        let mut seen = Vec::new();
        let (next, stopped) = walk(dir.path(), 5, 1024, &mut |r| {
            seen.push((r.offset, r.segment));
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!((next, stopped), (11, None));
        assert_eq!(seen.first(), Some(&(5, 4)));
        assert_eq!(seen.len(), 6);
    }
}
