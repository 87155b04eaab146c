//! Carrying out a [`CutPlan`]: moving what a cut drops into quarantine,
//! durably, and reopening the log the way the daemon does.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::{CutPlan, Truncate};
use crate::log::config::LogConfig;
use crate::log::dir;
use crate::log::error::{LogError, Result};
use crate::log::segment::Segment;
use crate::log::store::Store;
use crate::log::{Log, Recovery};

/// Opens the log in `dir` as the daemon does, which cuts a torn tail of the
/// last segment, rebuilds every index that disagrees with its store and
/// removes leftovers, then closes it cleanly. Takes the log's lock.
pub fn reopen(dir: &Path, config: LogConfig) -> Result<Recovery> {
    let log = Log::open(dir, config)?;
    let recovery = log.recovery().clone();
    log.close()?;
    Ok(recovery)
}

/// Carries out a cut planned by [`super::LogCheck::plan_cut`] (or
/// [`super::LogCheck::plan_keeping_snapshot`]), moving what it drops into
/// the existing directory `quarantine` (on the same filesystem). Every step
/// is durable before the next: a crash part-way leaves a log that is a
/// prefix of the one before (or a suffix the kept snapshot covers), and a
/// second run finishes the job.
///
/// The damaged tail of the cut store is copied to quarantine *first*:
/// once the segments after it are moved away, that store is the last one,
/// and its damaged ending can pass for a torn tail, which the next open (or
/// a second repair) cuts without a copy. With the copy made before, a crash
/// at any later step has already kept those bytes.
pub fn execute_cut(plan: &CutPlan, quarantine: &Path, config: &LogConfig) -> Result<()> {
    if let Some(cut) = &plan.truncate {
        copy_tail_atomic(&cut.store, cut.position, &tail_copy_path(cut, quarantine))?;
    }
    for path in &plan.moves {
        if path.exists() {
            move_into(path, quarantine)?;
        }
    }
    if let Some(cut) = &plan.truncate {
        Store::open(&cut.store, cut.base)?.truncate(cut.position)?;
    }
    if let Some(base) = plan.recreate_base
        && !dir::store_path(&plan.dir, base).exists()
    {
        Segment::create(&plan.dir, base, config)?;
    }
    Ok(())
}

/// Where [`execute_cut`] keeps the bytes a truncation removes:
/// `<quarantine>/<store name>.from-<position>`.
pub fn tail_copy_path(cut: &Truncate, quarantine: &Path) -> PathBuf {
    let name = cut.store.file_name().unwrap_or_default().to_string_lossy();
    quarantine.join(format!("{name}.from-{}", cut.position))
}

/// Moves `path` into the directory `dest_dir` under the same name, durably:
/// rename, then fsync both directories. Returns the new path.
pub fn move_into(path: &Path, dest_dir: &Path) -> Result<PathBuf> {
    let name = path.file_name().unwrap_or_default();
    let dest = dest_dir.join(name);
    if dest.exists() {
        let err = io::Error::new(
            io::ErrorKind::AlreadyExists,
            "the quarantine already holds that name",
        );
        return Err(LogError::io("moving into quarantine", dest, err));
    }
    fs::rename(path, &dest).map_err(|e| LogError::io("moving into quarantine", path, e))?;
    dir::sync_dir(dest_dir)?;
    dir::sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    Ok(dest)
}

/// Copies the bytes of `src` from `from` to its end into a new file `dest`,
/// the way [`dir::create_atomic`] creates files (temp, fsync, rename, fsync
/// the directory), but streamed: a store's tail can be larger than memory
/// should hold.
fn copy_tail_atomic(src: &Path, from: u64, dest: &Path) -> Result<()> {
    let mut tmp = dest.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let copy = || -> io::Result<()> {
        use std::io::{Seek, SeekFrom};
        let mut input = File::open(src)?;
        input.seek(SeekFrom::Start(from))?;
        let mut output = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        io::copy(&mut input, &mut output)?;
        output.sync_all()
    };
    copy().map_err(|e| LogError::io("copying damaged bytes to", &tmp, e))?;
    fs::rename(&tmp, dest).map_err(|e| LogError::io("renaming into place", dest, e))?;
    dir::sync_dir(dest.parent().unwrap_or(Path::new(".")))
}

/// Creates `parent/quarantine/<stamp>/` (with `-1`, `-2`… appended if that
/// exists), durably, and returns it. `stamp` is a name such as a UTC time.
pub fn create_quarantine(parent: &Path, stamp: &str) -> Result<PathBuf> {
    let root = parent.join("quarantine");
    dir::create_dir(&root)?;
    for n in 0u32.. {
        let name = if n == 0 {
            stamp.to_string()
        } else {
            format!("{stamp}-{n}")
        };
        let path = root.join(name);
        match fs::create_dir(&path) {
            Ok(()) => {
                dir::sync_dir(&root)?;
                return Ok(path);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(LogError::io("creating directory", path, e)),
        }
    }
    unreachable!("u32 names run out only after four billion repairs in one second")
}

/// `YYYYMMDDTHHMMSSZ` for a time in seconds since the Unix epoch (UTC).
pub fn utc_stamp(unix_secs: u64) -> String {
    let (days, secs) = (unix_secs / 86_400, unix_secs % 86_400);
    // Howard Hinnant's days-to-civil, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    format!("{year:04}{month:02}{day:02}T{h:02}{m:02}{s:02}Z")
}
