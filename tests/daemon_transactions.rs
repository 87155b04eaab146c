//! MULTI, EXEC, DISCARD, WATCH and UNWATCH through a real client, with the
//! replies Redis 7.0 gives to the same requests (each checked against a real
//! redis-server), and pipelines.

mod daemon_support;

use daemon_support::{check, conn, run, start};

#[tokio::test]
async fn queueing_and_errors() {
    let (_dir, d) = start();
    let mut c = conn(&d).await;
    check(
        &mut c,
        &[
            ("EXEC", "(error) ERR EXEC without MULTI"),
            ("DISCARD", "(error) ERR DISCARD without MULTI"),
            ("MULTI x", "(error) ERR wrong number of arguments for 'multi' command"),
            ("MULTI", "OK"),
            ("SET a abc", "QUEUED"),
            ("INCR a", "QUEUED"),
            ("SET k v EX abc", "QUEUED"),
            ("GET a", "QUEUED"),
            ("MULTI", "(error) ERR MULTI calls can not be nested"),
            ("WATCH a", "(error) ERR WATCH inside MULTI is not allowed"),
            // A run-time error takes its slot; the rest runs.
            (
                "EXEC",
                "[OK, (error) ERR value is not an integer or out of range, \
                 (error) ERR value is not an integer or out of range, \"abc\"]",
            ),
            ("MULTI", "OK"),
            ("SET a 1", "QUEUED"),
            ("FOO", "(error) ERR unknown command 'FOO', with args beginning with: "),
            ("SET b", "(error) ERR wrong number of arguments for 'set' command"),
            ("EXEC", "(error) EXECABORT Transaction discarded because of previous errors."),
            ("GET a", "\"abc\""),
            ("MULTI", "OK"),
            ("EXEC x", "(error) EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command"),
            ("EXEC", "(error) ERR EXEC without MULTI"),
            ("EXEC x", "(error) EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command"),
            ("MULTI", "OK"),
            ("DISCARD x", "(error) ERR wrong number of arguments for 'discard' command"),
            ("EXEC", "(error) EXECABORT Transaction discarded because of previous errors."),
            ("MULTI", "OK"),
            ("SAVE", "(error) ERR Command not allowed inside a transaction"),
            ("SHUTDOWN NOSAVE", "(error) ERR Command not allowed inside a transaction"),
            ("EXEC", "(error) EXECABORT Transaction discarded because of previous errors."),
            ("MULTI", "OK"),
            ("SET a 2", "QUEUED"),
            ("DISCARD", "OK"),
            ("DISCARD", "(error) ERR DISCARD without MULTI"),
            ("GET a", "\"abc\""),
            ("MULTI", "OK"),
            ("EXEC", "[]"),
            ("MULTI", "OK"),
            ("PING", "QUEUED"),
            ("ECHO hi", "QUEUED"),
            ("SELECT 0", "QUEUED"),
            ("EXEC", "[PONG, \"hi\", OK]"),
        ],
    )
    .await;
}

#[tokio::test]
async fn watch_and_unwatch() {
    let (_dir, d) = start();
    let mut c = conn(&d).await;
    let mut other = conn(&d).await;
    check(
        &mut c,
        &[
            (
                "WATCH",
                "(error) ERR wrong number of arguments for 'watch' command",
            ),
            (
                "UNWATCH x",
                "(error) ERR wrong number of arguments for 'unwatch' command",
            ),
            ("SET a 1", "OK"),
            ("WATCH a", "OK"),
        ],
    )
    .await;
    check(&mut other, &[("SET a 2", "OK")]).await;
    check(
        &mut c,
        &[
            ("MULTI", "OK"),
            ("SET a mine", "QUEUED"),
            ("EXEC", "(nil)"),
            ("GET a", "\"2\""),
            // The watch ended with that EXEC.
            ("MULTI", "OK"),
            ("GET a", "QUEUED"),
            ("EXEC", "[\"2\"]"),
            // A change by the watcher itself counts too.
            ("WATCH a", "OK"),
            ("SET a 3", "OK"),
            ("MULTI", "OK"),
            ("GET a", "QUEUED"),
            ("EXEC", "(nil)"),
            ("WATCH a", "OK"),
            ("UNWATCH", "OK"),
        ],
    )
    .await;
    check(&mut other, &[("SET a 4", "OK")]).await;
    check(
        &mut c,
        &[
            ("MULTI", "OK"),
            ("GET a", "QUEUED"),
            ("EXEC", "[\"4\"]"),
            // Deleting a watched key, or giving it a deadline, aborts.
            ("WATCH a", "OK"),
            ("EXPIRE a 100", "(integer) 1"),
            ("MULTI", "OK"),
            ("EXEC", "(nil)"),
            ("WATCH a", "OK"),
            ("DEL a", "(integer) 1"),
            ("MULTI", "OK"),
            ("EXEC", "(nil)"),
        ],
    )
    .await;
}

#[tokio::test]
async fn quit_and_reset_inside_multi() {
    let (_dir, d) = start();
    let mut c = conn(&d).await;
    check(
        &mut c,
        &[
            ("MULTI", "OK"),
            ("SET a 1", "QUEUED"),
            ("RESET", "RESET"),
            ("EXEC", "(error) ERR EXEC without MULTI"),
            ("EXISTS a", "(integer) 0"),
        ],
    )
    .await;
    let got = d.raw(
        b"MULTI\r\nSET a 1\r\nQUIT\r\nPING\r\n",
        std::time::Duration::from_millis(500),
    );
    assert_eq!(String::from_utf8_lossy(&got), "+OK\r\n+QUEUED\r\n+OK\r\n");
}

#[tokio::test]
async fn pipelines_answer_in_order() {
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
    // Errors inside a pipeline take their place; the rest still run.
    let got = d.raw(
        b"SET p3 v\r\nGET p3\r\nSET x y NX XX\r\nINCR p3\r\nDEL p3\r\n",
        std::time::Duration::from_millis(500),
    );
    assert_eq!(
        String::from_utf8_lossy(&got),
        "+OK\r\n$1\r\nv\r\n-ERR syntax error\r\n-ERR value is not an integer or out of range\r\n:1\r\n"
    );
    let (set, incr, get): (String, i64, String) = redis::pipe()
        .atomic()
        .set("tx", "1")
        .incr("tx", 1)
        .get("tx")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!((set.as_str(), incr, get.as_str()), ("OK", 2, "2"));
    assert_eq!(run(&mut c, "GET p1").await, "\"one\"");
}
