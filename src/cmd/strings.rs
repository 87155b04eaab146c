//! String commands: GET, SET and friends.

use bytes::Bytes;

use super::args::{CmdResult, Options, float, int, is, syntax_error, wrong_arity};
use super::{Context, Plan, outcome_reply};
use crate::engine::{Command, Condition, Ttl};
use crate::protocol::Reply;

/// Redis's arity: exact when positive, a minimum when negative; the name
/// counts.
pub fn arity(name: &str) -> Option<i32> {
    Some(match name {
        "GET" | "GETDEL" | "INCR" | "DECR" | "STRLEN" => 2,
        "SETNX" | "GETSET" | "INCRBY" | "DECRBY" | "INCRBYFLOAT" | "APPEND" => 3,
        "SETEX" | "PSETEX" | "GETRANGE" | "SUBSTR" | "SETRANGE" => 4,
        "SET" | "MSET" | "MSETNX" => -3,
        "GETEX" | "MGET" => -2,
        _ => return None,
    })
}

pub fn check_arity(name: &str, args: &[Bytes], arity: i32) -> CmdResult<()> {
    let n = args.len() as i32;
    if (arity > 0 && n != arity) || (arity < 0 && n < -arity) {
        return Err(wrong_arity(name));
    }
    Ok(())
}

fn write(command: Command) -> CmdResult<Plan> {
    Ok(Plan::Write(command, Box::new(outcome_reply)))
}

pub fn plan(ctx: &Context, name: &str, args: &[Bytes]) -> Option<CmdResult<Plan>> {
    let arity = arity(name)?;
    Some(check_arity(name, args, arity).and_then(|()| plan_checked(ctx, name, args)))
}

fn plan_checked(ctx: &Context, name: &str, args: &[Bytes]) -> CmdResult<Plan> {
    let key = || args[1].clone();
    let engine = &ctx.engine;
    match name {
        "GET" => Ok(Plan::Done(engine.get(&args[1]).map_or(Reply::Null, Reply::Bulk))),
        "STRLEN" => Ok(Plan::Done(Reply::Integer(engine.strlen(&args[1]) as i64))),
        "GETRANGE" | "SUBSTR" => {
            let (start, end) = (int(&args[2])?, int(&args[3])?);
            Ok(Plan::Done(Reply::Bulk(engine.get_range(&args[1], start, end))))
        }
        "MGET" => {
            let values = engine.get_many(&args[1..]);
            Ok(Plan::Done(Reply::Array(
                values
                    .into_iter()
                    .map(|v| v.map_or(Reply::Null, Reply::Bulk))
                    .collect(),
            )))
        }
        "SET" => write(parse_set(args)?),
        "SETNX" => write(set(
            key(),
            args[2].clone(),
            Condition::IfAbsent,
            Ttl::Clear,
            false,
        ))
        .map(|p| with_finish(p, |o| Reply::Integer((o == crate::engine::Outcome::Ok) as i64))),
        "SETEX" | "PSETEX" => {
            let ttl = positive_ttl(&args[2], name == "SETEX", name)?;
            write(set(key(), args[3].clone(), Condition::Always, ttl, false))
        }
        "GETSET" => write(set(key(), args[2].clone(), Condition::Always, Ttl::Clear, true)),
        "GETDEL" => write(Command::GetDelete { key: key() }),
        "GETEX" => write(Command::GetExpire {
            key: key(),
            ttl: parse_getex(&args[2..])?,
        }),
        "MSET" | "MSETNX" => {
            if args.len().is_multiple_of(2) {
                return Err(wrong_arity(name));
            }
            let pairs = args[1..]
                .chunks(2)
                .map(|p| (p[0].clone(), p[1].clone()))
                .collect();
            write(Command::MultiSet {
                pairs,
                only_if_none_exist: name == "MSETNX",
            })
        }
        "INCR" | "DECR" | "INCRBY" | "DECRBY" => {
            let by = match name {
                "INCR" => 1,
                "DECR" => -1,
                "INCRBY" => int(&args[2])?,
                _ => int(&args[2])?
                    .checked_neg()
                    .ok_or_else(|| Reply::error("ERR decrement would overflow"))?,
            };
            write(Command::IncrementBy { key: key(), by })
        }
        "INCRBYFLOAT" => {
            let by = float(&args[2])?;
            write(Command::IncrementByFloat { key: key(), by })
        }
        "APPEND" => write(Command::Append {
            key: key(),
            value: args[2].clone(),
        }),
        "SETRANGE" => {
            let offset = int(&args[2])?;
            if offset < 0 {
                return Err(Reply::error("ERR offset is out of range"));
            }
            write(Command::SetRange {
                key: key(),
                offset: offset as u64,
                value: args[3].clone(),
            })
        }
        _ => unreachable!("arity() lists only these"),
    }
}

fn with_finish(plan: Plan, f: fn(crate::engine::Outcome) -> Reply) -> Plan {
    match plan {
        Plan::Write(c, _) => Plan::Write(c, Box::new(move |o, _| f(o))),
        done => done,
    }
}

fn set(key: Bytes, value: Bytes, condition: Condition, ttl: Ttl, get: bool) -> Command {
    Command::Set {
        key,
        value,
        condition,
        ttl,
        get,
    }
}

/// An `EX`/`PX`/`EXAT`/`PXAT` value: positive, and in range once in ms.
fn expire_ms(arg: &[u8], seconds: bool, command: &str) -> CmdResult<i64> {
    let invalid = || {
        Reply::error(format!(
            "ERR invalid expire time in '{}' command",
            command.to_ascii_lowercase()
        ))
    };
    let n = int(arg)?;
    if n <= 0 {
        return Err(invalid());
    }
    if seconds {
        n.checked_mul(1000).ok_or_else(invalid)
    } else {
        Ok(n)
    }
}

/// `SETEX`/`PSETEX`'s relative deadline.
fn positive_ttl(arg: &[u8], seconds: bool, command: &str) -> CmdResult<Ttl> {
    expire_ms(arg, seconds, command).map(Ttl::In)
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]`.
fn parse_set(args: &[Bytes]) -> CmdResult<Command> {
    let mut condition = Condition::Always;
    let mut ttl: Option<Ttl> = None;
    let mut get = false;
    let mut opts = Options::new(&args[3..]);
    while let Some(opt) = opts.next_arg() {
        let expiry = |opts: &mut Options, seconds, absolute| -> CmdResult<Ttl> {
            let ms = expire_ms(opts.value()?, seconds, "set")?;
            Ok(if absolute { Ttl::At(ms) } else { Ttl::In(ms) })
        };
        match () {
            _ if is(opt, "NX") && condition == Condition::Always => condition = Condition::IfAbsent,
            _ if is(opt, "XX") && condition == Condition::Always => condition = Condition::IfPresent,
            _ if is(opt, "GET") => get = true,
            _ if is(opt, "KEEPTTL") && ttl.is_none() => ttl = Some(Ttl::Keep),
            _ if is(opt, "EX") && ttl.is_none() => ttl = Some(expiry(&mut opts, true, false)?),
            _ if is(opt, "PX") && ttl.is_none() => ttl = Some(expiry(&mut opts, false, false)?),
            _ if is(opt, "EXAT") && ttl.is_none() => ttl = Some(expiry(&mut opts, true, true)?),
            _ if is(opt, "PXAT") && ttl.is_none() => ttl = Some(expiry(&mut opts, false, true)?),
            _ => return Err(syntax_error()),
        }
    }
    Ok(set(
        args[1].clone(),
        args[2].clone(),
        condition,
        ttl.unwrap_or(Ttl::Clear),
        get,
    ))
}

/// `GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]`.
fn parse_getex(opts: &[Bytes]) -> CmdResult<Ttl> {
    let mut o = Options::new(opts);
    let Some(opt) = o.next_arg() else {
        return Ok(Ttl::Keep);
    };
    let ttl = match () {
        _ if is(opt, "PERSIST") => Ttl::Clear,
        _ if is(opt, "EX") => Ttl::In(expire_ms(o.value()?, true, "getex")?),
        _ if is(opt, "PX") => Ttl::In(expire_ms(o.value()?, false, "getex")?),
        _ if is(opt, "EXAT") => Ttl::At(expire_ms(o.value()?, true, "getex")?),
        _ if is(opt, "PXAT") => Ttl::At(expire_ms(o.value()?, false, "getex")?),
        _ => return Err(syntax_error()),
    };
    if o.next_arg().is_some() {
        return Err(syntax_error());
    }
    Ok(ttl)
}
