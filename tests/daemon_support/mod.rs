//! Table-driven checks of walkvd's replies through the `redis` crate, for the
//! `daemon_*` test files: a command line, and the reply Redis 7.0 gives to it
//! (each one verified against a real redis-server), written compactly:
//!
//! | reply | written |
//! |---|---|
//! | status `+OK` | `OK` |
//! | error | `(error) ERR syntax error` |
//! | integer | `(integer) 5` |
//! | bulk string | `"value"` (bytes outside printable ASCII escaped as `\x00`) |
//! | null | `(nil)` |
//! | array | `[a, b]`, set `~[a, b]`, map `{k => v, …}` |
//! | RESP3 double, boolean | `(double) 1.5`, `(boolean) true` |
// Each test binary includes this file and uses a different part of it.
#![allow(dead_code)]

#[path = "../common/daemon.rs"]
pub mod daemon;

pub use daemon::Daemon;
use redis::Value;
use redis::aio::MultiplexedConnection;

pub type Conn = MultiplexedConnection;

pub fn start() -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&dir.path().join("data"), &[]);
    (dir, d)
}

pub async fn conn(d: &Daemon) -> Conn {
    d.client().get_multiplexed_async_connection().await.unwrap()
}

/// A connection that said `HELLO 3`.
pub async fn conn3(d: &Daemon) -> Conn {
    let client = redis::Client::open(format!("{}?protocol=resp3", d.url())).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

/// Splits a command line into words: spaces separate, `"…"` keeps spaces.
pub fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                word.get_or_insert_with(String::new);
            }
            ' ' if !quoted => out.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(word);
    out
}

/// Sends one command line and renders the raw reply (errors included).
pub async fn run(c: &mut Conn, line: &str) -> String {
    let words = words(line);
    let mut cmd = redis::cmd(&words[0]);
    for w in &words[1..] {
        cmd.arg(w);
    }
    match c.send_packed_command(&cmd).await {
        Ok(value) => render(&value),
        Err(err) => format!(
            "(error) {} {}",
            err.code().unwrap_or("?"),
            err.detail().unwrap_or("")
        ),
    }
}

/// Runs each command in order and compares its reply with the expected one.
pub async fn check(c: &mut Conn, cases: &[(&str, &str)]) {
    for (line, expected) in cases {
        let got = run(c, line).await;
        assert_eq!(&got, expected, "reply to {line:?}");
    }
}

pub fn render(v: &Value) -> String {
    let list = |items: &[Value]| items.iter().map(render).collect::<Vec<_>>().join(", ");
    match v {
        Value::Nil => "(nil)".into(),
        Value::Int(n) => format!("(integer) {n}"),
        Value::BulkString(b) => format!("\"{}\"", b.escape_ascii()),
        Value::Array(items) => format!("[{}]", list(items)),
        Value::Set(items) => format!("~[{}]", list(items)),
        Value::SimpleString(s) => s.clone(),
        Value::Okay => "OK".into(),
        Value::Map(pairs) => format!(
            "{{{}}}",
            pairs
                .iter()
                .map(|(k, v)| format!("{} => {}", render(k), render(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Double(d) => format!("(double) {d}"),
        Value::Boolean(b) => format!("(boolean) {b}"),
        Value::VerbatimString { text, .. } => format!("\"{}\"", text.escape_default()),
        Value::ServerError(e) => format!("(error) {} {}", e.code(), e.details().unwrap_or("")),
        other => format!("{other:?}"),
    }
}

/// Milliseconds since the Unix epoch, for absolute deadlines.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
