//! A model test of the log: random sequences of appends, batches, reads,
//! removals, syncs, clean reopens and crashes run against the log and against
//! a plain `Vec` of payloads, and after every step the two must agree.
//!
//! A crash drops the log without closing it and then cuts the last segment's
//! store anywhere between the end of what was made durable (by a sync, by the
//! segment roll that sealed the segment before, or by recovery) and its full
//! length, optionally losing every entry of the active (never fsynced) index.
//! The model then keeps exactly the records that fit whole before the cut.
//!
//! While a roll is unfinished (see `walkv::log::roll`; here only a sync, a
//! close, a removal or the next roll finish it), the segment it sealed is
//! not yet durable either: a crash cuts it first; if that cut a record, the
//! new segment (still under its temporary name) must be deleted; if not, it
//! is cut anywhere, its header included, and adopted when its header
//! survived.

#[path = "common/files.rs"]
mod files;

use std::fs::OpenOptions;
use std::path::Path;

use files::set_len;
use proptest::prelude::*;
use tempfile::TempDir;
use walkv::log::dir::{index_path, store_path, temp_path};
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
    /// While the roll that started the active segment is unfinished: the
    /// segment it sealed (its base), and how many bytes of its store are
    /// durable. Nothing of the active store is, meanwhile.
    unfinished: Option<(Offset, u64)>,
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
            unfinished: None,
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
                self.roll_finished();
            }
            Op::Reopen => {
                self.log.take().unwrap().close().unwrap();
                self.roll_finished();
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

    /// A roll starts a new segment of which nothing is durable, and leaves
    /// the one it sealed as durable as it was: fully, if an earlier roll
    /// was finished by this one (it fsyncs the store that roll started,
    /// complete by then), else as far as the last sync.
    fn after_append(&mut self) {
        let active = self.log().active_base();
        if active == self.model.active {
            return;
        }
        let sealed = *self.stores().last().unwrap();
        let sealed_durable = if self.model.unfinished.is_some() || sealed != self.model.active {
            std::fs::metadata(store_path(self.dir.path(), sealed))
                .unwrap()
                .len()
        } else {
            self.model.durable
        };
        self.model.unfinished = Some((sealed, sealed_durable));
        self.model.active = active;
        self.model.durable = 0;
    }

    /// A sync, a close or a removal finished the roll: the active store is
    /// named and durable up to its length.
    fn roll_finished(&mut self) {
        self.model.unfinished = None;
        self.model.durable = self.store_len();
    }

    fn remove_below(&mut self, below: Offset) {
        // The segments are `bases[i]..bases[i + 1]`, the last one active; the
        // new first segment is the first that holds `below`, or the active one.
        let mut bases = self.stores();
        if self.model.unfinished.is_some() {
            bases.push(self.model.active);
        }
        let first = (0..bases.len())
            .find(|&i| bases.get(i + 1).is_none_or(|&next| next > below))
            .unwrap();
        assert_eq!(self.log().remove_below(below).unwrap(), first, "below {below}");
        self.roll_finished();
        self.model.lowest = bases[first];
        assert_eq!(self.stores(), bases[first..]);
    }

    fn crash(&mut self, cut: Option<u64>, lose_index: bool) {
        drop(self.log.take());
        if let Some((sealed, durable)) = self.model.unfinished.take() {
            return self.crash_in_roll(sealed, durable, cut, lose_index);
        }
        let base = self.model.active;
        let len = self.store_len();
        let cut = cut.map_or(len, |c| self.model.durable + c % (len - self.model.durable + 1));
        set_len(&store_path(self.dir.path(), base), cut);
        if lose_index {
            zero_entries(&index_path(self.dir.path(), base));
        }
        // Keep the records of the active segment that end at or before the cut.
        let indexed = self.model.payloads.len() as u64 - base;
        let (kept, end) = self.fitting(base, cut);
        self.model.payloads.truncate(kept as usize);

        let recovery = self.reopen_after_crash();
        assert_eq!(recovery.torn_bytes, cut - end, "crash cut the store at {cut}");
        let stale = if lose_index {
            kept > base
        } else {
            kept - base < indexed
        };
        assert_eq!(recovery.indexes_rebuilt, usize::from(stale), "crash cut at {cut}");
    }

    /// A crash while the roll that started the active segment is
    /// unfinished. `cut` cuts the sealed store in its lossy range; if that
    /// leaves it whole, the bits of `cut` turned around cut the new store
    /// anywhere, its header included.
    fn crash_in_roll(&mut self, sealed: Offset, durable: u64, cut: Option<u64>, lose_index: bool) {
        let new = self.model.active;
        let sealed_store = store_path(self.dir.path(), sealed);
        let new_store = temp_path(&store_path(self.dir.path(), new));
        let sealed_len = std::fs::metadata(&sealed_store).unwrap().len();
        let new_len = std::fs::metadata(&new_store).unwrap().len();
        let sealed_cut = cut.map_or(sealed_len, |c| durable + c % (sealed_len - durable + 1));
        let new_cut = cut.map_or(new_len, |c| c.rotate_left(32) % (new_len + 1));
        set_len(&sealed_store, sealed_cut);
        if lose_index {
            zero_entries(&index_path(self.dir.path(), sealed));
        }
        let (sealed_kept, sealed_end) = self.fitting(sealed, sealed_cut);
        if sealed_kept == new {
            set_len(&new_store, new_cut);
        }
        let adopted = sealed_kept == new && new_cut >= FILE_HEADER_BYTES as u64;
        let (kept, new_end) = if adopted {
            self.fitting(new, new_cut)
        } else {
            (sealed_kept, 0)
        };
        self.model.payloads.truncate(kept as usize);

        let recovery = self.reopen_after_crash();
        let what = format!("sealed store cut at {sealed_cut} of {sealed_len}, new at {new_cut} of {new_len}");
        let torn = match adopted {
            true => new_cut - new_end,
            false => sealed_cut - sealed_end,
        };
        assert_eq!(recovery.torn_bytes, torn, "{what}");
        assert_eq!(
            self.log().active_base(),
            if adopted { new } else { sealed },
            "{what}"
        );
        // The sealed index holds every entry of its store (written when the
        // roll began): stale if zeroed, or if the cut took records. An
        // adopted store's index, left under its temporary name, is rebuilt.
        let sealed_stale = match lose_index {
            true => sealed_kept > sealed,
            false => sealed_kept < new,
        };
        assert_eq!(
            recovery.indexes_rebuilt,
            usize::from(sealed_stale) + usize::from(adopted),
            "{what}"
        );
    }

    /// How far the records of the segment at `base` reach when its store is
    /// cut at `cut`: the offset after the last whole one, and where it ends.
    fn fitting(&self, base: Offset, cut: u64) -> (Offset, u64) {
        let mut end = FILE_HEADER_BYTES as u64;
        let mut kept = base;
        for p in &self.model.payloads[base as usize..] {
            if end + framed_len(p.len()) as u64 > cut {
                break;
            }
            end += framed_len(p.len()) as u64;
            kept += 1;
        }
        (kept, end)
    }

    /// Reopens after a crash: the open fsyncs the last store, whatever it
    /// cut, so all of it is durable.
    fn reopen_after_crash(&mut self) -> walkv::log::Recovery {
        let recovery = self.open().recovery().clone();
        self.model.active = self.log().active_base();
        self.model.durable = self.store_len();
        recovery
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
