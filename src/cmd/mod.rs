//! Commands: the only place that knows both a request's words and the engine.
//! Each family file parses arguments into a typed engine [`Command`] (or a
//! read), runs it, and turns the outcome into a [`Reply`].
//!
//! - [`strings`]: GET, SET and the other string commands
//! - [`keys`]: DEL, EXISTS, EXPIRE, TTL, SCAN, KEYS, RENAME and friends
//! - [`server`]: connection and server commands (PING, HELLO, AUTH, SELECT…)
//! - [`client`]: CLIENT and its subcommands
//! - [`introspection`]: INFO, CONFIG
//! - [`commands`]: COMMAND and its subcommands, from the [`catalog`]
//! - [`expiry`]: the deadline options of SET, GETEX, EXPIRE…
//! - [`transaction`]: MULTI, EXEC, DISCARD, WATCH, UNWATCH
//!
//! [`Command`]: crate::engine::Command

pub mod args;
pub mod catalog;
pub mod client;
pub mod commands;
pub mod expiry;
pub mod introspection;
pub mod keys;
pub mod server;
pub mod strings;
pub mod transaction;

use std::sync::Arc;

use bytes::Bytes;

use crate::engine::{Command, Engine, EngineError, Outcome, WatchToken};
use crate::protocol::{Protocol, Reply};

/// What the server knows that commands may report or change.
pub trait ServerInfo: Send + Sync {
    /// `INFO`'s sections other than the engine's own (server, clients, stats).
    fn info_sections(&self, session: &Session) -> Vec<(&'static str, Vec<(String, String)>)>;
    /// `CONFIG GET`: every `(name, value)` pair.
    fn config_pairs(&self) -> Vec<(String, String)>;
    /// `CONFIG SET` of one key; `Err` is the error text.
    fn config_set(&self, key: &str, value: &str) -> Result<(), String>;
    /// The password clients must give, if any.
    fn requirepass(&self) -> Option<String>;
    /// `CLIENT LIST` lines, or only client `id`'s (`CLIENT INFO`,
    /// `CLIENT LIST ID`).
    fn client_list(&self, id: Option<u64>) -> String;
    /// Counts one call of `name` (a known command, upper case) that took
    /// `micros` (`INFO commandstats`).
    fn count_command(&self, name: &str, micros: u64);
    /// Closes the clients matching the filters (`CLIENT KILL`); how many.
    fn kill_clients(&self, id: Option<u64>, addr: Option<&str>) -> usize;
    /// Asks the server to stop (`SHUTDOWN`).
    fn shutdown(&self);
}

/// Per-connection state that commands read and change.
#[derive(Debug, Default)]
pub struct Session {
    pub id: u64,
    pub protocol: Protocol,
    pub authenticated: bool,
    pub name: Option<Bytes>,
    /// `Some` between MULTI and EXEC: the queued requests.
    pub multi: Option<Vec<Vec<Bytes>>>,
    /// A command was refused while queueing: EXEC must abort.
    pub multi_failed: bool,
    pub watched: Vec<(Bytes, WatchToken)>,
    /// `CLIENT REPLY OFF`: no replies until `CLIENT REPLY ON`.
    pub replies_off: bool,
    /// The previous command was `CLIENT REPLY SKIP`: this one gets no reply.
    pub skip_this_reply: bool,
    /// This command is `CLIENT REPLY SKIP`: the next one gets no reply.
    pub skip_next_reply: bool,
}

/// What the connection does after a command.
#[derive(Debug, PartialEq)]
pub enum Action {
    Reply(Reply),
    /// Reply, then close the connection (`QUIT`).
    ReplyAndClose(Reply),
}

pub struct Context {
    pub engine: Arc<Engine>,
    pub server: Arc<dyn ServerInfo>,
}

/// Runs one request.
pub async fn execute(ctx: &Context, session: &mut Session, args: Vec<Bytes>) -> Action {
    let mut buf = [0u8; NAME_ON_STACK];
    let owned;
    let name = match upper_on_stack(&args[0], &mut buf) {
        Some(name) => name,
        None => {
            owned = String::from_utf8_lossy(&args[0].to_ascii_uppercase()).into_owned();
            owned.as_str()
        }
    };
    let started = std::time::Instant::now();
    let action = execute_named(ctx, session, name, args).await;
    ctx.server
        .count_command(name, started.elapsed().as_micros() as u64);
    // CLIENT REPLY: decided after the command ran, since it may be the
    // CLIENT REPLY ON that turns replies back on.
    let silent = silenced(session);
    match action {
        Action::Reply(_) if silent => Action::Reply(Reply::Nothing),
        Action::ReplyAndClose(_) if silent => Action::ReplyAndClose(Reply::Nothing),
        action => action,
    }
}

/// Longer command names than any command has are upper-cased on the heap.
const NAME_ON_STACK: usize = 32;

/// `name` in upper case, written into `buf`: commands are matched in upper
/// case, and this runs for every request, so it allocates nothing. `None`
/// when the name does not fit or is not UTF-8 (no command is either).
fn upper_on_stack<'a>(name: &[u8], buf: &'a mut [u8; NAME_ON_STACK]) -> Option<&'a str> {
    let upper = buf.get_mut(..name.len())?;
    upper.copy_from_slice(name);
    upper.make_ascii_uppercase();
    std::str::from_utf8(upper).ok()
}

/// Whether this command's reply is suppressed (`CLIENT REPLY OFF`, or a
/// `SKIP` for it), passing a `SKIP` asked for the next command on to it.
fn silenced(session: &mut Session) -> bool {
    let silent = session.replies_off || session.skip_this_reply;
    session.skip_this_reply = std::mem::take(&mut session.skip_next_reply);
    silent
}

/// Writes that may be queued behind one another without waiting for the
/// replies before them: plain writes whose plan reads nothing from the
/// table (the writer computes them, in queue order, against the latest
/// state). Anything else, reads above all, waits for the writes before it,
/// so a connection always sees its own writes.
const PIPELINED_WRITES: &[&str] = &[
    "SET",
    "SETNX",
    "SETEX",
    "PSETEX",
    "GETSET",
    "GETDEL",
    "MSET",
    "MSETNX",
    "DEL",
    "UNLINK",
    "INCR",
    "DECR",
    "INCRBY",
    "DECRBY",
    "INCRBYFLOAT",
    "APPEND",
    "SETRANGE",
    "PERSIST",
    "RENAME",
    "RENAMENX",
];

/// Whether `args` may go through [`start_write`]: an authenticated session,
/// outside `MULTI`, and one of [`PIPELINED_WRITES`], whose name it returns.
pub fn can_pipeline(session: &Session, args: &[Bytes]) -> Option<&'static str> {
    if !session.authenticated || session.multi.is_some() {
        return None;
    }
    PIPELINED_WRITES
        .iter()
        .find(|name| args[0].eq_ignore_ascii_case(name.as_bytes()))
        .copied()
}

/// A write handed to the engine whose reply is still to come.
pub struct InFlight {
    ack: crate::engine::PendingAck,
    finish: Finish,
    protocol: Protocol,
    silent: bool,
    name: &'static str,
    started: std::time::Instant,
}

/// What [`start_write`] did: answered at once (a bad argument, say), or
/// queued the write.
pub enum Started {
    Done(Action),
    InFlight(InFlight),
}

/// Runs the part of a write that needs no waiting: checks its arguments and
/// queues it in the engine. Only for requests [`can_pipeline`] accepts.
pub fn start_write(ctx: &Context, session: &mut Session, name: &'static str, args: Vec<Bytes>) -> Started {
    let started = std::time::Instant::now();
    let silent = silenced(session);
    let silence = |reply: Reply| Action::Reply(if silent { Reply::Nothing } else { reply });
    let plan = strings::plan(ctx, name, &args).or_else(|| keys::plan(ctx, name, &args));
    let reply = match plan {
        Some(Ok(Plan::Write(command, finish))) => {
            return Started::InFlight(InFlight {
                ack: ctx.engine.enqueue(command),
                finish,
                protocol: session.protocol,
                silent,
                name,
                started,
            });
        }
        Some(Ok(Plan::Done(reply))) | Some(Err(reply)) => reply,
        None => Reply::error(format!("ERR unknown command '{name}'")),
    };
    ctx.server
        .count_command(name, started.elapsed().as_micros() as u64);
    Started::Done(silence(reply))
}

impl InFlight {
    /// The engine's handle on the write, for [`crate::engine::Engine::run_deferred`].
    pub fn pending(&mut self) -> &mut crate::engine::PendingAck {
        &mut self.ack
    }

    /// Waits for the engine's answer (durable and applied) and makes the reply.
    pub async fn finish(self, ctx: &Context) -> Action {
        let reply = match self.ack.wait().await {
            Ok(ack) => (self.finish)(ack.outcome, self.protocol),
            Err(err) => engine_error(&err),
        };
        ctx.server
            .count_command(self.name, self.started.elapsed().as_micros() as u64);
        Action::Reply(if self.silent { Reply::Nothing } else { reply })
    }
}

/// The subcommand of a container command (`CLIENT ID`), upper case, once the
/// [`catalog`] knows it and its number of arguments is right; else Redis's
/// error.
pub fn subcommand(container: &str, args: &[Bytes]) -> Result<String, Reply> {
    let Some(given) = args.get(1) else {
        return Err(args::wrong_arity(container));
    };
    let given = String::from_utf8_lossy(given);
    let full = format!("{container}|{}", given.to_ascii_lowercase());
    let Some(spec) = catalog::find(full.as_bytes()) else {
        let shown: String = given.chars().take(128).collect();
        return Err(Reply::error(format!(
            "ERR unknown subcommand '{shown}'. Try {} HELP.",
            container.to_ascii_uppercase()
        )));
    };
    strings::check_arity(&full, args, spec.arity)?;
    Ok(given.to_ascii_uppercase())
}

async fn execute_named(ctx: &Context, session: &mut Session, name: &str, args: Vec<Bytes>) -> Action {
    // A password removed at run time (CONFIG SET requirepass "") lets the
    // clients that were waiting to authenticate in, as in Redis.
    if !session.authenticated && ctx.server.requirepass().is_none() {
        session.authenticated = true;
    }
    if !session.authenticated && !matches!(name, "AUTH" | "HELLO" | "QUIT") {
        return Action::Reply(Reply::error("NOAUTH Authentication required."));
    }
    if session.multi.is_some() && !matches!(name, "EXEC" | "DISCARD" | "MULTI" | "WATCH" | "QUIT" | "RESET") {
        return Action::Reply(transaction::queue(session, name, args));
    }
    match name {
        "QUIT" => Action::ReplyAndClose(Reply::ok()),
        "MULTI" | "EXEC" | "DISCARD" | "WATCH" | "UNWATCH" => {
            Action::Reply(transaction::execute(ctx, session, name, &args).await)
        }
        _ => Action::Reply(run(ctx, session, name, &args).await),
    }
}

/// Runs a command outside a transaction.
pub async fn run(ctx: &Context, session: &mut Session, name: &str, args: &[Bytes]) -> Reply {
    if let Some(plan) = strings::plan(ctx, name, args).or_else(|| keys::plan(ctx, name, args)) {
        return match plan {
            Ok(Plan::Done(reply)) => reply,
            Ok(Plan::Write(command, finish)) => match ctx.engine.execute(command).await {
                Ok(outcome) => finish(outcome, session.protocol),
                Err(err) => engine_error(&err),
            },
            Err(reply) => reply,
        };
    }
    server::run(ctx, session, name, args).await
}

/// How a write turns its outcome into a reply.
pub type Finish = Box<dyn FnOnce(Outcome, Protocol) -> Reply + Send>;

/// A command, parsed: either already answered (a read, or a bad argument)
/// or a write for the engine with how to present its outcome.
pub enum Plan {
    Done(Reply),
    Write(Command, Finish),
}

/// The reply for an engine failure, with Redis's classes of error.
pub fn engine_error(err: &EngineError) -> Reply {
    match err {
        EngineError::Fenced { .. } => Reply::error(format!("MISCONF {err}")),
        EngineError::SnapshotInProgress => Reply::error("ERR Background save already in progress"),
        other => Reply::error(format!("ERR {other}")),
    }
}

/// The generic mapping of an outcome, for commands with nothing special (the
/// protocol is the same for all of them: the encoder adapts the frames).
pub fn outcome_reply(outcome: Outcome, _protocol: Protocol) -> Reply {
    match outcome {
        Outcome::Ok => Reply::ok(),
        Outcome::Nil => Reply::Null,
        Outcome::Int(n) => Reply::Integer(n),
        Outcome::Value(v) => Reply::Bulk(v),
        Outcome::Many(items) => {
            Reply::Array(items.into_iter().map(|o| outcome_reply(o, _protocol)).collect())
        }
        Outcome::Aborted => Reply::NullArray,
        Outcome::Error(e) => Reply::error(format!("ERR {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_names_are_upper_cased_on_the_stack_when_they_fit() {
        let mut buf = [0u8; NAME_ON_STACK];
        assert_eq!(upper_on_stack(b"getSet", &mut buf), Some("GETSET"));
        let longest = "x".repeat(NAME_ON_STACK);
        assert_eq!(
            upper_on_stack(longest.as_bytes(), &mut buf),
            Some(&*longest.to_uppercase())
        );
        let too_long = "x".repeat(NAME_ON_STACK + 1);
        assert_eq!(upper_on_stack(too_long.as_bytes(), &mut buf), None);
        assert_eq!(upper_on_stack(b"g\xffet", &mut buf), None);
        assert!(
            introspection::ALL_COMMANDS
                .iter()
                .all(|name| name.len() <= NAME_ON_STACK)
        );
    }
}
