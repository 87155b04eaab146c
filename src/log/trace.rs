//! Test-only hooks at the points where data becomes durable, for the crash
//! harness (`walkv-crashtest`, see `docs/crash-testing.md`).
//!
//! Without the cargo features `durability-trace` and `fault-injection` (the
//! default, and every shipped build) every function here is the plain
//! system call it wraps, or nothing at all: the hooks cost nothing and change
//! nothing.
//!
//! **`durability-trace`.** When the environment variable
//! [`TRACE_ENV`] names a file, each durability point appends one line to it,
//! tab-separated, *after* the system call succeeded and *before* anything
//! can be acknowledged on the strength of it:
//!
//! 1. `sync <inode> <len> <path>`: the file's first `len` bytes are on disk
//! 2. `dirsync <dir>`: the names in `dir` are on disk as they are now
//! 3. `rename <inode> <from> <to>`: `from` now bears the name `to`
//! 4. `unlink <inode> <path>`: `path` is gone
//!
//! Files are named by inode, because names change (`.tmp` → final →
//! `.deleting`). Before an unlink, or a rename over an existing file, the
//! file is hard-linked into `<trace>.graveyard/`, so that the harness can
//! bring it back if the removal was not yet made durable by a `dirsync`.
//! Each line is one `write` on an `O_APPEND` file, so lines from the writer
//! and the snapshot thread never interleave.
//!
//! **`fault-injection`.** [`fault`] answers whether the comma-separated list
//! in [`FAULT_ENV`] names a fault (`ack-before-fsync`, `skip-dir-fsync`), so
//! that a test can check the harness catches a daemon that breaks its
//! durability contract.
//!
//! Neither variable starts with `WALKV_`: walkvd reads those as configuration
//! keys and refuses unknown ones.

use std::fs::File;
use std::io;
use std::path::Path;

/// Names the trace file (`durability-trace` builds only).
pub const TRACE_ENV: &str = "WALKVD_DURABILITY_TRACE";
/// Names the injected faults (`fault-injection` builds only).
pub const FAULT_ENV: &str = "WALKVD_FAULT";

/// Where unlinked files' bytes are kept beside the trace file `trace`:
/// `<trace>.graveyard/` (the harness reads it back).
pub fn graveyard_of(trace: &std::path::Path) -> std::path::PathBuf {
    let mut graveyard = trace.as_os_str().to_owned();
    graveyard.push(".graveyard");
    std::path::PathBuf::from(graveyard)
}

/// fdatasync through `file`, recorded with the length it covers (taken
/// before the sync: another thread may append meanwhile).
pub fn sync_data(file: &File) -> io::Result<()> {
    recorded(file, File::sync_data)
}

/// fsync (`sync_all`) through `file`, recorded as [`sync_data`] is.
pub fn sync_all(file: &File) -> io::Result<()> {
    recorded(file, File::sync_all)
}

fn recorded(file: &File, sync: fn(&File) -> io::Result<()>) -> io::Result<()> {
    #[cfg(feature = "durability-trace")]
    let len = file.metadata()?.len();
    sync(file)?;
    #[cfg(feature = "durability-trace")]
    on::record_sync(file, None, len);
    Ok(())
}

/// Records that `file` (at `path`) was just fsynced at its current length.
#[inline]
pub fn synced(file: &File, path: &Path) {
    #[cfg(feature = "durability-trace")]
    if let Ok(meta) = file.metadata() {
        on::record_sync(file, Some(path), meta.len());
    }
    #[cfg(not(feature = "durability-trace"))]
    let _ = (file, path);
}

/// Records that the directory `dir` was just fsynced.
#[inline]
pub fn dir_synced(dir: &Path) {
    #[cfg(feature = "durability-trace")]
    on::line(&format!("dirsync\t{}", dir.display()));
    #[cfg(not(feature = "durability-trace"))]
    let _ = dir;
}

/// `fs::rename`, recorded.
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(feature = "durability-trace")]
    {
        on::keep(to, false);
        let ino = on::ino(from);
        std::fs::rename(from, to)?;
        on::line(&format!("rename\t{ino}\t{}\t{}", from.display(), to.display()));
        Ok(())
    }
    #[cfg(not(feature = "durability-trace"))]
    std::fs::rename(from, to)
}

/// `fs::remove_file`, recorded.
pub fn remove_file(path: &Path) -> io::Result<()> {
    #[cfg(feature = "durability-trace")]
    {
        let ino = on::ino(path);
        on::keep(path, false);
        std::fs::remove_file(path)?;
        on::line(&format!("unlink\t{ino}\t{}", path.display()));
        Ok(())
    }
    #[cfg(not(feature = "durability-trace"))]
    std::fs::remove_file(path)
}

/// Records, just before a removal made by code that does not go through
/// [`remove_file`], that `path` is about to be unlinked.
#[inline]
pub fn unlinking(path: &Path) {
    #[cfg(feature = "durability-trace")]
    on::keep(path, true);
    #[cfg(not(feature = "durability-trace"))]
    let _ = path;
}

/// Whether the fault `name` is switched on. Always `false` without the
/// `fault-injection` feature.
#[inline]
pub fn fault(name: &str) -> bool {
    #[cfg(feature = "fault-injection")]
    {
        static FAULTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        FAULTS
            .get_or_init(|| {
                let list = std::env::var(FAULT_ENV).unwrap_or_default();
                list.split(',').map(|s| s.trim().to_string()).collect()
            })
            .iter()
            .any(|f| f == name)
    }
    #[cfg(not(feature = "fault-injection"))]
    {
        let _ = name;
        false
    }
}

#[cfg(feature = "durability-trace")]
mod on {
    use std::fs::{File, OpenOptions};
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Mutex, OnceLock};

    struct Trace {
        file: Mutex<File>,
        graveyard: PathBuf,
        kept: AtomicU64,
    }

    fn trace() -> Option<&'static Trace> {
        static TRACE: OnceLock<Option<Trace>> = OnceLock::new();
        TRACE
            .get_or_init(|| {
                let path = PathBuf::from(std::env::var_os(super::TRACE_ENV)?);
                let file = OpenOptions::new().create(true).append(true).open(&path).ok()?;
                let graveyard = super::graveyard_of(&path);
                std::fs::create_dir_all(&graveyard).ok()?;
                Some(Trace {
                    file: Mutex::new(file),
                    graveyard,
                    kept: AtomicU64::new(0),
                })
            })
            .as_ref()
    }

    /// Appends one line with one `write`. A failure to trace is a broken
    /// test set-up, never something to carry on from silently.
    pub fn line(text: &str) {
        if let Some(t) = trace() {
            let mut file = t.file.lock().unwrap_or_else(|e| e.into_inner());
            file.write_all(format!("{text}\n").as_bytes())
                .expect("writing the durability trace");
        }
    }

    pub fn ino(path: &Path) -> u64 {
        std::fs::symlink_metadata(path).map_or(0, |m| m.ino())
    }

    pub fn record_sync(file: &File, path: Option<&Path>, len: u64) {
        let Ok(meta) = file.metadata() else { return };
        let path = path.map_or_else(|| "-".to_string(), |p| p.display().to_string());
        line(&format!("sync\t{}\t{len}\t{path}", meta.ino()));
    }

    /// Hard-links `path` (if it exists) into the graveyard; with `record`,
    /// also records its unlink (for callers that unlink it themselves).
    pub fn keep(path: &Path, record: bool) {
        let Some(t) = trace() else { return };
        let ino = ino(path);
        if ino == 0 {
            return;
        }
        let n = t.kept.fetch_add(1, Ordering::Relaxed);
        let _ = std::fs::hard_link(path, t.graveyard.join(format!("{n}-{ino}")));
        if record {
            line(&format!("unlink\t{ino}\t{}", path.display()));
        }
    }
}
