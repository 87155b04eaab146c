//! The tasks that keep systemd informed while the daemon starts and serves:
//! start-up progress (and more time for it while it advances), watchdog
//! pings that stop when the engine stops answering, and a status line.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::Notifier;
use crate::engine::LoadProgress;
use crate::server::ServerState;

/// How much more start-up time to ask for at each sign of progress. A
/// replay that stops advancing stops asking, and systemd's own
/// `TimeoutStartSec` then applies: a finite timeout with no false kills.
pub const START_EXTENSION: Duration = Duration::from_secs(10);

/// Reports loading progress every `every` until `progress` says replay is
/// done, asking for [`START_EXTENSION`] more each time it has advanced.
/// `listening` is where clients can already connect (and get `-LOADING`).
pub async fn report_loading(
    notifier: Arc<Notifier>,
    progress: Arc<LoadProgress>,
    listening: String,
    every: Duration,
) {
    let started = Instant::now();
    let mut last_seen = None;
    loop {
        if progress.done.load(Ordering::Relaxed) == 1 {
            return;
        }
        let entries = progress.snapshot_entries.load(Ordering::Relaxed);
        let bytes = progress.bytes.load(Ordering::Relaxed);
        let total = progress.total_bytes.load(Ordering::Relaxed);
        let status = if total == 0 && bytes == 0 {
            match entries {
                0 => "opening the data directory".to_string(),
                n => format!("loading snapshot: {n} keys"),
            }
        } else {
            let secs = started.elapsed().as_secs_f64().max(0.001);
            format!(
                "replaying log: {:.0}% ({} of {} MB, {:.0} MB/s)",
                progress.percent(),
                bytes >> 20,
                total >> 20,
                bytes as f64 / (1 << 20) as f64 / secs
            )
        };
        notifier.status(&format!("listening on {listening}; {status}"));
        let seen = (entries, bytes);
        if last_seen.is_some_and(|last| last != seen) {
            notifier.extend_timeout(START_EXTENSION);
        }
        last_seen = Some(seen);
        tokio::time::sleep(every).await;
    }
}

/// Sends `WATCHDOG=1` every `interval` for as long as `healthy` answers
/// true, and withholds it (with a warning) when it does not: systemd then
/// restarts a daemon whose engine stopped answering. `healthy` must return
/// within `interval`; [`engine_answers`] does.
pub async fn watchdog<F, Fut>(
    notifier: &Notifier,
    interval: Duration,
    shutdown: CancellationToken,
    mut healthy: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    loop {
        if healthy().await {
            notifier.send("WATCHDOG=1");
        } else {
            warn!(
                interval_ms = interval.as_millis() as u64,
                "the engine did not answer: withholding the watchdog ping"
            );
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// Whether the engine's writer takes a request from its queue within
/// `within` (and the engine is not fenced). Before the engine is open the
/// answer is yes: replay has its own progress reporting.
pub async fn engine_answers(state: &ServerState, within: Duration) -> bool {
    match state.engine() {
        Some(engine) => matches!(tokio::time::timeout(within, engine.ping()).await, Ok(Ok(()))),
        None => true,
    }
}

/// The one-line status systemd shows while serving.
pub fn serving_status(state: &ServerState, listening: &str) -> String {
    let clients = state.clients.lock().unwrap_or_else(|e| e.into_inner()).len();
    let Some(engine) = state.engine() else {
        return format!("listening on {listening}; loading");
    };
    let snapshot = match engine.last_snapshot() {
        Some(info) => {
            let age = engine.now_ms().saturating_sub(info.created_ms) / 1000;
            format!("last snapshot {age}s ago")
        }
        None => "no snapshot yet".to_string(),
    };
    format!(
        "serving on {listening}: {clients} clients, {} keys, {snapshot}",
        engine.len()
    )
}

/// Sends [`serving_status`] every `every` until `shutdown`.
pub async fn report_serving(
    notifier: Arc<Notifier>,
    state: Arc<ServerState>,
    listening: String,
    every: Duration,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        notifier.status(&serving_status(&state, &listening));
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixDatagram;
    use std::sync::atomic::AtomicU32;

    use super::*;

    #[tokio::test]
    async fn the_watchdog_pings_only_while_healthy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let notifier = Notifier::to(path.to_str().unwrap());
        let shutdown = CancellationToken::new();
        // Healthy for three probes, then wedged for three; then stop.
        let probes = AtomicU32::new(0);
        let stop = shutdown.clone();
        watchdog(&notifier, Duration::from_millis(1), shutdown, || {
            let n = probes.fetch_add(1, Ordering::Relaxed);
            if n == 5 {
                stop.cancel();
            }
            async move { n < 3 }
        })
        .await;
        assert_eq!(probes.load(Ordering::Relaxed), 6);
        let mut pings = 0;
        let mut buf = [0u8; 64];
        while let Ok(n) = listener.recv(&mut buf) {
            assert_eq!(&buf[..n], b"WATCHDOG=1");
            pings += 1;
        }
        assert_eq!(pings, 3, "one ping per healthy probe, none after");
    }
}
