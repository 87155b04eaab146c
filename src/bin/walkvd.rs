//! walkvd: the walkv daemon. Thin on purpose: flags, configuration, logging,
//! then the library's server and engine.
//!
//! Exit codes: 0 clean stop; 1 could not listen; 2 usage or configuration
//! error; 3 data directory locked; 4 corruption found at start; 5 a write or
//! fsync failed (writes were fenced; restart to recover).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use walkv::config::{self, Config, Overrides};
use walkv::engine::{Engine, EngineError};
use walkv::log::LogError;
use walkv::server::{self, ServerState};
use walkv::service::{Notifier, activation, reload, supervise};

#[derive(Parser, Debug)]
#[command(
    name = "walkvd",
    version,
    about = "walkv: a durable key-value daemon speaking the Redis protocol"
)]
struct Args {
    /// Configuration file (TOML). Default: conf/walkv.toml if it exists.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on; repeat for several. Default 127.0.0.1.
    #[arg(long, value_name = "ADDR")]
    bind: Vec<String>,
    /// TCP port; 0 picks a free one (logged). Default 6380.
    #[arg(long)]
    port: Option<u16>,
    /// Data directory. Default ./data.
    #[arg(long, value_name = "PATH")]
    dir: Option<PathBuf>,
    /// When to fsync the log: always | everysec | no. Default always.
    #[arg(long)]
    fsync: Option<String>,
    /// Password clients must give with AUTH or HELLO.
    #[arg(long, value_name = "PASSWORD")]
    requirepass: Option<String>,
    /// error | warn | info | debug | trace (RUST_LOG overrides).
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
    /// text | json.
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Before any thread exists: the descriptors and the variables that
    // announce them are taken out of the environment.
    let activated = match activation::take_listeners() {
        Ok(listeners) => listeners,
        Err(err) => {
            eprintln!("walkvd: socket activation: {err}");
            return ExitCode::from(1);
        }
    };
    let overrides = Overrides {
        bind: args.bind,
        port: args.port,
        dir: args.dir,
        fsync: args.fsync,
        requirepass: args.requirepass,
        log_level: args.log_level,
        log_format: args.log_format,
    };
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("WALKV_"))
        .collect();
    let config = match config::load(args.config.as_deref(), &env, &overrides) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("walkvd: {err}");
            return ExitCode::from(2);
        }
    };
    let set_log_level = init_logging(&config);
    if std::env::var_os("TOKIO_WORKER_THREADS").is_some() {
        warn!("TOKIO_WORKER_THREADS is ignored: set server.workers (WALKV_SERVER__WORKERS) instead");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.worker_threads())
        .thread_name("walkv-worker")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("walkvd: cannot start the runtime: {err}");
            return ExitCode::from(1);
        }
    };
    let sources = Sources {
        file: args.config,
        env,
        overrides,
        set_log_level,
    };
    let code = runtime.block_on(run(config, sources, activated));
    ExitCode::from(code)
}

/// What the configuration was loaded from, kept to load it again on SIGHUP.
struct Sources {
    file: Option<PathBuf>,
    env: Vec<(String, String)>,
    overrides: Overrides,
    set_log_level: LogLevelHandle,
}

type LogLevelHandle = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// Installs the subscriber; returns how to change its level later (a
/// reload). `RUST_LOG`, when set, wins over the configuration, then and on
/// every reload.
fn init_logging(config: &Config) -> LogLevelHandle {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{EnvFilter, fmt, reload};

    let from_env = EnvFilter::try_from_default_env().ok();
    let pinned = from_env.is_some();
    let filter = from_env.unwrap_or_else(|| EnvFilter::new(&config.log.level));
    let (filter, handle) = reload::Layer::new(filter);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let json = config.log.format == "json";
    let text_layer = (!json).then(|| fmt::layer().with_ansi(ansi).with_writer(std::io::stderr));
    let json_layer = json.then(|| fmt::layer().json().with_writer(std::io::stderr));
    tracing_subscriber::registry()
        .with(filter)
        .with(text_layer)
        .with(json_layer)
        .init();
    Box::new(move |level: &str| {
        if pinned {
            return Err("RUST_LOG is set and takes precedence".into());
        }
        let filter = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
        handle.reload(filter).map_err(|e| e.to_string())
    })
}

async fn run(config: Config, sources: Sources, activated: Option<Vec<std::net::TcpListener>>) -> u8 {
    // Handlers first, before anything can tell systemd or a client that we
    // exist: a signal that comes early must meet them, not its default
    // action (which, for SIGHUP, ends the process).
    let signals = match Signals::install() {
        Ok(signals) => signals,
        Err(err) => {
            error!(error = %err, "cannot install signal handlers");
            return 1;
        }
    };
    let notifier = Arc::new(Notifier::from_env());
    notifier.status("opening the data directory");
    // Refuse at once if another daemon holds the directory, before binding
    // anything; the engine takes the lock for good when it opens.
    if let Err(code) = check_lock(&config) {
        return code;
    }
    let listeners = match listen(&config, activated).await {
        Ok(listeners) => listeners,
        Err(err) => {
            error!(error = %format!("{err:#}"), "cannot listen");
            return 1;
        }
    };
    let addrs: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    let listening = addrs.join(",");
    info!(
        version = env!("CARGO_PKG_VERSION"),
        listen = %listening,
        dir = %config.storage.dir.display(),
        fsync = %config.storage.fsync,
        workers = config.worker_threads(),
        "walkvd starting"
    );
    let exposed = listeners
        .iter()
        .any(|l| l.local_addr().is_ok_and(|a| !a.ip().is_loopback()));
    let shutdown = CancellationToken::new();
    let state = ServerState::new(config.server_settings(), shutdown.clone(), exposed);
    let serving = tokio::spawn(server::serve(listeners, state.clone(), shutdown.clone()));
    tokio::spawn(stop_on_signals(
        signals.term,
        signals.int,
        shutdown.clone(),
        notifier.clone(),
    ));
    tokio::spawn(reload_on_sighup(
        signals.hup,
        config.clone(),
        sources,
        state.clone(),
        notifier.clone(),
    ));

    let engine_config = config.engine_config();
    let progress = state.progress.clone();
    let loading = tokio::spawn(supervise::report_loading(
        notifier.clone(),
        progress.clone(),
        listening.clone(),
        LOADING_REPORT_EVERY,
    ));
    let opened = off_runtime("walkv-open", move || {
        Engine::open_with_progress(engine_config, &progress)
    })
    .await;
    loading.abort();
    let engine = match opened {
        Ok(Ok(engine)) => Arc::new(engine),
        Ok(Err(err)) => {
            shutdown.cancel();
            let _ = serving.await;
            return open_failure(&config, &err);
        }
        Err(reason) => {
            error!(%reason, "opening the engine failed");
            return 1;
        }
    };
    state.set_engine(engine.clone());
    info!(keys = engine.len(), "ready to accept commands");
    notifier.send(&format!(
        "READY=1\nSTATUS={}",
        supervise::serving_status(&state, &listening)
    ));
    tokio::spawn(server::watch_fencing(state.clone(), shutdown.clone()));
    spawn_supervision(&notifier, &state, listening, &shutdown);

    let _ = serving.await;
    info!("shutting down: connections closed, closing the log");
    let code = state.exit_code();
    let closed = off_runtime("walkv-close", move || engine.close()).await;
    match closed {
        Ok(Ok(())) if code == 0 => {
            info!("clean shutdown");
            0
        }
        Ok(Ok(())) => code as u8,
        Ok(Err(err)) => {
            error!(error = %err, "closing the log failed");
            5
        }
        Err(reason) => {
            error!(%reason, "closing the log failed");
            5
        }
    }
}

/// Runs blocking work on a thread of its own, named for `top -H`, rather
/// than tokio's blocking pool, whose threads would carry the workers' name
/// and linger. Err says why `work` gave no result: it panicked (with the
/// panic's message) or its thread could not start.
async fn off_runtime<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            let _ = tx.send(done.map_err(|panic| panic_message(&*panic)));
        })
        .map_err(|err| format!("cannot start thread {name}: {err}"))?;
    rx.await
        .unwrap_or_else(|_| Err(format!("thread {name} ended without a result")))
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    format!("panicked: {message}")
}

/// How often start-up progress goes to systemd.
const LOADING_REPORT_EVERY: Duration = Duration::from_millis(500);
/// How often the serving status goes to systemd.
const SERVING_REPORT_EVERY: Duration = Duration::from_secs(5);

/// The watchdog (when systemd asked for one) and the periodic status.
fn spawn_supervision(
    notifier: &Arc<Notifier>,
    state: &Arc<ServerState>,
    listening: String,
    shutdown: &CancellationToken,
) {
    if !notifier.is_enabled() {
        return;
    }
    if let Some(interval) = walkv::service::notify::watchdog_interval() {
        info!(
            interval_ms = interval.as_millis() as u64,
            "systemd watchdog enabled"
        );
        let (notifier, state, shutdown) = (notifier.clone(), state.clone(), shutdown.clone());
        tokio::spawn(async move {
            // Half the interval: a probe, then the sleep, so pings stay
            // within 1.5 intervals (three quarters of WatchdogSec) apart.
            let probe = || supervise::engine_answers(&state, interval / 2);
            supervise::watchdog(&notifier, interval, shutdown, probe).await;
        });
    }
    tokio::spawn(supervise::report_serving(
        notifier.clone(),
        state.clone(),
        listening,
        SERVING_REPORT_EVERY,
        shutdown.clone(),
    ));
}

/// On SIGHUP: load the configuration again from the same sources, apply
/// what can change at run time, and log what cannot. A configuration that
/// does not load is logged and changes nothing.
async fn reload_on_sighup(
    mut hup: Signal,
    mut current: Config,
    sources: Sources,
    state: Arc<ServerState>,
    notifier: Arc<Notifier>,
) {
    while hup.recv().await.is_some() {
        notifier.reloading();
        info!("SIGHUP received: reloading the configuration");
        match config::load(sources.file.as_deref(), &sources.env, &sources.overrides) {
            Ok(new) => {
                let (effective, report) = reload::apply(&current, &new, &state, &*sources.set_log_level);
                current = effective;
                if !report.needs_restart.is_empty() {
                    warn!(keys = ?report.needs_restart, "changed, but only a restart applies them");
                }
                info!(applied = ?report.applied, "configuration reloaded");
                reloaded(&notifier, &state, "configuration reloaded");
            }
            Err(err) => {
                error!(error = %err, "reload failed; the running configuration is unchanged");
                reloaded(&notifier, &state, &format!("reload failed: {err}"));
            }
        }
    }
}

fn check_lock(config: &Config) -> Result<(), u8> {
    let dir = &config.storage.dir;
    let locked = walkv::log::dir::create_dir(dir).and_then(|()| walkv::log::dir::lock(dir));
    match locked {
        Ok(lock) => {
            drop(lock);
            Ok(())
        }
        Err(LogError::Locked { dir }) => {
            eprintln!(
                "walkvd: data directory {} is in use by another walkvd",
                dir.display()
            );
            error!(dir = %dir.display(), "data directory is locked by another process");
            Err(3)
        }
        Err(err) => {
            eprintln!("walkvd: {err}");
            error!(error = %err, "cannot use the data directory");
            Err(1)
        }
    }
}

/// The sockets systemd passed, or new ones bound as configured.
async fn listen(
    config: &Config,
    activated: Option<Vec<std::net::TcpListener>>,
) -> anyhow::Result<Vec<TcpListener>> {
    let Some(activated) = activated else {
        return bind(config).await;
    };
    info!(
        sockets = activated.len(),
        "serving on sockets passed by systemd; server.bind and server.port are not used"
    );
    let listeners = activated
        .into_iter()
        .map(TcpListener::from_std)
        .collect::<Result<Vec<_>, _>>()
        .context("adopting a socket passed by systemd")?;
    server::log_listening(&listeners);
    Ok(listeners)
}

async fn bind(config: &Config) -> anyhow::Result<Vec<TcpListener>> {
    let mut listeners = Vec::new();
    for host in &config.server.bind {
        let addr: SocketAddr = format!("{host}:{}", config.server.port)
            .parse()
            .or_else(|_| format!("[{host}]:{}", config.server.port).parse())
            .with_context(|| format!("bad bind address {host:?}"))?;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        listeners.push(listener);
    }
    server::log_listening(&listeners);
    Ok(listeners)
}

fn open_failure(config: &Config, err: &EngineError) -> u8 {
    let dir = config.storage.dir.display();
    match err {
        EngineError::Log(LogError::Locked { dir }) => {
            eprintln!(
                "walkvd: data directory {} is in use by another walkvd",
                dir.display()
            );
            3
        }
        EngineError::Log(LogError::Corruption { .. }) | EngineError::Corruption { .. } => {
            eprintln!("walkvd: {err}");
            error!(error = %err, %dir, "refusing to start on a damaged data directory; nothing was changed");
            4
        }
        other => {
            eprintln!("walkvd: {other}");
            error!(error = %other, "cannot open the data directory");
            if other.is_fatal() { 5 } else { 1 }
        }
    }
}

/// The signals walkvd handles, installed together.
struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

/// The end of a reload. A reload during replay must not say READY=1: that
/// would end systemd's start-up wait (and its EXTEND_TIMEOUT_USEC grace)
/// before the engine serves; start-up sends READY=1 itself when it does.
fn reloaded(notifier: &Notifier, state: &ServerState, status: &str) {
    if state.engine().is_some() {
        notifier.send(&format!("READY=1\nSTATUS={status}"));
    } else {
        notifier.status(status);
    }
}

async fn stop_on_signals(
    mut term: Signal,
    mut int: Signal,
    shutdown: CancellationToken,
    notifier: Arc<Notifier>,
) {
    tokio::select! {
        _ = term.recv() => info!("SIGTERM received"),
        _ = int.recv() => info!("SIGINT received"),
        // SHUTDOWN, or a fenced engine: stopping all the same.
        _ = shutdown.cancelled() => {}
    }
    notifier.send("STOPPING=1\nSTATUS=shutting down");
    shutdown.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_runtime_returns_the_result_or_says_what_the_panic_said() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let done = runtime.block_on(off_runtime("walkv-test", || 7));
        assert_eq!(done, Ok(7));
        let panicked = runtime.block_on(off_runtime("walkv-test", || -> u8 { panic!("boom {}", 1) }));
        assert_eq!(panicked, Err("panicked: boom 1".to_string()));
    }
}
