//! Corrupt mode's step of a cycle: damage a record, expect walkvd to
//! refuse, repair with walkvctl (or expect its refusal), and drop from the
//! clients' histories exactly what the repair dropped.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context as _, Result};

use super::Campaign;
use crate::corrupt::{self, Logged};
use crate::workload::Outcome;

impl Campaign {
    /// Corrupt mode, after the kill: damages an acknowledged record above the
    /// newest snapshot, checks that walkvd refuses, repairs with walkvctl,
    /// and drops from the clients' histories the operations whose records
    /// the repair dropped. `false` if walkvd did not refuse or the repair
    /// failed (the campaign stops: what follows would be guesswork).
    pub(super) fn corrupt_and_repair(&mut self) -> Result<bool> {
        let view = corrupt::read_log(&self.data, &self.wal, self.boundary)?;
        let mut mappings = Vec::new();
        for (c, client) in self.clients.iter().enumerate() {
            let mine: Vec<&Logged> = view.records.iter().filter(|r| r.client == Some(c)).collect();
            mappings.push(corrupt::offsets_of(&client.ops, &mine).with_context(|| format!("client {c}"))?);
        }
        let exact_from = corrupt::exact_from(&mappings, &view.records);
        let offsets: Vec<Vec<Option<walkv::log::Offset>>> = mappings.into_iter().map(|m| m.offsets).collect();
        let acked: HashSet<walkv::log::Offset> = self
            .clients
            .iter()
            .zip(&offsets)
            .flat_map(|(client, offs)| client.ops.iter().zip(offs))
            .filter(|(op, _)| op.outcome == Outcome::Acked)
            .filter_map(|(_, o)| *o)
            .collect();
        let Some(target) = corrupt::choose(
            &view,
            exact_from,
            &self.wal,
            &|o| acked.contains(&o),
            &mut self.rng,
        )
        .cloned() else {
            self.stats.corrupt.skipped += 1;
            self.boundary = view.end;
            return Ok(true);
        };
        let newest = corrupt::newest_snapshot(&self.data, target.offset, &view.records)?;
        let must_refuse = newest.as_ref().is_some_and(|n| n.straddles(target.offset));
        let flipped = corrupt::flip(&target, &mut self.rng)?;
        self.stats.corrupt.damaged += 1;
        let what = format!(
            "record {} at byte {} of {} (flipped byte {})",
            target.offset,
            target.position,
            target.store.display(),
            flipped.at
        );
        let mut daemon = self.spawn()?;
        let status = daemon.wait_exit(Duration::from_secs(60));
        let log = daemon.tail();
        drop(daemon);
        let name = target.store.file_name().unwrap_or_default().to_string_lossy();
        let named = log.contains(name.as_ref()) && log.contains(&format!("at byte {}", target.position));
        if status.and_then(|s| s.code()) != Some(4) || !named {
            self.corrupt_failure(format!(
                "walkvd did not refuse to start, naming the store and byte, after damage to {what}: exit {status:?}; its log:\n{log}"
            ));
            return Ok(false);
        }
        self.stats.corrupt.refused += 1;
        let repair = match corrupt::repair(&self.walkvctl, &self.data) {
            Ok(r) => r,
            Err(err) => {
                self.corrupt_failure(format!("repair after damage to {what} failed: {err:#}"));
                return Ok(false);
            }
        };
        if must_refuse || repair.refusal.is_some() {
            return self.refused_repair(&repair, &flipped, &what, must_refuse, view.end);
        }
        if let Some(n) = newest.filter(|n| n.holds_past_cut > 0) {
            self.corrupt_failure(format!(
                "the snapshot kept by the repair after damage to {what} holds effects of {} dropped \
                 records, although its bound {:?} said it could not",
                n.holds_past_cut, n.bound
            ));
        }
        let Some(cut) = repair.first_dropped else {
            self.corrupt_failure(format!(
                "repair after damage to {what} dropped nothing: {repair:?}"
            ));
            return Ok(false);
        };
        let exact = repair.action == "truncated_corrupt"
            && cut == target.offset
            && repair.next_after == Some(view.end)
            && repair.quarantine.is_some();
        if exact {
            self.stats.corrupt.repaired += 1;
        } else {
            // Go on with the cut it reported: the check then tells whether
            // it did what it said.
            self.corrupt_failure(format!(
                "repair after damage to {what} reported {repair:?}; expected truncated_corrupt of [{}, {})",
                target.offset, view.end
            ));
        }
        self.stats.corrupt.records_dropped += repair.next_after.unwrap_or(cut).saturating_sub(cut);
        for (client, offs) in self.clients.iter_mut().zip(&offsets) {
            self.stats.corrupt.acked_dropped += corrupt::drop_from(&mut client.ops, offs, cut);
        }
        self.boundary = cut;
        Ok(true)
    }

    /// A repair that refused, or should have: the newest snapshot's bound
    /// lies past the cut. A refusal must change nothing; the byte is then
    /// put back, and walkvd must start with every acknowledged write.
    fn refused_repair(
        &mut self,
        repair: &corrupt::Repair,
        flipped: &corrupt::Flipped,
        what: &str,
        must_refuse: bool,
        end: walkv::log::Offset,
    ) -> Result<bool> {
        let fine = match (&repair.refusal, must_refuse) {
            (Some(why), true) => why.contains("may hold effects"),
            _ => false,
        };
        if !fine {
            self.corrupt_failure(format!(
                "after damage to {what}, the repair was expected to {} (the newest snapshot's bound \
                 lies past the cut: {must_refuse}); it reported {repair:?}",
                if must_refuse { "refuse" } else { "cut" }
            ));
            return Ok(false);
        }
        if repair.quarantine.is_some() || !flipped.still_damaged()? {
            self.corrupt_failure(format!("the refused repair after damage to {what} changed files"));
            return Ok(false);
        }
        flipped.restore()?;
        self.stats.corrupt.refused_fuzzy += 1;
        self.boundary = end;
        Ok(true)
    }

    fn corrupt_failure(&mut self, why: String) {
        self.stats.corrupt.failures += 1;
        self.stats.notes.push(why);
    }
}
