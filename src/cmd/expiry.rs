//! Deadlines in arguments, with Redis's rules and error texts: the
//! `NX|XX|GET|EX|PX|EXAT|PXAT|KEEPTTL|PERSIST` options of `SET` and `GETEX`,
//! and the times of `SETEX`, `EXPIRE` and friends.

use bytes::Bytes;

use super::args::{CmdResult, int, is, syntax_error};
use crate::engine::{Condition, Ttl};
use crate::protocol::Reply;

pub fn invalid_expire(command: &str) -> Reply {
    Reply::error(format!(
        "ERR invalid expire time in '{}' command",
        command.to_ascii_lowercase()
    ))
}

/// Which option gave the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// `EX`: seconds from now.
    Ex,
    /// `PX`: milliseconds from now.
    Px,
    /// `EXAT`: Unix seconds.
    ExAt,
    /// `PXAT`: Unix milliseconds.
    PxAt,
}

/// `SET`'s and `GETEX`'s options, parsed as Redis parses them: a word may
/// repeat (`NX NX`, `EX 1 EX 2`, the last value wins), but two words that
/// conflict are a syntax error. The deadline's value is checked later, by
/// [`SetOptions::ttl`], so that a syntax error anywhere wins over a bad number.
#[derive(Debug, Default)]
pub struct SetOptions<'a> {
    pub condition: Condition,
    pub get: bool,
    pub keep_ttl: bool,
    pub persist: bool,
    pub expire: Option<(Unit, &'a Bytes)>,
}

impl<'a> SetOptions<'a> {
    /// `opts` follows the value (`SET`) or the key (`GETEX`, `for_set` false:
    /// no NX, XX, GET or KEEPTTL, but PERSIST).
    pub fn parse(opts: &'a [Bytes], for_set: bool) -> CmdResult<SetOptions<'a>> {
        let mut o = SetOptions::default();
        let mut i = 0;
        while i < opts.len() {
            let opt = &opts[i];
            let next = opts.get(i + 1);
            let unit = [
                ("EX", Unit::Ex),
                ("PX", Unit::Px),
                ("EXAT", Unit::ExAt),
                ("PXAT", Unit::PxAt),
            ]
            .into_iter()
            .find(|(word, _)| is(opt, word))
            .map(|(_, unit)| unit);
            let other_expiry = |u: Unit| o.keep_ttl || o.persist || o.expire.is_some_and(|(e, _)| e != u);
            match () {
                _ if for_set && is(opt, "NX") && o.condition != Condition::IfPresent => {
                    o.condition = Condition::IfAbsent
                }
                _ if for_set && is(opt, "XX") && o.condition != Condition::IfAbsent => {
                    o.condition = Condition::IfPresent
                }
                _ if for_set && is(opt, "GET") => o.get = true,
                _ if for_set && is(opt, "KEEPTTL") && !o.persist && o.expire.is_none() => o.keep_ttl = true,
                _ if !for_set && is(opt, "PERSIST") && !o.keep_ttl && o.expire.is_none() => o.persist = true,
                _ if unit.is_some_and(|u| !other_expiry(u)) && next.is_some() => {
                    o.expire = unit.zip(next);
                    i += 1;
                }
                _ => return Err(syntax_error()),
            }
            i += 1;
        }
        Ok(o)
    }

    /// The deadline the options ask for; `command` names the command in the
    /// error for a time that is not positive or overflows.
    pub fn ttl(&self, command: &str, now_ms: u64) -> CmdResult<Ttl> {
        match self.expire {
            Some((unit, value)) => positive_deadline(value, unit, command, now_ms),
            None if self.keep_ttl => Ok(Ttl::Keep),
            None if self.persist => Ok(Ttl::Clear),
            None => Ok(Ttl::Clear),
        }
    }
}

/// A deadline that must be positive (`SET … EX`, `SETEX`, `GETEX … PX`):
/// Redis refuses 0, negatives, and anything that overflows a 64-bit count of
/// milliseconds once converted and added to now.
pub fn positive_deadline(value: &[u8], unit: Unit, command: &str, now_ms: u64) -> CmdResult<Ttl> {
    let n = int(value)?;
    let seconds = matches!(unit, Unit::Ex | Unit::ExAt);
    if n <= 0 || (seconds && n > i64::MAX / 1000) {
        return Err(invalid_expire(command));
    }
    let ms = if seconds { n * 1000 } else { n };
    match unit {
        Unit::Ex | Unit::Px if ms > i64::MAX - now_ms as i64 => Err(invalid_expire(command)),
        Unit::Ex | Unit::Px => Ok(Ttl::In(ms)),
        Unit::ExAt | Unit::PxAt => Ok(Ttl::At(ms)),
    }
}

/// `EXPIRE`'s time, which may be negative (a past deadline deletes the key):
/// only an overflow of the conversion or of the addition to now is refused.
pub fn any_deadline(value: &[u8], unit: Unit, command: &str, now_ms: u64) -> CmdResult<Ttl> {
    let n = int(value)?;
    let seconds = matches!(unit, Unit::Ex | Unit::ExAt);
    if seconds && !(i64::MIN / 1000..=i64::MAX / 1000).contains(&n) {
        return Err(invalid_expire(command));
    }
    let ms = if seconds { n * 1000 } else { n };
    let base = if matches!(unit, Unit::Ex | Unit::Px) {
        now_ms as i64
    } else {
        0
    };
    if ms > i64::MAX - base {
        return Err(invalid_expire(command));
    }
    Ok(match unit {
        Unit::Ex | Unit::Px => Ttl::In(ms),
        Unit::ExAt | Unit::PxAt => Ttl::At(ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<Bytes> {
        s.split_whitespace()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    #[test]
    fn set_options_as_redis_parses_them() {
        let ok = |s: &str| SetOptions::parse(&words(s), true).is_ok();
        assert!(ok("NX NX") && ok("GET GET") && ok("EX 1 EX 2") && ok("KEEPTTL KEEPTTL"));
        assert!(ok("NX GET EX 10") && ok("EX abc"));
        assert!(!ok("NX XX") && !ok("EX 1 PX 2") && !ok("EX 1 KEEPTTL") && !ok("EX"));
        assert!(!ok("PERSIST") && !ok("bogus"));
        let twice = words("EX 1 EX 2");
        let o = SetOptions::parse(&twice, true).unwrap();
        assert_eq!(o.ttl("set", 0), Ok(Ttl::In(2000)));
        let getex = |s: &str| SetOptions::parse(&words(s), false).is_ok();
        assert!(getex("PERSIST PERSIST") && getex("EX 1 EX 2"));
        assert!(!getex("NX") && !getex("GET") && !getex("KEEPTTL") && !getex("PERSIST EX 1"));
    }

    #[test]
    fn deadlines_refuse_what_redis_refuses() {
        let now = 1_700_000_000_000;
        let pos = |v: &str, u| positive_deadline(v.as_bytes(), u, "set", now);
        assert!(pos("0", Unit::Ex).is_err() && pos("-1", Unit::Px).is_err());
        assert!(
            pos("9223372036854775", Unit::Ex).is_err(),
            "overflows once added to now"
        );
        assert_eq!(
            pos("9223372036854775", Unit::ExAt),
            Ok(Ttl::At(9223372036854775000))
        );
        assert!(pos("9223372036854776", Unit::ExAt).is_err());
        let any = |v: &str, u| any_deadline(v.as_bytes(), u, "expire", now);
        assert_eq!(any("-5", Unit::Ex), Ok(Ttl::In(-5000)));
        assert!(any("9223372036854775807", Unit::Px).is_err());
        assert!(any("-9223372036854775808", Unit::Ex).is_err());
        assert_eq!(any("9223372036854775807", Unit::PxAt), Ok(Ttl::At(i64::MAX)));
    }
}
