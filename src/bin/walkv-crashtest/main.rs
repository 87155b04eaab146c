//! walkv-crashtest: drives the real `walkvd` and tries to make it lose data.
//!
//! Each cycle starts walkvd (small segments, frequent snapshots: rolls,
//! snapshots and segment deletions happen every cycle), runs clients that
//! record every operation's outcome, kills walkvd with SIGKILL at a random
//! moment (some cycles during start-up and replay), damages the directory
//! as the mode says, restarts, and checks the history: every acknowledged
//! write present, no value nobody wrote, counters never back, MSET and
//! MULTI/EXEC all or nothing. See `docs/crash-testing.md`.
//!
//! Exit codes: 0 no violation; 1 violations or a failed restart (the seed is
//! printed and the history written as JSON lines); 2 the harness itself
//! failed.

mod campaign;
mod check;
mod client;
mod corrupt;
mod daemon;
mod damage;
mod powerloss;
mod rng;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// SIGKILL: the page cache survives.
    Kill,
    /// SIGKILL, then drop what a power cut would (needs a walkvd built with
    /// `--features durability-trace`).
    Powerloss,
    /// SIGKILL, then cut, zero or scribble the log's tail past the last
    /// fsync (needs `durability-trace`).
    Torn,
    /// SIGKILL, then flip a byte inside an acknowledged record that is not
    /// at the tail: walkvd must refuse (exit 4), `walkvctl repair
    /// --truncate-corrupt` must drop exactly the records from there on, and
    /// the history goes on without them (any build).
    Corrupt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Fsync {
    Always,
    Everysec,
    No,
}

#[derive(Debug, Clone, Parser)]
#[command(name = "walkv-crashtest", about = "Crash-recovery harness for walkvd")]
pub struct Args {
    /// Crash-and-restart cycles.
    #[arg(long, default_value_t = 20)]
    pub cycles: u32,
    /// Seed of every random choice (default: from the clock; printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    #[arg(long, value_enum, default_value_t = Mode::Kill)]
    pub mode: Mode,
    /// The walkvd binary (default: next to this one).
    #[arg(long)]
    pub walkvd: Option<PathBuf>,
    /// The walkvctl binary, for `corrupt` mode (default: next to walkvd).
    #[arg(long)]
    pub walkvctl: Option<PathBuf>,
    /// Working directory (data directory in `data/`); default a fresh
    /// temporary one, removed after a clean run.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Where to write the history on failure (default `<dir>/history.jsonl`).
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// walkvd's `storage.max_segment_bytes`.
    #[arg(long, default_value_t = 16 << 10)]
    pub max_segment_bytes: u64,
    /// walkvd's `storage.snapshot_min_log_bytes`.
    #[arg(long, default_value_t = 48 << 10)]
    pub snapshot_min_log_bytes: u64,
    /// walkvd's fsync policy. `everysec` and `no` only with `kill`: a
    /// process crash must lose nothing acknowledged under any policy, but
    /// a power cut may lose what they never fsynced.
    #[arg(long, value_enum, default_value_t = Fsync::Always)]
    pub fsync: Fsync,
    /// Longest time clients run before the kill, in ms.
    #[arg(long, default_value_t = 1200)]
    pub max_run_ms: u64,
    /// Faults to switch on in walkvd (`WALKVD_FAULT`; a `fault-injection`
    /// build only): `ack-before-fsync`, `skip-dir-fsync`.
    #[arg(long)]
    pub fault: Option<String>,
    /// Keep the working directory even after a clean run.
    #[arg(long)]
    pub keep: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match campaign::run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("walkv-crashtest: {err:#}");
            ExitCode::from(2)
        }
    }
}
