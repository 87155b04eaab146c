//! What the server tells about itself: `INFO` and `CONFIG` (and the list of
//! command names that `INFO commandstats` counts).

use bytes::Bytes;

use super::args::syntax_error;
use super::client::help;
use super::{Context, Session, subcommand};
use crate::engine::glob::glob_match;
use crate::protocol::Reply;

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

const CONFIG_HELP: &[&str] = &[
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "HELP",
    "    Prints this help.",
];

pub fn config(ctx: &Context, args: &[Bytes]) -> Reply {
    let sub = match subcommand("config", args) {
        Ok(sub) => sub,
        Err(reply) => return reply,
    };
    match sub.as_str() {
        "GET" => config_get(ctx, &args[2..]),
        "SET" => config_set(ctx, &args[2..]),
        "RESETSTAT" => Reply::ok(),
        _ => help(CONFIG_HELP),
    }
}

/// `CONFIG GET pattern …`. As in Redis, a name without `*?[` is looked up
/// and answered as it was given (`MAXCLIENTS`), a pattern is matched ignoring
/// case, and each setting is reported once.
fn config_get(ctx: &Context, patterns: &[Bytes]) -> Reply {
    let pairs = ctx.server.config_pairs();
    let mut found: Vec<(String, String)> = Vec::new();
    for pattern in patterns {
        let lower = pattern.to_ascii_lowercase();
        let exact = !lower.iter().any(|c| b"*?[".contains(c));
        for (name, value) in &pairs {
            let hit = if exact {
                lower == name.as_bytes()
            } else {
                glob_match(&lower, name.as_bytes())
            };
            if hit && !found.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                let shown = if exact {
                    String::from_utf8_lossy(pattern).into_owned()
                } else {
                    name.clone()
                };
                found.push((shown, value.clone()));
            }
        }
    }
    Reply::Map(
        found
            .into_iter()
            .map(|(k, v)| (Reply::bulk(k), Reply::bulk(v)))
            .collect(),
    )
}

/// `CONFIG SET name value …`, all or nothing as in Redis: every name is
/// checked first, and if one value is refused the ones already set are put
/// back.
fn config_set(ctx: &Context, pairs: &[Bytes]) -> Reply {
    if !pairs.len().is_multiple_of(2) {
        return syntax_error();
    }
    let current = ctx.server.config_pairs();
    let mut names: Vec<String> = Vec::new();
    let mut refused = None;
    for pair in pairs.chunks(2) {
        let given = String::from_utf8_lossy(&pair[0]).into_owned();
        let name = given.to_ascii_lowercase();
        if !current.iter().any(|(n, _)| *n == name) {
            if refused.is_some() {
                continue; // the first problem is the one reported
            }
            return Reply::error(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{given}'"
            ));
        }
        if refused.is_none() && names.contains(&name) {
            refused = Some((given, "duplicate parameter".to_string()));
        }
        names.push(name);
    }
    if let Some((name, why)) = refused {
        return config_set_failed(&name, &why);
    }
    for (i, pair) in pairs.chunks(2).enumerate() {
        let value = String::from_utf8_lossy(&pair[1]).into_owned();
        if let Err(why) = ctx.server.config_set(&names[i], &value) {
            for earlier in &names[..i] {
                if let Some((_, old)) = current.iter().find(|(n, _)| n == earlier) {
                    let _ = ctx.server.config_set(earlier, old);
                }
            }
            // The server refuses names it cannot change at run time.
            let why = if why.starts_with("Unknown option") {
                "can't set immutable config".to_string()
            } else {
                why
            };
            return config_set_failed(&String::from_utf8_lossy(&pair[0]), &why);
        }
    }
    Reply::ok()
}

fn config_set_failed(name: &str, why: &str) -> Reply {
    Reply::error(format!(
        "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
    ))
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
