//! Damage a crash could leave at the end of the log (`torn`), and damage it
//! could not (`corrupt`).

use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::daemon::files_in;
use crate::powerloss::{self, Manifest};
use crate::rng::Rng;

/// The last store of the log (the active segment's), if any: the store
/// of an unfinished roll (`<base>.store.tmp`, see `walkv::log::roll`) when
/// there is one, since its base is above every named store's.
pub fn last_store(wal: &Path) -> Option<PathBuf> {
    let listing = walkv::log::dir::list(wal).ok()?;
    match listing.unfinished_roll {
        Some(base) => Some(walkv::log::dir::temp_path(&walkv::log::dir::store_path(
            wal, base,
        ))),
        None => last_named_store(wal),
    }
}

/// The last store that bears its name (not an unfinished roll's).
pub fn last_named_store(wal: &Path) -> Option<PathBuf> {
    files_in(wal)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "store"))
        .max()
}

/// Damages the tail of the last store past its last fsync (which covers
/// every acknowledged record): cuts it, zero-fills it, or scribbles over
/// it, always to the end of the file so that no valid record follows the
/// damage (that would be the out-of-order case walkvd refuses by design,
/// docs/format.md §5.5). Returns what was done.
pub fn tear_tail(wal: &Path, trace: &Path, start: &Manifest, rng: &mut Rng) -> Result<String> {
    let events = powerloss::read_trace(trace)?;
    let lens = powerloss::synced_lens(start, &events);
    let _ = std::fs::remove_dir_all(walkv::log::trace::graveyard_of(trace));
    let _ = std::fs::remove_file(trace);
    let Some(store) = last_store(wal) else {
        return Ok("no store yet".into());
    };
    let file = OpenOptions::new().read(true).write(true).open(&store)?;
    let meta = file.metadata()?;
    let len = meta.len();
    // An unfinished roll's store may never have been fsynced: none of it
    // is durable, its header included.
    let unfinished = store.extension().is_some_and(|e| e == "tmp");
    let durable = match lens.get(&meta.ino()) {
        Some(&synced) => synced.min(len),
        None if unfinished => 0,
        None => anyhow::bail!("no fsync recorded for {}", store.display()),
    };
    let at = rng.between(durable, len);
    let extra = rng.below(64);
    let name = store
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    Ok(match rng.below(3) {
        0 => {
            file.set_len(at)?;
            format!("{name}: cut at {at} (durable {durable}, was {len})")
        }
        1 => {
            let end = len + extra;
            file.write_all_at(&vec![0u8; (end - at) as usize], at)?;
            format!("{name}: zeros over {at}..{end} (durable {durable})")
        }
        _ => {
            let end = (len + extra).max(at + 1);
            let junk: Vec<u8> = (at..end).map(|_| rng.next_u64() as u8).collect();
            file.write_all_at(&junk, at)?;
            format!("{name}: scribbled {at}..{end} (durable {durable})")
        }
    })
}
