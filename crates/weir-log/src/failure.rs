//! What a storage failure does to a log: it goes offline, and stays offline until it
//! is reopened.
//!
//! # Why offline, even when the failed write was undone
//!
//! A full disk (ENOSPC), a failing device (EIO) or a failed fsync leaves the log's
//! files in a state the process cannot fully know: an fsync error may have dropped
//! dirty pages, a `set_len` that "succeeded" after a failed write is one more call to
//! a device that just failed. So, as Kafka does with any `IOException` in a log
//! directory, every mutation that fails with a storage error (see
//! [`LogError::is_storage_error`]) takes the log offline: every later call fails with
//! [`LogError::Offline`], which clients see as KAFKA_STORAGE_ERROR, and nothing more is
//! written. The broker then takes the whole log directory offline (its partitions
//! answer KAFKA_STORAGE_ERROR and are listed offline in Metadata) until it restarts.
//! Bad input (a corrupt client batch, a sequence gap) is not a storage error and
//! changes nothing.
//!
//! # Why nothing is corrupted
//!
//! - A failed data write is cut back to the last whole batch before the error is
//!   returned (`Segment::append`), so no partial batch is left where a later reader
//!   could see it. If even the cut fails, the torn tail is found by recovery.
//! - Index entries are written after the data they point at; a torn index entry
//!   makes its file fail the load checks, and the index is rebuilt from the segment.
//! - Checkpoints and snapshots are written to a temporary file and renamed, so a
//!   failed write leaves the previous file; the temporary file is removed.
//! - The log's recovery point never moves past what an fsync covered.
//!
//! Reopening the log ([`Log::open`], without a clean-shutdown hint) validates every
//! batch after the recovery point and keeps exactly the valid prefix: every batch
//! whose write succeeded, whether or not it was acknowledged.

use bytes::Bytes;
use weir_types::{LeaderEpoch, Offset};

use crate::error::{LogError, Result};
use crate::log::{AppendInfo, Log};

impl Log {
    /// Appends a producer's batches (the `records` of one partition in a Produce
    /// request) as leader in `leader_epoch`. See the module docs of `log.rs` for what
    /// is checked; a storage error takes the log offline (see this module's docs).
    pub fn append_as_leader(
        &mut self,
        records: Bytes,
        leader_epoch: LeaderEpoch,
    ) -> Result<AppendInfo> {
        let result = self.append_as_leader_unguarded(records, leader_epoch);
        self.offline_on_storage_error(result)
    }

    /// Appends batches fetched from the leader, keeping their offsets and epochs. The
    /// first batch must start at the log end offset (or later on a compacted topic,
    /// whose logs have gaps), and each batch after the previous one. A storage error
    /// takes the log offline.
    pub fn append_as_follower(&mut self, records: Bytes) -> Result<AppendInfo> {
        let result = self.append_as_follower_unguarded(records);
        self.offline_on_storage_error(result)
    }

    /// Removes every batch whose last offset is `>= target` (a follower truncating to
    /// its leader's epoch boundary, or to the high watermark). The batch holding
    /// `target` goes too, so the new log end may be below `target` if it was not a
    /// batch boundary. Below the first segment, the log restarts empty at `target`.
    /// Returns whether anything was removed. The cut is fsynced before returning, so
    /// a crash cannot bring the removed batches back. A storage error takes the log
    /// offline.
    pub fn truncate_to(&mut self, target: Offset) -> Result<bool> {
        let result = self.truncate_to_unguarded(target);
        self.offline_on_storage_error(result)
    }

    /// Deletes every segment and restarts the log, empty, at `offset` (a follower
    /// whose fetch offset fell out of the leader's range). A storage error takes the
    /// log offline.
    pub fn truncate_fully_and_start_at(&mut self, offset: Offset) -> Result<()> {
        let result = self.truncate_fully_and_start_at_unguarded(offset);
        self.offline_on_storage_error(result)
    }

    /// DeleteRecords: makes `offset` the log start offset (it must not pass the high
    /// watermark) and deletes the segments wholly below it. Returns the log start. A
    /// storage error takes the log offline.
    pub fn delete_records_before(&mut self, offset: Offset) -> Result<Offset> {
        let result = self.delete_records_before_unguarded(offset);
        self.offline_on_storage_error(result)
    }

    /// One retention pass (Kafka's `deleteOldSegments`): segments wholly below the log
    /// start offset, then, with `cleanup.policy=delete`, segments whose newest record
    /// is older than `retention.ms`, then the oldest segments while the log exceeds
    /// `retention.bytes`. Returns the number of segments deleted. A storage error
    /// takes the log offline.
    pub fn delete_old_segments(&mut self) -> Result<usize> {
        let result = self.delete_old_segments_unguarded();
        self.offline_on_storage_error(result)
    }

    /// Takes the log offline if `result` is a storage error; passes it through.
    pub(crate) fn offline_on_storage_error<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            if e.is_storage_error() && !self.offline {
                self.take_offline(e);
            }
        }
        result
    }

    /// Marks the log offline after `cause`, with one log line saying why.
    pub(crate) fn take_offline(&mut self, cause: &LogError) {
        if cause.is_disk_full() {
            tracing::error!(dir = %self.dir.display(), error = %cause, "disk full: taking the log offline; free space and restart the broker to bring it back");
        } else {
            tracing::error!(dir = %self.dir.display(), error = %cause, "storage error: taking the log offline until it is reopened");
        }
        self.offline = true;
    }
}
