//! Snapshots: a crash at any step of "snapshot durable → delete covered
//! segments → delete older snapshots" recovers exactly; a damaged snapshot is
//! never trusted; disk use stays bounded under an endless overwrite workload.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use common::{b, config, set};
use walkv::engine::{Command, Engine, EngineError, FsyncPolicy, Instrument, SnapshotStep};

/// Stops the writer (as a crash would) at `step` of the `nth` snapshot.
struct CrashAt {
    step: SnapshotStep,
    nth: usize,
    seen: AtomicUsize,
}

impl Instrument for CrashAt {
    fn snapshot_step(&self, step: SnapshotStep) {
        if step == SnapshotStep::Durable && self.seen.fetch_add(1, Ordering::SeqCst) + 1 != self.nth {
            return;
        }
        if step == self.step && self.seen.load(Ordering::SeqCst) == self.nth {
            panic!("simulated crash after snapshot step {step:?}");
        }
    }
}

fn snapshots(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("snapshot-"))
        .collect();
    names.sort();
    names
}

/// Writes a history with overwrites and deletes, recording what is expected.
fn write_round(engine: &Engine, model: &mut BTreeMap<String, String>, round: usize) {
    for i in 0..30 {
        let (k, v) = (format!("k{i}"), format!("r{round}-{i}"));
        engine.execute_blocking(set(&k, &v)).unwrap();
        model.insert(k, v);
    }
    for i in (0..30).step_by(7) {
        let k = format!("k{}", (i + round) % 30);
        engine
            .execute_blocking(Command::Delete { keys: vec![b(&k)] })
            .unwrap();
        model.remove(&k);
    }
}

fn assert_state(engine: &Engine, model: &BTreeMap<String, String>, context: &str) {
    for i in 0..30 {
        let k = format!("k{i}");
        assert_eq!(
            engine.get(k.as_bytes()),
            model.get(&k).map(|v| b(v)),
            "{context}: key {k}"
        );
    }
}

#[test]
fn a_crash_at_each_step_after_a_snapshot_recovers_exactly() {
    for step in [
        SnapshotStep::Durable,
        SnapshotStep::SegmentsRemoved,
        SnapshotStep::OlderSnapshotsRemoved,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let now = Arc::new(AtomicU64::new(1_000));
        let mut cfg = config(dir.path(), &now);
        cfg.instrument = Some(Arc::new(CrashAt {
            step,
            nth: 2,
            seen: AtomicUsize::new(0),
        }));
        let mut model = BTreeMap::new();
        let engine = Engine::open(cfg).unwrap();
        write_round(&engine, &mut model, 1);
        let first = engine.snapshot_blocking().unwrap();
        write_round(&engine, &mut model, 2);
        let crashed = engine.snapshot_blocking();
        assert!(
            matches!(&crashed, Err(EngineError::SnapshotFailed(why)) if why.contains("stopped")),
            "{step:?}: {crashed:?}"
        );
        drop(engine);

        let engine = Engine::open(config(dir.path(), &now)).unwrap();
        assert_state(&engine, &model, &format!("after a crash at {step:?}"));
        let used = engine.recovery().snapshot_offset;
        assert!(
            used > first.offset,
            "{step:?}: the newer snapshot ({used}) was used"
        );
        assert_eq!(
            snapshots(dir.path()).len(),
            1,
            "{step:?}: clean-up finished on open"
        );
        let first_offset = engine.wal_stats().first_offset;
        assert!(
            first.offset < first_offset && first_offset <= used,
            "{step:?}: segments wholly below {used} are gone (log starts at {first_offset})"
        );
        write_round(&engine, &mut model, 3);
        engine.close().unwrap();
        let engine = Engine::open(config(dir.path(), &now)).unwrap();
        assert_state(&engine, &model, &format!("{step:?}, then more writes"));
    }
}

#[test]
fn a_crash_while_writing_a_snapshot_leaves_the_old_state() {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicU64::new(1_000));
    let mut model = BTreeMap::new();
    let engine = Engine::open(config(dir.path(), &now)).unwrap();
    write_round(&engine, &mut model, 1);
    engine.snapshot_blocking().unwrap();
    write_round(&engine, &mut model, 2);
    drop(engine);
    // What an interrupted snapshot leaves: a partial temporary file.
    let tmp = dir.path().join("snapshot-00000000000000009999.tmp");
    std::fs::write(&tmp, b"WKVSNAPS partial").unwrap();
    let engine = Engine::open(config(dir.path(), &now)).unwrap();
    assert_state(&engine, &model, "after a crash mid-snapshot");
    assert!(!tmp.exists(), "the unfinished snapshot was removed");
}

#[test]
fn a_damaged_snapshot_is_never_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicU64::new(1_000));
    let mut model = BTreeMap::new();
    let engine = Engine::open(config(dir.path(), &now)).unwrap();
    write_round(&engine, &mut model, 1);
    let info = engine.snapshot_blocking().unwrap();
    write_round(&engine, &mut model, 2);
    engine.close().unwrap();
    let mut bytes = std::fs::read(&info.path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&info.path, bytes).unwrap();
    // The segments it covered are gone, so nothing can stand in for it.
    match Engine::open(config(dir.path(), &now)) {
        Err(EngineError::Corruption { file, .. }) => assert_eq!(file, info.path),
        Err(other) => panic!("expected Corruption naming the snapshot, got {other}"),
        Ok(_) => panic!("opened on a damaged snapshot"),
    }
}

#[test]
fn a_damaged_newest_snapshot_falls_back_to_an_older_one_that_the_log_still_meets() {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicU64::new(1_000));
    let mut cfg = config(dir.path(), &now);
    // Crash right after the second snapshot is durable: the first snapshot
    // and the segments after it are all still there.
    cfg.instrument = Some(Arc::new(CrashAt {
        step: SnapshotStep::Durable,
        nth: 2,
        seen: AtomicUsize::new(0),
    }));
    let mut model = BTreeMap::new();
    let engine = Engine::open(cfg).unwrap();
    write_round(&engine, &mut model, 1);
    engine.snapshot_blocking().unwrap();
    write_round(&engine, &mut model, 2);
    let _ = engine.snapshot_blocking();
    drop(engine);
    let newest = dir.path().join(snapshots(dir.path()).pop().unwrap());
    let mut bytes = std::fs::read(&newest).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xFF;
    std::fs::write(&newest, bytes).unwrap();
    let engine = Engine::open(config(dir.path(), &now)).unwrap();
    assert_state(&engine, &model, "from the older snapshot and the log");
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                dir_bytes(&e.path())
            } else {
                e.metadata().unwrap().len()
            }
        })
        .sum()
}

#[test]
fn overwriting_the_same_keys_forever_keeps_disk_use_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicU64::new(1_000));
    let mut cfg = config(dir.path(), &now);
    cfg.fsync = FsyncPolicy::No;
    cfg.log.max_segment_bytes = 64 << 10;
    cfg.log.max_index_bytes = 32 + 8 * 4096;
    cfg.snapshot_min_log_bytes = 256 << 10;
    cfg.snapshot_log_percent = 100;
    let engine = Engine::open(cfg).unwrap();
    const KEYS: usize = 10_000;
    const ROUNDS: usize = 8;
    let value = "v".repeat(20);
    let mut usage = Vec::new();
    let mut segments = Vec::new();
    for round in 0..ROUNDS {
        for i in 0..KEYS {
            engine
                .execute_blocking(set(&format!("key-{i:05}"), &value))
                .unwrap();
        }
        // Let a running snapshot finish (waiting for a state, not a time).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while engine.snapshot_running() {
            assert!(std::time::Instant::now() < deadline, "snapshot never finished");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        usage.push(dir_bytes(dir.path()));
        segments.push(engine.wal_stats().segments);
        eprintln!(
            "round {round}: {} bytes on disk, {} segments",
            usage[round], segments[round]
        );
    }
    let snapshot = engine.last_snapshot().expect("automatic snapshots ran");
    // Everything written was ~8 × 10k × 61 B ≈ 4.9 MB. What stays on disk is
    // at most a snapshot (~0.4 MB), the log grown since it (up to the larger
    // of the trigger and the snapshot size, plus a segment), and an old
    // snapshot while a new one is written.
    let bound = 2 * snapshot.bytes + 2 * (256 << 10).max(snapshot.bytes) + (64 << 10) + 64 * 1024;
    for (round, &bytes) in usage.iter().enumerate().skip(2) {
        assert!(
            bytes <= bound,
            "round {round}: {bytes} bytes on disk, bound {bound}"
        );
    }
    let max_segments = segments.iter().skip(2).max().unwrap();
    assert!(*max_segments <= 24, "segments kept growing: {segments:?}");
    assert!(
        usage[ROUNDS - 1] * 2 < (ROUNDS * KEYS * 61) as u64,
        "disk use did not grow with the history"
    );
}

#[test]
fn a_snapshot_keeps_expired_keys_so_a_later_persist_survives_replay() {
    // The snapshot thread's clock may be past a deadline that the writer,
    // a moment earlier (or after a clock step back), saw as live and then
    // removed with PERSIST. Replay of that PERSIST needs the key in the
    // snapshot.
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicU64::new(1_000_000));
    let engine = Engine::open(config(dir.path(), &now)).unwrap();
    let with_deadline = Command::Set {
        key: b("k"),
        value: b("v"),
        condition: Default::default(),
        ttl: walkv::engine::Ttl::In(100),
        get: false,
    };
    engine.execute_blocking(with_deadline).unwrap();
    now.store(1_000_500, Ordering::SeqCst); // past the deadline
    let info = engine.snapshot_blocking().unwrap();
    assert_eq!(info.keys, 1, "the expired key is in the snapshot");
    now.store(1_000_050, Ordering::SeqCst); // the clock steps back
    let persisted = engine.execute_blocking(Command::Persist { key: b("k") }).unwrap();
    assert_eq!(persisted, walkv::engine::Outcome::Int(1));
    drop(engine);
    now.store(2_000_000, Ordering::SeqCst);
    let engine = Engine::open(config(dir.path(), &now)).unwrap();
    assert_eq!(
        engine.get(b"k"),
        Some(b("v")),
        "the acknowledged PERSIST survived"
    );
}

/// Counts snapshots as they become durable.
#[derive(Default)]
struct SnapshotCounter(AtomicUsize);

impl Instrument for SnapshotCounter {
    fn snapshot_step(&self, step: SnapshotStep) {
        if step == SnapshotStep::Durable {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[test]
fn automatic_snapshots_follow_what_was_logged_not_the_log_size() {
    // The active segment is never deleted, so the log's size stays above a
    // small threshold after a snapshot; the trigger must count the bytes
    // logged since the last snapshot instead, or it fires back to back.
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicU64::new(1_000));
    let counter = Arc::new(SnapshotCounter::default());
    let mut cfg = config(dir.path(), &now);
    cfg.fsync = FsyncPolicy::No;
    cfg.log.max_segment_bytes = 64 << 10;
    cfg.log.max_index_bytes = 32 + 8 * 4096;
    cfg.snapshot_min_log_bytes = 20_000;
    cfg.instrument = Some(counter.clone());
    let engine = Engine::open(cfg).unwrap();
    for i in 0..2000 {
        engine.execute_blocking(set("k", &format!("value-{i}"))).unwrap();
    }
    let logged = engine.wal_stats().log.bytes_written;
    engine.close().unwrap();
    let snapshots = counter.0.load(Ordering::SeqCst);
    assert!(snapshots >= 1, "the threshold was crossed");
    assert!(
        snapshots as u64 <= logged / 20_000 + 1,
        "{snapshots} snapshots for {logged} bytes logged with a 20000-byte trigger"
    );
}

/// Records, in order, every sync the writer reports and every snapshot that
/// becomes durable.
#[derive(Default)]
struct SyncsAndSnapshots(std::sync::Mutex<Vec<(&'static str, u64)>>);

impl Instrument for SyncsAndSnapshots {
    fn after_sync(&self, next_offset: u64) {
        self.0.lock().unwrap().push(("synced", next_offset));
    }
    fn snapshot_step(&self, step: SnapshotStep) {
        if step == SnapshotStep::Durable {
            self.0.lock().unwrap().push(("durable", 0));
        }
    }
}

#[test]
fn without_fsync_the_log_is_durable_up_to_a_snapshots_bound_before_the_snapshot_is() {
    // A fuzzy snapshot may hold effects of records written while it was
    // copied; under `no` (and `everysec`) those are not synced yet, and a
    // power cut that took them from the log while the snapshot survived
    // would leave effects no log prefix explains (half a MULTI, say).
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicU64::new(1_000));
    let events = Arc::new(SyncsAndSnapshots::default());
    let mut cfg = config(dir.path(), &now);
    cfg.fsync = FsyncPolicy::No;
    cfg.log.max_segment_bytes = 1 << 20;
    cfg.log.max_index_bytes = 32 + 8 * 65536;
    cfg.instrument = Some(events.clone());
    let engine = Arc::new(Engine::open(cfg).unwrap());
    for i in 0..20_000 {
        engine.execute_blocking(set(&format!("k{i}"), "v")).unwrap();
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (engine, stop) = (engine.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                engine
                    .execute_blocking(set(&format!("k{}", i % 20_000), &format!("w{i}")))
                    .unwrap();
                i += 1;
            }
        })
    };
    let info = engine.snapshot_blocking().unwrap();
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    let bound = info.effects_below.expect("a new snapshot records its bound");
    assert!(bound >= info.offset, "bound {bound} below offset {}", info.offset);
    let events = events.0.lock().unwrap().clone();
    let durable = events
        .iter()
        .position(|e| e.0 == "durable")
        .expect("snapshot durable");
    assert!(
        events[..durable]
            .iter()
            .any(|&(what, next)| what == "synced" && next >= bound),
        "no sync up to {bound} before the snapshot became durable: {:?}",
        &events[..durable]
    );
}

#[test]
fn a_log_that_ends_below_a_snapshots_bound_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicU64::new(1_000));
    let engine = Engine::open(config(dir.path(), &now)).unwrap();
    for i in 0..10 {
        engine.execute_blocking(set(&format!("k{i}"), "v")).unwrap();
    }
    engine.close().unwrap();
    drop(engine);
    // A snapshot at 5 that says it holds effects of records up to 12: the
    // log, which ends at 10, lost two records that were durable.
    let table = walkv::engine::table::Table::default();
    let path = walkv::engine::snapshot::write(dir.path(), 5, &table, 1_000, || Ok(12))
        .unwrap()
        .path;
    match Engine::open(config(dir.path(), &now)) {
        Err(EngineError::Corruption { file, reason, .. }) => {
            assert_eq!(file, path);
            assert!(reason.contains("records 10..12 are missing"), "{reason}");
        }
        other => panic!("opened: {:?}", other.map(|_| ())),
    }
}
