//! The log's size limits, and the checks that they can work together.

use super::error::{LogError, Result};
use super::header::FILE_HEADER_BYTES;
use super::index::INDEX_ENTRY_BYTES;
use super::record::RECORD_HEADER_BYTES;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// A segment is full, and the next append rolls a new one, once its store
    /// reaches this size. A record may run past it (a segment always takes at
    /// least one record), so a store is at most this plus one record.
    /// Larger: fewer files; smaller: finer-grained deletion after snapshots.
    pub max_segment_bytes: u64,
    /// Size of the active segment's index file, header included (rounded
    /// down to whole entries); it is preallocated (sparse) to this size and
    /// caps the records per segment.
    pub max_index_bytes: u64,
    /// Largest payload accepted. Recovery treats a larger announced length as
    /// damage, so this also bounds what a damaged header can make us allocate.
    pub max_record_bytes: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            max_segment_bytes: 64 << 20,
            max_index_bytes: FILE_HEADER_BYTES as u64 + (1 << 20) * INDEX_ENTRY_BYTES as u64,
            max_record_bytes: 1 << 30,
        }
    }
}

impl LogConfig {
    /// Entries an active segment's index holds.
    pub fn index_capacity(&self) -> u64 {
        (self.max_index_bytes - FILE_HEADER_BYTES as u64) / INDEX_ENTRY_BYTES as u64
    }

    pub fn validate(&self) -> Result<()> {
        let invalid = |key, reason: String| Err(LogError::InvalidConfig { key, reason });
        if self.max_segment_bytes <= FILE_HEADER_BYTES as u64 {
            return invalid(
                "max_segment_bytes",
                format!("must exceed the {FILE_HEADER_BYTES}-byte file header"),
            );
        }
        // Index entries hold store positions as u32, and a record always
        // starts below max_segment_bytes.
        if self.max_segment_bytes > u32::MAX as u64 {
            return invalid("max_segment_bytes", format!("must be at most {}", u32::MAX));
        }
        if self.max_index_bytes < (FILE_HEADER_BYTES + INDEX_ENTRY_BYTES) as u64 {
            return invalid(
                "max_index_bytes",
                format!("must hold the header and one {INDEX_ENTRY_BYTES}-byte entry"),
            );
        }
        if self.index_capacity() > u32::MAX as u64 {
            return invalid("max_index_bytes", "holds more than u32::MAX entries".into());
        }
        if self.max_record_bytes as u64 + RECORD_HEADER_BYTES as u64 > u32::MAX as u64 {
            return invalid(
                "max_record_bytes",
                format!("must be at most {}", u32::MAX as usize - RECORD_HEADER_BYTES),
            );
        }
        Ok(())
    }
}
