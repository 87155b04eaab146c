//! Starting and killing the real `walkvd`: port 0, the address read back
//! from its log, SIGKILL whenever the campaign says.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

/// How walkvd is started: the binary, its data directory, its environment.
#[derive(Debug, Clone)]
pub struct Setup {
    pub walkvd: PathBuf,
    pub data: PathBuf,
    /// The working directory: walkvd must not pick up a `conf/walkv.toml`.
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    /// `--fsync`'s value.
    pub fsync: &'static str,
}

pub struct Walkvd {
    child: Child,
    pub spawned: Instant,
    lines: mpsc::Receiver<String>,
    /// The last lines of its log, for reports.
    tail: VecDeque<String>,
    pub port: Option<u16>,
}

impl Walkvd {
    /// Starts walkvd; `extra_env` is added for this run only (the trace file).
    pub fn spawn(setup: &Setup, extra_env: &[(String, String)]) -> Result<Walkvd> {
        let mut cmd = Command::new(&setup.walkvd);
        cmd.args([
            "--port",
            "0",
            "--fsync",
            setup.fsync,
            "--log-level",
            "info",
            "--dir",
        ])
        .arg(&setup.data)
        .current_dir(&setup.cwd)
        .env_remove("RUST_LOG")
        .envs(setup.env.iter().chain(extra_env).map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", setup.walkvd.display()))?;
        let spawned = Instant::now();
        let stderr = child.stderr.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Walkvd {
            child,
            spawned,
            lines,
            tail: VecDeque::new(),
            port: None,
        })
    }

    /// Waits for the `listening addr=…` line and returns the port; an exit
    /// first is an error carrying the exit code and the log's tail.
    pub fn wait_listening(&mut self) -> Result<u16> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => {
                    let port = line
                        .contains("listening")
                        .then(|| line.split("addr=").nth(1))
                        .flatten()
                        .and_then(|a| a.split_whitespace().next())
                        .and_then(|a| a.rsplit(':').next())
                        .and_then(|p| p.trim_matches('"').parse().ok());
                    self.remember(line);
                    if let Some(port) = port {
                        self.port = Some(port);
                        return Ok(port);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(status) = self.child.try_wait()? {
                        self.drain();
                        bail!("walkvd exited with {status} before listening:\n{}", self.tail());
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait()?;
                    bail!("walkvd exited with {status} before listening:\n{}", self.tail());
                }
            }
        }
        bail!("walkvd did not listen within 60 s:\n{}", self.tail())
    }

    fn remember(&mut self, line: String) {
        if self.tail.len() == 40 {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }

    fn drain(&mut self) {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
            self.remember(line);
        }
    }

    /// The last lines walkvd logged.
    pub fn tail(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.remember(line);
        }
        self.tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Waits for walkvd to exit on its own, reading everything it logs.
    /// `None` if it became ready to serve instead, or did not exit within
    /// `limit` (it is then killed).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => {
                    let ready = line.contains("ready to accept commands");
                    self.remember(line);
                    if ready {
                        break;
                    }
                }
                // Its stderr closed: it has exited (or is about to).
                Err(mpsc::RecvTimeoutError::Disconnected) => return self.child.wait().ok(),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
        self.kill();
        None
    }

    /// Whether it has exited, and how.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL (the page cache survives), then reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Walkvd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The regular files of `dir`, sorted.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}
