//! Removing data: truncation (followers, diverged logs), DeleteRecords, and
//! retention by time and size.
//!
//! Whole segments are deleted, oldest first, and only while the predicate holds for
//! each in turn (Kafka's `deletableSegments`): a segment is eligible only if all its
//! data is below the high watermark, and an empty active segment never is. When every
//! segment goes, a new empty active segment is rolled at the log end first, so the log
//! always has one. The log start offset then moves up to the first remaining segment.

use std::ops::Bound;

use weir_types::Offset;

use crate::checkpoint::sync_dir;
use crate::error::{LogError, Result};
use crate::log::Log;
use crate::producer_state;
use crate::segment::Segment;

impl Log {
    /// [`Log::truncate_to`] without the storage-failure guard (`failure.rs`).
    pub(crate) fn truncate_to_unguarded(&mut self, target: Offset) -> Result<bool> {
        self.check_online()?;
        if target >= self.log_end_offset {
            return Ok(false);
        }
        let first_base = *self.segments.keys().next().unwrap_or(&target);
        if target < first_base {
            self.truncate_fully_and_start_at_unguarded(target)?;
            return Ok(true);
        }
        let doomed: Vec<Offset> = self
            .segments
            .range((Bound::Excluded(target), Bound::Unbounded))
            .map(|(b, _)| *b)
            .collect();
        for base in doomed {
            if let Some(s) = self.segments.remove(&base) {
                s.delete()?;
                self.dir_changes += 1;
            }
        }
        let active = self.active_mut();
        active.truncate_to(target)?;
        active.sync_all()?;
        let end = if active.is_empty() {
            active.base_offset()
        } else {
            active.next_offset()
        };
        self.after_truncation(end)?;
        tracing::info!(dir = %self.dir.display(), target = target.get(), log_end_offset = end.get(), "log truncated");
        Ok(true)
    }

    /// [`Log::truncate_fully_and_start_at`] without the storage-failure guard (`failure.rs`).
    pub(crate) fn truncate_fully_and_start_at_unguarded(&mut self, offset: Offset) -> Result<()> {
        self.check_online()?;
        assert!(
            offset.get() >= 0,
            "cannot start a log at negative offset {offset}"
        );
        let now_ms = self.clock.now_ms();
        let old = std::mem::take(&mut self.segments);
        for (_, s) in old {
            s.delete()?;
        }
        let segment = Segment::create(&self.dir, offset, &self.config, now_ms)?;
        self.segments.insert(offset, segment);
        self.dir_changes += 1;
        self.log_start_offset = offset;
        self.high_watermark = offset;
        self.epoch_cache.clear()?;
        producer_state::delete_snapshots(&self.dir, |_| true)?;
        self.producers.clear();
        self.log_end_offset = offset;
        self.recovery_point = offset;
        self.truncations += 1;
        sync_dir(&self.dir)?;
        self.dir_synced = self.dir_changes;
        self.assert_invariants();
        Ok(())
    }

    fn after_truncation(&mut self, end: Offset) -> Result<()> {
        self.log_end_offset = end;
        self.log_start_offset = self.log_start_offset.min(end);
        self.high_watermark = self.high_watermark.min(end);
        self.recovery_point = self.recovery_point.min(end);
        self.truncations += 1;
        self.epoch_cache.truncate_from_end(end)?;
        self.reload_producer_state()?;
        sync_dir(&self.dir)?;
        self.dir_synced = self.dir_changes;
        self.assert_invariants();
        Ok(())
    }

    /// [`Log::delete_records_before`] without the storage-failure guard (`failure.rs`).
    pub(crate) fn delete_records_before_unguarded(&mut self, offset: Offset) -> Result<Offset> {
        self.check_online()?;
        if offset > self.high_watermark || offset.get() < 0 {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.high_watermark,
            });
        }
        if offset > self.log_start_offset {
            self.log_start_offset = offset;
            self.epoch_cache.truncate_from_start(offset)?;
        }
        self.delete_log_start_breached()?;
        self.assert_invariants();
        Ok(self.log_start_offset)
    }

    /// [`Log::delete_old_segments`] without the storage-failure guard (`failure.rs`).
    pub(crate) fn delete_old_segments_unguarded(&mut self) -> Result<usize> {
        self.check_online()?;
        let mut deleted = self.delete_log_start_breached()?;
        if self.config.deletes_old_segments() {
            let retention_ms = self.config.retention_ms;
            if retention_ms >= 0 {
                let now = self.clock.now_ms();
                deleted += self.delete_segments_while(|s, _| {
                    now.saturating_sub(s.largest_timestamp()) > retention_ms
                })?;
            }
            let retention_bytes = self.config.retention_bytes;
            if retention_bytes >= 0 {
                let mut excess = self.size_bytes() as i64 - retention_bytes;
                deleted += self.delete_segments_while(|s, _| {
                    if excess - s.size() as i64 >= 0 {
                        excess -= s.size() as i64;
                        true
                    } else {
                        false
                    }
                })?;
            }
        }
        self.assert_invariants();
        Ok(deleted)
    }

    fn delete_log_start_breached(&mut self) -> Result<usize> {
        let start = self.log_start_offset;
        self.delete_segments_while(|_, next| next.is_some_and(|n| n <= start))
    }

    /// Deletes segments from the oldest while `predicate(segment, next segment base)`
    /// holds and the segment is eligible; see the module docs.
    fn delete_segments_while(
        &mut self,
        mut predicate: impl FnMut(&Segment, Option<Offset>) -> bool,
    ) -> Result<usize> {
        let mut doomed = Vec::new();
        let mut iter = self.segments.values().peekable();
        while let Some(s) = iter.next() {
            let next = iter.peek().map(|n| n.base_offset());
            let last_and_empty = next.is_none() && s.is_empty();
            let upper = next.unwrap_or(self.log_end_offset);
            if upper <= self.high_watermark && !last_and_empty && predicate(s, next) {
                doomed.push(s.base_offset());
            } else {
                break;
            }
        }
        if doomed.is_empty() {
            return Ok(0);
        }
        if doomed.len() == self.segments.len() {
            let end = self.log_end_offset;
            self.roll(end)?;
        }
        for base in &doomed {
            if let Some(s) = self.segments.remove(base) {
                tracing::info!(segment = %s.log_path().display(), "deleting segment");
                s.delete()?;
                self.dir_changes += 1;
            }
        }
        let first_base = *self.segments.keys().next().unwrap_or(&self.log_end_offset);
        if first_base > self.log_start_offset {
            self.log_start_offset = first_base;
            self.epoch_cache.truncate_from_start(first_base)?;
        }
        Ok(doomed.len())
    }
}
