//! The active index keeps its newest entries in memory and writes them a
//! page of index file at a time: reads by offset and iteration never depend
//! on the file being complete, a clean close leaves an index the next open
//! accepts as it is, and a crash that loses the entries in memory leaves an
//! index that lags its store, which the next open rebuilds without losing a
//! record.
//!
//! A crash is a copy of the directory taken while the log is open: it holds
//! what the page cache holds, which is what a process killed outright leaves
//! (entries still in memory are not in it).

use std::fs;
use std::path::Path;

use tempfile::TempDir;
use walkv::log::check::{self, CheckOptions, IndexState};
use walkv::log::dir::index_path;
use walkv::log::header::FILE_HEADER_BYTES;
use walkv::log::index::{FLUSH_BOUNDARY_BYTES, INDEX_ENTRY_BYTES};
use walkv::log::{Log, LogConfig, Offset};

/// Entries that fit before the first flush boundary of an index file (the
/// file's first page holds its header too); each later page holds
/// [`PAGE`] more.
const FIRST_PAGE: u64 = (FLUSH_BOUNDARY_BYTES - FILE_HEADER_BYTES as u64) / INDEX_ENTRY_BYTES as u64;
const PAGE: u64 = FLUSH_BOUNDARY_BYTES / INDEX_ENTRY_BYTES as u64;

/// Room for `entries` records per segment, in stores large enough that the
/// index is always what fills a segment.
fn config(entries: u64) -> LogConfig {
    LogConfig {
        max_segment_bytes: 1 << 20,
        max_index_bytes: FILE_HEADER_BYTES as u64 + entries * INDEX_ENTRY_BYTES as u64,
        max_record_bytes: 1024,
    }
}

/// Payloads of varying length, so record boundaries are irregular.
fn payload(offset: Offset) -> Vec<u8> {
    format!("deferred {offset} {}", "*".repeat((offset * 7 % 23) as usize)).into_bytes()
}

/// How many entries the index file at `path` holds: those before the first
/// all-zero one.
fn entries_on_file(path: &Path) -> u64 {
    let bytes = fs::read(path).unwrap();
    bytes[FILE_HEADER_BYTES..]
        .chunks_exact(INDEX_ENTRY_BYTES)
        .take_while(|e| e.iter().any(|&b| b != 0))
        .count() as u64
}

/// What a process killed now would leave: a copy of the files as they are.
fn crash_copy(dir: &Path) -> TempDir {
    let copy = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
    }
    copy
}

/// What the offline checker says of each segment's index.
fn index_states(dir: &Path) -> Vec<IndexState> {
    let found = check::check(dir, &CheckOptions::default(), &mut |_| {}).unwrap();
    found.segments.into_iter().map(|s| s.index).collect()
}

/// Asserts the log holds exactly `expected[lowest..]`, by offset and by
/// iteration from its lowest offset, its active segment's base and `also`.
fn assert_holds(log: &Log, expected: &[Vec<u8>], also: &[Offset], context: &str) {
    assert_eq!(log.next_offset(), expected.len() as u64, "{context}: next offset");
    let lowest = log.lowest_offset();
    for offset in lowest..log.next_offset() {
        let read = log
            .read(offset)
            .unwrap_or_else(|e| panic!("{context}: read {offset}: {e}"));
        assert_eq!(read, expected[offset as usize], "{context}: record {offset}");
    }
    for &from in also.iter().chain([&lowest, &log.active_base()]) {
        let iterated: Vec<_> = log
            .iter_from(from)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{context}: iterating from {from}: {e}"));
        let wanted: Vec<_> = (from..).zip(expected[from as usize..].iter().cloned()).collect();
        assert_eq!(iterated, wanted, "{context}: iter_from({from})");
    }
}

#[test]
fn entries_in_memory_are_served_at_once_and_a_clean_close_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let index = index_path(dir.path(), 0);
    let mut log = Log::open(dir.path(), config(4 * PAGE)).unwrap();
    let payloads: Vec<_> = (0..10).map(payload).collect();
    for p in &payloads {
        log.append(p).unwrap();
    }
    assert_eq!(entries_on_file(&index), 0, "ten appends wrote no index entry");
    assert_holds(&log, &payloads, &[3, 9, 10], "before any flush");

    log.close().unwrap();
    assert_eq!(entries_on_file(&index), 10, "the close wrote them");
    let log = Log::open(dir.path(), config(4 * PAGE)).unwrap();
    assert_eq!(
        log.recovery().indexes_rebuilt,
        0,
        "the closed index is taken as it is"
    );
    assert_holds(&log, &payloads, &[3], "reopened after a clean close");
    drop(log);
    assert_eq!(
        index_states(dir.path()),
        [IndexState::Agrees],
        "the offline check"
    );
}

#[test]
fn a_crash_with_entries_in_memory_rebuilds_the_index_and_keeps_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(4 * PAGE)).unwrap();
    let mut payloads: Vec<_> = (0..FIRST_PAGE + 5).map(payload).collect();
    for p in &payloads[..FIRST_PAGE as usize + 5] {
        log.append(p).unwrap();
    }
    let crashed = crash_copy(dir.path());
    assert_eq!(
        entries_on_file(&index_path(crashed.path(), 0)),
        FIRST_PAGE,
        "the crash left the first page of entries, not the five after it"
    );
    // The offline checker sees the lag, as the next open will.
    let states = index_states(crashed.path());
    assert!(
        matches!(&states[..], [IndexState::Rebuild(r)] if r.contains(&format!("entry {FIRST_PAGE} disagrees"))),
        "{states:?}"
    );

    let mut again = Log::open(crashed.path(), config(4 * PAGE)).unwrap();
    assert_eq!(again.recovery().indexes_rebuilt, 1);
    assert_eq!(again.recovery().torn_bytes, 0);
    assert_holds(
        &again,
        &payloads,
        &[FIRST_PAGE - 1, FIRST_PAGE],
        "after the crash",
    );
    payloads.extend((FIRST_PAGE + 5..FIRST_PAGE + 8).map(payload));
    again.append_batch(&payloads[FIRST_PAGE as usize + 5..]).unwrap();
    again.close().unwrap();
    let again = Log::open(crashed.path(), config(4 * PAGE)).unwrap();
    assert_eq!(again.recovery().indexes_rebuilt, 0, "closed after the rebuild");
    assert_holds(
        &again,
        &payloads,
        &[FIRST_PAGE],
        "after the crash, appended, closed",
    );

    // The original, dropped without close, wrote what it held on the way.
    drop(log);
    let log = Log::open(dir.path(), config(4 * PAGE)).unwrap();
    assert_eq!(
        log.recovery().indexes_rebuilt,
        0,
        "a drop writes the entries in memory"
    );
    assert_holds(&log, &payloads[..FIRST_PAGE as usize + 5], &[], "dropped");
}

#[test]
fn a_crash_right_at_a_flush_boundary_leaves_an_index_taken_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(4 * PAGE)).unwrap();
    let payloads: Vec<_> = (0..FIRST_PAGE + PAGE).map(payload).collect();
    for p in &payloads {
        log.append(p).unwrap();
    }
    let crashed = crash_copy(dir.path());
    assert_eq!(entries_on_file(&index_path(crashed.path(), 0)), FIRST_PAGE + PAGE);
    let again = Log::open(crashed.path(), config(4 * PAGE)).unwrap();
    assert_eq!(again.recovery().indexes_rebuilt, 0, "nothing was in memory");
    assert_holds(&again, &payloads, &[], "crashed at a boundary");
}

#[test]
fn records_keep_their_positions_across_flush_boundaries_and_rolls() {
    // Segments roll every 700 records: mid-page, so each seal writes a
    // partial page from memory. Batches of 1 to 97 records cross boundaries
    // at every position within a batch.
    let config = config(700);
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config.clone()).unwrap();
    let payloads: Vec<_> = (0..2500).map(payload).collect();
    let mut at = 0;
    let mut size = 1;
    while at < payloads.len() {
        let end = (at + size).min(payloads.len());
        if size == 1 {
            log.append(&payloads[at]).unwrap();
        } else {
            log.append_batch(&payloads[at..end]).unwrap();
        }
        at = end;
        size = size * 5 % 97 + 1;
    }
    assert_eq!(log.segment_count(), 4);
    let across = [FIRST_PAGE - 1, FIRST_PAGE, 699, 700, 700 + FIRST_PAGE, 2499];
    assert_holds(&log, &payloads, &across, "appended");

    // What a kill leaves, and what a close leaves, both hold every record.
    let crashed = crash_copy(dir.path());
    log.close().unwrap();
    let closed = Log::open(dir.path(), config.clone()).unwrap();
    assert_eq!(closed.recovery().indexes_rebuilt, 0);
    assert_holds(&closed, &payloads, &across, "closed, reopened");
    // The active segment's 400 entries were all in memory; the sealed
    // segments' indexes were written by their seals.
    let crashed_log = Log::open(crashed.path(), config).unwrap();
    assert_eq!(
        crashed_log.recovery().indexes_rebuilt,
        1,
        "only the active index lags"
    );
    assert_holds(&crashed_log, &payloads, &across, "crashed, reopened");
}
