//! Opening a log: loading its segments and recovering what a crash may have torn.
//!
//! After an unclean shutdown, every segment from the one holding the recovery point
//! onwards is validated batch by batch (length, magic, CRC, offsets increasing); the
//! first invalid batch and everything after it, including all later segments, is
//! removed, and the indexes of recovered segments are rebuilt. Segments wholly below
//! the recovery point, and all segments after a clean shutdown, are trusted: their
//! indexes are loaded and sanity-checked, and a segment whose index or tail does not
//! add up is recovered like an unflushed one. Recovered data is fsynced before the
//! recovery point moves to the new log end.
//!
//! The leader epoch cache is loaded from its checkpoint and trusted where the segments
//! are; from the first validated segment on, its entries are dropped and assigned
//! again from the batches as they are validated, so reopening a log that is intact
//! leaves the cache as it was. Then it is trimmed to the log, and producer state is
//! rebuilt from the newest snapshot at or below the log end plus the batches after it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use weir_protocol::records::BatchHeader;
use weir_types::{Clock, LeaderEpoch, Offset, ProducerEpoch, ProducerId, Sequence};

use crate::checkpoint::sync_dir;
use crate::config::LogConfig;
use crate::epoch_cache::LeaderEpochCache;
use crate::error::{LogError, Result};
use crate::log::Log;
use crate::producer_state::{self, ProducerBatch, ProducerStateManager};
use crate::segment::{Segment, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};

/// What the broker knows about a log from its data-dir checkpoints when opening it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenHints {
    /// From `recovery-point-offset-checkpoint`; `None` recovers every segment
    /// (unless `clean_shutdown`).
    pub recovery_point: Option<Offset>,
    /// From `log-start-offset-checkpoint`.
    pub log_start_offset: Option<Offset>,
    /// From `replication-offset-checkpoint`.
    pub high_watermark: Option<Offset>,
    /// Whether the data dir had the clean-shutdown marker (see
    /// [`crate::checkpoint::take_clean_shutdown_marker`]).
    pub clean_shutdown: bool,
}

/// What opening found and did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments whose batches were validated.
    pub segments_recovered: usize,
    /// Whether a torn or corrupt tail was cut.
    pub truncated: bool,
    /// Segments deleted because they followed a cut.
    pub segments_deleted: usize,
}

impl Log {
    /// Opens (creating if needed) the log in `dir`, recovering as the module docs say.
    pub fn open(
        dir: &Path,
        config: LogConfig,
        clock: Arc<dyn Clock>,
        hints: OpenHints,
    ) -> Result<Log> {
        Self::open_with_report(dir, config, clock, hints).map(|(log, _)| log)
    }

    /// [`Log::open`], also saying what recovery did.
    pub fn open_with_report(
        dir: &Path,
        config: LogConfig,
        clock: Arc<dyn Clock>,
        hints: OpenHints,
    ) -> Result<(Log, RecoveryReport)> {
        config.validate_structure()?;
        fs::create_dir_all(dir).map_err(|e| LogError::io("create directory", dir, e))?;
        let now_ms = clock.now_ms();
        let bases = list_segments(dir)?;
        let mut report = RecoveryReport::default();
        let (mut cache, rebuild_epochs) = match LeaderEpochCache::load(dir) {
            Ok(c) => (c, false),
            Err(LogError::CorruptCheckpoint { path, reason }) => {
                tracing::warn!(path = %path.display(), reason, "rebuilding the leader epoch cache from the log");
                fs::remove_file(&path).map_err(|e| LogError::io("remove", &path, e))?;
                (LeaderEpochCache::load(dir)?, true)
            }
            Err(e) => return Err(e),
        };
        // The cache is rebuilt from the batches only where they are validated again
        // (see `recovering` below): there, the entries the batches would give are
        // dropped first and assigned again in order, so an epoch the loaded cache
        // already holds is never assigned over later ones (which `assign` would treat
        // as a conflict, dropping them and moving the epoch's start to the segment's
        // base). A segment recovered only because its files failed their checks lies
        // below the recovery point, where the loaded cache is trusted like the
        // segments: it adds only epochs newer than the cache's latest (Kafka's
        // `LogSegment.recover` does the same).
        let mut epoch_error = None;
        let mut assign_epoch = |h: &BatchHeader, cache: &mut LeaderEpochCache, rebuild: bool| {
            let epoch = LeaderEpoch(h.partition_leader_epoch());
            if !rebuild && cache.latest_epoch().is_some_and(|latest| epoch <= latest) {
                return;
            }
            if let Err(e) = cache.assign(epoch, Offset(h.base_offset())) {
                epoch_error.get_or_insert(e);
            }
        };

        let recovery_point = if hints.clean_shutdown {
            Offset(i64::MAX)
        } else {
            hints.recovery_point.unwrap_or(Offset(0))
        };
        let mut segments = BTreeMap::new();
        let mut next_min = Offset(0);
        let mut recovering = false;
        let mut cut_at = None;
        for (i, &base) in bases.iter().enumerate() {
            let next_base = bases.get(i + 1).copied();
            // A segment holds data at or after the recovery point unless the next one
            // starts at or below it.
            if !recovering
                && next_base.is_none_or(|nb| nb > recovery_point)
                && !hints.clean_shutdown
            {
                recovering = true;
                // From here on every batch is validated and its epoch assigned again.
                cache.truncate_from_end(base)?;
            }
            // Without compaction, segments follow each other exactly: a gap means the
            // previous segment lost its tail (or a segment file is missing).
            let contiguous = !config.cleanup_policy.compact;
            if contiguous && i > 0 && base != next_min {
                tracing::warn!(dir = %dir.display(), base = base.get(), expected = next_min.get(), "segment does not continue the log; cutting here");
                report.truncated = true;
                cut_at = Some(i - 1);
                break;
            }
            let mut segment = None;
            if !recovering && base >= next_min {
                match Segment::open_trusted(dir, base, &config, now_ms, next_base)? {
                    Ok(s) => segment = Some(s),
                    Err(reason) => {
                        tracing::warn!(dir = %dir.display(), base = base.get(), reason, "segment fails its checks; recovering it");
                    }
                }
            }
            let segment = match segment {
                Some(s) => {
                    if rebuild_epochs {
                        scan_headers(&s, |h| assign_epoch(h, &mut cache, true))?;
                    }
                    s
                }
                None => {
                    report.segments_recovered += 1;
                    let (s, truncated) = Segment::open_and_recover(
                        dir,
                        base,
                        &config,
                        now_ms,
                        next_min,
                        contiguous,
                        |h| assign_epoch(h, &mut cache, recovering || rebuild_epochs),
                    )?;
                    if truncated {
                        report.truncated = true;
                        cut_at = Some(i);
                    }
                    s
                }
            };
            next_min = segment.next_offset().max(next_min);
            segments.insert(base, segment);
            if cut_at.is_some() {
                break;
            }
        }
        if let Some(e) = epoch_error {
            return Err(e);
        }
        if let Some(i) = cut_at {
            for &base in &bases[i + 1..] {
                delete_segment_files(dir, base)?;
                report.segments_deleted += 1;
            }
        }
        if segments.is_empty() {
            let base = hints.log_start_offset.unwrap_or(Offset(0)).max(Offset(0));
            segments.insert(base, Segment::create(dir, base, &config, now_ms)?);
        }
        if report.segments_recovered > 0 || report.segments_deleted > 0 {
            for s in segments.values() {
                s.sync_all()?;
            }
        }
        sync_dir(dir)?;

        let (first_base, active) = match (segments.keys().next(), segments.values().next_back()) {
            (Some(b), Some(a)) => (*b, a),
            _ => unreachable!("segments is not empty"),
        };
        let log_end_offset = if active.is_empty() {
            active.base_offset()
        } else {
            active.next_offset()
        };
        let log_start_offset = hints
            .log_start_offset
            .unwrap_or(first_base)
            .max(first_base)
            .min(log_end_offset);
        let high_watermark = hints
            .high_watermark
            .unwrap_or(log_start_offset)
            .max(log_start_offset)
            .min(log_end_offset);
        cache.truncate_from_end(log_end_offset)?;
        cache.truncate_from_start(log_start_offset)?;

        let mut log = Log {
            dir: dir.to_path_buf(),
            config,
            clock: Arc::clone(&clock),
            segments,
            log_start_offset,
            log_end_offset,
            high_watermark,
            recovery_point: log_end_offset,
            epoch_cache: cache,
            producers: ProducerStateManager::new(),
            last_flush: clock.monotonic(),
            truncations: 0,
            dir_changes: 0,
            dir_synced: 0,
            offline: false,
        };
        log.reload_producer_state()?;
        log.assert_invariants();
        if report.truncated || report.segments_recovered > 0 {
            tracing::info!(
                dir = %dir.display(),
                recovered = report.segments_recovered,
                truncated = report.truncated,
                deleted = report.segments_deleted,
                log_end_offset = log_end_offset.get(),
                "log recovered"
            );
        }
        Ok((log, report))
    }

    /// Rebuilds producer state: drops snapshots past the log end, loads the newest one
    /// left, and replays the batches after it.
    pub(crate) fn reload_producer_state(&mut self) -> Result<()> {
        let end = self.log_end_offset;
        producer_state::delete_snapshots(&self.dir, |o| o > end)?;
        let (from, state) = match producer_state::load_latest_snapshot(&self.dir, end)? {
            Some((at, state)) => (at, state),
            None => (Offset(i64::MIN), ProducerStateManager::new()),
        };
        self.producers = state;
        let mut replayed = Vec::new();
        for segment in self.segments_from(from.max(Offset(0))) {
            scan_headers(segment, |h| {
                if h.base_offset() >= from.get() && h.has_producer_id() {
                    replayed.push(ProducerBatch::new(
                        ProducerId(h.producer_id()),
                        ProducerEpoch(h.producer_epoch()),
                        Sequence(h.base_sequence()),
                        Offset(h.base_offset()),
                        Offset(h.last_offset()),
                        h.max_timestamp(),
                    ));
                }
            })?;
        }
        for b in &replayed {
            self.producers.apply(b);
        }
        Ok(())
    }
}

/// Walks the headers of a (valid) segment.
fn scan_headers(segment: &Segment, mut f: impl FnMut(&BatchHeader)) -> Result<()> {
    let mut scanner = segment.scanner(0);
    loop {
        match scanner.next_header() {
            Ok(Some((_, h))) => f(&h),
            Ok(None) => return Ok(()),
            Err(e) => return Err(e.into_log_error(segment.log_path())),
        }
    }
}

/// Base offsets of the `.log` files in `dir`, sorted; removes leftovers of
/// interrupted operations (`*.tmp`, `*.deleted`, `*.cleaned`, `*.swap`) and index
/// files without a segment.
fn list_segments(dir: &Path) -> Result<Vec<Offset>> {
    let mut logs = Vec::new();
    let mut indexes: Vec<(Offset, PathBuf)> = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| LogError::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io("list", dir, e))?;
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if [".tmp", ".deleted", ".cleaned", ".swap"]
            .iter()
            .any(|s| name.ends_with(s))
        {
            fs::remove_file(&path).map_err(|e| LogError::io("remove", &path, e))?;
            continue;
        }
        for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            let Some(stem) = name.strip_suffix(suffix) else {
                continue;
            };
            let Some(base) = parse_base(stem) else {
                continue;
            };
            if suffix == LOG_SUFFIX {
                logs.push(base);
            } else {
                indexes.push((base, path.clone()));
            }
        }
    }
    logs.sort();
    for (base, path) in indexes {
        if logs.binary_search(&base).is_err() {
            fs::remove_file(&path).map_err(|e| LogError::io("remove", &path, e))?;
        }
    }
    Ok(logs)
}

fn parse_base(stem: &str) -> Option<Offset> {
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse::<i64>().ok().map(Offset))
        .flatten()
}

fn delete_segment_files(dir: &Path, base: Offset) -> Result<()> {
    for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
        let path = crate::segment::segment_file(dir, base, suffix);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LogError::io("remove", &path, e)),
        }
    }
    Ok(())
}
