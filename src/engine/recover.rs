//! Opening the engine: lock the data directory, load the newest valid
//! snapshot, replay the log after it, and finish any snapshot clean-up a
//! crash interrupted. Progress is published while it runs, so a server can
//! answer `-LOADING` with a percentage.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{info, warn};

use super::apply::{Appliers, applier_threads};
use super::config::EngineConfig;
use super::error::{EngineError, Result};
use super::mutation::{DecodeError, Mutation};
use super::snapshot::{self, SnapshotInfo};
use super::table::Table;
use crate::log::{self, Log, Offset};

/// Replay progress, readable from other threads while the engine opens.
#[derive(Debug, Default)]
pub struct LoadProgress {
    pub records: AtomicU64,
    pub bytes: AtomicU64,
    /// Bytes of log to replay in all (known once the log is open).
    pub total_bytes: AtomicU64,
    /// 1 once replay has finished.
    pub done: AtomicU64,
    /// Entries of the snapshot loaded so far (before the log's replay).
    pub snapshot_entries: AtomicU64,
}

impl LoadProgress {
    pub fn percent(&self) -> f64 {
        let total = self.total_bytes.load(Ordering::Relaxed);
        if self.done.load(Ordering::Relaxed) == 1 || total == 0 {
            return if self.done.load(Ordering::Relaxed) == 1 {
                100.0
            } else {
                0.0
            };
        }
        (self.bytes.load(Ordering::Relaxed) as f64 * 100.0 / total as f64).min(100.0)
    }
}

/// What opening found and did; kept for `INFO`.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    pub snapshot: Option<PathBuf>,
    pub snapshot_offset: Offset,
    pub snapshot_keys: u64,
    pub records_replayed: u64,
    pub bytes_replayed: u64,
    pub torn_bytes: u64,
    pub duration: Duration,
    pub log: log::Recovery,
}

pub struct Recovered {
    pub log: Log,
    pub table: Table,
    pub report: RecoveryReport,
    pub last_snapshot: Option<SnapshotInfo>,
    /// Held for the life of the engine.
    pub lock: std::fs::File,
}

pub fn recover(config: &EngineConfig, progress: &LoadProgress) -> Result<Recovered> {
    let started = Instant::now();
    log::dir::create_dir(&config.dir)?;
    let lock = log::dir::lock(&config.dir)?;
    let snapshots = snapshot::list(&config.dir)?;
    let mut log = Log::open(config.wal_dir(), config.log.clone())?;
    let (table, chosen) = load_newest_snapshot(config, &snapshots, &log, progress)?;
    let from = chosen
        .as_ref()
        .map_or(log.lowest_offset(), |(info, _)| info.offset);
    let (records, bytes) = replay(&log, from, &table, progress)?;
    // Finish what a crash may have interrupted after that snapshot was made
    // durable: the segments and snapshots it supersedes.
    if let Some((info, _)) = &chosen {
        // The snapshot's directory entry must be durable before the segments
        // it replaces go (a crash may have come between its rename and the
        // directory fsync).
        log::dir::sync_dir(&config.dir)?;
        log.remove_below(info.offset)?;
        snapshot::remove_older(&config.dir, info.offset)?;
    }
    let report = RecoveryReport {
        snapshot: chosen.as_ref().map(|(info, _)| info.path.clone()),
        snapshot_offset: from,
        snapshot_keys: chosen.as_ref().map_or(0, |(_, keys)| *keys),
        records_replayed: records,
        bytes_replayed: bytes,
        torn_bytes: log.recovery().torn_bytes,
        duration: started.elapsed(),
        log: log.recovery().clone(),
    };
    info!(
        snapshot = ?report.snapshot,
        snapshot_keys = report.snapshot_keys,
        records = records,
        bytes = bytes,
        seconds = report.duration.as_secs_f64(),
        torn_bytes = report.torn_bytes,
        keys = table.len(),
        "recovery complete"
    );
    Ok(Recovered {
        log,
        table,
        report,
        last_snapshot: chosen.map(|(info, _)| info),
        lock,
    })
}

/// Loads the newest snapshot that is intact and that the log can continue
/// from. A damaged snapshot is skipped with a warning if an older one (or the
/// log from its start) still covers the history; otherwise opening stops.
fn load_newest_snapshot(
    config: &EngineConfig,
    snapshots: &[(Offset, PathBuf)],
    log: &Log,
    progress: &LoadProgress,
) -> Result<(Table, Option<(SnapshotInfo, u64)>)> {
    let mut first_damage = None;
    for (offset, path) in snapshots.iter().rev() {
        if *offset > log.next_offset() {
            return Err(EngineError::Corruption {
                file: path.clone(),
                offset: snapshot::OFFSET_AT,
                reason: format!(
                    "snapshot covers the log up to offset {offset} but the log ends at {}",
                    log.next_offset()
                ),
            });
        }
        if *offset < log.lowest_offset() {
            break; // neither this nor any older snapshot meets the log
        }
        let table = Table::default();
        let started = Instant::now();
        match snapshot::load_counting(path, *offset, &table, &progress.snapshot_entries)? {
            Ok(snapshot::Loaded {
                keys,
                created_ms,
                effects_below,
            }) => {
                if let Some(e) = effects_below
                    && e > log.next_offset()
                {
                    // Made durable only after the log was, up to `e`: the
                    // log lost records a client may have been answered for.
                    let trailer_e = std::fs::metadata(path).map_or(0, |m| snapshot::bound_at(m.len()));
                    return Err(EngineError::Corruption {
                        file: path.clone(),
                        offset: trailer_e,
                        reason: format!(
                            "snapshot holds effects of records up to offset {e} but the log ends at {}: \
                             records {}..{e} are missing",
                            log.next_offset(),
                            log.next_offset()
                        ),
                    });
                }
                let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
                info!(file = %path.display(), keys, offset, elapsed_ms = started.elapsed().as_millis() as u64, "snapshot loaded");
                let info = SnapshotInfo {
                    path: path.clone(),
                    offset: *offset,
                    keys,
                    bytes,
                    duration: started.elapsed(),
                    created_ms,
                    effects_below,
                };
                return Ok((table, Some((info, keys))));
            }
            Err(damage) => {
                warn!(file = %path.display(), position = damage.offset, reason = %damage.reason, "snapshot is damaged; trying an older one");
                first_damage.get_or_insert((path.clone(), damage));
            }
        }
    }
    if log.lowest_offset() == 0 {
        return Ok((Table::default(), None));
    }
    let (file, offset, reason) = match first_damage {
        Some((path, damage)) => (path, damage.offset, damage.reason),
        None => (
            config.wal_dir(),
            0,
            "no snapshot covers the records below the log's first offset".to_string(),
        ),
    };
    Err(EngineError::Corruption {
        file,
        offset,
        reason: format!("{reason}; the log starts at offset {}", log.lowest_offset()),
    })
}

/// At most this many keys' room is reserved before replay (about 40 MB of
/// slots at most, used or not).
const REPLAY_RESERVE_CAP: u64 = 4 << 20;

/// Decodes a record in full and applies it.
fn apply_decoded(offset: Offset, payload: &[u8], table: &Table) -> std::result::Result<(), DecodeError> {
    let mutation = Mutation::decode(&Bytes::copy_from_slice(payload))?;
    table.apply(&mutation, offset);
    Ok(())
}

/// Applies every record from `from` to the end of the log, reporting
/// progress every second.
fn replay(log: &Log, from: Offset, table: &Table, progress: &LoadProgress) -> Result<(u64, u64)> {
    let mut reader = log.reader(from)?;
    let total = log.total_bytes();
    progress.total_bytes.store(total, Ordering::Relaxed);
    let started = Instant::now();
    let mut last_report = started;
    let (mut records, mut bytes, mut published_bytes) = (0u64, 0u64, 0u64);
    // Room for one key per record to replay, capped: rehashing as the table
    // grows was a large part of replay, and the cap bounds what a log of
    // overwrites to few keys leaves unused (9 bytes a slot).
    let to_replay = log.next_offset().saturating_sub(from);
    table.reserve(to_replay.min(REPLAY_RESERVE_CAP) as usize);
    std::thread::scope(|scope| -> Result<()> {
        let mut appliers = Appliers::start(scope, table, applier_threads());
        while let Some((offset, payload)) = reader.next_record()? {
            records += 1;
            bytes += payload.len() as u64 + log::record::RECORD_HEADER_BYTES as u64;
            // Most records are one SET: read in place, and inserted by an
            // applier thread while this one reads on.
            if let Some(set) = Mutation::decode_set(payload) {
                appliers.set(table.prepare_set(set.key, set.value, set.expire_at_ms, offset));
            } else {
                appliers.barrier();
                if let Err(e) = apply_decoded(offset, payload, table) {
                    // It passed its checksum, so this is no torn write.
                    let (file, position) = reader.last_location();
                    return Err(EngineError::Corruption {
                        file: file.to_path_buf(),
                        offset: position,
                        reason: format!(
                            "record at log offset {offset} passes its checksum but does not decode: {e}"
                        ),
                    });
                }
            }
            // Publish every few thousand records, or every MiB when records
            // are large (a MULTI of thousands of keys is one record).
            if records.is_multiple_of(4096) || bytes >= published_bytes + (1 << 20) {
                published_bytes = bytes;
                progress.records.store(records, Ordering::Relaxed);
                progress.bytes.store(bytes, Ordering::Relaxed);
                if last_report.elapsed() >= Duration::from_secs(1) {
                    let secs = started.elapsed().as_secs_f64();
                    info!(
                        records,
                        mb = bytes >> 20,
                        mb_per_sec = (bytes as f64 / (1 << 20) as f64 / secs) as u64,
                        percent = progress.percent() as u64,
                        "replaying log"
                    );
                    last_report = Instant::now();
                }
            }
        }
        appliers.finish();
        Ok(())
    })?;
    progress.records.store(records, Ordering::Relaxed);
    progress.bytes.store(bytes, Ordering::Relaxed);
    progress.done.store(1, Ordering::Relaxed);
    Ok((records, bytes))
}
