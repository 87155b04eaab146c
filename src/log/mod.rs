//! The segmented write-ahead log: an append-only sequence of opaque payloads,
//! each at a dense `u64` offset, stored in a directory of segment files.
//!
//! Bottom up:
//! - [`record`]: one framed entry (CRC32, length, offset, payload)
//! - [`header`]: the header every file starts with (magic, version, base)
//! - [`store`]: the append-only file of records; the truth
//! - [`index`]: a memory-mapped map from offset to store position; a cache
//! - [`scan`]: walking a store, and deciding how it ends (clean, torn, corrupt)
//! - [`segment`]: a store and its index, named by base offset
//! - [`roll`]: the slow half of starting a new segment, done off the append path
//! - [`dir`]: the directory's lock, file names, and atomic file creation
//! - [`Log`]: the ordered segments; append, read, sync, replay, remove
//! - [`trace`]: test-only durability trace and fault switches; no-ops by default
//! - [`check`]: checking, walking and cutting a log directory offline (`walkvctl`)
//!
//! The log knows nothing of keys and never uses tokio: it is plain blocking
//! I/O owned by one thread. The byte layout of every file and the recovery
//! rules are in `docs/format.md`.
//!
//! **Durability contract.** An appended record is durable once [`Log::sync`]
//! returns `Ok` after it, or a sync through a [`SyncHandle`] taken after it
//! (or once the roll that sealed its segment finished). A failed write
//! or fsync fences the log for good: the caller must not acknowledge anything
//! more and should restart the process.

pub mod check;
pub mod config;
pub mod dir;
pub mod error;
pub mod header;
pub mod index;
pub mod reader;
pub mod record;
pub mod roll;
pub mod scan;
pub mod segment;
mod segmented;
pub mod store;
pub mod trace;

pub use config::LogConfig;
pub use error::{LogError, Result};
pub use reader::{LogIter, LogReader};
pub use roll::{Roll, SyncHandle};
pub use segmented::{Log, LogStats, Recovery, remove_segments_below};

/// A record's position in the log. Offsets are dense and start at 0: the
/// first record ever appended to a log has offset 0, and removing old
/// segments never renumbers the records that remain.
pub type Offset = u64;
