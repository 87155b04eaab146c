//! walkv: a durable key-value store whose every mutation goes through a
//! segmented write-ahead log.
//!
//! The crate is layered; dependencies point down this list and never up:
//!
//! - [`engine`]: the key-value store: an in-memory table whose every change
//!   goes through the log first; snapshots; replay. Knows nothing of sockets.
//! - [`log`]: the segmented write-ahead log. Bytes and offsets; it knows nothing
//!   of keys and never touches tokio.
//! - [`protocol`]: the Redis wire protocol (RESP2, RESP3, inline commands) as
//!   pure functions over bytes. Knows nothing of storage.

pub mod engine;
pub mod log;
pub mod protocol;
