//! One client connection: read into a buffer, decode every complete request,
//! run them in order, write all the replies, flush once.
//!
//! Memory per client is bounded: a request is refused before its announced
//! size is buffered (see [`crate::protocol::request`]), the read buffer is
//! capped, and replies are written out whenever they pass
//! `max_output_bytes` — a client that sends but never reads makes that write
//! wait, and while it waits nothing more is read from it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::state::{ClientInfo, ServerState};
use crate::cmd::{self, Action, Context, ServerInfo, Session};
use crate::protocol::{Protocol, Reply, parse_request};

const READ_CHUNK: usize = 16 << 10;

pub async fn run(
    mut socket: TcpStream,
    peer: SocketAddr,
    state: Arc<ServerState>,
    shutdown: CancellationToken,
) {
    state.connections_received.fetch_add(1, Ordering::Relaxed);
    let settings = state.settings();
    if let Some(refusal) = refusal(&state, &settings, peer) {
        state.rejected_connections.fetch_add(1, Ordering::Relaxed);
        let _ = socket.write_all(refusal.as_bytes()).await;
        return;
    }
    let _ = socket.set_nodelay(true);
    let id = state.new_client_id();
    debug!(client = id, %peer, "client connected");
    // Stopped by CLIENT KILL, or by the server's shutdown.
    let kill = shutdown.child_token();
    state.clients.lock().unwrap_or_else(|e| e.into_inner()).insert(
        id,
        ClientInfo {
            addr: peer,
            laddr: socket.local_addr().ok(),
            name: String::new(),
            connected: Instant::now(),
            kill: kill.clone(),
        },
    );
    let mut session = Session {
        id,
        authenticated: settings.requirepass.is_none(),
        ..Session::default()
    };
    if let Err(reason) = serve(&mut socket, &state, &mut session, &kill).await {
        debug!(client = id, %peer, %reason, "connection closed");
    }
    state
        .clients
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
}

/// Why a new connection is refused, as the error line Redis would send.
pub(crate) fn refusal(
    state: &ServerState,
    settings: &super::ServerSettings,
    peer: SocketAddr,
) -> Option<String> {
    let clients = state.clients.lock().unwrap_or_else(|e| e.into_inner()).len();
    if clients >= settings.maxclients {
        return Some("-ERR max number of clients reached\r\n".into());
    }
    if settings.protected_mode && state.exposed && settings.requirepass.is_none() && !peer.ip().is_loopback()
    {
        return Some(
            "-DENIED walkv is running in protected mode because it listens beyond loopback without a password. \
             Set requirepass (walkvd --requirepass, or requirepass in the configuration file), or bind to \
             127.0.0.1 only, or disable protected mode if you really want any host to connect.\r\n"
                .into(),
        );
    }
    None
}

/// The request loop; returns why the connection ended.
async fn serve(
    socket: &mut TcpStream,
    state: &Arc<ServerState>,
    session: &mut Session,
    shutdown: &CancellationToken,
) -> Result<(), String> {
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut output = BytesMut::with_capacity(READ_CHUNK);
    // The name last copied into the clients table (for CLIENT LIST).
    let mut listed_name: Option<Bytes> = None;
    // Writes queued in the engine whose replies are still to come, oldest
    // first; emptied before any other command runs and before each flush.
    let mut in_flight: VecDeque<cmd::InFlight> = VecDeque::new();
    // Made once: a new one per read registers and drops a waiter each time
    // (about 2% of a GET's CPU).
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    loop {
        let settings = state.connection_limits();
        // Run every complete request already buffered, in order.
        loop {
            let limits = if session.authenticated {
                settings.limits
            } else {
                crate::protocol::Limits::unauthenticated()
            };
            let args = match parse_request(&mut input, &limits) {
                Ok(Some(args)) => args,
                Ok(None) => break,
                Err(err) => {
                    finish_in_flight(state, &mut in_flight, session.protocol, &mut output).await;
                    Reply::error(format!("ERR {err}")).encode(session.protocol, &mut output);
                    let _ = socket.write_all(&output).await;
                    return Err(err.to_string());
                }
            };
            state.commands_processed.fetch_add(1, Ordering::Relaxed);
            // A plain write is queued in the engine without waiting for its
            // answer, so a pipeline of writes shares one fsync; everything
            // else first collects the answers before it, in order.
            if let Some(engine) = state.engine()
                && let Some(name) = cmd::can_pipeline(session, &args)
            {
                let ctx = context(state, engine);
                match cmd::start_write(&ctx, session, name, args) {
                    cmd::Started::InFlight(write) => {
                        in_flight.push_back(write);
                        continue;
                    }
                    cmd::Started::Done(action) => {
                        finish_in_flight(state, &mut in_flight, session.protocol, &mut output).await;
                        encode(action, session.protocol, &mut output);
                        continue;
                    }
                }
            }
            finish_in_flight(state, &mut in_flight, session.protocol, &mut output).await;
            let action = dispatch(state, session, args).await;
            if session.name != listed_name {
                listed_name = session.name.clone();
                let name = listed_name
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default()
                    .into_owned();
                if let Some(c) = state
                    .clients
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_mut(&session.id)
                {
                    c.name = name;
                }
            }
            let (reply, close) = match action {
                Action::Reply(reply) => (reply, false),
                Action::ReplyAndClose(reply) => (reply, true),
            };
            reply.encode(session.protocol, &mut output);
            if close {
                let _ = socket.write_all(&output).await;
                return Ok(());
            }
            if output.len() >= settings.max_output_bytes {
                write_out(socket, &mut output).await?;
            }
        }
        finish_in_flight(state, &mut in_flight, session.protocol, &mut output).await;
        // Let the other connections with requests ready run theirs first,
        // so that the replies leave in a burst, as from Redis's event loop:
        // a client woken by the first reply finds the next ones waiting,
        // where a reply sent after each request wakes it every time. The
        // wake-up (loopback delivery waking the client's thread) was 17% of
        // walkvd's CPU for pipelined GETs; measured in docs/benchmarks.md.
        if !output.is_empty() {
            tokio::task::yield_now().await;
        }
        write_out(socket, &mut output).await?;
        if input.len() >= settings.max_query_buffer_bytes {
            return Err("query buffer limit reached".into());
        }
        input.reserve(READ_CHUNK);
        let read = tokio::select! {
            _ = &mut cancelled => return Ok(()),
            read = read_with_timeout(socket, &mut input, settings.timeout_secs) => read,
        };
        match read {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(e),
        }
    }
}

async fn read_with_timeout(
    socket: &mut TcpStream,
    input: &mut BytesMut,
    timeout_secs: u64,
) -> Result<usize, String> {
    let read = socket.read_buf(input);
    if timeout_secs == 0 {
        return read.await.map_err(|e| e.to_string());
    }
    match tokio::time::timeout(Duration::from_secs(timeout_secs), read).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("idle timeout".into()),
    }
}

async fn write_out(socket: &mut TcpStream, output: &mut BytesMut) -> Result<(), String> {
    if output.is_empty() {
        return Ok(());
    }
    socket.write_all(output).await.map_err(|e| e.to_string())?;
    output.clear();
    Ok(())
}

fn context(state: &Arc<ServerState>, engine: &Arc<crate::engine::Engine>) -> Context {
    Context {
        engine: engine.clone(),
        server: state.clone() as Arc<dyn ServerInfo>,
    }
}

fn encode(action: Action, protocol: crate::protocol::Protocol, output: &mut BytesMut) {
    let (Action::Reply(reply) | Action::ReplyAndClose(reply)) = action;
    reply.encode(protocol, output);
}

/// Waits for the queued writes' answers, oldest first, and encodes their
/// replies: each only once its write is durable.
async fn finish_in_flight(
    state: &Arc<ServerState>,
    in_flight: &mut VecDeque<cmd::InFlight>,
    protocol: crate::protocol::Protocol,
    output: &mut BytesMut,
) {
    let Some(engine) = state.engine() else { return };
    if in_flight.is_empty() {
        return;
    }
    // The pipeline's writes run here, as one batch: one write(2), and under
    // `always` one fsync.
    engine
        .run_deferred(in_flight.iter_mut().map(cmd::InFlight::pending))
        .await;
    let ctx = context(state, engine);
    while let Some(write) = in_flight.pop_front() {
        encode(write.finish(&ctx).await, protocol, output);
    }
}

/// Runs one request, or answers `-LOADING` while replay is still going.
async fn dispatch(state: &Arc<ServerState>, session: &mut Session, args: Vec<Bytes>) -> Action {
    let Some(engine) = state.engine() else {
        return Action::Reply(while_loading(state, session, &args));
    };
    let ctx = Context {
        engine: engine.clone(),
        server: state.clone() as Arc<dyn ServerInfo>,
    };
    cmd::execute(&ctx, session, args).await
}

/// What works before the data is loaded: PING, ECHO, INFO, HELLO; the rest
/// get Redis's `-LOADING`.
fn while_loading(state: &ServerState, session: &mut Session, args: &[Bytes]) -> Reply {
    let name = String::from_utf8_lossy(&args[0].to_ascii_uppercase()).into_owned();
    match name.as_str() {
        "PING" => Reply::Simple("PONG"),
        "ECHO" if args.len() == 2 => Reply::Bulk(args[1].clone()),
        "HELLO" if args.get(1).is_some_and(|v| &v[..] == b"3") => {
            session.protocol = Protocol::Resp3;
            Reply::Map(vec![(Reply::bulk("proto"), Reply::Integer(3))])
        }
        "INFO" => {
            let p = &state.progress;
            let percent = p.percent();
            let text = format!(
                "# Persistence\r\nloading:1\r\nloading_loaded_bytes:{}\r\nloading_loaded_perc:{:.2}\r\nloading_eta_seconds:{}\r\n",
                p.bytes.load(Ordering::Relaxed),
                percent,
                eta_seconds(state, percent)
            );
            Reply::Verbatim(Bytes::from(text))
        }
        _ => Reply::error("LOADING walkv is loading the dataset in memory"),
    }
}

fn eta_seconds(state: &ServerState, percent: f64) -> u64 {
    if percent <= 0.0 {
        return 1;
    }
    let elapsed = state.started.elapsed().as_secs_f64();
    (elapsed * (100.0 - percent) / percent).ceil() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::ServerSettings;

    #[test]
    fn protected_mode_refuses_remote_clients_only_without_a_password() {
        let remote: SocketAddr = "10.1.2.3:5000".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let exposed = ServerState::new(ServerSettings::default(), CancellationToken::new(), true);
        let settings = exposed.settings();
        let denied = refusal(&exposed, &settings, remote).expect("a remote client is refused");
        assert!(
            denied.starts_with("-DENIED ") && denied.contains("requirepass"),
            "{denied}"
        );
        assert_eq!(
            refusal(&exposed, &settings, local),
            None,
            "loopback clients are served"
        );
        let with_password = ServerSettings {
            requirepass: Some("pw".into()),
            ..ServerSettings::default()
        };
        assert_eq!(refusal(&exposed, &with_password, remote), None);
        let unprotected = ServerSettings {
            protected_mode: false,
            ..ServerSettings::default()
        };
        assert_eq!(refusal(&exposed, &unprotected, remote), None);
        let loopback_only = ServerState::new(ServerSettings::default(), CancellationToken::new(), false);
        assert_eq!(refusal(&loopback_only, &loopback_only.settings(), remote), None);
    }
}
