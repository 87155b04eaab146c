//! The engine's error type.

use std::path::PathBuf;

use crate::log::LogError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Log(#[from] LogError),

    /// A write or fsync failed earlier: the engine accepts no more writes
    /// (reads go on). The process must restart, and will recover everything
    /// that was acknowledged.
    #[error("writes are fenced after a failed write or fsync ({cause}); the process must restart")]
    Fenced { cause: String },

    /// A snapshot file is damaged and the log no longer holds what it covered.
    #[error("corruption in {} at byte {offset}: {reason}", file.display())]
    Corruption {
        file: PathBuf,
        offset: u64,
        reason: String,
    },

    #[error("{context} {}: {source}", path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The command's effect would make a log record over `max_record_bytes`;
    /// nothing was done.
    #[error("the command's record of {len} bytes exceeds the maximum record size of {max} bytes")]
    RecordTooLarge { len: usize, max: u32 },

    #[error("a snapshot is already in progress")]
    SnapshotInProgress,

    /// A snapshot could not be written; the log is untouched.
    /// A thread panicked while it held the writer's lock: what it left half
    /// done cannot be trusted, so the engine fences.
    #[error("a thread panicked while it held the log's writer")]
    WriterPanicked,
    #[error("snapshot failed: {0}")]
    SnapshotFailed(String),

    /// The engine has shut down.
    #[error("the engine is closed")]
    Closed,
}

impl EngineError {
    pub(crate) fn io(context: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EngineError::Io {
            context,
            path: path.into(),
            source,
        }
    }

    /// Whether the process must stop: the daemon exits with a distinct code.
    pub fn is_fatal(&self) -> bool {
        matches!(self, EngineError::Fenced { .. })
            || matches!(self, EngineError::Log(e) if matches!(e, LogError::Io { .. } | LogError::Fenced { .. }))
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
