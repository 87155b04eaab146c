//! The whole data directory, checked: the log with the library's checker,
//! each snapshot with the engine's own loader, and every record the daemon
//! would replay with the engine's own decoder. The snapshot rules are those
//! of `engine::recover` (newest usable first; one past the log's end stops
//! the open; none reaching down to the log's first offset stops it too).

use std::ops::ControlFlow;
use std::path::PathBuf;

use anyhow::Context as _;
use bytes::Bytes;
use walkv::engine::mutation::Mutation;
use walkv::engine::snapshot;
use walkv::log::check::{self, CheckOptions, LogCheck, Status};
use walkv::log::record::RECORD_HEADER_BYTES;
use walkv::log::{LogConfig, Offset, dir};

use crate::Target;

/// One thing found wrong, in the log or beside it.
#[derive(Debug, Clone)]
pub struct Finding {
    pub kind: &'static str,
    pub file: PathBuf,
    /// Byte position in `file`.
    pub position: u64,
    /// The log offset concerned (the first record lost, or a snapshot's).
    pub offset: Offset,
    pub reason: String,
    /// Anything but a torn tail: the daemon refuses to start.
    pub corrupt: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapState {
    Intact {
        keys: u64,
        /// `E`: it holds effects of no record at or after this offset
        /// (`None`: a version 1 file, which did not record it).
        effects_below: Option<Offset>,
    },
    Damaged {
        position: u64,
        reason: String,
    },
    /// Older than the log's first offset: the daemon never reads it.
    BelowLog,
}

#[derive(Debug, Clone)]
pub struct SnapshotCheck {
    pub offset: Offset,
    pub path: PathBuf,
    pub bytes: u64,
    pub state: SnapState,
    /// Its offset is past the log's real end (before any repair): the
    /// daemon refuses to start. It is loaded all the same, so that a repair
    /// knows whether it is intact and can keep it.
    pub beyond_log: bool,
}

impl SnapshotCheck {
    pub fn is_intact(&self) -> bool {
        matches!(self.state, SnapState::Intact { .. })
    }
}

/// Everything the tool knows about a directory.
#[derive(Debug)]
pub struct Report {
    pub target: Target,
    /// Checked without the lock, beside a writer.
    pub live: bool,
    pub log: LogCheck,
    /// Oldest first.
    pub snapshots: Vec<SnapshotCheck>,
    pub findings: Vec<Finding>,
    /// Where the daemon's replay would start, and what it would read.
    pub replay_from: Offset,
    pub replay_records: u64,
    pub replay_bytes: u64,
}

impl Report {
    pub fn status(&self) -> Status {
        if self.findings.iter().any(|f| f.corrupt) {
            Status::Corrupt
        } else if self.findings.is_empty() {
            Status::Clean
        } else {
            Status::Torn
        }
    }

    /// The snapshot the daemon would load (once the log reaches it): the
    /// newest intact one that covers the log's first offset.
    pub fn chosen(&self) -> Option<&SnapshotCheck> {
        self.snapshots
            .iter()
            .rev()
            .find(|s| s.is_intact() && s.offset >= self.log.first_offset())
    }
}

/// Checks the directory; changes nothing.
pub fn inspect(target: &Target, live: bool) -> anyhow::Result<Report> {
    let opts = CheckOptions {
        max_record_bytes: LogConfig::default().max_record_bytes,
        live,
    };
    let bar = crate::progress_bar(store_bytes(target), "checking");
    let log = check::check(&target.wal, &opts, &mut |done| {
        if let Some(bar) = &bar {
            bar.set_position(done);
        }
    })
    .with_context(|| format!("checking the log in {}", target.wal.display()))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let mut findings: Vec<Finding> = log.damage.iter().map(log_finding).collect();
    let snapshots = if target.engine {
        check_snapshots(target, &log, live, &mut findings)?
    } else {
        Vec::new()
    };
    let mut report = Report {
        target: target.clone(),
        live,
        log,
        snapshots,
        findings,
        replay_from: 0,
        replay_records: 0,
        replay_bytes: 0,
    };
    report.replay_from = report.chosen().map_or(report.log.first_offset(), |s| s.offset);
    if target.engine {
        decode_replay(&mut report)?;
    }
    Ok(report)
}

fn log_finding(d: &check::Damage) -> Finding {
    Finding {
        kind: d.kind.as_str(),
        file: d.file.clone(),
        position: d.position,
        offset: d.offset,
        reason: d.reason.clone(),
        corrupt: d.kind != check::DamageKind::TornTail,
    }
}

fn store_bytes(target: &Target) -> u64 {
    let Ok(listing) = dir::list(&target.wal) else {
        return 0;
    };
    let size = |base| std::fs::metadata(dir::store_path(&target.wal, base)).map_or(0, |m| m.len());
    listing.stores.iter().map(|&base| size(base)).sum()
}

/// Verifies every snapshot the daemon could read, newest first, and adds
/// what stops the daemon's open to `findings`.
fn check_snapshots(
    target: &Target,
    log: &LogCheck,
    live: bool,
    findings: &mut Vec<Finding>,
) -> anyhow::Result<Vec<SnapshotCheck>> {
    let mut out = Vec::new();
    // The log's real end, past damage: a snapshot between the cut and it is
    // not "beyond the log", and one beyond it may still be the best base
    // for a repair, so every snapshot the log does not predate is loaded.
    let end = log.next_offset();
    for (offset, path) in snapshot::find(&target.dir)? {
        let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
        let state = if offset < log.first_offset() {
            SnapState::BelowLog
        } else {
            match snapshot::verify(&path, offset) {
                Ok(Ok(loaded)) => SnapState::Intact {
                    keys: loaded.keys,
                    effects_below: loaded.effects_below,
                },
                Ok(Err(damage)) => SnapState::Damaged {
                    position: damage.offset,
                    reason: damage.reason,
                },
                // The daemon removed it (a newer snapshot superseded it).
                Err(_) if live && !path.exists() => continue,
                Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
            }
        };
        out.push(SnapshotCheck {
            offset,
            path,
            bytes,
            state,
            beyond_log: offset > end,
        });
    }
    let at_least = if log.next_offset_is_lower_bound() {
        "at least "
    } else {
        ""
    };
    for s in &out {
        let (kind, position, reason) = match &s.state {
            SnapState::Damaged { position, reason } => (
                "snapshot_damaged",
                *position,
                format!("snapshot is damaged: {reason}"),
            ),
            SnapState::Intact { .. } if s.beyond_log => (
                "snapshot_beyond_log",
                snapshot::OFFSET_AT,
                format!(
                    "snapshot covers the log up to offset {} but the log ends at {at_least}{end}",
                    s.offset
                ),
            ),
            // Made durable only once the log was, up to E: the log lost
            // records a client may have been answered for. (Beside a running
            // daemon, a snapshot may have become durable after the log was
            // scanned: its bound then lies past `end`, and nothing is lost.)
            SnapState::Intact {
                effects_below: Some(e),
                ..
            } if *e > end && !live => (
                "snapshot_effects_beyond_log",
                snapshot::bound_at(s.bytes),
                format!(
                    "snapshot holds effects of records up to offset {e} but the log ends at \
                     {at_least}{end}: records {end}..{e} are missing"
                ),
            ),
            _ => continue,
        };
        findings.push(Finding {
            kind,
            file: s.path.clone(),
            position,
            offset: s.offset,
            reason,
            corrupt: true,
        });
    }
    let first = log.first_offset();
    let covered = first == 0 || out.iter().any(|s| s.is_intact() && s.offset >= first);
    if !covered {
        findings.push(Finding {
            kind: "history_missing",
            file: target.wal.clone(),
            position: 0,
            offset: first,
            reason: format!("no intact snapshot covers the records below the log's first offset {first}"),
            corrupt: true,
        });
    }
    Ok(out)
}

/// Decodes every record the daemon would replay, as its replay does; the
/// first one that passes its checksum but does not decode is corruption.
fn decode_replay(report: &mut Report) -> anyhow::Result<()> {
    // Up to the real end: from a snapshot above damage, the records the
    // daemon replays after a repair lie past the intact prefix. The walk
    // stops at the first record that is not the next one anyway.
    let end = report.log.next_offset();
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut bad = None;
    let max = LogConfig::default().max_record_bytes;
    check::walk(&report.target.wal, report.replay_from, max, &mut |r| {
        if r.offset >= end {
            return ControlFlow::Break(());
        }
        if let Err(e) = Mutation::decode(&Bytes::copy_from_slice(r.payload)) {
            bad = Some(Finding {
                kind: "undecodable_record",
                file: r.store.to_path_buf(),
                position: r.position,
                offset: r.offset,
                reason: format!(
                    "record at log offset {} passes its checksum but does not decode: {e}",
                    r.offset
                ),
                corrupt: true,
            });
            return ControlFlow::Break(());
        }
        records += 1;
        bytes += (r.payload.len() + RECORD_HEADER_BYTES) as u64;
        ControlFlow::Continue(())
    })
    .context("reading the log's records")?;
    report.replay_records = records;
    report.replay_bytes = bytes;
    report.findings.extend(bad);
    Ok(())
}
