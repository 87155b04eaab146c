//! Transactions: MULTI queues requests, EXEC runs them as one atomic engine
//! command (one log record, one fsync), WATCH makes EXEC conditional.
//!
//! Data commands run inside the batch, in order, each seeing the ones before
//! it. Commands that do not touch data (PING, ECHO, INFO…) and whole-keyspace
//! reads (KEYS, SCAN, DBSIZE, RANDOMKEY) are answered after the batch
//! commits; that is a difference from Redis, listed in docs/protocol.md.

use bytes::Bytes;

use super::{Context, Finish, Plan, Session, engine_error, keys, outcome_reply, run, strings};
use crate::engine::{Command, Outcome};
use crate::protocol::Reply;

pub async fn execute(ctx: &Context, session: &mut Session, name: &str, args: &[Bytes]) -> Reply {
    if let Some(Reply::Error(error)) = super::server::precheck(name, args) {
        // As in Redis: a bad EXEC ends the transaction and says why; any
        // other refused command dooms it.
        if name == "EXEC" {
            reset(session);
            let why = error.strip_prefix("ERR ").unwrap_or(&error);
            return Reply::error(format!("EXECABORT Transaction discarded because of: {why}"));
        }
        session.multi_failed |= session.multi.is_some();
        return Reply::Error(error);
    }
    match name {
        "MULTI" if session.multi.is_some() => Reply::error("ERR MULTI calls can not be nested"),
        "MULTI" => {
            session.multi = Some(Vec::new());
            session.multi_failed = false;
            Reply::ok()
        }
        "DISCARD" if session.multi.is_none() => Reply::error("ERR DISCARD without MULTI"),
        "DISCARD" => {
            reset(session);
            Reply::ok()
        }
        "WATCH" if session.multi.is_some() => Reply::error("ERR WATCH inside MULTI is not allowed"),
        "WATCH" => {
            for key in &args[1..] {
                let token = ctx.engine.watch(key);
                session.watched.push((key.clone(), token));
            }
            Reply::ok()
        }
        "UNWATCH" => {
            session.watched.clear();
            Reply::ok()
        }
        "EXEC" if session.multi.is_none() => Reply::error("ERR EXEC without MULTI"),
        "EXEC" if session.multi_failed => {
            reset(session);
            Reply::error("EXECABORT Transaction discarded because of previous errors.")
        }
        "EXEC" => exec(ctx, session).await,
        _ => unreachable!("only transaction commands come here"),
    }
}

fn reset(session: &mut Session) {
    session.multi = None;
    session.multi_failed = false;
    session.watched.clear();
}

/// Queues a request between MULTI and EXEC. An unknown command or a wrong
/// number of arguments is refused now and dooms the transaction, as in Redis.
pub fn queue(session: &mut Session, name: &str, args: Vec<Bytes>) -> Reply {
    if let Some(error) = super::server::precheck(name, &args) {
        session.multi_failed = true;
        return error;
    }
    // SAVE and SHUTDOWN, as Redis's table flags them.
    if super::catalog::find(name.as_bytes()).is_some_and(|s| s.flags.split(' ').any(|f| f == "no_multi")) {
        session.multi_failed = true;
        return Reply::error("ERR Command not allowed inside a transaction");
    }
    session.multi.get_or_insert_with(Vec::new).push(args);
    Reply::Simple("QUEUED")
}

/// Where each queued request's reply comes from.
enum Slot {
    Engine(Finish),
    Fixed(Reply),
    After(String, Vec<Bytes>),
}

async fn exec(ctx: &Context, session: &mut Session) -> Reply {
    let queued = session.multi.take().unwrap_or_default();
    let watched = std::mem::take(&mut session.watched);
    session.multi_failed = false;
    let mut commands = Vec::new();
    let mut slots = Vec::new();
    for args in queued {
        let name = String::from_utf8_lossy(&args[0].to_ascii_uppercase()).into_owned();
        match plan_atomic(ctx, &name, &args) {
            Some(Ok((command, finish))) => {
                commands.push(command);
                slots.push(Slot::Engine(finish));
            }
            Some(Err(reply)) => slots.push(Slot::Fixed(reply)),
            None => slots.push(Slot::After(name, args)),
        }
    }
    let outcomes = match ctx.engine.execute(Command::Atomic { commands, watched }).await {
        Ok(Outcome::Many(outcomes)) => outcomes,
        Ok(Outcome::Aborted) => return Reply::NullArray,
        Ok(other) => return outcome_reply(other, session.protocol),
        Err(err) => return engine_error(&err),
    };
    let mut outcomes = outcomes.into_iter();
    let mut replies = Vec::with_capacity(slots.len());
    for slot in slots {
        replies.push(match slot {
            Slot::Engine(finish) => finish(outcomes.next().unwrap_or(Outcome::Nil), session.protocol),
            Slot::Fixed(reply) => reply,
            Slot::After(name, args) => Box::pin(run(ctx, session, &name, &args)).await,
        });
    }
    Reply::Array(replies)
}

/// The engine command for a queued request, if it touches data: writes as
/// they are, and point reads as engine reads so they see earlier writes of
/// the same transaction.
fn plan_atomic(ctx: &Context, name: &str, args: &[Bytes]) -> Option<Result<(Command, Finish), Reply>> {
    let plan = strings::plan(ctx, name, args).or_else(|| keys::plan(ctx, name, args))?;
    match plan {
        Err(reply) => Some(Err(reply)),
        Ok(Plan::Write(command, finish)) => Some(Ok((command, finish))),
        Ok(Plan::Done(_)) => atomic_read(ctx, name, args).map(Ok),
    }
}

fn atomic_read(ctx: &Context, name: &str, args: &[Bytes]) -> Option<(Command, Finish)> {
    let key = args.get(1).cloned().unwrap_or_default();
    let now = ctx.engine.now_ms();
    Some(match name {
        "GET" => (Command::Get { key }, Box::new(outcome_reply)),
        "EXISTS" => (
            Command::Exists {
                keys: args[1..].to_vec(),
            },
            Box::new(outcome_reply),
        ),
        "MGET" => (
            Command::MultiGet {
                keys: args[1..].to_vec(),
            },
            Box::new(outcome_reply),
        ),
        "GETRANGE" | "SUBSTR" => {
            let (Ok(start), Ok(end)) = (super::args::int(&args[2]), super::args::int(&args[3])) else {
                return None; // answered after the batch, with its argument error
            };
            (Command::GetRange { key, start, end }, Box::new(outcome_reply))
        }
        "TYPE" => (
            Command::Get { key },
            Box::new(|o, _| {
                Reply::Simple(if matches!(o, Outcome::Value(_)) {
                    "string"
                } else {
                    "none"
                })
            }),
        ),
        "STRLEN" => (
            Command::Get { key },
            Box::new(|o, _| {
                Reply::Integer(if let Outcome::Value(v) = o {
                    v.len() as i64
                } else {
                    0
                })
            }),
        ),
        "TTL" | "PTTL" | "EXPIRETIME" | "PEXPIRETIME" => {
            let name = name.to_string();
            (
                Command::Deadline { key },
                Box::new(move |o, _| match o {
                    Outcome::Int(at) if at >= 0 => {
                        keys::ttl_reply(&name, crate::engine::KeyExpiry::At(at as u64), now)
                    }
                    Outcome::Int(code) => Reply::Integer(code),
                    _ => Reply::Integer(-2),
                }),
            )
        }
        _ => return None,
    })
}
