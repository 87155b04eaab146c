//! What the connections share: the engine (once loaded), the clients, the
//! counters, and the settings that `CONFIG SET` may change at run time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::cmd::introspection::ALL_COMMANDS;
use crate::cmd::{ServerInfo, Session};
use crate::engine::{Engine, LoadProgress};
use crate::protocol::Limits;

/// Settings of the server (the engine has its own).
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub maxclients: usize,
    /// Close a client idle this long; 0 = never (Redis's `timeout`).
    pub timeout_secs: u64,
    pub limits: Limits,
    /// Largest read buffer a client may fill (`client-query-buffer-limit`).
    pub max_query_buffer_bytes: usize,
    /// Replies buffered for a client before the server writes them out and
    /// stops reading from it until they are taken.
    pub max_output_bytes: usize,
    pub requirepass: Option<String>,
    /// Refuse non-loopback clients when bound beyond loopback without a
    /// password (Redis's protected mode).
    pub protected_mode: bool,
    /// `CONFIG GET` pairs that come from the daemon's configuration.
    pub config_pairs: Vec<(String, String)>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            maxclients: 10_000,
            timeout_secs: 0,
            limits: Limits::default(),
            max_query_buffer_bytes: 1 << 30,
            max_output_bytes: 64 << 10,
            requirepass: None,
            protected_mode: true,
            config_pairs: Vec::new(),
        }
    }
}

/// See [`ServerState::connection_limits`].
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub limits: Limits,
    pub timeout_secs: u64,
    pub max_query_buffer_bytes: usize,
    pub max_output_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub addr: SocketAddr,
    /// The local end: which of the server's addresses it connected to.
    pub laddr: Option<SocketAddr>,
    pub name: String,
    pub connected: Instant,
    /// Cancelled by `CLIENT KILL`; the connection's loop watches it.
    pub kill: CancellationToken,
}

pub struct ServerState {
    engine: OnceLock<Arc<Engine>>,
    pub progress: Arc<LoadProgress>,
    pub settings: RwLock<ServerSettings>,
    pub clients: Mutex<BTreeMap<u64, ClientInfo>>,
    next_client_id: AtomicU64,
    pub connections_received: AtomicU64,
    pub commands_processed: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub started: Instant,
    shutdown: CancellationToken,
    exit_code: AtomicI32,
    /// Whether any listener is bound beyond loopback.
    pub exposed: bool,
    /// Calls and microseconds per command, indexed like
    /// [`crate::cmd::introspection::ALL_COMMANDS`].
    command_calls: Box<[(AtomicU64, AtomicU64)]>,
}

impl ServerState {
    pub fn new(settings: ServerSettings, shutdown: CancellationToken, exposed: bool) -> Arc<ServerState> {
        Arc::new(ServerState {
            engine: OnceLock::new(),
            progress: Arc::new(LoadProgress::default()),
            settings: RwLock::new(settings),
            clients: Mutex::new(BTreeMap::new()),
            next_client_id: AtomicU64::new(1),
            connections_received: AtomicU64::new(0),
            commands_processed: AtomicU64::new(0),
            rejected_connections: AtomicU64::new(0),
            started: Instant::now(),
            shutdown,
            exit_code: AtomicI32::new(0),
            exposed,
            command_calls: ALL_COMMANDS.iter().map(|_| Default::default()).collect(),
        })
    }

    /// The engine, once replay has finished.
    pub fn engine(&self) -> Option<&Arc<Engine>> {
        self.engine.get()
    }

    pub fn set_engine(&self, engine: Arc<Engine>) {
        let _ = self.engine.set(engine);
    }

    pub fn settings(&self) -> ServerSettings {
        self.settings.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The settings a connection needs on every pass of its loop, copied
    /// without allocating (the full [`ServerSettings`] holds strings).
    pub fn connection_limits(&self) -> ConnectionLimits {
        let s = self.settings.read().unwrap_or_else(|e| e.into_inner());
        ConnectionLimits {
            limits: s.limits,
            timeout_secs: s.timeout_secs,
            max_query_buffer_bytes: s.max_query_buffer_bytes,
            max_output_bytes: s.max_output_bytes,
        }
    }

    pub fn new_client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn exit_code(&self) -> i32 {
        self.exit_code.load(Ordering::Relaxed)
    }

    pub fn set_exit_code(&self, code: i32) {
        self.exit_code.store(code, Ordering::Relaxed);
    }

    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.shutdown
    }
}

impl ServerInfo for ServerState {
    fn info_sections(&self, _session: &Session) -> Vec<(&'static str, Vec<(String, String)>)> {
        let f = |k: &str, v: String| (k.to_string(), v);
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner()).len();
        let settings = self.settings();
        vec![
            (
                "server",
                vec![
                    f("redis_version", crate::cmd::server::REDIS_COMPAT_VERSION.into()),
                    f("walkv_version", env!("CARGO_PKG_VERSION").into()),
                    f("redis_mode", "standalone".into()),
                    f("process_id", std::process::id().to_string()),
                    f("uptime_in_seconds", self.started.elapsed().as_secs().to_string()),
                ],
            ),
            (
                "clients",
                vec![
                    f("connected_clients", clients.to_string()),
                    f("maxclients", settings.maxclients.to_string()),
                ],
            ),
            ("memory", vec![f("used_memory_rss", rss_bytes().to_string())]),
            ("commandstats", self.command_stats()),
            (
                "stats",
                vec![
                    f(
                        "total_connections_received",
                        self.connections_received.load(Ordering::Relaxed).to_string(),
                    ),
                    f(
                        "total_commands_processed",
                        self.commands_processed.load(Ordering::Relaxed).to_string(),
                    ),
                    f(
                        "rejected_connections",
                        self.rejected_connections.load(Ordering::Relaxed).to_string(),
                    ),
                ],
            ),
        ]
    }

    fn config_pairs(&self) -> Vec<(String, String)> {
        let s = self.settings();
        let mut pairs = s.config_pairs.clone();
        pairs.retain(|(k, _)| !["maxclients", "timeout", "requirepass"].contains(&k.as_str()));
        pairs.push(("maxclients".into(), s.maxclients.to_string()));
        pairs.push(("timeout".into(), s.timeout_secs.to_string()));
        pairs.push(("requirepass".into(), s.requirepass.clone().unwrap_or_default()));
        pairs.push(("proto-max-bulk-len".into(), s.limits.max_bulk_bytes.to_string()));
        pairs.sort();
        pairs
    }

    fn config_set(&self, key: &str, value: &str) -> Result<(), String> {
        let mut s = self.settings.write().unwrap_or_else(|e| e.into_inner());
        // Ranges as Redis checks them: maxclients 0 would lock everyone out,
        // including the client that could undo it. A number is parsed first
        // and checked against its range second, so "-1" is out of range (as
        // in Redis), not unparsable.
        let in_range = |n: i128, min: u64, max: u64| {
            if n < min as i128 || n > max as i128 {
                return Err(format!("argument must be between {min} and {max} inclusive"));
            }
            Ok(n as u64)
        };
        let number = |min: u64, max: u64| {
            let n = value
                .parse::<i128>()
                .map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
            in_range(n, min, max)
        };
        let memory = |min: u64, max: u64| {
            let n = parse_memory(value).ok_or_else(|| "argument must be a memory value".to_string())?;
            in_range(n as i128, min, max)
        };
        match key {
            "maxclients" => s.maxclients = number(1, u32::MAX as u64)? as usize,
            "timeout" => s.timeout_secs = number(0, i32::MAX as u64)?,
            "requirepass" => s.requirepass = (!value.is_empty()).then(|| value.to_string()),
            "proto-max-bulk-len" => {
                s.limits.max_bulk_bytes = memory(1 << 20, i64::MAX as u64)? as usize;
                if let Some(engine) = self.engine() {
                    engine.set_max_value_bytes(s.limits.max_bulk_bytes);
                }
            }
            _ => return Err("Unknown option or number of arguments for CONFIG SET".into()),
        }
        Ok(())
    }

    fn requirepass(&self) -> Option<String> {
        self.settings().requirepass
    }

    fn client_list(&self, only: Option<u64>) -> String {
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .iter()
            .filter(|(id, _)| only.is_none_or(|only| only == **id))
            .map(|(id, c)| {
                let laddr = c.laddr.map(|a| a.to_string()).unwrap_or_default();
                format!(
                    "id={id} addr={} laddr={laddr} name={} age={}\n",
                    c.addr,
                    c.name,
                    c.connected.elapsed().as_secs()
                )
            })
            .collect()
    }

    fn count_command(&self, name: &str, micros: u64) {
        if let Some(i) = crate::cmd::introspection::command_index(name) {
            self.command_calls[i].0.fetch_add(1, Ordering::Relaxed);
            self.command_calls[i].1.fetch_add(micros, Ordering::Relaxed);
        }
    }

    fn kill_clients(&self, id: Option<u64>, addr: Option<&str>) -> usize {
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let mut killed = 0;
        for (client_id, c) in clients.iter() {
            if id.is_some_and(|i| i != *client_id) || addr.is_some_and(|a| a != c.addr.to_string()) {
                continue;
            }
            c.kill.cancel();
            killed += 1;
        }
        killed
    }

    fn shutdown(&self) {
        self.shutdown.cancel();
    }
}

impl ServerState {
    fn command_stats(&self) -> Vec<(String, String)> {
        ALL_COMMANDS
            .iter()
            .zip(self.command_calls.iter())
            .filter_map(|(name, (calls, usec))| {
                let calls = calls.load(Ordering::Relaxed);
                let usec = usec.load(Ordering::Relaxed);
                (calls > 0).then(|| {
                    (
                        format!("cmdstat_{}", name.to_ascii_lowercase()),
                        format!(
                            "calls={calls},usec={usec},usec_per_call={:.2},rejected_calls=0,failed_calls=0",
                            usec as f64 / calls as f64
                        ),
                    )
                })
            })
            .collect()
    }
}

/// A size as Redis's configuration writes it: bytes, or with a unit `k`,
/// `m`, `g` (powers of 1000) or `kb`, `mb`, `gb` (powers of 1024), any case.
fn parse_memory(value: &str) -> Option<u64> {
    let lower = value.to_ascii_lowercase();
    let split = lower.find(|c: char| !c.is_ascii_digit()).unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    let scale: u64 = match unit {
        "" | "b" => 1,
        "k" => 1_000,
        "kb" => 1 << 10,
        "m" => 1_000_000,
        "mb" => 1 << 20,
        "g" => 1_000_000_000,
        "gb" => 1 << 30,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(scale)
}

/// Resident set size, from /proc (0 where unavailable).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::parse_memory;

    #[test]
    fn memory_values_read_as_redis_reads_them() {
        assert_eq!(parse_memory("1048576"), Some(1 << 20));
        assert_eq!(parse_memory("2mb"), Some(2 << 20));
        assert_eq!(parse_memory("2MB"), Some(2 << 20));
        assert_eq!(parse_memory("3k"), Some(3000));
        assert_eq!(parse_memory("1gb"), Some(1 << 30));
        assert_eq!(parse_memory("-5"), None);
        assert_eq!(parse_memory("abc"), None);
        assert_eq!(parse_memory("5tb"), None);
        assert_eq!(parse_memory(""), None);
    }
}
