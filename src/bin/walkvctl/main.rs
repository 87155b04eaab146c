//! walkvctl: the offline tool for a walkv data directory: `check`, `repair`,
//! `dump` and `stat`. Thin on purpose: arguments, the directory's lock, the
//! library's check, walk and cut functions ([`walkv::log::check`],
//! [`walkv::engine::snapshot::verify`]), and the report. See docs/walkvctl.md.
//!
//! Exit codes: 0 ok; 1 a torn tail only (`check`, `dump`); 2 usage, or the
//! tool could not run; 3 the directory is locked by a running daemon; 4
//! corruption.

mod inspect;
mod render;
mod repair;

use std::fs::File;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::anyhow;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use walkv::log::check::Status;
use walkv::log::{LogError, dir};

pub const EXIT_OK: u8 = 0;
pub const EXIT_TORN: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_LOCKED: u8 = 3;
pub const EXIT_CORRUPT: u8 = 4;

/// Below this many bytes of stores, no progress bar: the work takes well
/// under a second.
const PROGRESS_MIN_BYTES: u64 = 64 << 20;

#[derive(Parser, Debug)]
#[command(
    name = "walkvctl",
    version,
    about = "walkv's offline tool: check, repair, dump and stat a data directory"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate every segment, index and snapshot, and report; change nothing.
    /// Exit 0 clean, 1 torn tail only, 4 corruption.
    Check {
        dir: PathBuf,
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
        /// Do not require the lock: read beside a running daemon.
        #[arg(long)]
        read_only: bool,
    },
    /// Cut a torn tail and rebuild indexes, as the daemon's start would.
    /// Corruption is repaired only with --truncate-corrupt.
    Repair {
        dir: PathBuf,
        /// DANGEROUS: cut the log at the first corrupt record; the damaged
        /// bytes and every later segment move to DIR/quarantine/<time>/.
        #[arg(long)]
        truncate_corrupt: bool,
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Print one line per record: offset, segment, position, length, mutation.
    Dump {
        dir: PathBuf,
        /// The first offset to print.
        #[arg(long, value_name = "OFFSET", default_value_t = 0)]
        from: u64,
        /// Print at most N records.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Do not require the lock: read beside a running daemon.
        #[arg(long)]
        read_only: bool,
    },
    /// Sizes, offsets, the snapshot, and an estimate of the replay time.
    Stat {
        dir: PathBuf,
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
        /// Do not require the lock: read beside a running daemon.
        #[arg(long)]
        read_only: bool,
    },
}

/// A failure and the exit code it maps to.
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure {
            code: EXIT_USAGE,
            error: error.into(),
        }
    }
}

/// The directory the tool works on.
#[derive(Debug, Clone)]
pub struct Target {
    /// As given: a data directory, or a bare log directory.
    pub dir: PathBuf,
    /// The log: `dir/wal`, or `dir` itself for a bare log.
    pub wal: PathBuf,
    /// Whether `dir` is a daemon's data directory (snapshots, mutations).
    pub engine: bool,
}

/// The locks held while the tool works; dropping them releases them.
pub struct Locks {
    data: Option<File>,
    wal: Option<File>,
    /// `dir` is a bare log, whose lock is `data`.
    bare: bool,
}

impl Locks {
    /// Releases the log's own lock, so that the library's `Log::open` can
    /// take it. In a data directory the data lock stays held, which keeps a
    /// daemon out meanwhile.
    pub fn release_log(&mut self) {
        self.wal = None;
        if self.bare {
            self.data = None;
        }
    }
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .init();
    let args = Args::parse();
    let result = match args.command {
        Command::Check { dir, json, read_only } => check(&dir, json, read_only),
        Command::Repair {
            dir,
            truncate_corrupt,
            json,
        } => repair::run(&dir, truncate_corrupt, json),
        Command::Dump {
            dir,
            from,
            limit,
            json,
            read_only,
        } => render::dump(&dir, from, limit, json, read_only),
        Command::Stat { dir, json, read_only } => stat(&dir, json, read_only),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("walkvctl: {:#}", failure.error);
            ExitCode::from(failure.code)
        }
    }
}

fn check(dir: &Path, json: bool, read_only: bool) -> Result<u8, Failure> {
    let (target, _locks, live) = open(dir, read_only)?;
    let report = inspect::inspect(&target, live)?;
    render::print_check(&report, json)?;
    Ok(exit_code(report.status()))
}

fn stat(dir: &Path, json: bool, read_only: bool) -> Result<u8, Failure> {
    let (target, _locks, live) = open(dir, read_only)?;
    let report = inspect::inspect(&target, live)?;
    render::print_stat(&report, json)?;
    Ok(EXIT_OK)
}

pub fn exit_code(status: Status) -> u8 {
    match status {
        Status::Clean => EXIT_OK,
        Status::Torn => EXIT_TORN,
        Status::Corrupt => EXIT_CORRUPT,
    }
}

/// Resolves `dir` and takes its locks. With `read_only`, a lock held by
/// someone else is no refusal: the check runs `live`, beside the writer.
pub fn open(dir: &Path, read_only: bool) -> Result<(Target, Locks, bool), Failure> {
    let target = target(dir)?;
    let mut locks = Locks {
        data: None,
        wal: None,
        bare: !target.engine,
    };
    locks.data = try_lock(&target.dir, &target.dir, read_only)?;
    if locks.data.is_some() && target.engine {
        locks.wal = try_lock(&target.wal, &target.dir, read_only)?;
    }
    let live = locks.data.is_none() || (target.engine && locks.wal.is_none());
    Ok((target, locks, live))
}

/// The lock of `path`; `None` when someone else holds it and `read_only`
/// allows going on without it.
fn try_lock(path: &Path, dir: &Path, read_only: bool) -> Result<Option<File>, Failure> {
    match dir::lock(path) {
        Ok(file) => Ok(Some(file)),
        Err(LogError::Locked { .. }) if read_only => Ok(None),
        Err(LogError::Locked { .. }) => Err(locked(dir)),
        Err(e) => Err(e.into()),
    }
}

fn locked(dir: &Path) -> Failure {
    Failure {
        code: EXIT_LOCKED,
        error: anyhow!(
            "{} is locked: a daemon (walkvd) is running on it, or another walkvctl is; \
             stop it first (check, dump and stat can read beside it with --read-only)",
            dir.display()
        ),
    }
}

fn target(dir: &Path) -> Result<Target, Failure> {
    if !dir.is_dir() {
        return Err(anyhow!("{} is not a directory", dir.display()).into());
    }
    let wal = dir.join("wal");
    if wal.is_dir() {
        return Ok(Target {
            dir: dir.to_path_buf(),
            wal,
            engine: true,
        });
    }
    if !dir::list(dir)?.stores.is_empty() {
        return Ok(Target {
            dir: dir.to_path_buf(),
            wal: dir.to_path_buf(),
            engine: false,
        });
    }
    Err(anyhow!(
        "{} is not a walkv data directory: it has no wal/ directory and no segment files",
        dir.display()
    )
    .into())
}

/// A progress bar on stderr for work over `total` bytes, only when stdout is
/// a terminal (a person is watching) and the work is large.
pub fn progress_bar(total: u64, label: &'static str) -> Option<ProgressBar> {
    if total < PROGRESS_MIN_BYTES || !std::io::stdout().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template("{msg:>10} [{bar:40}] {bytes}/{total_bytes} ({eta})")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(label);
    Some(bar)
}
