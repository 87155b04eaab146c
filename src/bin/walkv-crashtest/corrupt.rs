//! `corrupt` mode: damage a crash cannot explain. After the kill, a byte
//! is flipped inside an acknowledged record that is not the log's tail;
//! walkvd must refuse to start (exit 4, naming the store and the byte);
//! `walkvctl repair --truncate-corrupt --json` must cut the log at exactly
//! that record; and the history the checker follows then drops exactly the
//! operations whose records the repair dropped.
//!
//! Operations are tied to log offsets by reading the log before the damage
//! (with [`walkv::log::check::walk`], the reader replay uses) and decoding
//! every record as a [`Mutation`]: each client owns its keys and runs one
//! operation at a time, so a client's records are in the order of its
//! operations, and each operation wrote one record or none (a `DEL` of
//! absent keys writes nothing).

use std::fs::OpenOptions;
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use walkv::engine::mutation::Mutation;
use walkv::log::check::walk;
use walkv::log::{LogConfig, Offset};

use crate::damage::last_store;
use crate::rng::Rng;
use crate::workload::{Effect, Op, Outcome, is_counter};

/// What corrupt mode did over the campaign.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Records damaged (one per cycle at most).
    pub damaged: u32,
    /// Cycles with no record fit to damage (nothing acknowledged above the
    /// newest snapshot but the tail).
    pub skipped: u32,
    /// walkvd refused with exit 4, naming the store and the byte.
    pub refused: u32,
    /// `walkvctl repair` cut the log where the damage was.
    pub repaired: u32,
    pub records_dropped: u64,
    pub acked_dropped: u64,
    /// A missed refusal, a failed repair, or a cut elsewhere than the damage.
    pub failures: u32,
    /// Repairs refused because the newest snapshot's bound `E` lies past
    /// the cut (it may hold effects of records the cut would drop); the
    /// byte is then put back and the cycle goes on as a kill.
    pub refused_fuzzy: u32,
}

/// One record of the log, decoded.
#[derive(Debug, Clone)]
pub struct Logged {
    pub offset: Offset,
    pub store: PathBuf,
    /// Byte position of the record's header in the store.
    pub position: u64,
    pub payload_len: usize,
    /// The client whose keys it writes (`None`: not a workload record).
    pub client: Option<usize>,
    /// Key and the value set (`None`: deleted), in order.
    pub writes: Vec<(String, Option<String>)>,
}

/// The log as read before the damage.
pub struct LogView {
    pub records: Vec<Logged>,
    /// One past the last intact record: where the next start appends.
    pub end: Offset,
    /// Records below this are not candidates: they belong to earlier
    /// cycles, or the newest snapshot covers them.
    pub from: Offset,
}

/// Reads the records of `wal` from `boundary` (where this cycle's writes
/// begin) to the end, as far as segments are left; records below the newest
/// snapshot's offset in `data` are read but are not candidates.
pub fn read_log(data: &Path, wal: &Path, boundary: Offset) -> Result<LogView> {
    let snapshot = walkv::engine::snapshot::find(data)?
        .last()
        .map_or(0, |(offset, _)| *offset);
    let from = snapshot.max(boundary);
    let mut records = Vec::new();
    let mut bad = None;
    let max = LogConfig::default().max_record_bytes;
    let (end, stop) = walk(
        wal,
        boundary,
        max,
        &mut |r| match Mutation::decode(&Bytes::copy_from_slice(r.payload)) {
            Ok(m) => {
                let mut writes = Vec::new();
                flatten(&m, &mut writes);
                let client = writes.first().and_then(|(k, _)| client_of(k));
                records.push(Logged {
                    offset: r.offset,
                    store: r.store.to_path_buf(),
                    position: r.position,
                    payload_len: r.payload.len(),
                    client,
                    writes,
                });
                ControlFlow::Continue(())
            }
            Err(e) => {
                bad = Some(format!("record {} does not decode: {e}", r.offset));
                ControlFlow::Break(())
            }
        },
    )?;
    if let Some(why) = bad {
        bail!("{why}");
    }
    // A stop anywhere but the last store is damage the harness did not make.
    if let Some(stop) = stop
        && Some(&stop.file) != last_store(wal).as_ref()
    {
        bail!(
            "the log is damaged before corrupt mode touched it: {} at byte {}: {}",
            stop.file.display(),
            stop.position,
            stop.reason
        );
    }
    Ok(LogView { records, end, from })
}

fn flatten(m: &Mutation, out: &mut Vec<(String, Option<String>)>) {
    let s = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
    match m {
        Mutation::Set { key, value, .. } => out.push((s(key), Some(s(value)))),
        Mutation::Delete { keys } => out.extend(keys.iter().map(|k| (s(k), None))),
        Mutation::Batch(items) => items.iter().for_each(|i| flatten(i, out)),
        // The workload issues neither; they match no operation.
        Mutation::FlushAll | Mutation::SetDeadline { .. } => out.push((String::new(), None)),
    }
}

/// `c<N>:…` → N.
fn client_of(key: &str) -> Option<usize> {
    key.strip_prefix('c')?.split(':').next()?.parse().ok()
}

/// Whether `record` can be what `op` wrote: the op's writes in order, where
/// a `DEL` of an absent key leaves nothing and an `INCR` logs the value it
/// produced (the value it answered, when it was acknowledged).
pub fn compatible(op: &Op, record: &[(String, Option<String>)]) -> bool {
    let mut logged = record.iter().peekable();
    let mut replies = op.incr_results.iter();
    for w in &op.writes {
        let next = logged.peek().filter(|(k, _)| *k == w.key);
        match (&w.effect, next) {
            (Effect::Set(v), Some((_, Some(got)))) if got == v => {}
            (Effect::Incr, Some((_, Some(n)))) => {
                let Ok(n) = n.parse::<i64>() else { return false };
                if op.outcome == Outcome::Acked && replies.next() != Some(&n) {
                    return false;
                }
            }
            (Effect::Del, Some((_, None))) => {}
            (Effect::Del, _) => continue,
            _ => return false,
        }
        logged.next();
    }
    logged.next().is_none()
}

/// Whether `record`, if `op` wrote it, could have been written by no other
/// operation of the cycle: it sets a string key (values are never written
/// twice), or a counter to the value an acknowledged `INCR` answered (a
/// counter's values only grow within a cycle). A record of `DEL`s alone, or
/// of an `INCR` whose answer was lost, is not.
fn unique(op: &Op, record: &[(String, Option<String>)]) -> bool {
    let sets_string = record.iter().any(|(k, v)| v.is_some() && !is_counter(k));
    let answered_incr = op.outcome == Outcome::Acked && op.writes.iter().any(|w| w.effect == Effect::Incr);
    (sets_string || answered_incr) && compatible(op, record)
}

/// How one client's operations of the cycle map to log offsets.
#[derive(Debug, PartialEq)]
pub struct Mapping {
    /// The log offset of each operation, `None` for one that wrote no
    /// record (or whose record could not be placed: only below `exact_from`).
    pub offsets: Vec<Option<Offset>>,
    /// From this offset on, every record of the client is tied to its
    /// operation for certain: the first record only one operation can have
    /// written. Before it, records in segments the snapshot let walkvd
    /// delete may be missing from the walk, and a record of `DEL`s could be
    /// taken for an earlier `DEL` whose own record is gone. `None`: no such
    /// record (then none of the client's records is certain).
    pub exact_from: Option<Offset>,
}

/// Ties one client's records (in order) to its operations (in order).
/// Records that only one operation can have written are placed first;
/// the others between them, each to the first fitting operation after the
/// one before it (a `DEL` that wrote nothing changed nothing, so choosing
/// it rather than a later one with the same keys changes no state). Errs
/// when a record fits no operation.
pub fn offsets_of(ops: &[Op], records: &[&Logged]) -> Result<Mapping> {
    let mut offsets = vec![None; ops.len()];
    // The operation of each record that only one operation can have written.
    let mut anchors: Vec<Option<usize>> = Vec::with_capacity(records.len());
    let mut next = 0;
    for r in records {
        let found = (next..ops.len()).find(|&i| unique(&ops[i], &r.writes));
        if let Some(i) = found {
            next = i + 1;
        }
        anchors.push(found);
    }
    let exact_from = records
        .iter()
        .zip(&anchors)
        .find(|(_, a)| a.is_some())
        .map(|(r, _)| r.offset);
    let mut next = None::<usize>;
    for (k, r) in records.iter().enumerate() {
        let i = match anchors[k] {
            Some(i) => i,
            // Before the first anchor: unplaced (below `exact_from`).
            None if next.is_none() => continue,
            None => {
                let from = next.unwrap_or(0);
                let until = anchors[k..].iter().flatten().next().copied().unwrap_or(ops.len());
                let fits = |&i: &usize| ops[i].outcome != Outcome::Failed && compatible(&ops[i], &r.writes);
                let Some(i) = (from..until).find(fits) else {
                    bail!(
                        "record {} ({:?}) matches no operation of its client",
                        r.offset,
                        r.writes
                    );
                };
                i
            }
        };
        offsets[i] = Some(r.offset);
        next = Some(i + 1);
    }
    Ok(Mapping { offsets, exact_from })
}

/// Marks as not applied every operation from the first one whose record is
/// at or past `cut`: its record and every later one of the client were
/// dropped, and an operation that wrote nothing changed nothing. Returns how
/// many acknowledged operations lost their record.
pub fn drop_from(ops: &mut [Op], offsets: &[Option<Offset>], cut: Offset) -> u64 {
    let Some(first) = offsets.iter().position(|o| o.is_some_and(|o| o >= cut)) else {
        return 0;
    };
    let mut acked = 0;
    for (op, offset) in ops[first..].iter_mut().zip(&offsets[first..]) {
        if op.outcome == Outcome::Acked && offset.is_some() {
            acked += 1;
        }
        op.outcome = Outcome::Failed;
    }
    acked
}

/// Where the damage may go so that every client's records from there on
/// are tied to their operations for certain: at or past each client's
/// `exact_from` (past all of its records when it has none).
pub fn exact_from(mappings: &[Mapping], records: &[Logged]) -> Offset {
    let mut from = 0;
    for (c, m) in mappings.iter().enumerate() {
        let last = records
            .iter()
            .rfind(|r| r.client == Some(c))
            .map(|r| r.offset + 1);
        from = from.max(m.exact_from.or(last).unwrap_or(0));
    }
    from
}

/// The record to damage: one of an acknowledged operation, at or past
/// `from` and `view.from`, and not the last intact record of the last store
/// (damage there looks like a torn write, which walkvd cuts by design,
/// format.md §5.5). `acked(offset)` says whether an offset's operation was
/// acknowledged.
pub fn choose<'a>(
    view: &'a LogView,
    from: Offset,
    wal: &Path,
    acked: &dyn Fn(Offset) -> bool,
    rng: &mut Rng,
) -> Option<&'a Logged> {
    // While a roll is unfinished, the segment it sealed is the last one
    // the open keeps if its end is damaged (the new store then no longer
    // follows on and goes): its last record is a tail too.
    let mut lasts = vec![last_store(wal)];
    if walkv::log::dir::list(wal).is_ok_and(|l| l.unfinished_roll.is_some()) {
        lasts.push(super::damage::last_named_store(wal));
    }
    let tails: Vec<Offset> = lasts
        .iter()
        .filter_map(|last| view.records.iter().rfind(|r| Some(&r.store) == last.as_ref()))
        .map(|r| r.offset)
        .collect();
    let fit: Vec<&Logged> = view
        .records
        .iter()
        .filter(|r| r.offset >= view.from.max(from) && !tails.contains(&r.offset) && acked(r.offset))
        .collect();
    (!fit.is_empty()).then(|| fit[rng.below(fit.len() as u64) as usize])
}

/// A byte flipped by [`flip`], to put back.
#[derive(Debug)]
pub struct Flipped {
    pub store: PathBuf,
    pub at: u64,
    pub original: u8,
}

impl Flipped {
    /// Whether the damage is still there (a refused repair changes nothing).
    pub fn still_damaged(&self) -> Result<bool> {
        let mut byte = [0u8];
        std::fs::File::open(&self.store)?.read_exact_at(&mut byte, self.at)?;
        Ok(byte[0] != self.original)
    }

    pub fn restore(&self) -> Result<()> {
        let file = OpenOptions::new().write(true).open(&self.store)?;
        file.write_all_at(&[self.original], self.at)?;
        file.sync_data()?;
        Ok(())
    }
}

/// Flips one byte of `r`'s checksum or payload (never its length or
/// offset), so that its CRC fails.
pub fn flip(r: &Logged, rng: &mut Rng) -> Result<Flipped> {
    const CRC_BYTES: u64 = 4;
    let header = walkv::log::record::RECORD_HEADER_BYTES as u64;
    let i = rng.below(CRC_BYTES + r.payload_len as u64);
    let at = if i < CRC_BYTES {
        r.position + i
    } else {
        r.position + header + i - CRC_BYTES
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&r.store)
        .with_context(|| format!("opening {}", r.store.display()))?;
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, at)?;
    let original = byte[0];
    byte[0] ^= rng.between(1, 255) as u8;
    file.write_all_at(&byte, at)?;
    file.sync_data()?;
    Ok(Flipped {
        store: r.store.clone(),
        at,
        original,
    })
}

/// The newest snapshot in `data`, as a repair that cuts at `cut` sees it.
pub struct NewestSnapshot {
    /// Its bound `E` (engine/snapshot.rs): it holds effects of no record at
    /// or past it. `None`: a version 1 file, which does not say.
    pub bound: Option<Offset>,
    /// How many records at or past `cut` it holds the effect of, judged by
    /// the values they set: a string value is never written twice; a
    /// counter's, only if no record below the cut set it too. (A dropped
    /// `DEL` the snapshot already holds is not seen.)
    pub holds_past_cut: u64,
}

impl NewestSnapshot {
    /// Whether keeping it while cutting at `cut` could keep effects of
    /// dropped records, so that the repair must refuse.
    pub fn straddles(&self, cut: Offset) -> bool {
        self.bound.is_none_or(|e| e > cut)
    }
}

/// Loads the newest snapshot of `data` (`None` if there is none, or it does
/// not load) and measures it against a cut at `cut`.
pub fn newest_snapshot(data: &Path, cut: Offset, records: &[Logged]) -> Result<Option<NewestSnapshot>> {
    let Some((offset, path)) = walkv::engine::snapshot::find(data)?.pop() else {
        return Ok(None);
    };
    let table = walkv::engine::table::Table::default();
    let Ok(loaded) = walkv::engine::snapshot::load(&path, offset, &table)? else {
        return Ok(None);
    };
    let held = |k: &str, v: &str| {
        table
            .get(k.as_bytes(), 0)
            .is_some_and(|e| e.value == v.as_bytes())
    };
    // A counter's value is its own only if no kept record set it too.
    let kept = |k: &str, v: &str| {
        records.iter().filter(|r| r.offset < cut).any(|r| {
            r.writes
                .iter()
                .any(|(rk, rv)| rk == k && rv.as_deref() == Some(v))
        })
    };
    let past = records.iter().filter(|r| r.offset >= cut).filter(|r| {
        r.writes.iter().any(|(k, v)| {
            v.as_deref()
                .is_some_and(|v| held(k, v) && (!is_counter(k) || !kept(k, v)))
        })
    });
    Ok(Some(NewestSnapshot {
        bound: loaded.effects_below,
        holds_past_cut: past.count() as u64,
    }))
}

/// What `walkvctl repair --truncate-corrupt --json` reported.
#[derive(Debug)]
pub struct Repair {
    /// Why it refused (exit 4, nothing changed), if it did.
    pub refusal: Option<String>,
    pub action: String,
    pub first_dropped: Option<Offset>,
    pub next_after: Option<Offset>,
    pub quarantine: Option<PathBuf>,
}

pub fn repair(walkvctl: &Path, data: &Path) -> Result<Repair> {
    let out = Command::new(walkvctl)
        .args(["repair", "--truncate-corrupt", "--json"])
        .arg(data)
        .output()
        .with_context(|| format!("running {}", walkvctl.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: Option<serde_json::Value> = serde_json::from_str(stdout.trim()).ok();
    // Exit 4 is also a repair that changed files and still left damage.
    let refused = out.status.code() == Some(4) && json.as_ref().is_some_and(|j| j["refused"] == true);
    if !out.status.success() && !refused {
        bail!(
            "walkvctl repair exited with {}:\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let json = json.with_context(|| format!("walkvctl repair printed {stdout:?}"))?;
    let refusal = refused.then(|| {
        json["plan"]["refusal"]
            .as_str()
            .unwrap_or("(no reason given)")
            .to_string()
    });
    Ok(Repair {
        refusal,
        action: json["action"].as_str().unwrap_or_default().to_string(),
        first_dropped: json["first_dropped_offset"].as_u64(),
        next_after: json["next_offset_after"].as_u64(),
        quarantine: json["quarantine"].as_str().map(PathBuf::from),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::check::{State, check_client};
    use crate::workload::Write;

    fn op(id: u64, outcome: Outcome, writes: Vec<(&str, Effect)>, incr: Vec<i64>) -> Op {
        Op {
            client: 0,
            id,
            cycle: 0,
            kind: "test",
            writes: writes
                .into_iter()
                .map(|(k, effect)| Write {
                    key: k.into(),
                    effect,
                })
                .collect(),
            outcome,
            incr_results: incr,
        }
    }

    fn logged(offset: Offset, writes: &[(&str, Option<&str>)]) -> Logged {
        Logged {
            offset,
            store: PathBuf::new(),
            position: 0,
            payload_len: 0,
            client: Some(0),
            writes: writes
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
                .collect(),
        }
    }

    fn set<'a>(k: &'a str, v: &str) -> (&'a str, Effect) {
        (k, Effect::Set(v.into()))
    }

    /// SET a (10), DEL of an absent key (no record), INCR (11), MSET (12),
    /// unknown SET that never reached the log.
    fn history() -> (Vec<Op>, Vec<Logged>) {
        let ops = vec![
            op(1, Outcome::Acked, vec![set("c0:k0", "a")], vec![]),
            op(2, Outcome::Acked, vec![("c0:k1", Effect::Del)], vec![]),
            op(3, Outcome::Acked, vec![("c0:n0", Effect::Incr)], vec![1]),
            op(
                4,
                Outcome::Acked,
                vec![set("c0:k0", "b"), set("c0:k1", "c")],
                vec![],
            ),
            op(5, Outcome::Unknown, vec![set("c0:k0", "d")], vec![]),
        ];
        let records = vec![
            logged(10, &[("c0:k0", Some("a"))]),
            logged(11, &[("c0:n0", Some("1"))]),
            logged(12, &[("c0:k0", Some("b")), ("c0:k1", Some("c"))]),
        ];
        (ops, records)
    }

    fn written(ops: &[Op]) -> HashMap<String, HashSet<String>> {
        let mut w: HashMap<String, HashSet<String>> = HashMap::new();
        for x in ops.iter().flat_map(|o| &o.writes) {
            if let Effect::Set(v) = &x.effect {
                w.entry(x.key.clone()).or_default().insert(v.clone());
            }
        }
        w
    }

    fn state(pairs: &[(&str, &str)]) -> State {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn records_map_to_operations_in_order() {
        let (ops, records) = history();
        let refs: Vec<&Logged> = records.iter().collect();
        let m = offsets_of(&ops, &refs).unwrap();
        assert_eq!(m.offsets, vec![Some(10), None, Some(11), Some(12), None]);
        assert_eq!(m.exact_from, Some(10));
        let stray = logged(13, &[("c0:k0", Some("zzz"))]);
        assert!(
            offsets_of(&ops, &[refs[0], &stray]).is_err(),
            "a record nobody wrote"
        );
    }

    /// Records below the newest snapshot may be gone (their segments
    /// deleted): a later record of `DEL`s, or of an `INCR`, must not be
    /// taken for an earlier operation whose record is gone.
    #[test]
    fn missing_early_records_do_not_shift_the_mapping() {
        let ops = vec![
            op(1, Outcome::Acked, vec![("c0:k1", Effect::Del)], vec![]),
            op(2, Outcome::Acked, vec![("c0:n0", Effect::Incr)], vec![5]),
            op(3, Outcome::Acked, vec![set("c0:k1", "a")], vec![]),
            op(4, Outcome::Acked, vec![("c0:n0", Effect::Incr)], vec![6]),
            op(5, Outcome::Acked, vec![("c0:k1", Effect::Del)], vec![]),
            op(6, Outcome::Acked, vec![set("c0:k0", "b")], vec![]),
        ];
        // Records 20..23 (ops 1 to 3) were in a deleted segment.
        let records = [
            logged(23, &[("c0:n0", Some("6"))]),
            logged(24, &[("c0:k1", None)]),
            logged(25, &[("c0:k0", Some("b"))]),
        ];
        let refs: Vec<&Logged> = records.iter().collect();
        let m = offsets_of(&ops, &refs).unwrap();
        assert_eq!(m.offsets, vec![None, None, None, Some(23), Some(24), Some(25)]);
        assert_eq!(m.exact_from, Some(23));
        // Only a DEL visible: nothing is certain.
        let m = offsets_of(&ops, &[refs[1]]).unwrap();
        assert_eq!((m.exact_from, m.offsets.iter().flatten().count()), (None, 0));
    }

    /// The check accepts exactly the state the reported cut leaves, and
    /// flags a repair that dropped less or more than it said.
    #[test]
    fn checker_holds_the_repair_to_its_report() {
        let (ops, records) = history();
        let refs: Vec<&Logged> = records.iter().collect();
        let offsets = offsets_of(&ops, &refs).unwrap().offsets;
        let keys: Vec<String> = ["c0:k0", "c0:k1", "c0:n0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let w = written(&ops);
        let mut cut = ops.clone();
        assert_eq!(drop_from(&mut cut, &offsets, 11), 2, "the INCR and the MSET");
        let judge = |obs: &State| check_client(&State::new(), &cut, obs, &w, &keys);
        // Exactly what the cut at 11 leaves: record 10 only.
        assert!(judge(&state(&[("c0:k0", "a")])).is_clean());
        // Dropped less than reported: the INCR (11) survived.
        assert!(!judge(&state(&[("c0:k0", "a"), ("c0:n0", "1")])).is_clean());
        // Dropped less: the MSET survived.
        assert!(!judge(&state(&[("c0:k0", "b"), ("c0:k1", "c"), ("c0:n0", "1")])).is_clean());
        // Dropped more than reported: record 10 is gone too.
        let v = judge(&State::new());
        assert_eq!(v.lost, 1, "{v:?}");
        // The unknown SET after the cut cannot have survived it.
        assert!(!judge(&state(&[("c0:k0", "d")])).is_clean());
    }

    #[test]
    fn a_delete_of_an_absent_key_is_skipped_but_sets_are_not() {
        let del_set = op(
            1,
            Outcome::Acked,
            vec![("c0:k1", Effect::Del), set("c0:k0", "a")],
            vec![],
        );
        assert!(compatible(&del_set, &logged(0, &[("c0:k0", Some("a"))]).writes));
        assert!(compatible(
            &del_set,
            &logged(0, &[("c0:k1", None), ("c0:k0", Some("a"))]).writes
        ));
        assert!(!compatible(&del_set, &logged(0, &[("c0:k1", None)]).writes));
        assert!(!compatible(&del_set, &logged(0, &[("c0:k0", Some("b"))]).writes));
    }
}
