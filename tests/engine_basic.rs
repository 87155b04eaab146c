//! The engine end to end through its public API: writes, reads, replay after
//! a clean close and after a crash, snapshots.

mod common;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use common::{b, config, set};
use walkv::engine::{Command, Engine, Outcome};

#[test]
fn writes_survive_clean_close_and_crash() {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicU64::new(1_000));
    let engine = Engine::open(config(dir.path(), &now)).unwrap();
    for i in 0..100 {
        engine
            .execute_blocking(set(&format!("k{i}"), &format!("v{i}")))
            .unwrap();
    }
    assert_eq!(
        engine
            .execute_blocking(Command::IncrementBy { key: b("n"), by: 5 })
            .unwrap(),
        Outcome::Int(5)
    );
    assert_eq!(engine.get(b"k7"), Some(b("v7")));
    assert!(engine.wal_stats().segments > 3);
    engine.close().unwrap();

    let engine = Engine::open(config(dir.path(), &now)).unwrap();
    assert_eq!(engine.recovery().records_replayed, 101);
    assert_eq!(engine.get(b"k99"), Some(b("v99")));
    engine
        .execute_blocking(Command::IncrementBy { key: b("n"), by: 1 })
        .unwrap();
    drop(engine); // a crash: no close

    let engine = Engine::open(config(dir.path(), &now)).unwrap();
    assert_eq!(engine.get(b"n"), Some(b("6")));
    assert_eq!(engine.len(), 101);
}

#[test]
fn snapshot_frees_segments_and_replay_starts_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicU64::new(1_000));
    let engine = Engine::open(config(dir.path(), &now)).unwrap();
    for i in 0..200 {
        engine
            .execute_blocking(set(&format!("k{}", i % 20), &format!("v{i}")))
            .unwrap();
    }
    let before = engine.wal_stats().segments;
    let info = engine.snapshot_blocking().unwrap();
    assert_eq!(info.keys, 20);
    assert!(
        engine.wal_stats().segments < before,
        "segments below the snapshot were deleted"
    );
    engine.execute_blocking(set("after", "x")).unwrap();
    drop(engine);

    let engine = Engine::open(config(dir.path(), &now)).unwrap();
    assert_eq!(engine.recovery().snapshot_keys, 20);
    assert_eq!(engine.recovery().records_replayed, 1);
    assert_eq!(engine.get(b"k19"), Some(b("v199")));
    assert_eq!(engine.get(b"after"), Some(b("x")));
}
