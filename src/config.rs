//! The daemon's configuration, in layers: built-in defaults, then the file
//! (`--config`, or `conf/walkv.toml` if present), then environment variables
//! `WALKV_<SECTION>__<KEY>`, then command-line flags. Unknown keys and
//! invalid values are errors that name the key and what it accepts.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::engine::{EngineConfig, FsyncPolicy};
use crate::log::LogConfig;
use crate::protocol::Limits;
use crate::server::ServerSettings;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerSection,
    pub storage: StorageSection,
    pub limits: LimitsSection,
    pub log: LogSection,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    pub bind: Vec<String>,
    pub port: u16,
    pub requirepass: String,
    pub protected_mode: bool,
    pub maxclients: usize,
    pub timeout: u64,
    /// Threads that serve clients; 0 picks [`Config::worker_threads`]'s default.
    pub workers: usize,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    pub dir: PathBuf,
    pub fsync: String,
    pub max_segment_bytes: u64,
    pub snapshot_min_log_bytes: u64,
    pub snapshot_log_percent: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    pub proto_max_bulk_len: usize,
    pub max_inline_bytes: usize,
    pub max_args: usize,
    pub client_query_buffer_limit: usize,
    pub client_output_buffer_bytes: usize,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    pub level: String,
    pub format: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerSection {
                bind: vec!["127.0.0.1".into()],
                port: 6380,
                requirepass: String::new(),
                protected_mode: true,
                maxclients: 10_000,
                timeout: 0,
                workers: 0,
            },
            storage: StorageSection {
                dir: PathBuf::from("./data"),
                fsync: "always".into(),
                max_segment_bytes: LogConfig::default().max_segment_bytes,
                snapshot_min_log_bytes: 64 << 20,
                snapshot_log_percent: 100,
            },
            limits: LimitsSection {
                proto_max_bulk_len: 512 << 20,
                max_inline_bytes: 64 << 10,
                max_args: 1 << 20,
                client_query_buffer_limit: 1 << 30,
                client_output_buffer_bytes: 64 << 10,
            },
            log: LogSection {
                level: "info".into(),
                format: "text".into(),
            },
        }
    }
}

impl Default for ServerSection {
    fn default() -> Self {
        Config::default().server
    }
}
impl Default for StorageSection {
    fn default() -> Self {
        Config::default().storage
    }
}
impl Default for LimitsSection {
    fn default() -> Self {
        Config::default().limits
    }
}
impl Default for LogSection {
    fn default() -> Self {
        Config::default().log
    }
}

/// The most `server.workers` accepted: far beyond any core count it helps.
const MAX_WORKERS: usize = 1024;

/// Values given on the command line; they override everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub bind: Vec<String>,
    pub port: Option<u16>,
    pub dir: Option<PathBuf>,
    pub fsync: Option<String>,
    pub requirepass: Option<String>,
    pub log_level: Option<String>,
    pub log_format: Option<String>,
}

/// Loads the configuration: defaults, `file` (or `conf/walkv.toml` if it
/// exists and no file was named), the environment, then `overrides`.
pub fn load(file: Option<&Path>, env: &[(String, String)], overrides: &Overrides) -> Result<Config, String> {
    let mut builder = config::Config::builder();
    let default_file = Path::new("conf/walkv.toml");
    match file {
        Some(path) => {
            if !path.is_file() {
                return Err(format!("configuration file {} does not exist", path.display()));
            }
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        None if default_file.is_file() => {
            builder = builder.add_source(config::File::from(default_file).format(config::FileFormat::Toml));
        }
        None => {}
    }
    let env_source = config::Environment::with_prefix("WALKV")
        .prefix_separator("_")
        .separator("__")
        .list_separator(",")
        .with_list_parse_key("server.bind")
        // Values stay strings (a password "0123" must not become 123);
        // numeric keys are converted when deserialised.
        .try_parsing(false)
        .source(Some(env.iter().cloned().collect()));
    builder = builder.add_source(env_source);
    let mut config: Config = builder
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| format!("invalid configuration: {e}"))?;
    apply(&mut config, overrides);
    config.validate()?;
    Ok(config)
}

fn apply(config: &mut Config, o: &Overrides) {
    if !o.bind.is_empty() {
        config.server.bind = o.bind.clone();
    }
    if let Some(port) = o.port {
        config.server.port = port;
    }
    if let Some(dir) = &o.dir {
        config.storage.dir = dir.clone();
    }
    if let Some(fsync) = &o.fsync {
        config.storage.fsync = fsync.clone();
    }
    if let Some(pass) = &o.requirepass {
        config.server.requirepass = pass.clone();
    }
    if let Some(level) = &o.log_level {
        config.log.level = level.clone();
    }
    if let Some(format) = &o.log_format {
        config.log.format = format.clone();
    }
}

impl Config {
    /// Checks every value that has a fixed set of choices or a range.
    pub fn validate(&self) -> Result<(), String> {
        let bad = |key: &str, value: &dyn std::fmt::Display, allowed: &str| {
            Err(format!(
                "invalid value '{value}' for {key}: allowed values are {allowed}"
            ))
        };
        if FsyncPolicy::parse(&self.storage.fsync).is_none() {
            return bad("storage.fsync", &self.storage.fsync, "always, everysec, no");
        }
        if !["text", "json"].contains(&self.log.format.as_str()) {
            return bad("log.format", &self.log.format, "text, json");
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return bad(
                "log.level",
                &self.log.level,
                "error, warn, info, debug, trace (or a RUST_LOG filter)",
            );
        }
        if self.server.bind.is_empty() {
            return bad("server.bind", &"[]", "one or more addresses");
        }
        if self.server.maxclients == 0 {
            return bad("server.maxclients", &0, "1 or more");
        }
        if self.server.workers > MAX_WORKERS {
            return bad(
                "server.workers",
                &self.server.workers,
                &format!("0 (half the cores) to {MAX_WORKERS}"),
            );
        }
        self.engine_config().log.validate().map_err(|e| e.to_string())?;
        Ok(())
    }

    /// How many threads serve clients: `server.workers`, or half the cores
    /// (at least one) when it is 0. Writes take one lock whatever the count,
    /// so more threads only help reads and the protocol work, and every
    /// thread beyond what the cores hold takes CPU from the clients, the
    /// fsync thread and the snapshot (docs/benchmarks.md: on 2 cores one
    /// worker served more requests than two without pipelining, and fewer
    /// pipelined GETs).
    pub fn worker_threads(&self) -> usize {
        if self.server.workers > 0 {
            return self.server.workers;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores / 2).max(1)
    }

    pub fn engine_config(&self) -> EngineConfig {
        let mut engine = EngineConfig::new(&self.storage.dir);
        engine.fsync = FsyncPolicy::parse(&self.storage.fsync).unwrap_or_default();
        engine.log.max_segment_bytes = self.storage.max_segment_bytes;
        engine.snapshot_min_log_bytes = self.storage.snapshot_min_log_bytes;
        engine.snapshot_log_percent = self.storage.snapshot_log_percent;
        engine.max_value_bytes = self.limits.proto_max_bulk_len;
        engine
    }

    pub fn server_settings(&self) -> ServerSettings {
        ServerSettings {
            maxclients: self.server.maxclients,
            timeout_secs: self.server.timeout,
            limits: Limits {
                max_bulk_bytes: self.limits.proto_max_bulk_len,
                max_args: self.limits.max_args,
                max_inline_bytes: self.limits.max_inline_bytes,
            },
            max_query_buffer_bytes: self.limits.client_query_buffer_limit,
            max_output_bytes: self.limits.client_output_buffer_bytes,
            requirepass: (!self.server.requirepass.is_empty()).then(|| self.server.requirepass.clone()),
            protected_mode: self.server.protected_mode,
            config_pairs: self.pairs(),
        }
    }

    /// `CONFIG GET`'s view: Redis's names where Redis has the setting.
    fn pairs(&self) -> Vec<(String, String)> {
        vec![
            ("bind".into(), self.server.bind.join(" ")),
            ("port".into(), self.server.port.to_string()),
            (
                "protected-mode".into(),
                if self.server.protected_mode { "yes" } else { "no" }.into(),
            ),
            ("dir".into(), self.storage.dir.display().to_string()),
            ("appendonly".into(), "yes".into()),
            ("appendfsync".into(), self.storage.fsync.clone()),
            ("save".into(), String::new()),
            ("databases".into(), "1".into()),
            ("loglevel".into(), self.log.level.clone()),
            (
                "client-query-buffer-limit".into(),
                self.limits.client_query_buffer_limit.to_string(),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn layers_apply_in_order_file_env_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.toml");
        std::fs::write(
            &file,
            "[server]\nport = 7001\nmaxclients = 5\n[storage]\nfsync = \"no\"\n",
        )
        .unwrap();
        let c = load(Some(&file), &env(&[]), &Overrides::default()).unwrap();
        assert_eq!(
            (c.server.port, c.server.maxclients, c.storage.fsync.as_str()),
            (7001, 5, "no")
        );
        let e = env(&[
            ("WALKV_SERVER__PORT", "7002"),
            ("WALKV_STORAGE__FSYNC", "everysec"),
        ]);
        let c = load(Some(&file), &e, &Overrides::default()).unwrap();
        assert_eq!(
            (c.server.port, c.storage.fsync.as_str(), c.server.maxclients),
            (7002, "everysec", 5)
        );
        let flags = Overrides {
            port: Some(7003),
            ..Overrides::default()
        };
        let c = load(Some(&file), &e, &flags).unwrap();
        assert_eq!(c.server.port, 7003);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.toml");
        std::fs::write(&file, "[server]\nprot = 1\n").unwrap();
        let err = load(Some(&file), &[], &Overrides::default()).unwrap_err();
        assert!(err.contains("prot"), "{err}");
        std::fs::write(&file, "[storage]\nfsync = \"sometimes\"\n").unwrap();
        let err = load(Some(&file), &[], &Overrides::default()).unwrap_err();
        assert!(
            err.contains("storage.fsync") && err.contains("always, everysec, no"),
            "{err}"
        );
        let err = load(
            None,
            &env(&[("WALKV_SERVER__PORT", "notaport")]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(err.contains("port"), "{err}");
    }

    #[test]
    fn workers_default_to_half_the_cores_and_are_bounded() {
        let cores = std::thread::available_parallelism().unwrap().get();
        let mut c = Config::default();
        assert_eq!(c.worker_threads(), (cores / 2).max(1));
        c.server.workers = 3;
        assert_eq!(c.worker_threads(), 3);
        c.server.workers = MAX_WORKERS + 1;
        let err = c.validate().unwrap_err();
        assert!(err.contains("server.workers") && err.contains("1024"), "{err}");
    }
}
