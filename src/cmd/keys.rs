//! Key commands: DEL, EXISTS, EXPIRE, TTL, SCAN, KEYS, RENAME and friends.

use bytes::Bytes;

use super::args::{CmdResult, Options, int, is, syntax_error};
use super::expiry::{Unit, any_deadline};
use super::strings::check_arity;
use super::{Context, Plan, outcome_reply};
use crate::engine::{Command, ExpireCondition, KeyExpiry};
use crate::protocol::Reply;

pub fn arity(name: &str) -> Option<i32> {
    Some(match name {
        "TTL" | "PTTL" | "EXPIRETIME" | "PEXPIRETIME" | "PERSIST" | "TYPE" | "KEYS" => 2,
        "RENAME" | "RENAMENX" => 3,
        "DEL" | "UNLINK" | "EXISTS" | "SCAN" => -2,
        "EXPIRE" | "PEXPIRE" | "EXPIREAT" | "PEXPIREAT" => -3,
        "RANDOMKEY" | "DBSIZE" => 1,
        "FLUSHALL" | "FLUSHDB" => -1,
        _ => return None,
    })
}

fn write(command: Command) -> CmdResult<Plan> {
    Ok(Plan::Write(command, Box::new(outcome_reply)))
}

fn done(reply: Reply) -> CmdResult<Plan> {
    Ok(Plan::Done(reply))
}

pub fn plan(ctx: &Context, name: &str, args: &[Bytes]) -> Option<CmdResult<Plan>> {
    let arity = arity(name)?;
    Some(check_arity(name, args, arity).and_then(|()| plan_checked(ctx, name, args)))
}

fn plan_checked(ctx: &Context, name: &str, args: &[Bytes]) -> CmdResult<Plan> {
    let engine = &ctx.engine;
    match name {
        "DEL" | "UNLINK" => write(Command::Delete {
            keys: args[1..].to_vec(),
        }),
        "EXISTS" => done(Reply::Integer(engine.exists(&args[1..]) as i64)),
        "TYPE" => done(Reply::Simple(if engine.get(&args[1]).is_some() {
            "string"
        } else {
            "none"
        })),
        "EXPIRE" | "PEXPIRE" | "EXPIREAT" | "PEXPIREAT" => plan_expire(ctx, name, args),
        "PERSIST" => write(Command::Persist { key: args[1].clone() }),
        "TTL" | "PTTL" | "EXPIRETIME" | "PEXPIRETIME" => {
            done(ttl_reply(name, engine.expiry(&args[1]), engine.now_ms()))
        }
        "RENAME" | "RENAMENX" => write(Command::Rename {
            from: args[1].clone(),
            to: args[2].clone(),
            only_if_absent: name == "RENAMENX",
        }),
        "KEYS" => done(Reply::Array(
            engine.keys(&args[1]).into_iter().map(Reply::Bulk).collect(),
        )),
        "SCAN" => scan(ctx, args),
        "RANDOMKEY" => done(engine.random_key(random_seed()).map_or(Reply::Null, Reply::Bulk)),
        "DBSIZE" => done(Reply::Integer(engine.len() as i64)),
        "FLUSHALL" | "FLUSHDB" => {
            match args.get(1) {
                None => {}
                Some(mode) if args.len() == 2 && (is(mode, "ASYNC") || is(mode, "SYNC")) => {}
                Some(_) => return Err(syntax_error()),
            }
            write(Command::FlushAll)
        }
        _ => unreachable!("arity() lists only these"),
    }
}

/// `EXPIRE key seconds [NX|XX|GT|LT]` and its ms / absolute twins. As in
/// Redis, the options are checked before the time.
fn plan_expire(ctx: &Context, name: &str, args: &[Bytes]) -> CmdResult<Plan> {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in &args[3..] {
        match () {
            _ if is(opt, "NX") => nx = true,
            _ if is(opt, "XX") => xx = true,
            _ if is(opt, "GT") => gt = true,
            _ if is(opt, "LT") => lt = true,
            _ => {
                return Err(Reply::error(format!(
                    "ERR Unsupported option {}",
                    String::from_utf8_lossy(opt)
                )));
            }
        }
    }
    if nx && (xx || gt || lt) {
        return Err(Reply::error(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(Reply::error(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    let unit = match name {
        "EXPIRE" => Unit::Ex,
        "PEXPIRE" => Unit::Px,
        "EXPIREAT" => Unit::ExAt,
        _ => Unit::PxAt,
    };
    let ttl = any_deadline(&args[2], unit, name, ctx.engine.now_ms())?;
    // XX LT needs both a deadline and a later one. The engine has one
    // condition per command, so the "has a deadline" half is read here: a
    // deadline set by another client between this read and the write is
    // not seen (a difference listed in docs/protocol.md).
    if xx && lt && !matches!(ctx.engine.expiry(&args[1]), KeyExpiry::At(_)) {
        return done(Reply::Integer(0));
    }
    let condition = match () {
        _ if nx => ExpireCondition::HasNone,
        _ if gt => ExpireCondition::Later,
        _ if lt => ExpireCondition::Earlier,
        _ if xx => ExpireCondition::HasOne,
        _ => ExpireCondition::Always,
    };
    write(Command::Expire {
        key: args[1].clone(),
        ttl,
        condition,
    })
}

pub fn ttl_reply(name: &str, expiry: KeyExpiry, now_ms: u64) -> Reply {
    let at = match expiry {
        KeyExpiry::Missing => return Reply::Integer(-2),
        KeyExpiry::Persistent => return Reply::Integer(-1),
        KeyExpiry::At(at) => at,
    };
    let left = at.saturating_sub(now_ms) as i64;
    Reply::Integer(match name {
        "TTL" => (left + 500) / 1000,
        "PTTL" => left,
        "EXPIRETIME" => (at / 1000) as i64,
        _ => at as i64,
    })
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`.
fn scan(ctx: &Context, args: &[Bytes]) -> CmdResult<Plan> {
    let cursor = parse_cursor(&args[1]).ok_or_else(|| Reply::error("ERR invalid cursor"))?;
    let (mut pattern, mut count, mut only_strings) = (None, 10usize, true);
    let mut opts = Options::new(&args[2..]);
    while let Some(opt) = opts.next_arg() {
        if is(opt, "MATCH") {
            pattern = Some(opts.value()?.clone());
        } else if is(opt, "COUNT") {
            let n = int(opts.value()?)?;
            if n < 1 {
                return Err(syntax_error());
            }
            count = n as usize;
        } else if is(opt, "TYPE") {
            only_strings = is(opts.value()?, "string");
        } else {
            return Err(syntax_error());
        }
    }
    let (next, keys) = ctx.engine.scan(cursor, count, pattern.as_deref());
    let keys = if only_strings { keys } else { Vec::new() };
    done(Reply::Array(vec![
        Reply::bulk(next.to_string()),
        Reply::Array(keys.into_iter().map(Reply::Bulk).collect()),
    ]))
}

/// A cursor as Redis reads it, with C's `strtoul`: an optional sign, then
/// digits that fit 64 bits; `-1` wraps to the largest cursor (which ends the
/// scan).
fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let (negative, digits) = match arg.first() {
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if negative { n.wrapping_neg() } else { n })
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}
