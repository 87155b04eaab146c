//! Benchmarks of the engine: SET throughput with group commit under fsync
//! `always`, GET throughput with concurrent readers, replay (`Engine::open`)
//! of a log of 1M SETs, snapshots of 1M keys and the write pauses they cause,
//! and the sharded table against one `RwLock<HashMap>`. Results are in
//! `docs/benchmarks.md` ("The engine").
//!
//! Criterion shows one unit per benchmark. The other figures (ops per fsync,
//! SET latency percentiles during a snapshot, the writer's rate beside the
//! readers) are printed to stderr on lines that start with `summary:`.
//!
//! Every data directory is a fresh one under cargo's `CARGO_TARGET_TMPDIR`
//! (`<target dir>/tmp`): the real disk, never tmpfs, where an fsync would
//! cost nothing. Automatic snapshots are off everywhere
//! (`snapshot_min_log_bytes = 0`) so that none starts in the middle of a
//! measurement; the other settings are `EngineConfig::new`'s defaults. Large
//! fixtures are built on first use, so a filter such as
//! `cargo bench --bench engine -- set_always` builds only what it needs.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, measurement::WallTime};
use tempfile::TempDir;
use walkv::engine::mutation::Mutation;
use walkv::engine::table::Table;
use walkv::engine::{Command, Condition, Engine, EngineConfig, FsyncPolicy, Ttl};
use walkv::log::record::RECORD_HEADER_BYTES;

/// Every value is this long; keys are `key:` and 7 digits (11 bytes).
const VALUE_BYTES: usize = 100;
const KEY_BYTES: usize = 11;
/// SETs pick keys at random from `0..KEY_SPACE`; read benchmarks run on a
/// table holding every one of them.
const KEY_SPACE: u64 = 1_000_000;
/// The replay fixture's log holds this many SETs, one record each.
const REPLAY_RECORDS: u64 = 1_000_000;
/// Concurrent SET tasks (tokio) and concurrent reader threads.
const WRITERS: [usize; 3] = [1, 8, 64];
const READERS: [usize; 3] = [1, 2, 4];
/// How long the writer runs without a snapshot before each snapshot in
/// `snapshot_pause`: the "without a snapshot" window.
const QUIET_WINDOW: Duration = Duration::from_secs(1);
/// SETs in this first part of the quiet window are not counted (the writer
/// thread is starting).
const WRITER_START: Duration = Duration::from_millis(50);

/// The data directories shared by several benchmarks, built on first use and
/// removed when `main` returns.
#[derive(Default)]
struct Fixtures {
    /// A closed engine whose log holds `REPLAY_RECORDS` single-key SETs of
    /// distinct keys (fsync `no`); nothing else. Only ever opened read-only.
    replay: OnceCell<TempDir>,
    /// A closed engine holding `KEY_SPACE` keys, loaded with MSETs; the
    /// snapshot benchmarks write snapshots into it.
    loaded: OnceCell<TempDir>,
}

impl Fixtures {
    fn replay_dir(&self) -> &Path {
        self.replay.get_or_init(build_replay_dir).path()
    }

    fn loaded_dir(&self) -> &Path {
        self.loaded.get_or_init(build_loaded_dir).path()
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let fixtures = Fixtures::default();
    set_always(&mut c);
    get_readers(&mut c, &fixtures);
    replay(&mut c, &fixtures);
    snapshot_idle(&mut c, &fixtures);
    snapshot_pause(&mut c, &fixtures);
    table_structure(&mut c);
    c.final_summary();
}

// ---- helpers --------------------------------------------------------------

/// A fresh, empty directory on the real disk, removed when dropped.
fn bench_dir(prefix: &str) -> TempDir {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(root).expect("create CARGO_TARGET_TMPDIR");
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(root)
        .expect("create bench directory")
}

fn config(dir: &Path, fsync: FsyncPolicy) -> EngineConfig {
    let mut config = EngineConfig::new(dir);
    config.fsync = fsync;
    config.snapshot_min_log_bytes = 0;
    config
}

fn open(dir: &Path, fsync: FsyncPolicy) -> Engine {
    Engine::open(config(dir, fsync)).expect("open engine")
}

fn close(engine: Arc<Engine>) {
    let engine = Arc::into_inner(engine).expect("the last handle");
    engine.close().expect("close engine");
}

/// `key:0000042` for 42.
fn key(i: u64) -> [u8; KEY_BYTES] {
    let mut key = *b"key:0000000";
    let mut n = i;
    for digit in key[4..].iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
    key
}

/// A value that is not all zeros. Every SET copies it into its own
/// allocation, as the server will from a request buffer: values that shared
/// one allocation would make every reader bump the same reference count.
const VALUE: [u8; VALUE_BYTES] = {
    let mut v = [0u8; VALUE_BYTES];
    let mut i = 0;
    while i < VALUE_BYTES {
        v[i] = (i * 31 % 251) as u8;
        i += 1;
    }
    v
};

fn set(i: u64) -> Command {
    Command::Set {
        key: Bytes::copy_from_slice(&key(i)),
        value: Bytes::copy_from_slice(&VALUE),
        condition: Condition::Always,
        ttl: Ttl::Clear,
        get: false,
    }
}

/// splitmix64: a fast, good-enough source of random keys (no `rand` here).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

/// Worker `w`'s share of `total` operations split over `workers`.
fn share(total: u64, workers: usize, w: usize) -> u64 {
    total / workers as u64 + u64::from((w as u64) < total % workers as u64)
}

fn runtime() -> tokio::runtime::Runtime {
    // One worker per core: what the server's runtime will have here.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("tokio runtime")
}

fn short_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group
}

fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

// ---- fixtures ---------------------------------------------------------------

/// `REPLAY_RECORDS` SETs of keys `0..REPLAY_RECORDS`, sent by 64 tokio tasks
/// under fsync `no` (each SET is still its own record), then `close`.
fn build_replay_dir() -> TempDir {
    const TASKS: u64 = 64;
    let dir = bench_dir("engine-replay-");
    let engine = Arc::new(open(dir.path(), FsyncPolicy::No));
    let started = Instant::now();
    runtime().block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let engine = engine.clone();
                tokio::spawn(async move {
                    for i in (t..REPLAY_RECORDS).step_by(TASKS as usize) {
                        engine.execute(set(i)).await.expect("SET");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("SET task");
        }
    });
    let wal = engine.wal_stats();
    assert_eq!(wal.next_offset, REPLAY_RECORDS, "one record per SET");
    eprintln!(
        "summary: replay fixture: {} records, {} log bytes, {} segments, built in {} s",
        wal.next_offset,
        wal.bytes,
        wal.segments,
        secs(started.elapsed())
    );
    close(engine);
    dir
}

/// `KEY_SPACE` keys loaded with MSETs of 1000 (fast to build; the snapshot
/// benchmarks do not care how the keys got there), then `close`.
fn build_loaded_dir() -> TempDir {
    const PER_MSET: u64 = 1000;
    let dir = bench_dir("engine-loaded-");
    let engine = open(dir.path(), FsyncPolicy::No);
    for first in (0..KEY_SPACE).step_by(PER_MSET as usize) {
        let pairs = (first..first + PER_MSET)
            .map(|i| (Bytes::copy_from_slice(&key(i)), Bytes::copy_from_slice(&VALUE)))
            .collect();
        let mset = Command::MultiSet {
            pairs,
            only_if_none_exist: false,
        };
        engine.execute_blocking(mset).expect("MSET");
    }
    assert_eq!(engine.len() as u64, KEY_SPACE);
    engine.close().expect("close engine");
    dir
}

// ---- 1. SET throughput under fsync always -----------------------------------

/// `writers` tokio tasks (on a 2-worker multi-thread runtime, as the server
/// will run) each `execute(SET).await` in a loop, random keys over
/// `KEY_SPACE`. One iteration is one SET; criterion's elements/s is ops/s.
/// The table starts empty and fills as the run goes on.
fn set_always(c: &mut Criterion) {
    let rt = runtime();
    let mut group = short_group(c, "set_always_100B");
    group.throughput(Throughput::Elements(1));
    for writers in WRITERS {
        let dir = bench_dir("engine-set-");
        let mut engine = None;
        let (mut ops, mut syncs, mut sync_time) = (0u64, 0u64, Duration::ZERO);
        let mut seed = writers as u64;
        group.bench_function(BenchmarkId::new("writers", writers), |b| {
            let engine = engine.get_or_insert_with(|| Arc::new(open(dir.path(), FsyncPolicy::Always)));
            b.iter_custom(|iters| {
                let before = engine.wal_stats().log;
                seed += 1;
                let elapsed = rt.block_on(run_writers(engine, writers, iters, seed));
                let after = engine.wal_stats().log;
                ops += iters;
                syncs += after.syncs - before.syncs;
                sync_time += after.total_sync - before.total_sync;
                elapsed
            })
        });
        if let Some(engine) = engine {
            eprintln!(
                "summary: set_always_100B/writers/{writers}: {ops} SETs, {syncs} fsyncs, {:.2} SETs per fsync, \
                 mean fdatasync {:.0} µs",
                ops as f64 / syncs.max(1) as f64,
                sync_time.as_secs_f64() * 1e6 / syncs.max(1) as f64
            );
            close(engine);
        }
    }
    group.finish();
}

async fn run_writers(engine: &Arc<Engine>, writers: usize, ops: u64, seed: u64) -> Duration {
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let engine = engine.clone();
            let mut rng = Rng((seed << 32) | w as u64);
            let n = share(ops, writers, w);
            tokio::spawn(async move {
                for _ in 0..n {
                    engine.execute(set(rng.below(KEY_SPACE))).await.expect("SET");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("SET task");
    }
    started.elapsed()
}

// ---- 2. GET throughput --------------------------------------------------------

/// `Engine::get` of random keys from `readers` threads, on the replay
/// fixture (1M keys, each value in its own allocation). One iteration is one
/// GET, split evenly over the threads; every GET hits.
fn get_readers(c: &mut Criterion, fixtures: &Fixtures) {
    let mut group = short_group(c, "get_100B_1M_keys");
    group.throughput(Throughput::Elements(1));
    let engine = OnceCell::new();
    for readers in READERS {
        group.bench_function(BenchmarkId::new("readers", readers), |b| {
            let engine = engine.get_or_init(|| open(fixtures.replay_dir(), FsyncPolicy::Always));
            b.iter_custom(|iters| read_parallel(readers, iters, |k| engine.get(k)))
        });
    }
    group.finish();
    if let Some(engine) = engine.into_inner() {
        engine.close().expect("close engine");
    }
}

/// Runs `ops` lookups of random keys in `0..KEY_SPACE`, split over `readers`
/// threads; returns the wall time from the first spawn to the last join.
fn read_parallel(readers: usize, ops: u64, get: impl Fn(&[u8]) -> Option<Bytes> + Sync) -> Duration {
    let started = Instant::now();
    thread::scope(|s| {
        for r in 0..readers {
            let get = &get;
            let n = share(ops, readers, r);
            s.spawn(move || {
                let mut rng = Rng(ops ^ ((r as u64) << 48));
                let mut bytes = 0;
                for _ in 0..n {
                    bytes += get(&key(rng.below(KEY_SPACE)))
                        .expect("every key is present")
                        .len();
                }
                black_box(bytes)
            });
        }
    });
    started.elapsed()
}

// ---- 3. replay ------------------------------------------------------------------

/// `Engine::open` of the replay fixture: lock, list snapshots (none), open
/// the log, replay 1M records into a new table. The files are in the page
/// cache (the fixture was just written, and warm-up reads them). `close`
/// and dropping the table are outside the timed part. Throughput is the log
/// bytes replayed (record headers included).
fn replay(c: &mut Criterion, fixtures: &Fixtures) {
    let record = Mutation::Set {
        key: Bytes::copy_from_slice(&key(0)),
        value: Bytes::copy_from_slice(&VALUE),
        expire_at_ms: None,
    };
    let log_bytes = REPLAY_RECORDS * (record.encode().len() + RECORD_HEADER_BYTES) as u64;
    let mut group = short_group(c, "replay_1M_sets_100B");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::BytesDecimal(log_bytes));
    let mut own = Vec::new();
    group.bench_function("open", |b| {
        let dir = fixtures.replay_dir();
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let engine = open(dir, FsyncPolicy::Always);
                total += started.elapsed();
                let report = engine.recovery();
                assert_eq!(report.records_replayed, REPLAY_RECORDS);
                assert_eq!(report.bytes_replayed, log_bytes);
                own.push(report.duration);
                engine.close().expect("close engine");
            }
            total
        })
    });
    group.finish();
    if !own.is_empty() {
        own.sort();
        eprintln!(
            "summary: replay_1M_sets_100B/open: RecoveryReport::duration median {} s over {} opens ({} MB of log)",
            secs(own[own.len() / 2]),
            own.len(),
            log_bytes / 1_000_000
        );
    }
}

// ---- 4. snapshots -------------------------------------------------------------

/// `snapshot_blocking` of 1M keys with no other load: queue, log fsync, the
/// snapshot thread (copy shards, write ~129 MB, fsync, rename, fsync dir),
/// then the writer deletes what it supersedes. One iteration is one snapshot.
fn snapshot_idle(c: &mut Criterion, fixtures: &Fixtures) {
    let mut group = short_group(c, "snapshot_1M_keys_100B");
    group.sampling_mode(SamplingMode::Flat);
    let mut engine = None;
    let mut inside = Vec::new();
    group.bench_function("idle", |b| {
        let engine = engine.get_or_insert_with(|| open(fixtures.loaded_dir(), FsyncPolicy::Always));
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let info = engine.snapshot_blocking().expect("snapshot");
                total += started.elapsed();
                assert_eq!(info.keys, KEY_SPACE);
                inside.push(info.duration);
            }
            total
        })
    });
    group.finish();
    if let Some(engine) = engine {
        inside.sort();
        eprintln!(
            "summary: snapshot_1M_keys_100B/idle: SnapshotInfo::duration (the snapshot thread) median {} s over {}",
            secs(inside[inside.len() / 2]),
            inside.len()
        );
        engine.close().expect("close engine");
    }
}

/// Latencies of one writer's SETs, split by when they ran.
#[derive(Default)]
struct Pauses {
    /// SETs whose run overlapped a snapshot (from `snapshot_blocking`'s call
    /// to its return).
    during: Vec<Duration>,
    /// SETs in the quiet windows, which have no snapshot.
    quiet: Vec<Duration>,
    /// Per snapshot: its longest SET, where that SET started (from the
    /// snapshot's start), and the snapshot's length.
    worst: Vec<(Duration, Duration, Duration)>,
    quiet_worst: Vec<Duration>,
}

/// A writer thread does SETs (random keys, `execute_blocking`, one at a
/// time) for `QUIET_WINDOW`, then `snapshot_blocking` runs while it goes on.
/// One iteration is one snapshot; criterion times the snapshot. Each SET's
/// latency goes into the summary, for fsync `no` (the pause the snapshot
/// itself causes) and `always` (the default policy, where the log's fsyncs
/// share the disk with the snapshot's).
fn snapshot_pause(c: &mut Criterion, fixtures: &Fixtures) {
    let mut group = short_group(c, "snapshot_with_writer_1M_keys_100B");
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(1));
    for fsync in [FsyncPolicy::No, FsyncPolicy::Always] {
        let mut engine = None;
        let mut pauses = Pauses::default();
        let id = BenchmarkId::from_parameter(format!("fsync_{}", fsync.as_str()));
        group.bench_function(id, |b| {
            let engine = engine.get_or_insert_with(|| open(fixtures.loaded_dir(), fsync));
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|i| snapshot_under_writes(engine, i, &mut pauses))
                    .sum()
            })
        });
        if let Some(engine) = engine {
            print_pauses(fsync, pauses);
            engine.close().expect("close engine");
        }
    }
    group.finish();
}

fn snapshot_under_writes(engine: &Engine, seed: u64, pauses: &mut Pauses) -> Duration {
    let stop = AtomicBool::new(false);
    let origin = Instant::now();
    let (samples, snap_start, snap_end) = thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut rng = Rng(seed);
            let mut samples = Vec::with_capacity(1 << 18);
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                engine.execute_blocking(set(rng.below(KEY_SPACE))).expect("SET");
                samples.push((started - origin, started.elapsed()));
            }
            samples
        });
        thread::sleep(QUIET_WINDOW);
        let snap_start = origin.elapsed();
        let info = engine.snapshot_blocking().expect("snapshot");
        let snap_end = origin.elapsed();
        assert!(info.keys >= KEY_SPACE * 9 / 10, "the table still holds ~1M keys");
        stop.store(true, Ordering::Relaxed);
        (writer.join().expect("writer thread"), snap_start, snap_end)
    });
    let mut worst = (Duration::ZERO, Duration::ZERO, snap_end - snap_start);
    let mut quiet_worst = Duration::ZERO;
    for (start, latency) in samples {
        if start + latency > snap_start && start < snap_end {
            pauses.during.push(latency);
            if latency > worst.0 {
                worst = (latency, start.saturating_sub(snap_start), worst.2);
            }
        } else if start >= WRITER_START && start + latency <= snap_start {
            pauses.quiet.push(latency);
            quiet_worst = quiet_worst.max(latency);
        }
    }
    pauses.worst.push(worst);
    pauses.quiet_worst.push(quiet_worst);
    snap_end - snap_start
}

fn print_pauses(fsync: FsyncPolicy, mut pauses: Pauses) {
    let policy = fsync.as_str();
    for (name, latencies) in [("during", &mut pauses.during), ("quiet", &mut pauses.quiet)] {
        if latencies.is_empty() {
            continue;
        }
        latencies.sort();
        let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
        eprintln!(
            "summary: SET latency, fsync {policy}, {name} snapshots: n={} p50={} p99={} p99.9={} max={} ms",
            latencies.len(),
            ms(at(0.5)),
            ms(at(0.99)),
            ms(at(0.999)),
            ms(at(1.0))
        );
    }
    let worst: Vec<String> = pauses
        .worst
        .iter()
        .map(|(pause, at, of)| format!("{} ms at {}/{} ms", ms(*pause), ms(*at), ms(*of)))
        .collect();
    let quiet: Vec<String> = pauses.quiet_worst.iter().map(|d| ms(*d)).collect();
    eprintln!(
        "summary: fsync {policy}: longest SET per snapshot: {}",
        worst.join("; ")
    );
    eprintln!(
        "summary: fsync {policy}: longest SET per quiet window (ms): {}",
        quiet.join(", ")
    );
}

// ---- 5. table structure ----------------------------------------------------------

/// The alternative to the sharded table: one lock around one map.
struct SingleLock(RwLock<HashMap<Box<[u8]>, Bytes>>);

impl SingleLock {
    fn get(&self, key: &[u8]) -> Option<Bytes> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).get(key).cloned()
    }

    fn set(&self, key: &[u8], value: Bytes) {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        map.insert(Box::from(key), value);
    }
}

fn set_mutation(i: u64) -> Mutation {
    Mutation::Set {
        key: Bytes::copy_from_slice(&key(i)),
        value: Bytes::copy_from_slice(&VALUE),
        expire_at_ms: None,
    }
}

fn filled_table() -> Table {
    let table = Table::default();
    (0..KEY_SPACE).for_each(|i| table.apply(&set_mutation(i), i));
    table
}

/// A copy of `VALUE` in its own allocation, already in `Bytes`' shared
/// (reference-counted) form. `Table::apply` stores a clone of the mutation's
/// value, which has that form; without this, the first read of each key in
/// `SingleLock` would pay a one-time conversion that `Table` does not.
fn shared_value() -> Bytes {
    let value = Bytes::copy_from_slice(&VALUE);
    drop(value.clone());
    value
}

fn filled_single_lock() -> SingleLock {
    let map = (0..KEY_SPACE)
        .map(|i| (Box::from(&key(i)[..]), shared_value()))
        .collect();
    SingleLock(RwLock::new(map))
}

/// Point reads of random keys on `Table` (4096 `RwLock<HashMap>` shards,
/// `Table::get`) and on `SingleLock`, both holding 1M keys, from 1, 2 and 4
/// threads on 2 cores; then the same with one more thread overwriting random
/// keys as fast as it can (`Table::apply`, the engine writer's call, and
/// `SingleLock::set`). Criterion's elements/s counts reads only; the
/// writer's rate is in the summary.
fn table_structure(c: &mut Criterion) {
    let table = OnceCell::new();
    let single = OnceCell::new();
    let table = || table.get_or_init(filled_table);
    let single = || single.get_or_init(filled_single_lock);
    let lsn = AtomicU64::new(KEY_SPACE);
    for with_writer in [false, true] {
        let name = if with_writer {
            "table_get_with_writer"
        } else {
            "table_get"
        };
        let mut group = short_group(c, name);
        group.throughput(Throughput::Elements(1));
        for readers in READERS {
            let mut writes = WriterTally::default();
            group.bench_function(BenchmarkId::new("sharded", readers), |b| {
                let t = table();
                let write: &(dyn Fn(u64) + Sync) =
                    &|i| t.apply(&set_mutation(i), lsn.fetch_add(1, Ordering::Relaxed));
                let write = with_writer.then_some(write);
                b.iter_custom(|iters| writes.run(readers, iters, |k| t.get(k, 0).map(|e| e.value), write))
            });
            writes.print(name, "sharded", readers);
            let mut writes = WriterTally::default();
            group.bench_function(BenchmarkId::new("single_rwlock", readers), |b| {
                let s = single();
                let write: &(dyn Fn(u64) + Sync) = &|i| s.set(&key(i), shared_value());
                let write = with_writer.then_some(write);
                b.iter_custom(|iters| writes.run(readers, iters, |k| s.get(k), write))
            });
            writes.print(name, "single_rwlock", readers);
        }
        group.finish();
    }
}

/// The background writer's total work across a benchmark's iterations.
#[derive(Default)]
struct WriterTally {
    writes: u64,
    time: Duration,
}

impl WriterTally {
    /// `read_parallel`, with a writer thread overwriting random keys
    /// meanwhile when `write` is given.
    fn run(
        &mut self,
        readers: usize,
        ops: u64,
        get: impl Fn(&[u8]) -> Option<Bytes> + Sync,
        write: Option<&(dyn Fn(u64) + Sync)>,
    ) -> Duration {
        let Some(write) = write else {
            return read_parallel(readers, ops, get);
        };
        let stop = AtomicBool::new(false);
        let started = Instant::now();
        let (elapsed, writes) = thread::scope(|s| {
            let writer = s.spawn(|| {
                let mut rng = Rng(ops);
                let mut writes = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    write(rng.below(KEY_SPACE));
                    writes += 1;
                }
                writes
            });
            let elapsed = read_parallel(readers, ops, get);
            stop.store(true, Ordering::Relaxed);
            (elapsed, writer.join().expect("writer thread"))
        });
        self.writes += writes;
        self.time += started.elapsed();
        elapsed
    }

    fn print(&self, group: &str, table: &str, readers: usize) {
        if self.writes > 0 {
            eprintln!(
                "summary: {group}/{table}/{readers}: the writer did {:.0} writes/s",
                self.writes as f64 / self.time.as_secs_f64()
            );
        }
    }
}
