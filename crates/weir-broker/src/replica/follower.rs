//! The follower's side of one partition: truncation before fetching, and taking
//! fetched data verbatim.
//!
//! # Truncation (KIP-101, KIP-279)
//!
//! A log that was led or followed in an earlier epoch may hold records the new
//! leader never had (an old leader's unreplicated tail). Before its first fetch in
//! a new leader epoch the follower asks the leader where its own latest epoch ended
//! (OffsetForLeaderEpoch) and truncates there:
//!
//! - the leader knows that epoch (it answers the same epoch): truncate to the
//!   smaller of the leader's end offset and our log end; done;
//! - the leader answers an older epoch (it never had ours): truncate to where *we*
//!   have that older epoch end, and ask again with it, until both agree;
//! - the leader knows nothing at or below it: truncate to our high watermark
//!   (everything below it was committed, so the leader has it).
//!
//! # Fetched data
//!
//! Batches are appended as the leader stored them, with its offsets and leader
//! epochs (`Log::append_as_follower` checks framing, CRC and offset continuity,
//! and updates the epoch cache). The high watermark becomes the leader's, capped by
//! our log end; the log start offset follows the leader's.

use weir_types::{ErrorCode, LeaderEpoch, NodeId, Offset};

use super::error::{ReplicaError, Result};
use super::fetch::FetchedPartition;
use super::leader_client::EpochEnd;
use super::partition::{Partition, Role};

/// A follower partition as the fetcher sees it at the start of a round.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FollowerView {
    /// The leader to fetch from.
    pub(crate) leader: NodeId,
    /// The leader epoch the follower is in.
    pub(crate) leader_epoch: LeaderEpoch,
    /// The follower's log end: where it fetches.
    pub(crate) log_end_offset: Offset,
    /// The latest epoch in the follower's log, if any.
    pub(crate) latest_epoch: Option<LeaderEpoch>,
    /// Whether truncation for this epoch is still to do.
    pub(crate) needs_truncation: bool,
}

impl Partition {
    /// The view, if this broker follows the partition and its log is online.
    pub(crate) fn follower_view(&self) -> Option<FollowerView> {
        let state = self.read().ok()?;
        if state.role != Role::Follower {
            return None;
        }
        let leader = state.leader?;
        let log = self.log(&state).ok()?;
        Some(FollowerView {
            leader,
            leader_epoch: state.leader_epoch,
            log_end_offset: log.log_end_offset(),
            latest_epoch: log.latest_epoch(),
            needs_truncation: state.replication.truncated_in != Some(state.leader_epoch),
        })
    }

    /// One truncation step in `epoch` (see the module docs), given the leader's
    /// `answer` to a query for our latest epoch (`None`: our log has no epoch, so
    /// there is nothing to ask). Returns whether truncation is complete; a partition
    /// error from the leader is returned as its code.
    pub(crate) fn truncation_step(
        &self,
        epoch: LeaderEpoch,
        answer: Option<EpochEnd>,
    ) -> Result<bool, ErrorCode> {
        let mut state = self.write().map_err(|e| e.error_code())?;
        if state.role != Role::Follower || state.leader_epoch != epoch {
            return Ok(false);
        }
        if let Some(a) = answer.filter(|a| a.error != ErrorCode::None) {
            return Err(a.error);
        }
        let log = self.log_mut(&mut state).map_err(|e| e.error_code())?;
        let leo = log.log_end_offset();
        let (target, done) = match answer {
            None => (leo, true),
            Some(a) if a.end_offset.get() < 0 => (log.high_watermark(), true),
            Some(a) => {
                let (ours, our_end) = log.end_offset_for_epoch(a.leader_epoch);
                if ours == a.leader_epoch || ours.get() < 0 {
                    (a.end_offset.min(leo), true)
                } else {
                    (our_end.min(leo), false)
                }
            }
        };
        if target < leo {
            tracing::info!(partition = %self.name(), from = leo.get(), to = target.get(), epoch = epoch.get(), "truncating to the leader's epoch boundary");
            if let Err(e) = log.truncate_to(target) {
                drop(state);
                self.storage_failed(&e);
                return Err(e.error_code());
            }
        }
        if done {
            state.replication.truncated_in = Some(epoch);
        }
        Ok(done)
    }

    /// Takes a fetch answer from the leader in `epoch`: appends its batches and
    /// follows the leader's high watermark and log start. A partition error is
    /// returned as its code for the fetcher to handle.
    pub(crate) fn apply_fetched(
        &self,
        epoch: LeaderEpoch,
        fetched: FetchedPartition,
    ) -> Result<(), ErrorCode> {
        if fetched.error != ErrorCode::None {
            return Err(fetched.error);
        }
        let mut state = self.write().map_err(|e| e.error_code())?;
        if state.role != Role::Follower || state.leader_epoch != epoch {
            return Ok(());
        }
        let log = self.log_mut(&mut state).map_err(|e| e.error_code())?;
        let unflushed_before = log.unflushed_messages();
        let appended = !fetched.records.is_empty();
        if appended {
            if let Err(e) = log.append_as_follower(fetched.records) {
                if e.is_storage_error() {
                    drop(state);
                    self.storage_failed(&e);
                } else {
                    tracing::warn!(partition = %self.name(), error = %e, "cannot append fetched data; truncating again");
                    state.replication.truncated_in = None;
                }
                return Err(ReplicaError::from(e).error_code());
            }
        }
        let hw_before = log.high_watermark();
        if fetched.high_watermark.get() >= 0 {
            log.set_high_watermark(fetched.high_watermark);
        }
        let start = fetched.log_start_offset.min(log.high_watermark());
        if start > log.log_start_offset() {
            if let Err(e) = log.delete_records_before(start) {
                tracing::warn!(partition = %self.name(), error = %e, "cannot follow the leader's log start offset");
            }
        }
        let config = log.config();
        let unflushed = log.unflushed_messages();
        let poke = appended
            && (unflushed >= config.flush_messages
                || (config.flush_ms != i64::MAX && unflushed_before == 0));
        let hw_moved = log.high_watermark() != hw_before;
        self.publish(&state);
        drop(state);
        if poke {
            self.flush_requested.notify_one();
        }
        if appended {
            self.leo_waiters.wake_all();
        }
        if hw_moved {
            self.hw_waiters.wake_all();
        }
        Ok(())
    }

    /// The fetch offset fell below the leader's log start `leader_start`: restart
    /// the log empty there (Kafka's follower reset). A fetch offset above the
    /// leader's log end instead means we must truncate again.
    pub(crate) fn reset_out_of_range(&self, epoch: LeaderEpoch, leader_start: Offset) {
        let Ok(mut state) = self.write() else { return };
        if state.role != Role::Follower || state.leader_epoch != epoch {
            return;
        }
        let Ok(log) = self.log_mut(&mut state) else {
            return;
        };
        if log.log_end_offset() < leader_start {
            tracing::warn!(partition = %self.name(), start = leader_start.get(), "fetch offset below the leader's log start; restarting the log there");
            if let Err(e) = log.truncate_fully_and_start_at(leader_start) {
                drop(state);
                self.storage_failed(&e);
            }
        } else {
            state.replication.truncated_in = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use weir_log::{Log, LogConfig, OpenHints};
    use weir_protocol::records::BatchBuilder;
    use weir_protocol::Uuid;
    use weir_types::SystemClock;

    use super::*;
    use crate::replica::assignment::PartitionAssignment;
    use crate::replica::log_dir::LogDir;

    const EPOCH: LeaderEpoch = LeaderEpoch(5);

    /// A follower (node 1, leader 2, epoch 5) whose log holds `batches`
    /// (base offset, records, leader epoch).
    fn follower(dir: &std::path::Path, batches: &[(i64, usize, i32)]) -> Partition {
        let log_dir = dir.join("t-0");
        let log = Log::open(
            &log_dir,
            LogConfig::default(),
            Arc::new(SystemClock),
            OpenHints::default(),
        )
        .expect("log");
        let assignment = PartitionAssignment {
            partition: 0,
            replicas: vec![NodeId(1), NodeId(2)],
            isr: vec![NodeId(1), NodeId(2)],
            leader: Some(NodeId(2)),
            leader_epoch: EPOCH,
            partition_epoch: 0,
        };
        let p = Partition::new(
            "t".into(),
            0,
            Uuid([1; 16]),
            Arc::new(LogDir::new(dir.to_path_buf())),
            Some(log),
            &assignment,
            NodeId(1),
        );
        for (base, n, epoch) in batches {
            let mut b = BatchBuilder::new()
                .base_offset(*base)
                .partition_leader_epoch(*epoch);
            for i in 0..*n {
                b.append(1_700_000_000_000 + i as i64, None, Some(b"v"), &[])
                    .expect("record");
            }
            let mut state = p.write().expect("state");
            let log = p.log_mut(&mut state).expect("log");
            log.append_as_follower(b.build().expect("batch"))
                .expect("append");
        }
        p
    }

    fn answer(epoch: i32, end: i64) -> Option<EpochEnd> {
        Some(EpochEnd {
            error: ErrorCode::None,
            leader_epoch: LeaderEpoch(epoch),
            end_offset: Offset(end),
        })
    }

    fn leo(p: &Partition) -> Offset {
        p.follower_view().expect("follower").log_end_offset
    }

    #[test]
    fn truncation_walks_back_to_a_common_epoch() {
        let dir = tempfile::tempdir().unwrap();
        // Ours: epoch 0 at 0..5, epoch 3 at 5..10. The leader never had epoch 3:
        // asked for 3, it answers its epoch 2 ending at 6.
        let p = follower(dir.path(), &[(0, 5, 0), (5, 5, 3)]);
        assert!(p.follower_view().unwrap().needs_truncation);
        let done = p.truncation_step(EPOCH, answer(2, 6)).unwrap();
        // We have no epoch 2: cut back to where our epoch below it (0) ended, and
        // ask again.
        assert!(!done);
        assert_eq!(leo(&p), Offset(5));
        assert_eq!(
            p.follower_view().unwrap().latest_epoch,
            Some(LeaderEpoch(0))
        );
        // Asked for 0, the leader says epoch 0 ended at 3 on its log.
        let done = p.truncation_step(EPOCH, answer(0, 3)).unwrap();
        assert!(done);
        assert_eq!(leo(&p), Offset(0), "the batch holding offset 3 goes too");
        assert!(!p.follower_view().unwrap().needs_truncation);
    }

    #[test]
    fn truncation_keeps_what_the_leader_has() {
        let dir = tempfile::tempdir().unwrap();
        let p = follower(dir.path(), &[(0, 2, 0), (2, 3, 0)]);
        // The leader has epoch 0 up to 9: nothing of ours diverges.
        assert!(p.truncation_step(EPOCH, answer(0, 9)).unwrap());
        assert_eq!(leo(&p), Offset(5));
    }

    #[test]
    fn an_unknown_epoch_truncates_to_the_high_watermark_and_errors_wait() {
        let dir = tempfile::tempdir().unwrap();
        let p = follower(dir.path(), &[(0, 2, 0), (2, 3, 0)]);
        {
            let mut state = p.write().unwrap();
            p.log_mut(&mut state).unwrap().set_high_watermark(Offset(2));
        }
        let fenced = Some(EpochEnd::failed(ErrorCode::FencedLeaderEpoch));
        assert_eq!(
            p.truncation_step(EPOCH, fenced),
            Err(ErrorCode::FencedLeaderEpoch)
        );
        assert_eq!(leo(&p), Offset(5), "nothing cut on an error");
        assert!(p.truncation_step(EPOCH, answer(-1, -1)).unwrap());
        assert_eq!(leo(&p), Offset(2));
        // A step for another epoch than ours is stale: ignored.
        assert!(!p.truncation_step(LeaderEpoch(4), answer(0, 0)).unwrap());
        assert_eq!(leo(&p), Offset(2));
    }
}
