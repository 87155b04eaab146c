//! One campaign: the cycles, the clients' histories, the checks, the
//! summary.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::check::{self, State, Verdict};
use crate::client::{Conn, Reply, args};
use crate::corrupt;
use crate::daemon::{Setup, Walkvd};
use crate::powerloss::{self, Manifest};
use crate::rng::Rng;
use crate::workload::{self, Effect, Op, Outcome};
use crate::{Args, Fsync, Mode, damage};

mod corrupt_step;
mod summary;

/// What one client has done since its keys were last read.
#[derive(Default)]
struct Client {
    base: State,
    ops: Vec<Op>,
    next_id: u64,
    written: HashMap<String, HashSet<String>>,
}

#[derive(Default)]
struct Stats {
    cycles: u32,
    startup_kills: u32,
    ops: u64,
    acked: u64,
    failed: u64,
    unknown: u64,
    verdict: Verdict,
    failed_restarts: u32,
    recovery: Vec<Duration>,
    notes: Vec<String>,
    /// Every store and snapshot file seen after a kill, to show that rolls,
    /// snapshots and deletions happened.
    stores_seen: HashSet<PathBuf>,
    snapshots_seen: HashSet<PathBuf>,
    stores_now: usize,
    /// What the simulated power cuts took away.
    cut: powerloss::Cut,
    /// What corrupt mode damaged and repaired.
    corrupt: corrupt::Tally,
}

pub struct Campaign {
    pub args: Args,
    pub seed: u64,
    pub rng: Rng,
    setup: Setup,
    pub work: PathBuf,
    pub data: PathBuf,
    pub wal: PathBuf,
    clients: Vec<Client>,
    history: Vec<Op>,
    stats: Stats,
    runs: u64,
    /// This run's trace file and the files it started from.
    traced: Option<(PathBuf, Manifest)>,
    walkvctl: PathBuf,
    /// The log offset where the clients' operations since the last check
    /// begin (corrupt mode): records from here on are theirs.
    boundary: walkv::log::Offset,
}

pub fn run(args: Args) -> Result<bool> {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let own_dir = args.dir.is_none();
    let work = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("walkv-crashtest-{}-{seed}", std::process::id())),
    };
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let work = work.canonicalize()?;
    let mut campaign = Campaign::new(args, seed, work.clone())?;
    println!(
        "walkv-crashtest: mode {:?}, seed {seed}, {} cycles, {} clients, dir {}",
        campaign.args.mode,
        campaign.args.cycles,
        campaign.args.clients,
        work.display()
    );
    let outcome = campaign.cycles();
    if let Err(err) = &outcome {
        campaign.stats.notes.push(format!("harness error: {err:#}"));
    }
    let passed = campaign.summary() && outcome.is_ok();
    if !passed {
        campaign.write_history()?;
    } else if own_dir && !campaign.args.keep {
        let _ = std::fs::remove_dir_all(&work);
    }
    outcome.map(|()| passed)
}

fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

impl Campaign {
    fn new(args: Args, seed: u64, work: PathBuf) -> Result<Campaign> {
        let data = work.join("data");
        let wal = data.join("wal");
        std::fs::create_dir_all(&data)?;
        let mut env = vec![
            (
                "WALKV_STORAGE__MAX_SEGMENT_BYTES".to_string(),
                args.max_segment_bytes.to_string(),
            ),
            (
                "WALKV_STORAGE__SNAPSHOT_MIN_LOG_BYTES".to_string(),
                args.snapshot_min_log_bytes.to_string(),
            ),
            (
                "WALKV_STORAGE__SNAPSHOT_LOG_PERCENT".to_string(),
                "50".to_string(),
            ),
        ];
        if let Some(fault) = &args.fault {
            env.push((walkv::log::trace::FAULT_ENV.to_string(), fault.clone()));
        }
        // Absolute: walkvd runs in the working directory.
        let walkvd = std::path::absolute(args.walkvd.clone().unwrap_or_else(|| sibling("walkvd")))?;
        let walkvctl = match &args.walkvctl {
            Some(p) => std::path::absolute(p)?,
            None => walkvd.with_file_name("walkvctl"),
        };
        if args.mode == Mode::Corrupt && !walkvctl.is_file() {
            bail!(
                "corrupt mode needs walkvctl, not found at {} (--walkvctl)",
                walkvctl.display()
            );
        }
        if args.fsync != Fsync::Always && args.mode != Mode::Kill {
            bail!(
                "--fsync everysec and no go only with --mode kill: a power cut or a torn tail may take what they never fsynced"
            );
        }
        let setup = Setup {
            walkvd,
            data: data.clone(),
            cwd: work.clone(),
            env,
            fsync: match args.fsync {
                Fsync::Always => "always",
                Fsync::Everysec => "everysec",
                Fsync::No => "no",
            },
        };
        let clients = (0..args.clients).map(|_| Client::default()).collect();
        Ok(Campaign {
            rng: Rng::new(seed),
            seed,
            setup,
            work,
            data,
            wal,
            clients,
            history: Vec::new(),
            stats: Stats::default(),
            runs: 0,
            traced: None,
            walkvctl,
            boundary: 0,
            args,
        })
    }

    fn cycles(&mut self) -> Result<()> {
        let mut daemon = match self.start_and_check(true)? {
            Some(d) => d,
            None => return Ok(()),
        };
        for cycle in 0..self.args.cycles {
            self.run_clients_and_kill(&mut daemon, cycle)?;
            drop(daemon);
            self.after_kill()?;
            self.stats.cycles += 1;
            if self.args.mode == Mode::Corrupt && !self.corrupt_and_repair()? {
                return Ok(());
            }
            if self.rng.below(4) == 0 && !self.crash_during_startup()? {
                return Ok(());
            }
            daemon = match self.start_and_check(false)? {
                Some(d) => d,
                None => return Ok(()),
            };
        }
        daemon.kill();
        self.after_kill()
    }

    /// Starts walkvd; in the trace modes, with a fresh trace file and a note
    /// of the files it starts from.
    pub fn spawn(&mut self) -> Result<Walkvd> {
        self.runs += 1;
        let mut extra = Vec::new();
        self.traced = None;
        if matches!(self.args.mode, Mode::Powerloss | Mode::Torn) {
            let trace = self.work.join(format!("trace-{}.log", self.runs));
            let manifest = powerloss::manifest(&self.dirs())?;
            extra.push((
                walkv::log::trace::TRACE_ENV.to_string(),
                trace.display().to_string(),
            ));
            self.traced = Some((trace, manifest));
        }
        Walkvd::spawn(&self.setup, &extra)
    }

    pub fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.data.clone()];
        if self.wal.is_dir() {
            dirs.push(self.wal.clone());
        }
        dirs
    }

    /// What the mode does to the directory once walkvd is dead.
    fn after_kill(&mut self) -> Result<()> {
        let files: Vec<PathBuf> = self
            .dirs()
            .iter()
            .flat_map(|d| crate::daemon::files_in(d))
            .collect();
        let is = |p: &PathBuf, ext: &str| p.extension().is_some_and(|e| e == ext);
        let stores: Vec<&PathBuf> = files.iter().filter(|p| is(p, "store")).collect();
        self.stats.stores_now = stores.len();
        self.stats.stores_seen.extend(stores.into_iter().cloned());
        self.stats.snapshots_seen.extend(
            files
                .iter()
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("snapshot-"))
                })
                .cloned(),
        );
        let Some((trace, manifest)) = self.traced.take() else {
            return Ok(());
        };
        let dirs = self.dirs();
        match self.args.mode {
            Mode::Powerloss => {
                let cut = powerloss::simulate(&trace, &manifest, &dirs, &self.work, &mut self.rng)?;
                self.stats.cut.bytes_dropped += cut.bytes_dropped;
                self.stats.cut.files_cut += cut.files_cut;
                self.stats.cut.names_reverted += cut.names_reverted;
                self.stats.cut.unfinished_kept += cut.unfinished_kept;
            }
            Mode::Torn if self.wal.is_dir() => {
                damage::tear_tail(&self.wal, &trace, &manifest, &mut self.rng)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Kills walkvd while it starts (opening the log, replaying), then
    /// applies the mode's damage. `false` if it failed to start.
    fn crash_during_startup(&mut self) -> Result<bool> {
        let sorted = {
            let mut r = self.stats.recovery.clone();
            r.sort();
            r
        };
        let typical = sorted
            .get(sorted.len() / 2)
            .copied()
            .unwrap_or(Duration::from_millis(30));
        let wait = Duration::from_micros(self.rng.below(typical.as_micros().max(1000) as u64 * 3 / 2));
        let mut daemon = self.spawn()?;
        std::thread::sleep(wait);
        if let Some(status) = daemon.exited() {
            self.failed_restart(format!(
                "walkvd exited with {status} during start-up:\n{}",
                daemon.tail()
            ));
            return Ok(false);
        }
        daemon.kill();
        self.stats.startup_kills += 1;
        drop(daemon);
        self.after_kill()?;
        Ok(true)
    }

    pub fn failed_restart(&mut self, why: String) {
        self.stats.failed_restarts += 1;
        self.stats.notes.push(why);
    }

    /// Starts walkvd, measures the time to the first read of every key,
    /// and checks what it read. `None` if walkvd did not come up.
    fn start_and_check(&mut self, first: bool) -> Result<Option<Walkvd>> {
        let mut daemon = self.spawn()?;
        let observed = match self.read_all(&mut daemon) {
            Ok(o) => o,
            Err(err) => {
                self.failed_restart(format!("{err:#}"));
                return Ok(None);
            }
        };
        if !first {
            self.stats.recovery.push(daemon.spawned.elapsed());
        }
        // Opening the log always fsyncs its last store: no trace by now
        // means a walkvd built without the feature.
        if let Some((trace, _)) = &self.traced
            && !trace.exists()
        {
            bail!("walkvd wrote no durability trace: was it built with --features durability-trace?");
        }
        self.judge(observed, first);
        Ok(Some(daemon))
    }

    /// Reads every client's keys with one MGET, retrying while walkvd loads.
    pub fn read_all(&mut self, daemon: &mut Walkvd) -> Result<Vec<State>> {
        let port = daemon.wait_listening()?;
        let keys: Vec<Vec<String>> = (0..self.clients.len()).map(workload::keys_of).collect();
        let flat: Vec<&str> = keys.iter().flatten().map(String::as_str).collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Some(status) = daemon.exited() {
                bail!("walkvd exited with {status} during recovery:\n{}", daemon.tail());
            }
            let reply = Conn::connect(port, Duration::from_secs(1))
                .and_then(|mut c| c.call(args(std::iter::once("MGET").chain(flat.iter().copied()))));
            match reply {
                Ok(Reply::Array(Some(values))) if values.len() == flat.len() => {
                    let mut states = vec![State::new(); keys.len()];
                    for (i, v) in values.into_iter().enumerate() {
                        if let Reply::Bulk(Some(bytes)) = v {
                            let k = flat[i].to_string();
                            states[i / keys[0].len()].insert(k, String::from_utf8_lossy(&bytes).into_owned());
                        }
                    }
                    return Ok(states);
                }
                Ok(other) => last = format!("{other:?}"),
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        bail!("walkvd never answered MGET (last: {last}):\n{}", daemon.tail())
    }

    /// Checks each client against what was read, then takes what was read
    /// as the clients' new starting point.
    pub fn judge(&mut self, observed: Vec<State>, adopt: bool) {
        let before = self.stats.verdict.details.len();
        self.judge_clients(observed, adopt);
        if self.stats.verdict.details.len() > before {
            let n = self.stats.verdict.details.len() - before;
            let note = format!(
                "cycle {}: the check after it found {n} violations",
                self.stats.cycles
            );
            self.stats.notes.push(note);
        }
    }

    fn judge_clients(&mut self, observed: Vec<State>, adopt: bool) {
        for (c, (client, got)) in self.clients.iter_mut().zip(observed).enumerate() {
            if !adopt {
                let keys = workload::keys_of(c);
                let v = check::check_client(&client.base, &client.ops, &got, &client.written, &keys);
                self.stats.verdict.add(v);
            }
            client.base = got;
            client.ops.clear();
        }
    }

    fn run_clients_and_kill(&mut self, daemon: &mut Walkvd, cycle: u32) -> Result<()> {
        let port = daemon.port.context("walkvd has no port")?;
        let stop = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = self
            .clients
            .iter()
            .enumerate()
            .map(|(c, client)| {
                let (stop, seed, next) = (stop.clone(), self.seed, client.next_id);
                std::thread::spawn(move || workload::run_client(port, seed, c, cycle, next, stop))
            })
            .collect();
        let run = Duration::from_millis(self.rng.between(100, self.args.max_run_ms.max(100)));
        std::thread::sleep(run);
        daemon.kill();
        stop.store(true, Ordering::Relaxed);
        for (c, handle) in handles.into_iter().enumerate() {
            let ops = handle
                .join()
                .map_err(|_| anyhow::anyhow!("client {c} panicked"))?;
            let client = &mut self.clients[c];
            for op in &ops {
                client.next_id = op.id + 1;
                self.stats.ops += 1;
                match op.outcome {
                    Outcome::Acked => self.stats.acked += 1,
                    Outcome::Failed => self.stats.failed += 1,
                    Outcome::Unknown => self.stats.unknown += 1,
                }
                for w in &op.writes {
                    if let Effect::Set(v) = &w.effect {
                        client.written.entry(w.key.clone()).or_default().insert(v.clone());
                    }
                }
            }
            client.ops.extend(ops.iter().cloned());
            self.history.extend(ops);
        }
        Ok(())
    }
}

fn display(p: &Path) -> String {
    p.display().to_string()
}
