//! ListOffsets and DeleteRecords: the offset questions and the one offset command.
//!
//! ListOffsets answers from the log ([`weir_log::Log::fetch_offset_by_timestamp`])
//! with Kafka's consumer view on top: "latest" is the high watermark (read_committed:
//! the last stable offset, equal to it without transactions), and a search by
//! timestamp (record precision inside batches) or for the max timestamp only returns
//! offsets a consumer could fetch, below that bound. A leader whose high watermark
//! has not reached the start of its epoch yet answers "latest", and a search that
//! would land at or past its visible end, with OFFSET_NOT_AVAILABLE (KIP-207), so
//! an offset once given out never goes backwards. DeleteRecords moves the log
//! start offset (never past the high watermark) and persists it at once, so a crash
//! cannot bring deleted records back.

use std::sync::Arc;

use weir_log::special_timestamps;
use weir_types::{LeaderEpoch, Offset};

use super::error::{ReplicaError, Result};
use super::fetch::IsolationLevel;
use super::manager::ReplicaManager;
use super::partition::{Partition, Role};

/// A ListOffsets answer for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The timestamp of the record found, or -1 (earliest, latest, none found).
    pub timestamp: i64,
    /// The offset, or -1 when no record matches.
    pub offset: Offset,
    /// The leader epoch of the batch holding it, or -1 when unknown.
    pub leader_epoch: LeaderEpoch,
}

impl ListedOffset {
    /// Kafka's answer when nothing matches: offset and timestamp -1, no error.
    pub const NOT_FOUND: ListedOffset = ListedOffset {
        timestamp: -1,
        offset: Offset(-1),
        leader_epoch: LeaderEpoch(-1),
    };
}

impl ReplicaManager {
    /// ListOffsets for one partition. `timestamp` is a time in ms, or one of
    /// [`special_timestamps`] (-1 latest, -2 earliest, -3 max timestamp, -4 earliest
    /// local, -5 latest tiered). `replica_id >= 0` (a follower or a debugging tool)
    /// sees the log end as "latest"; consumers see the high watermark.
    pub fn list_offsets(
        &self,
        topic: &str,
        partition: i32,
        timestamp: i64,
        isolation_level: IsolationLevel,
        current_leader_epoch: LeaderEpoch,
        replica_id: i32,
    ) -> Result<ListedOffset> {
        let p = self.partition(topic, partition)?;
        let state = p.read()?;
        p.check_fetchable(&state, current_leader_epoch)?;
        let log = p.log(&state)?;
        // No transactions yet: the last stable offset is the high watermark.
        let fetchable_end = match (replica_id >= 0, isolation_level) {
            (true, _) => log.log_end_offset(),
            (false, IsolationLevel::ReadUncommitted | IsolationLevel::ReadCommitted) => {
                log.high_watermark()
            }
        };
        // KIP-207: a consumer's answer could go backwards while a new leader's high
        // watermark is below the start of its epoch (an earlier leader may have
        // answered up to there already).
        let lagging = (replica_id < 0
            && state.role == Role::Leader
            && state.replication.epoch_start_offset > log.high_watermark())
        .then(|| ReplicaError::OffsetNotAvailable {
            topic: topic.to_owned(),
            partition,
            high_watermark: log.high_watermark(),
            epoch_start: state.replication.epoch_start_offset,
        });
        if timestamp == special_timestamps::LATEST {
            if let Some(e) = lagging {
                return Err(e);
            }
            return Ok(ListedOffset {
                timestamp: -1,
                offset: fetchable_end,
                leader_epoch: log.latest_epoch().unwrap_or(LeaderEpoch(-1)),
            });
        }
        if timestamp == special_timestamps::LATEST_TIERED {
            return Ok(ListedOffset::NOT_FOUND);
        }
        let found = log.fetch_offset_by_timestamp(timestamp)?;
        let earliest = timestamp == special_timestamps::EARLIEST
            || timestamp == special_timestamps::EARLIEST_LOCAL;
        if let Some(e) = lagging.filter(|_| !earliest) {
            // As Kafka: only an answer at or past the visible end, or none at all,
            // could be one the previous leader would have answered differently.
            if found.as_ref().is_none_or(|t| t.offset >= fetchable_end) {
                return Err(e);
            }
        }
        Ok(match found {
            Some(t)
                if timestamp == special_timestamps::EARLIEST
                    || timestamp == special_timestamps::EARLIEST_LOCAL
                    || t.offset < fetchable_end =>
            {
                ListedOffset {
                    timestamp: t.timestamp,
                    offset: t.offset,
                    leader_epoch: t.leader_epoch.unwrap_or(LeaderEpoch(-1)),
                }
            }
            _ => ListedOffset::NOT_FOUND,
        })
    }

    /// OffsetForLeaderEpoch for one partition: the largest epoch at or below
    /// `leader_epoch` in the log and the offset where it ended (the log end for the
    /// latest epoch), or (-1, -1) when unknown. Checks `current_leader_epoch` first,
    /// and answers only as leader.
    pub fn end_offset_for_epoch(
        &self,
        topic: &str,
        partition: i32,
        current_leader_epoch: LeaderEpoch,
        leader_epoch: LeaderEpoch,
    ) -> Result<(LeaderEpoch, Offset)> {
        let p = self.partition(topic, partition)?;
        let state = p.read()?;
        p.check_fetchable(&state, current_leader_epoch)?;
        let log = p.log(&state)?;
        let latest = log.latest_epoch();
        if leader_epoch.get() >= 0
            && leader_epoch <= state.leader_epoch
            && latest.is_none_or(|l| leader_epoch > l)
        {
            // Kafka's leader records its epoch's start at the log end when elected;
            // Weir's log learns an epoch at its first append. Until then an epoch
            // between the log's latest and ours ended at the log end (the start of
            // ours), which is what Kafka would answer.
            let epoch = if leader_epoch == state.leader_epoch {
                leader_epoch
            } else {
                latest.unwrap_or(leader_epoch)
            };
            return Ok((epoch, log.log_end_offset()));
        }
        Ok(log.end_offset_for_epoch(leader_epoch))
    }

    /// DeleteRecords for one partition: deletes every record below `offset` (-1:
    /// below the high watermark) and returns the new low watermark (the log start
    /// offset). An offset beyond the high watermark is OFFSET_OUT_OF_RANGE.
    pub async fn delete_records(&self, topic: &str, partition: i32, offset: i64) -> Result<Offset> {
        let p = self.partition(topic, partition)?;
        let manager = self.clone();
        let low_watermark = self
            .blocking(move || -> Result<Offset> {
                let low_watermark = delete_records_blocking(&p, offset)?;
                manager.write_checkpoints_for(&p.data_dir)?;
                Ok(low_watermark)
            })
            .await??;
        Ok(low_watermark)
    }
}

fn delete_records_blocking(p: &Arc<Partition>, offset: i64) -> Result<Offset> {
    let mut state = p.write()?;
    p.check_leader(&state)?;
    let log = p.log_mut(&mut state)?;
    let target = if offset == -1 {
        log.high_watermark()
    } else {
        Offset(offset)
    };
    let low_watermark = match log.delete_records_before(target) {
        Ok(lw) => lw,
        Err(e) => {
            drop(state);
            p.storage_failed(&e);
            return Err(ReplicaError::from(e));
        }
    };
    drop(state);
    // Fetches at offsets now below the start must hear about it.
    p.hw_waiters.wake_all();
    p.leo_waiters.wake_all();
    Ok(low_watermark)
}
