//! The engine: the key-value store as a library, with no sockets. A table in
//! memory whose every change is first written to the log, and which, on open,
//! rebuilds itself from the newest snapshot plus the log after it.
//!
//! - [`mutation`]: what a log record says (effects, not commands)
//! - [`table`]: the sharded in-memory table; applies mutations
//! - [`command`]: the write commands and their outcomes
//! - [`effects`]: turning a command into mutations against the latest state
//! - [`writer`]: the owner of the log, behind a lock: batches, group commit,
//!   and the thread for ticks, expiry and snapshots
//! - [`snapshot`]: fuzzy snapshots and the deletion of what they cover
//! - [`recover`]: open = lock, snapshot, replay, finish interrupted clean-up
//! - [`glob`]: `KEYS`/`SCAN` patterns
//! - [`Engine`]: the handle
//!
//! # The durability contract
//!
//! A write is *acknowledged* when [`Engine::execute`] returns. What a crash
//! can lose depends on [`FsyncPolicy`]:
//!
//! | policy | acknowledged after | a process crash loses | a machine crash loses |
//! |---|---|---|---|
//! | `always` | the fdatasync covering it | nothing acknowledged | nothing acknowledged |
//! | `everysec` | the write(2) | nothing acknowledged | about the last second |
//! | `no` | the write(2) | nothing acknowledged | whatever the OS had not written |
//!
//! # No client sees what a crash could lose
//!
//! Redis holds every reply of an event-loop pass until that pass's fsync.
//! Here the equivalent is structural: the shared [`table`] only ever holds
//! state that is as durable as the policy promises. The writer computes each
//! command against the table *plus* its not-yet-durable batch (kept privately
//! in [`effects::Pending`]), appends the batch, fsyncs, and only then applies
//! it to the table and answers. A reader therefore cannot observe a value
//! before the fsync that covers it, and reads never wait for the writer. If
//! the write or fsync fails, the batch is never applied: no one ever saw it.
//! Under `always` the fsync runs on a thread of its own while callers
//! compute the next batch against the overlay, which then holds two
//! batches' worth; the rule is the same, since neither is in the table. A
//! command that writes nothing but read the overlay (a `SET NX` that finds
//! the key) is answered only once what it read is applied. Under `everysec`
//! and `no` "durable" means written with write(2): the batch is applied
//! right after it, before the writer's lock is let go.
//!
//! # Blocking
//!
//! - Reads ([`Engine::get`] and friends) take one shard's lock for a hash
//!   lookup: microseconds, never I/O, never held across `.await`.
//! - [`Engine::execute`] computes and appends in place, holding the
//!   writer's lock for the compute and one write(2): microseconds, unless
//!   the kernel throttles write(2) under a flood of dirty pages (Redis's
//!   event loop blocks there too). Under `always` it then suspends, never
//!   blocks, until its fsync returned. [`Engine::snapshot`] suspends while
//!   the snapshot is written.
//!   Their `_blocking` twins block the calling thread and must not run on
//!   an async worker.
//! - [`Engine::open`] blocks for the replay (seconds for millions of keys) and
//!   [`Engine::close`] for one fsync: call them from a blocking thread.
//!
//! # Failure
//!
//! A failed write or fsync fences the engine: that batch and every later
//! write get [`EngineError::Fenced`], reads go on, and the process must
//! restart to recover. Nothing acknowledged is lost, because nothing is
//! acknowledged before its fsync succeeded.

mod api;
mod apply;
pub mod clock;
pub mod command;
pub mod config;
pub mod effects;
pub mod error;
pub mod glob;
pub mod mutation;
pub mod recover;
pub mod snapshot;
pub mod table;
pub mod writer;

pub(crate) use api::Shared;
pub use api::{Engine, KeyExpiry, PendingAck, WalStats};
pub use clock::Clock;
pub use command::{Command, CommandError, Condition, ExpireCondition, Outcome, Ttl, WatchToken};
pub use config::{EngineConfig, FsyncPolicy, Instrument, SnapshotStep};
pub use error::{EngineError, Result};
pub use recover::{LoadProgress, RecoveryReport};
pub use snapshot::SnapshotInfo;
pub use writer::Ack;
