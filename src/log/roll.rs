//! A segment roll's slow half, done off the append path. When the active
//! segment fills, the log starts the next one at once under temporary names
//! (`<base>.store.tmp`, `<base>.index.tmp`, headers written, nothing
//! fsynced) and appends go on into it. What makes the roll durable is left
//! in a [`Roll`], for whichever thread gets to it first:
//!
//! 1. fdatasync the full segment's store, trim and fsync its index;
//! 2. fsync the new files, rename them into place, fsync the directory.
//!
//! Done under the writer's lock, as it was, that was 7 to 15 ms every
//! 64 MiB with a snapshot writing beside it (`benches/engine.rs`,
//! `snapshot_with_writer`, under `no`), during which every write waited.
//!
//! The order is what recovery relies on: a segment is never named as the
//! last one's successor on disk before the last one's records are, so a
//! torn tail can only be the last segment's. A crash before step 2 leaves
//! the temporaries, which the next open deletes: the new segment's records
//! are lost, and none of them was acknowledged, because nothing in the new
//! segment counts as durable before its roll is finished: every sync of the
//! log finishes the roll first ([`SyncHandle`], [`super::Log::sync`]).
//!
//! At most one roll is unfinished: the next roll finishes it first.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::error::{LogError, Result};

/// The slow half of one roll; see the module doc. Shared between the log
/// and whichever threads may finish it; [`Roll::finish`] runs the steps
/// once, and every later call answers with how they went.
pub struct Roll {
    dir: PathBuf,
    state: Mutex<State>,
    /// Set once the steps ran, so that [`Roll::is_done`] never waits for
    /// the thread running them (it is asked under the writer's lock).
    done: AtomicBool,
}

enum State {
    Unfinished(Box<Steps>),
    Finished,
    /// How the steps failed: the log fences on it, whoever ran them.
    Failed {
        kind: io::ErrorKind,
        message: String,
    },
}

/// A file to make durable: a second handle on it, and its name.
pub struct Durable {
    pub file: File,
    pub path: PathBuf,
}

/// A file to make durable and then rename into place.
pub struct Created {
    pub file: Durable,
    pub final_path: PathBuf,
}

/// What a roll leaves to do, with its own handles on every file.
pub struct Steps {
    pub dir: PathBuf,
    pub full_store: Durable,
    pub full_index: Durable,
    /// The length the full segment's index is trimmed to (its entries).
    pub full_index_len: u64,
    pub new_store: Created,
    pub new_index: Created,
}

impl Roll {
    pub fn new(steps: Steps) -> Roll {
        Roll {
            dir: steps.dir.clone(),
            state: Mutex::new(State::Unfinished(Box::new(steps))),
            done: AtomicBool::new(false),
        }
    }

    /// Runs the steps, unless they ran already; either way answers with
    /// how they went. Blocks while another thread runs them.
    pub fn finish(&self) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let State::Unfinished(steps) = &*state {
            *state = match steps.run() {
                Ok(()) => State::Finished,
                Err(err) => State::Failed {
                    kind: kind_of(&err),
                    message: err.to_string(),
                },
            };
            self.done.store(true, Ordering::Release);
        }
        match &*state {
            State::Unfinished(_) => unreachable!("the steps just ran"),
            State::Finished => Ok(()),
            State::Failed { kind, message } => Err(LogError::io(
                "finishing a segment roll in",
                &self.dir,
                io::Error::new(*kind, message.clone()),
            )),
        }
    }

    /// Makes sure the steps never run after this returns (waiting for a
    /// thread running them): for a log dropped without closing, whose
    /// directory lock goes with it. Later calls to [`Roll::finish`] fail.
    pub fn abandon(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let State::Unfinished(_) = &*state {
            *state = State::Failed {
                kind: io::ErrorKind::Other,
                message: "the log was dropped before its segment roll finished".into(),
            };
            self.done.store(true, Ordering::Release);
        }
    }

    /// Whether [`Roll::finish`] would answer at once. Never blocks.
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

impl Steps {
    fn run(&self) -> Result<()> {
        sync_data(&self.full_store)?;
        self.full_index
            .file
            .set_len(self.full_index_len)
            .map_err(|e| LogError::io("trimming index", &self.full_index.path, e))?;
        sync_all(&self.full_index)?;
        for created in [&self.new_store, &self.new_index] {
            sync_all(&created.file)?;
            super::trace::rename(&created.file.path, &created.final_path)
                .map_err(|e| LogError::io("renaming into place", &created.final_path, e))?;
        }
        super::dir::sync_dir(&self.dir)
    }
}

fn kind_of(err: &LogError) -> io::ErrorKind {
    match err {
        LogError::Io { source, .. } => source.kind(),
        _ => io::ErrorKind::Other,
    }
}

// Appends may go on into the new store (and its index) while these run:
// the trace records the length from before each sync.
fn sync_data(durable: &Durable) -> Result<()> {
    super::trace::sync_data(&durable.file).map_err(|e| LogError::io("fsyncing", &durable.path, e))
}

fn sync_all(durable: &Durable) -> Result<()> {
    super::trace::sync_all(&durable.file).map_err(|e| LogError::io("fsyncing", &durable.path, e))
}

/// A handle through which another thread makes everything appended to the
/// log before it was taken durable: it finishes the roll that started the
/// active segment, if that is still unfinished, then fdatasyncs the active
/// store. Earlier segments were made durable by their own rolls.
pub struct SyncHandle {
    store: File,
    roll: Option<Arc<Roll>>,
}

impl SyncHandle {
    pub(super) fn new(store: File, roll: Option<Arc<Roll>>) -> SyncHandle {
        SyncHandle { store, roll }
    }

    /// The roll's error comes back as an `io::Error` of the same kind, its
    /// message naming the file and the step.
    pub fn sync_data(&self) -> io::Result<()> {
        if let Some(roll) = &self.roll {
            roll.finish()
                .map_err(|err| io::Error::new(kind_of(&err), err.to_string()))?;
        }
        super::trace::sync_data(&self.store)
    }
}
