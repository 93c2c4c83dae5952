//! The classic group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) on a
//! shard, with Kafka's semantics and error codes.
//!
//! One file per request (`join.rs`, `sync.rs`, `heartbeat.rs`, `leave.rs`); this one
//! holds the rebalance machinery they share with the timers: starting a rebalance,
//! completing the join phase, handing out assignments, and expiring members. The
//! logic follows Kafka's `GroupMetadataManager` step for step, so the same request
//! in the same state gets the same answer; where Weir differs, the comment says so.

mod heartbeat;
mod join;
mod leave;
mod sync;

pub(crate) use join::JoinContext;

use std::collections::BTreeMap;

use bytes::Bytes;
use weir_protocol::messages::join_group::JoinGroupResponse;
use weir_protocol::messages::sync_group::SyncGroupResponse;
use weir_types::ErrorCode;

use super::group::{ClassicGroup, GroupState};
use super::records::Record;
use super::shard::{Now, Outcome, Shard};
use super::timers::{TimerAction, TimerKey};

impl Shard {
    /// Starts a rebalance when the group's state allows one, otherwise tries to
    /// finish the join phase in progress.
    pub(crate) fn maybe_prepare_rebalance_or_complete_join(
        &mut self,
        group_id: &str,
        now: Now,
    ) -> Outcome<()> {
        match self.groups.get(group_id) {
            Some(g) if g.can_rebalance() => self.prepare_rebalance(group_id, now),
            Some(_) => self.maybe_complete_join_phase(group_id, now),
            None => Outcome::just(()),
        }
    }

    /// Moves the group to PreparingRebalance: members awaiting their assignment are
    /// told REBALANCE_IN_PROGRESS, and the join phase waits for everyone to rejoin
    /// (the first rebalance of an empty group waits `group.initial.rebalance.delay.ms`
    /// for more members instead).
    pub(crate) fn prepare_rebalance(&mut self, group_id: &str, now: Now) -> Outcome<()> {
        let initial_delay_ms = self.config.initial_rebalance_delay_ms;
        let Some(group) = self.groups.get_mut(group_id) else {
            return Outcome::just(());
        };
        if group.is(GroupState::CompletingRebalance) {
            let answered =
                reset_and_propagate_assignment_with_error(group, ErrorCode::RebalanceInProgress);
            self.reschedule_answered(group_id, answered, now);
        }
        let Some(group) = self.groups.get_mut(group_id) else {
            return Outcome::just(());
        };
        group.clear_pending_sync();
        let initial = group.is_empty();
        let remaining_ms = group
            .rebalance_timeout_ms()
            .saturating_sub(initial_delay_ms)
            .max(0);
        group.transition_to(GroupState::PreparingRebalance, now.wall_ms);
        tracing::debug!(
            group = group_id,
            generation = group.generation,
            "preparing to rebalance"
        );
        self.timers.cancel(&TimerKey::Sync {
            group: group_id.to_owned(),
        });
        if initial {
            self.timers.schedule(
                join_key(group_id),
                now.mono_ms.saturating_add(i64::from(initial_delay_ms)),
                TimerAction::InitialRebalance {
                    delay_ms: initial_delay_ms,
                    remaining_ms,
                },
            );
            return Outcome::just(());
        }
        self.maybe_complete_join_else_schedule(group_id, now)
    }

    /// Completes the join phase if everyone rejoined, else waits for the rebalance
    /// timeout.
    fn maybe_complete_join_else_schedule(&mut self, group_id: &str, now: Now) -> Outcome<()> {
        let Some(group) = self.groups.get(group_id) else {
            return Outcome::just(());
        };
        if group.has_all_members_joined() {
            return self.complete_join(group_id, now);
        }
        let timeout = group.rebalance_timeout_ms();
        self.timers.schedule(
            join_key(group_id),
            now.mono_ms.saturating_add(i64::from(timeout)),
            TimerAction::CompleteJoin,
        );
        Outcome::just(())
    }

    /// Completes the join phase once every member rejoined, except during the
    /// initial rebalance, which only its timer completes.
    pub(crate) fn maybe_complete_join_phase(&mut self, group_id: &str, now: Now) -> Outcome<()> {
        let Some(group) = self.groups.get(group_id) else {
            return Outcome::just(());
        };
        if !group.is(GroupState::PreparingRebalance)
            || group.previous_state() == GroupState::Empty
            || !group.has_all_members_joined()
        {
            return Outcome::just(());
        }
        self.complete_join(group_id, now)
    }

    /// The join timer fired.
    pub(crate) fn complete_join_by_id(&mut self, group_id: &str, now: Now) -> Outcome<()> {
        self.complete_join(group_id, now)
    }

    /// The initial rebalance delay ran out: while members keep arriving (and the
    /// rebalance timeout allows), wait another delay; else complete the join phase.
    pub(crate) fn initial_rebalance_elapsed(
        &mut self,
        group_id: &str,
        delay_ms: i32,
        remaining_ms: i32,
        now: Now,
    ) -> Outcome<()> {
        let configured = self.config.initial_rebalance_delay_ms;
        let Some(group) = self.groups.get_mut(group_id) else {
            return Outcome::just(());
        };
        if group.new_member_added && remaining_ms != 0 {
            group.new_member_added = false;
            let next_delay = configured.min(remaining_ms);
            let next_remaining = remaining_ms.saturating_sub(delay_ms).max(0);
            self.timers.schedule(
                join_key(group_id),
                now.mono_ms.saturating_add(i64::from(next_delay)),
                TimerAction::InitialRebalance {
                    delay_ms: next_delay,
                    remaining_ms: next_remaining,
                },
            );
            return Outcome::just(());
        }
        self.complete_join(group_id, now)
    }

    /// Ends the join phase: dynamic members that did not rejoin are removed, the
    /// generation is bumped and its protocol chosen, and every joined member gets
    /// its JoinGroup answer (the leader with the member list). An empty result is
    /// written as the group's metadata.
    pub(crate) fn complete_join(&mut self, group_id: &str, now: Now) -> Outcome<()> {
        self.timers.cancel(&join_key(group_id));
        let Some(group) = self.groups.get_mut(group_id) else {
            return Outcome::just(());
        };
        let dropped: Vec<String> = group
            .not_yet_rejoined()
            .into_iter()
            .filter(|id| {
                group
                    .members
                    .get(id)
                    .is_some_and(|m| m.instance_id.is_none())
            })
            .collect();
        for id in &dropped {
            group.remove(id);
        }
        if !dropped.is_empty() {
            tracing::info!(group = group_id, members = ?dropped, "removed dynamic members that did not rejoin");
        }
        for id in &dropped {
            self.cancel_heartbeat(group_id, id);
        }
        let Some(group) = self.groups.get_mut(group_id) else {
            return Outcome::just(());
        };
        if group.is(GroupState::Dead) {
            return Outcome::just(());
        }
        if !group.maybe_elect_new_joined_leader() && !group.members.is_empty() {
            // Nobody rejoined: wait another rebalance timeout, until session expiry
            // removes the silent members.
            let timeout = group.rebalance_timeout_ms();
            self.timers.schedule(
                join_key(group_id),
                now.mono_ms.saturating_add(i64::from(timeout)),
                TimerAction::CompleteJoin,
            );
            return Outcome::just(());
        }
        group.init_next_generation(now.wall_ms);
        if group.is_empty() {
            tracing::info!(
                group = group_id,
                generation = group.generation,
                "group is now empty"
            );
            let record =
                Record::group_metadata(group_id, Some(group.to_record_value(&BTreeMap::new())));
            return Outcome {
                records: vec![record],
                replay: false,
                response: (),
                then: Some(Box::new(|_, _, result| {
                    if let Err(code) = result {
                        tracing::warn!(?code, "could not write the metadata of an emptied group");
                    }
                })),
            };
        }
        tracing::info!(
            group = group_id,
            generation = group.generation,
            members = group.members.len(),
            "stabilized group"
        );
        let members = group.leader_member_list();
        let ids: Vec<(String, i32)> = group
            .members
            .values()
            .map(|m| (m.id.clone(), m.session_timeout_ms))
            .collect();
        for (id, _) in &ids {
            let response = JoinGroupResponse {
                members: if group.is_leader(id) {
                    members.clone()
                } else {
                    Vec::new()
                },
                member_id: id.clone(),
                generation_id: group.generation,
                protocol_name: group.protocol_name.clone(),
                protocol_type: group.protocol_type.clone(),
                leader: group.leader.clone().unwrap_or_default(),
                skip_assignment: false,
                ..JoinGroupResponse::default()
            };
            group.complete_join(id, response);
            if let Some(m) = group.members.get_mut(id) {
                m.is_new = false;
            }
            group.add_pending_sync(id);
        }
        let (generation, timeout) = (group.generation, group.rebalance_timeout_ms());
        for (id, session) in ids {
            self.schedule_heartbeat(group_id, &id, session, now);
        }
        self.timers.schedule(
            TimerKey::Sync {
                group: group_id.to_owned(),
            },
            now.mono_ms.saturating_add(i64::from(timeout)),
            TimerAction::ExpireSync { generation },
        );
        Outcome::just(())
    }

    /// A member's session timer fired: a pending member id is dropped; a member
    /// that neither heartbeated nor waits on the coordinator is removed.
    pub(crate) fn expire_heartbeat(
        &mut self,
        group_id: &str,
        member_id: &str,
        now: Now,
    ) -> Outcome<()> {
        let Some(group) = self.groups.get_mut(group_id) else {
            return Outcome::just(());
        };
        if group.is(GroupState::Dead) {
            return Outcome::just(());
        }
        if group.is_pending_member(member_id) {
            tracing::info!(
                group = group_id,
                member = member_id,
                "pending member expired"
            );
            group.remove(member_id);
            if group.is(GroupState::PreparingRebalance) && group.has_all_members_joined() {
                return self.complete_join(group_id, now);
            }
            return Outcome::just(());
        }
        match group.members.get(member_id) {
            None => Outcome::just(()),
            Some(m) if m.has_satisfied_heartbeat() => Outcome::just(()),
            Some(_) => {
                tracing::info!(
                    group = group_id,
                    member = member_id,
                    "member session expired"
                );
                self.remove_member_and_update_group(group_id, member_id, now)
            }
        }
    }

    /// Removes a member (expired or gone) and rebalances what is left. A parked
    /// JoinGroup of the member is answered UNKNOWN_MEMBER_ID, so a live client
    /// rejoins.
    fn remove_member_and_update_group(
        &mut self,
        group_id: &str,
        member_id: &str,
        now: Now,
    ) -> Outcome<()> {
        let Some(group) = self.groups.get_mut(group_id) else {
            return Outcome::just(());
        };
        group.complete_join(member_id, unknown_member_join());
        group.remove(member_id);
        match group.state() {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance_or_complete_join(group_id, now)
            }
            GroupState::PreparingRebalance if group.has_all_members_joined() => {
                self.complete_join(group_id, now)
            }
            _ => Outcome::just(()),
        }
    }

    /// The SyncGroup deadline of `generation` passed: members that never sent
    /// SyncGroup are removed and the group rebalances.
    pub(crate) fn expire_pending_sync(
        &mut self,
        group_id: &str,
        generation: i32,
        now: Now,
    ) -> Outcome<()> {
        let Some(group) = self.groups.get_mut(group_id) else {
            return Outcome::just(());
        };
        if generation != group.generation
            || !matches!(
                group.state(),
                GroupState::CompletingRebalance | GroupState::Stable
            )
            || group.has_received_sync_from_all()
        {
            return Outcome::just(());
        }
        let pending = group.pending_sync_members();
        for id in &pending {
            group.remove(id);
        }
        tracing::info!(group = group_id, members = ?pending, "removed members that did not send SyncGroup");
        for id in &pending {
            self.cancel_heartbeat(group_id, id);
        }
        self.prepare_rebalance(group_id, now)
    }

    /// After answering parked SyncGroups: restarts the session of each member that
    /// was answered (an expiry while it waited was ignored, so its client is held to
    /// its session from now on).
    pub(crate) fn reschedule_answered(
        &mut self,
        group_id: &str,
        answered: Vec<(String, i32)>,
        now: Now,
    ) {
        for (id, session) in answered {
            self.schedule_heartbeat(group_id, &id, session, now);
        }
    }

    /// Hands `assignment` to every member (empty for members it leaves out) and
    /// answers their parked SyncGroups.
    pub(crate) fn set_and_propagate_assignment(
        &mut self,
        group_id: &str,
        assignment: &BTreeMap<String, Bytes>,
        now: Now,
    ) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        for m in group.members.values_mut() {
            m.assignment = assignment.get(&m.id).cloned().unwrap_or_default();
        }
        let answered = propagate_assignment(group, ErrorCode::None);
        self.reschedule_answered(group_id, answered, now);
    }
}

/// Clears every assignment and answers parked SyncGroups with `error`; returns the
/// members answered, with their session timeouts.
pub(crate) fn reset_and_propagate_assignment_with_error(
    group: &mut ClassicGroup,
    error: ErrorCode,
) -> Vec<(String, i32)> {
    for m in group.members.values_mut() {
        m.assignment = Bytes::new();
    }
    propagate_assignment(group, error)
}

/// Answers each parked SyncGroup with the member's assignment (protocol type and
/// name only on success); returns the members answered, with their session
/// timeouts.
fn propagate_assignment(group: &mut ClassicGroup, error: ErrorCode) -> Vec<(String, i32)> {
    let ok = error == ErrorCode::None;
    let (protocol_type, protocol_name) = if ok {
        (group.protocol_type.clone(), group.protocol_name.clone())
    } else {
        (None, None)
    };
    let answers: Vec<(String, Bytes, i32)> = group
        .members
        .values()
        .map(|m| (m.id.clone(), m.assignment.clone(), m.session_timeout_ms))
        .collect();
    let mut answered = Vec::new();
    for (id, assignment, session) in answers {
        let response = SyncGroupResponse {
            error_code: error.code(),
            protocol_type: protocol_type.clone(),
            protocol_name: protocol_name.clone(),
            assignment,
            ..SyncGroupResponse::default()
        };
        if group.complete_sync(&id, response) {
            answered.push((id, session));
        }
    }
    answered
}

/// The timer key of a group's join phase.
pub(crate) fn join_key(group_id: &str) -> TimerKey {
    TimerKey::Join {
        group: group_id.to_owned(),
    }
}

/// The JoinGroup answer to a member that was removed: rejoin from scratch.
pub(crate) fn unknown_member_join() -> JoinGroupResponse {
    error_join(ErrorCode::UnknownMemberId, "")
}

/// A failed JoinGroup answer.
pub(crate) fn error_join(error: ErrorCode, member_id: &str) -> JoinGroupResponse {
    JoinGroupResponse {
        error_code: error.code(),
        generation_id: -1,
        member_id: member_id.to_owned(),
        ..JoinGroupResponse::default()
    }
}
