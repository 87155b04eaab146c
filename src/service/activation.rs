//! Socket activation: systemd opens the listening sockets and passes them as
//! file descriptors 3, 4, … with `LISTEN_PID` (who they are for) and
//! `LISTEN_FDS` (how many), as `sd_listen_fds(3)` describes. The daemon then
//! serves on them instead of binding its own, so a restart never refuses a
//! connection and the port can be privileged without privileges.

use std::net::TcpListener;
use std::os::fd::{FromRawFd, RawFd};

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const FIRST_FD: RawFd = 3;

/// The listening sockets systemd passed to this process, if it passed any.
///
/// Must be called once, before any other thread starts: it takes ownership
/// of the descriptors and removes the variables from the environment, so
/// that nothing else (and no child) claims them too.
pub fn take_listeners() -> Result<Option<Vec<TcpListener>>, String> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    // SAFETY: called from `main` before the runtime or any thread starts,
    // so nothing can read the environment concurrently.
    unsafe {
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    let Some(count) = passed_count(pid.as_deref(), fds.as_deref(), std::process::id())? else {
        return Ok(None);
    };
    let mut listeners = Vec::with_capacity(count);
    for fd in FIRST_FD..FIRST_FD + count as RawFd {
        // Descriptors are inherited without FD_CLOEXEC; set it so that a
        // future child never keeps the port open. This also proves the
        // descriptor is open before anything takes ownership of it (closing
        // a descriptor that is not open would be a bug of ours to report,
        // not to commit).
        // SAFETY: fcntl with integer arguments touches no memory.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
            let err = std::io::Error::last_os_error();
            return Err(format!(
                "LISTEN_FDS={count}, but descriptor {fd} is not open: {err}"
            ));
        }
        // SAFETY: systemd hands descriptors FIRST_FD.. to this process (we
        // checked LISTEN_PID), it is open (above), and nothing else in the
        // process uses it.
        let listener = unsafe { TcpListener::from_raw_fd(fd) };
        let addr = listener
            .local_addr()
            .map_err(|e| format!("descriptor {fd} passed by systemd is not a TCP socket: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("descriptor {fd} ({addr}): {e}"))?;
        listeners.push(listener);
    }
    Ok(Some(listeners))
}

/// How many descriptors were passed to the process `own_pid`, if any.
fn passed_count(pid: Option<&str>, fds: Option<&str>, own_pid: u32) -> Result<Option<usize>, String> {
    let (Some(pid), Some(fds)) = (pid, fds) else {
        return Ok(None);
    };
    // Meant for another process (we inherited them from a parent that did
    // not clear them): not ours to take.
    if pid.parse::<u32>().ok() != Some(own_pid) {
        return Ok(None);
    }
    let count: usize = fds
        .parse()
        .map_err(|_| format!("LISTEN_FDS={fds:?} is not a number"))?;
    if count == 0 {
        return Ok(None);
    }
    if count > 64 {
        return Err(format!("LISTEN_FDS={count}: more sockets than walkvd expects"));
    }
    Ok(Some(count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_are_taken_only_when_meant_for_this_process() {
        assert_eq!(passed_count(None, None, 10), Ok(None));
        assert_eq!(passed_count(Some("10"), Some("2"), 10), Ok(Some(2)));
        assert_eq!(passed_count(Some("11"), Some("2"), 10), Ok(None));
        assert_eq!(passed_count(Some("10"), Some("0"), 10), Ok(None));
        assert!(passed_count(Some("10"), Some("two"), 10).is_err());
        assert!(passed_count(Some("10"), Some("1000"), 10).is_err());
    }
}
