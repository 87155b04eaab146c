//! String commands: GET, SET and friends.

use bytes::Bytes;

use super::args::{CmdResult, float, int, wrong_arity};
use super::expiry::{SetOptions, Unit, positive_deadline};
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
        "SET" => write(parse_set(args, engine.now_ms())?),
        "SETNX" => write(set(
            key(),
            args[2].clone(),
            Condition::IfAbsent,
            Ttl::Clear,
            false,
        ))
        .map(|p| with_finish(p, |o| Reply::Integer((o == crate::engine::Outcome::Ok) as i64))),
        "SETEX" | "PSETEX" => {
            let unit = if name == "SETEX" { Unit::Ex } else { Unit::Px };
            let ttl = positive_deadline(&args[2], unit, name, engine.now_ms())?;
            write(set(key(), args[3].clone(), Condition::Always, ttl, false))
        }
        "GETSET" => write(set(key(), args[2].clone(), Condition::Always, Ttl::Clear, true)),
        "GETDEL" => write(Command::GetDelete { key: key() }),
        "GETEX" => plan_getex(ctx, args),
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
            let by = increment_float(&args[2])?;
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

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]`.
fn parse_set(args: &[Bytes], now_ms: u64) -> CmdResult<Command> {
    let opts = SetOptions::parse(&args[3..], true)?;
    Ok(set(
        args[1].clone(),
        args[2].clone(),
        opts.condition,
        opts.ttl("set", now_ms)?,
        opts.get,
    ))
}

/// `GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]`. As in Redis, the time is
/// only checked when the key exists: `GETEX missing EX abc` answers null.
fn plan_getex(ctx: &Context, args: &[Bytes]) -> CmdResult<Plan> {
    let opts = SetOptions::parse(&args[2..], false)?;
    let ttl = match opts.ttl("getex", ctx.engine.now_ms()) {
        Ok(_) if opts.expire.is_none() && !opts.persist => Ttl::Keep,
        Ok(ttl) => ttl,
        Err(_) if ctx.engine.get(&args[1]).is_none() => return Ok(Plan::Done(Reply::Null)),
        Err(err) => return Err(err),
    };
    write(Command::GetExpire {
        key: args[1].clone(),
        ttl,
    })
}

/// `INCRBYFLOAT`'s increment. Redis reads it with `strtold`, so `inf` is a
/// number whose sum is refused, and a hexadecimal float (`0x1p4`) is read.
fn increment_float(arg: &[u8]) -> CmdResult<f64> {
    let text = std::str::from_utf8(arg).unwrap_or("");
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if ["inf", "infinity"]
        .iter()
        .any(|w| unsigned.eq_ignore_ascii_case(w))
    {
        return Err(Reply::error("ERR increment would produce NaN or Infinity"));
    }
    if let Some(v) = hex_float(text) {
        return Ok(v);
    }
    float(arg)
}

/// `[-+]0x<hex>[.<hex>][p[-+]<decimal>]`, as C's `strtod` reads it.
fn hex_float(text: &str) -> Option<f64> {
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let rest = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X"))?;
    let (mantissa, exponent) = match rest.find(['p', 'P']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i32>().ok()?),
        None => (rest, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut value = 0f64;
    for c in whole.chars() {
        value = value * 16.0 + c.to_digit(16)? as f64;
    }
    let mut scale = 1.0 / 16.0;
    for c in fraction.chars() {
        value += c.to_digit(16)? as f64 * scale;
        scale /= 16.0;
    }
    let value = value * 2f64.powi(exponent);
    value.is_finite().then_some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increments_read_as_strtold_reads_them() {
        assert_eq!(increment_float(b"0x10"), Ok(16.0));
        assert_eq!(increment_float(b"-0x1.8p1"), Ok(-3.0));
        assert_eq!(increment_float(b"1.5"), Ok(1.5));
        let nan = Err(Reply::error("ERR increment would produce NaN or Infinity"));
        assert_eq!(increment_float(b"inf"), nan);
        assert_eq!(increment_float(b"-Infinity"), nan);
        assert!(increment_float(b"0x").is_err() && increment_float(b"0xg").is_err());
        assert!(increment_float(b"nan").is_err() && increment_float(b" 1").is_err());
    }
}
