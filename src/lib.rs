//! walkv: a durable key-value store whose every mutation goes through a
//! segmented write-ahead log.
//!
//! The crate is layered; dependencies point down this list and never up:
//!
//! - [`log`]: the segmented write-ahead log. Bytes and offsets; it knows nothing
//!   of keys and never touches tokio.

pub mod log;
