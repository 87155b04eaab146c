//! The writer: the single owner of the log, and so of the order of all
//! mutations. It lives behind a lock ([`Locked`]); whoever holds the lock
//! holds the log.
//!
//! Callers take the lock and run their commands on their own thread
//! ([`Writer::run_now`]): each is computed against the latest state, and the
//! records of all of them are appended with one write. Handing commands to
//! a thread and back costs more than the work itself (two wake-ups, often
//! two context switches, per batch; measured in `docs/benchmarks.md`).
//!
//! - Under `everysec` and `no` the batch is then applied and answered at
//!   once ([`Writer::execute_now`]).
//! - Under `always` ([`Writer::start_now`]) the batch's fsync runs on the
//!   fsync thread ([`fsync`]), and the batch is applied and answered only
//!   when it returned. Commands that come while an fsync is in flight form
//!   the next batch: that is group commit, and it is why throughput grows
//!   with the number of concurrent writers. When an fsync returns, the fsync
//!   thread itself takes the lock, appends the next batch, applies and
//!   answers the one just made durable ([`Writer::synced`]), then fsyncs the
//!   next: no third thread wakes between a batch's fsync and its callers.
//!   Only one batch is in flight, and nothing is appended while it is.
//!
//! The writer thread ([`run`]) keeps the rest: pipelines, which it batches
//! with other connections' (`Engine::run_deferred` says why), the ticks
//! (the everysec fsync, made without the lock, active expiry, automatic
//! snapshots), snapshots, lazy expiry, pings and close, and it finishes
//! each segment roll without the lock (its fsyncs and renames, see
//! [`crate::log::roll`]); every sync, on any thread, finishes it first if
//! it has not.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tracing::error;

use super::Shared;
use super::command::{Command, Outcome};
use super::config::FsyncPolicy;
use super::effects::{Effects, Pending};
use super::error::{EngineError, Result};
use super::mutation::Mutation;
use super::snapshot::SnapshotInfo;
use crate::log::{Log, Offset, SyncHandle};

mod fsync;
mod snapshots;
use fsync::{FsyncThread, Job, Synced};

/// How often the writer wakes when idle: the everysec fsync, active expiry
/// and the automatic snapshot check run at this pace.
const TICK: Duration = Duration::from_millis(100);
/// The active expiry sampler examines shards in steps of this many, up to
/// the maximum per tick or until its time budget is spent (Redis gives its
/// slow cycle 25% of a tick; this is 1%), so a sweep of the whole table takes
/// at least SHARDS / max × TICK (1.6 s) and never stalls writes for long.
const EXPIRY_SHARDS_PER_STEP: usize = 16;
const EXPIRY_MAX_SHARDS_PER_TICK: usize = 256;
const EXPIRY_BUDGET: Duration = Duration::from_millis(1);

/// The writer behind the lock that callers take to run their commands on
/// their own thread ([`Writer::run_now`]), the fsync thread to hand over a
/// sync's result, and the writer thread for everything else. `None` once
/// closed.
pub type Locked = Mutex<Option<Writer>>;

/// Takes the lock. A thread that panicked while it held it (in a command's
/// compute, say) left the batch being assembled and the overlay half done:
/// the first to find the lock poisoned fences the writer, and every caller
/// waiting, or coming later, gets the error. (Before the writer lived
/// behind a lock, such a panic ended its thread and callers got `Closed`.)
pub fn lock(writer: &Locked) -> MutexGuard<'_, Option<Writer>> {
    match writer.lock() {
        Ok(guard) => guard,
        Err(poisoned) => {
            let mut guard = poisoned.into_inner();
            writer.clear_poison();
            if let Some(w) = guard.as_mut() {
                w.fence(EngineError::WriterPanicked);
                w.direct_answers.clear();
            }
            guard
        }
    }
}

/// What a caller gets back for a command.
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    pub outcome: Outcome,
    /// The record written for it, if it changed anything.
    pub offset: Option<Offset>,
}

/// Where a command's answer is, for a caller that ran it under the lock.
pub enum Answer {
    /// Under `everysec` and `no`: written, applied, answered.
    Done(Result<Ack>),
    /// Comes once durable and applied: under `always` when its batch's
    /// fsync returned; for a pipeline, from the writer thread.
    Durable(oneshot::Receiver<Result<Ack>>),
}

pub enum Request {
    /// Work whose caller does not wait (lazy expiry).
    Execute(Command),
    /// A pipeline's writes, each answered on its own channel once durable
    /// (see [`super::api`]'s `run_deferred` for why they come this way).
    Pipeline(Vec<(Command, oneshot::Sender<Result<Ack>>)>),
    Snapshot {
        reply: Option<oneshot::Sender<Result<SnapshotInfo>>>,
    },
    /// From the snapshot thread once its copy is done: where the records
    /// applied so far end (the snapshot's `E`, see [`super::snapshot`]),
    /// and a handle on the active store if some of them may not be durable
    /// yet, for the snapshot thread to fdatasync (not the writer: under
    /// `no` that can be seconds of writes, and every write would wait).
    SnapshotCopied {
        reply: oneshot::Sender<Result<(Offset, Option<SyncHandle>)>>,
    },
    SnapshotDone(Result<SnapshotInfo>),
    Close {
        reply: oneshot::Sender<Result<()>>,
    },
    /// A segment roll to finish: sent by whoever rolled the log, so that
    /// the writer thread does the roll's fsyncs without the lock (see
    /// [`crate::log::roll`]).
    FinishRoll,
    /// Answered as soon as it is taken from the queue (a watchdog's probe).
    Ping {
        reply: oneshot::Sender<()>,
    },
}

struct Waiting {
    reply: ReplyTo,
    answer: Result<Ack>,
}

/// Where a command's answer goes.
enum ReplyTo {
    /// Fire-and-forget work (lazy expiry).
    Nobody,
    /// A caller waiting on a channel: for its batch's fsync
    /// ([`Writer::start_now`]), or for a pipeline's answers.
    Caller(oneshot::Sender<Result<Ack>>),
    /// A caller holding the writer's lock ([`Writer::execute_now`]), in
    /// [`Writer::direct_answers`].
    Direct,
}

impl ReplyTo {
    fn send(self, answer: Result<Ack>, direct_answers: &mut Vec<Result<Ack>>) {
        match self {
            ReplyTo::Nobody => {}
            ReplyTo::Caller(reply) => {
                let _ = reply.send(answer);
            }
            ReplyTo::Direct => direct_answers.push(answer),
        }
    }
}

/// What the writer wakes up for.
enum Event {
    Request(Request),
    Synced(Synced),
    /// Nothing for a tick.
    Idle,
    /// Every handle is gone.
    Gone,
}

/// Where a batch just appended stands.
enum Durability {
    /// As durable as the policy promises: apply it and answer.
    AsPromised,
    /// Its fsync runs on the fsync thread.
    InFlight,
}

/// A batch written to the log, to apply and answer once it is durable.
struct Batch {
    waiting: Vec<Waiting>,
    mutations: Vec<(Offset, Mutation)>,
    /// The log's next offset after it.
    end: Offset,
}

pub struct Writer {
    log: Log,
    shared: Arc<Shared>,
    rx: flume::Receiver<Request>,
    /// To hand the snapshot thread a way back; weak so that the channel
    /// closes when every `Engine` handle is gone.
    tx: flume::WeakSender<Request>,
    pending: Pending,
    /// The batch being assembled: callers, records to append, and the
    /// mutations to apply once they are durable.
    waiting: Vec<Waiting>,
    payloads: Vec<Vec<u8>>,
    mutations: Vec<(Offset, Mutation)>,
    /// Under `always`: the batch being fsynced by the fsync thread.
    in_flight: Option<Batch>,
    /// Answers for a caller holding the lock ([`Writer::execute_now`]), in
    /// the order of its commands.
    direct_answers: Vec<Result<Ack>>,
    /// Pings that came while a batch was in flight, answered with it.
    pings: Vec<oneshot::Sender<()>>,
    /// Snapshots asked for, each to start once every record below its
    /// offset is applied.
    requested_snapshots: Vec<(Offset, Option<oneshot::Sender<Result<SnapshotInfo>>>)>,
    fsync_thread: Option<FsyncThread>,
    /// Where this writer lives, for the fsync thread to hand it its results.
    cell: Weak<Locked>,
    /// The fsync thread's answers when it cannot hand them over (see [`fsync`]).
    synced_tx: flume::Sender<Synced>,
    synced_rx: flume::Receiver<Synced>,
    /// A handle on the active store for the fsync thread, and the base of
    /// the segment it belongs to.
    sync_handle: Option<(Offset, Arc<SyncHandle>)>,
    /// Every record below this offset is applied to the table.
    applied_end: Offset,
    last_sync: Instant,
    unsynced: bool,
    last_tick: Instant,
    expiry_cursor: usize,
    snapshot_waiters: Vec<oneshot::Sender<Result<SnapshotInfo>>>,
    snapshot_running: bool,
    /// Joined when the snapshot reports back, so that its hold on the shared
    /// state (and with it the data directory's lock) ends before the writer
    /// does: a reopen right after a drop must not find the directory locked.
    snapshot_thread: Option<std::thread::JoinHandle<()>>,
    /// Size of the last snapshot, for the automatic trigger.
    last_snapshot_bytes: u64,
    /// Log bytes written up to the start of the last snapshot (counting what
    /// the log held at open as written), so the trigger measures what was
    /// logged since; the log's size cannot shrink below its active segment,
    /// so it would fire again and again.
    logged_at_last_snapshot: u64,
    logged_at_open: u64,
}

impl Writer {
    pub fn new(
        log: Log,
        shared: Arc<Shared>,
        rx: flume::Receiver<Request>,
        tx: flume::WeakSender<Request>,
        last_snapshot_bytes: u64,
        cell: Weak<Locked>,
    ) -> Writer {
        let logged_at_open = log.total_bytes();
        let applied_end = log.next_offset();
        let (synced_tx, synced_rx) = flume::unbounded();
        Writer {
            log,
            shared,
            rx,
            tx,
            pending: Pending::default(),
            waiting: Vec::new(),
            payloads: Vec::new(),
            mutations: Vec::new(),
            in_flight: None,
            direct_answers: Vec::new(),
            pings: Vec::new(),
            requested_snapshots: Vec::new(),
            fsync_thread: None,
            cell,
            synced_tx,
            synced_rx,
            sync_handle: None,
            applied_end,
            last_sync: Instant::now(),
            unsynced: false,
            last_tick: Instant::now(),
            expiry_cursor: 0,
            snapshot_waiters: Vec::new(),
            snapshot_running: false,
            snapshot_thread: None,
            last_snapshot_bytes,
            logged_at_last_snapshot: 0,
            logged_at_open,
        }
    }

    /// Takes `first` and every request queued behind it (up to a batch) into
    /// the batch, and commits it; `Some` when one was `Close`.
    fn take_requests(&mut self, first: Request) -> Option<oneshot::Sender<Result<()>>> {
        let mut next = Some(first);
        while let Some(request) = next {
            if let Some(reply) = self.handle(request) {
                return Some(reply);
            }
            if let Ok(synced) = self.synced_rx.try_recv() {
                self.synced(synced);
            }
            next = if self.waiting.len() < self.shared.config.max_batch_commands {
                self.rx.try_recv().ok()
            } else {
                None
            };
        }
        self.commit();
        None
    }

    /// Takes one request into the batch; answers `Some` when it is `Close`.
    fn handle(&mut self, request: Request) -> Option<oneshot::Sender<Result<()>>> {
        match request {
            Request::Execute(command) => self.compute(command, ReplyTo::Nobody),
            Request::Pipeline(commands) => {
                for (command, reply) in commands {
                    self.compute(command, ReplyTo::Caller(reply));
                }
            }
            Request::Snapshot { reply } => {
                // It holds every command taken before it: those in flight
                // or still being assembled are applied first.
                self.commit();
                let after = self.log.next_offset() + self.payloads.len() as u64;
                self.requested_snapshots.push((after, reply));
                self.start_requested_snapshots();
            }
            Request::SnapshotCopied { reply } => {
                let _ = reply.send(self.snapshot_bound());
            }
            Request::SnapshotDone(result) => {
                self.commit();
                self.finish_snapshot(result);
            }
            Request::Close { reply } => {
                self.commit();
                return Some(reply);
            }
            // While an fsync is in flight, a ping waits for it: a disk that
            // hangs must stop the watchdog, as it stops every write.
            Request::Ping { reply } if self.in_flight.is_some() => self.pings.push(reply),
            Request::Ping { reply } => {
                let _ = reply.send(());
            }
            // The loop in `run` finishes it, once the lock is let go.
            Request::FinishRoll => {}
        }
        None
    }

    /// Asks the writer thread to finish the roll the last append started.
    /// A full queue means it is about to run anyway, and it looks for an
    /// unfinished roll after whatever it takes.
    fn wake_for_roll(&self) {
        if let Some(tx) = self.tx.upgrade() {
            let _ = tx.try_send(Request::FinishRoll);
        }
    }

    /// A roll was finished without the lock: the log takes note, and a
    /// failure fences, as a failed fsync does.
    fn roll_finished(&mut self) {
        if let Err(err) = self.log.settle_roll() {
            self.fence(err.into());
        }
    }

    fn fenced_error(&self) -> Option<EngineError> {
        self.shared
            .fenced
            .get()
            .map(|cause| EngineError::Fenced { cause: cause.clone() })
    }

    /// Runs `commands` as one batch for a caller that holds the lock, as
    /// [`Writer::execute_now`] or [`Writer::start_now`] as the policy says.
    /// Either may make the automatic snapshot due.
    pub fn run_now(&mut self, commands: impl IntoIterator<Item = Command>, answers: &mut Vec<Answer>) {
        if self.shared.config.fsync == FsyncPolicy::Always {
            self.start_now(commands, answers);
        } else {
            self.execute_now(commands, answers);
        }
        if self.snapshot_due() {
            self.start_snapshot(None);
        }
    }

    /// Runs `commands` as one batch on the caller's thread, for a caller
    /// that holds the lock under `everysec` or `no`: each is computed, all
    /// are appended with one write, applied and answered into `answers` in
    /// order, with no hand-off to the writer thread and back. The thread
    /// commits whatever it takes before it lets go of the lock, so no batch
    /// of its is half-assembled here.
    fn execute_now(&mut self, commands: impl IntoIterator<Item = Command>, answers: &mut Vec<Answer>) {
        debug_assert!(self.in_flight.is_none() && self.waiting.is_empty());
        for command in commands {
            self.compute(command, ReplyTo::Direct);
        }
        self.commit();
        answers.extend(self.direct_answers.drain(..).map(Answer::Done));
    }

    /// Under `always`, for a caller that holds the lock: computes `commands`
    /// into the batch being assembled, and appends it and starts its fsync
    /// unless one is in flight (then [`Writer::synced`] does, on the fsync
    /// thread). Each answer comes on its receiver once its batch is durable
    /// and applied.
    fn start_now(&mut self, commands: impl IntoIterator<Item = Command>, answers: &mut Vec<Answer>) {
        for command in commands {
            let (reply, answer) = oneshot::channel();
            self.compute(command, ReplyTo::Caller(reply));
            answers.push(Answer::Durable(answer));
        }
        self.commit();
    }

    fn compute(&mut self, command: Command, reply: ReplyTo) {
        if let Some(err) = self.fenced_error() {
            reply.send(Err(err), &mut self.direct_answers);
            return;
        }
        let lsn = self.log.next_offset() + self.payloads.len() as u64;
        self.pending.begin();
        let mut effects = Effects {
            table: &self.shared.table,
            pending: &mut self.pending,
            now_ms: self.shared.config.clock.now_ms(),
            lsn,
            max_value_bytes: self.shared.max_value_bytes.load(Ordering::Relaxed) as usize,
            out: Vec::new(),
        };
        let outcome = effects.execute(command);
        let mut out = effects.out;
        let offset = match out.len() {
            0 => None,
            n => {
                let mutation = if n == 1 {
                    out.pop().expect("one")
                } else {
                    Mutation::Batch(out)
                };
                let payload = mutation.encode();
                let max = self.log.config().max_record_bytes;
                if payload.len() > max as usize {
                    // Refuse this command alone; the rest of the batch and
                    // the engine carry on. Answered with the batch: the size
                    // it names may depend on state not yet durable.
                    self.pending.rollback();
                    self.waiting.push(Waiting {
                        reply,
                        answer: Err(EngineError::RecordTooLarge {
                            len: payload.len(),
                            max,
                        }),
                    });
                    return;
                }
                self.payloads.push(payload);
                self.mutations.push((lsn, mutation));
                Some(lsn)
            }
        };
        self.waiting.push(Waiting {
            reply,
            answer: Ok(Ack { outcome, offset }),
        });
    }

    /// Makes the batch durable per the policy, then visible, then answered.
    /// Under `always` with a batch in flight, it waits: [`Writer::synced`]
    /// calls it again.
    fn commit(&mut self) {
        if self.waiting.is_empty() || self.in_flight.is_some() {
            return;
        }
        let first = self.mutations.first().map(|(lsn, _)| *lsn);
        let batch = Batch {
            waiting: std::mem::take(&mut self.waiting),
            mutations: std::mem::take(&mut self.mutations),
            end: self.log.next_offset() + self.payloads.len() as u64,
        };
        if self.payloads.is_empty() {
            // Nothing to write: what these commands saw is already applied.
            self.answer(batch);
            return;
        }
        match self.write_batch(first) {
            Err(err) => {
                self.fence(err);
                self.fail(batch.waiting);
            }
            Ok(Durability::InFlight) => self.in_flight = Some(batch),
            Ok(Durability::AsPromised) => self.answer(batch),
        }
    }

    /// Applies a batch that is as durable as the policy promises, and
    /// answers its callers.
    fn answer(&mut self, batch: Batch) {
        for (lsn, mutation) in batch.mutations {
            self.shared.table.apply(&mutation, lsn);
        }
        self.applied_end = self.applied_end.max(batch.end);
        self.pending.retire(self.applied_end);
        self.shared
            .commands
            .fetch_add(batch.waiting.len() as u64, Ordering::Relaxed);
        // Before the acks, so that no caller can see stats older than its ack.
        self.publish_stats();
        for waiting in batch.waiting {
            waiting.reply.send(waiting.answer, &mut self.direct_answers);
        }
    }

    /// The fsync thread is done with the batch in flight (this runs on it).
    /// The next batch is appended and its job queued first, then this one
    /// is answered.
    fn synced(&mut self, synced: Synced) {
        for ping in self.pings.drain(..) {
            let _ = ping.send(());
        }
        let Some(batch) = self.in_flight.take() else {
            return; // fenced meanwhile: its callers were told
        };
        if let Err(err) = self.log.record_sync(synced.result, synced.took) {
            self.fence(err.into());
            self.fail(batch.waiting);
            return;
        }
        self.last_sync = Instant::now();
        if let Some(instrument) = &self.shared.config.instrument {
            instrument.after_sync(batch.end);
        }
        if !self.payloads.is_empty() {
            self.commit();
        }
        self.answer(batch);
        // A batch that wrote nothing is answered only now: it may have seen
        // state of the one just applied, and its callers may read next.
        self.commit();
        self.start_requested_snapshots();
    }

    /// Appends the batch; makes it durable now, or starts its fsync on the
    /// fsync thread, as the policy says.
    fn write_batch(&mut self, first: Option<Offset>) -> Result<Durability> {
        let base = self.log.active_base();
        let range = self.log.append_batch(&self.payloads)?;
        self.payloads.clear();
        if self.log.active_base() != base {
            self.wake_for_roll();
        }
        assert_eq!(
            Some(range.start),
            first,
            "records got the offsets they were computed for"
        );
        match self.shared.config.fsync {
            // The fault answers before the fsync: a broken daemon the crash
            // harness must catch (test builds only; see log::trace).
            FsyncPolicy::Always if crate::log::trace::fault("ack-before-fsync") => {
                self.unsynced = true;
                Ok(Durability::AsPromised)
            }
            FsyncPolicy::Always => self.start_sync().map(|()| Durability::InFlight),
            // Under `everysec` the writer thread's tick fsyncs, outside the
            // lock: a write never waits for the disk.
            FsyncPolicy::EverySec | FsyncPolicy::No => {
                self.unsynced = true;
                Ok(Durability::AsPromised)
            }
        }
    }

    /// A handle to make the log durable from another thread: it finishes
    /// the active segment's roll if need be, then fdatasyncs the active
    /// store (earlier segments were made durable by their rolls).
    fn active_handle(&mut self) -> Result<Arc<SyncHandle>> {
        let base = self.log.active_base();
        Ok(match &self.sync_handle {
            Some((b, file)) if *b == base => file.clone(),
            _ => {
                let file = Arc::new(self.log.sync_handle()?);
                self.sync_handle = Some((base, file.clone()));
                file
            }
        })
    }

    /// Hands the fsync of everything appended to the fsync thread.
    fn start_sync(&mut self) -> Result<()> {
        let handle = self.active_handle()?;
        if self.fsync_thread.is_none() {
            let instrument = self.shared.config.instrument.clone();
            let thread = FsyncThread::start(self.cell.clone(), self.synced_tx.clone(), instrument)
                .map_err(|e| EngineError::io("spawning the fsync thread for", &self.shared.config.dir, e))?;
            self.fsync_thread = Some(thread);
        }
        let job = Job {
            file: handle,
            next_offset: self.log.next_offset(),
        };
        let started = self.fsync_thread.as_ref().is_some_and(|t| t.sync(job));
        if !started {
            let stopped = std::io::Error::other("the fsync thread stopped");
            return Err(EngineError::io(
                "fsyncing the log in",
                &self.shared.config.dir,
                stopped,
            ));
        }
        Ok(())
    }

    /// Answers each caller with the fencing error (the writer is fenced).
    fn fail(&mut self, waiting: Vec<Waiting>) {
        let cause = self.shared.fenced.get().cloned().unwrap_or_default();
        for waiting in waiting {
            let answer = Err(EngineError::Fenced { cause: cause.clone() });
            waiting.reply.send(answer, &mut self.direct_answers);
        }
    }

    /// After a failed write or fsync nothing of the batch is applied or
    /// acknowledged, and no later write is accepted: the caller cannot know
    /// what reached the disk, and retrying an fsync can report success for
    /// pages the kernel already dropped.
    fn fence(&mut self, err: EngineError) {
        error!(error = %err, "write or fsync failed: fencing all writes; the process must restart");
        let _ = self.shared.fenced.set(err.to_string());
        self.pending.clear();
        self.payloads.clear();
        self.mutations.clear();
        let waiting = std::mem::take(&mut self.waiting);
        self.fail(waiting);
        if let Some(batch) = self.in_flight.take() {
            self.fail(batch.waiting);
        }
        for (_, reply) in std::mem::take(&mut self.requested_snapshots) {
            self.start_snapshot(reply); // answers with the fence
        }
    }

    /// Periodic work: active expiry, automatic snapshots, and under
    /// `everysec` the fsync, which it returns for the writer thread to make
    /// without the lock, so that writes go on meanwhile.
    fn tick(&mut self) -> Option<EverySecSync> {
        self.last_tick = Instant::now();
        if self.shared.fenced.get().is_some() {
            return None;
        }
        if self.shared.config.active_expiry {
            self.expire_some();
        }
        if self.snapshot_due() {
            self.start_snapshot(None);
        }
        if !(self.unsynced
            && self.shared.config.fsync == FsyncPolicy::EverySec
            && self.last_sync.elapsed() >= Duration::from_secs(1))
        {
            return None;
        }
        match self.active_handle() {
            Ok(file) => Some(EverySecSync {
                file,
                next_offset: self.log.next_offset(),
            }),
            Err(err) => {
                self.fence(err);
                None
            }
        }
    }

    /// Takes back the result of an [`EverySecSync`]: an error fences, as
    /// any failed fsync does.
    fn everysec_synced(&mut self, sync: EverySecSync, result: std::io::Result<()>, took: Duration) {
        if let Err(err) = self.log.record_sync(result, took) {
            self.fence(err.into());
            return;
        }
        self.last_sync = Instant::now();
        if self.log.next_offset() == sync.next_offset {
            self.unsynced = false;
        }
        if let Some(instrument) = &self.shared.config.instrument {
            instrument.after_sync(sync.next_offset);
        }
        self.publish_stats();
    }

    /// Examines shards for expired keys until the time budget is spent, and
    /// removes what it found with one logged delete.
    fn expire_some(&mut self) {
        let now = self.shared.config.clock.now_ms();
        let started = Instant::now();
        let mut keys = Vec::new();
        for _ in 0..EXPIRY_MAX_SHARDS_PER_TICK / EXPIRY_SHARDS_PER_STEP {
            let table = &self.shared.table;
            keys.extend(table.expired_in(self.expiry_cursor, EXPIRY_SHARDS_PER_STEP, now));
            self.expiry_cursor = (self.expiry_cursor + EXPIRY_SHARDS_PER_STEP) % super::table::SHARDS;
            if started.elapsed() >= EXPIRY_BUDGET {
                break;
            }
        }
        if !keys.is_empty() {
            self.compute(Command::RemoveExpired { keys }, ReplyTo::Nobody);
            self.commit();
        }
    }

    /// Bytes logged so far, counting what the log held at open.
    fn logged(&self) -> u64 {
        self.logged_at_open + self.log.stats().bytes_written
    }

    pub fn publish_stats(&self) {
        let mut wal = self.shared.wal.lock().unwrap_or_else(|e| e.into_inner());
        wal.log = self.log.stats().clone();
        wal.segments = self.log.segment_count();
        wal.bytes = self.log.total_bytes();
        wal.first_offset = self.log.lowest_offset();
        wal.next_offset = self.log.next_offset();
    }

    fn close(mut self, reply: oneshot::Sender<Result<()>>) {
        // The batch in flight, and the one behind it, are answered; a
        // snapshot thread still writes into the directory: let it finish
        // (and clean up after it) before the directory is released.
        loop {
            self.commit();
            if self.in_flight.is_none() && !self.snapshot_running {
                break;
            }
            if self.in_flight.is_some() {
                match self.synced_rx.recv() {
                    Ok(synced) => self.synced(synced),
                    Err(_) => break,
                }
                continue;
            }
            match self.rx.recv() {
                Ok(Request::SnapshotDone(result)) => self.finish_snapshot(result),
                Ok(Request::SnapshotCopied { reply }) => {
                    let _ = reply.send(self.snapshot_bound());
                }
                Ok(Request::Snapshot { reply: Some(r) }) => {
                    let _ = r.send(Err(EngineError::Closed));
                }
                Ok(Request::Close { reply: r }) => {
                    let _ = r.send(Err(EngineError::Closed));
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        if let Some(thread) = &mut self.fsync_thread {
            thread.stop();
        }
        let result = match self.fenced_error() {
            Some(err) => Err(err),
            None => self.log.close().map_err(EngineError::from),
        };
        let _ = reply.send(result);
    }
}

/// Under `everysec`, the fdatasync a tick asks for: of `file`, covering the
/// log up to `next_offset`.
struct EverySecSync {
    file: Arc<SyncHandle>,
    next_offset: Offset,
}

/// The writer thread: takes requests from the queue and the fsync thread's
/// answers, and ticks; holds the lock while it handles each, never while it
/// waits or fsyncs.
pub fn run(writer: Arc<Locked>) {
    let Some((rx, synced_rx, instrument)) = lock(&writer).as_ref().map(|w| {
        let instrument = w.shared.config.instrument.clone();
        (w.rx.clone(), w.synced_rx.clone(), instrument)
    }) else {
        return;
    };
    loop {
        let event = next_event(&rx, &synced_rx);
        let mut guard = lock(&writer);
        let Some(w) = guard.as_mut() else { return };
        let sync = match event {
            Event::Request(first) => {
                if let Some(reply) = w.take_requests(first) {
                    let w = guard.take().expect("checked above");
                    drop(guard);
                    w.close(reply);
                    return;
                }
                if w.last_tick.elapsed() >= TICK {
                    w.tick()
                } else {
                    if w.snapshot_due() {
                        w.start_snapshot(None);
                    }
                    None
                }
            }
            Event::Synced(synced) => {
                w.synced(synced);
                None
            }
            Event::Idle => w.tick(),
            // Every handle dropped without `close`: stop as a crash would,
            // minus the page cache (nothing more is synced).
            Event::Gone => {
                let w = guard.take();
                drop(guard); // the fsync thread may be waiting for it
                drop(w);
                return;
            }
        };
        // A roll another thread finished (or failed) is settled here too.
        w.roll_finished();
        let roll = w.log.unfinished_roll();
        drop(guard);
        if let Some(roll) = roll {
            // Its error reaches the log through `settle_roll`.
            let _ = roll.finish();
            if let Some(w) = lock(&writer).as_mut() {
                w.roll_finished();
            }
        }
        if let Some(sync) = sync {
            if let Some(instrument) = &instrument {
                instrument.before_sync(sync.next_offset);
            }
            let started = Instant::now();
            let result = sync.file.sync_data();
            let took = started.elapsed();
            if let Some(w) = lock(&writer).as_mut() {
                w.everysec_synced(sync, result, took);
            }
        }
    }
}

/// Waits for what comes next: the fsync thread's answer (when it could not
/// hand it over) first, then a request.
fn next_event(rx: &flume::Receiver<Request>, synced_rx: &flume::Receiver<Synced>) -> Event {
    if let Ok(synced) = synced_rx.try_recv() {
        return Event::Synced(synced);
    }
    flume::Selector::new()
        .recv(synced_rx, |r| r.map_or(Event::Idle, Event::Synced))
        .recv(rx, |r| r.map_or(Event::Gone, Event::Request))
        .wait_timeout(TICK)
        .unwrap_or(Event::Idle)
}
