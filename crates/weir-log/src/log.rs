//! The partition log: an ordered set of segments with one active (last) segment,
//! the offsets that describe it, and the append paths.
//!
//! # Offsets
//!
//! `log_start_offset <= high_watermark <= log_end_offset`, always (asserted). The log
//! start may lie inside the first segment (DeleteRecords); the high watermark is set by
//! the replica layer and only stored here; the recovery point is the offset below which
//! every byte is fsynced.
//!
//! # Appends
//!
//! [`Log::append_as_leader`] validates a producer's batches (framing, CRC, Kafka's
//! client rules, `max.message.bytes` per batch, timestamps), checks idempotent
//! producers' sequences, assigns offsets and writes the batches verbatim except for
//! baseOffset and partitionLeaderEpoch (and, for LogAppendTime topics, the timestamp
//! and CRC). [`Log::append_as_follower`] keeps the leader's offsets and checks that
//! they continue the log. Either way an append is all or nothing: a rejected append
//! changes nothing, and a failed write is cut back off the segment and takes the log
//! offline until it is reopened and recovered (see `failure.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use weir_protocol::records::{BatchView, Batches};
use weir_types::{Clock, LeaderEpoch, Offset};

use crate::config::{LogConfig, TimestampType};
use crate::epoch_cache::LeaderEpochCache;
use crate::error::{LogError, Result};
use crate::producer_state::{self, ProducerStateManager, SequenceCheck};
use crate::segment::{AppendedBatch, Segment};
use crate::validate::{producer_batch, records_error};

/// What an append did (or, for a duplicate, what the original append did).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record appended.
    pub first_offset: Offset,
    /// Offset of the last record appended.
    pub last_offset: Offset,
    /// Largest batch max timestamp (the append time for LogAppendTime), or -1.
    pub max_timestamp: i64,
    /// Last offset of the batch holding `max_timestamp`.
    pub offset_of_max_timestamp: Offset,
    /// The broker time written into the batches of a LogAppendTime topic (the
    /// produce response's `log_append_time_ms`; `None` is -1 on the wire).
    pub log_append_time_ms: Option<i64>,
    /// The log start offset after the append (the produce response reports it).
    pub log_start_offset: Offset,
    /// Batches appended.
    pub batch_count: usize,
    /// Records appended, from the batch headers.
    pub record_count: u64,
    /// Bytes appended.
    pub bytes: usize,
    /// True when the append was a producer's retry of a stored batch: nothing was
    /// written and the offsets are the stored batch's.
    pub duplicate: bool,
}

/// A partition's durable log. See the module docs; writes take `&mut self`, reads
/// `&self`, and the broker serialises access with a lock.
pub struct Log {
    pub(crate) dir: PathBuf,
    pub(crate) config: LogConfig,
    pub(crate) clock: Arc<dyn Clock>,
    /// Never empty; keyed by base offset; the last one is active.
    pub(crate) segments: BTreeMap<Offset, Segment>,
    pub(crate) log_start_offset: Offset,
    pub(crate) log_end_offset: Offset,
    pub(crate) high_watermark: Offset,
    /// Every byte below this offset is fsynced.
    pub(crate) recovery_point: Offset,
    pub(crate) epoch_cache: LeaderEpochCache,
    pub(crate) producers: ProducerStateManager,
    /// When the last flush finished, for `flush.ms`.
    pub(crate) last_flush: Instant,
    /// Bumped by every truncation: a flush handle taken before one is stale.
    pub(crate) truncations: u64,
    /// Bumped when segment files are created or removed (the directory needs fsync).
    pub(crate) dir_changes: u64,
    /// `dir_changes` value covered by the last directory fsync.
    pub(crate) dir_synced: u64,
    /// Set after a failed write could not be undone.
    pub(crate) offline: bool,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.dir)
            .field("segments", &self.segments.len())
            .field("log_start_offset", &self.log_start_offset)
            .field("log_end_offset", &self.log_end_offset)
            .field("high_watermark", &self.high_watermark)
            .field("recovery_point", &self.recovery_point)
            .field("offline", &self.offline)
            .finish()
    }
}

/// Cap on the decompressed size of one stored batch when its records are walked.
pub(crate) const MAX_DECOMPRESSED_BYTES: usize = 64 * 1024 * 1024;

/// A batch of an append: its view and where it will go.
struct Planned {
    view: BatchView,
    base_offset: Offset,
    last_offset: Offset,
}

impl Log {
    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration in force.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Replaces the configuration (AlterConfigs). Takes effect on the next append,
    /// roll or retention pass; existing index files keep their size limit.
    pub fn set_config(&mut self, config: LogConfig) -> Result<()> {
        config.validate_structure()?;
        self.config = config;
        Ok(())
    }

    /// The first offset still readable.
    pub fn log_start_offset(&self) -> Offset {
        self.log_start_offset
    }

    /// The offset the next record will get.
    pub fn log_end_offset(&self) -> Offset {
        self.log_end_offset
    }

    /// The high watermark as last set by the replica layer.
    pub fn high_watermark(&self) -> Offset {
        self.high_watermark
    }

    /// The offset below which all data is fsynced.
    pub fn recovery_point(&self) -> Offset {
        self.recovery_point
    }

    /// Total bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(Segment::size).sum()
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<Offset> {
        self.segments.keys().copied().collect()
    }

    /// Whether a failed write left the log offline (reopen it to recover).
    pub fn is_offline(&self) -> bool {
        self.offline
    }

    /// The leader epoch cache.
    pub fn leader_epoch_cache(&self) -> &LeaderEpochCache {
        &self.epoch_cache
    }

    /// The latest leader epoch written to the log.
    pub fn latest_epoch(&self) -> Option<LeaderEpoch> {
        self.epoch_cache.latest_epoch()
    }

    /// Kafka's `endOffsetForEpoch` (OffsetForLeaderEpoch): see
    /// [`LeaderEpochCache::end_offset_for`].
    pub fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> (LeaderEpoch, Offset) {
        self.epoch_cache.end_offset_for(epoch, self.log_end_offset)
    }

    /// Producer state for idempotence.
    pub fn producer_state(&self) -> &ProducerStateManager {
        &self.producers
    }

    /// Forgets producers idle longer than `producer.id.expiration.ms`.
    pub fn remove_expired_producers(&mut self, expiration_ms: i64) {
        let now = self.clock.now_ms();
        self.producers.remove_expired(now, expiration_ms);
    }

    /// Sets the high watermark, clamped to `[log start, log end]` as Kafka's
    /// `updateHighWatermark` does (a follower may learn a leader HW beyond its own
    /// end). Returns the value stored.
    pub fn set_high_watermark(&mut self, offset: Offset) -> Offset {
        self.high_watermark = offset.max(self.log_start_offset).min(self.log_end_offset);
        self.assert_invariants();
        self.high_watermark
    }

    pub(crate) fn check_online(&self) -> Result<()> {
        if self.offline {
            return Err(LogError::Offline {
                dir: self.dir.clone(),
            });
        }
        Ok(())
    }

    /// The invariants every public mutation re-establishes (asserted in release).
    pub(crate) fn assert_invariants(&self) {
        assert!(
            self.log_start_offset <= self.high_watermark
                && self.high_watermark <= self.log_end_offset,
            "log {}: offsets out of order: start {} hw {} end {}",
            self.dir.display(),
            self.log_start_offset,
            self.high_watermark,
            self.log_end_offset
        );
        assert!(
            self.recovery_point <= self.log_end_offset,
            "log {}: recovery point {} past end {}",
            self.dir.display(),
            self.recovery_point,
            self.log_end_offset
        );
        let active = self.active();
        assert!(
            active.next_offset() <= self.log_end_offset || active.is_empty(),
            "log {}: active segment ends at {} past log end {}",
            self.dir.display(),
            active.next_offset(),
            self.log_end_offset
        );
    }

    pub(crate) fn active(&self) -> &Segment {
        // `segments` is never empty: open and every deletion keep one.
        match self.segments.values().next_back() {
            Some(s) => s,
            None => unreachable!("a log always has an active segment"),
        }
    }

    pub(crate) fn active_mut(&mut self) -> &mut Segment {
        match self.segments.values_mut().next_back() {
            Some(s) => s,
            None => unreachable!("a log always has an active segment"),
        }
    }

    /// [`Log::append_as_leader`] without the storage-failure guard (`failure.rs`).
    pub(crate) fn append_as_leader_unguarded(
        &mut self,
        records: Bytes,
        leader_epoch: LeaderEpoch,
    ) -> Result<AppendInfo> {
        self.check_online()?;
        if let Some(latest) = self.epoch_cache.latest_epoch() {
            assert!(
                leader_epoch >= latest,
                "log {}: leader append in epoch {leader_epoch} after epoch {latest}",
                self.dir.display()
            );
        }
        let now_ms = self.clock.now_ms();
        let mut planned = Vec::new();
        let mut total = 0usize;
        let mut next = self.log_end_offset;
        for item in Batches::new(records) {
            let view = item.map_err(records_error)?;
            let size = view.total_len();
            if size > self.config.max_message_bytes as usize {
                return Err(LogError::MessageTooLarge {
                    size,
                    max: self.config.max_message_bytes as usize,
                });
            }
            view.validate_client_append().map_err(records_error)?;
            self.validate_records(&view, now_ms)?;
            total += size;
            let base_offset = next;
            let last_offset = base_offset.plus(i64::from(view.last_offset_delta()));
            next = last_offset.plus(1);
            planned.push(Planned {
                view,
                base_offset,
                last_offset,
            });
        }
        if planned.is_empty() {
            return Err(LogError::InvalidRecord(
                "the append holds no record batches".into(),
            ));
        }
        if total as u64 > self.config.segment_bytes {
            return Err(LogError::RecordListTooLarge {
                size: total,
                max: self.config.segment_bytes as usize,
            });
        }
        let append_time =
            (self.config.message_timestamp_type == TimestampType::LogAppendTime).then_some(now_ms);

        // Idempotence: checked against the state plus earlier batches of this append.
        let mut check = self.producers.begin_append();
        for p in &planned {
            let Some(batch) = producer_batch(&p.view, p.base_offset, p.last_offset, append_time)
            else {
                continue;
            };
            match check.check_and_update(&batch) {
                SequenceCheck::Ok => {}
                SequenceCheck::Duplicate(meta) => {
                    return Ok(AppendInfo {
                        first_offset: meta.first_offset,
                        last_offset: meta.last_offset,
                        max_timestamp: meta.max_timestamp,
                        offset_of_max_timestamp: meta.last_offset,
                        log_append_time_ms: append_time.map(|_| meta.max_timestamp),
                        log_start_offset: self.log_start_offset,
                        batch_count: 0,
                        record_count: 0,
                        bytes: 0,
                        duplicate: true,
                    });
                }
                SequenceCheck::OutOfOrder { last } => {
                    return Err(LogError::OutOfOrderSequence {
                        producer_id: batch.producer_id,
                        got: batch.meta.first_seq,
                        last,
                    })
                }
                SequenceCheck::Fenced { current } => {
                    return Err(LogError::InvalidProducerEpoch {
                        producer_id: batch.producer_id,
                        got: batch.producer_epoch,
                        current,
                    })
                }
            }
        }
        let staged = check.into_staged();

        // Patch and lay out the batches in one buffer: one write, one copy.
        let mut buf = BytesMut::with_capacity(total);
        let mut appended = Vec::with_capacity(planned.len());
        for p in &mut planned {
            if let Some(t) = append_time {
                p.view.set_log_append_time(t);
            }
            buf.extend_from_slice(
                &p.view
                    .patched_prefix(p.base_offset.get(), leader_epoch.get()),
            );
            buf.extend_from_slice(&p.view.after_prefix());
            appended.push(AppendedBatch {
                len: p.view.total_len() as u32,
                last_offset: p.last_offset,
                max_timestamp: p.view.max_timestamp(),
            });
        }
        if self.epoch_cache.latest_epoch() != Some(leader_epoch) {
            self.epoch_cache.assign(leader_epoch, self.log_end_offset)?;
        }
        let first = planned[0].base_offset;
        self.write(
            &buf,
            &appended,
            first,
            planned[0].view.max_timestamp(),
            now_ms,
        )?;
        self.producers.commit(staged);
        Ok(self.append_info(&planned, &appended, append_time, buf.len()))
    }

    /// [`Log::append_as_follower`] without the storage-failure guard (`failure.rs`).
    pub(crate) fn append_as_follower_unguarded(&mut self, records: Bytes) -> Result<AppendInfo> {
        self.check_online()?;
        let now_ms = self.clock.now_ms();
        let gaps_allowed = self.config.cleanup_policy.compact;
        let mut planned = Vec::new();
        let mut appended = Vec::new();
        let mut total = 0usize;
        let mut expected = self.log_end_offset;
        for item in Batches::new(records) {
            let view = item.map_err(records_error)?;
            let base = Offset(view.base_offset());
            if base < expected || (base > expected && !gaps_allowed) {
                return Err(LogError::UnexpectedAppendOffset {
                    first_offset: base,
                    log_end_offset: expected,
                });
            }
            let last_offset = Offset(view.last_offset());
            expected = last_offset.plus(1);
            total += view.total_len();
            appended.push(AppendedBatch {
                len: view.total_len() as u32,
                last_offset,
                max_timestamp: view.max_timestamp(),
            });
            planned.push(Planned {
                view,
                base_offset: base,
                last_offset,
            });
        }
        if planned.is_empty() {
            return Err(LogError::InvalidRecord(
                "the append holds no record batches".into(),
            ));
        }
        if total as u64 > self.config.segment_bytes {
            return Err(LogError::RecordListTooLarge {
                size: total,
                max: self.config.segment_bytes as usize,
            });
        }
        for p in &planned {
            self.epoch_cache
                .assign(LeaderEpoch(p.view.partition_leader_epoch()), p.base_offset)?;
        }
        let mut buf = BytesMut::with_capacity(total);
        for p in &planned {
            buf.extend_from_slice(p.view.as_bytes());
        }
        let first = planned[0].base_offset;
        // A failed write takes the log offline (and its epoch cache is rebuilt from
        // the segments when it is reopened).
        self.write(
            &buf,
            &appended,
            first,
            planned[0].view.max_timestamp(),
            now_ms,
        )?;
        for p in &planned {
            if let Some(batch) = producer_batch(&p.view, p.base_offset, p.last_offset, None) {
                self.producers.apply(&batch);
            }
        }
        Ok(self.append_info(&planned, &appended, None, buf.len()))
    }

    fn append_info(
        &self,
        planned: &[Planned],
        appended: &[AppendedBatch],
        append_time: Option<i64>,
        bytes: usize,
    ) -> AppendInfo {
        let mut max_timestamp = -1;
        let mut offset_of_max = planned[0].last_offset;
        for b in appended {
            if b.max_timestamp > max_timestamp {
                max_timestamp = b.max_timestamp;
                offset_of_max = b.last_offset;
            }
        }
        AppendInfo {
            first_offset: planned[0].base_offset,
            last_offset: planned[planned.len() - 1].last_offset,
            max_timestamp,
            offset_of_max_timestamp: offset_of_max,
            log_append_time_ms: append_time,
            log_start_offset: self.log_start_offset,
            batch_count: planned.len(),
            record_count: planned
                .iter()
                .map(|p| u64::try_from(p.view.record_count()).unwrap_or(0))
                .sum(),
            bytes,
            duplicate: false,
        }
    }

    /// Rolls if needed and writes `buf` to the active segment; advances the log end.
    fn write(
        &mut self,
        buf: &[u8],
        appended: &[AppendedBatch],
        first_offset: Offset,
        first_max_timestamp: i64,
        now_ms: i64,
    ) -> Result<()> {
        let last_offset = appended[appended.len() - 1].last_offset;
        let roll = self.active().should_roll(
            &self.config,
            buf.len() as u64,
            first_max_timestamp,
            last_offset,
            now_ms,
        );
        if roll {
            self.roll(first_offset)?;
        }
        let config = self.config.clone();
        match self.active_mut().append(buf, appended, &config) {
            Ok(()) => {}
            // The partial write was cut off the segment; the log still goes offline
            // (`failure.rs`): after one I/O error the device is not trusted.
            Err(Ok(e)) => return Err(e),
            Err(Err(e)) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "a failed append could not be undone");
                self.offline = true;
                return Err(e);
            }
        }
        assert!(
            last_offset >= self.log_end_offset,
            "log {}: offsets must increase: end {} then {last_offset}",
            self.dir.display(),
            self.log_end_offset
        );
        self.log_end_offset = last_offset.plus(1);
        self.assert_invariants();
        Ok(())
    }

    /// Starts a new active segment at `base_offset` (>= the log end offset). The old
    /// one gets its final time index entry and a producer snapshot marks the boundary.
    pub(crate) fn roll(&mut self, base_offset: Offset) -> Result<()> {
        assert!(
            base_offset >= self.log_end_offset,
            "roll at {base_offset} below log end {}",
            self.log_end_offset
        );
        if self.active().is_empty() && self.active().base_offset() == base_offset {
            return Ok(());
        }
        self.active_mut().finalize_time_index()?;
        let now_ms = self.clock.now_ms();
        let segment = Segment::create(&self.dir, base_offset, &self.config, now_ms)?;
        if self.active().is_empty() {
            // An empty active segment below the new base is replaced, not kept.
            if let Some((_, old)) = self.segments.pop_last() {
                old.delete()?;
            }
        }
        self.segments.insert(base_offset, segment);
        self.dir_changes += 1;
        self.take_producer_snapshot()?;
        tracing::debug!(dir = %self.dir.display(), base_offset = base_offset.get(), "rolled segment");
        Ok(())
    }

    /// Writes a producer state snapshot at the log end offset and keeps the newest two.
    pub(crate) fn take_producer_snapshot(&self) -> Result<()> {
        producer_state::write_snapshot(&self.dir, self.log_end_offset, &self.producers)?;
        let snapshots = producer_state::list_snapshots(&self.dir)?;
        if snapshots.len() > 2 {
            let keep_from = snapshots[snapshots.len() - 2];
            producer_state::delete_snapshots(&self.dir, |o| o < keep_from)?;
        }
        Ok(())
    }
}
