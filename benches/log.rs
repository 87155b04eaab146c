//! Benchmarks of the write-ahead log: appends under several sync policies,
//! and the sequential replay path. Results and the disk baseline they are
//! compared with are in `docs/benchmarks.md`.
//!
//! Every log lives in a fresh directory under cargo's `CARGO_TARGET_TMPDIR`
//! (`<target dir>/tmp`), so it is on the same disk as the target directory,
//! never on tmpfs: an fsync on tmpfs costs nothing and would flatter the
//! figures. Run with `cargo bench --bench log`; `cargo test` does not build
//! this file.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tempfile::TempDir;
use walkv::log::{Log, LogConfig};

/// Payload size of every record, before the 16-byte record header.
const PAYLOAD_BYTES: usize = 100;

/// Records written once, before the replay benchmark times reading them all:
/// about 116 MB on disk, so two 64 MiB segments.
const REPLAY_RECORDS: u64 = 1_000_000;

/// A fresh, empty directory on the real disk, removed when dropped.
fn bench_dir(prefix: &str) -> TempDir {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(root).expect("create CARGO_TARGET_TMPDIR");
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(root)
        .expect("create bench directory")
}

/// A payload that is not all zeros, so the CRC does real work and no layer
/// below can compress it away.
fn payload() -> Vec<u8> {
    (0..PAYLOAD_BYTES).map(|i| (i * 31 % 251) as u8).collect()
}

/// One append per record, and a sync after every `sync_every` records
/// (`None`: never, the page cache absorbs everything). An iteration is one
/// sync interval, so criterion's records/s is appends per second including
/// their share of the fsync.
fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append_100B");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    let payload = payload();
    for sync_every in [None, Some(1u64), Some(16), Some(256)] {
        let records = sync_every.unwrap_or(1);
        let name = match sync_every {
            None => "no_sync".to_string(),
            Some(n) => format!("sync_every_{n}"),
        };
        group.throughput(Throughput::Elements(records));
        let dir = bench_dir("append-");
        let mut log = Log::open(dir.path(), LogConfig::default()).expect("open log");
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                for _ in 0..records {
                    black_box(log.append(&payload).expect("append"));
                }
                if sync_every.is_some() {
                    log.sync().expect("sync");
                }
            })
        });
        log.close().expect("close log");
    }
    group.finish();
}

/// Group commit, for comparison with `sync_every_16`: the same 16 records
/// and one sync, but written with one `append_batch` (one `pwrite`).
fn append_batch(c: &mut Criterion) {
    const BATCH: usize = 16;
    let mut group = c.benchmark_group("append_batch_100B");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(BATCH as u64));
    let batch = vec![payload(); BATCH];
    let dir = bench_dir("batch-");
    let mut log = Log::open(dir.path(), LogConfig::default()).expect("open log");
    group.bench_function(BenchmarkId::from_parameter("batch_16_sync"), |b| {
        b.iter(|| {
            black_box(log.append_batch(&batch).expect("append_batch"));
            log.sync().expect("sync");
        })
    });
    log.close().expect("close log");
    group.finish();
}

/// The replay path: read every record from offset 0 with the zero-copy
/// reader, which checks each record's CRC and offset. The records are written
/// and synced once, outside the timed loop, so they are read from the page
/// cache. Throughput is the bytes of the stores' record area (header and
/// payload of each record: what is read and checksummed).
fn replay(c: &mut Criterion) {
    let dir = bench_dir("replay-");
    let mut log = Log::open(dir.path(), LogConfig::default()).expect("open log");
    let batch = vec![payload(); 1000];
    while log.next_offset() < REPLAY_RECORDS {
        log.append_batch(&batch).expect("append_batch");
    }
    log.sync().expect("sync");
    let record_bytes = log.stats().bytes_written;

    let mut group = c.benchmark_group("replay_100B");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::BytesDecimal(record_bytes));
    group.bench_function(BenchmarkId::from_parameter("reader_1M_records"), |b| {
        b.iter(|| {
            let mut reader = log.reader(0).expect("reader");
            let mut records = 0u64;
            let mut payload_bytes = 0usize;
            while let Some((_, payload)) = reader.next_record().expect("next_record") {
                records += 1;
                payload_bytes += payload.len();
            }
            assert_eq!(records, REPLAY_RECORDS, "replay read every record");
            black_box(payload_bytes)
        })
    });
    group.finish();
    log.close().expect("close log");
}

criterion_group!(benches, append, append_batch, replay);
criterion_main!(benches);
