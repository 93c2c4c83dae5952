//! One hosted partition: its log, its role in the replica set, its high watermark,
//! and the signals that connect appends to the flusher and to waiting requests.
//!
//! # Locking
//!
//! Everything mutable sits behind one `RwLock` ([`State`]): the log, the role and
//! leader epoch, the ISR. An append takes it for writing (so the leader epoch it
//! writes with cannot change under it, as Kafka's `leaderIsrUpdateLock` ensures);
//! fetches, ListOffsets and status reads take it for reading. fsync never runs under
//! it (see [`super::flusher`]). A panic while holding it (a failed invariant) poisons
//! it, and the partition is then reported offline rather than used half-updated.
//!
//! # High watermark
//!
//! On a leader: the smallest log end over the ISR (see `leader.rs`), where the
//! leader's own counts as [`single_replica_high_watermark`] (with fsync-before-ack
//! the flushed offset, otherwise the log end). It only moves forward here. On a
//! follower it is the leader's, capped by the local log end (`follower.rs`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use weir_log::{Log, LogError};
use weir_protocol::Uuid;
use weir_types::{LeaderEpoch, NodeId, Offset};

use super::assignment::PartitionAssignment;
use super::config::fsync_before_ack;
use super::delayed::WakeList;
use super::error::{ReplicaError, Result};
use super::leader::{replicated_high_watermark, reset_for_role, Replication};
use super::log_dir::LogDir;

/// This broker's part in a partition's replica set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// This broker leads: it takes produce requests and serves consumers.
    Leader,
    /// Another broker leads; this one replicates it (see `replica_fetcher.rs`).
    Follower,
    /// The partition has no leader right now.
    NoLeader,
}

/// The high watermark of a partition whose ISR is this replica alone: the offset
/// below which consumers may read.
///
/// With fsync-before-ack (`flush.messages=1`, Weir's default) it is the flushed
/// offset: a consumer never sees a record that a crash could take back, so what was
/// read stays readable after a restart, exactly like what was acknowledged. Without
/// it the user chose page-cache speed, and it is the log end, as in Kafka with a
/// single in-sync replica. The cluster work replaces this rule with Kafka's: the
/// smallest log end offset over the ISR (each follower's fetch offset).
pub fn single_replica_high_watermark(
    log_end_offset: Offset,
    flushed_offset: Offset,
    fsync_before_ack: bool,
) -> Offset {
    if fsync_before_ack {
        flushed_offset.min(log_end_offset)
    } else {
        log_end_offset
    }
}

/// How far the log is durable, published to acks=all producers waiting on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FlushProgress {
    /// Every offset below this is fsynced (the log's recovery point).
    pub(crate) flushed: Offset,
    /// A flush or write failed: the log is offline and nothing more will flush.
    pub(crate) failed: bool,
    /// The partition stopped being served.
    pub(crate) stopped: bool,
    /// The high watermark (acks=all waits for it to pass its batch).
    pub(crate) high_watermark: Offset,
    /// The leader epoch this broker leads in, or `None` when it does not lead: an
    /// acks=all waiter appended in another epoch fails with NOT_LEADER_OR_FOLLOWER.
    pub(crate) leading: Option<LeaderEpoch>,
    /// Members of the (committed) ISR, for NOT_ENOUGH_REPLICAS_AFTER_APPEND.
    pub(crate) isr_len: usize,
    /// The broker is fenced (or cut off from the controller): acks=all waiters
    /// that are not yet replicated give up with NOT_LEADER_OR_FOLLOWER, so their
    /// producers retry at the leader elected in this one's place.
    pub(crate) fenced: bool,
}

/// The mutable part of a partition; see the module docs.
#[derive(Debug)]
pub(crate) struct State {
    /// The log; `None` once stopped, or when it failed to open.
    pub(crate) log: Option<Log>,
    /// Set when the partition stopped being served (deleted, shutting down).
    pub(crate) stopped: bool,
    /// This broker's role.
    pub(crate) role: Role,
    /// The leader epoch from the metadata; appends write it into batches.
    pub(crate) leader_epoch: LeaderEpoch,
    /// The partition epoch from the metadata.
    pub(crate) partition_epoch: i32,
    /// Replicas, from the metadata.
    pub(crate) replicas: Vec<NodeId>,
    /// In-sync replicas, from the metadata or from our last accepted
    /// AlterPartition (`min.insync.replicas` counts them).
    pub(crate) isr: Vec<NodeId>,
    /// The leader, from the metadata (a follower fetches from it).
    pub(crate) leader: Option<NodeId>,
    /// Leader and follower bookkeeping of replication (see `leader.rs` and
    /// `follower.rs`).
    pub(crate) replication: Replication,
    /// When the last flush finished, for `flush.ms`.
    pub(crate) last_flush: Instant,
}

/// A partition hosted by this broker.
#[derive(Debug)]
pub(crate) struct Partition {
    /// The topic name.
    pub(crate) topic: String,
    /// The partition id.
    pub(crate) index: i32,
    /// The topic id, also in the directory's `partition.metadata`.
    pub(crate) topic_id: Uuid,
    /// The `log.dirs` entry holding the partition directory.
    pub(crate) data_dir: PathBuf,
    /// That entry's health: a storage error anywhere in it takes it offline.
    pub(crate) dir: Arc<LogDir>,
    /// See the module docs.
    state: RwLock<State>,
    /// Wakes the partition's flusher: data to flush, or a config change.
    pub(crate) flush_requested: Notify,
    /// Set by a config change: the flusher flushes once whatever the policy says,
    /// so acks=all appends waiting under the old policy are released.
    pub(crate) force_flush: AtomicBool,
    /// The durable offset, for acks=all waiters.
    pub(crate) flushed: watch::Sender<FlushProgress>,
    /// Consumer fetches waiting for the high watermark to move.
    pub(crate) hw_waiters: WakeList,
    /// Replica fetches waiting for the log end to move.
    pub(crate) leo_waiters: WakeList,
    /// fsyncs completed (a metric, and how tests see group commit).
    pub(crate) fsyncs: AtomicU64,
}

impl Partition {
    /// A partition over `log` (`None`: the log failed to open; the partition is
    /// then hosted but offline, so a fresh empty log is never created over data
    /// that could not be read).
    pub(crate) fn new(
        topic: String,
        index: i32,
        topic_id: Uuid,
        dir: Arc<LogDir>,
        log: Option<Log>,
        assignment: &PartitionAssignment,
        node: NodeId,
    ) -> Partition {
        let flushed = log.as_ref().map_or(Offset(0), Log::recovery_point);
        let failed = log.is_none() || dir.is_offline();
        let mut state = State {
            log,
            stopped: false,
            role: Role::NoLeader,
            leader_epoch: assignment.leader_epoch,
            partition_epoch: assignment.partition_epoch,
            replicas: Vec::new(),
            isr: Vec::new(),
            leader: None,
            replication: Replication::default(),
            last_flush: Instant::now(),
        };
        // A new partition always takes its first registration (a leader epoch
        // equal to the initial one must still set the role).
        state.leader_epoch = LeaderEpoch(-1);
        apply_assignment(&mut state, assignment, node);
        advance_high_watermark(&mut state);
        let high_watermark = state.log.as_ref().map_or(Offset(0), Log::high_watermark);
        let leading = (state.role == Role::Leader).then_some(state.leader_epoch);
        let isr_len = state.isr.len();
        Partition {
            topic,
            index,
            topic_id,
            data_dir: dir.path.clone(),
            dir,
            state: RwLock::new(state),
            flush_requested: Notify::new(),
            force_flush: AtomicBool::new(false),
            flushed: watch::Sender::new(FlushProgress {
                flushed,
                failed,
                stopped: false,
                high_watermark,
                leading,
                isr_len,
                fenced: false,
            }),
            hw_waiters: WakeList::default(),
            leo_waiters: WakeList::default(),
            fsyncs: AtomicU64::new(0),
        }
    }

    /// Sets `replica.lag.time.max.ms` (used by the high watermark and ISR rules).
    pub(crate) fn with_lag_time_max(mut self, lag: std::time::Duration) -> Partition {
        let state = self
            .state
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.replication.lag_time_max = lag;
        self
    }

    /// `<topic>-<partition>`, for log lines and errors.
    pub(crate) fn name(&self) -> String {
        format!("{}-{}", self.topic, self.index)
    }

    /// The state for reading. A poisoned lock (a panic mid-update) is offline.
    pub(crate) fn read(&self) -> Result<RwLockReadGuard<'_, State>> {
        self.state.read().map_err(|_| self.offline_error())
    }

    /// The state for writing; see [`Partition::read`].
    pub(crate) fn write(&self) -> Result<RwLockWriteGuard<'_, State>> {
        self.state.write().map_err(|_| self.offline_error())
    }

    pub(crate) fn offline_error(&self) -> ReplicaError {
        ReplicaError::Offline {
            topic: self.topic.clone(),
            partition: self.index,
        }
    }

    pub(crate) fn not_leader_error(&self) -> ReplicaError {
        ReplicaError::NotLeader {
            topic: self.topic.clone(),
            partition: self.index,
        }
    }

    /// The log of a partition still served and online (its log directory too).
    pub(crate) fn log<'a>(&self, state: &'a State) -> Result<&'a Log> {
        if state.stopped {
            return Err(self.stopped_error());
        }
        self.check_dir_online()?;
        match &state.log {
            Some(log) if !log.is_offline() => Ok(log),
            _ => Err(self.offline_error()),
        }
    }

    /// [`Partition::log`], mutable.
    pub(crate) fn log_mut<'a>(&self, state: &'a mut State) -> Result<&'a mut Log> {
        if state.stopped {
            return Err(self.stopped_error());
        }
        self.check_dir_online()?;
        match &mut state.log {
            Some(log) if !log.is_offline() => Ok(log),
            _ => Err(self.offline_error()),
        }
    }

    fn check_dir_online(&self) -> Result<()> {
        if self.dir.is_offline() {
            return Err(ReplicaError::LogDirOffline {
                topic: self.topic.clone(),
                partition: self.index,
                dir: self.dir.path.clone(),
                cause: self.dir.cause(),
            });
        }
        Ok(())
    }

    fn stopped_error(&self) -> ReplicaError {
        ReplicaError::Stopped {
            topic: self.topic.clone(),
            partition: self.index,
        }
    }

    /// Fails unless this broker leads the partition.
    pub(crate) fn check_leader(&self, state: &State) -> Result<()> {
        match state.role {
            Role::Leader => Ok(()),
            Role::Follower | Role::NoLeader => Err(self.not_leader_error()),
        }
    }

    /// A storage error hit this partition's log: takes its log directory offline
    /// (see `log_dir.rs`; the manager then fails every partition there) and fails
    /// this partition's waiters. Bad input (`cause` not a storage error) is ignored.
    pub(crate) fn storage_failed(&self, cause: &LogError) {
        if !cause.is_storage_error() {
            return;
        }
        tracing::error!(partition = %self.name(), error = %cause, "storage error");
        self.dir.fail(&format!("{}: {cause}", self.name()));
        self.fail_waiters();
    }

    /// The log directory is offline: acks=all waiters fail now instead of at their
    /// timeout, and long polls return (with KAFKA_STORAGE_ERROR).
    pub(crate) fn fail_waiters(&self) {
        self.flushed.send_modify(|p| p.failed = true);
        self.hw_waiters.wake_all();
        self.leo_waiters.wake_all();
    }

    /// Applies a new registration; wakes waiters if the high watermark moved.
    pub(crate) fn update_assignment(&self, assignment: &PartitionAssignment, node: NodeId) {
        let Ok(mut state) = self.write() else { return };
        let changed = apply_assignment(&mut state, assignment, node);
        let moved = advance_high_watermark(&mut state);
        self.publish(&state);
        drop(state);
        // Waiting fetches re-check when the role or epoch changed (they now get
        // NOT_LEADER_OR_FOLLOWER or an epoch error) or the high watermark moved.
        if changed || moved {
            self.hw_waiters.wake_all();
            self.leo_waiters.wake_all();
        }
    }

    /// Replaces the topic config (AlterConfigs reached the metadata). The flusher
    /// re-evaluates its policy, and the high watermark follows the new rule.
    pub(crate) fn set_config(&self, config: weir_log::LogConfig) -> Result<()> {
        let mut state = self.write()?;
        let log = self.log_mut(&mut state)?;
        if *log.config() == config {
            return Ok(());
        }
        log.set_config(config)?;
        let moved = advance_high_watermark(&mut state);
        self.publish(&state);
        drop(state);
        self.force_flush.store(true, Ordering::Release);
        self.flush_requested.notify_one();
        if moved {
            self.hw_waiters.wake_all();
        }
        Ok(())
    }

    /// Stops serving: the log is taken out (the caller closes or deletes it), and
    /// every waiter is told.
    pub(crate) fn stop(&self) -> Option<Log> {
        let log = match self.state.write() {
            Ok(mut state) => {
                state.stopped = true;
                state.log.take()
            }
            Err(poisoned) => {
                let mut state = poisoned.into_inner();
                state.stopped = true;
                // A log whose lock was poisoned mid-update is not closed cleanly:
                // dropping it leaves recovery to the next start.
                drop(state.log.take());
                None
            }
        };
        self.flushed.send_modify(|p| p.stopped = true);
        self.flush_requested.notify_one();
        self.hw_waiters.wake_all();
        self.leo_waiters.wake_all();
        log
    }

    /// Publishes the high watermark, the leadership and the ISR size to acks=all
    /// waiters. Call under the state lock after any of them may have changed.
    pub(crate) fn publish(&self, state: &State) {
        let high_watermark = state.log.as_ref().map(Log::high_watermark);
        let leading = (state.role == Role::Leader && !state.stopped).then_some(state.leader_epoch);
        let isr_len = state.isr.len();
        self.flushed.send_if_modified(|p| {
            let before = *p;
            if let Some(hw) = high_watermark {
                p.high_watermark = hw;
            }
            p.leading = leading;
            p.isr_len = isr_len;
            before != *p
        });
    }

    /// Marks the broker fenced or not for this partition's acks=all waiters.
    pub(crate) fn set_fenced(&self, fenced: bool) {
        self.flushed.send_if_modified(|p| {
            let changed = p.fenced != fenced;
            p.fenced = fenced;
            changed
        });
    }

    /// fsyncs completed so far.
    pub(crate) fn fsync_count(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }
}

/// Sets role, epochs and replica sets from `assignment`. A registration older than
/// the one applied (lower leader epoch) is ignored: epochs only grow. Returns
/// whether the role or the leader epoch changed.
fn apply_assignment(state: &mut State, assignment: &PartitionAssignment, node: NodeId) -> bool {
    if assignment.leader_epoch == state.leader_epoch
        && assignment.partition_epoch < state.partition_epoch
    {
        // An image older than an ISR change we already applied from the
        // controller's AlterPartition reply: the next image confirms ours.
        return false;
    }
    if assignment.leader_epoch < state.leader_epoch {
        tracing::warn!(
            current = state.leader_epoch.get(),
            got = assignment.leader_epoch.get(),
            "ignoring a partition registration with an older leader epoch"
        );
        return false;
    }
    let before = (state.role, state.leader_epoch);
    let partition_epoch_before = state.partition_epoch;
    state.leader_epoch = assignment.leader_epoch;
    state.partition_epoch = assignment.partition_epoch;
    state.replicas.clone_from(&assignment.replicas);
    state.isr.clone_from(&assignment.isr);
    state.leader = assignment.leader;
    state.role = match assignment.leader {
        Some(leader) if leader == node => Role::Leader,
        Some(_) => Role::Follower,
        None => Role::NoLeader,
    };
    let changed = before != (state.role, state.leader_epoch);
    if changed {
        reset_for_role(state, node);
    } else if partition_epoch_before != state.partition_epoch {
        // The metadata settled the ISR change we had in flight (or another).
        state.replication.pending_isr = None;
        state.replication.clear_isr_backoff();
    }
    state.replication.track_replicas(&state.replicas, node);
    changed
}

/// Moves the high watermark up to what [`single_replica_high_watermark`] allows,
/// for a leader. Returns whether it moved.
pub(crate) fn advance_high_watermark(state: &mut State) -> bool {
    if state.role != Role::Leader {
        return false;
    }
    let Some(log) = state.log.as_mut() else {
        return false;
    };
    // KIP-966: below `min.insync.replicas` (capped by the replica count, as
    // Kafka's effective min ISR) the high watermark waits, so nothing is committed
    // on fewer replicas than the topic asks for.
    let replicas = i64::try_from(state.replicas.len().max(1)).unwrap_or(i64::MAX);
    let min_isr = i64::from(log.config().min_insync_replicas).min(replicas);
    if i64::try_from(state.isr.len()).unwrap_or(i64::MAX) < min_isr {
        return false;
    }
    let old = log.high_watermark();
    let own = single_replica_high_watermark(
        log.log_end_offset(),
        log.recovery_point(),
        fsync_before_ack(log.config()),
    );
    let followers = state
        .replication
        .isr_follower_leos(&state.isr, log.log_end_offset());
    let target = replicated_high_watermark(own, followers);
    if target <= old {
        return false;
    }
    let new = log.set_high_watermark(target);
    assert!(
        new >= old && new <= log.log_end_offset(),
        "high watermark of {} moved from {old} to {new} (log end {})",
        log.dir().display(),
        log.log_end_offset()
    );
    new > old
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn high_watermark_rule() {
        // fsync-before-ack: what is flushed, never past the log end.
        assert_eq!(
            single_replica_high_watermark(Offset(10), Offset(7), true),
            Offset(7)
        );
        assert_eq!(
            single_replica_high_watermark(Offset(10), Offset(12), true),
            Offset(10)
        );
        // Page-cache mode: everything written.
        assert_eq!(
            single_replica_high_watermark(Offset(10), Offset(7), false),
            Offset(10)
        );
    }
}
