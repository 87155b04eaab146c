//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use bytes::Bytes;
use walkv::engine::{Clock, Command, Condition, EngineConfig, Ttl};
use walkv::log::LogConfig;

pub fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A config with tiny segments (so rolls happen in a few writes), no
/// background expiry or automatic snapshots (tests trigger them), and a
/// manual clock.
pub fn config(dir: &Path, now: &Arc<AtomicU64>) -> EngineConfig {
    let mut c = EngineConfig::new(dir);
    c.log = LogConfig {
        max_segment_bytes: 512,
        max_index_bytes: 32 + 8 * 16,
        max_record_bytes: 1 << 20,
    };
    c.active_expiry = false;
    c.snapshot_min_log_bytes = 0;
    c.clock = Clock::manual(now.clone());
    c
}

pub fn set(key: &str, value: &str) -> Command {
    Command::Set {
        key: b(key),
        value: b(value),
        condition: Condition::Always,
        ttl: Ttl::Clear,
        get: false,
    }
}
