//! `COMMAND` and its subcommands (COUNT, INFO, DOCS, LIST, GETKEYS, HELP),
//! answered from the [`catalog`]. `redis-cli` 7 sends `COMMAND DOCS` when it
//! starts and turns the argument trees into the hints it shows while typing.

use bytes::Bytes;

use super::args::{is, syntax_error};
use super::catalog::{self, Spec};
use super::client::help;
use super::subcommand;
use crate::engine::glob::glob_match;
use crate::protocol::Reply;

const HELP: &[&str] = &[
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "HELP",
    "    Prints this help.",
];

pub fn command(args: &[Bytes]) -> Reply {
    if args.len() == 1 {
        return Reply::Array(catalog::all().map(Spec::info).collect());
    }
    let sub = match subcommand("command", args) {
        Ok(sub) => sub,
        Err(reply) => return reply,
    };
    match sub.as_str() {
        "COUNT" => Reply::Integer(catalog::all().count() as i64),
        "INFO" if args.len() == 2 => Reply::Array(catalog::all().map(Spec::info).collect()),
        "INFO" => Reply::Array(
            args[2..]
                .iter()
                .map(|name| catalog::find(name).map_or(Reply::Null, Spec::info))
                .collect(),
        ),
        "DOCS" if args.len() == 2 => docs(catalog::all()),
        // Unknown names are left out, as in Redis.
        "DOCS" => docs(args[2..].iter().filter_map(|name| catalog::find(name))),
        "LIST" => list(&args[2..]),
        "GETKEYS" => getkeys(&args[2..]),
        _ => help(HELP),
    }
}

fn docs<'a>(specs: impl Iterator<Item = &'a Spec>) -> Reply {
    Reply::Map(specs.map(|s| (Reply::bulk(s.name), s.docs())).collect())
}

/// `COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]`:
/// every command and subcommand name.
fn list(filter: &[Bytes]) -> Reply {
    let names = catalog::all().flat_map(|s| std::iter::once(s).chain(s.subcommands));
    let keep: Box<dyn Fn(&Spec) -> bool> = match filter {
        [] => Box::new(|_| true),
        [by, kind, value] if is(by, "FILTERBY") => {
            let value = value.clone();
            match () {
                _ if is(kind, "MODULE") => Box::new(|_| false),
                _ if is(kind, "ACLCAT") => Box::new(move |s| {
                    s.acl
                        .split_whitespace()
                        .any(|c| c.as_bytes()[1..].eq_ignore_ascii_case(&value))
                }),
                _ if is(kind, "PATTERN") => {
                    Box::new(move |s| glob_match(&value.to_ascii_lowercase(), s.name.as_bytes()))
                }
                _ => return syntax_error(),
            }
        }
        _ => return syntax_error(),
    };
    Reply::Array(names.filter(|s| keep(s)).map(|s| Reply::bulk(s.name)).collect())
}

/// `COMMAND GETKEYS command arg …`: the keys, by the command's key positions.
fn getkeys(full: &[Bytes]) -> Reply {
    let Some(spec) = catalog::find(&full[0]) else {
        return Reply::error("ERR Invalid command specified");
    };
    let argc = full.len() as i32;
    if (spec.arity > 0 && argc != spec.arity) || argc < -spec.arity {
        return Reply::error("ERR Invalid number of arguments specified for command");
    }
    match spec.key_positions(full.len()) {
        Some(positions) if !positions.is_empty() => Reply::Array(
            positions
                .into_iter()
                .map(|i| Reply::Bulk(full[i].clone()))
                .collect(),
        ),
        _ => Reply::error("ERR The command has no key arguments"),
    }
}
