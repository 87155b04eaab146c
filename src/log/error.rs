//! The log's error type: every failure the log can report, with the file it
//! concerns where there is one.

use std::io;
use std::path::PathBuf;

use super::Offset;

/// What went wrong in the log.
///
/// [`LogError::Io`] from a write or an fsync is **fatal**: the log fences
/// itself (every later append and sync returns [`LogError::Fenced`]) because
/// after a failed fsync the kernel may have dropped the dirty pages, and a
/// retry that "succeeds" would acknowledge data that is not on disk. The caller
/// must stop acknowledging writes and restart the process, which then recovers
/// from what is really on disk.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A system call failed. `context` says what the log was doing.
    #[error("{context} {}: {source}", path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The bytes on disk are not what the log wrote, in a place a crash cannot
    /// explain. `offset` is the byte position within `file`.
    #[error(
        "corruption in {} at byte {offset}: {reason} (nothing was changed; see docs/format.md, recovery)",
        file.display()
    )]
    Corruption {
        file: PathBuf,
        offset: u64,
        reason: String,
    },

    /// Another process (or another `Log` in this one) holds the directory lock.
    #[error("directory {} is locked by another process", dir.display())]
    Locked { dir: PathBuf },

    /// A payload is larger than `max_record_bytes`; nothing was written.
    #[error("record of {len} bytes exceeds the maximum of {max} bytes")]
    RecordTooLarge { len: usize, max: u32 },

    /// A read asked for an offset the log does not hold.
    #[error("offset {offset} is outside the log [{lowest}, {next})")]
    OffsetOutOfRange {
        offset: Offset,
        lowest: Offset,
        next: Offset,
    },

    /// An earlier write or fsync failed; the log accepts no more writes.
    #[error("the log is fenced after an earlier I/O failure ({cause}); restart the process to recover")]
    Fenced { cause: String },

    /// The configuration cannot work; `key` names the setting.
    #[error("invalid log configuration: {key}: {reason}")]
    InvalidConfig { key: &'static str, reason: String },
}

pub type Result<T, E = LogError> = std::result::Result<T, E>;

impl LogError {
    pub(crate) fn io(context: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        LogError::Io {
            context,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corruption(file: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Self {
        LogError::Corruption {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }
}
