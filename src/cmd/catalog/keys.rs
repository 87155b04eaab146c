//! Key commands. Generated from Redis 7.0's `COMMAND INFO` and `COMMAND DOCS`
//! (see [`super`]).

use super::Kind::*;
use super::{Spec, arg, cmd, one_of, token};

pub const COMMANDS: &[Spec] = &[
    cmd("del", -2, "write", (1, -1, 1), "@keyspace @write @slow")
        .doc("generic", "1.0.0", "O(N) where N is the number of keys that will be removed. When a key to remove holds a value other than a string, the individual complexity for this key is O(M) where M is the number of elements in the list, set, sorted set or hash. Removing a single key that holds a string value is O(1).")
        .summary("Delete a key")
        .args(&[
            arg("key", Key).multiple(),
        ]),
    cmd("unlink", -2, "write fast", (1, -1, 1), "@keyspace @write @fast")
        .doc("generic", "4.0.0", "O(1) for each key removed regardless of its size. Then the command does O(N) work in a different thread in order to reclaim memory, where N is the number of allocations the deleted objects where composed of.")
        .summary("Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.")
        .args(&[
            arg("key", Key).multiple(),
        ]),
    cmd("exists", -2, "readonly fast", (1, -1, 1), "@keyspace @read @fast")
        .doc("generic", "1.0.0", "O(N) where N is the number of keys to check.")
        .summary("Determine if a key exists")
        .args(&[
            arg("key", Key).multiple(),
        ]),
    cmd("type", 2, "readonly fast", (1, 1, 1), "@keyspace @read @fast")
        .doc("generic", "1.0.0", "O(1)")
        .summary("Determine the type stored at key")
        .args(&[
            arg("key", Key),
        ]),
    cmd("expire", -3, "write fast", (1, 1, 1), "@keyspace @write @fast")
        .doc("generic", "1.0.0", "O(1)")
        .summary("Set a key's time to live in seconds")
        .args(&[
            arg("key", Key),
            arg("seconds", Int),
            one_of("condition", &[token("nx", "NX"), token("xx", "XX"), token("gt", "GT"), token("lt", "LT")]).optional(),
        ]),
    cmd("pexpire", -3, "write fast", (1, 1, 1), "@keyspace @write @fast")
        .doc("generic", "2.6.0", "O(1)")
        .summary("Set a key's time to live in milliseconds")
        .args(&[
            arg("key", Key),
            arg("milliseconds", Int),
            one_of("condition", &[token("nx", "NX"), token("xx", "XX"), token("gt", "GT"), token("lt", "LT")]).optional(),
        ]),
    cmd("expireat", -3, "write fast", (1, 1, 1), "@keyspace @write @fast")
        .doc("generic", "1.2.0", "O(1)")
        .summary("Set the expiration for a key as a UNIX timestamp")
        .args(&[
            arg("key", Key),
            arg("unix-time-seconds", UnixTime),
            one_of("condition", &[token("nx", "NX"), token("xx", "XX"), token("gt", "GT"), token("lt", "LT")]).optional(),
        ]),
    cmd("pexpireat", -3, "write fast", (1, 1, 1), "@keyspace @write @fast")
        .doc("generic", "2.6.0", "O(1)")
        .summary("Set the expiration for a key as a UNIX timestamp specified in milliseconds")
        .args(&[
            arg("key", Key),
            arg("unix-time-milliseconds", UnixTime),
            one_of("condition", &[token("nx", "NX"), token("xx", "XX"), token("gt", "GT"), token("lt", "LT")]).optional(),
        ]),
    cmd("ttl", 2, "readonly fast", (1, 1, 1), "@keyspace @read @fast")
        .doc("generic", "1.0.0", "O(1)")
        .summary("Get the time to live for a key in seconds")
        .args(&[
            arg("key", Key),
        ]),
    cmd("pttl", 2, "readonly fast", (1, 1, 1), "@keyspace @read @fast")
        .doc("generic", "2.6.0", "O(1)")
        .summary("Get the time to live for a key in milliseconds")
        .args(&[
            arg("key", Key),
        ]),
    cmd("expiretime", 2, "readonly fast", (1, 1, 1), "@keyspace @read @fast")
        .doc("generic", "7.0.0", "O(1)")
        .summary("Get the expiration Unix timestamp for a key")
        .args(&[
            arg("key", Key),
        ]),
    cmd("pexpiretime", 2, "readonly fast", (1, 1, 1), "@keyspace @read @fast")
        .doc("generic", "7.0.0", "O(1)")
        .summary("Get the expiration Unix timestamp for a key in milliseconds")
        .args(&[
            arg("key", Key),
        ]),
    cmd("persist", 2, "write fast", (1, 1, 1), "@keyspace @write @fast")
        .doc("generic", "2.2.0", "O(1)")
        .summary("Remove the expiration from a key")
        .args(&[
            arg("key", Key),
        ]),
    cmd("rename", 3, "write", (1, 2, 1), "@keyspace @write @slow")
        .doc("generic", "1.0.0", "O(1)")
        .summary("Rename a key")
        .args(&[
            arg("key", Key),
            arg("newkey", Key),
        ]),
    cmd("renamenx", 3, "write fast", (1, 2, 1), "@keyspace @write @fast")
        .doc("generic", "1.0.0", "O(1)")
        .summary("Rename a key, only if the new key does not exist")
        .args(&[
            arg("key", Key),
            arg("newkey", Key),
        ]),
    cmd("keys", 2, "readonly", (0, 0, 0), "@keyspace @read @slow @dangerous")
        .doc("generic", "1.0.0", "O(N) with N being the number of keys in the database, under the assumption that the key names in the database and the given pattern have limited length.")
        .summary("Find all keys matching the given pattern")
        .args(&[
            arg("pattern", Pattern),
        ]),
    cmd("scan", -2, "readonly", (0, 0, 0), "@keyspace @read @slow")
        .doc("generic", "2.8.0", "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.")
        .summary("Incrementally iterate the keys space")
        .args(&[
            arg("cursor", Int),
            arg("pattern", Pattern).token("MATCH").optional(),
            arg("count", Int).token("COUNT").optional(),
            arg("type", Str).token("TYPE").optional(),
        ]),
    cmd("randomkey", 1, "readonly", (0, 0, 0), "@keyspace @read @slow")
        .doc("generic", "1.0.0", "O(1)")
        .summary("Return a random key from the keyspace"),
    cmd("dbsize", 1, "readonly fast", (0, 0, 0), "@keyspace @read @fast")
        .doc("server", "1.0.0", "O(1)")
        .summary("Return the number of keys in the selected database"),
    cmd("flushall", -1, "write", (0, 0, 0), "@keyspace @write @slow @dangerous")
        .doc("server", "1.0.0", "O(N) where N is the total number of keys in all databases")
        .summary("Remove all keys from all databases")
        .args(&[
            one_of("async", &[token("async", "ASYNC"), token("sync", "SYNC")]).optional(),
        ]),
    cmd("flushdb", -1, "write", (0, 0, 0), "@keyspace @write @slow @dangerous")
        .doc("server", "1.0.0", "O(N) where N is the number of keys in the selected database")
        .summary("Remove all keys from the current database")
        .args(&[
            one_of("async", &[token("async", "ASYNC"), token("sync", "SYNC")]).optional(),
        ]),
];
