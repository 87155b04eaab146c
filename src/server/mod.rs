//! The server: the only code that touches sockets, tasks and signals.
//!
//! - [`connection`]: one client: read, decode every complete request, run
//!   them in order, write all replies, flush once
//! - [`state`]: what the server shares between connections (clients,
//!   counters, settings that change at run time)
//!
//! [`serve`] accepts on every listener until the shutdown token fires, then
//! waits for the connections to finish their commands in flight.

pub mod connection;
pub mod state;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use state::{ServerSettings, ServerState};

/// Accepts connections on `listeners` until `shutdown` is cancelled, then
/// waits for every connection task to end.
pub async fn serve(listeners: Vec<TcpListener>, state: Arc<ServerState>, shutdown: CancellationToken) {
    let tracker = TaskTracker::new();
    for listener in listeners {
        let (state, shutdown, tasks) = (state.clone(), shutdown.clone(), tracker.clone());
        tracker.spawn(accept_loop(listener, state, shutdown, tasks));
    }
    tracker.close();
    shutdown.cancelled().await;
    tracker.wait().await;
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<ServerState>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    let mut backoff = Duration::from_millis(1);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((socket, peer)) => {
                backoff = Duration::from_millis(1);
                let (state, shutdown) = (state.clone(), shutdown.clone());
                tasks.spawn(connection::run(socket, peer, state, shutdown));
            }
            // Out of file descriptors and the like: back off rather than spin,
            // as mini-redis does, and keep serving the clients we have.
            Err(err) => {
                warn!(error = %err, backoff_ms = backoff.as_millis() as u64, "accept failed");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Cancels `shutdown` (exit code 5) as soon as the engine fences its writes:
/// the process must restart to recover, and must not go on answering.
pub async fn watch_fencing(state: Arc<ServerState>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        if let Some(engine) = state.engine()
            && let Some(cause) = engine.fenced()
        {
            tracing::error!(%cause, "writes are fenced: shutting down so that a restart recovers");
            state.set_exit_code(5);
            shutdown.cancel();
            return;
        }
    }
}

/// Logs where the server listens.
pub fn log_listening(listeners: &[TcpListener]) {
    for l in listeners {
        if let Ok(addr) = l.local_addr() {
            info!(%addr, "listening");
        }
    }
}
