//! SyncGroup: members collect their assignment for the new generation.
//!
//! Followers' SyncGroups are parked until the leader's arrives with the
//! assignments; then the group's metadata (every member with its assignment) is
//! written, and only once that is durable are the assignments handed out and the
//! group Stable, as in Kafka: a generation nobody could read back after a restart
//! must not be acted on.

use std::collections::BTreeMap;

use bytes::Bytes;
use tokio::sync::oneshot;
use weir_protocol::messages::sync_group::{SyncGroupRequest, SyncGroupResponse};
use weir_types::ErrorCode;

use super::reset_and_propagate_assignment_with_error;
use crate::coordinator::group::GroupState;
use crate::coordinator::records::Record;
use crate::coordinator::shard::{Now, Outcome, Shard};
use crate::coordinator::timers::TimerKey;

/// Where the SyncGroup answer arrives.
pub(crate) type SyncReply = oneshot::Receiver<SyncGroupResponse>;

/// A failed SyncGroup answer.
fn error_sync(error: ErrorCode) -> SyncGroupResponse {
    SyncGroupResponse {
        error_code: error.code(),
        ..SyncGroupResponse::default()
    }
}

/// Whether the request names a protocol type or name other than the group's (a
/// missing one on either side is not a conflict).
fn inconsistent(requested: Option<&str>, group: Option<&str>) -> bool {
    matches!((requested, group), (Some(r), Some(g)) if r != g)
}

impl Shard {
    /// Handles a SyncGroup (Kafka's `classicGroupSyncToClassicGroup`).
    pub(crate) fn sync(&mut self, request: &SyncGroupRequest, now: Now) -> Outcome<SyncReply> {
        let (tx, rx) = oneshot::channel();
        let group_id = request.group_id.as_str();
        let member_id = request.member_id.as_str();
        let Some(group) = self.groups.get_mut(group_id) else {
            tx.send(error_sync(ErrorCode::UnknownMemberId)).ok();
            return Outcome::just(rx);
        };
        if group.is_empty() {
            tx.send(error_sync(ErrorCode::UnknownMemberId)).ok();
            return Outcome::just(rx);
        }
        let invalid = if group.is(GroupState::Dead) {
            Some(ErrorCode::CoordinatorNotAvailable)
        } else if let Err(code) =
            group.validate_member(member_id, request.group_instance_id.as_deref())
        {
            Some(code)
        } else if request.generation_id != group.generation {
            Some(ErrorCode::IllegalGeneration)
        } else if inconsistent(
            request.protocol_type.as_deref(),
            group.protocol_type.as_deref(),
        ) || inconsistent(
            request.protocol_name.as_deref(),
            group.protocol_name.as_deref(),
        ) {
            Some(ErrorCode::InconsistentGroupProtocol)
        } else {
            None
        };
        if let Some(code) = invalid {
            tx.send(error_sync(code)).ok();
            return Outcome::just(rx);
        }
        match group.state() {
            GroupState::PreparingRebalance => {
                tx.send(error_sync(ErrorCode::RebalanceInProgress)).ok();
                Outcome::just(rx)
            }
            GroupState::CompletingRebalance => {
                if let Some(m) = group.members.get_mut(member_id) {
                    m.set_awaiting_sync(Some(tx));
                }
                let is_leader = group.is_leader(member_id);
                self.remove_pending_sync_member(group_id, member_id);
                if !is_leader {
                    return Outcome::just(rx);
                }
                self.leader_sync(request, now).map(|()| rx)
            }
            GroupState::Stable => {
                self.remove_pending_sync_member(group_id, member_id);
                let answer = self.groups.get(group_id).map(|g| SyncGroupResponse {
                    protocol_type: g.protocol_type.clone(),
                    protocol_name: g.protocol_name.clone(),
                    assignment: g
                        .members
                        .get(member_id)
                        .map(|m| m.assignment.clone())
                        .unwrap_or_default(),
                    ..SyncGroupResponse::default()
                });
                if let Some(answer) = answer {
                    tx.send(answer).ok();
                }
                Outcome::just(rx)
            }
            GroupState::Empty | GroupState::Dead => {
                tx.send(error_sync(ErrorCode::UnknownMemberId)).ok();
                Outcome::just(rx)
            }
        }
    }

    /// The leader's assignments arrived: write the generation, then hand them out.
    fn leader_sync(&mut self, request: &SyncGroupRequest, _now: Now) -> Outcome<()> {
        let group_id = request.group_id.as_str();
        let Some(group) = self.groups.get(group_id) else {
            return Outcome::just(());
        };
        tracing::info!(group = group_id, generation = group.generation, leader = %request.member_id, "assignment received from the leader");
        let mut assignment: BTreeMap<String, Bytes> = request
            .assignments
            .iter()
            .map(|a| (a.member_id.clone(), a.assignment.clone()))
            .collect();
        for id in group.members.keys() {
            assignment.entry(id.clone()).or_default();
        }
        let record = Record::group_metadata(group_id, Some(group.to_record_value(&assignment)));
        let (group_key, generation) = (group_id.to_owned(), request.generation_id);
        Outcome {
            records: vec![record],
            replay: false,
            response: (),
            then: Some(Box::new(move |shard: &mut Shard, now, result| {
                // Members may have joined meanwhile: only a group still waiting for
                // this generation's assignment takes it.
                let Some(group) = shard.groups.get_mut(&group_key) else {
                    return;
                };
                if !group.is(GroupState::CompletingRebalance) || group.generation != generation {
                    return;
                }
                match result {
                    Ok(()) => {
                        shard.set_and_propagate_assignment(&group_key, &assignment, now);
                        if let Some(group) = shard.groups.get_mut(&group_key) {
                            group.transition_to(GroupState::Stable, now.wall_ms);
                        }
                    }
                    Err(code) => {
                        let answered = reset_and_propagate_assignment_with_error(group, code);
                        shard.reschedule_answered(&group_key, answered, now);
                        // As Kafka, the follow-up's own records are not written here.
                        let _ = shard.maybe_prepare_rebalance_or_complete_join(&group_key, now);
                    }
                }
            })),
        }
    }

    /// `member_id` sent SyncGroup; the sync deadline is dropped once nobody is
    /// missing.
    fn remove_pending_sync_member(&mut self, group_id: &str, member_id: &str) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        group.remove_pending_sync(member_id);
        let cancel = match group.state() {
            GroupState::Dead | GroupState::Empty | GroupState::PreparingRebalance => true,
            GroupState::CompletingRebalance | GroupState::Stable => {
                group.has_received_sync_from_all()
            }
        };
        if cancel {
            self.timers.cancel(&TimerKey::Sync {
                group: group_id.to_owned(),
            });
        }
    }
}
