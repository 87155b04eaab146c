//! walkvd through a real client (the `redis` crate): commands with Redis's
//! replies, pipelines, transactions, expiry, RESP3.

#[path = "common/daemon.rs"]
mod daemon;

use daemon::Daemon;
use redis::{AsyncCommands, Value};

fn start() -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&dir.path().join("data"), &[]);
    (dir, d)
}

async fn conn(d: &Daemon) -> redis::aio::MultiplexedConnection {
    d.client().get_multiplexed_async_connection().await.unwrap()
}

async fn q<T: redis::FromRedisValue>(
    c: &mut redis::aio::MultiplexedConnection,
    args: &[&str],
) -> redis::RedisResult<T> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(c).await
}

#[tokio::test]
async fn strings_behave_as_in_redis() {
    let (_dir, d) = start();
    let mut c = conn(&d).await;
    let _: () = c.set("k", "v").await.unwrap();
    assert_eq!(c.get::<_, String>("k").await.unwrap(), "v");
    assert_eq!(
        q::<Option<String>>(&mut c, &["SET", "k", "w", "NX"])
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        q::<Option<String>>(&mut c, &["SET", "k", "w", "XX", "GET"])
            .await
            .unwrap(),
        Some("v".into())
    );
    assert_eq!(
        q::<Option<String>>(&mut c, &["SET", "new", "x", "XX"])
            .await
            .unwrap(),
        None
    );
    assert_eq!(q::<i64>(&mut c, &["SETNX", "k", "z"]).await.unwrap(), 0);
    assert_eq!(q::<i64>(&mut c, &["INCR", "n"]).await.unwrap(), 1);
    assert_eq!(q::<i64>(&mut c, &["INCRBY", "n", "41"]).await.unwrap(), 42);
    assert_eq!(q::<i64>(&mut c, &["DECRBY", "n", "2"]).await.unwrap(), 40);
    assert_eq!(
        q::<String>(&mut c, &["INCRBYFLOAT", "f", "10.5"]).await.unwrap(),
        "10.5"
    );
    assert_eq!(
        q::<String>(&mut c, &["INCRBYFLOAT", "f", "0.1"]).await.unwrap(),
        "10.6"
    );
    let err = q::<i64>(&mut c, &["INCR", "k"]).await.unwrap_err();
    assert!(err.to_string().contains("not an integer"), "{err}");
    let _: () = c.set("max", i64::MAX.to_string()).await.unwrap();
    let err = q::<i64>(&mut c, &["INCR", "max"]).await.unwrap_err();
    assert!(
        err.to_string().contains("increment or decrement would overflow"),
        "{err}"
    );
    assert_eq!(q::<i64>(&mut c, &["APPEND", "k", "xy"]).await.unwrap(), 3);
    assert_eq!(q::<i64>(&mut c, &["STRLEN", "k"]).await.unwrap(), 3);
    assert_eq!(
        q::<String>(&mut c, &["GETRANGE", "k", "-2", "-1"]).await.unwrap(),
        "xy"
    );
    assert_eq!(
        q::<i64>(&mut c, &["SETRANGE", "pad", "3", "ab"]).await.unwrap(),
        5
    );
    assert_eq!(q::<Vec<u8>>(&mut c, &["GET", "pad"]).await.unwrap(), b"\0\0\0ab");
    let _: () = q(&mut c, &["MSET", "a", "1", "b", "2"]).await.unwrap();
    let got: Vec<Option<String>> = q(&mut c, &["MGET", "a", "b", "nope"]).await.unwrap();
    assert_eq!(got, vec![Some("1".into()), Some("2".into()), None]);
    assert_eq!(
        q::<i64>(&mut c, &["MSETNX", "a", "9", "c", "3"]).await.unwrap(),
        0
    );
    assert_eq!(q::<Option<String>>(&mut c, &["GET", "c"]).await.unwrap(), None);
    assert_eq!(q::<String>(&mut c, &["GETSET", "a", "10"]).await.unwrap(), "1");
    assert_eq!(q::<String>(&mut c, &["GETDEL", "a"]).await.unwrap(), "10");
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "a", "b", "b"]).await.unwrap(), 2);
    // Binary-safe keys and values.
    let key = vec![0u8, 255, b'\r', b'\n'];
    let _: () = c.set(&key, &key).await.unwrap();
    assert_eq!(c.get::<_, Vec<u8>>(&key).await.unwrap(), key);
}

#[tokio::test]
async fn keys_expiry_and_scan() {
    let (_dir, d) = start();
    let mut c = conn(&d).await;
    let _: () = q(&mut c, &["SET", "t", "v", "EX", "100"]).await.unwrap();
    let ttl: i64 = q(&mut c, &["TTL", "t"]).await.unwrap();
    assert!((99..=100).contains(&ttl), "{ttl}");
    assert_eq!(q::<i64>(&mut c, &["TTL", "missing"]).await.unwrap(), -2);
    let _: () = c.set("p", "v").await.unwrap();
    assert_eq!(q::<i64>(&mut c, &["TTL", "p"]).await.unwrap(), -1);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "p", "50", "NX"]).await.unwrap(), 1);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "p", "10", "GT"]).await.unwrap(), 0);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "p", "10", "LT"]).await.unwrap(), 1);
    assert_eq!(q::<i64>(&mut c, &["PERSIST", "p"]).await.unwrap(), 1);
    assert_eq!(
        q::<i64>(&mut c, &["EXPIRE", "p", "0"]).await.unwrap(),
        1,
        "a past deadline deletes"
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "p"]).await.unwrap(), 0);
    // A short deadline: polled, with a bound, instead of a sleep.
    let _: () = q(&mut c, &["SET", "gone", "v", "PX", "20"]).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while q::<Option<String>>(&mut c, &["GET", "gone"])
        .await
        .unwrap()
        .is_some()
    {
        assert!(std::time::Instant::now() < deadline, "the key never expired");
        tokio::task::yield_now().await;
    }
    let err = q::<()>(&mut c, &["SET", "x", "v", "EX", "0"]).await.unwrap_err();
    assert!(
        err.to_string().contains("invalid expire time in 'set' command"),
        "{err}"
    );
    let err = q::<()>(&mut c, &["RENAME", "missing", "x"]).await.unwrap_err();
    assert!(err.to_string().contains("no such key"), "{err}");
    let _: () = q(&mut c, &["RENAME", "t", "t2"]).await.unwrap();
    assert!(
        q::<i64>(&mut c, &["TTL", "t2"]).await.unwrap() > 0,
        "RENAME keeps the deadline"
    );
    assert_eq!(q::<String>(&mut c, &["TYPE", "t2"]).await.unwrap(), "string");
    assert_eq!(q::<String>(&mut c, &["TYPE", "nope"]).await.unwrap(), "none");

    let _: () = q(&mut c, &["FLUSHALL"]).await.unwrap();
    for i in 0..300 {
        let _: () = c.set(format!("user:{i}"), i).await.unwrap();
    }
    let _: () = c.set("other", 1).await.unwrap();
    assert_eq!(q::<i64>(&mut c, &["DBSIZE"]).await.unwrap(), 301);
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, keys): (String, Vec<String>) =
            q(&mut c, &["SCAN", &cursor, "MATCH", "user:*", "COUNT", "50"])
                .await
                .unwrap();
        seen.extend(keys);
        if next == "0" {
            break;
        }
        cursor = next;
    }
    assert_eq!(seen.len(), 300);
    let mut keys: Vec<String> = q(&mut c, &["KEYS", "user:1?"]).await.unwrap();
    keys.sort();
    assert_eq!(keys.len(), 10);
}

#[tokio::test]
async fn pipelines_and_transactions() {
    let (_dir, d) = start();
    let mut c = conn(&d).await;
    let (a, b, n): (String, Option<String>, i64) = redis::pipe()
        .set("p1", "one")
        .ignore()
        .get("p1")
        .get("p2")
        .incr("cnt", 5)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!((a.as_str(), b, n), ("one", None, 5));

    let (set, incr, get): (String, i64, String) = redis::pipe()
        .atomic()
        .set("tx", "1")
        .incr("tx", 1)
        .get("tx")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!((set.as_str(), incr, get.as_str()), ("OK", 2, "2"));

    // WATCH: a change by another client aborts EXEC.
    let mut other = conn(&d).await;
    let mut watcher = d.client().get_multiplexed_async_connection().await.unwrap();
    let _: () = q(&mut watcher, &["WATCH", "w"]).await.unwrap();
    let _: () = other.set("w", "changed").await.unwrap();
    let _: () = q(&mut watcher, &["MULTI"]).await.unwrap();
    let queued: String = q(&mut watcher, &["SET", "w", "mine"]).await.unwrap();
    assert_eq!(queued, "QUEUED");
    let result: Value = q(&mut watcher, &["EXEC"]).await.unwrap();
    assert_eq!(result, Value::Nil, "EXEC aborted");
    assert_eq!(other.get::<_, String>("w").await.unwrap(), "changed");
}

#[tokio::test]
async fn resp3_after_hello_3() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&dir.path().join("data"), &[]);
    let client = redis::Client::open(format!("{}?protocol=resp3", d.url())).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = c.set("k", "v").await.unwrap();
    assert_eq!(c.get::<_, String>("k").await.unwrap(), "v");
    let missing: Value = q(&mut c, &["GET", "nope"]).await.unwrap();
    assert_eq!(missing, Value::Nil);
    let hello: Value = q(&mut c, &["HELLO", "3"]).await.unwrap();
    let Value::Map(pairs) = hello else {
        panic!("HELLO 3 answers a map, got {hello:?}")
    };
    let proto = pairs
        .iter()
        .find(|(k, _)| *k == Value::BulkString(b"proto".to_vec()))
        .map(|(_, v)| v.clone());
    assert_eq!(proto, Some(Value::Int(3)));
}

#[tokio::test]
async fn info_reports_every_section() {
    let (_dir, d) = start();
    let mut c = conn(&d).await;
    let _: () = c.set("k", "v").await.unwrap();
    let _: () = q(&mut c, &["SET", "t", "v", "EX", "100"]).await.unwrap();
    let info: String = q(&mut c, &["INFO"]).await.unwrap();
    for section in [
        "# Server",
        "# Clients",
        "# Memory",
        "# Persistence",
        "# Stats",
        "# Replication",
        "# Keyspace",
        "# Commandstats",
        "# Wal",
    ] {
        assert!(info.contains(section), "missing {section} in:\n{info}");
    }
    for field in [
        "role:master",
        "db0:keys=2,expires=1",
        "cmdstat_set:calls=2",
        "wal_fsyncs:",
        "loading:0",
        "aof_fsync:always",
    ] {
        assert!(info.contains(field), "missing {field} in:\n{info}");
    }
    let wal: String = q(&mut c, &["INFO", "wal"]).await.unwrap();
    assert!(
        wal.contains("wal_next_offset:2") && !wal.contains("# Server"),
        "{wal}"
    );
}

#[tokio::test]
async fn save_and_lastsave() {
    let (_dir, d) = start();
    let mut c = conn(&d).await;
    assert_eq!(
        q::<i64>(&mut c, &["LASTSAVE"]).await.unwrap(),
        0,
        "no snapshot yet"
    );
    let _: () = c.set("k", "v").await.unwrap();
    let _: () = q(&mut c, &["SAVE"]).await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let last: i64 = q(&mut c, &["LASTSAVE"]).await.unwrap();
    assert!((now - 5..=now).contains(&last), "LASTSAVE {last}, now {now}");
    let started: String = q(&mut c, &["BGSAVE"]).await.unwrap();
    assert_eq!(started, "Background saving started");
}
