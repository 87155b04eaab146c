//! Reloading the configuration (SIGHUP): which changes take effect at run
//! time and which need a restart. The daemon re-reads the same layers it
//! started with (file, environment, flags), so a flag still wins over the
//! file after a reload.
//!
//! At run time: the password, client limits (`maxclients`, `timeout`,
//! protected mode, request and buffer limits), the snapshot thresholds and
//! the log level. Not at run time: where to listen, the number of worker
//! threads, the data directory, the fsync policy, the segment size and the
//! log format: each is fixed by what was opened, bound or started at start,
//! and the reload says so in the log.

use crate::config::Config;
use crate::server::ServerState;

/// What a reload did.
#[derive(Debug, Default, PartialEq)]
pub struct Reload {
    /// Keys whose new value took effect.
    pub applied: Vec<&'static str>,
    /// Keys that changed in the configuration but keep their old value
    /// until a restart.
    pub needs_restart: Vec<&'static str>,
}

/// Applies what may change at run time from `new` (compared with
/// `current`, the configuration in effect) to the server, the engine and
/// the log filter. Returns the configuration now in effect: `new`, with the
/// keys that need a restart kept at their current values, so that the next
/// reload compares against what is really running.
pub fn apply(
    current: &Config,
    new: &Config,
    state: &ServerState,
    set_log_level: &dyn Fn(&str) -> Result<(), String>,
) -> (Config, Reload) {
    let mut effective = new.clone();
    let mut report = Reload::default();

    // Fixed at start: report and keep.
    let mut keep = |key: &'static str, changed: bool| {
        if changed {
            report.needs_restart.push(key);
        }
    };
    keep("server.bind", current.server.bind != new.server.bind);
    keep("server.port", current.server.port != new.server.port);
    keep("server.workers", current.worker_threads() != new.worker_threads());
    keep("storage.dir", current.storage.dir != new.storage.dir);
    keep("storage.fsync", current.storage.fsync != new.storage.fsync);
    keep(
        "storage.max_segment_bytes",
        current.storage.max_segment_bytes != new.storage.max_segment_bytes,
    );
    keep("log.format", current.log.format != new.log.format);
    effective.server.bind = current.server.bind.clone();
    effective.server.port = current.server.port;
    effective.server.workers = current.server.workers;
    effective.storage.dir = current.storage.dir.clone();
    effective.storage.fsync = current.storage.fsync.clone();
    effective.storage.max_segment_bytes = current.storage.max_segment_bytes;
    effective.log.format = current.log.format.clone();

    if current.log.level != new.log.level {
        match set_log_level(&new.log.level) {
            Ok(()) => report.applied.push("log.level"),
            Err(_) => {
                report.needs_restart.push("log.level");
                effective.log.level = current.log.level.clone();
            }
        }
    }

    let snapshot = &new.storage;
    if (
        current.storage.snapshot_min_log_bytes,
        current.storage.snapshot_log_percent,
    ) != (snapshot.snapshot_min_log_bytes, snapshot.snapshot_log_percent)
    {
        // Before the engine is open (a reload during replay) the new values
        // cannot reach it: they apply at the next start, like the others
        // that need a restart.
        match state.engine() {
            Some(engine) => {
                engine
                    .set_snapshot_thresholds(snapshot.snapshot_min_log_bytes, snapshot.snapshot_log_percent);
                report.applied.push("storage.snapshot_*");
            }
            None => {
                report.needs_restart.push("storage.snapshot_*");
                effective.storage.snapshot_min_log_bytes = current.storage.snapshot_min_log_bytes;
                effective.storage.snapshot_log_percent = current.storage.snapshot_log_percent;
            }
        }
    }

    // Server settings: only the keys that changed in the configuration, so
    // that a value set with CONFIG SET survives a reload that left it alone.
    let fresh = effective.server_settings();
    let mut s = state.settings.write().unwrap_or_else(|e| e.into_inner());
    let mut set = |key: &'static str, changed: bool, assign: &mut dyn FnMut()| {
        if changed {
            assign();
            report.applied.push(key);
        }
    };
    let (c, n) = (current, &effective);
    set(
        "server.requirepass",
        c.server.requirepass != n.server.requirepass,
        &mut || s.requirepass = fresh.requirepass.clone(),
    );
    set(
        "server.maxclients",
        c.server.maxclients != n.server.maxclients,
        &mut || s.maxclients = fresh.maxclients,
    );
    set(
        "server.timeout",
        c.server.timeout != n.server.timeout,
        &mut || s.timeout_secs = fresh.timeout_secs,
    );
    set(
        "server.protected_mode",
        c.server.protected_mode != n.server.protected_mode,
        &mut || s.protected_mode = fresh.protected_mode,
    );
    set(
        "limits.proto_max_bulk_len",
        c.limits.proto_max_bulk_len != n.limits.proto_max_bulk_len,
        &mut || {
            s.limits.max_bulk_bytes = fresh.limits.max_bulk_bytes;
            if let Some(engine) = state.engine() {
                engine.set_max_value_bytes(fresh.limits.max_bulk_bytes);
            }
        },
    );
    set(
        "limits.max_inline_bytes",
        c.limits.max_inline_bytes != n.limits.max_inline_bytes,
        &mut || s.limits.max_inline_bytes = fresh.limits.max_inline_bytes,
    );
    set(
        "limits.max_args",
        c.limits.max_args != n.limits.max_args,
        &mut || s.limits.max_args = fresh.limits.max_args,
    );
    set(
        "limits.client_query_buffer_limit",
        c.limits.client_query_buffer_limit != n.limits.client_query_buffer_limit,
        &mut || s.max_query_buffer_bytes = fresh.max_query_buffer_bytes,
    );
    set(
        "limits.client_output_buffer_bytes",
        c.limits.client_output_buffer_bytes != n.limits.client_output_buffer_bytes,
        &mut || s.max_output_bytes = fresh.max_output_bytes,
    );
    s.config_pairs = fresh.config_pairs;
    drop(s);
    (effective, report)
}
