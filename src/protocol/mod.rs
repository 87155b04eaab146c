//! The Redis wire protocol, as pure functions over bytes: no sockets, no
//! storage. Requests arrive as RESP arrays of bulk strings or as inline
//! command lines; replies leave as RESP2 or, after `HELLO 3`, RESP3.
//!
//! - [`request`]: decoding requests, with every size limit checked before
//!   anything is allocated for it
//! - [`inline`]: splitting an inline line into words, quotes and escapes as
//!   Redis does
//! - [`reply`]: reply frames and their encoding in either protocol version

pub mod inline;
pub mod reply;
pub mod request;

pub use reply::{Protocol, Reply};
pub use request::{Limits, ProtocolError, parse_request};
