//! String commands through a real client, with the replies Redis 7.0 gives to
//! the same requests (each checked against a real redis-server): SET and its
//! options, SETNX/SETEX/PSETEX, GETSET/GETDEL/GETEX, MGET/MSET/MSETNX, the
//! counters, APPEND/STRLEN, GETRANGE/SETRANGE.

mod daemon_support;

use daemon_support::{check, conn, start};

#[tokio::test]
async fn set_options_conflicts_and_repeats() {
    let (_dir, d) = start();
    let mut c = conn(&d).await;
    check(
        &mut c,
        &[
            ("SET k", "(error) ERR wrong number of arguments for 'set' command"),
            ("SET k v extra", "(error) ERR syntax error"),
            ("SET k v NX XX", "(error) ERR syntax error"),
            ("SET k v EX 10 PX 100", "(error) ERR syntax error"),
            ("SET k v EX 10 KEEPTTL", "(error) ERR syntax error"),
            ("SET k v KEEPTTL EX 10", "(error) ERR syntax error"),
            ("SET k v EX", "(error) ERR syntax error"),
            ("SET k v PERSIST", "(error) ERR syntax error"),
            // A syntax error anywhere wins over a bad number.
            ("SET k v EX abc bogus", "(error) ERR syntax error"),
            ("SET k v NX EX abc XX", "(error) ERR syntax error"),
            (
                "SET k v EX abc",
                "(error) ERR value is not an integer or out of range",
            ),
            (
                "SET k v EX 1.5",
                "(error) ERR value is not an integer or out of range",
            ),
            (
                "SET k v EX +10",
                "(error) ERR value is not an integer or out of range",
            ),
            (
                "SET k v EX 010",
                "(error) ERR value is not an integer or out of range",
            ),
            // Repeating a word is allowed; the last value wins.
            ("SET k v NX NX", "OK"),
            ("SET k v EX abc EX 100", "OK"),
            ("TTL k", "(integer) 100"),
            (
                "SET k v EX 10 EX abc",
                "(error) ERR value is not an integer or out of range",
            ),
            ("SET k v KEEPTTL KEEPTTL", "OK"),
            ("TTL k", "(integer) 100"),
            ("SET k v2 GET GET", "\"v\""),
            ("SET k v3 xx get", "\"v2\""),
            ("SET k v4 NX GET", "\"v3\""),
            ("GET k", "\"v3\""),
            ("SET new v NX GET", "(nil)"),
            ("SET other v XX", "(nil)"),
            ("SET other v XX GET", "(nil)"),
            ("EXISTS other", "(integer) 0"),
            ("GET", "(error) ERR wrong number of arguments for 'get' command"),
            (
                "GET a b",
                "(error) ERR wrong number of arguments for 'get' command",
            ),
            ("GET missing", "(nil)"),
        ],
    )
    .await;
}

#[tokio::test]
async fn set_deadlines() {
    let (_dir, d) = start();
    let mut c = conn(&d).await;
    check(
        &mut c,
        &[
            ("SET k v EX 0", "(error) ERR invalid expire time in 'set' command"),
            (
                "SET k v EX -1",
                "(error) ERR invalid expire time in 'set' command",
            ),
            ("SET k v PX 0", "(error) ERR invalid expire time in 'set' command"),
            (
                "SET k v EXAT 0",
                "(error) ERR invalid expire time in 'set' command",
            ),
            (
                "SET k v PXAT 0",
                "(error) ERR invalid expire time in 'set' command",
            ),
            // Overflows once in milliseconds, or once added to now.
            (
                "SET k v EX 9223372036854775807",
                "(error) ERR invalid expire time in 'set' command",
            ),
            (
                "SET k v EX 9223372036854775",
                "(error) ERR invalid expire time in 'set' command",
            ),
            (
                "SET k v PX 9223372036854775807",
                "(error) ERR invalid expire time in 'set' command",
            ),
            (
                "SET k v EX 9223372036854775808",
                "(error) ERR value is not an integer or out of range",
            ),
            ("EXISTS k", "(integer) 0"),
            // A deadline in the past: OK, and the key is gone.
            ("SET k v PXAT 1", "OK"),
            ("GET k", "(nil)"),
            ("SET k v EXAT 1", "OK"),
            ("EXISTS k", "(integer) 0"),
            ("SET k v PX 100000", "OK"),
            ("SET k v2 KEEPTTL", "OK"),
            ("TTL k", "(integer) 100"),
            ("SET k v3", "OK"),
            ("TTL k", "(integer) -1"),
            ("SET k v PXAT 32503680000000", "OK"),
            ("PEXPIRETIME k", "(integer) 32503680000000"),
            ("SET k v EXAT 32503680000", "OK"),
            ("EXPIRETIME k", "(integer) 32503680000"),
        ],
    )
    .await;
}

#[tokio::test]
async fn setnx_setex_psetex() {
    let (_dir, d) = start();
    let mut c = conn(&d).await;
    check(
        &mut c,
        &[
            (
                "SETNX k",
                "(error) ERR wrong number of arguments for 'setnx' command",
            ),
            ("SETNX k v", "(integer) 1"),
            ("SETNX k w", "(integer) 0"),
            ("GET k", "\"v\""),
            (
                "SETEX k 0 v",
                "(error) ERR invalid expire time in 'setex' command",
            ),
            (
                "SETEX k -1 v",
                "(error) ERR invalid expire time in 'setex' command",
            ),
            (
                "SETEX k abc v",
                "(error) ERR value is not an integer or out of range",
            ),
            (
                "SETEX k 9223372036854775807 v",
                "(error) ERR invalid expire time in 'setex' command",
            ),
            (
                "SETEX k 9223372036854775 v",
                "(error) ERR invalid expire time in 'setex' command",
            ),
            (
                "SETEX k 10",
                "(error) ERR wrong number of arguments for 'setex' command",
            ),
            (
                "PSETEX k 0 v",
                "(error) ERR invalid expire time in 'psetex' command",
            ),
            (
                "PSETEX k 9223372036854775807 v",
                "(error) ERR invalid expire time in 'psetex' command",
            ),
            ("GET k", "\"v\""),
            ("SETEX k 100 w", "OK"),
            ("TTL k", "(integer) 100"),
            ("PSETEX k 100000 x", "OK"),
            ("TTL k", "(integer) 100"),
            ("GET k", "\"x\""),
        ],
    )
    .await;
}

#[tokio::test]
async fn getset_getdel_getex() {
    let (_dir, d) = start();
    let mut c = conn(&d).await;
    check(
        &mut c,
        &[
            (
                "GETSET k",
                "(error) ERR wrong number of arguments for 'getset' command",
            ),
            ("GETSET k v", "(nil)"),
            ("SET k v EX 100", "OK"),
            ("GETSET k w", "\"v\""),
            ("TTL k", "(integer) -1"),
            ("GETDEL missing", "(nil)"),
            ("GETDEL k", "\"w\""),
            ("GETDEL k", "(nil)"),
            (
                "GETDEL k x",
                "(error) ERR wrong number of arguments for 'getdel' command",
            ),
            // A missing key: null before the time is even read.
            ("GETEX missing", "(nil)"),
            ("GETEX missing EX abc", "(nil)"),
            ("GETEX missing EX 0", "(nil)"),
            ("GETEX missing BOGUS", "(error) ERR syntax error"),
            ("GETEX missing EX", "(error) ERR syntax error"),
            ("SET k v", "OK"),
            ("GETEX k", "\"v\""),
            (
                "GETEX k EX 0",
                "(error) ERR invalid expire time in 'getex' command",
            ),
            (
                "GETEX k EX -5",
                "(error) ERR invalid expire time in 'getex' command",
            ),
            (
                "GETEX k EX abc",
                "(error) ERR value is not an integer or out of range",
            ),
            (
                "GETEX k EX 9223372036854775807",
                "(error) ERR invalid expire time in 'getex' command",
            ),
            ("GETEX k EX 10 PX 10", "(error) ERR syntax error"),
            ("GETEX k PERSIST EX 10", "(error) ERR syntax error"),
            ("GETEX k EX 10 PERSIST", "(error) ERR syntax error"),
            ("GETEX k KEEPTTL", "(error) ERR syntax error"),
            ("GETEX k GET", "(error) ERR syntax error"),
            ("GETEX k NX", "(error) ERR syntax error"),
            ("GETEX k EX 10 EX 100", "\"v\""),
            ("TTL k", "(integer) 100"),
            ("GETEX k", "\"v\""),
            ("TTL k", "(integer) 100"),
            ("GETEX k PERSIST PERSIST", "\"v\""),
            ("TTL k", "(integer) -1"),
            ("GETEX k PXAT 32503680000000", "\"v\""),
            ("PEXPIRETIME k", "(integer) 32503680000000"),
            (
                "GETEX k EXAT 0",
                "(error) ERR invalid expire time in 'getex' command",
            ),
            ("GETEX k PXAT 1", "\"v\""),
            ("EXISTS k", "(integer) 0"),
        ],
    )
    .await;
}

#[tokio::test]
async fn mget_mset_msetnx() {
    let (_dir, d) = start();
    let mut c = conn(&d).await;
    check(
        &mut c,
        &[
            ("MGET", "(error) ERR wrong number of arguments for 'mget' command"),
            (
                "MSET a",
                "(error) ERR wrong number of arguments for 'mset' command",
            ),
            (
                "MSET a 1 b",
                "(error) ERR wrong number of arguments for 'mset' command",
            ),
            ("MSET a 1 b 2", "OK"),
            ("MGET a b c", "[\"1\", \"2\", (nil)]"),
            (
                "MSETNX a 1 b",
                "(error) ERR wrong number of arguments for 'msetnx' command",
            ),
            ("MSETNX a 9 c 3", "(integer) 0"),
            ("GET c", "(nil)"),
            ("MSETNX x 1 y 2", "(integer) 1"),
            ("MSETNX z 1 z 2", "(integer) 1"),
            ("MGET z", "[\"2\"]"),
            ("MSET z 3 z 4", "OK"),
            ("GET z", "\"4\""),
        ],
    )
    .await;
}

#[tokio::test]
async fn counters() {
    let (_dir, d) = start();
    let mut c = conn(&d).await;
    check(
        &mut c,
        &[
            ("INCR", "(error) ERR wrong number of arguments for 'incr' command"),
            (
                "INCR n x",
                "(error) ERR wrong number of arguments for 'incr' command",
            ),
            ("INCR n", "(integer) 1"),
            ("DECR n", "(integer) 0"),
            (
                "INCRBY n abc",
                "(error) ERR value is not an integer or out of range",
            ),
            (
                "INCRBY n 1.5",
                "(error) ERR value is not an integer or out of range",
            ),
            ("INCRBY n 9223372036854775807", "(integer) 9223372036854775807"),
            ("INCR n", "(error) ERR increment or decrement would overflow"),
            (
                "DECRBY n -9223372036854775808",
                "(error) ERR decrement would overflow",
            ),
            (
                "DECRBY n 9223372036854775808",
                "(error) ERR value is not an integer or out of range",
            ),
            ("SET n -9223372036854775808", "OK"),
            ("DECR n", "(error) ERR increment or decrement would overflow"),
            ("INCRBY n -1", "(error) ERR increment or decrement would overflow"),
            ("SET n \" 1\"", "OK"),
            ("INCR n", "(error) ERR value is not an integer or out of range"),
            ("SET n 01", "OK"),
            ("INCR n", "(error) ERR value is not an integer or out of range"),
            ("SET n 1.0", "OK"),
            ("INCR n", "(error) ERR value is not an integer or out of range"),
            ("SET n \"\"", "OK"),
            ("INCR n", "(error) ERR value is not an integer or out of range"),
            ("SET n 9223372036854775808", "OK"),
            ("INCR n", "(error) ERR value is not an integer or out of range"),
            (
                "INCRBY m +5",
                "(error) ERR value is not an integer or out of range",
            ),
            ("DECRBY m -5", "(integer) 5"),
            // The deadline survives.
            ("SET t 1 EX 100", "OK"),
            ("INCR t", "(integer) 2"),
            ("TTL t", "(integer) 100"),
        ],
    )
    .await;
}

#[tokio::test]
async fn incrbyfloat() {
    let (_dir, d) = start();
    let mut c = conn(&d).await;
    check(
        &mut c,
        &[
            (
                "INCRBYFLOAT f",
                "(error) ERR wrong number of arguments for 'incrbyfloat' command",
            ),
            ("INCRBYFLOAT f abc", "(error) ERR value is not a valid float"),
            ("INCRBYFLOAT f \" 1\"", "(error) ERR value is not a valid float"),
            ("INCRBYFLOAT f \"\"", "(error) ERR value is not a valid float"),
            ("INCRBYFLOAT f nan", "(error) ERR value is not a valid float"),
            (
                "INCRBYFLOAT f inf",
                "(error) ERR increment would produce NaN or Infinity",
            ),
            (
                "INCRBYFLOAT f -Infinity",
                "(error) ERR increment would produce NaN or Infinity",
            ),
            ("INCRBYFLOAT f 1.5", "\"1.5\""),
            ("INCRBYFLOAT f -1.5", "\"0\""),
            ("INCRBYFLOAT f 1e3", "\"1000\""),
            ("INCRBYFLOAT f 5.0e3", "\"6000\""),
            ("INCRBYFLOAT f 0x10", "\"6016\""),
            ("INCRBYFLOAT f .5", "\"6016.5\""),
            ("INCRBYFLOAT f -6016.5", "\"0\""),
            ("SET s abc", "OK"),
            ("INCRBYFLOAT s 1", "(error) ERR value is not a valid float"),
            ("SET h 1.5e2", "OK"),
            ("INCRBYFLOAT h 1", "\"151\""),
            ("SET i 10", "OK"),
            ("INCRBYFLOAT i 0.5", "\"10.5\""),
            ("SET j 5", "OK"),
            ("INCRBYFLOAT j -5", "\"0\""),
            ("INCR i", "(error) ERR value is not an integer or out of range"),
        ],
    )
    .await;
}

#[tokio::test]
async fn append_and_strlen() {
    let (_dir, d) = start();
    let mut c = conn(&d).await;
    check(
        &mut c,
        &[
            (
                "APPEND k",
                "(error) ERR wrong number of arguments for 'append' command",
            ),
            ("APPEND k v", "(integer) 1"),
            ("APPEND k vv", "(integer) 3"),
            ("APPEND k \"\"", "(integer) 3"),
            ("GET k", "\"vvv\""),
            ("APPEND e \"\"", "(integer) 0"),
            ("EXISTS e", "(integer) 1"),
            ("STRLEN k", "(integer) 3"),
            ("STRLEN missing", "(integer) 0"),
            (
                "STRLEN k x",
                "(error) ERR wrong number of arguments for 'strlen' command",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn getrange_indexes() {
    let (_dir, d) = start();
    let mut c = conn(&d).await;
    check(
        &mut c,
        &[
            ("SET k \"Hello World\"", "OK"),
            (
                "GETRANGE k 0",
                "(error) ERR wrong number of arguments for 'getrange' command",
            ),
            ("GETRANGE k 0 4", "\"Hello\""),
            ("GETRANGE k -5 -1", "\"World\""),
            ("GETRANGE k -1 -5", "\"\""),
            ("GETRANGE k 0 -1", "\"Hello World\""),
            ("GETRANGE k 0 100", "\"Hello World\""),
            ("GETRANGE k 100 200", "\"\""),
            ("GETRANGE k -100 -50", "\"H\""),
            ("GETRANGE k -100 2", "\"Hel\""),
            ("GETRANGE k 5 3", "\"\""),
            ("GETRANGE k -1 -1", "\"d\""),
            ("GETRANGE k 10 10", "\"d\""),
            ("GETRANGE k 11 11", "\"\""),
            (
                "GETRANGE k a b",
                "(error) ERR value is not an integer or out of range",
            ),
            (
                "GETRANGE k 0 b",
                "(error) ERR value is not an integer or out of range",
            ),
            ("GETRANGE k 9223372036854775807 9223372036854775807", "\"\""),
            ("GETRANGE k -9223372036854775808 -9223372036854775808", "\"H\""),
            (
                "GETRANGE k -9223372036854775808 9223372036854775807",
                "\"Hello World\"",
            ),
            ("GETRANGE missing 0 -1", "\"\""),
            ("SUBSTR k 0 2", "\"Hel\""),
            ("SET empty \"\"", "OK"),
            ("GETRANGE empty 0 -1", "\"\""),
        ],
    )
    .await;
}

#[tokio::test]
async fn setrange_offsets() {
    let (_dir, d) = start();
    let mut c = conn(&d).await;
    check(
        &mut c,
        &[
            (
                "SETRANGE k 0",
                "(error) ERR wrong number of arguments for 'setrange' command",
            ),
            ("SETRANGE k -1 v", "(error) ERR offset is out of range"),
            (
                "SETRANGE k abc v",
                "(error) ERR value is not an integer or out of range",
            ),
            (
                "SETRANGE k 1.5 v",
                "(error) ERR value is not an integer or out of range",
            ),
            // An empty value creates nothing.
            ("SETRANGE k 0 \"\"", "(integer) 0"),
            ("SETRANGE k 5 \"\"", "(integer) 0"),
            ("EXISTS k", "(integer) 0"),
            ("SETRANGE k 3 ab", "(integer) 5"),
            ("GET k", "\"\\x00\\x00\\x00ab\""),
            ("SETRANGE k 0 XY", "(integer) 5"),
            ("GET k", "\"XY\\x00ab\""),
            ("SETRANGE k 1 \"\"", "(integer) 5"),
            // 512 MB, proto-max-bulk-len, is the limit.
            (
                "SETRANGE k 536870912 x",
                "(error) ERR string exceeds maximum allowed size (proto-max-bulk-len)",
            ),
            (
                "SETRANGE k 9223372036854775807 x",
                "(error) ERR string exceeds maximum allowed size (proto-max-bulk-len)",
            ),
            ("SETRANGE k 9223372036854775807 \"\"", "(integer) 5"),
        ],
    )
    .await;
}
