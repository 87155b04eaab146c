//! Connection, server and transaction commands. Generated from Redis 7.0's
//! `COMMAND INFO` and `COMMAND DOCS` (see [`super`]), with the subcommands
//! walkv has.

use super::Kind::*;
use super::{Spec, arg, block, cmd, one_of, token};

pub const COMMANDS: &[Spec] = &[
    cmd("ping", -1, "fast", (0, 0, 0), "@fast @connection")
        .doc("connection", "1.0.0", "O(1)")
        .summary("Ping the server")
        .args(&[
            arg("message", Str).optional(),
        ]),
    cmd("echo", 2, "loading stale fast", (0, 0, 0), "@fast @connection")
        .doc("connection", "1.0.0", "O(1)")
        .summary("Echo the given string")
        .args(&[
            arg("message", Str),
        ]),
    cmd("quit", -1, "noscript loading stale fast no_auth allow_busy", (0, 0, 0), "@fast @connection")
        .doc("connection", "1.0.0", "O(1)")
        .summary("Close the connection"),
    cmd("reset", 1, "noscript loading stale fast no_auth allow_busy", (0, 0, 0), "@fast @connection")
        .doc("connection", "6.2.0", "O(1)")
        .summary("Reset the connection"),
    cmd("hello", -1, "noscript loading stale fast no_auth allow_busy", (0, 0, 0), "@fast @connection")
        .doc("connection", "6.0.0", "O(1)")
        .summary("Handshake with Redis")
        .args(&[
            block("arguments", &[arg("protover", Int), block("username_password", &[arg("username", Str), arg("password", Str)]).token("AUTH").optional(), arg("clientname", Str).token("SETNAME").optional()]).optional(),
        ]),
    cmd("auth", -2, "noscript loading stale fast no_auth allow_busy", (0, 0, 0), "@fast @connection")
        .doc("connection", "1.0.0", "O(N) where N is the number of passwords defined for the user")
        .summary("Authenticate to the server")
        .args(&[
            arg("username", Str).optional(),
            arg("password", Str),
        ]),
    cmd("select", 2, "loading stale fast", (0, 0, 0), "@fast @connection")
        .doc("connection", "1.0.0", "O(1)")
        .summary("Change the selected database for the current connection")
        .args(&[
            arg("index", Int),
        ]),
    cmd("client", -2, "", (0, 0, 0), "@slow")
        .doc("connection", "2.4.0", "Depends on subcommand.")
        .summary("A container for client connection commands")
        .subcommands(CLIENT_SUBCOMMANDS),
    cmd("command", -1, "loading stale", (0, 0, 0), "@slow @connection")
        .doc("server", "2.8.13", "O(N) where N is the total number of Redis commands")
        .summary("Get array of Redis command details")
        .subcommands(COMMAND_SUBCOMMANDS),
    cmd("config", -2, "", (0, 0, 0), "@slow")
        .doc("server", "2.0.0", "Depends on subcommand.")
        .summary("A container for server configuration commands")
        .subcommands(CONFIG_SUBCOMMANDS),
    cmd("info", -1, "loading stale", (0, 0, 0), "@slow @dangerous")
        .doc("server", "1.0.0", "O(1)")
        .summary("Get information and statistics about the server")
        .args(&[
            arg("section", Str).optional().multiple(),
        ]),
    cmd("time", 1, "loading stale fast", (0, 0, 0), "@fast")
        .doc("server", "2.6.0", "O(1)")
        .summary("Return the current server time"),
    cmd("lastsave", 1, "loading stale fast", (0, 0, 0), "@admin @fast @dangerous")
        .doc("server", "1.0.0", "O(1)")
        .summary("Get the UNIX time stamp of the last successful save to disk"),
    cmd("save", 1, "admin noscript no_async_loading no_multi", (0, 0, 0), "@admin @slow @dangerous")
        .doc("server", "1.0.0", "O(N) where N is the total number of keys in all databases")
        .summary("Synchronously save the dataset to disk"),
    cmd("bgsave", -1, "admin noscript no_async_loading", (0, 0, 0), "@admin @slow @dangerous")
        .doc("server", "1.0.0", "O(1)")
        .summary("Asynchronously save the dataset to disk")
        .args(&[
            token("schedule", "SCHEDULE").optional(),
        ]),
    cmd("bgrewriteaof", 1, "admin noscript no_async_loading", (0, 0, 0), "@admin @slow @dangerous")
        .doc("server", "1.0.0", "O(1)")
        .summary("Asynchronously rewrite the append-only file"),
    cmd("shutdown", -1, "admin noscript loading stale no_multi allow_busy", (0, 0, 0), "@admin @slow @dangerous")
        .doc("server", "1.0.0", "O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)")
        .summary("Synchronously save the dataset to disk and then shut down the server")
        .args(&[
            one_of("nosave_save", &[token("nosave", "NOSAVE"), token("save", "SAVE")]).optional(),
            token("now", "NOW").optional(),
            token("force", "FORCE").optional(),
            token("abort", "ABORT").optional(),
        ]),
    cmd("multi", 1, "noscript loading stale fast allow_busy", (0, 0, 0), "@fast @transaction")
        .doc("transactions", "1.2.0", "O(1)")
        .summary("Mark the start of a transaction block"),
    cmd("exec", 1, "noscript loading stale skip_slowlog", (0, 0, 0), "@slow @transaction")
        .doc("transactions", "1.2.0", "Depends on commands in the transaction")
        .summary("Execute all commands issued after MULTI"),
    cmd("discard", 1, "noscript loading stale fast allow_busy", (0, 0, 0), "@fast @transaction")
        .doc("transactions", "2.0.0", "O(N), when N is the number of queued commands")
        .summary("Discard all commands issued after MULTI"),
    cmd("watch", -2, "noscript loading stale fast allow_busy", (1, -1, 1), "@fast @transaction")
        .doc("transactions", "2.2.0", "O(1) for every key.")
        .summary("Watch the given keys to determine execution of the MULTI/EXEC block")
        .args(&[
            arg("key", Key).multiple(),
        ]),
    cmd("unwatch", 1, "noscript loading stale fast allow_busy", (0, 0, 0), "@fast @transaction")
        .doc("transactions", "2.2.0", "O(1)")
        .summary("Forget about all watched keys"),
];

const CLIENT_SUBCOMMANDS: &[Spec] = &[
    cmd(
        "client|id",
        2,
        "noscript loading stale",
        (0, 0, 0),
        "@slow @connection",
    )
    .doc("connection", "5.0.0", "O(1)")
    .summary("Returns the client ID for the current connection"),
    cmd(
        "client|setname",
        3,
        "noscript loading stale",
        (0, 0, 0),
        "@slow @connection",
    )
    .doc("connection", "2.6.9", "O(1)")
    .summary("Set the current connection name")
    .args(&[arg("connection-name", Str)]),
    cmd(
        "client|getname",
        2,
        "noscript loading stale",
        (0, 0, 0),
        "@slow @connection",
    )
    .doc("connection", "2.6.9", "O(1)")
    .summary("Get the current connection name"),
    cmd(
        "client|list",
        -2,
        "admin noscript loading stale",
        (0, 0, 0),
        "@admin @slow @dangerous @connection",
    )
    .doc(
        "connection",
        "2.4.0",
        "O(N) where N is the number of client connections",
    )
    .summary("Get the list of client connections")
    .args(&[
        one_of(
            "normal_master_replica_pubsub",
            &[
                token("normal", "NORMAL"),
                token("master", "MASTER"),
                token("replica", "REPLICA"),
                token("pubsub", "PUBSUB"),
            ],
        )
        .token("TYPE")
        .optional(),
        block("id", &[arg("client-id", Int).multiple()])
            .token("ID")
            .optional(),
    ]),
    cmd(
        "client|info",
        2,
        "noscript loading stale",
        (0, 0, 0),
        "@slow @connection",
    )
    .doc("connection", "6.2.0", "O(1)")
    .summary("Returns information about the current client connection."),
    cmd(
        "client|kill",
        -3,
        "admin noscript loading stale",
        (0, 0, 0),
        "@admin @slow @dangerous @connection",
    )
    .doc(
        "connection",
        "2.4.0",
        "O(N) where N is the number of client connections",
    )
    .summary("Kill the connection of a client")
    .args(&[one_of(
        "filter",
        &[
            arg("ip:port", Str),
            one_of(
                "new-format",
                &[
                    arg("client-id", Int).token("ID").optional(),
                    one_of(
                        "normal_master_slave_pubsub",
                        &[
                            token("normal", "NORMAL"),
                            token("master", "MASTER"),
                            token("slave", "SLAVE"),
                            token("replica", "REPLICA"),
                            token("pubsub", "PUBSUB"),
                        ],
                    )
                    .token("TYPE")
                    .optional(),
                    arg("username", Str).token("USER").optional(),
                    arg("ip:port", Str).token("ADDR").optional(),
                    arg("ip:port", Str).token("LADDR").optional(),
                    arg("yes/no", Str).token("SKIPME").optional(),
                ],
            )
            .multiple(),
        ],
    )]),
    // Redis 7.2's, written by hand: the Redis 7.0 this table comes from has none.
    cmd(
        "client|setinfo",
        4,
        "noscript loading stale",
        (0, 0, 0),
        "@slow @connection",
    )
    .doc("connection", "7.2.0", "O(1)")
    .summary("Set client or connection specific info")
    .args(&[one_of(
        "attr",
        &[
            arg("libname", Str).token("LIB-NAME"),
            arg("libver", Str).token("LIB-VER"),
        ],
    )]),
    cmd("client|help", 2, "loading stale", (0, 0, 0), "@slow @connection")
        .doc("connection", "5.0.0", "O(1)")
        .summary("Show helpful text about the different subcommands"),
    cmd(
        "client|reply",
        3,
        "noscript loading stale",
        (0, 0, 0),
        "@slow @connection",
    )
    .doc("connection", "3.2.0", "O(1)")
    .summary("Instruct the server whether to reply to commands")
    .args(&[one_of(
        "on_off_skip",
        &[token("on", "ON"), token("off", "OFF"), token("skip", "SKIP")],
    )]),
];

const COMMAND_SUBCOMMANDS: &[Spec] = &[
    cmd(
        "command|count",
        2,
        "loading stale",
        (0, 0, 0),
        "@slow @connection",
    )
    .doc("server", "2.8.13", "O(1)")
    .summary("Get total number of Redis commands"),
    cmd(
        "command|info",
        -2,
        "loading stale",
        (0, 0, 0),
        "@slow @connection",
    )
    .doc(
        "server",
        "2.8.13",
        "O(N) where N is the number of commands to look up",
    )
    .summary("Get array of specific Redis command details, or all when no argument is given.")
    .args(&[arg("command-name", Str).optional().multiple()]),
    cmd(
        "command|docs",
        -2,
        "loading stale",
        (0, 0, 0),
        "@slow @connection",
    )
    .doc(
        "server",
        "7.0.0",
        "O(N) where N is the number of commands to look up",
    )
    .summary("Get array of specific Redis command documentation")
    .args(&[arg("command-name", Str).optional().multiple()]),
    cmd(
        "command|list",
        -2,
        "loading stale",
        (0, 0, 0),
        "@slow @connection",
    )
    .doc(
        "server",
        "7.0.0",
        "O(N) where N is the total number of Redis commands",
    )
    .summary("Get an array of Redis command names")
    .args(&[one_of(
        "filterby",
        &[
            arg("module-name", Str).token("MODULE"),
            arg("category", Str).token("ACLCAT"),
            arg("pattern", Pattern).token("PATTERN"),
        ],
    )
    .token("FILTERBY")
    .optional()]),
    cmd(
        "command|getkeys",
        -4,
        "loading stale",
        (0, 0, 0),
        "@slow @connection",
    )
    .doc(
        "server",
        "2.8.13",
        "O(N) where N is the number of arguments to the command",
    )
    .summary("Extract keys given a full Redis command"),
    cmd("command|help", 2, "loading stale", (0, 0, 0), "@slow @connection")
        .doc("server", "5.0.0", "O(1)")
        .summary("Show helpful text about the different subcommands"),
];

const CONFIG_SUBCOMMANDS: &[Spec] = &[
    cmd(
        "config|get",
        -3,
        "admin noscript loading stale",
        (0, 0, 0),
        "@admin @slow @dangerous",
    )
    .doc(
        "server",
        "2.0.0",
        "O(N) when N is the number of configuration parameters provided",
    )
    .summary("Get the values of configuration parameters")
    .args(&[block("parameter", &[arg("parameter", Str)]).multiple()]),
    cmd(
        "config|set",
        -4,
        "admin noscript loading stale",
        (0, 0, 0),
        "@admin @slow @dangerous",
    )
    .doc(
        "server",
        "2.0.0",
        "O(N) when N is the number of configuration parameters provided",
    )
    .summary("Set configuration parameters to the given values")
    .args(&[block("parameter_value", &[arg("parameter", Str), arg("value", Str)]).multiple()]),
    cmd(
        "config|resetstat",
        2,
        "admin noscript loading stale",
        (0, 0, 0),
        "@admin @slow @dangerous",
    )
    .doc("server", "2.0.0", "O(1)")
    .summary("Reset the stats returned by INFO"),
    cmd("config|help", 2, "loading stale", (0, 0, 0), "@slow")
        .doc("server", "5.0.0", "O(1)")
        .summary("Show helpful text about the different subcommands"),
];
