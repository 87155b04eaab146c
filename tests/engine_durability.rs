//! The engine's durability promises under `fsync = always`: acknowledgement
//! only after the covering fsync (with group commit), no reader seeing an
//! unsynced value, expiry that replay cannot undo, and fencing on disk full;
//! and under `everysec`, an fsync that never holds up a write.

mod common;
#[path = "common/tmpfs.rs"]
mod tmpfs;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use common::{b, config, set};
use tmpfs::Tmpfs;
use walkv::engine::{Command, Engine, EngineError, Instrument, KeyExpiry, Outcome, Ttl};
use walkv::log::Offset;

/// Counts fsyncs and remembers the highest durable offset.
#[derive(Default)]
struct SyncCounter {
    syncs: AtomicUsize,
    durable: AtomicU64,
}

impl Instrument for SyncCounter {
    fn after_sync(&self, next_offset: Offset) {
        self.syncs.fetch_add(1, Ordering::SeqCst);
        self.durable.fetch_max(next_offset, Ordering::SeqCst);
    }
}

#[test]
fn concurrent_writers_share_fsyncs_and_each_ack_follows_its_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicU64::new(1_000));
    let counter = Arc::new(SyncCounter::default());
    let mut cfg = config(dir.path(), &now);
    cfg.log = Default::default();
    cfg.instrument = Some(counter.clone());
    let engine = Arc::new(Engine::open(cfg).unwrap());
    const WRITERS: usize = 16;
    const EACH: usize = 50;
    let threads: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (engine, counter) = (engine.clone(), counter.clone());
            std::thread::spawn(move || {
                for i in 0..EACH {
                    let ack = engine.submit_blocking(set(&format!("w{w}-{i}"), "v")).unwrap();
                    let offset = ack.offset.expect("a set writes a record");
                    let durable = counter.durable.load(Ordering::SeqCst);
                    assert!(
                        offset < durable,
                        "record {offset} acknowledged before an fsync covered it ({durable})"
                    );
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let writes = WRITERS * EACH;
    let syncs = counter.syncs.load(Ordering::SeqCst);
    assert_eq!(
        engine.wal_stats().log.syncs as usize,
        syncs,
        "every fsync went through the hook"
    );
    assert!(
        syncs * 3 <= writes,
        "group commit: {syncs} fsyncs for {writes} writes from {WRITERS} writers"
    );
}

/// Holds the writer between its write and its fsync until released, once,
/// for the first batch that reaches `from_next_offset`.
struct Gate {
    reached: Mutex<Option<mpsc::Sender<()>>>,
    release: Mutex<Option<mpsc::Receiver<()>>>,
    from_next_offset: AtomicU64,
}

impl Gate {
    /// The gate, the signal that the writer reached it, and the release.
    fn new(from_next_offset: u64) -> (Arc<Gate>, mpsc::Receiver<()>, mpsc::Sender<()>) {
        let (reached_tx, reached_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel();
        let gate = Arc::new(Gate {
            reached: Mutex::new(Some(reached_tx)),
            release: Mutex::new(Some(release_rx)),
            from_next_offset: AtomicU64::new(from_next_offset),
        });
        (gate, reached_rx, release_tx)
    }
}

impl Instrument for Gate {
    fn before_sync(&self, next_offset: Offset) {
        let from = self.from_next_offset.load(Ordering::SeqCst);
        if next_offset >= from
            && self
                .from_next_offset
                .compare_exchange(from, u64::MAX, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            self.reached.lock().unwrap().take().unwrap().send(()).unwrap();
            self.release.lock().unwrap().take().unwrap().recv().unwrap();
        }
    }
}

#[test]
fn a_value_is_invisible_until_its_fsync_returned() {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicU64::new(1_000));
    let (gate, reached_rx, release_tx) = Gate::new(u64::MAX);
    let mut cfg = config(dir.path(), &now);
    cfg.instrument = Some(gate.clone());
    let engine = Arc::new(Engine::open(cfg).unwrap());
    let old = engine.submit_blocking(set("k", "old")).unwrap().offset.unwrap();
    // Trip on the batch holding the next record, "new", and no other.
    gate.from_next_offset.store(old + 2, Ordering::SeqCst);
    let writer = {
        let engine = engine.clone();
        std::thread::spawn(move || engine.execute_blocking(set("k", "new")).unwrap())
    };
    reached_rx.recv().unwrap(); // "new" is written to the log, not yet fsynced
    let seen = (engine.get(b"k"), engine.get_many(&[b("k")]));
    // Release before asserting: a failing assert must not leave the writer
    // parked in the gate while the engine's drop waits for it.
    release_tx.send(()).unwrap();
    assert_eq!(seen.0, Some(b("old")), "a reader saw a value before its fsync");
    assert_eq!(seen.1, vec![Some(b("old"))]);
    assert_eq!(writer.join().unwrap(), Outcome::Ok);
    assert_eq!(engine.get(b"k"), Some(b("new")), "visible once acknowledged");
}

/// Under `everysec` the once-a-second fsync runs on the writer thread
/// without the writer's lock: a disk slow to sync stalls no write, and what
/// was written is visible at once (the policy promises a process crash loses
/// nothing acknowledged, not a power cut).
#[test]
fn an_everysec_fsync_that_hangs_stalls_no_write() {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicU64::new(1_000));
    let (gate, reached_rx, release_tx) = Gate::new(0);
    let mut cfg = config(dir.path(), &now);
    cfg.fsync = walkv::engine::FsyncPolicy::EverySec;
    cfg.instrument = Some(gate);
    let engine = Arc::new(Engine::open(cfg).unwrap());
    engine.execute_blocking(set("first", "v")).unwrap();
    reached_rx.recv().unwrap(); // a second on, the fsync started and is held
    let (done_tx, done_rx) = mpsc::channel();
    let writer = {
        let engine = engine.clone();
        std::thread::spawn(move || {
            for i in 0..100 {
                engine.execute_blocking(set(&format!("k{i}"), "v")).unwrap();
            }
            done_tx.send(()).unwrap();
        })
    };
    let finished = done_rx.recv_timeout(Duration::from_secs(10));
    let seen = engine.get(b"k99");
    release_tx.send(()).unwrap();
    assert!(finished.is_ok(), "writes waited for a hung everysec fsync");
    assert_eq!(seen, Some(b("v")));
    writer.join().unwrap();
    engine.close().unwrap();
}

/// The watchdog's probe: a writer wedged in an fsync does not answer a ping,
/// and answers again once the fsync returns.
#[test]
fn ping_is_answered_only_by_a_writer_that_is_not_wedged() {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicU64::new(1_000));
    let (gate, reached_rx, release_tx) = Gate::new(0);
    let mut cfg = config(dir.path(), &now);
    cfg.instrument = Some(gate);
    let engine = Arc::new(Engine::open(cfg).unwrap());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let within = Duration::from_millis(300);
    let ping =
        |engine: &Engine| runtime.block_on(async { tokio::time::timeout(within, engine.ping()).await });
    assert!(matches!(ping(&engine), Ok(Ok(()))), "an idle writer answers");
    let writer = {
        let engine = engine.clone();
        std::thread::spawn(move || engine.execute_blocking(set("k", "v")).unwrap())
    };
    reached_rx.recv().unwrap(); // the writer is inside its fsync, held there
    let wedged = ping(&engine);
    release_tx.send(()).unwrap();
    assert!(wedged.is_err(), "a wedged writer must not answer: {wedged:?}");
    assert_eq!(writer.join().unwrap(), Outcome::Ok);
    assert!(matches!(ping(&engine), Ok(Ok(()))), "answers again once unstuck");
}

#[test]
fn expiry_survives_restarts_and_expired_keys_stay_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicU64::new(1_000_000));
    let ttl = |key: &str, ms| Command::Set {
        key: b(key),
        value: b("v"),
        condition: Default::default(),
        ttl: Ttl::In(ms),
        get: false,
    };
    let engine = Engine::open(config(dir.path(), &now)).unwrap();
    engine.execute_blocking(ttl("short", 100)).unwrap();
    engine.execute_blocking(ttl("long", 60_000)).unwrap();
    now.store(1_000_500, Ordering::SeqCst);
    assert_eq!(engine.get(b"short"), None, "past its deadline");
    // The read handed a logged delete to the writer; a write after it in the
    // same queue is acknowledged only once that delete is durable.
    engine.execute_blocking(set("barrier", "x")).unwrap();
    drop(engine);

    // Even with the clock set back, the deleted key is not resurrected:
    // its removal was logged, not merely hidden.
    now.store(1_000_000, Ordering::SeqCst);
    let engine = Engine::open(config(dir.path(), &now)).unwrap();
    assert_eq!(engine.get(b"short"), None);
    assert_eq!(
        engine.expiry(b"long"),
        KeyExpiry::At(1_060_000),
        "absolute deadline kept"
    );
    engine.close().unwrap();

    now.store(1_060_001, Ordering::SeqCst);
    let engine = Engine::open(config(dir.path(), &now)).unwrap();
    assert_eq!(
        engine.get(b"long"),
        None,
        "an expired key is not resurrected by replay"
    );
}

#[test]
fn active_expiry_removes_keys_nobody_reads_with_logged_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicU64::new(1_000));
    let mut cfg = config(dir.path(), &now);
    cfg.active_expiry = true;
    let engine = Engine::open(cfg.clone()).unwrap();
    for i in 0..200 {
        let cmd = Command::Set {
            key: b(&format!("k{i}")),
            value: b("v"),
            condition: Default::default(),
            ttl: Ttl::In(10),
            get: false,
        };
        engine.execute_blocking(cmd).unwrap();
    }
    engine.execute_blocking(set("keep", "v")).unwrap();
    now.store(2_000, Ordering::SeqCst);
    // Waits for the sampler's sweep (a bounded wait for a condition, not a
    // timing assertion).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while engine.len() > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "active expiry left {} keys",
            engine.len()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    engine.close().unwrap();
    now.store(1_000, Ordering::SeqCst);
    let engine = Engine::open(cfg).unwrap();
    assert_eq!(engine.len(), 1, "the deletes were logged, so replay agrees");
}

#[test]
fn a_full_disk_fences_writes_and_loses_nothing_acknowledged() {
    let Some(mount) = Tmpfs::mount("256k") else {
        return;
    };
    let data = mount.path().join("data");
    let now = Arc::new(AtomicU64::new(1_000));
    let mut cfg = config(&data, &now);
    cfg.log.max_segment_bytes = 16 << 10;
    cfg.log.max_index_bytes = 32 + 8 * 1024;
    let engine = Engine::open(cfg.clone()).unwrap();
    let mut acked = Vec::new();
    let failure = loop {
        let key = format!("k{}", acked.len());
        match engine.execute_blocking(set(&key, &"x".repeat(900))) {
            Ok(_) => acked.push(key),
            Err(err) => break err,
        }
        assert!(acked.len() < 10_000, "the disk never filled");
    };
    assert!(matches!(failure, EngineError::Fenced { .. }), "{failure}");
    assert!(failure.to_string().contains("restart"), "{failure}");
    assert!(!acked.is_empty());
    let again = engine.execute_blocking(set("later", "v")).unwrap_err();
    assert!(
        matches!(again, EngineError::Fenced { .. }),
        "later writes are refused"
    );
    for key in &acked {
        assert!(engine.get(key.as_bytes()).is_some(), "reads go on: {key}");
    }
    drop(engine);

    // Restart on a disk with room again: every acknowledged write is there.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&data, copy.path());
    let engine = Engine::open(config(copy.path(), &now)).unwrap();
    for key in &acked {
        assert!(engine.get(key.as_bytes()).is_some(), "lost acknowledged {key}");
    }
    assert_eq!(engine.get(b"later"), None);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_command_too_large_for_one_record_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicU64::new(1_000));
    let mut cfg = config(dir.path(), &now);
    cfg.log.max_record_bytes = 4096;
    let engine = Engine::open(cfg).unwrap();
    let big = "x".repeat(3000);
    // Two values of 3000 bytes in one transaction: one record over the limit.
    let atomic = Command::Atomic {
        commands: vec![set("a", &big), set("b", &big)],
        watched: vec![],
    };
    let err = engine.execute_blocking(atomic).unwrap_err();
    assert!(
        matches!(err, EngineError::RecordTooLarge { max: 4096, .. }),
        "{err}"
    );
    assert_eq!(engine.get(b"a"), None, "nothing of the refused command happened");
    assert_eq!(
        engine.execute_blocking(set("c", "small")).unwrap(),
        Outcome::Ok,
        "no fence"
    );
    assert_eq!(engine.execute_blocking(set("a", &big)).unwrap(), Outcome::Ok);
    assert!(engine.fenced().is_none());
}

/// Dies inside the fsync, as a thread that panics or a kernel that kills
/// it would leave things.
struct FsyncDies;

impl Instrument for FsyncDies {
    fn before_sync(&self, _next_offset: Offset) {
        panic!("simulated death of the fsync thread");
    }
}

/// A batch whose fsync never reports back must not leave anyone waiting:
/// the write fails, the engine fences, a later SAVE and ping are answered
/// with the fence, and close returns.
#[test]
fn an_fsync_that_never_returns_an_answer_fences_and_leaves_no_one_waiting() {
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let dir = tempfile::tempdir().unwrap();
        let now = Arc::new(AtomicU64::new(1_000));
        let mut cfg = config(dir.path(), &now);
        cfg.instrument = Some(Arc::new(FsyncDies));
        let engine = Engine::open(cfg).unwrap();
        let write = engine.execute_blocking(set("k", "v"));
        let read = engine.get(b"k");
        let save = engine.snapshot_blocking().map(|_| ());
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let ping = runtime.block_on(engine.ping());
        let close = engine.close();
        done_tx
            .send((write.map(|_| ()), read, save, ping, close))
            .unwrap();
    });
    let (write, read, save, ping, close) = done_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("every call returned");
    assert!(matches!(write, Err(EngineError::Fenced { .. })), "{write:?}");
    assert_eq!(read, None, "the write was never applied");
    assert!(save.is_err(), "{save:?}");
    assert!(matches!(ping, Err(EngineError::Fenced { .. })), "{ping:?}");
    assert!(close.is_err(), "{close:?}");
}
