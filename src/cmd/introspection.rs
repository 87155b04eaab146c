//! What the server tells about itself: `INFO`, `CONFIG`, `COMMAND`.

use bytes::Bytes;

use super::Context;
use super::Session;
use super::server::arity_of;
use crate::engine::glob::glob_match;
use crate::protocol::Reply;

pub fn command(args: &[Bytes]) -> Reply {
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

/// The position of `name` in [`ALL_COMMANDS`]: one hash lookup, since it
/// runs for every request (`INFO commandstats`).
pub fn command_index(name: &str) -> Option<usize> {
    static INDEX: std::sync::OnceLock<std::collections::HashMap<&'static str, usize>> =
        std::sync::OnceLock::new();
    INDEX
        .get_or_init(|| ALL_COMMANDS.iter().enumerate().map(|(i, n)| (*n, i)).collect())
        .get(name)
        .copied()
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

pub fn config(ctx: &Context, args: &[Bytes]) -> Reply {
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

pub fn info(ctx: &Context, session: &Session, args: &[Bytes]) -> Reply {
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
