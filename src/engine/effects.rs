//! Turning commands into effects. The writer computes every command against
//! the latest state, which is the table *plus* the batch it is assembling and
//! has not yet made visible ([`Pending`]), and records what changed as
//! [`Mutation`]s: values, not operations, so replay is idempotent.

use std::collections::HashMap;

/// The overlay's keys come from clients, so its hash is seeded at random;
/// foldhash, as the table's (SipHash showed in the writer's profile).
type KeyMap = HashMap<Bytes, PendingEntry, foldhash::quality::RandomState>;

use bytes::{Bytes, BytesMut};

use super::command::{Command, CommandError, Condition, ExpireCondition, Outcome, Ttl, WatchToken};
use super::mutation::Mutation;
use super::table::{Entry, Lookup, Table};
use crate::log::Offset;

type PendingEntry = (Offset, Option<Entry>);

/// Changes computed but not yet applied to the table, newest per key.
#[derive(Default)]
pub struct Pending {
    /// `None` marks a removal; the offset is the record that made the change.
    keys: KeyMap,
    /// Set by a `FlushAll` in the batch: keys not in `keys` are gone.
    flushed_at: Option<Offset>,
    /// How to undo the command being computed, newest last, so that a
    /// command refused after computing (its record is too large) leaves the
    /// batch as it was.
    undo: Vec<Undo>,
}

enum Undo {
    Key(Bytes, Option<PendingEntry>),
    Flush(KeyMap, Option<Offset>),
}

impl Pending {
    pub fn clear(&mut self) {
        self.keys.clear();
        self.flushed_at = None;
        self.undo.clear();
    }

    /// Forgets what the table now holds: every change by a record below
    /// `applied_end`. A key changed again later keeps its newer entry.
    pub fn retire(&mut self, applied_end: Offset) {
        self.keys.retain(|_, (lsn, _)| *lsn >= applied_end);
        if self.flushed_at.is_some_and(|at| at < applied_end) {
            self.flushed_at = None;
        }
    }

    /// Starts a command: what it changes from here on can be rolled back.
    pub fn begin(&mut self) {
        self.undo.clear();
    }

    /// Takes back every change since [`Pending::begin`].
    pub fn rollback(&mut self) {
        while let Some(undo) = self.undo.pop() {
            match undo {
                Undo::Key(key, Some(old)) => {
                    self.keys.insert(key, old);
                }
                Undo::Key(key, None) => {
                    self.keys.remove(&key);
                }
                Undo::Flush(keys, flushed_at) => {
                    self.keys = keys;
                    self.flushed_at = flushed_at;
                }
            }
        }
    }

    fn put(&mut self, key: Bytes, value: PendingEntry) {
        let old = self.keys.insert(key.clone(), value);
        self.undo.push(Undo::Key(key, old));
    }

    fn flush(&mut self, lsn: Offset) {
        let keys = std::mem::take(&mut self.keys);
        self.undo.push(Undo::Flush(keys, self.flushed_at));
        self.flushed_at = Some(lsn);
    }
}

/// One command's computation: reads see the latest state; writes go to the
/// pending state and to `out`, the mutations of the record being built.
pub struct Effects<'a> {
    pub table: &'a Table,
    pub pending: &'a mut Pending,
    pub now_ms: u64,
    /// The offset the record being built will get.
    pub lsn: Offset,
    pub max_value_bytes: usize,
    pub out: Vec<Mutation>,
}

impl Effects<'_> {
    fn lookup(&self, key: &[u8]) -> Lookup {
        self.lookup_with(key, true)
    }

    /// `with_value` false spares the table a copy of a value nobody reads
    /// (the entry's `value` may then be empty).
    fn lookup_with(&self, key: &[u8], with_value: bool) -> Lookup {
        match self.pending.keys.get(key) {
            Some((_, Some(e))) if e.is_live(self.now_ms) => Lookup::Live(e.clone()),
            Some((_, Some(_))) => Lookup::Expired,
            Some((_, None)) => Lookup::Missing,
            None if self.pending.flushed_at.is_some() => Lookup::Missing,
            None if with_value => self.table.lookup(key, self.now_ms),
            None => self.table.lookup_meta(key, self.now_ms),
        }
    }

    fn get(&self, key: &[u8]) -> Option<Entry> {
        match self.lookup(key) {
            Lookup::Live(e) => Some(e),
            _ => None,
        }
    }

    fn version(&self, key: &[u8]) -> WatchToken {
        let (version, live) = match self.pending.keys.get(key) {
            Some((_, Some(e))) => (e.lsn, e.is_live(self.now_ms)),
            Some((lsn, None)) => (*lsn, false),
            None => match self.pending.flushed_at {
                Some(lsn) => (lsn, false),
                None => self.table.version(key, self.now_ms),
            },
        };
        WatchToken { version, live }
    }

    /// Sets `key`; a deadline already past is logged as a removal instead.
    /// Sets `key` with a deadline it already had (or none). A kept deadline
    /// is never past: the key was live a moment ago (`now <= deadline`).
    fn set(&mut self, key: Bytes, value: Bytes, expire_at_ms: Option<u64>) {
        let entry = Entry {
            value: value.clone(),
            expire_at_ms,
            lsn: self.lsn,
        };
        self.pending.put(key.clone(), (self.lsn, Some(entry)));
        self.out.push(Mutation::Set {
            key,
            value,
            expire_at_ms,
        });
    }

    /// Sets `key` with a newly given deadline; one at or before now is logged
    /// as a removal instead, as Redis does for a deadline in the past.
    fn set_new_deadline(&mut self, key: Bytes, value: Bytes, expire_at_ms: Option<u64>) {
        if expire_at_ms.is_some_and(|at| at <= self.now_ms) {
            self.remove(key);
        } else {
            self.set(key, value, expire_at_ms);
        }
    }

    fn set_deadline(&mut self, key: Bytes, mut entry: Entry, expire_at_ms: Option<u64>) {
        if expire_at_ms.is_some_and(|at| at <= self.now_ms) {
            self.remove(key);
            return;
        }
        entry.expire_at_ms = expire_at_ms;
        entry.lsn = self.lsn;
        self.pending.put(key.clone(), (self.lsn, Some(entry)));
        self.out.push(Mutation::SetDeadline { key, expire_at_ms });
    }

    /// Removes `key` if it is held at all (live or expired); answers whether
    /// it was live.
    fn remove(&mut self, key: Bytes) -> bool {
        let found = self.lookup(&key);
        if found == Lookup::Missing {
            return false;
        }
        self.pending.put(key.clone(), (self.lsn, None));
        match self.out.last_mut() {
            Some(Mutation::Delete { keys }) => keys.push(key),
            _ => self.out.push(Mutation::Delete { keys: vec![key] }),
        }
        matches!(found, Lookup::Live(_))
    }

    /// The absolute deadline a `Ttl::At`/`Ttl::In` stands for; `None` for
    /// `Clear`; the key's current one for `Keep`.
    fn deadline(
        &self,
        ttl: Ttl,
        current: Option<u64>,
        command: &'static str,
    ) -> Result<Option<u64>, CommandError> {
        let at = match ttl {
            Ttl::Clear => return Ok(None),
            Ttl::Keep => return Ok(current),
            Ttl::At(at) => at,
            Ttl::In(ms) => (self.now_ms as i64)
                .checked_add(ms)
                .ok_or(CommandError::InvalidExpire(command))?,
        };
        // A deadline at or before the epoch is simply in the past.
        Ok(Some(at.max(0) as u64))
    }

    /// Computes one command. Nothing is written for a command that fails.
    pub fn execute(&mut self, command: Command) -> Outcome {
        let mark = self.out.len();
        let outcome = self.dispatch(command);
        if let Outcome::Error(_) = outcome {
            debug_assert_eq!(self.out.len(), mark, "a failed command wrote nothing");
        }
        outcome
    }

    fn dispatch(&mut self, command: Command) -> Outcome {
        let result = match command {
            Command::Set {
                key,
                value,
                condition,
                ttl,
                get,
            } => self.do_set(key, value, condition, ttl, get),
            Command::MultiSet {
                pairs,
                only_if_none_exist,
            } => Ok(self.do_multi_set(pairs, only_if_none_exist)),
            Command::Delete { keys } => Ok(Outcome::Int(
                keys.into_iter().filter(|k| self.remove(k.clone())).count() as i64,
            )),
            Command::GetDelete { key } => {
                let old = self.get(&key);
                self.remove(key);
                Ok(old.map_or(Outcome::Nil, |e| Outcome::Value(e.value)))
            }
            Command::GetExpire { key, ttl } => self.do_get_expire(key, ttl),
            Command::IncrementBy { key, by } => self.do_increment(key, by),
            Command::IncrementByFloat { key, by } => self.do_increment_float(key, by),
            Command::Append { key, value } => self.do_append(key, value),
            Command::SetRange { key, offset, value } => self.do_set_range(key, offset, value),
            Command::Expire { key, ttl, condition } => self.do_expire(key, ttl, condition),
            Command::Persist { key } => Ok(self.do_persist(key)),
            Command::Rename {
                from,
                to,
                only_if_absent,
            } => self.do_rename(from, to, only_if_absent),
            Command::FlushAll => {
                self.pending.flush(self.lsn);
                self.out.push(Mutation::FlushAll);
                Ok(Outcome::Ok)
            }
            Command::Atomic { commands, watched } => Ok(self.do_atomic(commands, watched)),
            Command::MultiGet { keys } => Ok(Outcome::Many(
                keys.iter()
                    .map(|k| self.get(k).map_or(Outcome::Nil, |e| Outcome::Value(e.value)))
                    .collect(),
            )),
            Command::GetRange { key, start, end } => Ok(Outcome::Value(
                self.get(&key)
                    .map_or_else(Bytes::new, |e| byte_range(&e.value, start, end)),
            )),
            Command::Get { key } => Ok(self.get(&key).map_or(Outcome::Nil, |e| Outcome::Value(e.value))),
            Command::Exists { keys } => Ok(Outcome::Int(
                keys.iter().filter(|k| self.get(k).is_some()).count() as i64,
            )),
            Command::Deadline { key } => Ok(Outcome::Int(match self.get(&key) {
                None => -2,
                Some(Entry {
                    expire_at_ms: None, ..
                }) => -1,
                Some(Entry {
                    expire_at_ms: Some(at),
                    ..
                }) => at as i64,
            })),
            Command::RemoveExpired { keys } => {
                let expired: Vec<Bytes> = keys
                    .into_iter()
                    .filter(|k| self.lookup(k) == Lookup::Expired)
                    .collect();
                let n = expired.len();
                expired.into_iter().for_each(|k| {
                    self.remove(k);
                });
                Ok(Outcome::Int(n as i64))
            }
        };
        result.unwrap_or_else(Outcome::Error)
    }

    fn do_set(
        &mut self,
        key: Bytes,
        value: Bytes,
        condition: Condition,
        ttl: Ttl,
        get: bool,
    ) -> Result<Outcome, CommandError> {
        // The old entry matters to a condition, to KEEPTTL and to SET … GET
        // (which alone wants its value); a plain SET needs no lookup at all,
        // which spares it a likely cache miss in a large table.
        let needs_old = get || !matches!(condition, Condition::Always) || matches!(ttl, Ttl::Keep);
        let old = match needs_old.then(|| self.lookup_with(&key, get)) {
            Some(Lookup::Live(e)) => Some(e),
            _ => None,
        };
        let allowed = match condition {
            Condition::Always => true,
            Condition::IfAbsent => old.is_none(),
            Condition::IfPresent => old.is_some(),
        };
        if allowed {
            let current = old.as_ref().and_then(|e| e.expire_at_ms);
            let at = self.deadline(ttl, current, "set")?;
            if matches!(ttl, Ttl::At(_) | Ttl::In(_)) {
                self.set_new_deadline(key, value, at);
            } else {
                self.set(key, value, at);
            }
        }
        Ok(match (get, old) {
            (true, Some(old)) => Outcome::Value(old.value),
            (true, None) => Outcome::Nil,
            (false, _) if allowed => Outcome::Ok,
            (false, _) => Outcome::Nil,
        })
    }

    fn do_multi_set(&mut self, pairs: Vec<(Bytes, Bytes)>, only_if_none_exist: bool) -> Outcome {
        if only_if_none_exist && pairs.iter().any(|(k, _)| self.get(k).is_some()) {
            return Outcome::Int(0);
        }
        for (key, value) in pairs {
            self.set(key, value, None);
        }
        if only_if_none_exist {
            Outcome::Int(1)
        } else {
            Outcome::Ok
        }
    }

    fn do_get_expire(&mut self, key: Bytes, ttl: Ttl) -> Result<Outcome, CommandError> {
        let Some(entry) = self.get(&key) else {
            return Ok(Outcome::Nil);
        };
        let at = self.deadline(ttl, entry.expire_at_ms, "getex")?;
        let value = entry.value.clone();
        if at != entry.expire_at_ms {
            self.set_deadline(key, entry, at);
        }
        Ok(Outcome::Value(value))
    }

    fn do_increment(&mut self, key: Bytes, by: i64) -> Result<Outcome, CommandError> {
        let old = self.get(&key);
        let current = match &old {
            Some(e) => parse_i64(&e.value).ok_or(CommandError::NotInteger)?,
            None => 0,
        };
        let new = current.checked_add(by).ok_or(CommandError::Overflow)?;
        let at = old.and_then(|e| e.expire_at_ms);
        self.set(key, Bytes::from(new.to_string()), at);
        Ok(Outcome::Int(new))
    }

    fn do_increment_float(&mut self, key: Bytes, by: f64) -> Result<Outcome, CommandError> {
        let old = self.get(&key);
        let current = match &old {
            Some(e) => parse_f64(&e.value).ok_or(CommandError::NotFloat)?,
            None => 0.0,
        };
        let new = current + by;
        if !new.is_finite() {
            return Err(CommandError::NanOrInfinity);
        }
        let text = Bytes::from(format_f64(new));
        let at = old.and_then(|e| e.expire_at_ms);
        self.set(key, text.clone(), at);
        Ok(Outcome::Value(text))
    }

    fn do_append(&mut self, key: Bytes, value: Bytes) -> Result<Outcome, CommandError> {
        let old = self.get(&key);
        let old_len = old.as_ref().map_or(0, |e| e.value.len());
        if old_len + value.len() > self.max_value_bytes {
            return Err(CommandError::TooLarge);
        }
        let mut new = BytesMut::with_capacity(old_len + value.len());
        if let Some(e) = &old {
            new.extend_from_slice(&e.value);
        }
        new.extend_from_slice(&value);
        let len = new.len();
        self.set(key, new.freeze(), old.and_then(|e| e.expire_at_ms));
        Ok(Outcome::Int(len as i64))
    }

    fn do_set_range(&mut self, key: Bytes, offset: u64, value: Bytes) -> Result<Outcome, CommandError> {
        let old = self.get(&key);
        let old_len = old.as_ref().map_or(0, |e| e.value.len());
        if value.is_empty() {
            return Ok(Outcome::Int(old_len as i64));
        }
        let end = offset
            .checked_add(value.len() as u64)
            .ok_or(CommandError::TooLarge)?;
        if end > self.max_value_bytes as u64 {
            return Err(CommandError::TooLarge);
        }
        let end = end as usize;
        let mut new = BytesMut::zeroed(old_len.max(end));
        if let Some(e) = &old {
            new[..old_len].copy_from_slice(&e.value);
        }
        new[offset as usize..end].copy_from_slice(&value);
        let len = new.len();
        self.set(key, new.freeze(), old.and_then(|e| e.expire_at_ms));
        Ok(Outcome::Int(len as i64))
    }

    fn do_expire(
        &mut self,
        key: Bytes,
        ttl: Ttl,
        condition: ExpireCondition,
    ) -> Result<Outcome, CommandError> {
        let at = self.deadline(ttl, None, "expire")?;
        let Some(entry) = self.get(&key) else {
            return Ok(Outcome::Int(0));
        };
        let allowed = match (condition, entry.expire_at_ms, at) {
            (ExpireCondition::Always, _, _) => true,
            (ExpireCondition::HasNone, current, _) => current.is_none(),
            (ExpireCondition::HasOne, current, _) => current.is_some(),
            (ExpireCondition::Later, Some(current), Some(new)) => new > current,
            (ExpireCondition::Later, _, _) => false,
            (ExpireCondition::Earlier, Some(current), Some(new)) => new < current,
            (ExpireCondition::Earlier, None, _) => true,
            (ExpireCondition::Earlier, Some(_), None) => false,
        };
        if !allowed {
            return Ok(Outcome::Int(0));
        }
        self.set_deadline(key, entry, at);
        Ok(Outcome::Int(1))
    }

    fn do_persist(&mut self, key: Bytes) -> Outcome {
        match self.get(&key) {
            Some(entry) if entry.expire_at_ms.is_some() => {
                self.set_deadline(key, entry, None);
                Outcome::Int(1)
            }
            _ => Outcome::Int(0),
        }
    }

    fn do_rename(&mut self, from: Bytes, to: Bytes, only_if_absent: bool) -> Result<Outcome, CommandError> {
        let entry = self.get(&from).ok_or(CommandError::NoSuchKey)?;
        if only_if_absent && self.get(&to).is_some() {
            return Ok(Outcome::Int(0));
        }
        if from != to {
            self.remove(from);
            self.set(to, entry.value, entry.expire_at_ms);
        }
        Ok(if only_if_absent {
            Outcome::Int(1)
        } else {
            Outcome::Ok
        })
    }

    fn do_atomic(&mut self, commands: Vec<Command>, watched: Vec<(Bytes, WatchToken)>) -> Outcome {
        if watched.iter().any(|(key, token)| self.version(key) != *token) {
            return Outcome::Aborted;
        }
        let outcomes = commands
            .into_iter()
            .map(|c| match c {
                Command::Atomic { .. } => Outcome::Error(CommandError::NestedAtomic),
                c => self.dispatch(c),
            })
            .collect();
        Outcome::Many(outcomes)
    }

    /// The token `WATCH` keeps for `key`.
    pub fn watch(&self, key: &[u8]) -> WatchToken {
        self.version(key)
    }
}

/// The bytes `start..=end` of `value` with Redis's `GETRANGE` rules:
/// negative indexes count from the end, the range is clamped to the value,
/// and an empty range is an empty string.
pub fn byte_range(value: &Bytes, start: i64, end: i64) -> Bytes {
    let len = value.len() as i64;
    let from_end = |i: i64| if i < 0 { (len + i).max(0) } else { i };
    let (start, end) = (from_end(start), from_end(end).min(len - 1));
    if len == 0 || start > end || start >= len {
        return Bytes::new();
    }
    value.slice(start as usize..=end as usize)
}

/// Redis's strict integer syntax: optional `-`, digits, no leading zeros, no
/// spaces or `+`, within `i64`.
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    let ok = match digits {
        [] => false,
        [b'0'] => bytes.len() == 1,
        [b'0', ..] => false,
        d => d.len() <= 19 && d.iter().all(u8::is_ascii_digit),
    };
    if !ok {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// A float as `INCRBYFLOAT` accepts it: no surrounding spaces, finite.
pub fn parse_f64(bytes: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.is_empty() || text.trim() != text {
        return None;
    }
    let v: f64 = text.parse().ok()?;
    v.is_finite().then_some(v)
}

/// Formats a float as Redis does for `INCRBYFLOAT`: plain notation, no
/// trailing zeros, no exponent.
pub fn format_f64(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    format!("{v}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_strictly() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b" 1",
            b"1 ",
            b"01",
            b"-0",
            b"1.0",
            b"9223372036854775808",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn floats_format_like_redis() {
        assert_eq!(format_f64(10.5 + 0.1), "10.6");
        assert_eq!(format_f64(3.0e3), "3000");
        assert_eq!(format_f64(-0.0), "0");
        assert_eq!(parse_f64(b"5.0e3"), Some(5000.0));
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b"inf"), None);
        assert_eq!(parse_f64(b"nan"), None);
    }
}
