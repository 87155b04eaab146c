//! String commands. Generated from Redis 7.0's `COMMAND INFO` and `COMMAND DOCS`
//! (see [`super`]).

use super::Kind::*;
use super::{Spec, arg, block, cmd, one_of, token};

pub const COMMANDS: &[Spec] = &[
    cmd("get", 2, "readonly fast", (1, 1, 1), "@read @string @fast")
        .doc("string", "1.0.0", "O(1)")
        .summary("Get the value of a key")
        .args(&[
            arg("key", Key),
        ]),
    cmd("set", -3, "write denyoom", (1, 1, 1), "@write @string @slow")
        .doc("string", "1.0.0", "O(1)")
        .summary("Set the string value of a key")
        .args(&[
            arg("key", Key),
            arg("value", Str),
            one_of("condition", &[token("nx", "NX"), token("xx", "XX")]).optional(),
            token("get", "GET").optional(),
            one_of("expiration", &[arg("seconds", Int).token("EX"), arg("milliseconds", Int).token("PX"), arg("unix-time-seconds", UnixTime).token("EXAT"), arg("unix-time-milliseconds", UnixTime).token("PXAT"), token("keepttl", "KEEPTTL")]).optional(),
        ]),
    cmd("setnx", 3, "write denyoom fast", (1, 1, 1), "@write @string @fast")
        .doc("string", "1.0.0", "O(1)")
        .summary("Set the value of a key, only if the key does not exist")
        .args(&[
            arg("key", Key),
            arg("value", Str),
        ]),
    cmd("setex", 4, "write denyoom", (1, 1, 1), "@write @string @slow")
        .doc("string", "2.0.0", "O(1)")
        .summary("Set the value and expiration of a key")
        .args(&[
            arg("key", Key),
            arg("seconds", Int),
            arg("value", Str),
        ]),
    cmd("psetex", 4, "write denyoom", (1, 1, 1), "@write @string @slow")
        .doc("string", "2.6.0", "O(1)")
        .summary("Set the value and expiration in milliseconds of a key")
        .args(&[
            arg("key", Key),
            arg("milliseconds", Int),
            arg("value", Str),
        ]),
    cmd("getset", 3, "write denyoom fast", (1, 1, 1), "@write @string @fast")
        .doc("string", "1.0.0", "O(1)")
        .summary("Set the string value of a key and return its old value")
        .args(&[
            arg("key", Key),
            arg("value", Str),
        ]),
    cmd("getdel", 2, "write fast", (1, 1, 1), "@write @string @fast")
        .doc("string", "6.2.0", "O(1)")
        .summary("Get the value of a key and delete the key")
        .args(&[
            arg("key", Key),
        ]),
    cmd("getex", -2, "write fast", (1, 1, 1), "@write @string @fast")
        .doc("string", "6.2.0", "O(1)")
        .summary("Get the value of a key and optionally set its expiration")
        .args(&[
            arg("key", Key),
            one_of("expiration", &[arg("seconds", Int).token("EX"), arg("milliseconds", Int).token("PX"), arg("unix-time-seconds", UnixTime).token("EXAT"), arg("unix-time-milliseconds", UnixTime).token("PXAT"), token("persist", "PERSIST")]).optional(),
        ]),
    cmd("mget", -2, "readonly fast", (1, -1, 1), "@read @string @fast")
        .doc("string", "1.0.0", "O(N) where N is the number of keys to retrieve.")
        .summary("Get the values of all the given keys")
        .args(&[
            arg("key", Key).multiple(),
        ]),
    cmd("mset", -3, "write denyoom", (1, -1, 2), "@write @string @slow")
        .doc("string", "1.0.1", "O(N) where N is the number of keys to set.")
        .summary("Set multiple keys to multiple values")
        .args(&[
            block("key_value", &[arg("key", Key), arg("value", Str)]).multiple(),
        ]),
    cmd("msetnx", -3, "write denyoom", (1, -1, 2), "@write @string @slow")
        .doc("string", "1.0.1", "O(N) where N is the number of keys to set.")
        .summary("Set multiple keys to multiple values, only if none of the keys exist")
        .args(&[
            block("key_value", &[arg("key", Key), arg("value", Str)]).multiple(),
        ]),
    cmd("incr", 2, "write denyoom fast", (1, 1, 1), "@write @string @fast")
        .doc("string", "1.0.0", "O(1)")
        .summary("Increment the integer value of a key by one")
        .args(&[
            arg("key", Key),
        ]),
    cmd("decr", 2, "write denyoom fast", (1, 1, 1), "@write @string @fast")
        .doc("string", "1.0.0", "O(1)")
        .summary("Decrement the integer value of a key by one")
        .args(&[
            arg("key", Key),
        ]),
    cmd("incrby", 3, "write denyoom fast", (1, 1, 1), "@write @string @fast")
        .doc("string", "1.0.0", "O(1)")
        .summary("Increment the integer value of a key by the given amount")
        .args(&[
            arg("key", Key),
            arg("increment", Int),
        ]),
    cmd("decrby", 3, "write denyoom fast", (1, 1, 1), "@write @string @fast")
        .doc("string", "1.0.0", "O(1)")
        .summary("Decrement the integer value of a key by the given number")
        .args(&[
            arg("key", Key),
            arg("decrement", Int),
        ]),
    cmd("incrbyfloat", 3, "write denyoom fast", (1, 1, 1), "@write @string @fast")
        .doc("string", "2.6.0", "O(1)")
        .summary("Increment the float value of a key by the given amount")
        .args(&[
            arg("key", Key),
            arg("increment", Double),
        ]),
    cmd("append", 3, "write denyoom fast", (1, 1, 1), "@write @string @fast")
        .doc("string", "2.0.0", "O(1). The amortized time complexity is O(1) assuming the appended value is small and the already present value is of any size, since the dynamic string library used by Redis will double the free space available on every reallocation.")
        .summary("Append a value to a key")
        .args(&[
            arg("key", Key),
            arg("value", Str),
        ]),
    cmd("strlen", 2, "readonly fast", (1, 1, 1), "@read @string @fast")
        .doc("string", "2.2.0", "O(1)")
        .summary("Get the length of the value stored in a key")
        .args(&[
            arg("key", Key),
        ]),
    cmd("getrange", 4, "readonly", (1, 1, 1), "@read @string @slow")
        .doc("string", "2.4.0", "O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.")
        .summary("Get a substring of the string stored at a key")
        .args(&[
            arg("key", Key),
            arg("start", Int),
            arg("end", Int),
        ]),
    cmd("substr", 4, "readonly", (1, 1, 1), "@read @string @slow")
        .doc("string", "1.0.0", "O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.")
        .summary("Get a substring of the string stored at a key")
        .args(&[
            arg("key", Key),
            arg("start", Int),
            arg("end", Int),
        ]),
    cmd("setrange", 4, "write denyoom", (1, 1, 1), "@write @string @slow")
        .doc("string", "2.2.0", "O(1), not counting the time taken to copy the new string in place. Usually, this string is very small so the amortized complexity is O(1). Otherwise, complexity is O(M) with M being the length of the value argument.")
        .summary("Overwrite part of a string at key starting at the specified offset")
        .args(&[
            arg("key", Key),
            arg("offset", Int),
            arg("value", Str),
        ]),
];
