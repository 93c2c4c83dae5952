//! The leader's side of replication: what it knows of its followers, the high
//! watermark over the ISR, and when the ISR should grow or shrink.
//!
//! # Followers' progress
//!
//! A follower fetches with its replica id at its log end offset, so every fetch
//! tells the leader the follower's LEO (Kafka's `updateFollowerFetchState`). The
//! leader also keeps when the follower was last *caught up*: a fetch at or past the
//! leader's log end makes it caught up now; a fetch at or past the leader's log end
//! as of the follower's previous fetch makes it caught up as of that previous fetch.
//!
//! # High watermark
//!
//! [`replicated_high_watermark`]: the smallest LEO over the ISR, the leader's own
//! counted as [`single_replica_high_watermark`](super::single_replica_high_watermark)
//! (its flushed offset when the topic is fsync-before-ack). While an ISR change is
//! in flight the larger of the two sets counts (Kafka's "maximal ISR"): a follower
//! being added already holds the high watermark back, one being removed still does
//! until the controller accepted its removal. A follower whose LEO is not known yet
//! (every follower, right after this broker became leader) holds it where it is.
//! As in Kafka, a follower outside the ISR that is caught up also counts, so the
//! high watermark waits for it to join rather than running ahead of it.
//!
//! # ISR changes
//!
//! A follower outside the ISR joins once its LEO reached the high watermark and the
//! start of the leader's current epoch. A member that has not been caught up for
//! `replica.lag.time.max.ms` is removed (checked periodically, `isr.rs`). Either
//! change is proposed to the controller ([`super::IsrChannel`]), one at a time per
//! partition; the reply's ISR and partition epoch are applied at once, and the
//! metadata image that follows confirms them. A refused or unanswered proposal
//! backs off (100 ms, doubling, at most half the lag time) before the next, unless
//! newer metadata for the partition arrives first.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use weir_types::{ErrorCode, LeaderEpoch, NodeId, Offset};

use super::isr::{AlterIsr, IsrUpdate};
use super::partition::{advance_high_watermark, Partition, Role, State};

/// The first wait before proposing an ISR change again after a failed one.
const ISR_RETRY_MIN: Duration = Duration::from_millis(100);
/// The longest such wait.
const ISR_RETRY_MAX: Duration = Duration::from_secs(5);

/// What the leader knows of one follower.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RemoteReplica {
    /// Its log end offset (its last fetch offset); -1 until it fetched in this
    /// leader epoch.
    pub(crate) leo: Offset,
    /// When it was last caught up with the leader's log end.
    pub(crate) last_caught_up: Option<Instant>,
    /// The leader's log end at its previous fetch.
    last_fetch_leader_leo: Offset,
    /// When it last fetched.
    last_fetch: Option<Instant>,
}

impl RemoteReplica {
    fn new(caught_up: Option<Instant>) -> RemoteReplica {
        RemoteReplica {
            leo: Offset(-1),
            last_caught_up: caught_up,
            last_fetch_leader_leo: Offset(-1),
            last_fetch: None,
        }
    }
}

/// Replication bookkeeping of one partition (under the partition lock).
#[derive(Debug, Default)]
pub(crate) struct Replication {
    /// Leader: every other replica.
    pub(crate) remotes: BTreeMap<NodeId, RemoteReplica>,
    /// Leader: the log end when this broker became leader in this epoch; a
    /// follower joins the ISR only once it has everything before it.
    pub(crate) epoch_start_offset: Offset,
    /// Leader: the ISR proposed to the controller and not answered yet.
    pub(crate) pending_isr: Option<Vec<NodeId>>,
    /// Follower: the leader epoch this log was truncated for (`follower.rs`);
    /// fetching starts only after it.
    pub(crate) truncated_in: Option<LeaderEpoch>,
    /// Leader: no new ISR proposal before this, after the controller refused or
    /// did not answer one (`failed_proposals` in a row); a new image for the
    /// partition clears it. Without it every follower fetch would propose again.
    pub(crate) isr_retry_at: Option<Instant>,
    /// Leader: ISR proposals refused or unanswered in a row.
    pub(crate) failed_proposals: u32,
    /// `replica.lag.time.max.ms`.
    pub(crate) lag_time_max: Duration,
    /// Brokers the metadata shows fenced or in a controlled shutdown: the
    /// controller refuses them as new ISR members (INELIGIBLE_REPLICA), so they
    /// neither join the ISR nor, from outside it, hold the high watermark back
    /// (Kafka's `isReplicaIsrEligible`); a broker shutting down would otherwise
    /// stall acks=all for up to `replica.lag.time.max.ms`.
    pub(crate) ineligible: Arc<BTreeSet<NodeId>>,
}

impl Replication {
    /// Whether a new ISR proposal may go now: none in flight and no backoff.
    fn may_propose(&self, now: Instant) -> bool {
        self.pending_isr.is_none() && self.isr_retry_at.is_none_or(|t| now >= t)
    }

    /// New metadata for the partition: proposals may go at once again.
    pub(crate) fn clear_isr_backoff(&mut self) {
        self.isr_retry_at = None;
        self.failed_proposals = 0;
    }

    /// A proposal failed: the next waits [`ISR_RETRY_MIN`], doubling with every
    /// failure in a row up to half the lag time (at most [`ISR_RETRY_MAX`]), so a
    /// lagging member still leaves the ISR well within `replica.lag.time.max.ms`
    /// of the controller answering again.
    fn back_off_isr(&mut self, now: Instant) {
        let cap = (self.lag_time_max / 2).clamp(ISR_RETRY_MIN, ISR_RETRY_MAX);
        let shift = self.failed_proposals.min(16);
        let wait = ISR_RETRY_MIN.saturating_mul(1 << shift).min(cap);
        self.failed_proposals = self.failed_proposals.saturating_add(1);
        self.isr_retry_at = Some(now + wait);
    }

    /// Keeps one entry per other replica (a reassignment may add or drop some).
    pub(crate) fn track_replicas(&mut self, replicas: &[NodeId], node: NodeId) {
        self.remotes.retain(|r, _| replicas.contains(r));
        for r in replicas.iter().filter(|r| **r != node) {
            self.remotes
                .entry(*r)
                .or_insert_with(|| RemoteReplica::new(None));
        }
    }

    /// The LEOs of the followers that hold the high watermark back: those in
    /// the maximal ISR, and those outside it that are caught up (so the high
    /// watermark does not run ahead of a follower about to join, which could
    /// then never reach it under steady load).
    pub(crate) fn isr_follower_leos(&self, isr: &[NodeId], leader_leo: Offset) -> Vec<Offset> {
        let pending = self.pending_isr.as_deref().unwrap_or(&[]);
        let now = Instant::now();
        self.remotes
            .iter()
            .filter(|(r, remote)| {
                isr.contains(r)
                    || pending.contains(r)
                    || (!self.ineligible.contains(r)
                        && (remote.leo >= leader_leo
                            || remote.last_caught_up.is_some_and(|t| {
                                now.saturating_duration_since(t) <= self.lag_time_max
                            })))
            })
            .map(|(_, remote)| remote.leo)
            .collect()
    }
}

/// Resets the replication bookkeeping for a new role or leader epoch. A new leader
/// knows no follower's LEO, and counts every ISR member as caught up now (so none
/// is removed before it had the lag time to fetch).
pub(crate) fn reset_for_role(state: &mut State, node: NodeId) {
    let now = Instant::now();
    let r = &mut state.replication;
    r.pending_isr = None;
    r.clear_isr_backoff();
    r.truncated_in = None;
    r.remotes.clear();
    if state.role == Role::Leader {
        r.epoch_start_offset = state.log.as_ref().map_or(Offset(0), |l| l.log_end_offset());
        for id in state.replicas.iter().filter(|id| **id != node) {
            let caught_up = state.isr.contains(id).then_some(now);
            r.remotes.insert(*id, RemoteReplica::new(caught_up));
        }
    }
}

/// Kafka's high watermark rule for a leader: the smallest of `own` (the leader's
/// own durable end, see [`super::single_replica_high_watermark`]) and the LEOs of
/// the other ISR members (-1 for one not known yet, which holds it back).
pub fn replicated_high_watermark(
    own: Offset,
    followers: impl IntoIterator<Item = Offset>,
) -> Offset {
    followers.into_iter().fold(own, Offset::min)
}

impl Partition {
    /// Takes the brokers now fenced or shutting down (see
    /// [`Replication::ineligible`]); the high watermark may move at once if one of
    /// them was holding it back.
    pub(crate) fn set_ineligible(&self, ineligible: &Arc<BTreeSet<NodeId>>) {
        // Every image comes here for every partition; most change nothing, so look
        // under the read lock first.
        if self
            .read()
            .is_ok_and(|state| state.replication.ineligible == *ineligible)
        {
            return;
        }
        let Ok(mut state) = self.write() else {
            return;
        };
        state.replication.ineligible = Arc::clone(ineligible);
        let moved = advance_high_watermark(&mut state);
        self.publish(&state);
        drop(state);
        if moved {
            self.hw_waiters.wake_all();
        }
    }

    /// A follower fetched at `fetch_offset` in `epoch`: records its progress (see
    /// the module docs), moves the high watermark, and returns an ISR expansion
    /// to propose if the follower is now eligible.
    pub(crate) fn record_follower_fetch(
        &self,
        replica: NodeId,
        fetch_offset: Offset,
        epoch: LeaderEpoch,
    ) -> Option<AlterIsr> {
        let mut state = self.write().ok()?;
        if state.role != Role::Leader || (epoch.get() >= 0 && epoch != state.leader_epoch) {
            return None;
        }
        let leader_leo = self.log(&state).ok()?.log_end_offset();
        if fetch_offset > leader_leo {
            // Out of range: the read answers OFFSET_OUT_OF_RANGE.
            return None;
        }
        let now = Instant::now();
        let remote = state.replication.remotes.get_mut(&replica)?;
        if fetch_offset >= leader_leo {
            remote.last_caught_up = Some(now);
        } else if fetch_offset >= remote.last_fetch_leader_leo {
            remote.last_caught_up = remote.last_caught_up.max(remote.last_fetch);
        }
        remote.last_fetch_leader_leo = leader_leo;
        remote.last_fetch = Some(now);
        remote.leo = fetch_offset;
        let expand = self.isr_expansion(&mut state, replica);
        let moved = advance_high_watermark(&mut state);
        self.publish(&state);
        drop(state);
        if moved {
            self.hw_waiters.wake_all();
        }
        expand
    }

    /// An ISR with `replica` added, if it is eligible and no change is in flight.
    fn isr_expansion(&self, state: &mut State, replica: NodeId) -> Option<AlterIsr> {
        if state.isr.contains(&replica)
            || !state.replication.may_propose(Instant::now())
            || state.replication.ineligible.contains(&replica)
        {
            return None;
        }
        let hw = state.log.as_ref()?.high_watermark();
        let leo = state.replication.remotes.get(&replica)?.leo;
        if leo < hw || leo < state.replication.epoch_start_offset {
            return None;
        }
        let mut isr = state.isr.clone();
        isr.push(replica);
        Some(self.propose_isr(state, isr))
    }

    /// The ISR without the members that have not been caught up for `lag`, if
    /// any and no change is in flight. Members as far as the leader's log end are
    /// never out of sync.
    pub(crate) fn isr_to_shrink(&self, lag: Duration, node: NodeId) -> Option<AlterIsr> {
        let mut state = self.write().ok()?;
        let now = Instant::now();
        if state.role != Role::Leader || !state.replication.may_propose(now) {
            return None;
        }
        let leader_leo = self.log(&state).ok()?.log_end_offset();
        let out_of_sync = |id: &NodeId| {
            *id != node
                && state.replication.remotes.get(id).is_some_and(|r| {
                    r.leo < leader_leo
                        && r.last_caught_up
                            .is_none_or(|t| now.saturating_duration_since(t) > lag)
                })
        };
        if !state.isr.iter().any(out_of_sync) {
            return None;
        }
        let isr: Vec<NodeId> = state
            .isr
            .iter()
            .filter(|id| !out_of_sync(id))
            .copied()
            .collect();
        tracing::info!(partition = %self.name(), from = ?state.isr, to = ?isr, "shrinking the ISR: replicas not caught up within replica.lag.time.max.ms");
        Some(self.propose_isr(&mut state, isr))
    }

    fn propose_isr(&self, state: &mut State, isr: Vec<NodeId>) -> AlterIsr {
        state.replication.pending_isr = Some(isr.clone());
        AlterIsr {
            topic_id: self.topic_id,
            topic: self.topic.clone(),
            partition: self.index,
            leader_epoch: state.leader_epoch,
            partition_epoch: state.partition_epoch,
            new_isr: isr,
        }
    }

    /// The controller answered `sent`: a new ISR and partition epoch in force at
    /// once, or an error (the proposal is dropped; after a backoff, or at once
    /// when newer metadata arrives, the next fetch or lag check proposes again if
    /// still needed).
    pub(crate) fn apply_isr_update(&self, sent: &AlterIsr, reply: Result<IsrUpdate, ErrorCode>) {
        let Ok(mut state) = self.write() else { return };
        if state.replication.pending_isr.as_ref() != Some(&sent.new_isr)
            || state.leader_epoch != sent.leader_epoch
        {
            // Superseded by a new image meanwhile.
            return;
        }
        state.replication.pending_isr = None;
        match reply {
            Ok(update)
                if state.role == Role::Leader
                    && update.leader_epoch == state.leader_epoch
                    && update.partition_epoch > state.partition_epoch =>
            {
                tracing::info!(partition = %self.name(), isr = ?update.isr, partition_epoch = update.partition_epoch, "ISR changed");
                state.replication.clear_isr_backoff();
                state.isr = update.isr;
                state.partition_epoch = update.partition_epoch;
            }
            Ok(update) => {
                tracing::debug!(partition = %self.name(), ?update, "ignoring a stale AlterPartition reply");
            }
            Err(code) => {
                state.replication.back_off_isr(Instant::now());
                tracing::warn!(partition = %self.name(), error = ?code, failures = state.replication.failed_proposals, "AlterPartition refused or unanswered; proposing again after a backoff or newer metadata");
            }
        }
        let moved = advance_high_watermark(&mut state);
        self.publish(&state);
        drop(state);
        if moved {
            self.hw_waiters.wake_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caught_up_followers_outside_the_isr_hold_the_high_watermark() {
        let mut r = Replication {
            lag_time_max: Duration::from_secs(30),
            ..Replication::default()
        };
        let a_moment_ago = Instant::now()
            .checked_sub(Duration::from_millis(10))
            .unwrap_or_else(Instant::now);
        let mut caught_up = RemoteReplica::new(Some(a_moment_ago));
        caught_up.leo = Offset(5);
        let mut lagging = RemoteReplica::new(None);
        lagging.leo = Offset(3);
        let mut pending = RemoteReplica::new(None);
        pending.leo = Offset(4);
        r.remotes.insert(NodeId(2), caught_up);
        r.remotes.insert(NodeId(3), lagging);
        r.remotes.insert(NodeId(4), pending);
        let isr = [NodeId(1)];
        assert_eq!(r.isr_follower_leos(&isr, Offset(10)), vec![Offset(5)]);
        // A member being added counts already (the maximal ISR).
        r.pending_isr = Some(vec![NodeId(1), NodeId(4)]);
        assert_eq!(
            r.isr_follower_leos(&isr, Offset(10)),
            vec![Offset(5), Offset(4)]
        );
        // Once the lag time passed without catching up, 2 no longer counts.
        r.lag_time_max = Duration::ZERO;
        r.pending_isr = None;
        assert_eq!(r.isr_follower_leos(&isr, Offset(10)), Vec::<Offset>::new());
        // At the leader's log end it is caught up whatever the time.
        assert_eq!(r.isr_follower_leos(&isr, Offset(5)), vec![Offset(5)]);
        // Unless it is fenced or shutting down: the controller would refuse it as
        // an ISR member, so it must not hold acks=all back either.
        r.ineligible = Arc::new(BTreeSet::from([NodeId(2)]));
        assert_eq!(r.isr_follower_leos(&isr, Offset(5)), Vec::<Offset>::new());
        // An ISR member counts until the controller takes it out.
        assert_eq!(
            r.isr_follower_leos(&[NodeId(1), NodeId(2)], Offset(5)),
            vec![Offset(5)]
        );
    }

    #[test]
    fn high_watermark_is_the_smallest_isr_leo() {
        assert_eq!(replicated_high_watermark(Offset(10), []), Offset(10));
        assert_eq!(
            replicated_high_watermark(Offset(10), [Offset(7), Offset(12)]),
            Offset(7)
        );
        // An unknown follower LEO holds it back.
        assert_eq!(
            replicated_high_watermark(Offset(10), [Offset(-1)]),
            Offset(-1)
        );
    }
}
