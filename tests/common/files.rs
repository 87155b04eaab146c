//! Editing a log's files behind its back, as a crash or a bad disk would.

use std::fs::OpenOptions;
use std::path::Path;

/// Cuts or extends the file at `path` to `len` bytes.
pub fn set_len(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}
