//! Simulating a power cut from walkvd's durability trace (`durability-trace`
//! builds; see `src/log/trace.rs` for the lines).
//!
//! After a SIGKILL the page cache still holds everything walkvd wrote; a
//! power cut would have kept only what was made durable. The model:
//!
//! - **File contents.** A file keeps the length of its last recorded fsync
//!   (or its length when this run of walkvd started: the harness treats the
//!   image it starts from as durable). For stores, whose bytes past that are
//!   appends nobody was promised, the cut also varies: sometimes a random
//!   prefix of the unsynced bytes survives, sometimes that prefix is followed
//!   by zeros up to the old length (the size reached the disk, the data did
//!   not). Other files (indexes, snapshots) are cut at the synced length.
//! - **Names.** A directory's entries are what they were at its last
//!   recorded directory fsync. Renames and unlinks since then are lost,
//!   or, in half of the cases, a random prefix of them survives (a
//!   journalling filesystem commits metadata in order). A removed file comes
//!   back from the hard link the trace kept in its graveyard; a renamed file
//!   goes back to its old name (or its old target comes back).
//! - **Temporary files.** A file created but never renamed into place
//!   (`.tmp`) vanishes, whether or not a later directory fsync made its name
//!   durable (the next open deletes such leftovers anyway), except the store
//!   of an unfinished segment roll (`<base>.store.tmp`, see `log::roll`):
//!   half the time its name survives, with its bytes cut like a store's,
//!   from its last recorded fsync (none: from 0, header included), and the
//!   next open adopts or deletes it.
//! - **Not modelled**: a shrink (torn-tail cut)
//!   whose fsync was not recorded is kept; directories themselves (`wal/`)
//!   always survive; the `LOCK` file is left alone.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::daemon::files_in;
use crate::rng::Rng;

/// The files of the data directories when a run of walkvd started: all
/// durable by assumption.
#[derive(Debug, Default, Clone)]
pub struct Manifest {
    pub names: BTreeMap<PathBuf, u64>,
    pub lens: HashMap<u64, u64>,
}

pub fn manifest(dirs: &[PathBuf]) -> Result<Manifest> {
    let mut m = Manifest::default();
    for dir in dirs {
        for path in files_in(dir) {
            if is_lock(&path) {
                continue;
            }
            let meta = fs::metadata(&path)?;
            m.names.insert(path, meta.ino());
            m.lens.insert(meta.ino(), meta.len());
        }
    }
    Ok(m)
}

fn is_lock(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == "LOCK")
}

#[derive(Debug, Clone)]
pub enum Event {
    /// `by_handle`: an fdatasync through a second handle (the snapshot
    /// thread's), whose length was taken before the sync; it may be
    /// recorded after a later, longer sync of the writer's.
    Sync {
        ino: u64,
        len: u64,
        by_handle: bool,
    },
    DirSync {
        dir: PathBuf,
    },
    Rename {
        ino: u64,
        from: PathBuf,
        to: PathBuf,
    },
    Unlink {
        path: PathBuf,
    },
}

pub fn read_trace(trace: &Path) -> Result<Vec<Event>> {
    let text = match fs::read_to_string(trace) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).context("reading the durability trace"),
    };
    let mut events = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let num = |i: usize| -> Result<u64> {
            f.get(i)
                .and_then(|s| s.parse().ok())
                .with_context(|| format!("bad trace line {line:?}"))
        };
        let path = |i: usize| -> Result<PathBuf> {
            f.get(i)
                .map(PathBuf::from)
                .with_context(|| format!("bad trace line {line:?}"))
        };
        events.push(match f[0] {
            "sync" => Event::Sync {
                ino: num(1)?,
                len: num(2)?,
                by_handle: f.get(3) == Some(&"-"),
            },
            "dirsync" => Event::DirSync { dir: path(1)? },
            "rename" => Event::Rename {
                ino: num(1)?,
                from: path(2)?,
                to: path(3)?,
            },
            "unlink" => Event::Unlink { path: path(2)? },
            _ => bail!("unknown trace line {line:?}"),
        });
    }
    Ok(events)
}

/// The length of each file (by inode) as of its last recorded fsync. A
/// sync through the file's own handle sets it (it may shrink: a torn tail
/// cut at open); a sync through a second handle only extends it.
pub fn synced_lens(start: &Manifest, events: &[Event]) -> HashMap<u64, u64> {
    let mut lens = start.lens.clone();
    for e in events {
        if let Event::Sync { ino, len, by_handle } = e {
            let durable = lens.entry(*ino).or_insert(0);
            *durable = if *by_handle { (*durable).max(*len) } else { *len };
        }
    }
    lens
}

/// What a power cut did, for the campaign's log.
#[derive(Debug, Default)]
pub struct Cut {
    pub bytes_dropped: u64,
    pub names_reverted: usize,
    pub files_cut: usize,
    /// Unfinished rolls' stores whose names survived.
    pub unfinished_kept: usize,
}

fn parent(p: &Path) -> PathBuf {
    p.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The names that survive: each directory as of its last fsync, plus a
/// random prefix of what followed in half the cases.
fn durable_names(start: &Manifest, events: &[Event], rng: &mut Rng) -> (BTreeMap<PathBuf, u64>, usize) {
    let mut current = start.names.clone();
    let mut durable = start.names.clone();
    let mut pending: BTreeMap<PathBuf, Vec<&Event>> = BTreeMap::new();
    for e in events {
        match e {
            Event::Sync { .. } => {}
            Event::Rename { ino, from, to } => {
                current.remove(from);
                current.insert(to.clone(), *ino);
                pending.entry(parent(to)).or_default().push(e);
            }
            Event::Unlink { path } => {
                current.remove(path);
                pending.entry(parent(path)).or_default().push(e);
            }
            Event::DirSync { dir } => {
                durable.retain(|p, _| parent(p) != *dir);
                durable.extend(
                    current
                        .iter()
                        .filter(|(p, _)| parent(p) == *dir)
                        .map(|(p, i)| (p.clone(), *i)),
                );
                pending.remove(dir);
            }
        }
    }
    let mut reverted = 0;
    for ops in pending.values() {
        let keep = if rng.below(2) == 0 {
            0
        } else {
            rng.below(ops.len() as u64 + 1) as usize
        };
        reverted += ops.len() - keep;
        for e in &ops[..keep] {
            match e {
                Event::Rename { ino, from, to } => {
                    durable.remove(from);
                    durable.insert(to.clone(), *ino);
                }
                Event::Unlink { path } => {
                    durable.remove(path);
                }
                _ => {}
            }
        }
    }
    (durable, reverted)
}

/// Replaces the data directories with what a power cut at the moment of
/// the kill would have left. `trace` is this run's trace file; it and its
/// graveyard are removed afterwards.
pub fn simulate(trace: &Path, start: &Manifest, dirs: &[PathBuf], work: &Path, rng: &mut Rng) -> Result<Cut> {
    let events = read_trace(trace)?;
    let lens = synced_lens(start, &events);
    let (mut durable, names_reverted) = durable_names(start, &events, rng);
    let mut unfinished_kept = 0;
    let graveyard = walkv::log::trace::graveyard_of(trace);
    // The store of an unfinished roll was created without a directory
    // fsync: whether its name reached the disk is up to the file system's
    // own journal commits. Half the time it did (the next open adopts or
    // deletes it, see walkv::log::roll).
    for path in dirs.iter().flat_map(|d| files_in(d)) {
        if is_unfinished_store(&path) && !durable.contains_key(&path) && rng.below(2) == 0 {
            let ino = fs::metadata(&path)?.ino();
            durable.insert(path, ino);
            unfinished_kept += 1;
        }
    }

    // Where each inode's bytes are now: its current name or the graveyard.
    let mut content: HashMap<u64, PathBuf> = HashMap::new();
    for path in dirs.iter().chain([&graveyard]).flat_map(|d| files_in(d)) {
        content.insert(fs::metadata(&path)?.ino(), path);
    }
    let stage = work.join("powerloss-stage");
    let _ = fs::remove_dir_all(&stage);
    fs::create_dir_all(&stage)?;
    for ino in durable.values() {
        let Some(src) = content.get(ino) else {
            bail!("harness lost track of inode {ino}: neither in the data directory nor in the graveyard");
        };
        let staged = stage.join(ino.to_string());
        if !staged.exists() {
            fs::hard_link(src, &staged).with_context(|| format!("staging {}", src.display()))?;
        }
    }
    for path in dirs.iter().flat_map(|d| files_in(d)) {
        if !is_lock(&path) {
            fs::remove_file(&path)?;
        }
    }
    let mut cut = Cut {
        names_reverted,
        unfinished_kept,
        ..Cut::default()
    };
    for (path, ino) in &durable {
        fs::rename(stage.join(ino.to_string()), path)
            .with_context(|| format!("restoring {}", path.display()))?;
        let target = lens.get(ino).copied().unwrap_or(0);
        cut_file(path, target, rng, &mut cut)?;
    }
    fs::remove_dir_all(&stage)?;
    let _ = fs::remove_dir_all(&graveyard);
    if std::env::var_os("CRASHTEST_KEEP_TRACES").is_some() {
        let mut kept = trace.as_os_str().to_owned();
        kept.push(".done");
        fs::rename(trace, PathBuf::from(kept))?;
    }
    let _ = fs::remove_file(trace);
    Ok(cut)
}

/// `<base>.store.tmp`: a store whose roll was not finished.
fn is_unfinished_store(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".store.tmp"))
}

/// Cuts `path` back to `target` bytes, the durable length; for a store,
/// sometimes keeps part of the rest, or zeros it.
fn cut_file(path: &Path, target: u64, rng: &mut Rng, cut: &mut Cut) -> Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    let len = file.metadata()?.len();
    if len <= target {
        return Ok(());
    }
    cut.files_cut += 1;
    let is_store = path.extension().is_some_and(|e| e == "store") || is_unfinished_store(path);
    let kept = if is_store && rng.below(2) == 0 {
        rng.between(target, len)
    } else {
        target
    };
    if is_store && rng.below(3) == 0 {
        // The size reached the disk, the data past `kept` did not.
        file.write_all_at(&vec![0u8; (len - kept) as usize], kept)?;
    } else {
        file.set_len(kept)?;
    }
    cut.bytes_dropped += len - kept;
    Ok(())
}
