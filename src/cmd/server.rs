//! Connection and server commands: PING, ECHO, HELLO, AUTH, SELECT, TIME,
//! SAVE, BGSAVE, LASTSAVE, SHUTDOWN, RESET (and CLIENT, INFO, CONFIG and
//! COMMAND through [`super::client`], [`super::introspection`] and
//! [`super::commands`]).

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::args::{int, is, syntax_error, wrong_arity};
use super::{Context, Session, client, commands, engine_error, introspection, keys, strings};
use crate::protocol::{Protocol, Reply};

/// The Redis version whose protocol and replies walkv follows.
pub const REDIS_COMPAT_VERSION: &str = "7.0.0";

fn arity(name: &str) -> Option<i32> {
    Some(match name {
        "PING" | "HELLO" | "COMMAND" | "INFO" | "SHUTDOWN" | "BGSAVE" => -1,
        "ECHO" | "SELECT" => 2,
        "AUTH" | "CLIENT" | "CONFIG" => -2,
        "TIME" | "LASTSAVE" | "SAVE" | "BGREWRITEAOF" | "RESET" => 1,
        "QUIT" => -1,
        "MULTI" | "EXEC" | "DISCARD" | "UNWATCH" => 1,
        "WATCH" => -2,
        _ => return None,
    })
}

/// The arity of any command walkv knows.
pub fn arity_of(name: &str) -> Option<i32> {
    strings::arity(name)
        .or_else(|| keys::arity(name))
        .or_else(|| arity(name))
}

/// The error a request gets before it runs: unknown command or wrong number
/// of arguments.
pub fn precheck(name: &str, args: &[Bytes]) -> Option<Reply> {
    let Some(arity) = arity_of(name) else {
        return Some(unknown_command(args));
    };
    strings::check_arity(name, args, arity).err()
}

/// Redis's words, including the trailing space after each quoted argument.
pub fn unknown_command(args: &[Bytes]) -> Reply {
    let quote = |b: &Bytes| String::from_utf8_lossy(&b[..b.len().min(128)]).into_owned();
    let mut text = format!(
        "ERR unknown command '{}', with args beginning with: ",
        quote(&args[0])
    );
    for arg in &args[1..] {
        text.push_str(&format!("'{}' ", quote(arg)));
    }
    Reply::Error(text)
}

pub async fn run(ctx: &Context, session: &mut Session, name: &str, args: &[Bytes]) -> Reply {
    if let Some(error) = precheck(name, args) {
        return error;
    }
    match name {
        "PING" => match args.len() {
            1 => Reply::Simple("PONG"),
            2 => Reply::Bulk(args[1].clone()),
            _ => wrong_arity(name),
        },
        "ECHO" => Reply::Bulk(args[1].clone()),
        // Queued inside MULTI and run after EXEC, which already dropped the
        // watches.
        "UNWATCH" => {
            session.watched.clear();
            Reply::ok()
        }
        "SELECT" => match int(&args[1]) {
            Ok(0) => Reply::ok(),
            Ok(n) if i32::try_from(n).is_err() => {
                Reply::error("ERR value is out of range, value must between -2147483648 and 2147483647")
            }
            Ok(_) => Reply::error("ERR DB index is out of range"),
            Err(e) => e,
        },
        "HELLO" => hello(ctx, session, args),
        "AUTH" => auth(ctx, session, &args[1..]),
        "RESET" => {
            *session = Session {
                id: session.id,
                authenticated: ctx.server.requirepass().is_none(),
                ..Session::default()
            };
            Reply::Simple("RESET")
        }
        "CLIENT" => client::client(ctx, session, args),
        "COMMAND" => commands::command(args),
        "CONFIG" => introspection::config(ctx, args),
        "INFO" => introspection::info(ctx, session, args),
        "TIME" => {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            Reply::Array(vec![
                Reply::bulk(now.as_secs().to_string()),
                Reply::bulk(now.subsec_micros().to_string()),
            ])
        }
        "LASTSAVE" => Reply::Integer(
            ctx.engine
                .last_snapshot()
                .map_or(0, |s| (s.created_ms / 1000) as i64),
        ),
        "SAVE" => match ctx.engine.snapshot().await {
            Ok(_) => Reply::ok(),
            Err(err) => engine_error(&err),
        },
        // SCHEDULE only matters in Redis when another child process runs.
        "BGSAVE" if args.len() > 2 || (args.len() == 2 && !is(&args[1], "SCHEDULE")) => syntax_error(),
        "BGSAVE" | "BGREWRITEAOF" => match ctx.engine.start_snapshot() {
            Ok(()) if name == "BGSAVE" => Reply::Simple("Background saving started"),
            Ok(()) => Reply::Simple("Background append only file rewriting started"),
            Err(err) => engine_error(&err),
        },
        "SHUTDOWN" => shutdown(ctx, args).await,
        _ => unknown_command(args),
    }
}

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`. Every write is in the log
/// already; SAVE also takes a snapshot so the next start has less to replay.
async fn shutdown(ctx: &Context, args: &[Bytes]) -> Reply {
    let (mut save, mut nosave, mut abort, mut other) = (false, false, false, false);
    for arg in &args[1..] {
        match () {
            _ if is(arg, "SAVE") => save = true,
            _ if is(arg, "NOSAVE") => nosave = true,
            _ if is(arg, "ABORT") => abort = true,
            _ if is(arg, "NOW") || is(arg, "FORCE") => other = true,
            _ => return syntax_error(),
        }
    }
    if (save && nosave) || (abort && (save || nosave || other)) {
        return syntax_error();
    }
    if abort {
        // A shutdown starts at once and cannot be caught in progress.
        return Reply::error("ERR No shutdown in progress.");
    }
    if save && let Err(err) = ctx.engine.snapshot().await {
        return Reply::error(format!("ERR Errors trying to SHUTDOWN. Check logs. ({err})"));
    }
    ctx.server.shutdown();
    Reply::ok()
}

fn hello(ctx: &Context, session: &mut Session, args: &[Bytes]) -> Reply {
    // Everything is checked before anything changes: a HELLO that fails
    // leaves the protocol, the name and the login as they were.
    let mut protocol = session.protocol;
    if let Some(version) = args.get(1) {
        protocol = match int(version) {
            Ok(2) => Protocol::Resp2,
            Ok(3) => Protocol::Resp3,
            Ok(_) => return Reply::error("NOPROTO unsupported protocol version"),
            Err(_) => return Reply::error("ERR Protocol version is not an integer or out of range"),
        };
    }
    let (mut password, mut name) = (None, None);
    let mut i = 2;
    while i < args.len() {
        if is(&args[i], "AUTH") && i + 2 < args.len() {
            if !is(&args[i + 1], "default") {
                return Reply::error("WRONGPASS invalid username-password pair or user is disabled.");
            }
            password = Some(&args[i + 2]);
            i += 3;
        } else if is(&args[i], "SETNAME") && i + 1 < args.len() {
            if let Some(err) = client::invalid_name(&args[i + 1], "Client names") {
                return err;
            }
            name = Some(args[i + 1].clone());
            i += 2;
        } else {
            return Reply::error(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&args[i])
            ));
        }
    }
    if let Some(password) = password
        && let Some(err) = check_password(ctx, session, password, true)
    {
        return err;
    }
    if !session.authenticated {
        return Reply::error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        );
    }
    session.protocol = protocol;
    if name.is_some() {
        session.name = name;
    }
    let proto = if session.protocol == Protocol::Resp3 { 3 } else { 2 };
    Reply::Map(vec![
        (Reply::bulk("server"), Reply::bulk("redis")),
        (Reply::bulk("version"), Reply::bulk(REDIS_COMPAT_VERSION)),
        (Reply::bulk("proto"), Reply::Integer(proto)),
        (Reply::bulk("id"), Reply::Integer(session.id as i64)),
        (Reply::bulk("mode"), Reply::bulk("standalone")),
        (Reply::bulk("role"), Reply::bulk("master")),
        (Reply::bulk("modules"), Reply::Array(vec![])),
    ])
}

/// Compares in time that does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= (a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0)) as usize;
    }
    diff == 0
}

/// `named_user`: the form that names the user (`AUTH default pw`, `HELLO …
/// AUTH default pw`), which Redis accepts with any password when none is set
/// (the default user is `nopass`); the one-argument `AUTH pw` is refused then.
fn check_password(ctx: &Context, session: &mut Session, given: &[u8], named_user: bool) -> Option<Reply> {
    match ctx.server.requirepass() {
        None if named_user => {
            session.authenticated = true;
            None
        }
        Some(pass) if constant_time_eq(pass.as_bytes(), given) => {
            session.authenticated = true;
            None
        }
        Some(_) => Some(Reply::error(
            "WRONGPASS invalid username-password pair or user is disabled.",
        )),
        None => Some(Reply::error(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        )),
    }
}

fn auth(ctx: &Context, session: &mut Session, args: &[Bytes]) -> Reply {
    let (password, named_user) = match args {
        [password] => (password, false),
        [user, password] if is(user, "default") => (password, true),
        [_, _] => return Reply::error("WRONGPASS invalid username-password pair or user is disabled."),
        _ => return syntax_error(),
    };
    check_password(ctx, session, password, named_user).unwrap_or_else(Reply::ok)
}
