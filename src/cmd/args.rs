//! Reading command arguments, with Redis's error texts.

use bytes::Bytes;

use crate::protocol::Reply;

/// An error reply, ready to send.
pub type CmdResult<T = Reply> = Result<T, Reply>;

pub fn syntax_error() -> Reply {
    Reply::error("ERR syntax error")
}

pub fn not_integer() -> Reply {
    Reply::error("ERR value is not an integer or out of range")
}

pub fn wrong_arity(name: &str) -> Reply {
    Reply::error(format!(
        "ERR wrong number of arguments for '{}' command",
        name.to_ascii_lowercase()
    ))
}

/// An integer argument, parsed strictly as Redis's `string2ll`.
pub fn int(arg: &[u8]) -> CmdResult<i64> {
    crate::engine::effects::parse_i64(arg).ok_or_else(not_integer)
}

/// A float argument (`INCRBYFLOAT`).
pub fn float(arg: &[u8]) -> CmdResult<f64> {
    crate::engine::effects::parse_f64(arg).ok_or_else(|| Reply::error("ERR value is not a valid float"))
}

/// Whether `arg` equals `word`, ignoring ASCII case (option names).
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// The arguments after the command name, as an iterator of options.
pub struct Options<'a> {
    args: &'a [Bytes],
    at: usize,
}

impl<'a> Options<'a> {
    pub fn new(args: &'a [Bytes]) -> Self {
        Options { args, at: 0 }
    }

    pub fn next_arg(&mut self) -> Option<&'a Bytes> {
        let arg = self.args.get(self.at)?;
        self.at += 1;
        Some(arg)
    }

    /// The value of an option that takes one (`EX 10`), or a syntax error.
    pub fn value(&mut self) -> CmdResult<&'a Bytes> {
        self.next_arg().ok_or_else(syntax_error)
    }
}
