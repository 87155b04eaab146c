//! Connection and server commands: PING, ECHO, HELLO, AUTH, SELECT, CLIENT,
//! COMMAND, CONFIG, INFO, TIME, SAVE, BGSAVE, LASTSAVE, SHUTDOWN, RESET.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::args::{int, is, syntax_error, wrong_arity};
use super::{Context, Session, engine_error, keys, strings};
use crate::engine::glob::glob_match;
use crate::protocol::{Protocol, Reply};

/// The Redis version whose protocol and replies walkv follows.
pub const REDIS_COMPAT_VERSION: &str = "7.0.0";

fn arity(name: &str) -> Option<i32> {
    Some(match name {
        "PING" | "HELLO" | "AUTH" | "CLIENT" | "COMMAND" | "INFO" | "SHUTDOWN" | "BGSAVE" => -1,
        "ECHO" | "SELECT" => 2,
        "CONFIG" => -2,
        "TIME" | "LASTSAVE" | "SAVE" | "BGREWRITEAOF" | "RESET" | "QUIT" => 1,
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
        "CLIENT" => client(ctx, session, args),
        "COMMAND" => command(args),
        "CONFIG" => config(ctx, args),
        "INFO" => info(ctx, session, args),
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
        "BGSAVE" | "BGREWRITEAOF" => match ctx.engine.start_snapshot() {
            Ok(()) if name == "BGSAVE" => Reply::Simple("Background saving started"),
            Ok(()) => Reply::Simple("Background append only file rewriting started"),
            Err(err) => engine_error(&err),
        },
        "SHUTDOWN" => {
            if args[1..]
                .iter()
                .any(|a| !["NOSAVE", "SAVE", "NOW", "FORCE"].iter().any(|w| is(a, w)))
            {
                return syntax_error();
            }
            // Every write is in the log already; SAVE also takes a snapshot
            // so the next start has less to replay.
            if args[1..].iter().any(|a| is(a, "SAVE"))
                && let Err(err) = ctx.engine.snapshot().await
            {
                return Reply::error(format!("ERR Errors trying to SHUTDOWN. Check logs. ({err})"));
            }
            ctx.server.shutdown();
            Reply::ok()
        }
        _ => unknown_command(args),
    }
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
            if let Some(err) = invalid_client_name(&args[i + 1]) {
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
        && let Some(err) = check_password(ctx, session, password)
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

fn check_password(ctx: &Context, session: &mut Session, given: &[u8]) -> Option<Reply> {
    match ctx.server.requirepass() {
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
    let password = match args {
        [password] => password,
        [user, password] if is(user, "default") => password,
        [_, _] => return Reply::error("WRONGPASS invalid username-password pair or user is disabled."),
        _ => return syntax_error(),
    };
    check_password(ctx, session, password).unwrap_or_else(Reply::ok)
}

fn invalid_client_name(name: &[u8]) -> Option<Reply> {
    name.iter()
        .any(|&c| c <= b' ' || c > b'~')
        .then(|| Reply::error("ERR Client names cannot contain spaces, newlines or special characters."))
}

fn client(ctx: &Context, session: &mut Session, args: &[Bytes]) -> Reply {
    let Some(sub) = args.get(1) else {
        return wrong_arity("client");
    };
    let sub = String::from_utf8_lossy(&sub.to_ascii_uppercase()).into_owned();
    match (sub.as_str(), args.len()) {
        ("ID", 2) => Reply::Integer(session.id as i64),
        ("GETNAME", 2) => session.name.clone().map_or(Reply::Null, Reply::Bulk),
        ("SETNAME", 3) => {
            if let Some(err) = invalid_client_name(&args[2]) {
                return err;
            }
            session.name = (!args[2].is_empty()).then(|| args[2].clone());
            Reply::ok()
        }
        ("SETINFO", 4) => Reply::ok(),
        ("LIST", 2) => Reply::Verbatim(Bytes::from(ctx.server.client_list(None))),
        ("LIST", 4) if is(&args[2], "ID") => match int(&args[3]) {
            Ok(id) if id > 0 => Reply::Verbatim(Bytes::from(ctx.server.client_list(Some(id as u64)))),
            _ => Reply::error("ERR Invalid client ID"),
        },
        ("INFO", 2) => Reply::Verbatim(Bytes::from(ctx.server.client_list(Some(session.id)))),
        ("KILL", 3) => {
            // The old form: CLIENT KILL ip:port.
            let addr = String::from_utf8_lossy(&args[2]).into_owned();
            match ctx.server.kill_clients(None, Some(&addr)) {
                0 => Reply::error("ERR No such client"),
                _ => Reply::ok(),
            }
        }
        ("KILL", n) if n >= 4 && n % 2 == 0 => {
            let (mut id, mut addr) = (None, None);
            for pair in args[2..].chunks(2) {
                if is(&pair[0], "ID") {
                    match int(&pair[1]) {
                        Ok(n) if n > 0 => id = Some(n as u64),
                        _ => return Reply::error("ERR client-id should be greater than 0"),
                    }
                } else if is(&pair[0], "ADDR") {
                    addr = Some(String::from_utf8_lossy(&pair[1]).into_owned());
                } else {
                    return syntax_error();
                }
            }
            Reply::Integer(ctx.server.kill_clients(id, addr.as_deref()) as i64)
        }
        _ => Reply::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            sub
        )),
    }
}

fn command(args: &[Bytes]) -> Reply {
    let sub = args
        .get(1)
        .map(|s| String::from_utf8_lossy(&s.to_ascii_uppercase()).into_owned());
    match sub.as_deref() {
        Some("COUNT") => Reply::Integer(ALL_COMMANDS.len() as i64),
        Some("DOCS") => Reply::Map(vec![]),
        Some("INFO") => Reply::Array(
            args[2..]
                .iter()
                .map(|n| {
                    let name = String::from_utf8_lossy(&n.to_ascii_uppercase()).into_owned();
                    arity_of(&name).map_or(Reply::Null, |a| command_info(&name, a))
                })
                .collect(),
        ),
        None => Reply::Array(
            ALL_COMMANDS
                .iter()
                .map(|n| command_info(n, arity_of(n).unwrap_or(-1)))
                .collect(),
        ),
        Some(other) => Reply::error(format!(
            "ERR unknown subcommand '{}'. Try COMMAND HELP.",
            other.to_ascii_lowercase()
        )),
    }
}

fn command_info(name: &str, arity: i32) -> Reply {
    Reply::Array(vec![
        Reply::bulk(name.to_ascii_lowercase()),
        Reply::Integer(arity as i64),
        Reply::Set(vec![]),
        Reply::Integer(if arity == 1 || name == "PING" { 0 } else { 1 }),
        Reply::Integer(
            if name == "MSET" || name == "MSETNX" || name == "DEL" || name == "MGET" || name == "EXISTS" {
                -1
            } else {
                1
            },
        ),
        Reply::Integer(if name == "MSET" || name == "MSETNX" { 2 } else { 1 }),
    ])
}

pub const ALL_COMMANDS: &[&str] = &[
    "GET",
    "SET",
    "SETNX",
    "SETEX",
    "PSETEX",
    "GETSET",
    "GETDEL",
    "GETEX",
    "MGET",
    "MSET",
    "MSETNX",
    "INCR",
    "DECR",
    "INCRBY",
    "DECRBY",
    "INCRBYFLOAT",
    "APPEND",
    "STRLEN",
    "GETRANGE",
    "SUBSTR",
    "SETRANGE",
    "DEL",
    "UNLINK",
    "EXISTS",
    "TYPE",
    "EXPIRE",
    "PEXPIRE",
    "EXPIREAT",
    "PEXPIREAT",
    "TTL",
    "PTTL",
    "EXPIRETIME",
    "PEXPIRETIME",
    "PERSIST",
    "RENAME",
    "RENAMENX",
    "KEYS",
    "SCAN",
    "RANDOMKEY",
    "DBSIZE",
    "FLUSHALL",
    "FLUSHDB",
    "PING",
    "ECHO",
    "QUIT",
    "RESET",
    "HELLO",
    "AUTH",
    "SELECT",
    "CLIENT",
    "COMMAND",
    "CONFIG",
    "INFO",
    "TIME",
    "LASTSAVE",
    "SAVE",
    "BGSAVE",
    "BGREWRITEAOF",
    "SHUTDOWN",
    "MULTI",
    "EXEC",
    "DISCARD",
    "WATCH",
    "UNWATCH",
];

fn config(ctx: &Context, args: &[Bytes]) -> Reply {
    let sub = String::from_utf8_lossy(&args[1].to_ascii_uppercase()).into_owned();
    match sub.as_str() {
        "GET" if args.len() >= 3 => {
            let pairs = ctx.server.config_pairs();
            let matched = pairs
                .into_iter()
                .filter(|(k, _)| {
                    args[2..]
                        .iter()
                        .any(|p| glob_match(&p.to_ascii_lowercase(), k.as_bytes()))
                })
                .map(|(k, v)| (Reply::bulk(k), Reply::bulk(v)))
                .collect();
            Reply::Map(matched)
        }
        "SET" if args.len() >= 4 && args.len().is_multiple_of(2) => {
            for pair in args[2..].chunks(2) {
                let key = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
                let value = String::from_utf8_lossy(&pair[1]).into_owned();
                if let Err(why) = ctx.server.config_set(&key, &value) {
                    return Reply::error(format!(
                        "ERR CONFIG SET failed (possibly related to argument '{key}') - {why}"
                    ));
                }
            }
            Reply::ok()
        }
        "RESETSTAT" if args.len() == 2 => Reply::ok(),
        _ => Reply::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CONFIG HELP.",
            sub.to_ascii_lowercase()
        )),
    }
}

fn info(ctx: &Context, session: &Session, args: &[Bytes]) -> Reply {
    let wanted: Vec<String> = args[1..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    let all = wanted.is_empty()
        || wanted
            .iter()
            .any(|w| w == "all" || w == "everything" || w == "default");
    let mut sections = ctx.server.info_sections(session);
    sections.extend(engine_sections(ctx));
    let mut text = String::new();
    for (name, fields) in sections {
        if !all && !wanted.iter().any(|w| w == name) {
            continue;
        }
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        let mut title = name.to_string();
        title[..1].make_ascii_uppercase();
        text.push_str(&format!("# {title}\r\n"));
        for (k, v) in fields {
            text.push_str(&format!("{k}:{v}\r\n"));
        }
    }
    Reply::Verbatim(Bytes::from(text))
}

fn engine_sections(ctx: &Context) -> Vec<(&'static str, Vec<(String, String)>)> {
    let engine = &ctx.engine;
    let wal = engine.wal_stats();
    let recovery = engine.recovery();
    let last = engine.last_snapshot();
    let f = |k: &str, v: String| (k.to_string(), v);
    let keys = engine.len();
    vec![
        (
            "persistence",
            vec![
                f("loading", "0".into()),
                f(
                    "rdb_bgsave_in_progress",
                    (engine.snapshot_running() as u8).to_string(),
                ),
                f(
                    "rdb_last_save_keys",
                    last.as_ref().map_or(0, |s| s.keys).to_string(),
                ),
                f("aof_enabled", "1".into()),
                f("aof_fsync", engine.config().fsync.as_str().into()),
                f("recovery_records_replayed", recovery.records_replayed.to_string()),
                f("recovery_bytes_replayed", recovery.bytes_replayed.to_string()),
                f(
                    "recovery_seconds",
                    format!("{:.3}", recovery.duration.as_secs_f64()),
                ),
                f("recovery_torn_bytes_truncated", recovery.torn_bytes.to_string()),
                f("recovery_snapshot_keys", recovery.snapshot_keys.to_string()),
                f("writes_fenced", (engine.fenced().is_some() as u8).to_string()),
            ],
        ),
        (
            "replication",
            vec![f("role", "master".into()), f("connected_slaves", "0".into())],
        ),
        (
            "wal",
            vec![
                f("wal_segments", wal.segments.to_string()),
                f("wal_bytes", wal.bytes.to_string()),
                f("wal_first_offset", wal.first_offset.to_string()),
                f("wal_next_offset", wal.next_offset.to_string()),
                f("wal_fsyncs", wal.log.syncs.to_string()),
                f(
                    "wal_writes_per_fsync",
                    format!(
                        "{:.2}",
                        wal.log.records_appended as f64 / wal.log.syncs.max(1) as f64
                    ),
                ),
                f("wal_last_fsync_usec", wal.log.last_sync.as_micros().to_string()),
            ],
        ),
        (
            "keyspace",
            if keys == 0 {
                vec![]
            } else {
                vec![f(
                    "db0",
                    format!("keys={keys},expires={},avg_ttl=0", engine.volatile_len()),
                )]
            },
        ),
    ]
}
