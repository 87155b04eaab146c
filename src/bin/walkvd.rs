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

use anyhow::Context as _;
use clap::Parser;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};
use walkv::config::{self, Config, Overrides};
use walkv::engine::{Engine, EngineError};
use walkv::log::LogError;
use walkv::server::{self, ServerState};

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
    init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("walkvd: cannot start the runtime: {err}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(run(config));
    ExitCode::from(code)
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if config.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(config: Config) -> u8 {
    // Refuse at once if another daemon holds the directory, before binding
    // anything; the engine takes the lock for good when it opens.
    if let Err(code) = check_lock(&config) {
        return code;
    }
    let listeners = match bind(&config).await {
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
    info!(
        version = env!("CARGO_PKG_VERSION"),
        listen = %addrs.join(","),
        dir = %config.storage.dir.display(),
        fsync = %config.storage.fsync,
        "walkvd starting"
    );
    let exposed = listeners
        .iter()
        .any(|l| l.local_addr().is_ok_and(|a| !a.ip().is_loopback()));
    let shutdown = CancellationToken::new();
    let state = ServerState::new(config.server_settings(), shutdown.clone(), exposed);
    let serving = tokio::spawn(server::serve(listeners, state.clone(), shutdown.clone()));
    tokio::spawn(stop_on_signals(shutdown.clone()));

    let engine_config = config.engine_config();
    let progress = state.progress.clone();
    let opened =
        tokio::task::spawn_blocking(move || Engine::open_with_progress(engine_config, &progress)).await;
    let engine = match opened {
        Ok(Ok(engine)) => Arc::new(engine),
        Ok(Err(err)) => {
            shutdown.cancel();
            let _ = serving.await;
            return open_failure(&config, &err);
        }
        Err(join) => {
            error!(error = %join, "engine open panicked");
            return 1;
        }
    };
    state.set_engine(engine.clone());
    info!(keys = engine.len(), "ready to accept commands");
    tokio::spawn(server::watch_fencing(state.clone(), shutdown.clone()));

    let _ = serving.await;
    info!("shutting down: connections closed, closing the log");
    let code = state.exit_code();
    let closed = tokio::task::spawn_blocking(move || engine.close()).await;
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
        Err(_) => 5,
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

async fn stop_on_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        return;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM received"),
        _ = int.recv() => info!("SIGINT received"),
        _ = shutdown.cancelled() => return,
    }
    shutdown.cancel();
}
