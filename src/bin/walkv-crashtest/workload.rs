//! The clients: each owns its keys, issues one operation at a time (SET,
//! DEL, INCR, MSET, MULTI/EXEC) with values that are never repeated, and
//! records every operation with its outcome. Owning its keys makes each
//! key's history sequential, so the checker can say exactly which values a
//! key may hold after a crash; group commit still mixes every client's
//! writes into the same batches and fsyncs.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::client::{Conn, Reply, args};
use crate::rng::Rng;

/// String keys and counters per client.
pub const KEYS: usize = 6;
pub const COUNTERS: usize = 2;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Set(String),
    Del,
    Incr,
}

#[derive(Debug, Clone, Serialize)]
pub struct Write {
    pub key: String,
    pub effect: Effect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Answered with success: it must survive any crash.
    Acked,
    /// Certainly not applied (refused before it ran).
    Failed,
    /// Sent, but no answer (cut connection) or an error answer: it may or
    /// may not have been applied.
    Unknown,
}

#[derive(Debug, Clone, Serialize)]
pub struct Op {
    pub client: usize,
    pub id: u64,
    pub cycle: u32,
    pub kind: &'static str,
    /// In the order the server applies them.
    pub writes: Vec<Write>,
    pub outcome: Outcome,
    /// The value each INCR returned, in order (acked operations only).
    pub incr_results: Vec<i64>,
}

pub fn key(client: usize, i: usize) -> String {
    format!("c{client}:k{i}")
}

pub fn counter(client: usize, i: usize) -> String {
    format!("c{client}:n{i}")
}

pub fn is_counter(key: &str) -> bool {
    key.contains(":n")
}

/// Every key a client owns, in a fixed order.
pub fn keys_of(client: usize) -> Vec<String> {
    (0..KEYS)
        .map(|i| key(client, i))
        .chain((0..COUNTERS).map(|i| counter(client, i)))
        .collect()
}

/// A value nobody else writes: client, operation and key are in it, then
/// padding of random length so that segments fill at varied offsets.
fn value(rng: &mut Rng, client: usize, id: u64, key: &str) -> String {
    let pad = "x".repeat(rng.below(160) as usize);
    format!("{client}.{id}.{key}.{pad}")
}

fn distinct_keys(rng: &mut Rng, client: usize, n: usize) -> Vec<String> {
    let mut picked: Vec<usize> = Vec::new();
    while picked.len() < n {
        let i = rng.below(KEYS as u64) as usize;
        if !picked.contains(&i) {
            picked.push(i);
        }
    }
    picked.into_iter().map(|i| key(client, i)).collect()
}

pub fn generate(rng: &mut Rng, client: usize, id: u64, cycle: u32) -> Op {
    let set = |rng: &mut Rng, k: String| {
        let v = value(rng, client, id, &k);
        Write {
            key: k,
            effect: Effect::Set(v),
        }
    };
    let roll = rng.below(100);
    let (kind, writes) = match roll {
        0..35 => {
            let k = key(client, rng.below(KEYS as u64) as usize);
            ("set", vec![set(rng, k)])
        }
        35..45 => {
            let n = rng.between(1, 2) as usize;
            let writes = distinct_keys(rng, client, n)
                .into_iter()
                .map(|k| Write {
                    key: k,
                    effect: Effect::Del,
                })
                .collect();
            ("del", writes)
        }
        45..65 => {
            let k = counter(client, rng.below(COUNTERS as u64) as usize);
            (
                "incr",
                vec![Write {
                    key: k,
                    effect: Effect::Incr,
                }],
            )
        }
        65..80 => {
            let n = rng.between(2, 3) as usize;
            let keys = distinct_keys(rng, client, n);
            ("mset", keys.into_iter().map(|k| set(rng, k)).collect())
        }
        _ => {
            let n = rng.between(2, 3) as usize;
            let mut writes: Vec<Write> = distinct_keys(rng, client, n)
                .into_iter()
                .map(|k| match rng.below(3) {
                    0 => Write {
                        key: k,
                        effect: Effect::Del,
                    },
                    _ => set(rng, k),
                })
                .collect();
            let at = rng.below(writes.len() as u64 + 1) as usize;
            let k = counter(client, rng.below(COUNTERS as u64) as usize);
            writes.insert(
                at,
                Write {
                    key: k,
                    effect: Effect::Incr,
                },
            );
            ("multi", writes)
        }
    };
    Op {
        client,
        id,
        cycle,
        kind,
        writes,
        outcome: Outcome::Unknown,
        incr_results: Vec::new(),
    }
}

fn command(w: &Write) -> Vec<Vec<u8>> {
    match &w.effect {
        Effect::Set(v) => args(["SET", w.key.as_str(), v.as_str()]),
        Effect::Del => args(["DEL", w.key.as_str()]),
        Effect::Incr => args(["INCR", w.key.as_str()]),
    }
}

/// What an error reply means: refused before running, or in doubt.
fn judge_error(msg: &str) -> Outcome {
    if msg.starts_with("LOADING") || msg.starts_with("EXECABORT") {
        Outcome::Failed
    } else {
        Outcome::Unknown
    }
}

/// Runs one operation. `Err` means the connection is unusable (the outcome
/// is then unknown and the client stops for this cycle).
pub fn execute(conn: &mut Conn, op: &mut Op) -> io::Result<()> {
    op.outcome = Outcome::Unknown;
    let reply = match op.kind {
        "set" | "incr" => conn.call(command(&op.writes[0]))?,
        "del" => conn.call(args(
            std::iter::once("DEL").chain(op.writes.iter().map(|w| w.key.as_str())),
        ))?,
        "mset" => {
            let mut a = vec![b"MSET".to_vec()];
            for w in &op.writes {
                let Effect::Set(v) = &w.effect else {
                    unreachable!("MSET only sets")
                };
                a.push(w.key.clone().into_bytes());
                a.push(v.clone().into_bytes());
            }
            conn.call(a)?
        }
        _ => {
            let mut cmds = vec![args(["MULTI"])];
            cmds.extend(op.writes.iter().map(command));
            cmds.push(args(["EXEC"]));
            conn.send(&cmds)?;
            let mut queued = Vec::new();
            for _ in 0..cmds.len() - 1 {
                queued.push(conn.read()?);
            }
            let exec = conn.read()?;
            if let Some(Reply::Error(e)) = queued.iter().find(|r| matches!(r, Reply::Error(_))) {
                op.outcome = judge_error(e);
                if op.outcome == Outcome::Unknown {
                    op.outcome = match &exec {
                        Reply::Error(e) => judge_error(e),
                        _ => Outcome::Unknown,
                    };
                }
                return Ok(());
            }
            exec
        }
    };
    match reply {
        Reply::Error(e) => op.outcome = judge_error(&e),
        Reply::Simple(_) | Reply::Int(_) if op.kind != "multi" => {
            if let Reply::Int(n) = reply
                && op.kind == "incr"
            {
                op.incr_results.push(n);
            }
            op.outcome = Outcome::Acked;
        }
        Reply::Array(Some(items)) if op.kind == "multi" && items.len() == op.writes.len() => {
            if items.iter().any(|r| matches!(r, Reply::Error(_))) {
                return Ok(()); // ran, with an error inside: unknown
            }
            for (w, r) in op.writes.iter().zip(&items) {
                if let (Effect::Incr, Reply::Int(n)) = (&w.effect, r) {
                    op.incr_results.push(*n);
                }
            }
            op.outcome = Outcome::Acked;
        }
        _ => {} // unexpected: unknown
    }
    Ok(())
}

/// One client's work in one cycle: operations until `stop` or until the
/// daemon goes away. Returns every operation attempted.
pub fn run_client(
    port: u16,
    seed: u64,
    client: usize,
    cycle: u32,
    mut next_id: u64,
    stop: Arc<AtomicBool>,
) -> Vec<Op> {
    let mut rng = Rng::derive(seed, cycle as u64 + 1, client as u64 + 1);
    let mut ops = Vec::new();
    let Ok(mut conn) = Conn::connect(port, Duration::from_secs(5)) else {
        return ops;
    };
    while !stop.load(Ordering::Relaxed) {
        let mut op = generate(&mut rng, client, next_id, cycle);
        next_id += 1;
        let result = execute(&mut conn, &mut op);
        ops.push(op);
        if result.is_err() {
            break;
        }
    }
    ops
}
