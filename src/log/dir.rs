//! The log directory: its lock, the strict naming of segment files, and the
//! one way new files come into being (temp, write, fsync, rename, fsync dir).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use tracing::warn;

use super::Offset;
use super::error::{LogError, Result};

pub const LOCK_FILE: &str = "LOCK";
pub const STORE_EXT: &str = "store";
pub const INDEX_EXT: &str = "index";
pub const TEMP_EXT: &str = "tmp";
/// A file being deleted gradually; see [`remove_gradually`].
pub const DELETING_EXT: &str = "deleting";
/// Base offsets are written as exactly this many decimal digits.
pub const NAME_DIGITS: usize = 20;

pub fn store_path(dir: &Path, base: Offset) -> PathBuf {
    dir.join(format!("{base:0NAME_DIGITS$}.{STORE_EXT}"))
}

pub fn index_path(dir: &Path, base: Offset) -> PathBuf {
    dir.join(format!("{base:0NAME_DIGITS$}.{INDEX_EXT}"))
}

/// What a directory entry is, judged by its name alone.
#[derive(Debug, PartialEq, Eq)]
pub enum Entry {
    Store(Offset),
    Index(Offset),
    Lock,
    /// A leftover of an interrupted atomic create; never the truth.
    Temp,
    /// Anything else; reported and left alone.
    Stray,
}

/// Classifies a file name strictly: a segment name is exactly twenty digits, a
/// dot and a known extension. Anything else is never read as a segment.
pub fn classify(name: &str) -> Entry {
    if name == LOCK_FILE {
        return Entry::Lock;
    }
    let leftover = name
        .strip_suffix(&format!(".{TEMP_EXT}"))
        .or_else(|| name.strip_suffix(&format!(".{DELETING_EXT}")));
    if let Some(target) = leftover {
        // Only a temp file of a name the log would create is the log's own.
        return match classify(target) {
            Entry::Store(_) | Entry::Index(_) => Entry::Temp,
            _ => Entry::Stray,
        };
    }
    let Some((stem, ext)) = name.split_once('.') else {
        return Entry::Stray;
    };
    if stem.len() != NAME_DIGITS || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return Entry::Stray;
    }
    let Ok(base) = stem.parse::<Offset>() else {
        return Entry::Stray; // twenty digits can exceed u64::MAX
    };
    match ext {
        STORE_EXT => Entry::Store(base),
        INDEX_EXT => Entry::Index(base),
        _ => Entry::Stray,
    }
}

/// The files of a log directory, sorted by base offset.
#[derive(Debug, Default)]
pub struct Listing {
    pub stores: Vec<Offset>,
    pub indexes: Vec<Offset>,
    pub temps: Vec<PathBuf>,
    /// The base of the store an unfinished roll left under its temporary
    /// name (see [`super::roll`]): the temporary store above every named
    /// one. Not in `temps`: the open adopts it when it continues the log.
    pub unfinished_roll: Option<Offset>,
    pub strays: Vec<PathBuf>,
}

pub fn list(dir: &Path) -> Result<Listing> {
    let mut listing = Listing::default();
    let entries = fs::read_dir(dir).map_err(|e| LogError::io("listing", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io("listing", dir, e))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            listing.strays.push(path);
            continue;
        };
        match classify(&name) {
            Entry::Store(base) => listing.stores.push(base),
            Entry::Index(base) => listing.indexes.push(base),
            Entry::Lock => {}
            Entry::Temp => listing.temps.push(path),
            Entry::Stray => listing.strays.push(path),
        }
    }
    listing.stores.sort_unstable();
    listing.indexes.sort_unstable();
    listing.unfinished_roll = listing
        .temps
        .iter()
        .filter_map(|tmp| temp_store_base(tmp))
        .max()
        // A roll always follows a named store; a temporary store with none
        // before it is an interrupted create of segment 0, a leftover.
        .filter(|&base| listing.stores.last().is_some_and(|&last| base > last));
    if let Some(base) = listing.unfinished_roll {
        let tmp = temp_path(&store_path(dir, base));
        listing.temps.retain(|t| *t != tmp);
    }
    Ok(listing)
}

/// Takes the directory's exclusive lock. The lock is an `flock` on `LOCK`, so
/// the kernel releases it when the process dies, however it dies; it is held
/// for as long as the returned file is open.
pub fn lock(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| LogError::io("opening lock file", &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(LogError::Locked {
            dir: dir.to_path_buf(),
        }),
        Err(TryLockError::Error(e)) => Err(LogError::io("locking", &path, e)),
    }
}

/// fsyncs a directory, making the creation, rename or removal of its entries
/// durable. Without it a new segment can vanish after a power cut even though
/// its contents were fsynced.
pub fn sync_dir(dir: &Path) -> Result<()> {
    if super::trace::fault("skip-dir-fsync") {
        return Ok(()); // a deliberate durability bug, for the crash harness only
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map(|()| super::trace::dir_synced(dir))
        .map_err(|e| LogError::io("fsyncing directory", dir, e))
}

/// Creates the directory (and its parents) if needed, durably, with mode 0700
/// for the part that is created.
pub fn create_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| LogError::io("creating directory", dir, e))?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Writes `path` atomically: the contents go to `<path>.tmp`, created with
/// mode 0600, which is extended
/// to `len` bytes (zeros past the contents), fsynced and renamed over `path`;
/// then the directory is fsynced. A crash leaves either no file, or the whole
/// file; a leftover `.tmp` is removed at the next open.
pub fn create_atomic(path: &Path, contents: &[u8], len: u64) -> Result<()> {
    let tmp = temp_path(path);
    let write = || -> std::io::Result<()> {
        let mut f = create_file(&tmp)?;
        f.write_all(contents)?;
        if len > contents.len() as u64 {
            f.set_len(len)?;
        }
        f.sync_all().map(|()| super::trace::synced(&f, &tmp))
    };
    write().map_err(|e| LogError::io("writing", &tmp, e))?;
    super::trace::rename(&tmp, path).map_err(|e| LogError::io("renaming into place", path, e))?;
    sync_dir(path.parent().expect("segment files live in a directory"))
}

/// The base of a temporary store (`<base>.store.tmp`), if `path` is one.
fn temp_store_base(path: &Path) -> Option<Offset> {
    let name = path.file_name()?.to_str()?;
    match classify(name.strip_suffix(&format!(".{TEMP_EXT}"))?) {
        Entry::Store(base) => Some(base),
        _ => None,
    }
}

/// The temporary name `path` is written under before it is renamed into
/// place; the next open deletes what is left under such a name.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{TEMP_EXT}"));
    PathBuf::from(tmp)
}

/// Opens a new file for reading and writing, mode 0600, emptying any file
/// left under the name.
pub fn create_file(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// Deletes a file by shrinking it in steps before the unlink, as RocksDB's
/// delete scheduler does: freeing a large file's extents in one journal
/// transaction stalls every other writer of the filesystem (tens of ms for
/// 100 MB on ext4), while many small truncations interleave with them.
///
/// The file is first renamed to `<name>.deleting` and the directory fsynced,
/// so that a crash mid-way leaves either the whole file under its name or a
/// leftover that the next open removes, never a shortened file under its
/// real name. A missing file is not an error. The caller fsyncs the
/// directory afterwards.
pub fn remove_gradually(path: &Path) -> Result<()> {
    const STEP_BYTES: u64 = 8 << 20;
    let mut doomed = path.as_os_str().to_owned();
    doomed.push(format!(".{DELETING_EXT}"));
    let doomed = PathBuf::from(doomed);
    match super::trace::rename(path, &doomed) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(LogError::io("renaming for removal", path, e)),
    }
    sync_dir(path.parent().expect("files live in a directory"))?;
    let path = doomed.as_path();
    let shrink = || -> std::io::Result<()> {
        let file = OpenOptions::new().write(true).open(path)?;
        let mut len = file.metadata()?.len();
        while len > STEP_BYTES {
            len -= STEP_BYTES;
            file.set_len(len)?;
        }
        Ok(())
    };
    match shrink().and_then(|()| super::trace::remove_file(path)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::io("removing", path, e)),
    }
}

/// Removes leftovers of interrupted atomic creates and reports stray files.
pub fn clean(listing: &Listing) -> Result<()> {
    for tmp in &listing.temps {
        warn!(file = %tmp.display(), "removing leftover temporary file");
        super::trace::remove_file(tmp).map_err(|e| LogError::io("removing", tmp, e))?;
    }
    for stray in &listing.strays {
        warn!(file = %stray.display(), "ignoring unexpected file in log directory");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_parsed_strictly() {
        assert_eq!(classify("00000000000000000042.store"), Entry::Store(42));
        assert_eq!(classify("00000000000000000042.index"), Entry::Index(42));
        assert_eq!(classify("LOCK"), Entry::Lock);
        assert_eq!(classify("00000000000000000042.store.tmp"), Entry::Temp);
        assert_eq!(classify("00000000000000000042.index.tmp"), Entry::Temp);
        assert_eq!(classify("keep.tmp"), Entry::Stray, "not ours: left alone");
        assert_eq!(classify("42.store.tmp"), Entry::Stray);
        assert_eq!(classify("00000000000000000042.store.deleting"), Entry::Temp);
        for stray in [
            "42.store",
            "0000000000000000042.store",
            "000000000000000000042.store",
            "0000000000000000004x.store",
            "+0000000000000000042.store",
            "00000000000000000042.log",
            "00000000000000000042",
            "99999999999999999999.store",
            "notes.txt",
        ] {
            assert_eq!(classify(stray), Entry::Stray, "{stray}");
        }
    }

    #[test]
    fn paths_round_trip_through_classify() {
        let p = store_path(Path::new("/d"), 123);
        assert_eq!(
            classify(p.file_name().unwrap().to_str().unwrap()),
            Entry::Store(123)
        );
    }
}
