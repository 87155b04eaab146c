//! `walkvctl repair`: plan from the check, refuse what needs the flag, carry
//! out the library's cut, then let the log's own open do the rest (cut a torn
//! tail, rebuild indexes), and check again.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow};
use walkv::log::check::{self, Cut, CutPlan, Status};
use walkv::log::{LogConfig, Offset, Recovery};

use crate::inspect::{self, Report, SnapState};
use crate::{EXIT_CORRUPT, EXIT_OK, Failure, render};

/// What a repair of corruption does, decided before anything changes.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The cut of the log, if the log itself is damaged.
    pub cut: Option<CutPlan>,
    /// Snapshots moved to quarantine: damaged, or (when no snapshot is
    /// kept) past the cut, since they hold effects of records it drops.
    pub snapshots: Vec<PathBuf>,
    /// The offset of the intact snapshot kept as the base of the state.
    pub kept_snapshot: Option<Offset>,
    /// Why the repair cannot be done at all.
    pub refusal: Option<String>,
}

/// What the repair did.
#[derive(Debug)]
pub struct Done {
    pub action: &'static str,
    pub plan: Option<Plan>,
    pub quarantine: Option<PathBuf>,
    pub recovery: Option<Recovery>,
    /// The directory checked again afterwards.
    pub after: Report,
}

pub fn run(dir: &Path, truncate_corrupt: bool, json: bool) -> Result<u8, Failure> {
    let (target, mut locks, _) = crate::open(dir, false)?;
    let report = inspect::inspect(&target, false)?;
    let config = LogConfig::default();
    let (action, plan, quarantine) = match report.status() {
        Status::Clean => ("none", None, None),
        Status::Torn => ("truncated_torn", None, None),
        Status::Corrupt => {
            let plan = plan(&report);
            if !truncate_corrupt || plan.refusal.is_some() {
                render::print_refusal(&report, &plan, truncate_corrupt, json)?;
                return Ok(EXIT_CORRUPT);
            }
            let quarantine = quarantine_dir(&target.dir)?;
            for path in &plan.snapshots {
                check::move_into(path, &quarantine)?;
            }
            if let Some(cut) = &plan.cut {
                check::execute_cut(cut, &quarantine, &config)
                    .with_context(|| format!("cutting the log in {}", target.wal.display()))?;
            }
            let action = match &plan.cut {
                Some(cut) if cut.drops() => "truncated_corrupt",
                Some(_) => "quarantined_covered_segments",
                None => "quarantined_snapshots",
            };
            (action, Some(plan), Some(quarantine))
        }
    };
    let recovery = if needs_open(&report) || action != "none" {
        locks.release_log();
        let recovery = check::reopen(&target.wal, config)
            .with_context(|| format!("opening the log in {} after the repair", target.wal.display()))?;
        Some(recovery)
    } else {
        None
    };
    let after = inspect::inspect(&target, false)?;
    let done = Done {
        action,
        plan,
        quarantine,
        recovery,
        after,
    };
    render::print_repair(&report, &done, json)?;
    if done.after.status() != Status::Clean {
        return Err(Failure {
            code: EXIT_CORRUPT,
            error: anyhow!("the directory is still not clean after the repair; nothing more was changed"),
        });
    }
    Ok(EXIT_OK)
}

/// Whether the log's open would change something although nothing is
/// damaged: an index to rebuild, a leftover to remove, a roll to finish.
fn needs_open(report: &Report) -> bool {
    let stale = report
        .log
        .segments
        .iter()
        .any(|s| matches!(s.index, check::IndexState::Rebuild(_)));
    stale || !report.log.leftovers.is_empty() || report.log.unfinished_roll.is_some()
}

/// What repairing corruption takes, decided before anything changes.
///
/// When an intact snapshot covers the log's first offset, the newest such
/// one is kept as the base of the state, wherever it lies: the segments it
/// wholly covers go to quarantine with whatever damage they hold (the
/// daemon itself deletes them after a snapshot), and the log is cut only at
/// damage above it; if the log cannot continue from it, the log restarts,
/// empty, at its offset ([`walkv::log::check::LogCheck::plan_keeping_snapshot`]).
/// A snapshot is never set aside for lying past the log's end: that is what
/// the log lost, not the snapshot. Otherwise the log is cut at its first
/// damage (the smallest cut that drops every corruption and every record
/// that does not decode), with the snapshots past the cut.
pub fn plan(report: &Report) -> Plan {
    let undecodable: Vec<Cut> = report
        .findings
        .iter()
        .filter(|f| f.kind == "undecodable_record")
        .filter_map(|f| report.log.cut_at_offset(f.offset))
        .collect();
    let damaged = |s: &inspect::SnapshotCheck| matches!(s.state, SnapState::Damaged { .. });
    let base = report.target.engine.then(|| report.chosen()).flatten();
    if let Some(base) = base {
        let cut = report.log.plan_keeping_snapshot(base.offset, &undecodable);
        let refusal = fuzzy_refusal(base, &cut);
        let changes = !cut.moves.is_empty() || cut.truncate.is_some() || cut.recreate_base.is_some();
        return Plan {
            cut: changes.then_some(cut),
            snapshots: report
                .snapshots
                .iter()
                .filter(|s| damaged(s))
                .map(|s| s.path.clone())
                .collect(),
            kept_snapshot: Some(base.offset),
            refusal,
        };
    }
    let cut = report.log.cut().into_iter().chain(undecodable).min();
    let cut = cut.map(|c| report.log.plan_cut(c));
    let kept_end: Offset = cut.as_ref().map_or(report.log.valid_next(), |c| c.first_dropped);
    // No snapshot is intact here (above the log's first offset): every one
    // that the daemon would read is damaged, or past the cut.
    let goes = |s: &inspect::SnapshotCheck| damaged(s) || s.offset > kept_end;
    let snapshots: Vec<PathBuf> = report
        .snapshots
        .iter()
        .filter(|s| goes(s))
        .map(|s| s.path.clone())
        .collect();
    let first = report.log.first_offset();
    let covered = !report.target.engine || first == 0;
    let refusal = (!covered).then(|| {
        format!(
            "after the repair no intact snapshot would cover the records below the log's first \
             offset {first}: the keys they wrote would be lost. Nothing was changed; keep a copy \
             of the directory and restore it from a backup"
        )
    });
    Plan {
        cut,
        snapshots,
        kept_snapshot: None,
        refusal,
    }
}

/// Why keeping `base` under `cut` would give a state that no prefix of the
/// log describes, if it would: a snapshot is fuzzy, and may hold effects of
/// any record below its bound `E` (see `walkv::engine::snapshot`), so the
/// log it is kept with must still reach `E`. A version 1 snapshot did not
/// record `E`: it may hold effects of any record past its offset.
fn fuzzy_refusal(base: &inspect::SnapshotCheck, cut: &CutPlan) -> Option<String> {
    let SnapState::Intact { effects_below, .. } = base.state else {
        return None;
    };
    let kept_end = cut.first_dropped;
    let name = base.path.display();
    let may_hold = match effects_below {
        Some(e) if e > kept_end => format!("records up to offset {e}"),
        Some(_) => return None,
        None if cut.drops() => {
            "records past its offset (a version 1 snapshot does not say which)".to_string()
        }
        None => return None,
    };
    Some(format!(
        "{name} was written while writes went on and may hold effects of {may_hold}, but after \
         the cut the log would end at offset {kept_end}: some dropped writes would live on in \
         it, a state no prefix of the log describes. Nothing was changed; keep a copy of the \
         directory and restore the damaged file from a backup"
    ))
}

/// `DIR/quarantine/<UTC time>/`, created durably.
fn quarantine_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    check::create_quarantine(dir, &check::utc_stamp(now))
        .with_context(|| format!("creating the quarantine directory in {}", dir.display()))
}
