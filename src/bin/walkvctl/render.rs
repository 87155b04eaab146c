//! Output: the reports as text for people and as JSON for programs (the
//! crash harness reads `check --json` and `repair --json`), and `dump`.
//! Keys and values are escaped as redis-cli prints them (`"\x00"`).

use std::fmt::Write as _;
use std::io::{self, Write};
use std::ops::ControlFlow;
use std::path::Path;

use bytes::Bytes;
use serde_json::{Value, json};
use walkv::engine::mutation::Mutation;
use walkv::log::check::{self, IndexState};
use walkv::log::{LogConfig, Offset};

use crate::inspect::{Report, SnapState};
use crate::repair::{Done, Plan};
use crate::{EXIT_OK, Failure};

/// Replay speed assumed by `stat`: the median of `replay_1M_sets_100B/open`
/// in docs/benchmarks.md (1M SETs, 146 MB of log, 1.32 s: 110.6 MB/s).
const REPLAY_LOG_BYTES_PER_SEC: f64 = 110.6e6;
/// Snapshot keys loaded per second: the same benchmark's 1M keys in 1.32 s,
/// since loading a snapshot inserts the same keys (docs/benchmarks.md).
const REPLAY_SNAPSHOT_KEYS_PER_SEC: f64 = 1e6 / 1.32;

/// A byte string as redis-cli prints it, without the quotes: printable ASCII
/// as is, `\\` and `\"` escaped, `\n \r \t \a \b`, anything else `\xHH`.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out
}

fn quoted(bytes: &[u8]) -> String {
    format!("\"{}\"", escape(bytes))
}

/// A mutation as a command-like line.
fn mutation_text(m: &Mutation) -> String {
    match m {
        Mutation::Set {
            key,
            value,
            expire_at_ms,
        } => match expire_at_ms {
            Some(at) => format!("SET {} {} PXAT {at}", quoted(key), quoted(value)),
            None => format!("SET {} {}", quoted(key), quoted(value)),
        },
        Mutation::Delete { keys } => {
            let keys: Vec<String> = keys.iter().map(|k| quoted(k)).collect();
            format!("DEL {}", keys.join(" ")).trim_end().to_string()
        }
        Mutation::Batch(items) => {
            let items: Vec<String> = items.iter().map(mutation_text).collect();
            format!("BATCH [{}]", items.join("; "))
        }
        Mutation::FlushAll => "FLUSHALL".to_string(),
        Mutation::SetDeadline {
            key,
            expire_at_ms: Some(at),
        } => format!("PEXPIREAT {} {at}", quoted(key)),
        Mutation::SetDeadline {
            key,
            expire_at_ms: None,
        } => format!("PERSIST {}", quoted(key)),
    }
}

fn mutation_json(m: &Mutation) -> Value {
    match m {
        Mutation::Set {
            key,
            value,
            expire_at_ms,
        } => json!({"op": "set", "key": escape(key), "value": escape(value), "expire_at_ms": expire_at_ms}),
        Mutation::Delete { keys } => {
            json!({"op": "del", "keys": keys.iter().map(|k| escape(k)).collect::<Vec<_>>()})
        }
        Mutation::Batch(items) => {
            json!({"op": "batch", "items": items.iter().map(mutation_json).collect::<Vec<_>>()})
        }
        Mutation::FlushAll => json!({"op": "flushall"}),
        Mutation::SetDeadline { key, expire_at_ms } => {
            json!({"op": "set_deadline", "key": escape(key), "expire_at_ms": expire_at_ms})
        }
    }
}

/// `walkvctl dump`: walks the records with the library's walker and prints
/// each; where the walk stops early, the check says what the damage is.
pub fn dump(
    dir: &Path,
    from: Offset,
    limit: Option<u64>,
    json: bool,
    read_only: bool,
) -> Result<u8, Failure> {
    let (target, _locks, live) = crate::open(dir, read_only)?;
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut printed = 0u64;
    let mut write_error = None;
    let max = LogConfig::default().max_record_bytes;
    let (_, stopped) = check::walk(&target.wal, from, max, &mut |r| {
        if limit.is_some_and(|n| printed >= n) {
            return ControlFlow::Break(());
        }
        let decoded = Mutation::decode(&Bytes::copy_from_slice(r.payload));
        let segment = r.segment;
        let line = if json {
            let mutation = match &decoded {
                Ok(m) => mutation_json(m),
                Err(e) => json!({"op": "undecodable", "error": e.to_string(), "payload": escape(r.payload)}),
            };
            json!({"offset": r.offset, "segment": segment, "position": r.position,
                   "length": r.payload.len(), "mutation": mutation})
            .to_string()
        } else {
            let mutation = match &decoded {
                Ok(m) => mutation_text(m),
                Err(e) => format!("UNDECODABLE ({e}) {}", quoted(r.payload)),
            };
            format!(
                "offset={} segment={segment} position={} length={} {mutation}",
                r.offset,
                r.position,
                r.payload.len()
            )
        };
        printed += 1;
        match writeln!(out, "{line}") {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                write_error = Some(e);
                ControlFlow::Break(())
            }
        }
    })?;
    out.flush()?;
    if let Some(e) = write_error {
        // A closed pipe (`| head`) is a normal end for a dump.
        return if e.kind() == io::ErrorKind::BrokenPipe {
            Ok(EXIT_OK)
        } else {
            Err(e.into())
        };
    }
    let Some(stop) = stopped else {
        return Ok(EXIT_OK);
    };
    // Where the walk stopped, the checker decides what the damage is.
    let report = crate::inspect::inspect(&target, live)?;
    if report.status() != check::Status::Clean {
        eprintln!(
            "walkvctl: the log stops at {} byte {} (offset {}): {}; status {} (see `walkvctl check`)",
            stop.file.display(),
            stop.position,
            stop.offset,
            stop.reason,
            report.status().as_str()
        );
    }
    Ok(crate::exit_code(report.status()))
}

fn index_json(state: &IndexState) -> (&'static str, Option<&str>) {
    match state {
        IndexState::Agrees => ("ok", None),
        IndexState::Rebuild(reason) => ("rebuild", Some(reason)),
        IndexState::NotChecked(why) => ("not_checked", Some(why)),
    }
}

/// The report of `check` as one JSON object.
pub fn check_json(r: &Report) -> Value {
    let segments: Vec<Value> = r
        .log
        .segments
        .iter()
        .map(|s| {
            let (index, index_reason) = index_json(&s.index);
            json!({"base": s.base, "store": s.store, "bytes": s.store_bytes, "records": s.records(),
                   "next_offset": s.base + s.records(), "highest_next_offset": s.highest_next,
                   "index": index, "index_reason": index_reason})
        })
        .collect();
    let snapshots: Vec<Value> = r.snapshots.iter().map(snapshot_json).collect();
    let damage: Vec<Value> = r
        .findings
        .iter()
        .map(|f| {
            json!({"file": f.file, "position": f.position, "offset": f.offset, "kind": f.kind,
                   "reason": f.reason, "corrupt": f.corrupt})
        })
        .collect();
    let repair = (r.status() == check::Status::Corrupt).then(|| plan_json(&crate::repair::plan(r)));
    json!({
        "status": r.status().as_str(),
        "directory": r.target.dir,
        "log_directory": r.target.wal,
        "read_only_live": r.live,
        "segments": segments,
        "records": r.log.valid_next() - r.log.first_offset(),
        "first_offset": r.log.first_offset(),
        "next_offset": r.log.next_offset(),
        "valid_next_offset": r.log.valid_next(),
        "store_bytes": r.log.store_bytes(),
        "snapshots": snapshots,
        "damage": damage,
        "leftovers": r.log.leftovers,
        "unfinished_roll": r.log.unfinished_roll,
        "strays": r.log.strays,
        "in_flight": r.log.in_flight.as_ref().map(|(f, p)| json!({"file": f, "position": p})),
        "replay_from": r.replay_from,
        "repair_truncate_corrupt": repair,
    })
}

fn snapshot_json(s: &crate::inspect::SnapshotCheck) -> Value {
    let effects_below = match &s.state {
        SnapState::Intact { effects_below, .. } => *effects_below,
        _ => None,
    };
    let (state, keys, position, reason) = match &s.state {
        SnapState::Intact { keys, .. } if s.beyond_log => ("beyond_log", Some(*keys), None, None),
        SnapState::Intact { keys, .. } => ("intact", Some(*keys), None, None),
        SnapState::Damaged { position, reason } => ("damaged", None, Some(*position), Some(reason.as_str())),
        SnapState::BelowLog => ("below_log", None, None, None),
    };
    json!({"path": s.path, "offset": s.offset, "bytes": s.bytes, "state": state, "keys": keys,
           "intact": s.is_intact(), "position": position, "reason": reason,
           "effects_below": effects_below})
}

/// The dropped range of a plan's cut, if it drops any offset.
fn dropped(plan: Option<&Plan>) -> Option<&check::CutPlan> {
    plan.and_then(|p| p.cut.as_ref()).filter(|c| c.drops())
}

/// What the repair moves to quarantine without losing it: records a kept
/// snapshot covers.
fn covered_json(cut: Option<&check::CutPlan>) -> Value {
    match cut.and_then(|c| c.covered) {
        Some((from, to, snapshot)) => json!({"from": from, "to": to, "snapshot": snapshot}),
        None => Value::Null,
    }
}

fn plan_json(plan: &Plan) -> Value {
    let drop = dropped(Some(plan));
    let cut = plan.cut.as_ref();
    json!({
        "first_dropped_offset": drop.map(|c| c.first_dropped),
        "next_offset_after": drop.map(|c| c.next_before),
        "next_offset_after_is_lower_bound": drop.map(|c| c.next_is_lower_bound),
        "dropped_records": drop.map(|c| c.next_before.saturating_sub(c.first_dropped)),
        "covered_by_snapshot": covered_json(cut),
        "kept_snapshot": plan.kept_snapshot,
        "moves": cut.map_or(Vec::new(), |c| c.moves.clone()),
        "truncate": cut.and_then(|c| c.truncate.as_ref()).map(|t| json!({"store": t.store, "position": t.position, "bytes": t.bytes})),
        "recreate_base": cut.and_then(|c| c.recreate_base),
        "snapshots": plan.snapshots,
        "refusal": plan.refusal,
    })
}

fn print_json(value: &Value) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{value}")?;
    out.flush()
}

pub fn print_check(r: &Report, json: bool) -> io::Result<()> {
    if json {
        return print_json(&check_json(r));
    }
    let mut s = String::new();
    describe(&mut s, r);
    let _ = writeln!(s, "status: {}", r.status().as_str());
    match r.status() {
        check::Status::Clean => {}
        check::Status::Torn => {
            let _ = writeln!(
                s,
                "the daemon cuts the torn tail when it starts; `walkvctl repair {}` does it now",
                r.target.dir.display()
            );
        }
        check::Status::Corrupt => describe_plan(&mut s, r, &crate::repair::plan(r)),
    }
    io::stdout().lock().write_all(s.as_bytes())
}

/// The directory in a few lines.
fn describe(s: &mut String, r: &Report) {
    let log = &r.log;
    let kind = if r.target.engine {
        "data directory"
    } else {
        "log directory"
    };
    let _ = writeln!(
        s,
        "{kind} {} (log in {})",
        r.target.dir.display(),
        log.dir.display()
    );
    if r.live {
        let _ = writeln!(
            s,
            "read-only: the directory is locked by a running writer; its last segment may be growing"
        );
    }
    let _ = writeln!(
        s,
        "log: {} segments, {} bytes; offsets {}..{} (next offset {})",
        log.segments.len(),
        log.store_bytes(),
        log.first_offset(),
        log.valid_next(),
        log.next_offset()
    );
    for seg in &log.segments {
        let (index, why) = index_json(&seg.index);
        let why = why.map_or(String::new(), |w| format!(" ({w})"));
        let end = seg.base + seg.records();
        let past = if seg.highest_next > end {
            format!(
                " (and intact records up to offset {} past the damage)",
                seg.highest_next - 1
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "  {}: offsets {}..{end}, {} records{past}, {} bytes, index {index}{why}",
            seg.store.file_name().unwrap_or_default().to_string_lossy(),
            seg.base,
            seg.records(),
            seg.store_bytes
        );
    }
    for snap in &r.snapshots {
        let state = match &snap.state {
            SnapState::Intact { keys, .. } if snap.beyond_log => {
                format!("intact, {keys} keys, but past the end of the log")
            }
            SnapState::Intact { keys, .. } => format!("intact, {keys} keys"),
            SnapState::Damaged { position, reason } => format!("DAMAGED at byte {position}: {reason}"),
            SnapState::BelowLog => "older than the log; not used".to_string(),
        };
        let _ = writeln!(
            s,
            "snapshot {} at offset {}, {} bytes: {state}",
            snap.path.display(),
            snap.offset,
            snap.bytes
        );
    }
    for path in &log.leftovers {
        let _ = writeln!(s, "leftover (the next open removes it): {}", path.display());
    }
    if let Some(path) = &log.unfinished_roll {
        let _ = writeln!(
            s,
            "unfinished segment roll (the next open adopts it if it continues the log, else removes it): {}",
            path.display()
        );
    }
    for path in &log.strays {
        let _ = writeln!(s, "stray file (left alone): {}", path.display());
    }
    for f in &r.findings {
        let _ = writeln!(
            s,
            "damage: {} in {} at byte {} (log offset {}): {}",
            f.kind,
            f.file.display(),
            f.position,
            f.offset,
            f.reason
        );
    }
}

fn describe_plan(s: &mut String, r: &Report, plan: &Plan) {
    if let Some(refusal) = &plan.refusal {
        let _ = writeln!(s, "cannot repair: {refusal}");
        return;
    }
    let dir = r.target.dir.display();
    let _ = writeln!(
        s,
        "`walkvctl repair {dir} --truncate-corrupt` would, into {dir}/quarantine/<time>/:"
    );
    if let Some(offset) = plan.kept_snapshot {
        let _ = writeln!(
            s,
            "  keep the intact snapshot at offset {offset} as the base of the state"
        );
    }
    if let Some(cut) = &plan.cut {
        if let Some((from, to, snapshot)) = cut.covered {
            let _ = writeln!(
                s,
                "  move log offsets {from}..{to} ({} records, covered by the snapshot at offset {snapshot}: \
                 nothing acknowledged is lost)",
                to - from
            );
        }
        if cut.drops() {
            let _ = writeln!(
                s,
                "  drop log offsets {}..{} ({}{} records; the log would end at offset {})",
                cut.first_dropped,
                cut.next_before,
                if cut.next_is_lower_bound { "at least " } else { "" },
                cut.next_before.saturating_sub(cut.first_dropped),
                cut.first_dropped
            );
        } else {
            let _ = writeln!(
                s,
                "  drop no log offset: the log would end at offset {}",
                cut.next_before
            );
        }
        if let Some(t) = &cut.truncate {
            let _ = writeln!(
                s,
                "  cut {} at byte {}, moving its last {} bytes",
                t.store.display(),
                t.position,
                t.bytes
            );
        }
        for path in &cut.moves {
            let _ = writeln!(s, "  move {}", path.display());
        }
        if let Some(base) = cut.recreate_base {
            let _ = writeln!(s, "  create an empty segment at offset {base}");
        }
    }
    for path in &plan.snapshots {
        let _ = writeln!(s, "  move snapshot {}", path.display());
    }
}

pub fn print_refusal(r: &Report, plan: &Plan, flag: bool, json: bool) -> io::Result<()> {
    if json {
        let mut value = json!({"action": "none", "first_dropped_offset": null, "next_offset_after": null,
                               "quarantine": null, "refused": true, "status": r.status().as_str(),
                               "plan": plan_json(plan), "check": check_json(r)});
        if !flag {
            value["reason"] = json!("corruption found; repairing it needs --truncate-corrupt");
        }
        return print_json(&value);
    }
    let mut s = String::new();
    describe(&mut s, r);
    if !flag && plan.refusal.is_none() {
        let _ = writeln!(s, "corruption found; nothing was changed.");
    }
    describe_plan(&mut s, r, plan);
    io::stdout().lock().write_all(s.as_bytes())
}

pub fn print_repair(before: &Report, done: &Done, json: bool) -> io::Result<()> {
    let cut = dropped(done.plan.as_ref());
    let recovery = done.recovery.as_ref();
    if json {
        let value = json!({
            "action": done.action,
            "first_dropped_offset": cut.map(|c| c.first_dropped),
            "next_offset_after": cut.map(|c| c.next_before),
            "next_offset_after_is_lower_bound": cut.map(|c| c.next_is_lower_bound),
            "quarantine": done.quarantine,
            "dropped_records": cut.map(|c| c.next_before.saturating_sub(c.first_dropped)),
            "covered_by_snapshot": covered_json(done.plan.as_ref().and_then(|p| p.cut.as_ref())),
            "kept_snapshot": done.plan.as_ref().and_then(|p| p.kept_snapshot),
            "plan": done.plan.as_ref().map(plan_json),
            "torn_bytes": recovery.map(|r| r.torn_bytes),
            "indexes_rebuilt": recovery.map(|r| r.indexes_rebuilt),
            "status_before": before.status().as_str(),
            "status": done.after.status().as_str(),
            "next_offset": done.after.log.next_offset(),
        });
        return print_json(&value);
    }
    let mut s = String::new();
    let _ = writeln!(s, "before: {}", before.status().as_str());
    if let Some(plan) = &done.plan {
        describe_plan(&mut s, before, plan);
    }
    let _ = writeln!(s, "action: {}", done.action);
    if let Some(cut) = cut {
        let at_least = if cut.next_is_lower_bound { "at least " } else { "" };
        let _ = writeln!(
            s,
            "dropped log offsets {}..{} ({at_least}{} records)",
            cut.first_dropped,
            cut.next_before,
            cut.next_before.saturating_sub(cut.first_dropped)
        );
    }
    if let Some(q) = &done.quarantine {
        let _ = writeln!(s, "quarantine: {} (nothing was deleted)", q.display());
    }
    if let Some(rec) = recovery {
        let _ = writeln!(
            s,
            "torn bytes cut: {}; indexes rebuilt: {}",
            rec.torn_bytes, rec.indexes_rebuilt
        );
    }
    let _ = writeln!(
        s,
        "after: {}, next offset {}",
        done.after.status().as_str(),
        done.after.log.next_offset()
    );
    io::stdout().lock().write_all(s.as_bytes())
}

pub fn print_stat(r: &Report, json: bool) -> io::Result<()> {
    let snapshot = r.chosen();
    let keys = snapshot.map_or(0, |s| match s.state {
        SnapState::Intact { keys, .. } => keys,
        _ => 0,
    });
    let seconds =
        r.replay_bytes as f64 / REPLAY_LOG_BYTES_PER_SEC + keys as f64 / REPLAY_SNAPSHOT_KEYS_PER_SEC;
    let index_bytes: u64 = r
        .log
        .segments
        .iter()
        .map(|s| std::fs::metadata(walkv::log::dir::index_path(&r.log.dir, s.base)).map_or(0, |m| m.len()))
        .sum();
    let assumption = format!(
        "{:.1} MB/s of log and {:.0} snapshot keys/s: the median of replay_1M_sets_100B/open in \
         docs/benchmarks.md (1M SETs, 146 MB, 1.32 s, from the page cache); a cold disk is slower",
        REPLAY_LOG_BYTES_PER_SEC / 1e6,
        REPLAY_SNAPSHOT_KEYS_PER_SEC
    );
    if json {
        return print_json(&json!({
            "status": r.status().as_str(),
            "directory": r.target.dir,
            "segments": r.log.segments.len(),
            "store_bytes": r.log.store_bytes(),
            "index_bytes": index_bytes,
            "first_offset": r.log.first_offset(),
            "next_offset": r.log.next_offset(),
            "records": r.log.valid_next() - r.log.first_offset(),
            "snapshot": snapshot.map(|s| json!({"path": s.path, "offset": s.offset, "bytes": s.bytes, "keys": keys})),
            "replay_from": r.replay_from,
            "replay_records": r.replay_records,
            "replay_bytes": r.replay_bytes,
            "estimated_replay_seconds": seconds,
            "estimate_assumes": assumption,
        }));
    }
    let mut s = String::new();
    describe(&mut s, r);
    let _ = writeln!(s, "indexes: {index_bytes} bytes");
    let _ = writeln!(
        s,
        "replay on open: {} records, {} bytes of log from offset {}, after {keys} snapshot keys",
        r.replay_records, r.replay_bytes, r.replay_from
    );
    let _ = writeln!(s, "estimated replay time: {seconds:.2} s, assuming {assumption}");
    let _ = writeln!(s, "status: {}", r.status().as_str());
    io::stdout().lock().write_all(s.as_bytes())
}
