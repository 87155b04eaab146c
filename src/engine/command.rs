//! The engine's write commands and what they answer. A command says what the
//! caller wants; [`super::effects`] turns it into the mutation that is logged.
//! Reads are plain methods on [`super::Engine`] and never come through here.

use bytes::Bytes;

use crate::log::Offset;

/// When a `SET` may happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Condition {
    #[default]
    Always,
    /// `NX`: only if the key does not exist.
    IfAbsent,
    /// `XX`: only if the key exists.
    IfPresent,
}

/// What a write does to the key's deadline. Relative deadlines are turned
/// into absolute ones by the writer, with the engine's clock, before logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// Remove any deadline (a plain `SET`, `PERSIST`).
    Clear,
    /// Leave the deadline as it is (`KEEPTTL`, `GETEX` with no option).
    Keep,
    /// Milliseconds since the Unix epoch (`EXAT`, `PXAT`, `EXPIREAT`).
    At(i64),
    /// Milliseconds from now (`EX`, `PX`, `EXPIRE`).
    In(i64),
}

/// `EXPIRE`'s `NX | XX | GT | LT` (a key without a deadline counts as one at
/// infinity for `GT` and `LT`, as in Redis).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpireCondition {
    #[default]
    Always,
    HasNone,
    HasOne,
    Later,
    Earlier,
}

/// A token from [`super::Engine::watch`]: the state of a key when watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchToken {
    pub(crate) version: Offset,
    pub(crate) live: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Set {
        key: Bytes,
        value: Bytes,
        condition: Condition,
        ttl: Ttl,
        /// Answer the old value (`SET … GET`).
        get: bool,
    },
    /// `MSET`, or `MSETNX` when `only_if_none_exist`.
    MultiSet {
        pairs: Vec<(Bytes, Bytes)>,
        only_if_none_exist: bool,
    },
    Delete {
        keys: Vec<Bytes>,
    },
    GetDelete {
        key: Bytes,
    },
    /// `GETEX`: the value, and a change of deadline.
    GetExpire {
        key: Bytes,
        ttl: Ttl,
    },
    IncrementBy {
        key: Bytes,
        by: i64,
    },
    IncrementByFloat {
        key: Bytes,
        by: f64,
    },
    Append {
        key: Bytes,
        value: Bytes,
    },
    SetRange {
        key: Bytes,
        offset: u64,
        value: Bytes,
    },
    /// `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT` (`ttl` is `At` or `In`).
    Expire {
        key: Bytes,
        ttl: Ttl,
        condition: ExpireCondition,
    },
    Persist {
        key: Bytes,
    },
    /// `RENAME`, or `RENAMENX` when `only_if_absent`.
    Rename {
        from: Bytes,
        to: Bytes,
        only_if_absent: bool,
    },
    FlushAll,
    /// `MULTI … EXEC`: all of `commands` in one log record, or none of them
    /// if any watched key changed since its token was taken.
    Atomic {
        commands: Vec<Command>,
        watched: Vec<(Bytes, WatchToken)>,
    },
    /// Removes those of `keys` that are past their deadline (lazy and active
    /// expiry); answers how many.
    RemoveExpired {
        keys: Vec<Bytes>,
    },
    // Reads, for use inside `Atomic` (a transaction's reads must see its own
    // earlier writes); outside one, read the table through `Engine` instead.
    /// The value, or `Nil`.
    Get {
        key: Bytes,
    },
    /// How many of `keys` exist.
    Exists {
        keys: Vec<Bytes>,
    },
    /// The deadline in ms, -1 without one, -2 for a missing key.
    Deadline {
        key: Bytes,
    },
    /// The values of `keys` (`Many` of `Value`/`Nil`).
    MultiGet {
        keys: Vec<Bytes>,
    },
    /// Bytes `start..=end` of the value, Redis's `GETRANGE` rules.
    GetRange {
        key: Bytes,
        start: i64,
        end: i64,
    },
}

impl Command {
    /// A short name for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Set { .. } => "set",
            Command::MultiSet { .. } => "mset",
            Command::Delete { .. } => "del",
            Command::GetDelete { .. } => "getdel",
            Command::GetExpire { .. } => "getex",
            Command::IncrementBy { .. } => "incrby",
            Command::IncrementByFloat { .. } => "incrbyfloat",
            Command::Append { .. } => "append",
            Command::SetRange { .. } => "setrange",
            Command::Expire { .. } => "expire",
            Command::Persist { .. } => "persist",
            Command::Rename { .. } => "rename",
            Command::FlushAll => "flushall",
            Command::Atomic { .. } => "exec",
            Command::RemoveExpired { .. } => "expire-removal",
            Command::Get { .. } => "get",
            Command::Exists { .. } => "exists",
            Command::Deadline { .. } => "deadline",
            Command::MultiGet { .. } => "mget",
            Command::GetRange { .. } => "getrange",
        }
    }
}

/// What a command answered. The server maps these onto RESP replies.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Ok,
    Nil,
    Int(i64),
    Value(Bytes),
    /// One outcome per command of an `Atomic`.
    Many(Vec<Outcome>),
    /// An `Atomic` whose watched keys changed: nothing was done.
    Aborted,
    Error(CommandError),
}

/// A command that could not be done; nothing was written for it. The texts are
/// Redis's, so clients recognise them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("value is not an integer or out of range")]
    NotInteger,
    #[error("increment or decrement would overflow")]
    Overflow,
    #[error("value is not a valid float")]
    NotFloat,
    #[error("increment would produce NaN or Infinity")]
    NanOrInfinity,
    #[error("no such key")]
    NoSuchKey,
    #[error("string exceeds maximum allowed size (proto-max-bulk-len)")]
    TooLarge,
    #[error("invalid expire time in '{0}' command")]
    InvalidExpire(&'static str),
    #[error("transactions cannot be nested")]
    NestedAtomic,
}
