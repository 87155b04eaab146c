//! A model test of the log: random sequences of appends, batches, reads,
//! removals, syncs, clean reopens and crashes run against the log and against
//! a plain `Vec` of payloads, and after every step the two must agree.
//!
//! A crash drops the log without closing it and then cuts the last segment's
//! store anywhere between the end of what was made durable (by a sync, by the
//! segment roll that sealed the segment before, or by recovery) and its full
//! length, optionally losing every entry of the active (never fsynced) index.
//! The model then keeps exactly the records that fit whole before the cut.

use std::fs::OpenOptions;
use std::path::Path;

use proptest::prelude::*;
use tempfile::TempDir;
use walkv::log::dir::{index_path, store_path};
use walkv::log::header::FILE_HEADER_BYTES;
use walkv::log::record::framed_len;
use walkv::log::{Log, LogConfig, LogError, Offset};

/// Four records fill a segment's index; a few larger ones fill its store.
fn tiny() -> LogConfig {
    LogConfig {
        max_segment_bytes: 200,
        max_index_bytes: 32 + 8 * 4,
        max_record_bytes: 64,
    }
}

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<u8>),
    AppendBatch(Vec<Vec<u8>>),
    /// A batch with one payload over the limit: nothing is written.
    AppendTooLarge(usize),
    /// Read an offset picked from `[0, next + 2)`, so some are out of range.
    Read(u64),
    /// Remove below an offset picked from `[0, next + 2)`.
    RemoveBelow(u64),
    Sync,
    Reopen,
    /// `cut` picks the store's new length in the lossy range (`None`: keep it
    /// all); `lose_index` zeroes the active index's entries.
    Crash {
        cut: Option<u64>,
        lose_index: bool,
    },
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=64)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => payload().prop_map(Op::Append),
        2 => prop::collection::vec(payload(), 0..6).prop_map(Op::AppendBatch),
        1 => (0..3usize).prop_map(Op::AppendTooLarge),
        3 => any::<u64>().prop_map(Op::Read),
        1 => any::<u64>().prop_map(Op::RemoveBelow),
        2 => Just(Op::Sync),
        1 => Just(Op::Reopen),
        2 => (prop::option::of(any::<u64>()), any::<bool>())
            .prop_map(|(cut, lose_index)| Op::Crash { cut, lose_index }),
    ]
}

/// What the log should hold.
struct Model {
    /// Every payload ever kept, by offset (removed ones included).
    payloads: Vec<Vec<u8>>,
    lowest: Offset,
    /// The active segment's base, and how many bytes of its store are
    /// durable: a crash may cut anything after them, nothing before.
    active: Offset,
    durable: u64,
}

struct Harness {
    dir: TempDir,
    log: Option<Log>,
    model: Model,
}

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), tiny()).unwrap();
        let model = Model {
            payloads: Vec::new(),
            lowest: 0,
            active: 0,
            durable: FILE_HEADER_BYTES as u64,
        };
        Harness {
            dir,
            log: Some(log),
            model,
        }
    }

    fn log(&mut self) -> &mut Log {
        self.log.as_mut().expect("open between operations")
    }

    fn run(&mut self, op: Op) {
        match op {
            Op::Append(p) => {
                let offset = self.log().append(&p).unwrap();
                assert_eq!(offset, self.model.payloads.len() as u64);
                self.model.payloads.push(p);
                self.after_append();
            }
            Op::AppendBatch(batch) => {
                let start = self.model.payloads.len() as u64;
                let range = self.log().append_batch(&batch).unwrap();
                assert_eq!(range, start..start + batch.len() as u64);
                self.model.payloads.extend(batch);
                self.after_append();
            }
            Op::AppendTooLarge(at) => {
                let mut batch = vec![b"fits".to_vec(); 3];
                batch[at] = vec![7; tiny().max_record_bytes as usize + 1];
                let err = self.log().append_batch(&batch).unwrap_err();
                assert!(
                    matches!(err, LogError::RecordTooLarge { len: 65, max: 64 }),
                    "{err}"
                );
            }
            Op::Read(pick) => {
                let next = self.model.payloads.len() as u64;
                self.check_read(pick % (next + 2));
            }
            Op::RemoveBelow(pick) => {
                let below = pick % (self.model.payloads.len() as u64 + 2);
                self.remove_below(below);
            }
            Op::Sync => {
                self.log().sync().unwrap();
                self.model.durable = self.store_len();
            }
            Op::Reopen => {
                self.log.take().unwrap().close().unwrap();
                self.model.durable = self.store_len();
                let log = self.open();
                assert_eq!(
                    log.recovery().torn_bytes,
                    0,
                    "a clean close leaves nothing to cut"
                );
                assert_eq!(log.recovery().indexes_rebuilt, 0, "nor an index to rebuild");
            }
            Op::Crash { cut, lose_index } => self.crash(cut, lose_index),
        }
        self.check();
    }

    /// A roll seals the old segment (so all of it is durable) and creates the
    /// new one durably with just its header.
    fn after_append(&mut self) {
        let active = *self.stores().last().unwrap();
        if active != self.model.active {
            self.model.active = active;
            self.model.durable = FILE_HEADER_BYTES as u64;
        }
    }

    fn remove_below(&mut self, below: Offset) {
        // The segments are `bases[i]..bases[i + 1]`, the last one active; the
        // new first segment is the first that holds `below`, or the active one.
        let bases = self.stores();
        let first = (0..bases.len())
            .find(|&i| bases.get(i + 1).is_none_or(|&next| next > below))
            .unwrap();
        assert_eq!(self.log().remove_below(below).unwrap(), first, "below {below}");
        self.model.lowest = bases[first];
        assert_eq!(self.stores(), bases[first..]);
    }

    fn crash(&mut self, cut: Option<u64>, lose_index: bool) {
        drop(self.log.take());
        let base = self.model.active;
        let store = store_path(self.dir.path(), base);
        let len = self.store_len();
        let cut = cut.map_or(len, |c| self.model.durable + c % (len - self.model.durable + 1));
        OpenOptions::new()
            .write(true)
            .open(&store)
            .unwrap()
            .set_len(cut)
            .unwrap();
        if lose_index {
            zero_entries(&index_path(self.dir.path(), base));
        }

        // Keep the records of the active segment that end at or before the cut.
        let mut end = FILE_HEADER_BYTES as u64;
        let mut kept = base;
        let indexed = self.model.payloads.len() as u64 - base;
        for p in &self.model.payloads[base as usize..] {
            if end + framed_len(p.len()) as u64 > cut {
                break;
            }
            end += framed_len(p.len()) as u64;
            kept += 1;
        }
        self.model.payloads.truncate(kept as usize);

        let log = self.open();
        let recovery = log.recovery().clone();
        assert_eq!(recovery.torn_bytes, cut - end, "crash cut the store at {cut}");
        if recovery.torn_bytes > 0 {
            // Cutting the tail fsyncs the store, and with it what remains.
            self.model.durable = end;
        }
        let stale = if lose_index {
            kept > base
        } else {
            kept - base < indexed
        };
        assert_eq!(recovery.indexes_rebuilt, usize::from(stale), "crash cut at {cut}");
    }

    fn open(&mut self) -> &mut Log {
        self.log = Some(Log::open(self.dir.path(), tiny()).unwrap());
        self.log()
    }

    /// The base offsets of the stores on disk, ascending.
    fn stores(&self) -> Vec<Offset> {
        walkv::log::dir::list(self.dir.path()).unwrap().stores
    }

    fn store_len(&self) -> u64 {
        let store = store_path(self.dir.path(), self.model.active);
        std::fs::metadata(store).unwrap().len()
    }

    fn check_read(&mut self, offset: Offset) {
        let (lowest, next) = (self.model.lowest, self.model.payloads.len() as u64);
        let expected = self.model.payloads.get(offset as usize).cloned();
        match self.log().read(offset) {
            Ok(read) if offset >= lowest => assert_eq!(Some(read), expected, "read {offset}"),
            Err(LogError::OffsetOutOfRange {
                offset: o,
                lowest: l,
                next: n,
            }) if offset < lowest || offset >= next => {
                assert_eq!((o, l, n), (offset, lowest, next));
            }
            other => panic!("read {offset} of [{lowest}, {next}): {other:?}"),
        }
    }

    /// The log and the model agree on everything observable.
    fn check(&mut self) {
        let (lowest, next) = (self.model.lowest, self.model.payloads.len() as u64);
        let log = self.log.as_ref().unwrap();
        assert_eq!(log.next_offset(), next, "next offset");
        assert_eq!(log.lowest_offset(), lowest, "lowest offset");
        for offset in lowest.saturating_sub(1)..=next {
            self.check_read(offset);
        }
        let log = self.log.as_ref().unwrap();
        let all: Vec<_> = log.iter_from(lowest).unwrap().map(Result::unwrap).collect();
        let expected: Vec<_> = (lowest..)
            .zip(self.model.payloads[lowest as usize..].to_vec())
            .collect();
        assert_eq!(all, expected, "iter_from({lowest})");
    }
}

/// What losing the active index's unsynced pages looks like: the header
/// (written durably on creation) stays, every entry reads as zero.
fn zero_entries(path: &Path) {
    let file = OpenOptions::new().write(true).open(path).unwrap();
    let len = file.metadata().unwrap().len();
    file.set_len(FILE_HEADER_BYTES as u64).unwrap();
    file.set_len(len).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_log_agrees_with_a_vec_through_crashes(ops in prop::collection::vec(op(), 1..40)) {
        let mut harness = Harness::new();
        for op in ops {
            harness.run(op);
        }
    }
}
