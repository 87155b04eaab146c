//! Running as a service under systemd: readiness and status notifications,
//! the watchdog, listening sockets passed by socket activation, and the
//! reload of the configuration on SIGHUP.
//!
//! - [`notify`]: the `sd_notify` datagram protocol, and what the environment
//!   asks for (`NOTIFY_SOCKET`, `WATCHDOG_USEC`)
//! - [`activation`]: sockets inherited through `LISTEN_FDS`
//! - [`supervise`]: the tasks that keep systemd informed: start-up progress,
//!   watchdog pings while the engine answers, status while serving
//! - [`reload`]: what a new configuration may change at run time, and what
//!   needs a restart
//!
//! Nothing here is needed outside systemd: with no `NOTIFY_SOCKET`, no
//! `WATCHDOG_USEC` and no `LISTEN_FDS` every part of it is inert.

pub mod activation;
pub mod notify;
pub mod reload;
pub mod supervise;

pub use notify::Notifier;
