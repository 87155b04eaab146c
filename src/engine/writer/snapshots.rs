//! The writer's side of snapshots: when one is due or asked for, starting
//! its thread at the offset every applied record lies below, answering its
//! request for the bound E, and taking its result back.

use std::sync::atomic::Ordering;

use tokio::sync::oneshot;
use tracing::warn;

use super::{Request, Writer};
use crate::engine::Shared;
use crate::engine::config::SnapshotStep;
use crate::engine::error::{EngineError, Result};
use crate::engine::snapshot::{self, SnapshotInfo};
use crate::log::Offset;

/// The snapshot thread's whole job: write the snapshot, then delete what it
/// supersedes, in the order that keeps every crash recoverable: the covered
/// segments (oldest first), then the older snapshots. Runs off the writer
/// thread: unlinking a large file can take tens of milliseconds, which would
/// otherwise stall every write queued behind it.
fn snapshot_and_clean_up(
    shared: &Shared,
    offset: Offset,
    writer: &flume::Sender<Request>,
) -> Result<SnapshotInfo> {
    let config = &shared.config;
    let step = |step| {
        if let Some(instrument) = &config.instrument {
            instrument.snapshot_step(step);
        }
    };
    // The writer applies records only between the requests it takes, so
    // whatever the copy saw was applied before it takes this one.
    let effects_below = || {
        let (reply, answer) = oneshot::channel();
        let gone =
            || EngineError::SnapshotFailed("the writer stopped before the snapshot was durable".into());
        writer
            .send(Request::SnapshotCopied { reply })
            .map_err(|_| gone())?;
        let (bound, unsynced) = answer.blocking_recv().map_err(|_| gone())??;
        if let Some(store) = unsynced {
            // Earlier segments were synced by their rolls; the handle
            // finishes the active segment's roll if it is still unfinished.
            store.sync_data().map_err(|e| {
                EngineError::io("fsyncing the log up to a snapshot's bound in", &config.dir, e)
            })?;
            if let Some(instrument) = &config.instrument {
                instrument.after_sync(bound);
            }
        }
        Ok(bound)
    };
    let info = snapshot::write(
        &config.dir,
        offset,
        &shared.table,
        config.clock.now_ms(),
        effects_below,
    )?;
    step(SnapshotStep::Durable);
    crate::log::remove_segments_below(&config.wal_dir(), offset)?;
    step(SnapshotStep::SegmentsRemoved);
    snapshot::remove_older(&config.dir, offset)?;
    step(SnapshotStep::OlderSnapshotsRemoved);
    Ok(info)
}

/// Gives the calling thread a lower CPU priority (nice 10): a snapshot is
/// background work, and on a machine with few cores a snapshot thread at the
/// writer's priority takes whole time slices from it and from the
/// connections, which is a write pause of milliseconds. A failure (a
/// sandbox that forbids it) leaves the priority as it was.
fn lower_priority() {
    // SAFETY: plain system calls on this thread's own id.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10) };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "could not lower the snapshot thread's priority");
    }
}

/// Tells the writer the snapshot thread is done, even if it dies on the way
/// (a panic drops this, and the writer hears of a failure rather than never).
struct SnapshotDone(Option<flume::Sender<Request>>);

impl SnapshotDone {
    fn send(mut self, result: Result<SnapshotInfo>) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(Request::SnapshotDone(result));
        }
    }
}

impl Drop for SnapshotDone {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let stopped = EngineError::SnapshotFailed("the snapshot thread stopped".into());
            let _ = tx.send(Request::SnapshotDone(Err(stopped)));
        }
    }
}

impl Writer {
    /// Starts the snapshots asked for whose commands are all applied (a
    /// second one while one runs is refused, as always).
    pub(super) fn start_requested_snapshots(&mut self) {
        // Fenced, nothing more is applied: each is answered with the fence.
        let applied_end = match self.shared.fenced.get() {
            Some(_) => Offset::MAX,
            None => self.applied_end,
        };
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.requested_snapshots)
            .into_iter()
            .partition(|(after, _)| *after <= applied_end);
        self.requested_snapshots = waiting;
        for (_, reply) in ready {
            self.start_snapshot(reply);
        }
    }

    /// Where the records applied so far end, and a handle to fdatasync
    /// them through if they may not all be durable. Under `always` they
    /// are (a batch in flight is not applied; the batch being assembled is
    /// not even appended).
    pub(super) fn snapshot_bound(&mut self) -> Result<(Offset, Option<crate::log::SyncHandle>)> {
        if let Some(err) = self.fenced_error() {
            return Err(err);
        }
        let unsynced = match self.unsynced {
            true => Some(self.log.sync_handle()?),
            false => None,
        };
        Ok((self.applied_end, unsynced))
    }

    pub(super) fn snapshot_due(&self) -> bool {
        let min_log_bytes = self.shared.snapshot_min_log_bytes.load(Ordering::Relaxed);
        let log_percent = self.shared.snapshot_log_percent.load(Ordering::Relaxed);
        let log_bytes = self.logged() - self.logged_at_last_snapshot;
        !self.snapshot_running
            && self.requested_snapshots.is_empty()
            && min_log_bytes > 0
            && log_bytes >= min_log_bytes
            && log_bytes.saturating_mul(100) >= self.last_snapshot_bytes.saturating_mul(log_percent)
    }

    /// Starts a snapshot in its own thread. Everything below its offset is
    /// fsynced first, whatever the policy, so the snapshot never covers a
    /// record that a crash could still take from the log.
    pub(super) fn start_snapshot(&mut self, reply: Option<oneshot::Sender<Result<SnapshotInfo>>>) {
        if self.snapshot_running {
            if let Some(reply) = reply {
                let _ = reply.send(Err(EngineError::SnapshotInProgress));
            }
            return;
        }
        if let Some(err) = self.fenced_error() {
            if let Some(reply) = reply {
                let _ = reply.send(Err(err));
            }
            return;
        }
        // Everything below the snapshot's offset must be durable before the
        // snapshot is: the snapshot thread fdatasyncs the active store through
        // its own handle (which finishes an unfinished roll first; earlier
        // segments were made durable by their rolls), so
        // writes do not wait for that flush.
        let active_store = match self.log.sync_handle() {
            Ok(file) => file,
            Err(err) => {
                self.fence(err.into());
                return;
            }
        };
        let Some(tx) = self.tx.upgrade() else { return };
        // Not the log's end: a batch in flight is appended but not applied,
        // and the copy must hold every record below its offset.
        let offset = self.applied_end;
        self.logged_at_last_snapshot = self.logged();
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new()
            .name("walkv-snapshot".into())
            .spawn(move || {
                lower_priority();
                let done = SnapshotDone(Some(tx.clone()));
                let result = active_store
                    .sync_data()
                    .map_err(|e| {
                        EngineError::io("fsyncing the log before a snapshot in", &shared.config.dir, e)
                    })
                    .and_then(|()| snapshot_and_clean_up(&shared, offset, &tx));
                done.send(result);
            });
        match spawned {
            Ok(handle) => {
                self.snapshot_thread = Some(handle);
                self.snapshot_running = true;
                self.shared.snapshot_running.store(true, Ordering::Relaxed);
                self.snapshot_waiters.extend(reply);
            }
            Err(e) => {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(EngineError::io(
                        "spawning snapshot thread for",
                        &self.shared.config.dir,
                        e,
                    )));
                }
            }
        }
    }

    /// The snapshot thread is done: its file is durable and the segments and
    /// snapshots it supersedes are deleted (or it failed). The log drops its
    /// handles on those segments; a failed unlink or fsync fences.
    pub(super) fn finish_snapshot(&mut self, result: Result<SnapshotInfo>) {
        // It has sent its result and is about to exit (or unwinding a panic).
        if let Some(handle) = self.snapshot_thread.take() {
            let _ = handle.join();
        }
        if let Ok(info) = &result {
            self.log.forget_below(info.offset);
        }
        if let Err(err @ (EngineError::Io { .. } | EngineError::Log(_))) = &result {
            self.fence(EngineError::SnapshotFailed(err.to_string()));
        }
        self.snapshot_running = false;
        self.shared.snapshot_running.store(false, Ordering::Relaxed);
        match &result {
            Ok(info) => {
                self.last_snapshot_bytes = info.bytes;
                *self
                    .shared
                    .last_snapshot
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(info.clone());
            }
            Err(err) => warn!(error = %err, "snapshot failed"),
        }
        self.publish_stats();
        for waiter in self.snapshot_waiters.drain(..) {
            let _ = waiter.send(match &result {
                Ok(info) => Ok(info.clone()),
                Err(err) => Err(EngineError::SnapshotFailed(err.to_string())),
            });
        }
    }
}
