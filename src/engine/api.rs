//! [`Engine`]: the handle the server holds. Writes run on the caller's
//! thread under the writer's lock (under `always`, then await their fsync);
//! reads go straight to the table.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::command::{Command, Outcome, WatchToken};
use super::config::EngineConfig;
use super::error::{EngineError, Result};
use super::recover::{self, LoadProgress, RecoveryReport};
use super::snapshot::SnapshotInfo;
use super::table::{Entry, Lookup, Table};
use super::writer::{self, Ack, Answer, Locked, Request, Writer};
use crate::log::{LogStats, Offset};

/// State shared by the handle, the writer thread and the snapshot thread.
pub struct Shared {
    /// Read by everyone; written only by the writer thread (and replay).
    pub(crate) table: Table,
    pub(crate) config: EngineConfig,
    /// Set once, by the writer, when a write or fsync fails.
    pub(crate) fenced: OnceLock<String>,
    pub(crate) recovery: RecoveryReport,
    /// The writer's view of the log, refreshed after every batch.
    pub(crate) wal: Mutex<WalStats>,
    pub(crate) last_snapshot: Mutex<Option<SnapshotInfo>>,
    pub(crate) snapshot_running: AtomicBool,
    pub(crate) commands: AtomicU64,
    /// The automatic snapshot trigger (bytes, percent): starts from the
    /// config, and a reload may change it while the writer runs.
    pub(crate) snapshot_min_log_bytes: AtomicU64,
    pub(crate) snapshot_log_percent: AtomicU64,
    /// The largest value APPEND and SETRANGE may build: starts from the
    /// config, follows `proto-max-bulk-len` at run time.
    pub(crate) max_value_bytes: AtomicU64,
    /// Keeps the data directory locked until [`Engine::close`] (or the last
    /// handle's drop) releases it, after the writer and any snapshot stopped.
    lock: Mutex<Option<std::fs::File>>,
}

/// A write started by [`Engine::enqueue`]; its answer comes once it is
/// durable (per the fsync policy) and applied.
pub struct PendingAck(AckState);

enum AckState {
    /// Not run yet: [`Engine::run_deferred`] runs those of a pipeline as
    /// one batch; [`PendingAck::wait`] runs it alone.
    Deferred(Command, Arc<Locked>),
    Started(Answer),
}

impl PendingAck {
    pub async fn wait(self) -> Result<Ack> {
        let answer = match self.0 {
            AckState::Deferred(command, writer) => run_one(&writer, command),
            AckState::Started(answer) => answer,
        };
        match answer {
            Answer::Done(answer) => answer,
            Answer::Durable(answer) => answer.await.map_err(|_| EngineError::Closed)?,
        }
    }
}

/// Runs `commands` on this thread under the writer's lock, one answer each.
fn run_all(writer: &Locked, commands: impl ExactSizeIterator<Item = Command>) -> Vec<Answer> {
    let mut answers = Vec::with_capacity(commands.len());
    match writer::lock(writer).as_mut() {
        Some(w) => w.run_now(commands, &mut answers),
        None => answers.extend(commands.map(|_| Answer::Done(Err(EngineError::Closed)))),
    }
    answers
}

fn run_one(writer: &Locked, command: Command) -> Answer {
    run_all(writer, std::iter::once(command))
        .pop()
        .expect("one answer")
}

/// The log's figures, for `INFO`.
#[derive(Debug, Clone, Default)]
pub struct WalStats {
    pub log: LogStats,
    pub segments: usize,
    pub bytes: u64,
    pub first_offset: Offset,
    pub next_offset: Offset,
}

/// The deadline state of a key (`TTL`, `PTTL`, `EXPIRETIME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyExpiry {
    Missing,
    Persistent,
    /// ms since the Unix epoch.
    At(u64),
}

pub struct Engine {
    shared: Arc<Shared>,
    /// For what the writer thread does: snapshots, lazy expiry, pings, close.
    tx: flume::Sender<Request>,
    /// Writes take its lock and run on the caller's thread.
    writer: Arc<Locked>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
}

impl Engine {
    /// Opens the engine: locks the directory, loads the newest snapshot and
    /// replays the log. Blocks for as long as replay takes (run it on a
    /// blocking thread from async code).
    pub fn open(config: EngineConfig) -> Result<Engine> {
        Self::open_with_progress(config, &LoadProgress::default())
    }

    /// As [`Engine::open`], publishing replay progress to `progress`.
    pub fn open_with_progress(config: EngineConfig, progress: &LoadProgress) -> Result<Engine> {
        let recovered = recover::recover(&config, progress)?;
        let last_snapshot_bytes = recovered.last_snapshot.as_ref().map_or(0, |s| s.bytes);
        let shared = Arc::new(Shared {
            table: recovered.table,
            config: config.clone(),
            fenced: OnceLock::new(),
            recovery: recovered.report,
            wal: Mutex::new(WalStats::default()),
            last_snapshot: Mutex::new(recovered.last_snapshot),
            snapshot_running: AtomicBool::new(false),
            commands: AtomicU64::new(0),
            snapshot_min_log_bytes: AtomicU64::new(config.snapshot_min_log_bytes),
            snapshot_log_percent: AtomicU64::new(config.snapshot_log_percent),
            max_value_bytes: AtomicU64::new(config.max_value_bytes as u64),
            lock: Mutex::new(Some(recovered.lock)),
        });
        let (tx, rx) = flume::bounded(config.queue_depth.max(1));
        let writer = Arc::new_cyclic(|cell| {
            let writer = Writer::new(
                recovered.log,
                shared.clone(),
                rx,
                tx.downgrade(),
                last_snapshot_bytes,
                cell.clone(),
            );
            writer.publish_stats(); // so the stats are right from the first call
            Mutex::new(Some(writer))
        });
        let thread_writer = writer.clone();
        let handle = std::thread::Builder::new()
            .name("walkv-writer".into())
            .spawn(move || writer::run(thread_writer))
            .map_err(|e| EngineError::io("spawning writer thread for", &config.dir, e))?;
        Ok(Engine {
            shared,
            tx,
            writer,
            writer_thread: Mutex::new(Some(handle)),
        })
    }

    // ---- writes -------------------------------------------------------

    /// Runs a write command and waits (without blocking the thread) until it
    /// is durable per the fsync policy and visible. It is computed and
    /// appended here, under the writer's lock (see [`super::writer`]): a
    /// compute and one write(2), microseconds, unless write(2) itself blocks
    /// (the kernel throttling a flood of dirty pages). Under `always` it
    /// then waits for the fdatasync that covers its batch: typically well
    /// under a millisecond, unbounded if the disk stalls.
    pub async fn execute(&self, command: Command) -> Result<Outcome> {
        Ok(self.submit(command).await?.outcome)
    }

    /// As [`Engine::execute`], also telling which log record was written.
    pub async fn submit(&self, command: Command) -> Result<Ack> {
        PendingAck(AckState::Started(run_one(&self.writer, command)))
            .wait()
            .await
    }

    /// Starts a write without running it: a connection starts every write of
    /// a pipeline this way, has [`Engine::run_deferred`] run them as one
    /// batch (one write(2), one fsync), then awaits the answers in order.
    pub fn enqueue(&self, command: Command) -> PendingAck {
        PendingAck(AckState::Deferred(command, self.writer.clone()))
    }

    /// Runs the writes among `acks` that [`Engine::enqueue`] kept, in order,
    /// as one batch with one write(2).
    ///
    /// One write runs here, under the writer's lock. Several go to the
    /// writer thread instead, which batches them with other connections'
    /// pipelines: a pipeline holds the lock long enough (16 commands, about
    /// 20 µs) that the other async worker, blocked on it, often sleeps and
    /// is woken again, and that cost more than the hand-off, which a
    /// pipeline shares. Measured with `bench/compare.sh` (SET, 50 clients,
    /// pipeline 16, `f7b8c34` against `0b41f52`): run here, 0.65–0.75×
    /// Redis; through the writer thread, 0.86–1.05×. Without pipelining it
    /// is the other way round.
    pub async fn run_deferred<'a>(&self, acks: impl IntoIterator<Item = &'a mut PendingAck>) {
        let mut deferred: Vec<&mut PendingAck> = acks
            .into_iter()
            .filter(|ack| matches!(ack.0, AckState::Deferred(..)))
            .collect();
        if deferred.is_empty() {
            return;
        }
        let closed = || AckState::Started(Answer::Done(Err(EngineError::Closed)));
        let commands: Vec<Command> = deferred
            .iter_mut()
            .map(|ack| match std::mem::replace(&mut ack.0, closed()) {
                AckState::Deferred(command, _) => command,
                AckState::Started(_) => unreachable!("filtered above"),
            })
            .collect();
        if commands.len() == 1 {
            let answer = run_all(&self.writer, commands.into_iter()).pop();
            deferred[0].0 = AckState::Started(answer.expect("one answer"));
            return;
        }
        let mut pipeline = Vec::with_capacity(commands.len());
        for (ack, command) in deferred.into_iter().zip(commands) {
            let (reply, answer) = oneshot::channel();
            pipeline.push((command, reply));
            ack.0 = AckState::Started(Answer::Durable(answer));
        }
        // If the writer is gone, the replies are dropped with the request and
        // each wait answers `Closed`.
        let _ = self.tx.send_async(Request::Pipeline(pipeline)).await;
    }

    /// As [`Engine::execute`], blocking the calling thread. Never call it on
    /// an async runtime's worker thread.
    pub fn execute_blocking(&self, command: Command) -> Result<Outcome> {
        Ok(self.submit_blocking(command)?.outcome)
    }

    pub fn submit_blocking(&self, command: Command) -> Result<Ack> {
        match run_one(&self.writer, command) {
            Answer::Done(answer) => answer,
            Answer::Durable(answer) => answer.blocking_recv().map_err(|_| EngineError::Closed)?,
        }
    }

    /// Takes a snapshot and waits until it is durable and the segments it
    /// covers are deleted (`SAVE`). Writes go on meanwhile.
    pub async fn snapshot(&self) -> Result<SnapshotInfo> {
        let (reply, answer) = oneshot::channel();
        let request = Request::Snapshot { reply: Some(reply) };
        self.tx
            .send_async(request)
            .await
            .map_err(|_| EngineError::Closed)?;
        answer.await.map_err(|_| EngineError::Closed)?
    }

    pub fn snapshot_blocking(&self) -> Result<SnapshotInfo> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request::Snapshot { reply: Some(reply) })
            .map_err(|_| EngineError::Closed)?;
        answer.blocking_recv().map_err(|_| EngineError::Closed)?
    }

    /// Starts a snapshot in the background and returns at once (`BGSAVE`).
    pub fn start_snapshot(&self) -> Result<()> {
        if self.shared.snapshot_running.load(Ordering::Relaxed) {
            return Err(EngineError::SnapshotInProgress);
        }
        self.tx
            .try_send(Request::Snapshot { reply: None })
            .map_err(|_| EngineError::Closed)
    }

    /// Answers once the writer thread has taken this request from its queue:
    /// the proof of life a watchdog needs. A writer wedged in an fsync or a
    /// write never answers, so callers bound the wait with a timeout. A
    /// fenced engine answers with the fence.
    pub async fn ping(&self) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send_async(Request::Ping { reply })
            .await
            .map_err(|_| EngineError::Closed)?;
        answer.await.map_err(|_| EngineError::Closed)?;
        match self.fenced() {
            Some(cause) => Err(EngineError::Fenced { cause }),
            None => Ok(()),
        }
    }

    /// Changes the automatic snapshot trigger at run time (a reload); it
    /// takes effect at the writer's next check, within one tick.
    pub fn set_snapshot_thresholds(&self, min_log_bytes: u64, log_percent: u64) {
        self.shared
            .snapshot_min_log_bytes
            .store(min_log_bytes, Ordering::Relaxed);
        self.shared
            .snapshot_log_percent
            .store(log_percent, Ordering::Relaxed);
    }

    /// Changes the largest value APPEND and SETRANGE may build (Redis's
    /// `proto-max-bulk-len` governs both requests and these); from the next
    /// batch on.
    pub fn set_max_value_bytes(&self, bytes: usize) {
        self.shared.max_value_bytes.store(bytes as u64, Ordering::Relaxed);
    }

    /// Shuts down cleanly: waits for queued writes, fsyncs, closes the log so
    /// the next open has nothing to repair. Blocks for one fsync. Later
    /// writes get [`EngineError::Closed`]; reads go on.
    pub fn close(&self) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request::Close { reply })
            .map_err(|_| EngineError::Closed)?;
        let result = answer.blocking_recv().map_err(|_| EngineError::Closed)?;
        if let Some(handle) = self
            .writer_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = handle.join();
        }
        // The writer has closed the log (and waited for a running snapshot):
        // nothing of ours touches the directory any more.
        drop(self.shared.lock.lock().unwrap_or_else(|e| e.into_inner()).take());
        result
    }

    // ---- reads: a shard lock for a hash lookup; never wait on I/O ------

    pub fn now_ms(&self) -> u64 {
        self.shared.config.clock.now_ms()
    }

    /// The live entry for `key`. An expired key is invisible, and its removal
    /// is handed to the writer (logged like any delete).
    pub fn get_entry(&self, key: &[u8]) -> Option<Entry> {
        match self.shared.table.lookup(key, self.now_ms()) {
            Lookup::Live(entry) => Some(entry),
            Lookup::Expired => {
                self.remove_expired_later(key);
                None
            }
            Lookup::Missing => None,
        }
    }

    fn remove_expired_later(&self, key: &[u8]) {
        // Best effort: if the queue is full the background sampler will
        // remove the key instead; a reader never waits for the writer.
        let _ = self.tx.try_send(Request::Execute(Command::RemoveExpired {
            keys: vec![Bytes::copy_from_slice(key)],
        }));
    }

    pub fn get(&self, key: &[u8]) -> Option<Bytes> {
        self.get_entry(key).map(|e| e.value)
    }

    /// The length of the value at `key`, 0 if absent (`STRLEN`).
    pub fn strlen(&self, key: &[u8]) -> usize {
        self.get(key).map_or(0, |v| v.len())
    }

    /// The bytes `start..=end` of the value at `key`, with Redis's rules
    /// (`GETRANGE`): negative indexes count from the end, the range is
    /// clamped to the value, and an empty range is an empty string.
    pub fn get_range(&self, key: &[u8], start: i64, end: i64) -> Bytes {
        self.get(key)
            .map_or_else(Bytes::new, |v| super::effects::byte_range(&v, start, end))
    }

    /// Values of `keys` as of one moment (`MGET`).
    pub fn get_many(&self, keys: &[Bytes]) -> Vec<Option<Bytes>> {
        self.shared.table.get_many(keys, self.now_ms())
    }

    /// How many of `keys` exist, counting repeats (`EXISTS`).
    pub fn exists(&self, keys: &[Bytes]) -> usize {
        // One consistent moment, as MGET: never half of an atomic batch.
        self.get_many(keys).iter().filter(|v| v.is_some()).count()
    }

    pub fn expiry(&self, key: &[u8]) -> KeyExpiry {
        match self.get_entry(key) {
            None => KeyExpiry::Missing,
            Some(Entry {
                expire_at_ms: None, ..
            }) => KeyExpiry::Persistent,
            Some(Entry {
                expire_at_ms: Some(at),
                ..
            }) => KeyExpiry::At(at),
        }
    }

    /// Keys held, including expired ones not yet removed (`DBSIZE`).
    pub fn len(&self) -> usize {
        self.shared.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shared.table.is_empty()
    }

    pub fn volatile_len(&self) -> usize {
        self.shared.table.volatile_len()
    }

    /// One `SCAN` step; a cursor of 0 starts and ends an iteration.
    pub fn scan(&self, cursor: u64, count: usize, pattern: Option<&[u8]>) -> (u64, Vec<Bytes>) {
        self.shared.table.scan(cursor, count, pattern, self.now_ms())
    }

    pub fn keys(&self, pattern: &[u8]) -> Vec<Bytes> {
        self.shared.table.keys(pattern, self.now_ms())
    }

    pub fn random_key(&self, seed: u64) -> Option<Bytes> {
        self.shared.table.random_key(seed, self.now_ms())
    }

    /// The token to hand back in [`Command::Atomic`] for `WATCH`.
    pub fn watch(&self, key: &[u8]) -> WatchToken {
        let (version, live) = self.shared.table.version(key, self.now_ms());
        WatchToken { version, live }
    }

    // ---- state for INFO ---------------------------------------------

    pub fn recovery(&self) -> &RecoveryReport {
        &self.shared.recovery
    }

    pub fn wal_stats(&self) -> WalStats {
        self.shared.wal.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn last_snapshot(&self) -> Option<SnapshotInfo> {
        self.shared
            .last_snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn snapshot_running(&self) -> bool {
        self.shared.snapshot_running.load(Ordering::Relaxed)
    }

    /// Commands the writer has completed.
    pub fn commands_processed(&self) -> u64 {
        self.shared.commands.load(Ordering::Relaxed)
    }

    /// Why writes are refused, if they are.
    pub fn fenced(&self) -> Option<String> {
        self.shared.fenced.get().cloned()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.shared.config
    }
}

impl Drop for Engine {
    /// Dropping without [`Engine::close`] stops the writer the way a crash
    /// would, minus the page cache: the commands already queued are still
    /// processed, then the writer stops without a final fsync or sealing the
    /// log. Tests use it to simulate a crash.
    fn drop(&mut self) {
        let (tx, _) = flume::bounded(1);
        drop(std::mem::replace(&mut self.tx, tx));
        if let Some(handle) = self
            .writer_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::command::{Condition, Ttl};
    use crate::engine::config::FsyncPolicy;

    fn set(key: &str) -> Command {
        Command::Set {
            key: Bytes::copy_from_slice(key.as_bytes()),
            value: Bytes::from_static(b"v"),
            condition: Condition::Always,
            ttl: Ttl::Clear,
            get: false,
        }
    }

    /// A panic while a caller held the writer (in a compute, say) leaves
    /// half-done state behind: the engine fences instead of going on with
    /// it, under every policy.
    #[test]
    fn a_panic_that_poisons_the_writer_fences_the_engine() {
        for fsync in [FsyncPolicy::Always, FsyncPolicy::No] {
            let dir = tempfile::tempdir().unwrap();
            let mut config = EngineConfig::new(dir.path());
            config.fsync = fsync;
            let engine = Engine::open(config).unwrap();
            engine.execute_blocking(set("before")).unwrap();
            let panicked = std::thread::scope(|s| {
                s.spawn(|| {
                    let _held = writer::lock(&engine.writer);
                    panic!("a bug while the writer is held");
                })
                .join()
            });
            assert!(panicked.is_err());
            let after = engine.execute_blocking(set("after"));
            assert!(
                matches!(after, Err(EngineError::Fenced { .. })),
                "{fsync:?}: {after:?}"
            );
            assert!(engine.fenced().is_some_and(|cause| cause.contains("panicked")));
            assert_eq!(
                engine.get(b"before"),
                Some(Bytes::from_static(b"v")),
                "reads go on"
            );
        }
    }
}
