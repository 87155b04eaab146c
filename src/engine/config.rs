//! The engine's settings.

use std::path::PathBuf;
use std::sync::Arc;

use super::clock::Clock;
use crate::log::{LogConfig, Offset};

/// When the log is fsynced, with the meaning of Redis's `appendfsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// A write is acknowledged, and becomes visible to readers, only after the
    /// fdatasync that covers it returned. A crash loses nothing acknowledged.
    #[default]
    Always,
    /// The writer fsyncs at most one second apart; writes are acknowledged
    /// and visible as soon as they are written. A crash of the machine (not
    /// of the process) can lose about the last second.
    EverySec,
    /// Never fsynced by the engine (except to finish a segment roll, when a
    /// snapshot starts, or when the engine closes): the OS decides. A machine crash can lose
    /// an unbounded amount of recent writes.
    No,
}

impl FsyncPolicy {
    pub fn parse(s: &str) -> Option<FsyncPolicy> {
        match s {
            "always" => Some(FsyncPolicy::Always),
            "everysec" => Some(FsyncPolicy::EverySec),
            "no" => Some(FsyncPolicy::No),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::EverySec => "everysec",
            FsyncPolicy::No => "no",
        }
    }
}

/// Watches the writer's durability steps. For tests and metrics: a test can
/// block in `before_sync` to hold a batch between its write and its fsync.
pub trait Instrument: Send + Sync {
    /// The batch ending before `next_offset` is written and about to be synced.
    fn before_sync(&self, _next_offset: Offset) {}
    /// Every record before `next_offset` is durable.
    fn after_sync(&self, _next_offset: Offset) {}
    /// The snapshot thread is about to take the step *after* `step`; a test
    /// can stop it here (panic) to leave the files as a crash would.
    fn snapshot_step(&self, _step: SnapshotStep) {}
}

/// The steps that follow a snapshot, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotStep {
    /// The snapshot file is renamed into place and the directory fsynced.
    Durable,
    /// The segments wholly below its offset are deleted.
    SegmentsRemoved,
    /// Older snapshots are deleted.
    OlderSnapshotsRemoved,
}

#[derive(Clone)]
pub struct EngineConfig {
    /// The data directory: `wal/` holds the log, `snapshot-*` the snapshots.
    pub dir: PathBuf,
    pub fsync: FsyncPolicy,
    pub log: LogConfig,
    /// Requests waiting for the writer thread: pipelines, lazy expiry,
    /// snapshots. When full, a connection's pipeline waits to be queued:
    /// backpressure, never an unbounded queue. (A single write runs on the
    /// caller's thread and never queues.)
    pub queue_depth: usize,
    /// The most commands the writer thread takes from its queue into one
    /// batch (one write, one fsync). Larger batches amortise the fsync
    /// further but delay the first command's acknowledgement by the time to
    /// compute the rest. Single writes from callers join the batch being
    /// assembled without this bound: at most one per connection.
    pub max_batch_commands: usize,
    /// Largest value a command may build (`APPEND`, `SETRANGE`), as Redis's
    /// `proto-max-bulk-len`.
    pub max_value_bytes: usize,
    /// A snapshot starts on its own once the log since the last one exceeds
    /// this many bytes *and* `snapshot_log_percent` of the last snapshot's
    /// size (Redis's auto-aof-rewrite-min-size and -percentage). 0 disables.
    pub snapshot_min_log_bytes: u64,
    pub snapshot_log_percent: u64,
    /// Remove expired keys in the background (Redis's active expiry).
    pub active_expiry: bool,
    pub clock: Clock,
    pub instrument: Option<Arc<dyn Instrument>>,
}

impl EngineConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        EngineConfig {
            dir: dir.into(),
            fsync: FsyncPolicy::Always,
            log: LogConfig::default(),
            queue_depth: 4096,
            max_batch_commands: 1024,
            max_value_bytes: 512 << 20,
            snapshot_min_log_bytes: 64 << 20,
            snapshot_log_percent: 100,
            active_expiry: true,
            clock: Clock::system(),
            instrument: None,
        }
    }

    pub fn wal_dir(&self) -> PathBuf {
        self.dir.join("wal")
    }
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("dir", &self.dir)
            .field("fsync", &self.fsync)
            .field("log", &self.log)
            .field("queue_depth", &self.queue_depth)
            .field("snapshot_min_log_bytes", &self.snapshot_min_log_bytes)
            .field("snapshot_log_percent", &self.snapshot_log_percent)
            .finish_non_exhaustive()
    }
}
