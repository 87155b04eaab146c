//! `CLIENT` and its subcommands: ID, GETNAME, SETNAME, SETINFO, LIST, INFO,
//! KILL, REPLY, HELP.

use bytes::Bytes;

use super::args::{int, is, syntax_error};
use super::{Context, Session, subcommand};
use crate::protocol::Reply;

const HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are:",
    "    * LIB-NAME: the client lib name.",
    "    * LIB-VER: the client lib version.",
    "HELP",
    "    Prints this help.",
];

/// The reply of a `HELP` subcommand: one status line per line of text.
pub fn help(lines: &[&'static str]) -> Reply {
    Reply::Array(lines.iter().map(|l| Reply::Simple(l)).collect())
}

pub fn client(ctx: &Context, session: &mut Session, args: &[Bytes]) -> Reply {
    let sub = match subcommand("client", args) {
        Ok(sub) => sub,
        Err(reply) => return reply,
    };
    match sub.as_str() {
        "ID" => Reply::Integer(session.id as i64),
        "GETNAME" => session.name.clone().map_or(Reply::Null, Reply::Bulk),
        "SETNAME" => {
            if let Some(err) = invalid_name(&args[2], "Client names") {
                return err;
            }
            session.name = (!args[2].is_empty()).then(|| args[2].clone());
            Reply::ok()
        }
        // Redis 7.2's: accepted, checked as Redis checks it, not kept.
        "SETINFO" => {
            let attr = String::from_utf8_lossy(&args[2]).into_owned();
            if !is(&args[2], "LIB-NAME") && !is(&args[2], "LIB-VER") {
                return Reply::error(format!("ERR Unrecognized option '{attr}'"));
            }
            invalid_name(&args[3], &attr).unwrap_or_else(Reply::ok)
        }
        "LIST" => list(ctx, args),
        "INFO" => Reply::Verbatim(Bytes::from(ctx.server.client_list(Some(session.id)))),
        "KILL" => kill(ctx, session, args),
        "REPLY" => reply_mode(session, &args[2]),
        _ => help(HELP),
    }
}

/// Redis allows the printable ASCII characters other than space.
pub fn invalid_name(name: &[u8], what: &str) -> Option<Reply> {
    name.iter().any(|&c| !(b'!'..=b'~').contains(&c)).then(|| {
        Reply::error(format!(
            "ERR {what} cannot contain spaces, newlines or special characters."
        ))
    })
}

/// The client type names Redis knows; walkv's clients are all `normal`.
fn client_type(name: &[u8]) -> Result<bool, Reply> {
    if is(name, "normal") {
        return Ok(true);
    }
    if ["master", "slave", "replica", "pubsub"]
        .iter()
        .any(|t| is(name, t))
    {
        return Ok(false);
    }
    Err(Reply::error(format!(
        "ERR Unknown client type '{}'",
        String::from_utf8_lossy(name)
    )))
}

/// `CLIENT LIST [TYPE type | ID id [id …]]`.
fn list(ctx: &Context, args: &[Bytes]) -> Reply {
    let text = match args.len() {
        2 => ctx.server.client_list(None),
        4 if is(&args[2], "TYPE") => match client_type(&args[3]) {
            Ok(true) => ctx.server.client_list(None),
            Ok(false) => String::new(),
            Err(reply) => return reply,
        },
        n if n > 3 && is(&args[2], "ID") => {
            let mut text = String::new();
            for id in &args[3..] {
                let Ok(id) = int(id) else {
                    return Reply::error("ERR Invalid client ID");
                };
                if id > 0 {
                    text.push_str(&ctx.server.client_list(Some(id as u64)));
                }
            }
            text
        }
        _ => return syntax_error(),
    };
    Reply::Verbatim(Bytes::from(text))
}

/// `CLIENT KILL ip:port`, or `CLIENT KILL <filter> <value> …` with the
/// filters `ID`, `ADDR`, `LADDR`, `TYPE`, `USER` and `SKIPME` (default yes).
fn kill(ctx: &Context, session: &Session, args: &[Bytes]) -> Reply {
    if args.len() == 3 {
        // The old form, which can close the caller's own connection.
        let addr = String::from_utf8_lossy(&args[2]).into_owned();
        return match ctx.server.kill_clients(None, Some(&addr)) {
            0 => Reply::error("ERR No such client"),
            _ => Reply::ok(),
        };
    }
    let mut filter = KillFilter {
        skip_me: true,
        any_type: true,
        ..KillFilter::default()
    };
    for pair in args[2..].chunks(2) {
        let [option, value] = pair else {
            return syntax_error();
        };
        if let Err(reply) = filter.add(option, value) {
            return reply;
        }
    }
    let killed = clients(&ctx.server.client_list(None))
        .filter(|c| filter.matches(c, session.id))
        .map(|c| ctx.server.kill_clients(Some(c.id), None))
        .sum::<usize>();
    Reply::Integer(killed as i64)
}

#[derive(Default)]
struct KillFilter {
    id: Option<u64>,
    addr: Option<String>,
    laddr: Option<String>,
    /// `TYPE normal` (or no TYPE) matches every walkv client; other types none.
    any_type: bool,
    skip_me: bool,
}

impl KillFilter {
    fn add(&mut self, option: &[u8], value: &[u8]) -> Result<(), Reply> {
        let text = || String::from_utf8_lossy(value).into_owned();
        match () {
            _ if is(option, "ID") => match int(value) {
                Ok(id) if id > 0 => self.id = Some(id as u64),
                _ => return Err(Reply::error("ERR client-id should be greater than 0")),
            },
            _ if is(option, "TYPE") => self.any_type &= client_type(value)?,
            _ if is(option, "ADDR") => self.addr = Some(text()),
            _ if is(option, "LADDR") => self.laddr = Some(text()),
            _ if is(option, "USER") => {
                if !is(value, "default") {
                    return Err(Reply::error(format!("ERR No such user '{}'", text())));
                }
            }
            _ if is(option, "SKIPME") && is(value, "yes") => self.skip_me = true,
            _ if is(option, "SKIPME") && is(value, "no") => self.skip_me = false,
            _ => return Err(syntax_error()),
        }
        Ok(())
    }

    fn matches(&self, c: &ClientLine, me: u64) -> bool {
        self.any_type
            && !(self.skip_me && c.id == me)
            && self.id.is_none_or(|id| id == c.id)
            && self.addr.as_deref().is_none_or(|a| a == c.addr)
            && self.laddr.as_deref().is_none_or(|a| Some(a) == c.laddr)
    }
}

/// One line of `CLIENT LIST`, the fields the filters read.
struct ClientLine<'a> {
    id: u64,
    addr: &'a str,
    laddr: Option<&'a str>,
}

fn clients(list: &str) -> impl Iterator<Item = ClientLine<'_>> {
    list.lines().filter_map(|line| {
        let field = |name: &str| {
            line.split(' ')
                .find_map(|f| f.strip_prefix(name).and_then(|f| f.strip_prefix('=')))
        };
        Some(ClientLine {
            id: field("id")?.parse().ok()?,
            addr: field("addr")?,
            laddr: field("laddr"),
        })
    })
}

/// `CLIENT REPLY ON|OFF|SKIP`. OFF and SKIP have no reply of their own.
fn reply_mode(session: &mut Session, mode: &[u8]) -> Reply {
    match () {
        _ if is(mode, "ON") => {
            session.replies_off = false;
            session.skip_this_reply = false;
            Reply::ok()
        }
        _ if is(mode, "OFF") => {
            session.replies_off = true;
            Reply::Nothing
        }
        _ if is(mode, "SKIP") => {
            session.skip_next_reply = !session.replies_off;
            Reply::Nothing
        }
        _ => syntax_error(),
    }
}
