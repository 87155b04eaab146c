//! Key commands through a real client, with the replies Redis 7.0 gives to the
//! same requests (each checked against a real redis-server): DEL/UNLINK,
//! EXISTS, TYPE, the EXPIRE family with NX/XX/GT/LT, TTL/PTTL/EXPIRETIME,
//! PERSIST, RENAME/RENAMENX, KEYS, SCAN, RANDOMKEY, DBSIZE, FLUSHALL/FLUSHDB.
//! Expiry uses deadlines in the past or far in the future, never a sleep.

mod daemon_support;

use daemon_support::{check, conn, run, start};

#[tokio::test]
async fn del_exists_type() {
    let (_dir, d) = start();
    let mut c = conn(&d).await;
    check(
        &mut c,
        &[
            ("DEL", "(error) ERR wrong number of arguments for 'del' command"),
            ("DEL missing", "(integer) 0"),
            ("MSET a 1 b 2", "OK"),
            ("DEL a a b c", "(integer) 2"),
            (
                "UNLINK",
                "(error) ERR wrong number of arguments for 'unlink' command",
            ),
            ("SET a 1", "OK"),
            ("UNLINK a x", "(integer) 1"),
            (
                "EXISTS",
                "(error) ERR wrong number of arguments for 'exists' command",
            ),
            ("SET a 1", "OK"),
            ("EXISTS a a a missing", "(integer) 3"),
            ("TYPE a", "string"),
            ("TYPE missing", "none"),
            (
                "TYPE a b",
                "(error) ERR wrong number of arguments for 'type' command",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn expire_options() {
    let (_dir, d) = start();
    let mut c = conn(&d).await;
    let nx_xx = "(error) ERR NX and XX, GT or LT options at the same time are not compatible";
    let gt_lt = "(error) ERR GT and LT options at the same time are not compatible";
    check(
        &mut c,
        &[
            ("SET k v", "OK"),
            (
                "EXPIRE k",
                "(error) ERR wrong number of arguments for 'expire' command",
            ),
            (
                "EXPIRE k abc",
                "(error) ERR value is not an integer or out of range",
            ),
            (
                "EXPIRE k 1.5",
                "(error) ERR value is not an integer or out of range",
            ),
            ("EXPIRE k 100 NX XX", nx_xx),
            ("EXPIRE k 100 NX GT", nx_xx),
            ("EXPIRE k 100 NX LT", nx_xx),
            ("EXPIRE k 100 GT LT", gt_lt),
            ("EXPIRE k 100 BOGUS", "(error) ERR Unsupported option BOGUS"),
            // Options are read before the time.
            ("EXPIRE k abc BOGUS", "(error) ERR Unsupported option BOGUS"),
            ("EXPIRE k abc NX XX", nx_xx),
            ("EXPIRE missing 100", "(integer) 0"),
            ("EXPIRE missing 100 NX", "(integer) 0"),
            // No deadline yet: XX and GT fail, LT succeeds (none is infinite).
            ("EXPIRE k 100 XX", "(integer) 0"),
            ("EXPIRE k 100 GT", "(integer) 0"),
            ("EXPIRE k 100 XX GT", "(integer) 0"),
            ("EXPIRE k 100 XX LT", "(integer) 0"),
            ("TTL k", "(integer) -1"),
            ("EXPIRE k 100 LT", "(integer) 1"),
            ("PERSIST k", "(integer) 1"),
            ("EXPIRE k 100 NX NX", "(integer) 1"),
            ("EXPIRE k 200 NX", "(integer) 0"),
            ("EXPIRE k 200 XX", "(integer) 1"),
            ("EXPIRE k 50 GT", "(integer) 0"),
            ("EXPIRE k 500 GT", "(integer) 1"),
            ("EXPIRE k 600 LT", "(integer) 0"),
            ("EXPIRE k 60 XX LT", "(integer) 1"),
            ("TTL k", "(integer) 60"),
            ("EXPIRE k 70 GT GT", "(integer) 1"),
            ("TTL k", "(integer) 70"),
        ],
    )
    .await;
}

#[tokio::test]
async fn expire_times_and_overflow() {
    let (_dir, d) = start();
    let mut c = conn(&d).await;
    check(
        &mut c,
        &[
            ("SET k v", "OK"),
            (
                "EXPIRE k 9223372036854775807",
                "(error) ERR invalid expire time in 'expire' command",
            ),
            (
                "EXPIRE k 9223372036854775",
                "(error) ERR invalid expire time in 'expire' command",
            ),
            (
                "EXPIRE k -9223372036854775808",
                "(error) ERR invalid expire time in 'expire' command",
            ),
            (
                "PEXPIRE k 9223372036854775807",
                "(error) ERR invalid expire time in 'pexpire' command",
            ),
            (
                "EXPIREAT k 9223372036854775807",
                "(error) ERR invalid expire time in 'expireat' command",
            ),
            ("TTL k", "(integer) -1"),
            ("PEXPIREAT k 9223372036854775807", "(integer) 1"),
            ("PEXPIRETIME k", "(integer) 9223372036854775807"),
            ("EXPIREAT k 32503680000", "(integer) 1"),
            ("EXPIRETIME k", "(integer) 32503680000"),
            ("PEXPIRETIME k", "(integer) 32503680000000"),
            ("PEXPIREAT k 32503680000123", "(integer) 1"),
            ("EXPIRETIME k", "(integer) 32503680000"),
            ("PEXPIRE k 100000", "(integer) 1"),
            ("TTL k", "(integer) 100"),
            // A deadline in the past (or now) deletes, whatever the option
            // allows.
            ("EXPIRE k 0 XX", "(integer) 1"),
            ("EXISTS k", "(integer) 0"),
            ("SET k v", "OK"),
            ("EXPIRE k -1", "(integer) 1"),
            ("EXISTS k", "(integer) 0"),
            ("SET k v", "OK"),
            ("PEXPIRE k -9223372036854775808", "(integer) 1"),
            ("EXISTS k", "(integer) 0"),
            ("SET k v", "OK"),
            ("EXPIREAT k 0", "(integer) 1"),
            ("EXISTS k", "(integer) 0"),
            ("SET k v", "OK"),
            ("PEXPIREAT k -1", "(integer) 1"),
            ("EXISTS k", "(integer) 0"),
            ("SET k v", "OK"),
            ("EXPIRE k -1 GT", "(integer) 0"),
            ("EXISTS k", "(integer) 1"),
            ("EXPIRE k -1 LT", "(integer) 1"),
            ("EXISTS k", "(integer) 0"),
        ],
    )
    .await;
}

#[tokio::test]
async fn ttl_persist() {
    let (_dir, d) = start();
    let mut c = conn(&d).await;
    check(
        &mut c,
        &[
            ("TTL", "(error) ERR wrong number of arguments for 'ttl' command"),
            (
                "TTL k x",
                "(error) ERR wrong number of arguments for 'ttl' command",
            ),
            ("TTL missing", "(integer) -2"),
            ("PTTL missing", "(integer) -2"),
            ("EXPIRETIME missing", "(integer) -2"),
            ("PEXPIRETIME missing", "(integer) -2"),
            ("SET k v", "OK"),
            ("TTL k", "(integer) -1"),
            ("PTTL k", "(integer) -1"),
            ("EXPIRETIME k", "(integer) -1"),
            ("PEXPIRETIME k", "(integer) -1"),
            ("PERSIST k", "(integer) 0"),
            ("PERSIST missing", "(integer) 0"),
            (
                "PERSIST",
                "(error) ERR wrong number of arguments for 'persist' command",
            ),
            ("PEXPIRE k 1500000", "(integer) 1"),
            ("TTL k", "(integer) 1500"),
            ("PERSIST k", "(integer) 1"),
            ("PERSIST k", "(integer) 0"),
            ("TTL k", "(integer) -1"),
        ],
    )
    .await;
}

#[tokio::test]
async fn rename_and_renamenx() {
    let (_dir, d) = start();
    let mut c = conn(&d).await;
    check(
        &mut c,
        &[
            (
                "RENAME a",
                "(error) ERR wrong number of arguments for 'rename' command",
            ),
            ("RENAME missing b", "(error) ERR no such key"),
            ("RENAME missing missing", "(error) ERR no such key"),
            ("RENAMENX missing x", "(error) ERR no such key"),
            ("SET a 1", "OK"),
            ("RENAME a a", "OK"),
            ("RENAME a b", "OK"),
            ("GET b", "\"1\""),
            ("EXISTS a", "(integer) 0"),
            ("RENAMENX b b", "(integer) 0"),
            ("SET c 3", "OK"),
            ("RENAMENX b c", "(integer) 0"),
            ("RENAMENX b d", "(integer) 1"),
            // The deadline moves with the value, and replaces the target's.
            ("SET e 1 EX 100", "OK"),
            ("RENAME e f", "OK"),
            ("TTL f", "(integer) 100"),
            ("SET g 1 EX 100", "OK"),
            ("SET h 2", "OK"),
            ("RENAME h g", "OK"),
            ("TTL g", "(integer) -1"),
        ],
    )
    .await;
}

/// Sorted, since KEYS and SCAN answer in no particular order.
async fn sorted(c: &mut daemon_support::Conn, line: &str) -> Vec<String> {
    let got = run(c, line).await;
    let inner = got.trim_start_matches('[').trim_end_matches(']');
    let mut keys: Vec<String> = inner
        .split(", ")
        .filter(|k| !k.is_empty())
        .map(String::from)
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn keys_patterns() {
    let (_dir, d) = start();
    let mut c = conn(&d).await;
    check(
        &mut c,
        &[
            ("KEYS", "(error) ERR wrong number of arguments for 'keys' command"),
            (
                "KEYS a b",
                "(error) ERR wrong number of arguments for 'keys' command",
            ),
            ("MSET a 1 b 2 abc 3 \"a b\" 4 a* 5 x[y 6", "OK"),
            ("KEYS nomatch", "[]"),
            ("KEYS a?c", "[\"abc\"]"),
            ("KEYS a\\*", "[\"a*\"]"),
            ("KEYS a[bc]c", "[\"abc\"]"),
            ("KEYS a[^b]c", "[]"),
            ("KEYS x\\[y", "[\"x[y\"]"),
            ("KEYS a[c-a]c", "[\"abc\"]"),
        ],
    )
    .await;
    let quoted = |keys: &[&str]| keys.iter().map(|k| format!("\"{k}\"")).collect::<Vec<_>>();
    assert_eq!(sorted(&mut c, "KEYS [a-b]").await, quoted(&["a", "b"]));
    assert_eq!(sorted(&mut c, "KEYS *b*").await, quoted(&["a b", "abc", "b"]));
}

#[tokio::test]
async fn scan_options() {
    let (_dir, d) = start();
    let mut c = conn(&d).await;
    check(
        &mut c,
        &[
            ("SCAN", "(error) ERR wrong number of arguments for 'scan' command"),
            ("SCAN abc", "(error) ERR invalid cursor"),
            ("SCAN \" 1\"", "(error) ERR invalid cursor"),
            ("SCAN 18446744073709551616", "(error) ERR invalid cursor"),
            // strtoul's reading: -1 is the largest cursor, past the end.
            ("SCAN -1", "[\"0\", []]"),
            ("SCAN 0 COUNT 0", "(error) ERR syntax error"),
            (
                "SCAN 0 COUNT abc",
                "(error) ERR value is not an integer or out of range",
            ),
            ("SCAN 0 MATCH", "(error) ERR syntax error"),
            ("SCAN 0 BOGUS x", "(error) ERR syntax error"),
            ("SCAN 0", "[\"0\", []]"),
            ("MSET a 1 b 2 c 3", "OK"),
            ("SCAN 0 TYPE list", "[\"0\", []]"),
            ("SCAN 0 MATCH b", "[\"0\", [\"b\"]]"),
            ("SCAN 0 MATCH b COUNT 1000 TYPE string", "[\"0\", [\"b\"]]"),
        ],
    )
    .await;
}

#[tokio::test]
async fn randomkey_dbsize_flush() {
    let (_dir, d) = start();
    let mut c = conn(&d).await;
    check(
        &mut c,
        &[
            ("RANDOMKEY", "(nil)"),
            (
                "RANDOMKEY x",
                "(error) ERR wrong number of arguments for 'randomkey' command",
            ),
            (
                "DBSIZE x",
                "(error) ERR wrong number of arguments for 'dbsize' command",
            ),
            ("SET only 1", "OK"),
            ("RANDOMKEY", "\"only\""),
            ("DBSIZE", "(integer) 1"),
            ("FLUSHDB BOGUS", "(error) ERR syntax error"),
            ("FLUSHDB ASYNC SYNC", "(error) ERR syntax error"),
            ("FLUSHALL BOGUS", "(error) ERR syntax error"),
            ("FLUSHDB SYNC", "OK"),
            ("DBSIZE", "(integer) 0"),
            ("SET k 1", "OK"),
            ("FLUSHALL async", "OK"),
            ("DBSIZE", "(integer) 0"),
        ],
    )
    .await;
}
