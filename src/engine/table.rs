//! The in-memory table: keys to values with optional deadlines, split into
//! shards each behind its own `RwLock`.
//!
//! Why sharded `RwLock<HashMap>`: readers on many connections must never wait
//! for each other or for the single writer, and a lock is held only for one
//! hash lookup and a reference-count bump (values are [`Bytes`]), never across
//! I/O or `.await`. Measured on this 2-core machine with 1M keys
//! (`cargo bench --bench engine`, docs/benchmarks.md): with nothing writing,
//! 4096 shards read at 0.8–1.2× the speed of one `RwLock<HashMap>`; beside one
//! busy writer they give 1.3–2.6× the reads and 1.6–2.3× the writes. The gain
//! is the writer's: it never holds a lock every reader needs. The shard is
//! also the unit of `SCAN`'s cursor: the cursor is a shard number, so every
//! key present for a whole iteration is returned exactly once, however the
//! table grows or shrinks meanwhile.
//!
//! The table holds only *visible* state: the writer applies a batch only after
//! it is as durable as the fsync policy promises (see [`super`]).
//!
//! Memory: each key is one allocation, a [`Block`] holding its metadata, key
//! and value, and a shard's set holds only 8-byte pointers to them. With
//! 1M keys of 100 bytes that is about 160 bytes a key in all, where a map of
//! boxed keys to `Bytes` values took about 400 (72-byte slots at a hash
//! table's typical load, a second allocation for the key, and values that
//! kept whole request buffers alive). The price is a copy of the value on
//! every read that returns it (`Entry` owns its `Bytes`), which for values of
//! typical size costs less than the reference count it replaces costs in
//! cache misses.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hash, Hasher};
use std::ptr::NonNull;
use std::sync::RwLock;

/// The keys' hash: foldhash's quality variant, seeded at random per table
/// and per shard, so clients cannot choose colliding keys without knowing
/// the seeds. The standard library's SipHash took a quarter of replay time
/// (perf, 1M SETs); foldhash is several times faster on short keys, at the
/// cost of SipHash's stronger guarantee against an attacker who can observe
/// hash values (walkv never exposes them).
type RandomState = foldhash::quality::RandomState;

use bytes::Bytes;

use super::glob::glob_match;
use super::mutation::Mutation;
use crate::log::Offset;

pub const SHARD_BITS: u32 = 12;
pub const SHARDS: usize = 1 << SHARD_BITS;

/// One key with its value, deadline and record offset, in one allocation:
/// `[length: u32][flags: u8][lsn: u64][deadline: u64, if flags &
/// HAS_DEADLINE][key length: u32][key][value]`, integers little-endian.
/// Hashed and compared by its key alone, so a set of blocks is a map from
/// keys.
///
/// The set's slot is a thin pointer, 8 bytes where a `Box<[u8]>` takes 16,
/// because the block carries its own length: at a hash table's typical load
/// that is 16 MB less for 1M keys (about 9% of the table), while the 4 bytes
/// it adds to the block stay within the allocator's 16-byte size class for
/// most key and value sizes. A block is at most `u32::MAX` bytes: it is built
/// from one log record, which the log's framing bounds the same way, or from
/// a snapshot entry, which loading checks.
struct Block(NonNull<u8>);

// SAFETY: a block owns its allocation alone and never changes it, as a
// `Box<[u8]>` would.
unsafe impl Send for Block {}
unsafe impl Sync for Block {}

const HAS_DEADLINE: u8 = 1;
/// Where the flags byte is; the length comes before it.
const FLAGS_AT: usize = 4;
/// Bytes a block needs beside its key and value, at most.
pub(crate) const BLOCK_OVERHEAD: usize = 4 + 1 + 8 + 8 + 4;

impl Block {
    fn new(key: &[u8], value: &[u8], expire_at_ms: Option<u64>, lsn: Offset) -> Block {
        let deadline = expire_at_ms.map_or(0, |_| 8);
        let len = 4 + 1 + 8 + deadline + 4 + key.len() + value.len();
        let len32 = u32::try_from(len).expect("a record or a checked snapshot entry fits in u32");
        let mut bytes = Vec::with_capacity(len);
        bytes.extend_from_slice(&len32.to_le_bytes());
        bytes.push(if expire_at_ms.is_some() { HAS_DEADLINE } else { 0 });
        bytes.extend_from_slice(&lsn.to_le_bytes());
        if let Some(at) = expire_at_ms {
            bytes.extend_from_slice(&at.to_le_bytes());
        }
        bytes.extend_from_slice(&(key.len() as u32).to_le_bytes());
        bytes.extend_from_slice(key);
        bytes.extend_from_slice(value);
        let raw = Box::into_raw(bytes.into_boxed_slice());
        Block(NonNull::new(raw.cast::<u8>()).expect("a Box is never null"))
    }

    /// The whole block, its length included.
    fn bytes(&self) -> &[u8] {
        // SAFETY: the pointer came from a `Box<[u8]>` (see `new`) that is
        // freed only by `drop`, and whose first 4 bytes hold its length.
        unsafe {
            let len = u32::from_le_bytes(self.0.as_ptr().cast::<[u8; 4]>().read_unaligned());
            std::slice::from_raw_parts(self.0.as_ptr(), len as usize)
        }
    }

    fn flags(&self) -> u8 {
        self.bytes()[FLAGS_AT]
    }

    fn u64_at(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.bytes()[at..at + 8].try_into().expect("8 bytes"))
    }

    fn key_len_at(&self) -> usize {
        if self.flags() & HAS_DEADLINE != 0 {
            FLAGS_AT + 17
        } else {
            FLAGS_AT + 9
        }
    }

    fn key_range(&self) -> std::ops::Range<usize> {
        let at = self.key_len_at();
        let len = u32::from_le_bytes(self.bytes()[at..at + 4].try_into().expect("4 bytes")) as usize;
        at + 4..at + 4 + len
    }

    fn key(&self) -> &[u8] {
        &self.bytes()[self.key_range()]
    }

    fn value(&self) -> &[u8] {
        &self.bytes()[self.key_range().end..]
    }

    fn lsn(&self) -> Offset {
        self.u64_at(FLAGS_AT + 1)
    }

    fn expire_at_ms(&self) -> Option<u64> {
        (self.flags() & HAS_DEADLINE != 0).then(|| self.u64_at(FLAGS_AT + 9))
    }

    fn is_live(&self, now_ms: u64) -> bool {
        self.expire_at_ms().is_none_or(|at| now_ms <= at)
    }

    /// The public view, with a copy of the value (or none, for `meta`).
    fn entry(&self, with_value: bool) -> Entry {
        Entry {
            value: if with_value {
                Bytes::copy_from_slice(self.value())
            } else {
                Bytes::new()
            },
            expire_at_ms: self.expire_at_ms(),
            lsn: self.lsn(),
        }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        let len = self.bytes().len();
        // SAFETY: rebuilds the `Box<[u8]>` of `new`, with its length, once.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.0.as_ptr(), len)) });
    }
}

impl Borrow<[u8]> for Block {
    fn borrow(&self) -> &[u8] {
        self.key()
    }
}

impl Hash for Block {
    /// As `[u8]` hashes, which `Borrow` requires: lookups hash a `&[u8]`.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state)
    }
}

impl PartialEq for Block {
    fn eq(&self, other: &Block) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Block {}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub value: Bytes,
    /// Absolute deadline in ms since the Unix epoch.
    pub expire_at_ms: Option<u64>,
    /// The offset of the log record that produced this value (for `WATCH`).
    pub lsn: Offset,
}

impl Entry {
    /// Redis's rule: a key is expired once the clock is past its deadline.
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.expire_at_ms.is_none_or(|at| now_ms <= at)
    }
}

/// A `Set` ready to insert: see [`Table::prepare_set`].
pub(crate) struct PreparedSet {
    shard: usize,
    block: Block,
}

impl PreparedSet {
    pub(crate) fn shard(&self) -> usize {
        self.shard
    }
}

/// What a point lookup found.
#[derive(Debug, PartialEq)]
pub enum Lookup {
    Live(Entry),
    /// Present but past its deadline: invisible, and due for a logged delete.
    Expired,
    Missing,
}

#[derive(Default)]
struct Shard {
    map: HashSet<Block, RandomState>,
    /// The offset of the latest removal of any key in this shard; the
    /// "version" of every key the shard does not hold.
    removal_lsn: Offset,
    /// How many of `map`'s keys have a deadline: the active expiry skips a
    /// shard without any, as Redis samples only its `expires` dict. Scanning
    /// every key of 256 shards of a 1M-key table took the writer's lock for
    /// its whole 1 ms budget every tick, though no key had a deadline.
    deadlines: usize,
}

impl Shard {
    fn put(&mut self, block: Block) {
        self.deadlines += block.expire_at_ms().is_some() as usize;
        if let Some(old) = self.map.replace(block) {
            self.deadlines -= old.expire_at_ms().is_some() as usize;
        }
    }

    fn take(&mut self, key: &[u8]) -> Option<Block> {
        let old = self.map.take(key)?;
        self.deadlines -= old.expire_at_ms().is_some() as usize;
        Some(old)
    }

    fn clear(&mut self) {
        self.map = HashSet::default();
        self.deadlines = 0;
    }
}

pub struct Table {
    shards: Box<[RwLock<Shard>]>,
    hasher: RandomState,
}

impl Default for Table {
    fn default() -> Self {
        Table {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            hasher: RandomState::default(),
        }
    }
}

impl Table {
    fn shard_of(&self, key: &[u8]) -> usize {
        (self.hasher.hash_one(key) >> (64 - SHARD_BITS)) as usize
    }

    fn read(&self, shard: usize) -> std::sync::RwLockReadGuard<'_, Shard> {
        // A poisoned lock means a panic while mutating a HashMap, which only
        // an allocation failure can cause; the map itself is still sound.
        self.shards[shard].read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self, shard: usize) -> std::sync::RwLockWriteGuard<'_, Shard> {
        self.shards[shard].write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn lookup(&self, key: &[u8], now_ms: u64) -> Lookup {
        self.lookup_with(key, now_ms, true)
    }

    /// As [`Table::lookup`], without copying the value: a live entry's
    /// `value` is empty. For writes that only need to know whether the key
    /// is there and its deadline.
    pub fn lookup_meta(&self, key: &[u8], now_ms: u64) -> Lookup {
        self.lookup_with(key, now_ms, false)
    }

    fn lookup_with(&self, key: &[u8], now_ms: u64, with_value: bool) -> Lookup {
        match self.read(self.shard_of(key)).map.get(key) {
            Some(b) if b.is_live(now_ms) => Lookup::Live(b.entry(with_value)),
            Some(_) => Lookup::Expired,
            None => Lookup::Missing,
        }
    }

    /// The live entry for `key`, if any.
    pub fn get(&self, key: &[u8], now_ms: u64) -> Option<Entry> {
        match self.lookup(key, now_ms) {
            Lookup::Live(e) => Some(e),
            _ => None,
        }
    }

    /// A value that changes whenever `key` is written, removed or expires (and
    /// sometimes when a neighbour is removed: WATCH may abort needlessly, never
    /// miss a change).
    pub fn version(&self, key: &[u8], now_ms: u64) -> (Offset, bool) {
        let shard = self.read(self.shard_of(key));
        match shard.map.get(key) {
            Some(b) => (b.lsn(), b.is_live(now_ms)),
            None => (shard.removal_lsn, false),
        }
    }

    /// Applies one logged mutation. The same function serves the writer after
    /// a commit and replay on open, so the two cannot disagree. A mutation
    /// that touches several shards takes all their locks first (in shard
    /// order, so two such calls cannot deadlock), so no reader sees half of a
    /// batch.
    pub fn apply(&self, mutation: &Mutation, lsn: Offset) {
        if let Mutation::Set {
            key,
            value,
            expire_at_ms,
        } = mutation
        {
            self.apply_set(key, value, *expire_at_ms, lsn);
            return;
        }
        let mut indices = Vec::new();
        self.shards_touched(mutation, &mut indices);
        indices.sort_unstable();
        indices.dedup();
        let guards = indices.iter().map(|&i| self.write(i)).collect();
        let mut locked = Locked {
            table: self,
            indices,
            guards,
        };
        locked.apply(mutation, lsn);
    }

    /// Sets one key: the replay hot path (one shard, no bookkeeping), also
    /// fed straight from a record by [`Mutation::decode_set`].
    pub fn apply_set(&self, key: &[u8], value: &[u8], expire_at_ms: Option<u64>, lsn: Offset) {
        self.insert_prepared(self.prepare_set(key, value, expire_at_ms, lsn));
    }

    /// The first half of [`Table::apply_set`]: the key's allocation and its
    /// shard, made by replay's reader so that an applier thread only inserts.
    pub(crate) fn prepare_set(
        &self,
        key: &[u8],
        value: &[u8],
        expire_at_ms: Option<u64>,
        lsn: Offset,
    ) -> PreparedSet {
        PreparedSet {
            shard: self.shard_of(key),
            block: Block::new(key, value, expire_at_ms, lsn),
        }
    }

    /// The second half of [`Table::apply_set`].
    pub(crate) fn insert_prepared(&self, set: PreparedSet) {
        self.write(set.shard).put(set.block);
    }

    fn shards_touched(&self, mutation: &Mutation, out: &mut Vec<usize>) {
        match mutation {
            Mutation::Set { key, .. } | Mutation::SetDeadline { key, .. } => out.push(self.shard_of(key)),
            Mutation::Delete { keys } => out.extend(keys.iter().map(|k| self.shard_of(k))),
            Mutation::Batch(items) => items.iter().for_each(|m| self.shards_touched(m, out)),
            Mutation::FlushAll => out.extend(0..SHARDS),
        }
    }

    /// The live values of `keys`, read under all their shards' locks at once
    /// so that the answer is one consistent moment of the table (`MGET`).
    pub fn get_many(&self, keys: &[Bytes], now_ms: u64) -> Vec<Option<Bytes>> {
        let mut shards: Vec<usize> = keys.iter().map(|k| self.shard_of(k)).collect();
        shards.sort_unstable();
        shards.dedup();
        let locked: Vec<_> = shards.iter().map(|&i| self.read(i)).collect();
        keys.iter()
            .map(|k| {
                let i = shards
                    .binary_search(&self.shard_of(k))
                    .expect("shard locked above");
                locked[i]
                    .map
                    .get(&k[..])
                    .filter(|b| b.is_live(now_ms))
                    .map(|b| Bytes::copy_from_slice(b.value()))
            })
            .collect()
    }

    /// Makes room for about `keys` more keys spread over the shards, so that
    /// loading them does not grow (and rehash) every shard a dozen times.
    pub fn reserve(&self, keys: usize) {
        let per_shard = keys.div_ceil(SHARDS);
        for i in 0..SHARDS {
            self.write(i).map.reserve(per_shard);
        }
    }

    /// Keys held, including expired ones not yet removed (as Redis's DBSIZE).
    pub fn len(&self) -> usize {
        (0..SHARDS).map(|i| self.read(i).map.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keys held that have a deadline.
    pub fn volatile_len(&self) -> usize {
        (0..SHARDS)
            .map(|i| {
                self.read(i)
                    .map
                    .iter()
                    .filter(|b| b.expire_at_ms().is_some())
                    .count()
            })
            .sum()
    }

    /// One step of `SCAN`: whole shards from `cursor` on until at least
    /// `count` keys were visited. Empty shards cost one uncontended lock
    /// each, so they do not count against the step: an empty or sparse table
    /// is walked in one call rather than answering empty pages (Redis answers
    /// cursor 0 at once for an empty table). Returns the next cursor (0 when
    /// done).
    pub fn scan(&self, cursor: u64, count: usize, pattern: Option<&[u8]>, now_ms: u64) -> (u64, Vec<Bytes>) {
        let mut keys = Vec::new();
        let mut shard = cursor as usize;
        let mut visited = 0usize;
        while shard < SHARDS && visited < count.max(1) {
            let guard = self.read(shard);
            for block in &guard.map {
                visited += 1;
                if block.is_live(now_ms) && pattern.is_none_or(|p| glob_match(p, block.key())) {
                    keys.push(Bytes::copy_from_slice(block.key()));
                }
            }
            shard += 1;
        }
        let next = if shard >= SHARDS { 0 } else { shard as u64 };
        (next, keys)
    }

    /// Every live key matching `pattern` (`KEYS`).
    pub fn keys(&self, pattern: &[u8], now_ms: u64) -> Vec<Bytes> {
        let mut keys = Vec::new();
        for i in 0..SHARDS {
            let guard = self.read(i);
            keys.extend(
                guard
                    .map
                    .iter()
                    .filter(|b| b.is_live(now_ms) && glob_match(pattern, b.key()))
                    .map(|b| Bytes::copy_from_slice(b.key())),
            );
        }
        keys
    }

    /// A live key chosen at random, starting at shard `seed % SHARDS`.
    pub fn random_key(&self, seed: u64, now_ms: u64) -> Option<Bytes> {
        let start = (seed % SHARDS as u64) as usize;
        (0..SHARDS).find_map(|i| {
            let guard = self.read((start + i) % SHARDS);
            let live: Vec<&[u8]> = guard
                .map
                .iter()
                .filter(|b| b.is_live(now_ms))
                .map(|b| b.key())
                .collect();
            (!live.is_empty()).then(|| Bytes::copy_from_slice(live[(seed as usize / SHARDS) % live.len()]))
        })
    }

    /// The expired keys of shards `start..start + shards` (wrapping): the
    /// active expiry sampler's input.
    pub fn expired_in(&self, start: usize, shards: usize, now_ms: u64) -> Vec<Bytes> {
        let mut keys = Vec::new();
        for i in 0..shards.min(SHARDS) {
            let guard = self.read((start + i) % SHARDS);
            if guard.deadlines == 0 {
                continue;
            }
            keys.extend(
                guard
                    .map
                    .iter()
                    .filter(|b| !b.is_live(now_ms))
                    .map(|b| Bytes::copy_from_slice(b.key())),
            );
        }
        keys
    }

    /// A copy of one shard's entries, taken under a short read lock (a
    /// shard holds a 4096th of the keys); the snapshot writer's unit of work.
    pub fn shard_entries(&self, shard: usize) -> Vec<(Bytes, Entry)> {
        self.read(shard)
            .map
            .iter()
            .map(|b| (Bytes::copy_from_slice(b.key()), b.entry(true)))
            .collect()
    }
}

/// The write-locked shards of one mutation.
struct Locked<'a> {
    table: &'a Table,
    /// Sorted shard numbers; `guards[i]` locks shard `indices[i]`.
    indices: Vec<usize>,
    guards: Vec<std::sync::RwLockWriteGuard<'a, Shard>>,
}

impl Locked<'_> {
    fn shard(&mut self, key: &[u8]) -> &mut Shard {
        let i = self
            .indices
            .binary_search(&self.table.shard_of(key))
            .expect("every touched shard was locked");
        &mut self.guards[i]
    }

    /// Applies a `Set` to its (locked) shard.
    fn apply_to(shard: &mut Shard, mutation: &Mutation, lsn: Offset) {
        if let Mutation::Set {
            key,
            value,
            expire_at_ms,
        } = mutation
        {
            shard.put(Block::new(key, value, *expire_at_ms, lsn));
        }
    }

    fn apply(&mut self, mutation: &Mutation, lsn: Offset) {
        match mutation {
            Mutation::Set { key, .. } => Self::apply_to(self.shard(key), mutation, lsn),
            Mutation::SetDeadline { key, expire_at_ms } => {
                let shard = self.shard(key);
                if let Some(old) = shard.take(&key[..]) {
                    shard.put(Block::new(old.key(), old.value(), *expire_at_ms, lsn));
                }
            }
            Mutation::Delete { keys } => {
                for key in keys {
                    let shard = self.shard(key);
                    shard.take(&key[..]);
                    shard.removal_lsn = lsn;
                }
            }
            Mutation::Batch(items) => items.iter().for_each(|m| self.apply(m, lsn)),
            Mutation::FlushAll => {
                for shard in self.guards.iter_mut() {
                    shard.clear();
                    shard.removal_lsn = lsn;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(key: &str, value: &str, at: Option<u64>) -> Mutation {
        Mutation::Set {
            key: Bytes::copy_from_slice(key.as_bytes()),
            value: Bytes::copy_from_slice(value.as_bytes()),
            expire_at_ms: at,
        }
    }

    #[test]
    fn a_block_gives_back_what_it_was_built_from() {
        let long = vec![7u8; 70_000];
        type Case<'a> = (&'a [u8], &'a [u8], Option<u64>, Offset);
        let cases: [Case; 4] = [
            (b"", b"", None, 0),
            (b"k", b"", Some(0), 1),
            (b"key", &long, None, u64::MAX),
            (&long, b"v", Some(u64::MAX), 1 << 40),
        ];
        for (key, value, at, lsn) in cases {
            let block = Block::new(key, value, at, lsn);
            assert_eq!(
                block.bytes().len(),
                BLOCK_OVERHEAD - at.map_or(8, |_| 0) + key.len() + value.len()
            );
            assert_eq!(
                (block.key(), block.value(), block.expire_at_ms(), block.lsn()),
                (key, value, at, lsn)
            );
        }
    }

    #[test]
    fn apply_is_idempotent() {
        let t = Table::default();
        let ms = [
            set("a", "1", None),
            set("b", "2", Some(100)),
            Mutation::Delete {
                keys: vec![Bytes::from_static(b"a")],
            },
        ];
        for _ in 0..2 {
            for (lsn, m) in ms.iter().enumerate() {
                t.apply(m, lsn as u64);
            }
        }
        assert_eq!(t.get(b"a", 0), None);
        assert_eq!(t.get(b"b", 100).unwrap().value, "2");
        assert_eq!(t.lookup(b"b", 101), Lookup::Expired);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn scan_returns_every_key_exactly_once() {
        let t = Table::default();
        for i in 0..5000 {
            t.apply(&set(&format!("k{i}"), "v", None), i);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        loop {
            let (next, keys) = t.scan(cursor, 10, None, 0);
            for k in keys {
                assert!(seen.insert(k), "key returned twice");
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        assert_eq!(seen.len(), 5000);
        assert_eq!(
            Table::default().scan(0, 10, None, 0),
            (0, vec![]),
            "an empty table: done at once"
        );
    }

    #[test]
    fn version_changes_on_write_delete_and_expiry() {
        let t = Table::default();
        let v0 = t.version(b"k", 0);
        t.apply(&set("k", "v", Some(50)), 7);
        let v1 = t.version(b"k", 0);
        assert_ne!(v0, v1);
        assert_ne!(v1, t.version(b"k", 51), "expiry changes the version");
        t.apply(
            &Mutation::Delete {
                keys: vec![Bytes::from_static(b"k")],
            },
            9,
        );
        assert_eq!(t.version(b"k", 0), (9, false));
    }

    /// Every shard's count of keys with a deadline, recounted from its keys.
    fn recount(t: &Table) -> Vec<(usize, usize)> {
        (0..SHARDS)
            .map(|i| {
                let shard = t.read(i);
                let real = shard.map.iter().filter(|b| b.expire_at_ms().is_some()).count();
                (shard.deadlines, real)
            })
            .filter(|(kept, real)| kept != real || *real > 0)
            .collect()
    }

    #[test]
    fn deadline_counts_stay_exact_and_the_active_expiry_finds_every_expired_key() {
        let t = Table::default();
        let keys = |range: std::ops::Range<u32>| -> Vec<Bytes> {
            range.map(|i| Bytes::from(format!("k{i}"))).collect()
        };
        let mut lsn = 0;
        let mut apply = |m: Mutation| {
            lsn += 1;
            t.apply(&m, lsn);
        };
        for (i, key) in keys(0..3000).into_iter().enumerate() {
            let at = (i % 3 == 0).then_some(100 + i as u64);
            apply(Mutation::Set {
                key,
                value: Bytes::from_static(b"v"),
                expire_at_ms: at,
            });
        }
        // Overwrite some with and without deadlines, move some, drop some.
        for key in keys(0..300) {
            apply(Mutation::Set {
                key,
                value: Bytes::from_static(b"w"),
                expire_at_ms: None,
            });
        }
        for key in keys(300..600) {
            apply(Mutation::SetDeadline {
                key,
                expire_at_ms: Some(50),
            });
        }
        apply(Mutation::Delete { keys: keys(600..900) });
        let counts = recount(&t);
        assert!(counts.iter().all(|(kept, real)| kept == real), "{counts:?}");

        // Deadlines 100 + i: at 2000 those below k1900 have passed.
        let mut expired: Vec<Bytes> = t.expired_in(0, SHARDS, 2000);
        expired.sort();
        let mut want: Vec<Bytes> = (300..600)
            .chain((900..1900).filter(|i| i % 3 == 0))
            .map(|i| Bytes::from(format!("k{i}")))
            .collect();
        want.sort();
        assert_eq!(expired, want);

        apply(Mutation::FlushAll);
        assert!(recount(&t).is_empty(), "no deadline left anywhere");
    }
}
