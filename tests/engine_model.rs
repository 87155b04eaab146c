//! A model test of the engine: random write commands (every kind, alone and
//! inside `Atomic`), clock moves, snapshots, clean reopens and crashes run
//! against the engine and against a `BTreeMap`, and after every step the two
//! must agree on every answer and on every key's value and deadline.
//!
//! A crash drops the engine without closing it, then damages the end of the
//! last segment's store the way a dying process can: garbage, zeros, or part
//! of a record that was being written. Every acknowledged write was fsynced
//! (fsync `always`), so all of that lies past the last durable byte: reopening
//! must cut exactly it and bring back the model's state, nothing less and
//! nothing more. Optionally the active index loses its (never fsynced)
//! entries too.
//!
//! The model follows Redis: a key is expired once the clock is *past* its
//! deadline; a write that sets a new deadline at or before now deletes the
//! key (`checkAlreadyExpired`); a write that keeps the deadline (`KEEPTTL`,
//! `INCR`, `APPEND`, `SETRANGE`, `RENAME`) keeps it as it is, even in the
//! deadline's own millisecond (this test found the engine deleting the key
//! there; `engine_basic` keeps the minimised case).
//!
//! Every check reads every key, so expired keys are read often: each such read
//! hands a logged removal to the writer, which must change nothing visible.

mod common;

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;

use bytes::Bytes;
use proptest::prelude::*;
use tempfile::TempDir;
use walkv::engine::mutation::Mutation;
use walkv::engine::{
    Command, CommandError, Condition, Engine, EngineConfig, ExpireCondition, KeyExpiry, Outcome, Ttl,
};
use walkv::log::dir::{index_path, list, store_path};
use walkv::log::header::FILE_HEADER_BYTES;
use walkv::log::record::{RECORD_HEADER_BYTES, announced_len, encode_into};

/// Few keys, so that commands collide.
const KEYS: usize = 6;
/// Where the manual clock starts, in ms since the epoch.
const START_MS: u64 = 1_700_000_000_000;

fn key_name(i: usize) -> Bytes {
    Bytes::from(format!("k{i}"))
}

fn all_keys() -> Vec<Bytes> {
    (0..KEYS).map(key_name).collect()
}

// ---- operations -------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Write(Command),
    /// Commands sent together, in this order, without waiting for answers:
    /// the writer computes them as one batch, each against the state the
    /// ones before it left (not yet in the table).
    Pipeline(Vec<Command>),
    AdvanceClock(u64),
    Snapshot,
    CleanReopen,
    /// Drop without closing, damage the tail, lose the active index's
    /// entries if asked, reopen.
    Crash {
        tail: Tail,
        lose_index: bool,
    },
}

/// What a dying process leaves after the last durable byte of the active store.
#[derive(Debug, Clone)]
enum Tail {
    Intact,
    Garbage(Vec<u8>),
    Zeros(usize),
    /// A strict, non-empty prefix (`1 + keep % (len - 1)` bytes) of the next
    /// record, a valid batch that would overwrite every key: an append cut
    /// short.
    PartialRecord {
        keep: usize,
    },
}

fn key() -> impl Strategy<Value = Bytes> {
    (0..KEYS).prop_map(key_name)
}

/// Short values, many of them (not quite) integers or floats.
fn value() -> impl Strategy<Value = Bytes> {
    let texts = vec![
        "",
        "a",
        "bc",
        "0",
        "7",
        "-3",
        "12",
        "01",
        "-0",
        " 5",
        "+1",
        "1.5",
        "2e3",
        "inf",
        "9223372036854775806",
        "-9223372036854775808",
    ];
    prop_oneof![
        3 => prop::sample::select(texts).prop_map(|s: &'static str| Bytes::from_static(s.as_bytes())),
        1 => prop::collection::vec(any::<u8>(), 0..5).prop_map(Bytes::from),
    ]
}

/// A relative deadline that is in the future. Mostly round numbers, like the
/// clock's moves and the absolute deadlines, so that the clock often lands
/// exactly on a deadline and two deadlines often coincide.
fn future_ms() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => prop::sample::select(vec![1i64, 100, 500, 1000, 2000]),
        1 => 1..3000i64,
    ]
}

/// An absolute deadline: around the clock's range, or before the epoch.
fn absolute_ms() -> impl Strategy<Value = i64> {
    let start = START_MS as i64;
    prop_oneof![
        3 => (0..12i64).prop_map(move |k| start + 500 * k),
        2 => (0..20_000i64).prop_map(move |d| start + d),
        1 => prop::sample::select(vec![-5i64, 0, start]),
    ]
}

/// A deadline for a write that sets one (`SET … PX/PXAT`, `GETEX`).
fn new_ttl() -> impl Strategy<Value = Ttl> {
    prop_oneof![
        2 => future_ms().prop_map(Ttl::In),
        1 => absolute_ms().prop_map(Ttl::At),
    ]
}

fn set_ttl() -> impl Strategy<Value = Ttl> {
    prop_oneof![
        2 => Just(Ttl::Clear),
        2 => Just(Ttl::Keep),
        3 => new_ttl(),
    ]
}

/// `EXPIRE`'s argument: zero and negative ones delete the key.
fn expire_ttl() -> impl Strategy<Value = Ttl> {
    prop_oneof![
        3 => future_ms().prop_map(Ttl::In),
        1 => prop::sample::select(vec![0i64, -1, -500]).prop_map(Ttl::In),
        2 => absolute_ms().prop_map(Ttl::At),
    ]
}

fn condition() -> impl Strategy<Value = Condition> {
    prop::sample::select(vec![Condition::Always, Condition::IfAbsent, Condition::IfPresent])
}

fn expire_condition() -> impl Strategy<Value = ExpireCondition> {
    prop::sample::select(vec![
        ExpireCondition::Always,
        ExpireCondition::HasNone,
        ExpireCondition::HasOne,
        ExpireCondition::Later,
        ExpireCondition::Earlier,
    ])
}

/// Every command but `Atomic` (and `RemoveExpired`, which is internal).
fn simple_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        6 => (key(), value(), condition(), set_ttl(), any::<bool>()).prop_map(
            |(key, value, condition, ttl, get)| Command::Set { key, value, condition, ttl, get }
        ),
        2 => (prop::collection::vec((key(), value()), 1..4), any::<bool>()).prop_map(
            |(pairs, only_if_none_exist)| Command::MultiSet { pairs, only_if_none_exist }
        ),
        2 => prop::collection::vec(key(), 1..4).prop_map(|keys| Command::Delete { keys }),
        1 => key().prop_map(|key| Command::GetDelete { key }),
        1 => (key(), prop_oneof![Just(Ttl::Keep), Just(Ttl::Clear), new_ttl()])
            .prop_map(|(key, ttl)| Command::GetExpire { key, ttl }),
        3 => (key(), prop::sample::select(vec![1i64, -1, 5, 100, i64::MAX, i64::MIN]))
            .prop_map(|(key, by)| Command::IncrementBy { key, by }),
        // Exact binary fractions, so that every sum is exact and has one
        // shortest decimal form.
        1 => (key(), prop::sample::select(vec![0.5f64, -1.5, 2.25, 1000.0]))
            .prop_map(|(key, by)| Command::IncrementByFloat { key, by }),
        2 => (key(), value()).prop_map(|(key, value)| Command::Append { key, value }),
        1 => (key(), 0..8u64, value())
            .prop_map(|(key, offset, value)| Command::SetRange { key, offset, value }),
        6 => (key(), expire_ttl(), expire_condition())
            .prop_map(|(key, ttl, condition)| Command::Expire { key, ttl, condition }),
        2 => key().prop_map(|key| Command::Persist { key }),
        2 => (key(), key(), any::<bool>())
            .prop_map(|(from, to, only_if_absent)| Command::Rename { from, to, only_if_absent }),
        1 => Just(Command::FlushAll),
        // Reads, which inside an `Atomic` or a batch must see the writes
        // before them that are not yet in the table.
        1 => key().prop_map(|key| Command::Get { key }),
        1 => prop::collection::vec(key(), 1..4).prop_map(|keys| Command::Exists { keys }),
        1 => key().prop_map(|key| Command::Deadline { key }),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    let nested = Command::Atomic {
        commands: vec![],
        watched: vec![],
    };
    let in_atomic = prop_oneof![12 => simple_command(), 1 => Just(nested)];
    prop_oneof![
        10 => simple_command(),
        2 => prop::collection::vec(in_atomic, 0..4)
            .prop_map(|commands| Command::Atomic { commands, watched: vec![] }),
    ]
}

fn tail() -> impl Strategy<Value = Tail> {
    prop_oneof![
        Just(Tail::Intact),
        prop::collection::vec(any::<u8>(), 1..64).prop_map(Tail::Garbage),
        (1..600usize).prop_map(Tail::Zeros),
        any::<usize>().prop_map(|keep| Tail::PartialRecord { keep }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        20 => command().prop_map(Op::Write),
        3 => prop::collection::vec(command(), 2..6).prop_map(Op::Pipeline),
        4 => prop_oneof![
            3 => prop::sample::select(vec![0u64, 1, 100, 500, 1000]),
            1 => 0..2000u64,
        ]
        .prop_map(Op::AdvanceClock),
        1 => Just(Op::Snapshot),
        1 => Just(Op::CleanReopen),
        2 => (tail(), any::<bool>()).prop_map(|(tail, lose_index)| Op::Crash { tail, lose_index }),
    ]
}

// ---- the model ----------------------------------------------------------

/// What the engine should hold: values and deadlines, expired keys included
/// (they are simply never looked at again: the clock only moves forward).
#[derive(Clone)]
struct Model {
    now: u64,
    keys: BTreeMap<Bytes, (Bytes, Option<u64>)>,
}

impl Model {
    /// Redis's rule: expired once the clock is past the deadline.
    fn live(&self, key: &[u8]) -> Option<(Bytes, Option<u64>)> {
        self.keys
            .get(key)
            .filter(|(_, at)| at.is_none_or(|at| self.now <= at))
            .cloned()
    }

    fn live_keys(&self) -> Vec<Bytes> {
        self.keys
            .keys()
            .filter(|k| self.live(k).is_some())
            .cloned()
            .collect()
    }

    fn expiry(&self, key: &[u8]) -> KeyExpiry {
        match self.live(key) {
            None => KeyExpiry::Missing,
            Some((_, None)) => KeyExpiry::Persistent,
            Some((_, Some(at))) => KeyExpiry::At(at),
        }
    }

    /// Removes `key`; answers whether it was live.
    fn remove(&mut self, key: &Bytes) -> bool {
        let was_live = self.live(key).is_some();
        self.keys.remove(key);
        was_live
    }

    /// A write that keeps whatever deadline it is given (the key's own).
    fn put(&mut self, key: &Bytes, value: Bytes, at: Option<u64>) {
        self.keys.insert(key.clone(), (value, at));
    }

    /// A write that sets a new deadline: one at or before now deletes the key.
    fn put_new_deadline(&mut self, key: &Bytes, value: Bytes, at: Option<u64>) {
        if at.is_some_and(|at| at <= self.now) {
            self.keys.remove(key);
        } else {
            self.put(key, value, at);
        }
    }

    /// The deadline a `Ttl` stands for; `current` for `Keep`.
    fn deadline(&self, ttl: Ttl, current: Option<u64>) -> Option<u64> {
        match ttl {
            Ttl::Clear => None,
            Ttl::Keep => current,
            Ttl::In(ms) => Some((self.now as i64 + ms).max(0) as u64),
            Ttl::At(at) => Some(at.max(0) as u64),
        }
    }

    fn execute(&mut self, command: &Command) -> Outcome {
        match command {
            Command::Set {
                key,
                value,
                condition,
                ttl,
                get,
            } => self.set(key, value, *condition, *ttl, *get),
            Command::MultiSet {
                pairs,
                only_if_none_exist,
            } => {
                if *only_if_none_exist && pairs.iter().any(|(k, _)| self.live(k).is_some()) {
                    return Outcome::Int(0);
                }
                for (k, v) in pairs {
                    self.put(k, v.clone(), None);
                }
                if *only_if_none_exist {
                    Outcome::Int(1)
                } else {
                    Outcome::Ok
                }
            }
            Command::Delete { keys } => Outcome::Int(keys.iter().filter(|k| self.remove(k)).count() as i64),
            Command::GetDelete { key } => match self.live(key) {
                Some((value, _)) => {
                    self.remove(key);
                    Outcome::Value(value)
                }
                None => Outcome::Nil,
            },
            Command::GetExpire { key, ttl } => self.get_expire(key, *ttl),
            Command::IncrementBy { key, by } => self.increment(key, *by),
            Command::IncrementByFloat { key, by } => self.increment_float(key, *by),
            Command::Append { key, value } => {
                let (old, at) = self.live(key).unwrap_or_default();
                let new = [&old[..], &value[..]].concat();
                let len = new.len() as i64;
                self.put(key, Bytes::from(new), at);
                Outcome::Int(len)
            }
            Command::SetRange { key, offset, value } => self.set_range(key, *offset as usize, value),
            Command::Expire { key, ttl, condition } => self.expire(key, *ttl, *condition),
            Command::Persist { key } => match self.live(key) {
                Some((value, Some(_))) => {
                    self.put(key, value, None);
                    Outcome::Int(1)
                }
                _ => Outcome::Int(0),
            },
            Command::Rename {
                from,
                to,
                only_if_absent,
            } => self.rename(from, to, *only_if_absent),
            Command::FlushAll => {
                self.keys.clear();
                Outcome::Ok
            }
            Command::Atomic { commands, watched } => {
                assert!(watched.is_empty(), "the model does not do WATCH");
                Outcome::Many(
                    commands
                        .iter()
                        .map(|c| match c {
                            Command::Atomic { .. } => Outcome::Error(CommandError::NestedAtomic),
                            c => self.execute(c),
                        })
                        .collect(),
                )
            }
            Command::Get { key } => self.live(key).map_or(Outcome::Nil, |(v, _)| Outcome::Value(v)),
            Command::Exists { keys } => {
                Outcome::Int(keys.iter().filter(|k| self.live(k).is_some()).count() as i64)
            }
            Command::Deadline { key } => Outcome::Int(match self.expiry(key) {
                KeyExpiry::Missing => -2,
                KeyExpiry::Persistent => -1,
                KeyExpiry::At(at) => at as i64,
            }),
            // `RemoveExpired` is the engine's own; nothing else is generated.
            other => unreachable!("never generated: {other:?}"),
        }
    }

    fn set(&mut self, key: &Bytes, value: &Bytes, condition: Condition, ttl: Ttl, get: bool) -> Outcome {
        let old = self.live(key);
        let allowed = match condition {
            Condition::Always => true,
            Condition::IfAbsent => old.is_none(),
            Condition::IfPresent => old.is_some(),
        };
        if allowed {
            let current = old.as_ref().and_then(|(_, at)| *at);
            let at = self.deadline(ttl, current);
            match ttl {
                Ttl::Keep => self.put(key, value.clone(), at),
                _ => self.put_new_deadline(key, value.clone(), at),
            }
        }
        match (get, old) {
            (true, Some((old, _))) => Outcome::Value(old),
            (true, None) => Outcome::Nil,
            (false, _) if allowed => Outcome::Ok,
            (false, _) => Outcome::Nil,
        }
    }

    fn get_expire(&mut self, key: &Bytes, ttl: Ttl) -> Outcome {
        let Some((value, current)) = self.live(key) else {
            return Outcome::Nil;
        };
        let at = self.deadline(ttl, current);
        if at != current {
            self.put_new_deadline(key, value.clone(), at);
        }
        Outcome::Value(value)
    }

    fn increment(&mut self, key: &Bytes, by: i64) -> Outcome {
        let (old, at) = match self.live(key) {
            Some((old, at)) => match parse_int(&old) {
                Some(n) => (n, at),
                None => return Outcome::Error(CommandError::NotInteger),
            },
            None => (0, None),
        };
        let Some(new) = old.checked_add(by) else {
            return Outcome::Error(CommandError::Overflow);
        };
        self.put(key, Bytes::from(new.to_string()), at);
        Outcome::Int(new)
    }

    fn increment_float(&mut self, key: &Bytes, by: f64) -> Outcome {
        let (old, at) = match self.live(key) {
            Some((old, at)) => match parse_float(&old) {
                Some(n) => (n, at),
                None => return Outcome::Error(CommandError::NotFloat),
            },
            None => (0.0, None),
        };
        let new = old + by;
        if !new.is_finite() {
            return Outcome::Error(CommandError::NanOrInfinity);
        }
        // Plain notation, no trailing zeros; `-0` prints as `0`.
        let text = Bytes::from(if new == 0.0 {
            "0".to_string()
        } else {
            new.to_string()
        });
        self.put(key, text.clone(), at);
        Outcome::Value(text)
    }

    fn set_range(&mut self, key: &Bytes, offset: usize, value: &Bytes) -> Outcome {
        let (old, at) = self.live(key).unwrap_or_default();
        if value.is_empty() {
            return Outcome::Int(old.len() as i64);
        }
        let mut new = old.to_vec();
        let end = offset + value.len();
        if new.len() < end {
            new.resize(end, 0);
        }
        new[offset..end].copy_from_slice(value);
        let len = new.len() as i64;
        self.put(key, Bytes::from(new), at);
        Outcome::Int(len)
    }

    fn expire(&mut self, key: &Bytes, ttl: Ttl, condition: ExpireCondition) -> Outcome {
        let Some((value, current)) = self.live(key) else {
            return Outcome::Int(0);
        };
        let new = self.deadline(ttl, None).expect("EXPIRE always names a deadline");
        // A key without a deadline counts as one at infinity for GT and LT.
        let allowed = match condition {
            ExpireCondition::Always => true,
            ExpireCondition::HasNone => current.is_none(),
            ExpireCondition::HasOne => current.is_some(),
            ExpireCondition::Later => current.is_some_and(|c| new > c),
            ExpireCondition::Earlier => current.is_none_or(|c| new < c),
        };
        if !allowed {
            return Outcome::Int(0);
        }
        self.put_new_deadline(key, value, Some(new));
        Outcome::Int(1)
    }

    fn rename(&mut self, from: &Bytes, to: &Bytes, only_if_absent: bool) -> Outcome {
        let Some((value, at)) = self.live(from) else {
            return Outcome::Error(CommandError::NoSuchKey);
        };
        if only_if_absent && self.live(to).is_some() {
            return Outcome::Int(0);
        }
        if from != to {
            self.keys.remove(from);
            self.put(to, value, at);
        }
        if only_if_absent {
            Outcome::Int(1)
        } else {
            Outcome::Ok
        }
    }
}

/// Redis's integers: exactly the canonical decimal form of an `i64` (no `+`,
/// no leading zeros, no `-0`, no spaces).
fn parse_int(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let n: i64 = text.parse().ok()?;
    (n.to_string() == text).then_some(n)
}

/// `INCRBYFLOAT`'s floats: no surrounding spaces, finite.
fn parse_float(bytes: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.is_empty() || text.trim() != text {
        return None;
    }
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

// ---- the harness -----------------------------------------------------

struct Harness {
    dir: TempDir,
    now: Arc<AtomicU64>,
    engine: Option<Engine>,
    model: Model,
    /// Drives [`Harness::pipeline`]'s futures.
    runtime: tokio::runtime::Runtime,
}

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let now = Arc::new(AtomicU64::new(START_MS));
        let mut harness = Harness {
            dir,
            now,
            engine: None,
            model: Model {
                now: START_MS,
                keys: BTreeMap::new(),
            },
            runtime: tokio::runtime::Builder::new_current_thread().build().unwrap(),
        };
        harness.open();
        harness
    }

    fn config(&self) -> EngineConfig {
        common::config(self.dir.path(), &self.now)
    }

    fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("open between operations")
    }

    fn open(&mut self) -> &Engine {
        self.engine = Some(Engine::open(self.config()).unwrap());
        self.engine()
    }

    fn run(&mut self, op: Op) {
        match op {
            Op::Write(command) => {
                let expected = self.expect(std::slice::from_ref(&command));
                let got = self.engine().execute_blocking(command.clone()).unwrap();
                assert_eq!(got, expected[0], "answer to {command:?}");
            }
            Op::Pipeline(commands) => {
                let expected = self.expect(&commands);
                let got = self.pipeline(commands.clone());
                assert_eq!(got, expected, "answers to the pipeline {commands:?}");
            }
            Op::AdvanceClock(ms) => {
                self.now.fetch_add(ms, Ordering::SeqCst);
                self.model.now += ms;
            }
            Op::Snapshot => {
                let info = self.engine().snapshot_blocking().unwrap();
                // The last check read every key, so each expired one was
                // handed to the writer for removal, ahead of the snapshot:
                // the table holds live keys only, and so does the snapshot.
                let live = self.model.live_keys().len();
                assert_eq!(self.engine().len(), live, "expired keys removed on read");
                assert_eq!(info.keys, live as u64, "keys in the snapshot");
                assert_eq!(
                    snapshots(self.dir.path()),
                    vec![info.path],
                    "older snapshots removed"
                );
            }
            Op::CleanReopen => {
                self.engine.take().unwrap().close().unwrap();
                let engine = self.open();
                assert_eq!(
                    engine.recovery().torn_bytes,
                    0,
                    "a clean close leaves nothing to cut"
                );
            }
            Op::Crash { tail, lose_index } => self.crash(tail, lose_index),
        }
        self.check();
    }

    /// The model's answers to `commands`, run in order.
    fn expect(&mut self, commands: &[Command]) -> Vec<Outcome> {
        commands.iter().map(|c| self.model.execute(c)).collect()
    }

    /// Sends every command before awaiting any answer. Each future sends
    /// its request when first polled, and the first pass polls them in
    /// order, so the writer receives them in order.
    fn pipeline(&self, commands: Vec<Command>) -> Vec<Outcome> {
        let engine = self.engine();
        let mut futures: Vec<_> = commands
            .into_iter()
            .map(|c| Box::pin(engine.execute(c)))
            .collect();
        let mut answers: Vec<Option<Outcome>> = vec![None; futures.len()];
        self.runtime.block_on(std::future::poll_fn(|cx| {
            for (future, answer) in futures.iter_mut().zip(answers.iter_mut()) {
                if answer.is_none()
                    && let Poll::Ready(result) = future.as_mut().poll(cx)
                {
                    *answer = Some(result.unwrap());
                }
            }
            if answers.iter().all(Option::is_some) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }));
        answers.into_iter().map(Option::unwrap).collect()
    }

    fn crash(&mut self, tail: Tail, lose_index: bool) {
        // Commands already queued (lazy expiry) are still written: the
        // damage goes after them.
        drop(self.engine.take());
        let wal = self.config().wal_dir();
        let base = *list(&wal).unwrap().stores.last().unwrap();
        let store = store_path(&wal, base);
        let bytes = match tail {
            Tail::Intact => vec![],
            Tail::Garbage(garbage) => garbage,
            Tail::Zeros(n) => vec![0; n],
            Tail::PartialRecord { keep } => {
                let next = base + records_in(&store);
                let overwrite = all_keys()
                    .into_iter()
                    .map(|key| Mutation::Set {
                        key,
                        value: Bytes::from_static(b"never acknowledged"),
                        expire_at_ms: None,
                    })
                    .collect();
                let mut framed = Vec::new();
                encode_into(&mut framed, next, &Mutation::Batch(overwrite).encode());
                framed.truncate(1 + keep % (framed.len() - 1));
                framed
            }
        };
        OpenOptions::new()
            .append(true)
            .open(&store)
            .unwrap()
            .write_all(&bytes)
            .unwrap();
        if lose_index {
            zero_entries(&index_path(&wal, base));
        }
        let engine = self.open();
        assert_eq!(
            engine.recovery().torn_bytes,
            bytes.len() as u64,
            "recovery cuts exactly what followed the last durable byte"
        );
    }

    /// The engine and the model agree on every key, through every read.
    fn check(&self) {
        let engine = self.engine();
        let model = &self.model;
        assert_eq!(engine.now_ms(), model.now);
        let keys = all_keys();
        for key in &keys {
            let live = model.live(key);
            assert_eq!(engine.get(key), live.map(|(v, _)| v), "value of {key:?}");
            assert_eq!(engine.expiry(key), model.expiry(key), "deadline of {key:?}");
        }
        let expected: Vec<Option<Bytes>> = keys.iter().map(|k| model.live(k).map(|(v, _)| v)).collect();
        assert_eq!(engine.get_many(&keys), expected, "get_many");
        let live = model.live_keys();
        assert_eq!(engine.exists(&keys), live.len(), "exists");
        let mut listed = engine.keys(b"*");
        listed.sort();
        assert_eq!(listed, live, "keys *");
        // DBSIZE also counts expired keys not yet removed, never others.
        assert!(
            (live.len()..=KEYS).contains(&engine.len()),
            "len {} with {} live keys",
            engine.len(),
            live.len()
        );
    }
}

/// How many whole records the store at `path` holds; it must end on a record
/// boundary (everything in it was written by the engine).
fn records_in(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    let (mut pos, mut count) = (FILE_HEADER_BYTES, 0);
    while pos < bytes.len() {
        pos += RECORD_HEADER_BYTES + announced_len(&bytes[pos..pos + RECORD_HEADER_BYTES]) as usize;
        count += 1;
    }
    assert_eq!(pos, bytes.len(), "{} ends inside a record", path.display());
    count
}

/// What losing the active index's unsynced pages looks like: the header
/// (written durably on creation) stays, every entry reads as zero.
fn zero_entries(path: &Path) {
    let file = OpenOptions::new().write(true).open(path).unwrap();
    let len = file.metadata().unwrap().len();
    file.set_len(FILE_HEADER_BYTES as u64).unwrap();
    file.set_len(len).unwrap();
}

fn snapshots(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("snapshot-"))
        })
        .collect();
    found.sort();
    found
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn the_engine_agrees_with_a_btreemap_through_crashes(ops in prop::collection::vec(op(), 1..48)) {
        let mut harness = Harness::new();
        harness.check();
        for op in ops {
            harness.run(op);
        }
    }
}
