//! walkv: a durable key-value store whose every mutation goes through a
//! segmented write-ahead log.
//!
//! The crate is layered; dependencies point down this list and never up:
//!
//! - [`config`]: the daemon's layered configuration (defaults, file,
//!   environment, flags).
//! - [`service`]: running under systemd: notifications, watchdog, socket
//!   activation, reload.
//! - [`server`]: the tokio TCP server: connections, limits, shutdown.
//! - [`cmd`]: the commands: the only place that knows a request *and* the
//!   engine.
//! - [`engine`]: the key-value store: an in-memory table whose every change
//!   goes through the log first; snapshots; replay. Knows nothing of sockets.
//! - [`log`]: the segmented write-ahead log. Bytes and offsets; it knows nothing
//!   of keys and never touches tokio.
//! - [`protocol`]: the Redis wire protocol (RESP2, RESP3, inline commands) as
//!   pure functions over bytes. Knows nothing of storage.

pub mod cmd;
pub mod config;
pub mod engine;
pub mod log;
pub mod protocol;
pub mod server;
pub mod service;
