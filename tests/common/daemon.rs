//! Starting the real `walkvd` binary for black-box tests: port 0, a data
//! directory of the test's, and the address read back from its log.
// Each test binary includes this file and uses a different part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct Daemon {
    child: Child,
    pub port: u16,
    log: mpsc::Receiver<String>,
    /// Every log line received so far.
    seen: Vec<String>,
}

impl Daemon {
    /// Starts walkvd on `dir` and waits until it accepts commands.
    pub fn start(dir: &Path, args: &[&str]) -> Daemon {
        let mut daemon = Self::spawn(dir, args, &[]);
        daemon.wait_for_log("ready to accept commands");
        daemon
    }

    /// Starts walkvd and returns as soon as it listens (replay may go on).
    pub fn spawn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_walkvd"));
        cmd.args(["--port", "0", "--dir"]).arg(dir).args(args);
        // Only what the test sets: not the developer's RUST_LOG or WALKV_*.
        cmd.env_remove("RUST_LOG");
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("WALKV_")) {
            cmd.env_remove(key);
        }
        cmd.envs(env.iter().copied());
        Self::spawn_command(cmd)
    }

    /// Runs `cmd` (walkvd, or something that execs it) and returns as soon
    /// as it logs where it listens.
    pub fn spawn_command(mut cmd: Command) -> Daemon {
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("walkvd starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut daemon = Daemon {
            child,
            port: 0,
            log,
            seen: Vec::new(),
        };
        let line = daemon.wait_for_log("listening");
        let addr = line
            .split("addr=")
            .nth(1)
            .expect("listening line has addr=")
            .split_whitespace()
            .next()
            .unwrap();
        daemon.port = addr.rsplit(':').next().unwrap().parse().unwrap();
        daemon
    }

    /// The first log line containing `needle`; panics after 60 s or if the
    /// daemon exits first.
    pub fn wait_for_log(&mut self, needle: &str) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "walkvd never logged {needle:?} (exit: {:?})",
                    self.child.try_wait()
                ),
            }
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).unwrap()
    }

    /// Sends raw bytes on a new connection and returns everything read until
    /// the server closes or stays quiet for `quiet`.
    pub fn raw(&self, bytes: &[u8], quiet: Duration) -> Vec<u8> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.write_all(bytes).unwrap();
        read_until_quiet(&mut s, quiet)
    }

    /// The names of the daemon's threads, one per thread, from `/proc`.
    pub fn thread_names(&self) -> Vec<String> {
        let tasks = format!("/proc/{}/task", self.child.id());
        std::fs::read_dir(tasks)
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .map(|name| name.trim_end().to_string())
            .collect()
    }

    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait()
    }

    /// Sends the signal named `name` (`HUP`, `TERM`, …).
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{name} {pid}");
    }

    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "walkvd did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads until EOF, or until nothing arrives for `quiet`.
pub fn read_until_quiet(s: &mut TcpStream, quiet: Duration) -> Vec<u8> {
    s.set_read_timeout(Some(quiet)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => return out,
        }
    }
}

/// Runs walkvd to completion (for start-up failures) and returns its exit
/// code and log.
pub fn run_to_exit(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_walkvd"))
        .args(args)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .current_dir(cwd)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A log of 400,000 keys (about 50 MB), written through the engine, so
/// that replay takes a few seconds in a debug build. Returns the last key.
pub fn write_long_log(data: &Path) -> String {
    let mut cfg = walkv::engine::EngineConfig::new(data);
    cfg.fsync = walkv::engine::FsyncPolicy::No;
    cfg.snapshot_min_log_bytes = 0;
    let engine = walkv::engine::Engine::open(cfg).unwrap();
    let value = bytes::Bytes::from(vec![b'v'; 100]);
    for chunk in 0..400 {
        let pairs = (0..1000)
            .map(|i| (bytes::Bytes::from(format!("key:{chunk}:{i}")), value.clone()))
            .collect();
        let cmd = walkv::engine::Command::MultiSet {
            pairs,
            only_if_none_exist: false,
        };
        engine.execute_blocking(cmd).unwrap();
    }
    engine.close().unwrap();
    "key:399:999".into()
}
