//! walkvd under systemd, played by the test: the notify socket is a datagram
//! socket the test owns, the watchdog and reload are driven by the variables
//! and signals systemd would use, and socket activation hands walkvd a
//! listening socket as descriptor 3.

#[path = "common/daemon.rs"]
mod daemon;

use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use daemon::{Daemon, write_long_log};
use redis::Commands;

/// The test's end of `$NOTIFY_SOCKET`.
struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl NotifySocket {
    fn new() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        NotifySocket {
            socket,
            path,
            _dir: dir,
        }
    }

    fn env(&self) -> (&'static str, &str) {
        ("NOTIFY_SOCKET", self.path.to_str().unwrap())
    }

    /// The next message, or `None` after `wait`.
    fn next(&self, wait: Duration) -> Option<String> {
        self.socket.set_read_timeout(Some(wait)).unwrap();
        let mut buf = vec![0u8; 4096];
        let n = self.socket.recv(&mut buf).ok()?;
        Some(String::from_utf8(buf[..n].to_vec()).unwrap())
    }

    /// Every message up to and including the first that has the line
    /// `line`; panics if it does not come within 60 s.
    fn until(&self, line: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(message) = self.next(left.max(Duration::from_millis(1))) else {
                panic!("no {line:?} from walkvd; got {seen:?}");
            };
            let done = message.lines().any(|l| l == line);
            seen.push(message);
            if done {
                return seen;
            }
        }
    }
}

#[test]
fn ready_comes_only_after_replay_with_progress_and_more_time_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let last_key = write_long_log(&data);
    let notify = NotifySocket::new();
    let d = Daemon::spawn(&data, &[], &[notify.env()]);
    let before_ready = notify.until("READY=1");
    // READY means it: replay is over and the port serves the data. A
    // premature READY would meet -LOADING here.
    let mut c = d.client().get_connection().unwrap();
    let value: Vec<u8> = c.get(&last_key).unwrap();
    assert_eq!(value.len(), 100);

    let statuses: Vec<&String> = before_ready
        .iter()
        .filter(|m| m.starts_with("STATUS=listening on 127.0.0.1:") && m.contains("; replaying log: "))
        .collect();
    assert!(!statuses.is_empty(), "{before_ready:?}");
    assert!(statuses[0].contains("% ("), "{statuses:?}");
    assert!(
        before_ready
            .iter()
            .any(|m| m.starts_with("EXTEND_TIMEOUT_USEC=10000000")),
        "a progressing replay asks for more time: {before_ready:?}"
    );
    let ready = before_ready.last().unwrap();
    assert!(
        ready.contains("STATUS=serving on 127.0.0.1:") && ready.contains("400000 keys"),
        "{ready}"
    );
}

#[test]
fn a_reload_during_replay_does_not_say_ready() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let last_key = write_long_log(&data);
    let notify = NotifySocket::new();
    let d = Daemon::spawn(&data, &[], &[notify.env()]);
    let first = notify
        .next(Duration::from_secs(60))
        .expect("a status during start-up");
    assert!(first.starts_with("STATUS="), "{first}");
    d.signal("HUP");
    let messages = notify.until("READY=1");
    let ready = messages.last().unwrap();
    assert!(
        ready.contains("STATUS=serving on"),
        "the first READY=1 is start-up's: {messages:?}"
    );
    assert!(
        messages.iter().any(|m| m == "STATUS=configuration reloaded"),
        "the reload reported its status without READY=1: {messages:?}"
    );
    let mut c = d.client().get_connection().unwrap();
    assert_eq!(c.get::<_, Vec<u8>>(&last_key).unwrap().len(), 100);
}

#[test]
fn without_notify_socket_nothing_is_sent_and_nothing_fails() {
    let dir = tempfile::tempdir().unwrap();
    // A socket path that exists but that walkvd is not told about.
    let notify = NotifySocket::new();
    let mut d = Daemon::start(&dir.path().join("data"), &[]);
    let mut c = d.client().get_connection().unwrap();
    let _: () = c.set("k", "v").unwrap();
    assert_eq!(d.terminate().code(), Some(0));
    assert_eq!(notify.next(Duration::from_millis(100)), None);
}

#[test]
fn watchdog_pings_every_half_timeout_while_the_engine_answers() {
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::new();
    let _d = Daemon::spawn(
        &dir.path().join("data"),
        &[],
        &[notify.env(), ("WATCHDOG_USEC", "400000")],
    );
    notify.until("READY=1");
    // Pings every 200 ms: time ten of them.
    notify.until("WATCHDOG=1");
    let started = Instant::now();
    for _ in 0..10 {
        notify.until("WATCHDOG=1");
    }
    let per_ping = started.elapsed() / 10;
    assert!(
        per_ping >= Duration::from_millis(150) && per_ping <= Duration::from_millis(400),
        "one ping per {per_ping:?}, expected about 200 ms"
    );
}

#[test]
fn watchdog_meant_for_another_process_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::new();
    let _d = Daemon::spawn(
        &dir.path().join("data"),
        &[],
        &[notify.env(), ("WATCHDOG_USEC", "100000"), ("WATCHDOG_PID", "1")],
    );
    notify.until("READY=1");
    let mut later = Vec::new();
    while let Some(m) = notify.next(Duration::from_millis(300)) {
        later.push(m);
    }
    assert!(!later.iter().any(|m| m.contains("WATCHDOG=1")), "{later:?}");
}

#[test]
fn sighup_reloads_what_it_can_and_says_what_needs_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("walkv.toml");
    std::fs::write(&file, "[log]\nlevel = \"info\"\n").unwrap();
    let notify = NotifySocket::new();
    let mut d = Daemon::spawn(
        &dir.path().join("data"),
        &["--config", file.to_str().unwrap()],
        &[notify.env()],
    );
    notify.until("READY=1");
    // At info, a new connection is not logged.
    let before: i64 = redis::cmd("CLIENT")
        .arg("ID")
        .query(&mut d.client().get_connection().unwrap())
        .unwrap();

    std::fs::write(
        &file,
        "[log]\nlevel = \"debug\"\n[server]\nrequirepass = \"s3cret\"\n[storage]\nfsync = \"no\"\n",
    )
    .unwrap();
    d.signal("HUP");
    let messages = notify.until("READY=1");
    let reloading = messages
        .iter()
        .position(|m| m.starts_with("RELOADING=1\nMONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("no RELOADING=1 before READY=1: {messages:?}"));
    assert!(reloading < messages.len() - 1);
    let warned = d.wait_for_log("only a restart applies them");
    assert!(warned.contains("storage.fsync"), "{warned}");

    // The password took effect: a new client must authenticate.
    let mut c = d.client().get_connection().unwrap();
    let err = redis::cmd("GET").arg("k").query::<()>(&mut c).unwrap_err();
    assert_eq!(err.code(), Some("NOAUTH"), "{err:?}");
    // And the log level: new connections are now logged, at debug, and the
    // first one logged is the one made after the reload.
    let connected = d.wait_for_log("client connected");
    assert!(
        connected.contains("DEBUG") && connected.contains(&format!("client={}", before + 1)),
        "{connected}"
    );
    assert_eq!(d.terminate().code(), Some(0));
}

#[test]
fn sigterm_says_stopping_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::new();
    let mut d = Daemon::spawn(&dir.path().join("data"), &[], &[notify.env()]);
    notify.until("READY=1");
    d.signal("TERM");
    notify.until("STOPPING=1");
    assert_eq!(d.wait().code(), Some(0));
}

#[test]
fn serves_on_a_socket_passed_by_socket_activation() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
    // As systemd does it: the socket as descriptor 3, LISTEN_FDS=1, and
    // LISTEN_PID set to walkvd's own pid (the shell's, which exec keeps).
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_walkvd"))
        .args(["--port", "1", "--dir"])
        .arg(dir.path().join("data"))
        .env_remove("RUST_LOG");
    // SAFETY: dup2 is async-signal-safe; `fd` stays open in the parent
    // until the child has exec'd.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself keeps FD_CLOEXEC, so clear it explicitly.
            if libc::dup2(fd, 3) < 0 || libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut d = Daemon::spawn_command(cmd);
    drop(listener);
    // Told of a descriptor that is not open: a clear error, not a crash.
    let out = Command::new("sh")
        .arg("-c")
        .arg("exec 3>&-; LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" --port 0 --dir \"$1\"")
        .arg(env!("CARGO_BIN_EXE_walkvd"))
        .arg(dir.path().join("other"))
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("descriptor 3 is not open"), "{stderr}");
    assert_eq!(d.port, port, "serves on the passed socket, not on --port 1");
    d.wait_for_log("serving on sockets passed by systemd");
    d.wait_for_log("ready to accept commands");
    let mut c = d.client().get_connection().unwrap();
    let _: () = c.set("activated", "yes").unwrap();
    assert_eq!(c.get::<_, String>("activated").unwrap(), "yes");
}
