//! Durability: group commit without holding the append lock.
//!
//! # Contract
//!
//! An acks=all produce is acknowledged only once [`Log::recovery_point`] is past its
//! last offset. The broker runs a flusher per log (or per data dir) that loops:
//!
//! 1. under the log's lock, `let h = log.flush_handle()` — cheap: it clones the
//!    `Arc<File>`s of the segments holding unflushed data and notes the log end
//!    offset and the truncation generation;
//! 2. without the lock, `h.sync()` — the fsyncs (`fdatasync` of each `.log` file, the
//!    finished indexes of rolled segments, and the directory when segments were
//!    created or removed). Appends continue meanwhile; one fsync covers every batch
//!    appended before the handle was taken (group commit);
//! 3. under the lock again, `log.mark_flushed(&h)` — advances the recovery point to
//!    the handle's offset (unless the log was truncated in between: then the handle
//!    is stale and ignored), and wakes the produce requests waiting on it.
//!
//! If `sync` fails, the state of the page cache is unknown (a failed fsync may have
//! dropped dirty pages), so the flusher must call [`Log::mark_flush_failed`], which
//! takes the log offline; reopening it runs recovery.
//!
//! For producers with acks=0/1 the log also honours Kafka's `flush.messages` and
//! `flush.ms`: [`Log::needs_flush`] says when the flusher should run regardless of
//! waiting acks. Both default to "never", as in Kafka.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use weir_types::Offset;

use crate::checkpoint::sync_dir;
use crate::error::{LogError, Result};
use crate::log::Log;

/// What to fsync to make the log durable up to [`FlushHandle::offset`]; see the
/// module docs.
#[derive(Debug)]
pub struct FlushHandle {
    files: Vec<(Arc<File>, PathBuf)>,
    dir: Option<PathBuf>,
    up_to: Offset,
    truncations: u64,
    dir_changes: u64,
}

impl FlushHandle {
    /// The offset the log is durable up to (exclusive) once [`FlushHandle::sync`]
    /// succeeds.
    pub fn offset(&self) -> Offset {
        self.up_to
    }

    /// fsyncs everything the handle covers. Call without holding the log's lock.
    pub fn sync(&self) -> Result<()> {
        for (file, path) in &self.files {
            file.sync_data()
                .map_err(|e| LogError::io("fsync", path, e))?;
        }
        if let Some(dir) = &self.dir {
            sync_dir(dir)?;
        }
        Ok(())
    }
}

impl Log {
    /// A handle to make every appended byte durable, or `None` if everything is
    /// already flushed.
    pub fn flush_handle(&self) -> Option<FlushHandle> {
        let dir_dirty = self.dir_changes != self.dir_synced;
        if self.log_end_offset == self.recovery_point && !dir_dirty {
            return None;
        }
        let mut files = Vec::new();
        let active_base = self.active().base_offset();
        for segment in self.segments_from(self.recovery_point) {
            // A rolled segment's indexes are final: sync them with its data.
            segment.sync_targets(segment.base_offset() != active_base, &mut files);
        }
        Some(FlushHandle {
            files,
            dir: dir_dirty.then(|| self.dir.clone()),
            up_to: self.log_end_offset,
            truncations: self.truncations,
            dir_changes: self.dir_changes,
        })
    }

    /// Records that `handle` was synced: the recovery point moves to its offset
    /// (ignored if the log was truncated after the handle was taken). Returns the
    /// recovery point.
    pub fn mark_flushed(&mut self, handle: &FlushHandle) -> Offset {
        if handle.truncations == self.truncations {
            let up_to = handle.up_to.min(self.log_end_offset);
            if up_to > self.recovery_point {
                self.recovery_point = up_to;
            }
            self.dir_synced = self.dir_synced.max(handle.dir_changes);
            self.last_flush = self.clock.monotonic();
        }
        self.assert_invariants();
        self.recovery_point
    }

    /// A flush failed: the log goes offline (see the module docs).
    pub fn mark_flush_failed(&mut self) {
        tracing::error!(dir = %self.dir.display(), "fsync failed; taking the log offline");
        self.offline = true;
    }

    /// Flushes synchronously, holding `&mut self` throughout (tests, shutdown, and
    /// callers without a background flusher).
    pub fn flush(&mut self) -> Result<()> {
        self.check_online()?;
        if let Some(handle) = self.flush_handle() {
            if let Err(e) = handle.sync() {
                self.mark_flush_failed();
                return Err(e);
            }
            self.mark_flushed(&handle);
        }
        Ok(())
    }

    /// Messages (offsets) appended since the last flush.
    pub fn unflushed_messages(&self) -> i64 {
        self.log_end_offset.get() - self.recovery_point.get()
    }

    /// Whether `flush.messages` or `flush.ms` asks for a flush now.
    pub fn needs_flush(&self) -> bool {
        let unflushed = self.unflushed_messages();
        if unflushed <= 0 {
            return false;
        }
        if unflushed >= self.config.flush_messages {
            return true;
        }
        let elapsed_ms = self
            .clock
            .monotonic()
            .saturating_duration_since(self.last_flush)
            .as_millis();
        i64::try_from(elapsed_ms).unwrap_or(i64::MAX) >= self.config.flush_ms
    }

    /// Closes the log cleanly: the active segment gets its final time index entry,
    /// everything is fsynced, and a producer snapshot is written at the log end. The
    /// broker then writes its checkpoints and the clean-shutdown marker.
    pub fn close(mut self) -> Result<()> {
        self.check_online()?;
        self.active_mut().finalize_time_index()?;
        self.take_producer_snapshot()?;
        for segment in self.segments_from(self.recovery_point) {
            segment.sync_all()?;
        }
        self.active().sync_all()?;
        self.epoch_cache.persist()?;
        sync_dir(&self.dir)?;
        Ok(())
    }
}
