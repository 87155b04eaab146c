//! The `sd_notify` protocol: newline-separated `KEY=value` assignments sent
//! as one datagram to the Unix socket named by `$NOTIFY_SOCKET` (a path, or
//! an abstract name written with a leading `@`). A few lines of our own
//! rather than a crate: the protocol is one `sendto`.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use tracing::{debug, warn};

/// Where notifications go; inert when systemd gave no socket.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// A notifier for `$NOTIFY_SOCKET`, or an inert one when it is unset or
    /// unusable (a warning says why; the daemon runs on regardless).
    pub fn from_env() -> Notifier {
        match std::env::var_os("NOTIFY_SOCKET") {
            Some(name) => Notifier::to(&name.to_string_lossy()),
            None => Notifier::disabled(),
        }
    }

    pub fn disabled() -> Notifier {
        Notifier { target: None }
    }

    /// A notifier for the socket `name` (a path, or `@abstract`).
    pub fn to(name: &str) -> Notifier {
        let addr = match name.strip_prefix('@') {
            Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name.as_bytes()),
            None => SocketAddr::from_pathname(name),
        };
        let target = addr
            .and_then(|addr| Ok((UnixDatagram::unbound()?, addr)))
            .inspect_err(
                |err| warn!(socket = name, error = %err, "NOTIFY_SOCKET is unusable; not notifying systemd"),
            )
            .ok();
        Notifier { target }
    }

    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends `state` (one or more `KEY=value` lines). Best effort: systemd
    /// may be gone or restarting, and that must not stop the daemon.
    pub fn send(&self, state: &str) {
        let Some((socket, addr)) = &self.target else {
            return;
        };
        match socket.send_to_addr(state.as_bytes(), addr) {
            Ok(_) => debug!(state, "notified systemd"),
            Err(err) => warn!(error = %err, "cannot notify systemd"),
        }
    }

    pub fn status(&self, status: &str) {
        // A status is one line: systemd would read a newline as a new key.
        self.send(&format!("STATUS={}", status.replace('\n', " ")));
    }

    /// Asks systemd to wait `extra` more for start-up (counted from now).
    pub fn extend_timeout(&self, extra: Duration) {
        self.send(&format!("EXTEND_TIMEOUT_USEC={}", extra.as_micros()));
    }

    /// Tells systemd a reload began; `MONOTONIC_USEC` is what systemd 253's
    /// `Type=notify-reload` requires with it, and older ones ignore it.
    pub fn reloading(&self) {
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
    }
}

/// How often to ping the watchdog: half of `$WATCHDOG_USEC`, as
/// `sd_watchdog_enabled(3)` advises, when it is set for this process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok()?;
    let pid = std::env::var("WATCHDOG_PID").ok();
    watchdog_interval_from(&usec, pid.as_deref(), std::process::id())
}

fn watchdog_interval_from(usec: &str, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    // WATCHDOG_PID names the process the watchdog is meant for; a child that
    // inherited the environment must not ping on its parent's behalf.
    if pid.is_some_and(|pid| pid.parse::<u32>().ok() != Some(own_pid)) {
        return None;
    }
    let usec: u64 = usec.parse().ok().filter(|&u| u > 0)?;
    // At least 1 ms: a tiny value must not turn the watchdog into a busy loop.
    Some(Duration::from_micros(usec / 2).max(Duration::from_millis(1)))
}

/// `CLOCK_MONOTONIC` in microseconds: the clock systemd compares against.
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_arrive_as_one_datagram_each() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier::to(path.to_str().unwrap());
        assert!(notifier.is_enabled());
        notifier.status("replaying\nlog");
        notifier.send("READY=1");
        let mut buf = [0u8; 256];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STATUS=replaying log");
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }

    #[test]
    fn abstract_socket_names_are_supported() {
        let name = format!("walkv-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        Notifier::to(&format!("@{name}")).send("WATCHDOG=1");
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1");
    }

    #[test]
    fn an_inert_notifier_sends_nothing_and_does_not_fail() {
        let notifier = Notifier::disabled();
        assert!(!notifier.is_enabled());
        notifier.send("READY=1");
        // A socket nobody listens on: a warning, never an error.
        Notifier::to("/nonexistent/dir/notify.sock").send("READY=1");
    }

    #[test]
    fn the_watchdog_pings_at_half_its_timeout_and_only_for_its_own_process() {
        assert_eq!(
            watchdog_interval_from("2000000", None, 7),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            watchdog_interval_from("2000000", Some("7"), 7),
            Some(Duration::from_secs(1))
        );
        assert_eq!(watchdog_interval_from("2000000", Some("8"), 7), None);
        assert_eq!(watchdog_interval_from("0", None, 7), None);
        assert_eq!(
            watchdog_interval_from("1", None, 7),
            Some(Duration::from_millis(1)),
            "a tiny value is floored, not a busy loop"
        );
        assert_eq!(watchdog_interval_from("soon", None, 7), None);
    }
}
