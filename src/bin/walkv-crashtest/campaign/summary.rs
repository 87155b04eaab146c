//! The end of a campaign: the summary printed, and the history written
//! when it failed.

use std::io::Write as _;

use anyhow::Result;
use clap::ValueEnum as _;

use super::{Campaign, display};
use crate::Mode;

impl Campaign {
    /// Prints the summary; whether the campaign passed.
    pub(super) fn summary(&self) -> bool {
        let s = &self.stats;
        let v = &s.verdict;
        let mut r = s.recovery.clone();
        r.sort();
        let pct = |p: usize| {
            r.get((r.len() * p / 100).min(r.len().saturating_sub(1)))
                .map_or(0, |d| d.as_millis())
        };
        let passed = v.is_clean()
            && s.failed_restarts == 0
            && s.corrupt.failures == 0
            && s.notes.iter().all(|n| !n.starts_with("harness"));
        println!(
            "cycles {} (killed during start-up {}), operations {}, acknowledged {}, failed {}, unknown {}",
            s.cycles, s.startup_kills, s.ops, s.acked, s.failed, s.unknown
        );
        println!(
            "lost {}, phantom {}, partial {}, inconsistent {}, failed restarts {}",
            v.lost, v.phantom, v.partial, v.inconsistent, s.failed_restarts
        );
        if self.args.mode == Mode::Powerloss {
            println!(
                "power cuts dropped {} unsynced bytes in {} files, undid {} renames or unlinks, \
                 and kept {} unfinished rolls' stores",
                s.cut.bytes_dropped, s.cut.files_cut, s.cut.names_reverted, s.cut.unfinished_kept
            );
        }
        if self.args.mode == Mode::Corrupt {
            let c = &s.corrupt;
            println!(
                "corrupt: damaged {} records (skipped {} cycles), refused {}, repaired {}, \
                 records dropped {}, acknowledged operations dropped {}, corrupt failures {}, \
                 repairs refused for a snapshot past the cut {}",
                c.damaged,
                c.skipped,
                c.refused,
                c.repaired,
                c.records_dropped,
                c.acked_dropped,
                c.failures,
                c.refused_fuzzy
            );
        }
        println!(
            "segments seen {}, deleted {}, snapshots seen {}",
            s.stores_seen.len(),
            s.stores_seen.len().saturating_sub(s.stores_now),
            s.snapshots_seen.len()
        );
        println!(
            "recovery time: p50 {} ms, p99 {} ms (n={})",
            pct(50),
            pct(99),
            r.len()
        );
        for note in &s.notes {
            println!("note: {note}");
        }
        for d in v.details.iter().take(30) {
            println!("violation: {d}");
        }
        if passed {
            println!("RESULT: PASS");
        } else {
            println!(
                "RESULT: FAIL (seed {}; replay: walkv-crashtest --mode {} --seed {} --cycles {} --clients {} \
                 --fsync {} --max-run-ms {}{})",
                self.seed,
                self.args
                    .mode
                    .to_possible_value()
                    .map_or_else(String::new, |v| v.get_name().to_string()),
                self.seed,
                self.args.cycles,
                self.args.clients,
                self.setup.fsync,
                self.args.max_run_ms,
                self.args
                    .walkvd
                    .as_deref()
                    .map_or_else(String::new, |w| format!(" --walkvd {}", display(w)))
            );
        }
        passed
    }

    pub(super) fn write_history(&self) -> Result<()> {
        let path = self
            .args
            .history
            .clone()
            .unwrap_or_else(|| self.work.join("history.jsonl"));
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
        let head = serde_json::json!({
            "seed": self.seed,
            "mode": format!("{:?}", self.args.mode).to_lowercase(),
            "cycles": self.args.cycles,
            "clients": self.args.clients,
        });
        writeln!(out, "{head}")?;
        for op in &self.history {
            writeln!(out, "{}", serde_json::to_string(op)?)?;
        }
        for d in &self.stats.verdict.details {
            writeln!(out, "{}", serde_json::json!({ "violation": d }))?;
        }
        out.flush()?;
        println!("history written to {}", display(&path));
        Ok(())
    }
}
