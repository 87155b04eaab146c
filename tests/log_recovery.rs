//! Crash recovery of the log, by damaging its files between runs: a torn or
//! padded tail of the last segment is cut and what remains is exactly a prefix
//! of what was appended; a damaged index is rebuilt from its store; damage a
//! crash cannot explain (a flipped byte before valid records, a missing
//! segment) refuses to open; the directory lock and segment removal hold
//! across reopen.
//!
//! Every test starts from the same fixture: 11 records under tiny limits,
//! which makes three segments with bases 0, 4 and 8.

#[path = "common/files.rs"]
mod files;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use files::set_len;
use tempfile::TempDir;
use walkv::log::dir::{index_path, store_path};
use walkv::log::header::{self, FILE_HEADER_BYTES};
use walkv::log::record::framed_len;
use walkv::log::{Log, LogConfig, LogError, Offset};

const RECORDS: u64 = 11;

/// Four records fill a segment's index, so segments roll every four appends.
fn tiny() -> LogConfig {
    LogConfig {
        max_segment_bytes: 200,
        max_index_bytes: 32 + 8 * 4,
        max_record_bytes: 1024,
    }
}

/// Payloads of varying length, so record boundaries are irregular.
fn payload(offset: Offset) -> Vec<u8> {
    format!("record {offset} {}", "#".repeat((offset * 5 % 11) as usize)).into_bytes()
}

/// A cleanly closed log of [`RECORDS`] records appended one by one, and the
/// payloads it holds.
fn fixture() -> (TempDir, Vec<Vec<u8>>) {
    let dir = tempfile::tempdir().unwrap();
    let payloads: Vec<_> = (0..RECORDS).map(payload).collect();
    let mut log = Log::open(dir.path(), tiny()).unwrap();
    for p in &payloads {
        log.append(p).unwrap();
    }
    log.close().unwrap();
    assert_eq!(bases(dir.path()), [0, 4, 8], "the fixture's segment layout");
    (dir, payloads)
}

/// A fresh copy of a log directory, to damage without touching the original.
fn copy_of(template: &Path) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(template).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

/// The base offsets of the stores in `dir`, ascending.
fn bases(dir: &Path) -> Vec<Offset> {
    walkv::log::dir::list(dir).unwrap().stores
}

/// The byte position in the store of the segment at `base` of each record
/// from `base` to the end of `payloads`, then where the last one ends: a 32-byte file header, then each
/// record framed as a 16-byte header and its payload.
fn record_starts(payloads: &[Vec<u8>], base: Offset) -> Vec<u64> {
    let mut pos = FILE_HEADER_BYTES as u64;
    let mut starts = vec![pos];
    for p in &payloads[base as usize..] {
        pos += framed_len(p.len()) as u64;
        starts.push(pos);
    }
    starts
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

fn extend(path: &Path, bytes: &[u8]) {
    OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

fn flip(path: &Path, pos: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[pos as usize] ^= 0x40;
    fs::write(path, bytes).unwrap();
}

/// Deterministic bytes, none of them zero.
fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x as u8) | 1
        })
        .collect()
}

/// Asserts the log holds exactly `expected[lowest..]`: by offset and by
/// iteration. `context` names the case in a failure.
fn assert_holds(log: &Log, expected: &[Vec<u8>], context: &str) {
    let lowest = log.lowest_offset();
    assert_eq!(log.next_offset(), expected.len() as u64, "{context}: next offset");
    for offset in lowest..log.next_offset() {
        let read = log
            .read(offset)
            .unwrap_or_else(|e| panic!("{context}: read {offset}: {e}"));
        assert_eq!(read, expected[offset as usize], "{context}: record {offset}");
    }
    let iterated: Vec<_> = log
        .iter_from(lowest)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{context}: iterating: {e}"));
    let wanted: Vec<_> = (lowest..)
        .zip(expected[lowest as usize..].iter().cloned())
        .collect();
    assert_eq!(iterated, wanted, "{context}: iter_from({lowest})");
}

/// Opens `dir`, which must fail with corruption; returns the file and byte
/// position the error names.
fn open_corruption(dir: &Path, context: &str) -> (PathBuf, u64) {
    match Log::open(dir, tiny()) {
        Err(LogError::Corruption { file, offset, .. }) => (file, offset),
        Err(e) => panic!("{context}: expected corruption, got {e}"),
        Ok(_) => panic!("{context}: a damaged log opened"),
    }
}

#[test]
fn cutting_the_tail_at_every_byte_reopens_a_prefix() {
    let (closed, payloads) = fixture();
    // The same log dropped without close: its active index is unsealed.
    let crashed = copy_of(closed.path());
    let mut log = Log::open(crashed.path(), tiny()).unwrap();
    log.append(b"unsealed").unwrap();
    drop(log);
    let mut crashed_payloads = payloads.clone();
    crashed_payloads.push(b"unsealed".to_vec());

    for (template, payloads) in [(&closed, &payloads), (&crashed, &crashed_payloads)] {
        let last = *bases(template.path()).last().unwrap();
        let starts = record_starts(payloads, last);
        assert!(starts.len() > 3, "the last segment holds three records");
        for cut in starts[starts.len() - 4]..=*starts.last().unwrap() {
            let context = format!("{} records, store cut at {cut}", payloads.len());
            let dir = copy_of(template.path());
            set_len(&store_path(dir.path(), last), cut);
            let whole = starts[1..].iter().filter(|&&end| end <= cut).count();
            let kept = last as usize + whole;
            let mut expected = payloads[..kept].to_vec();

            let mut log = Log::open(dir.path(), tiny()).unwrap();
            let recovery = log.recovery().clone();
            assert_eq!(recovery.torn_bytes, cut - starts[whole], "{context}: torn bytes");
            assert_eq!(recovery.records, kept as u64, "{context}: records recovered");
            let stale = usize::from(kept < payloads.len());
            assert_eq!(recovery.indexes_rebuilt, stale, "{context}: indexes rebuilt");
            assert_holds(&log, &expected, &context);

            let more = [b"after the cut".to_vec(), b"and one more".to_vec()];
            log.append_batch(&more).unwrap();
            expected.extend(more);
            log.close().unwrap();
            let log = Log::open(dir.path(), tiny()).unwrap();
            assert_eq!(log.recovery().torn_bytes, 0, "{context}: clean after close");
            assert_holds(&log, &expected, &format!("{context}, appended, reopened"));
        }
    }
}

#[test]
fn a_zero_filled_tail_is_cut_and_every_record_kept() {
    let (template, payloads) = fixture();
    for zeros in [1, 15, 16, 17, 100, 4096] {
        let dir = copy_of(template.path());
        let store = store_path(dir.path(), 8);
        let len = file_len(&store);
        extend(&store, &vec![0; zeros]);

        let log = Log::open(dir.path(), tiny()).unwrap();
        assert_eq!(log.recovery().torn_bytes, zeros as u64, "{zeros} zeros");
        assert_eq!(file_len(&store), len, "{zeros} zeros cut from the file");
        assert_holds(&log, &payloads, &format!("{zeros} zeros"));
    }
}

#[test]
fn a_garbage_tail_is_cut_and_every_record_kept() {
    let (template, payloads) = fixture();
    for (len, seed) in [(1, 1), (15, 2), (16, 3), (17, 4), (40, 5), (2000, 6)] {
        let dir = copy_of(template.path());
        let store = store_path(dir.path(), 8);
        let size = file_len(&store);
        extend(&store, &garbage(len, seed));

        let mut log = Log::open(dir.path(), tiny()).unwrap();
        assert_eq!(log.recovery().torn_bytes, len as u64, "{len} garbage bytes");
        assert_eq!(file_len(&store), size, "{len} garbage bytes cut from the file");
        let mut expected = payloads.clone();
        expected.push(b"after the garbage".to_vec());
        log.append(&expected[RECORDS as usize]).unwrap();
        drop(log);
        let log = Log::open(dir.path(), tiny()).unwrap();
        assert_holds(&log, &expected, &format!("{len} garbage bytes"));
    }
}

/// A named way to damage an index file.
type Damage = (&'static str, fn(&Path));

/// Ways to damage an index file; each must lead to a rebuild.
fn index_damages() -> Vec<Damage> {
    vec![
        ("missing", |p| fs::remove_file(p).unwrap()),
        ("cut mid-entry", |p| set_len(p, file_len(p) - 3)),
        ("cut to fewer entries", |p| set_len(p, file_len(p) - 8)),
        ("cut inside its header", |p| set_len(p, 20)),
        ("entries zeroed at full size", |p| {
            set_len(p, FILE_HEADER_BYTES as u64);
            set_len(p, tiny().max_index_bytes);
        }),
        ("all zeros at full size", |p| {
            fs::write(p, vec![0; tiny().max_index_bytes as usize]).unwrap()
        }),
        ("a bogus entry past the last record", |p| {
            // Position 250 is past the end of every store of the fixture.
            let next = (file_len(p) - FILE_HEADER_BYTES as u64) / 8;
            extend(p, &[next as u8, 0, 0, 0, 250, 0, 0, 0]);
        }),
        ("an entry pointing into the wrong record", |p| {
            flip(p, FILE_HEADER_BYTES as u64 + 8 + 4)
        }),
        ("a damaged header", |p| flip(p, 2)),
    ]
}

#[test]
fn a_damaged_index_is_rebuilt_from_its_store() {
    let (template, payloads) = fixture();
    for (damage, apply) in index_damages() {
        for base in [4, 8] {
            let context = format!("index of segment {base} {damage}");
            let dir = copy_of(template.path());
            apply(&index_path(dir.path(), base));

            let mut log = Log::open(dir.path(), tiny()).unwrap();
            assert_eq!(log.recovery().indexes_rebuilt, 1, "{context}");
            assert_eq!(log.recovery().torn_bytes, 0, "{context}");
            assert_holds(&log, &payloads, &context);
            let mut expected = payloads.clone();
            expected.extend((RECORDS..RECORDS + 3).map(payload));
            log.append_batch(&expected[RECORDS as usize..]).unwrap();
            log.close().unwrap();
            let log = Log::open(dir.path(), tiny()).unwrap();
            assert_eq!(log.recovery().indexes_rebuilt, 0, "{context}, reopened");
            assert_holds(&log, &expected, &format!("{context}, reopened"));
        }
    }
}

#[test]
fn an_index_naming_a_record_cut_from_the_last_store_is_rebuilt() {
    let (template, payloads) = fixture();
    let dir = copy_of(template.path());
    let starts = record_starts(&payloads, 8);
    // Cut exactly at a record boundary: the store ends cleanly, one short.
    set_len(&store_path(dir.path(), 8), starts[2]);

    let log = Log::open(dir.path(), tiny()).unwrap();
    assert_eq!(log.recovery().indexes_rebuilt, 1);
    assert_eq!(log.recovery().torn_bytes, 0);
    assert_holds(&log, &payloads[..10], "last record cut at its start");
}

#[test]
fn a_roll_interrupted_before_the_new_index_leaves_an_empty_segment_that_works() {
    let (template, mut payloads) = fixture();
    let d = template.path();
    let mut log = Log::open(d, tiny()).unwrap();
    payloads.push(payload(RECORDS));
    log.append(&payloads[RECORDS as usize]).unwrap();
    log.close().unwrap();
    // The roll sealed segment 8 and created store 12 (header only), then
    // crashed before creating its index.
    fs::write(store_path(d, 12), header::encode(header::STORE_MAGIC, 12)).unwrap();

    let mut log = Log::open(d, tiny()).unwrap();
    assert_eq!(log.recovery().indexes_rebuilt, 1);
    assert_eq!(log.segment_count(), 4);
    assert_holds(&log, &payloads, "empty last segment");
    payloads.push(b"into segment 12".to_vec());
    assert_eq!(log.append(&payloads[12]).unwrap(), 12);
    assert_eq!(log.segment_count(), 4, "appended to the empty segment, no roll");
    drop(log);
    let log = Log::open(d, tiny()).unwrap();
    assert_holds(&log, &payloads, "empty last segment, appended, reopened");
}

#[test]
fn a_middle_store_cut_at_a_record_boundary_refuses_to_open() {
    let (template, payloads) = fixture();
    let dir = copy_of(template.path());
    set_len(&store_path(dir.path(), 4), record_starts(&payloads, 4)[3]);
    let (file, _) = open_corruption(dir.path(), "segment 4 lost its last record");
    assert_eq!(file, store_path(dir.path(), 8), "the segment after the gap");
}

#[test]
fn a_flipped_byte_followed_by_valid_records_in_the_last_segment_refuses_to_open() {
    let (template, payloads) = fixture();
    let starts = record_starts(&payloads, 8);
    // Records 8 and 9 are each followed by at least one valid record.
    for record in 0..2 {
        for pos in starts[record]..starts[record + 1] {
            let dir = copy_of(template.path());
            let store = store_path(dir.path(), 8);
            flip(&store, pos);
            let context = format!("byte {pos} of record {} flipped", 8 + record);
            let (file, offset) = open_corruption(dir.path(), &context);
            assert_eq!(file, store, "{context}");
            assert_eq!(offset, starts[record], "{context}");
        }
    }
}

#[test]
fn a_flipped_byte_in_a_segment_that_is_not_the_last_refuses_to_open() {
    let (template, payloads) = fixture();
    let starts = record_starts(&payloads[..8], 4);
    // Every byte of segment 4's records, its last record included, and one
    // byte of its file header.
    let records = starts
        .windows(2)
        .flat_map(|w| (w[0]..w[1]).map(move |pos| (pos, w[0])));
    for (pos, start) in records.chain([(3, 0)]) {
        let dir = copy_of(template.path());
        let store = store_path(dir.path(), 4);
        flip(&store, pos);
        let context = format!("byte {pos} of segment 4 flipped");
        let (file, offset) = open_corruption(dir.path(), &context);
        assert_eq!(file, store, "{context}");
        assert_eq!(offset, start, "{context}");
    }
}

#[test]
fn a_missing_middle_segment_refuses_to_open() {
    let (template, _) = fixture();

    let dir = copy_of(template.path());
    fs::remove_file(store_path(dir.path(), 4)).unwrap();
    fs::remove_file(index_path(dir.path(), 4)).unwrap();
    let (file, offset) = open_corruption(dir.path(), "segment 4 missing");
    assert_eq!((file, offset), (store_path(dir.path(), 8), 0));

    let dir = copy_of(template.path());
    fs::remove_file(store_path(dir.path(), 4)).unwrap();
    let (file, offset) = open_corruption(dir.path(), "store 4 missing, its index left");
    assert_eq!((file, offset), (index_path(dir.path(), 4), 0));
}

#[test]
fn stray_files_are_ignored_and_temporary_files_removed() {
    let (template, payloads) = fixture();
    let dir = copy_of(template.path());
    let d = dir.path();
    // Strays that would break the log if they were read as segments.
    let strays = [
        d.join("notes.txt"),
        d.join("42.store"),
        d.join("00000000000000000004.store.bak"),
        // A .tmp of a name the log would never create is not the log's own.
        d.join("00000000000000000012.tmp"),
        d.join("keep.tmp"),
    ];
    for stray in &strays {
        fs::copy(store_path(d, 4), stray).unwrap();
    }
    let temps = [
        d.join("00000000000000000012.store.tmp"),
        d.join("00000000000000000012.index.tmp"),
    ];
    for temp in &temps {
        fs::write(temp, garbage(50, 7)).unwrap();
    }

    let log = Log::open(d, tiny()).unwrap();
    assert_holds(&log, &payloads, "with strays");
    assert_eq!(log.segment_count(), 3);
    for stray in &strays {
        assert_eq!(fs::read(stray).unwrap(), fs::read(store_path(d, 4)).unwrap());
    }
    for temp in &temps {
        assert!(!temp.exists(), "{} was left behind", temp.display());
    }
}

#[test]
fn a_second_open_is_locked_out_until_the_first_is_dropped() {
    let (template, payloads) = fixture();
    let first = Log::open(template.path(), tiny()).unwrap();
    match Log::open(template.path(), tiny()) {
        Err(LogError::Locked { dir }) => assert_eq!(dir, template.path()),
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("two logs opened the same directory"),
    }
    drop(first);
    let second = Log::open(template.path(), tiny()).unwrap();
    assert_holds(&second, &payloads, "after the first was dropped");
}

#[test]
fn remove_below_removes_only_whole_segments_below_the_offset() {
    let (template, payloads) = fixture();
    let d = template.path();
    let mut log = Log::open(d, tiny()).unwrap();
    assert_eq!(log.remove_below(3).unwrap(), 0, "segment 0 still holds offset 3");
    assert_eq!(log.lowest_offset(), 0);

    assert_eq!(log.remove_below(4).unwrap(), 1);
    assert_eq!(log.lowest_offset(), 4);
    assert!(!store_path(d, 0).exists() && !index_path(d, 0).exists());
    assert!(matches!(
        log.read(3),
        Err(LogError::OffsetOutOfRange {
            offset: 3,
            lowest: 4,
            next: RECORDS
        })
    ));
    assert!(matches!(log.iter_from(3), Err(LogError::OffsetOutOfRange { .. })));
    assert_holds(&log, &payloads, "below 4 removed");

    // A reader made before a removal keeps its own handles on the files.
    let reader = log.iter_from(4).unwrap();
    assert_eq!(log.remove_below(u64::MAX).unwrap(), 1, "never the active segment");
    let read: Vec<_> = reader.map(|r| r.unwrap().1).collect();
    assert_eq!(read, payloads[4..], "a reader across a removal");
    assert_eq!((log.segment_count(), log.lowest_offset()), (1, 8));
    assert_eq!(bases(d), [8]);
    assert_holds(&log, &payloads, "all but the active removed");
    drop(log);

    let mut log = Log::open(d, tiny()).unwrap();
    assert_eq!(log.lowest_offset(), 8);
    assert!(matches!(
        log.read(7),
        Err(LogError::OffsetOutOfRange { lowest: 8, .. })
    ));
    assert_holds(&log, &payloads, "reopened after removal");
    let mut expected = payloads.clone();
    expected.extend((RECORDS..RECORDS + 5).map(payload));
    log.append_batch(&expected[RECORDS as usize..]).unwrap();
    assert_eq!(log.lowest_offset(), 8);
    assert_holds(&log, &expected, "appended after removal");
}

#[test]
fn an_index_orphaned_by_an_interrupted_removal_is_removed() {
    let (template, payloads) = fixture();
    let d = template.path();
    // remove_below deletes the store first: a crash then leaves its index.
    fs::remove_file(store_path(d, 0)).unwrap();

    let log = Log::open(d, tiny()).unwrap();
    assert!(!index_path(d, 0).exists(), "the orphan index is gone");
    assert_eq!(log.lowest_offset(), 4);
    assert_holds(&log, &payloads, "after an interrupted removal");
}

#[test]
fn an_intact_record_over_a_lowered_limit_refuses_to_open_instead_of_being_cut() {
    let dir = tempfile::tempdir().unwrap();
    let big = vec![7u8; 600];
    {
        let mut log = Log::open(dir.path(), tiny()).unwrap();
        log.append(b"small").unwrap();
        log.append(&big).unwrap();
        log.close().unwrap();
    }
    let lowered = LogConfig {
        max_record_bytes: 100,
        ..tiny()
    };
    let err = Log::open(dir.path(), lowered).err().expect("must not open");
    match err {
        LogError::Corruption { reason, .. } => assert!(reason.contains("max_record_bytes"), "{reason}"),
        other => panic!("expected Corruption, got {other}"),
    }
    let log = Log::open(dir.path(), tiny()).unwrap();
    assert_eq!(log.read(1).unwrap(), big, "nothing was cut");
}

#[test]
fn segments_removed_from_another_thread_then_forgotten_leave_a_log_that_reopens() {
    let (template, payloads) = fixture();
    let dir = copy_of(template.path());
    let mut log = Log::open(dir.path(), tiny()).unwrap();
    let (lowest, next) = (log.lowest_offset(), log.next_offset());
    let d = dir.path().to_path_buf();
    let removed = std::thread::spawn(move || walkv::log::remove_segments_below(&d, 9))
        .join()
        .unwrap()
        .unwrap();
    assert_eq!(removed, 2, "segments [0, 4) and [4, 8) lie wholly below 9");
    assert_eq!(log.forget_below(9), 2);
    assert_eq!((log.lowest_offset(), log.next_offset()), (lowest + 8, next));
    assert_eq!(log.read(8).unwrap(), payloads[8]);
    log.append(b"more").unwrap();
    log.close().unwrap();
    let log = Log::open(dir.path(), tiny()).unwrap();
    assert_eq!(log.lowest_offset(), 8);
    assert_eq!(log.read(10).unwrap(), payloads[10]);
    // The last store is never removed, however high the offset.
    assert_eq!(
        walkv::log::remove_segments_below(dir.path(), u64::MAX).unwrap(),
        0
    );
}

#[test]
fn a_crash_during_a_gradual_removal_leaves_a_log_that_opens() {
    // What remove_segments_below leaves if it dies after renaming the oldest
    // store for deletion and shrinking it part way: a short "*.deleting"
    // file, and the segment's index still in place.
    let (template, payloads) = fixture();
    let dir = copy_of(template.path());
    let store = store_path(dir.path(), 0);
    let doomed = dir.path().join("00000000000000000000.store.deleting");
    fs::rename(&store, &doomed).unwrap();
    let len = fs::metadata(&doomed).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&doomed)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let log = Log::open(dir.path(), tiny()).unwrap();
    assert!(!doomed.exists(), "the leftover is removed");
    assert!(
        !index_path(dir.path(), 0).exists(),
        "and the orphaned index with it"
    );
    assert_eq!(log.lowest_offset(), 4);
    for offset in 4..payloads.len() as u64 {
        assert_eq!(log.read(offset).unwrap(), payloads[offset as usize]);
    }
}
