//! walkvd over raw TCP: inline commands, quoting, mixed inline and RESP,
//! every protocol error with Redis's words, and pipelines split anywhere.

#[path = "common/daemon.rs"]
mod daemon;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use daemon::{Daemon, read_until_quiet};

const QUIET: Duration = Duration::from_millis(300);

fn start(args: &[&str]) -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&dir.path().join("data"), args);
    (dir, d)
}

#[test]
fn inline_quoting_and_mixed_resp() {
    let (_dir, d) = start(&[]);
    let got = d.raw(
        b"SET \"a b\" 'x y'\r\nGET \"a b\"\n\r\n*2\r\n$3\r\nGET\r\n$3\r\na b\r\nECHO \"\\x41\\n\"\r\nPING\r\n",
        QUIET,
    );
    assert_eq!(got, b"+OK\r\n$3\r\nx y\r\n$3\r\nx y\r\n$2\r\nA\n\r\n+PONG\r\n");
}

#[test]
fn unknown_commands_and_bad_arguments_keep_the_connection() {
    let (_dir, d) = start(&[]);
    let got = d.raw(b"FOO bar baz\r\nGET\r\nSET k v BOGUS\r\nPING\r\n", QUIET);
    let text = String::from_utf8(got).unwrap();
    assert_eq!(
        text,
        "-ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' \r\n\
         -ERR wrong number of arguments for 'get' command\r\n\
         -ERR syntax error\r\n\
         +PONG\r\n"
    );
}

#[test]
fn protocol_errors_close_only_that_connection() {
    let (_dir, d) = start(&[]);
    let mut bystander = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    bystander.write_all(b"SET safe 1\r\n").unwrap();
    assert_eq!(read_until_quiet(&mut bystander, QUIET), b"+OK\r\n");
    let cases: &[(&[u8], &str)] = &[
        (
            b"SET \"unbal x\r\n",
            "-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        (
            b"*2\r\n$3\r\nGET\r\n$-5\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*2\r\n$3\r\nGET\r\nX3\r\n",
            "-ERR Protocol error: expected '$', got 'X'\r\n",
        ),
        (
            b"*2147483647\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n$4294967296\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$536870913\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
    ];
    for (input, expected) in cases {
        // The reply arrives and then the server closes (read returns EOF
        // before the quiet period would end it).
        let got = d.raw(input, Duration::from_secs(5));
        assert_eq!(
            String::from_utf8_lossy(&got),
            *expected,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    let long_line = vec![b'x'; (64 << 10) + 10];
    assert_eq!(
        d.raw(&long_line, Duration::from_secs(5)),
        b"-ERR Protocol error: too big inline request\r\n"
    );
    bystander.write_all(b"GET safe\r\n").unwrap();
    assert_eq!(
        read_until_quiet(&mut bystander, QUIET),
        b"$1\r\n1\r\n",
        "another client saw nothing"
    );
}

#[test]
fn a_pipeline_split_at_every_byte_gives_the_same_replies() {
    let (_dir, d) = start(&[]);
    let pipeline: &[u8] =
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\nGET k\r\n*3\r\n$6\r\nAPPEND\r\n$1\r\nk\r\n$1\r\nx\r\n";
    let expected_first = d.raw(pipeline, QUIET);
    assert_eq!(expected_first, b"+OK\r\n$5\r\nhello\r\n:6\r\n".to_vec());
    for cut in 1..pipeline.len() {
        let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
        s.set_nodelay(true).unwrap();
        s.write_all(b"SET k hello\r\n").unwrap();
        assert_eq!(read_exactly(&mut s, 5), b"+OK\r\n");
        s.write_all(&pipeline[..cut]).unwrap();
        s.flush().unwrap();
        std::thread::sleep(Duration::from_millis(2)); // let the first part arrive alone
        s.write_all(&pipeline[cut..]).unwrap();
        let expected = b"+OK\r\n$5\r\nhello\r\n:6\r\n";
        assert_eq!(
            read_exactly(&mut s, expected.len()),
            expected,
            "split at byte {cut}"
        );
    }
}

/// Reads exactly `n` bytes (or fails after 5 s).
fn read_exactly(s: &mut TcpStream, n: usize) -> Vec<u8> {
    use std::io::Read;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).unwrap();
    buf
}

#[test]
fn auth_is_required_with_a_password() {
    let (_dir, d) = start(&["--requirepass", "s3cret"]);
    let got = d.raw(
        b"GET k\r\nAUTH wrong\r\nAUTH s3cret\r\nSET k v\r\nGET k\r\n",
        QUIET,
    );
    assert_eq!(
        String::from_utf8(got).unwrap(),
        "-NOAUTH Authentication required.\r\n\
         -WRONGPASS invalid username-password pair or user is disabled.\r\n\
         +OK\r\n+OK\r\n$1\r\nv\r\n"
    );
    // Before AUTH, a client may not send a large request.
    let got = d.raw(b"*1\r\n$100000\r\n", Duration::from_secs(5));
    assert_eq!(got, b"-ERR Protocol error: invalid bulk length\r\n");
}

#[test]
fn the_client_limit_refuses_the_next_connection() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::spawn(
        &dir.path().join("data"),
        &[],
        &[("WALKV_SERVER__MAXCLIENTS", "2")],
    );
    d.wait_for_log("ready to accept commands");
    let mut first = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    let mut second = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    for s in [&mut first, &mut second] {
        s.write_all(b"PING\r\n").unwrap();
        assert_eq!(read_until_quiet(s, QUIET), b"+PONG\r\n");
    }
    assert_eq!(
        d.raw(b"PING\r\n", Duration::from_secs(5)),
        b"-ERR max number of clients reached\r\n"
    );
    drop(first);
    std::thread::sleep(Duration::from_millis(100)); // the server notices the close
    assert_eq!(d.raw(b"PING\r\n", QUIET), b"+PONG\r\n");
}

#[test]
fn client_kill_closes_the_named_connection() {
    let (_dir, d) = start(&[]);
    let mut victim = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    victim.write_all(b"CLIENT ID\r\n").unwrap();
    let reply = String::from_utf8(read_until_quiet(&mut victim, QUIET)).unwrap();
    let id = reply.trim_start_matches(':').trim();
    let got = d.raw(
        format!("CLIENT KILL ID {id}\r\nCLIENT KILL ID 99999\r\n").as_bytes(),
        QUIET,
    );
    assert_eq!(got, b":1\r\n:0\r\n");
    assert_eq!(
        read_until_quiet(&mut victim, Duration::from_secs(5)),
        b"",
        "closed by the server"
    );
}

#[test]
fn idle_clients_are_closed_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::spawn(&dir.path().join("data"), &[], &[("WALKV_SERVER__TIMEOUT", "1")]);
    d.wait_for_log("ready to accept commands");
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    s.write_all(b"PING\r\n").unwrap();
    assert_eq!(read_exactly(&mut s, 7), b"+PONG\r\n");
    let started = std::time::Instant::now();
    // The server closes it: EOF well before this 10 s read timeout.
    assert_eq!(read_until_quiet(&mut s, Duration::from_secs(10)), b"");
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "closed by the idle timeout, not by the test"
    );
}

#[test]
fn transactions_and_hello_behave_as_redis() {
    let (_dir, d) = start(&[]);
    let got = d.raw(
        b"MULTI\r\nSET a hello\r\nMGET a\r\nGETRANGE a 0 1\r\nUNWATCH\r\nEXEC\r\n",
        QUIET,
    );
    assert_eq!(
        String::from_utf8(got).unwrap(),
        "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n\
         *4\r\n+OK\r\n*1\r\n$5\r\nhello\r\n$2\r\nhe\r\n+OK\r\n",
        "reads inside MULTI see the transaction's own writes"
    );
    // A HELLO that fails changes nothing: still RESP2 afterwards.
    let got = d.raw(
        b"HELLO 3 FOO\r\nGET nokey\r\nHELLO 3 SETNAME \"bad name\"\r\n",
        QUIET,
    );
    assert_eq!(
        String::from_utf8(got).unwrap(),
        "-ERR Syntax error in HELLO option 'FOO'\r\n$-1\r\n\
         -ERR Client names cannot contain spaces, newlines or special characters.\r\n"
    );
    let got = d.raw(b"CONFIG SET maxclients 0\r\nPING\r\n", QUIET);
    assert!(
        String::from_utf8_lossy(&got)
            .starts_with("-ERR CONFIG SET failed (possibly related to argument 'maxclients')"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(got.ends_with(b"+PONG\r\n"));
    let got = d.raw(b"CLIENT INFO\r\n", QUIET);
    assert_eq!(
        String::from_utf8_lossy(&got).matches("id=").count(),
        1,
        "only the caller"
    );
}

#[test]
fn passwords_from_the_environment_stay_strings_and_removing_one_lets_clients_in() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::spawn(
        &dir.path().join("data"),
        &[],
        &[("WALKV_SERVER__REQUIREPASS", "0123")],
    );
    d.wait_for_log("ready to accept commands");
    let mut waiting = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    waiting.write_all(b"GET k\r\n").unwrap();
    assert_eq!(
        read_until_quiet(&mut waiting, QUIET),
        b"-NOAUTH Authentication required.\r\n"
    );
    let got = d.raw(b"AUTH 123\r\nAUTH 0123\r\nCONFIG SET requirepass \"\"\r\n", QUIET);
    assert_eq!(
        String::from_utf8(got).unwrap(),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n+OK\r\n+OK\r\n"
    );
    waiting.write_all(b"GET k\r\n").unwrap();
    assert_eq!(
        read_until_quiet(&mut waiting, QUIET),
        b"$-1\r\n",
        "no password any more"
    );
}

#[test]
fn a_client_that_never_reads_is_stopped_not_buffered() {
    let (_dir, d) = start(&[]);
    let value = "v".repeat(1 << 20);
    let set = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n{value}\r\n", value.len());
    assert_eq!(d.raw(set.as_bytes(), QUIET), b"+OK\r\n");
    // Each 7-byte GET asks for a 1 MiB reply. If the server kept reading
    // without the replies being taken, 64 MiB of requests would need 9 TiB
    // of buffered replies; instead it stops reading, and the client's
    // writes block once the socket buffers are full.
    let mut hog = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    hog.set_nonblocking(true).unwrap();
    let requests = b"GET k\r\n".repeat(1 << 14);
    let mut sent = 0usize;
    let blocked = loop {
        match hog.write(&requests) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // Let the server drain what it will, then see if it still blocks.
                std::thread::sleep(Duration::from_millis(200));
                match hog.write(&requests) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break true,
                    Ok(n) => sent += n,
                    Err(e) => panic!("{e}"),
                }
            }
            Err(e) => panic!("{e}"),
        }
        if sent > 64 << 20 {
            break false;
        }
    };
    assert!(
        blocked,
        "the server read {sent} bytes of requests from a client that reads nothing"
    );
    // Another client is served meanwhile.
    let info = String::from_utf8(d.raw(b"INFO memory\r\n", QUIET)).unwrap();
    let rss: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory_rss:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("INFO memory has used_memory_rss");
    assert!(rss < 512 << 20, "server RSS {rss} bytes");
}

/// The `wal_fsyncs` counter of `INFO wal`.
fn fsyncs(d: &Daemon) -> u64 {
    let info = String::from_utf8(d.raw(b"INFO wal\r\n", Duration::from_millis(300))).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("wal_fsyncs:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no wal_fsyncs in {info}"))
}

#[test]
fn a_pipeline_of_writes_shares_fsyncs_and_still_reads_its_own_writes() {
    let (_dir, d) = start(&["--fsync", "always"]);
    let before = fsyncs(&d);
    let mut pipeline = Vec::new();
    for i in 0..200 {
        pipeline.extend_from_slice(format!("SET k{i} {i}\r\n").as_bytes());
    }
    // Reads and writes interleaved: each read sees every write before it.
    pipeline.extend_from_slice(
        b"SET n 1\r\nINCR n\r\nGET n\r\nINCRBY n 10\r\nGET n\r\nDEL k0\r\nEXISTS k0 k1\r\n",
    );
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    s.write_all(&pipeline).unwrap();
    let expected = format!(
        "{}+OK\r\n:2\r\n$1\r\n2\r\n:12\r\n$2\r\n12\r\n:1\r\n:1\r\n",
        "+OK\r\n".repeat(200)
    );
    let got = read_exactly(&mut s, expected.len());
    assert_eq!(String::from_utf8_lossy(&got), expected);
    let used = fsyncs(&d) - before;
    // One connection, one buffer: the 200 SETs are queued together, so they
    // take a handful of fsyncs, not one each.
    assert!(used <= 20, "{used} fsyncs for a pipeline of 203 writes");
}
