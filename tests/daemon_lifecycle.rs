//! walkvd's life: persistence across graceful and SIGKILL restarts,
//! configuration layers and start-up failures with their exit codes,
//! `-LOADING` during a slow replay.

#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/tmpfs.rs"]
mod tmpfs;

use std::time::Duration;

use daemon::{Daemon, run_to_exit, write_long_log};
use redis::Commands;
use tmpfs::Tmpfs;

fn sync_conn(d: &Daemon) -> redis::Connection {
    d.client().get_connection().unwrap()
}

#[test]
fn writes_survive_sigterm_and_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut d = Daemon::start(&data, &[]);
    let mut c = sync_conn(&d);
    for i in 0..200 {
        let _: () = c.set(format!("k{i}"), i).unwrap();
    }
    drop(c);
    let status = d.terminate();
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop");

    let mut d = Daemon::start(&data, &[]);
    let line = d.wait_for_log("log opened");
    assert!(
        line.contains("torn_bytes=0"),
        "a clean stop leaves nothing to truncate: {line}"
    );
    let mut c = sync_conn(&d);
    assert_eq!(c.get::<_, i64>("k199").unwrap(), 199);
    let _: () = c.set("after-restart", "yes").unwrap();
    let _: i64 = c.incr("counter", 7).unwrap();
    drop(c);
    d.kill(); // SIGKILL: acknowledged under fsync=always, so on disk

    let d = Daemon::start(&data, &[]);
    let mut c = sync_conn(&d);
    assert_eq!(c.get::<_, String>("after-restart").unwrap(), "yes");
    assert_eq!(c.get::<_, i64>("counter").unwrap(), 7);
    assert_eq!(redis::cmd("DBSIZE").query::<i64>(&mut c).unwrap(), 202);
}

#[test]
fn configuration_layers_file_then_env_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("walkv.toml");
    std::fs::write(
        &file,
        "[storage]\nfsync = \"no\"\n[server]\nmaxclients = 7\ntimeout = 30\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let config = file.to_str().unwrap();
    let mut d = Daemon::spawn(
        &data,
        &["--config", config, "--fsync", "everysec"],
        &[
            ("WALKV_SERVER__MAXCLIENTS", "9"),
            ("WALKV_STORAGE__FSYNC", "always"),
        ],
    );
    d.wait_for_log("ready to accept commands");
    let mut c = sync_conn(&d);
    let get = |c: &mut redis::Connection, key: &str| -> String {
        let pairs: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(key).query(c).unwrap();
        pairs[1].clone()
    };
    assert_eq!(
        get(&mut c, "appendfsync"),
        "everysec",
        "a flag beats the environment and the file"
    );
    assert_eq!(get(&mut c, "maxclients"), "9", "the environment beats the file");
    assert_eq!(get(&mut c, "timeout"), "30", "the file beats the defaults");
}

#[test]
/// Counts threads by name: walkvd names every thread it starts, so only the
/// workers are `walkv-worker` (a thread a worker spawned unnamed would
/// inherit the name, and break this count).
fn clients_are_served_by_half_the_cores_or_the_configured_workers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let workers = |d: &Daemon| d.thread_names().iter().filter(|n| *n == "walkv-worker").count();
    let cores = std::thread::available_parallelism().unwrap().get();
    let mut d = Daemon::start(&data, &[]);
    assert_eq!(workers(&d), (cores / 2).max(1), "the default is half the cores");
    d.terminate();
    let mut d = Daemon::spawn(&data, &[], &[("WALKV_SERVER__WORKERS", "3")]);
    d.wait_for_log("ready to accept commands");
    assert_eq!(workers(&d), 3);
    let mut c = sync_conn(&d);
    let _: () = c.set("k", "v").unwrap();
    assert_eq!(c.get::<_, String>("k").unwrap(), "v");
    d.terminate();
    let (code, log) = run_to_exit(&[], &[("WALKV_SERVER__WORKERS", "5000")], dir.path());
    assert_eq!(code, Some(2));
    assert!(log.contains("server.workers") && log.contains("1024"), "{log}");
}

#[test]
fn bad_configuration_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[server]\nprot = 6380\n").unwrap();
    let (code, log) = run_to_exit(&["--config", file.to_str().unwrap()], &[], dir.path());
    assert_eq!(code, Some(2));
    assert!(log.contains("prot"), "{log}");
    let (code, log) = run_to_exit(&["--fsync", "sometimes"], &[], dir.path());
    assert_eq!(code, Some(2));
    assert!(
        log.contains("storage.fsync") && log.contains("always, everysec, no"),
        "{log}"
    );
    let (code, _) = run_to_exit(&["--no-such-flag"], &[], dir.path());
    assert_eq!(code, Some(2));
}

#[test]
fn a_second_daemon_on_the_same_directory_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = Daemon::start(&data, &[]);
    let (code, log) = run_to_exit(&["--port", "0", "--dir", data.to_str().unwrap()], &[], dir.path());
    assert_eq!(code, Some(3), "{log}");
    assert!(
        log.contains(data.to_str().unwrap()),
        "the message names the directory: {log}"
    );
    let mut c = sync_conn(&first);
    assert_eq!(
        redis::cmd("PING").query::<String>(&mut c).unwrap(),
        "PONG",
        "the first is untouched"
    );
}

#[test]
fn corruption_at_start_exits_4_naming_file_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut d = Daemon::start(&data, &[]);
    let mut c = sync_conn(&d);
    for i in 0..20 {
        let _: () = c.set(format!("k{i}"), "value").unwrap();
    }
    drop(c);
    assert_eq!(d.terminate().code(), Some(0));
    let store = data.join("wal").join("00000000000000000000.store");
    let mut bytes = std::fs::read(&store).unwrap();
    bytes[32 + 20] ^= 0xFF;
    std::fs::write(&store, bytes).unwrap();
    let (code, log) = run_to_exit(&["--port", "0", "--dir", data.to_str().unwrap()], &[], dir.path());
    assert_eq!(code, Some(4), "{log}");
    assert!(
        log.contains("00000000000000000000.store") && log.contains("at byte 32"),
        "{log}"
    );
}

#[test]
fn data_commands_get_loading_until_replay_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A log long enough that replay takes a while, written directly.
    write_long_log(&data);
    let mut d = Daemon::spawn(&data, &[], &[]);
    let early = d.raw(
        b"GET key:0:0\r\nPING\r\nINFO persistence\r\n",
        Duration::from_millis(300),
    );
    let early = String::from_utf8_lossy(&early);
    assert!(early.starts_with("-LOADING "), "{early}");
    assert!(
        early.contains("+PONG\r\n") && early.contains("loading:1"),
        "{early}"
    );
    d.wait_for_log("ready to accept commands");
    let mut c = sync_conn(&d);
    assert_eq!(c.get::<_, Vec<u8>>("key:399:999").unwrap().len(), 100);
}

#[test]
fn shutdown_save_snapshots_then_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut d = Daemon::start(&data, &[]);
    let mut c = sync_conn(&d);
    for i in 0..50 {
        let _: () = c.set(format!("k{i}"), i).unwrap();
    }
    let _ = redis::cmd("SHUTDOWN").arg("SAVE").query::<()>(&mut c);
    assert_eq!(d.wait().code(), Some(0));
    let snapshots = std::fs::read_dir(&data)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("snapshot-")
        })
        .count();
    assert_eq!(snapshots, 1);
    let mut d = Daemon::start(&data, &[]);
    let line = d.wait_for_log("recovery complete");
    assert!(
        line.contains("snapshot_keys=50") && line.contains("records=0"),
        "{line}"
    );
}

#[test]
fn a_full_disk_fences_writes_and_exits_5_losing_nothing_acknowledged() {
    let Some(mount) = Tmpfs::mount("512k") else {
        return;
    };
    let data = mount.path().join("data");
    let mut d = Daemon::spawn(&data, &[], &[("WALKV_STORAGE__MAX_SEGMENT_BYTES", "65536")]);
    d.wait_for_log("ready to accept commands");
    let mut c = sync_conn(&d);
    let value = "x".repeat(1000);
    let mut acked = Vec::new();
    let error = loop {
        let key = format!("k{}", acked.len());
        match c.set::<_, _, ()>(&key, &value) {
            Ok(()) => acked.push(key),
            Err(err) => break err,
        }
        assert!(acked.len() < 5_000, "the disk never filled");
    };
    assert!(error.to_string().contains("MISCONF"), "{error}");
    assert_eq!(
        d.wait().code(),
        Some(5),
        "a failed write stops the daemon with exit code 5"
    );

    let copy = tempfile::tempdir().unwrap();
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(&data)
        .arg(copy.path())
        .status()
        .unwrap();
    assert!(copied.success());
    std::fs::remove_file(copy.path().join("data/LOCK")).ok();
    let d = Daemon::start(&copy.path().join("data"), &[]);
    let mut c = sync_conn(&d);
    for key in &acked {
        assert_eq!(
            c.get::<_, Option<String>>(key).unwrap().as_deref(),
            Some(value.as_str()),
            "lost {key}"
        );
    }
}
