//! A segment roll's slow half (fsyncs, renames) runs off the append path, so
//! a process can die while the new segment still bears its temporary name
//! (`<base>.store.tmp`). Its records were appended, and under `everysec` or
//! `no` acknowledged: the next open adopts the store when the log before it
//! is whole, the offline check counts its records, and a repair that cuts
//! the log keeps it in quarantine instead of letting the reopen delete it.
//!
//! A process killed outright is a `Log` dropped without `close`: the page
//! cache keeps every write, and nothing finishes the roll.

use std::fs;
use std::path::{Path, PathBuf};

use walkv::log::check::{self, CheckOptions, Cut, IndexState, Status};
use walkv::log::dir::{index_path, store_path, temp_path};
use walkv::log::header::FILE_HEADER_BYTES;
use walkv::log::{Log, LogConfig, Offset};

/// Four records to a segment.
fn config() -> LogConfig {
    LogConfig {
        max_segment_bytes: 1 << 20,
        max_index_bytes: FILE_HEADER_BYTES as u64 + 4 * 8,
        max_record_bytes: 1024,
    }
}

fn payload(offset: Offset) -> Vec<u8> {
    format!("record {offset}").into_bytes()
}

/// Appends records 0..`n` one at a time and drops the log without closing
/// it, as a kill would; returns where the roll that started the last
/// segment left its store.
fn killed_mid_roll(dir: &Path, n: u64) -> PathBuf {
    let mut log = Log::open(dir, config()).unwrap();
    for offset in 0..n {
        assert_eq!(log.append(&payload(offset)).unwrap(), offset);
    }
    let base = log.active_base();
    assert!(
        log.unfinished_roll().is_some(),
        "the last append rolled, and nothing finished it"
    );
    drop(log);
    let tmp = temp_path(&store_path(dir, base));
    assert!(
        tmp.exists() && !store_path(dir, base).exists(),
        "{}",
        tmp.display()
    );
    tmp
}

fn all_records(log: &Log) -> Vec<Vec<u8>> {
    log.iter_from(log.lowest_offset())
        .unwrap()
        .map(|r| r.unwrap().1)
        .collect()
}

fn options() -> CheckOptions {
    CheckOptions {
        max_record_bytes: config().max_record_bytes,
        live: false,
    }
}

#[test]
fn a_roll_a_kill_left_unfinished_is_adopted_with_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = killed_mid_roll(dir.path(), 6);

    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.next_offset(), 6);
    assert_eq!(all_records(&log), (0..6).map(payload).collect::<Vec<_>>());
    assert_eq!(log.active_base(), 4);
    assert!(!tmp.exists(), "renamed into place");
    assert!(store_path(dir.path(), 4).exists() && index_path(dir.path(), 4).exists());
    drop(log);
    let again = Log::open(dir.path(), config()).unwrap();
    assert_eq!(again.recovery().indexes_rebuilt, 0, "nothing left to repair");
    assert_eq!(again.next_offset(), 6);
}

#[test]
fn the_check_counts_an_unfinished_roll_as_the_last_segment() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = killed_mid_roll(dir.path(), 6);

    let report = check::check(dir.path(), &options(), &mut |_| {}).unwrap();
    assert_eq!(report.status(), Status::Clean);
    assert_eq!(report.unfinished_roll.as_deref(), Some(tmp.as_path()));
    assert_eq!(report.valid_next(), 6, "its records count");
    let last = report.segments.last().unwrap();
    assert_eq!((last.base, last.records(), &last.store), (4, 2, &tmp));
    assert!(matches!(last.index, IndexState::Rebuild(_)), "{:?}", last.index);

    // `walkvctl dump` and the crash harness walk it too.
    let mut walked = Vec::new();
    let (end, stop) = check::walk(dir.path(), 1, config().max_record_bytes, &mut |r| {
        walked.push((r.offset, r.store.to_path_buf(), r.payload.to_vec()));
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!((end, stop), (6, None));
    assert_eq!(
        walked.iter().map(|w| w.0).collect::<Vec<_>>(),
        (1..6).collect::<Vec<_>>()
    );
    assert_eq!((&walked[4].1, &walked[4].2), (&tmp, &payload(5)));
}

#[test]
fn an_unfinished_roll_after_a_torn_segment_is_deleted_by_the_open_and_kept_by_a_cut() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = killed_mid_roll(dir.path(), 6);
    // A power failure took the sealed segment's last record: the new one
    // no longer follows on (and under `always` nothing in it was answered).
    let sealed = store_path(dir.path(), 0);
    let len = fs::metadata(&sealed).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&sealed)
        .unwrap()
        .set_len(len - 3)
        .unwrap();

    let report = check::check(dir.path(), &options(), &mut |_| {}).unwrap();
    assert_eq!(report.segments.len(), 1, "not checked as part of the log");
    assert!(
        report.next_offset_is_lower_bound(),
        "its records were not counted"
    );
    let plan = report.plan_cut(Cut {
        segment: 0,
        position: Some(FILE_HEADER_BYTES as u64),
    });
    assert!(
        plan.moves.contains(&tmp),
        "a cut quarantines it: {:?}",
        plan.moves
    );

    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.next_offset(), 3, "the torn record is cut, the rest kept");
    assert_eq!(all_records(&log), (0..3).map(payload).collect::<Vec<_>>());
    assert!(!tmp.exists(), "deleted: it does not continue the log");
    assert!(!store_path(dir.path(), 4).exists());
}

#[test]
fn a_first_create_interrupted_by_a_kill_is_a_leftover() {
    let dir = tempfile::tempdir().unwrap();
    // What `create_atomic` leaves when killed before its rename: here a
    // whole header, the worst case (it looks like a roll's store at 0).
    let first = Log::open(dir.path(), config()).unwrap();
    drop(first);
    let store = store_path(dir.path(), 0);
    let tmp = temp_path(&store);
    fs::rename(&store, &tmp).unwrap();
    fs::remove_file(index_path(dir.path(), 0)).unwrap();

    let mut log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.next_offset(), 0);
    assert!(!tmp.exists() && store.exists());
    assert_eq!(log.append(b"first").unwrap(), 0);
}

#[test]
fn an_unfinished_roll_with_no_record_yet_is_walked_once_and_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = killed_mid_roll(dir.path(), 5);
    // Killed after the roll created the store, before its first record.
    fs::OpenOptions::new()
        .write(true)
        .open(&tmp)
        .unwrap()
        .set_len(FILE_HEADER_BYTES as u64)
        .unwrap();

    // On a thread, so that a walk that never ends fails the test instead
    // of hanging it (it once looped on such a store, growing without end).
    let (tx, rx) = std::sync::mpsc::channel();
    let wal = dir.path().to_path_buf();
    std::thread::spawn(move || {
        let mut walked = 0;
        let (end, stop) = check::walk(&wal, 0, config().max_record_bytes, &mut |_| {
            walked += 1;
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
        let _ = tx.send((end, stop, walked));
    });
    let walked = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the walk ends");
    assert_eq!(walked, (4, None, 4));
    let report = check::check(dir.path(), &options(), &mut |_| {}).unwrap();
    assert_eq!(
        (report.status(), report.valid_next(), report.segments.len()),
        (Status::Clean, 4, 2)
    );

    let mut log = Log::open(dir.path(), config()).unwrap();
    assert_eq!((log.active_base(), log.next_offset()), (4, 4));
    assert_eq!(log.append(b"next").unwrap(), 4);
}

/// Flips a byte of record 1's payload, in segment 0 (which the roll sealed).
fn damage_record_1_in_the_sealed_segment(dir: &Path) {
    let sealed = store_path(dir, 0);
    let mut bytes = fs::read(&sealed).unwrap();
    let first_len = walkv::log::record::framed_len(payload(0).len()) as u64;
    bytes[(FILE_HEADER_BYTES as u64 + first_len + 20) as usize] ^= 0xFF;
    fs::write(&sealed, &bytes).unwrap();
}

#[test]
fn damage_before_an_unfinished_roll_cuts_it_away_into_quarantine() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = killed_mid_roll(dir.path(), 6);
    damage_record_1_in_the_sealed_segment(dir.path());

    let report = check::check(dir.path(), &options(), &mut |_| {}).unwrap();
    assert_eq!(report.status(), Status::Corrupt);
    assert_eq!(
        report.next_offset(),
        6,
        "the records after the damage count, the roll's too"
    );
    assert_eq!(report.segments.last().unwrap().store, tmp);
    let cut = report.damage[0].cut.expect("a cut is offered");
    let plan = report.plan_cut(cut);
    assert_eq!((plan.first_dropped, plan.next_before), (1, 6));
    assert!(plan.moves.contains(&tmp), "{:?}", plan.moves);
}

#[test]
fn a_repair_keeping_a_snapshot_never_keeps_an_unfinished_roll_alone() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = killed_mid_roll(dir.path(), 6);
    // Record 1 damaged in the sealed segment, and a snapshot at offset 5,
    // inside the roll's store: keeping the log from that store alone would
    // leave no named store, and the reopen would delete it as a leftover.
    damage_record_1_in_the_sealed_segment(dir.path());
    let sealed = store_path(dir.path(), 0);

    let report = check::check(dir.path(), &options(), &mut |_| {}).unwrap();
    let plan = report.plan_keeping_snapshot(5, &[]);
    assert_eq!(
        plan.recreate_base,
        Some(5),
        "the log starts again at the snapshot"
    );
    assert!(
        plan.moves.contains(&tmp) && plan.moves.contains(&sealed),
        "{:?}",
        plan.moves
    );
}
