//! LeaveGroup: members leave at once instead of waiting out their session.
//!
//! v3+ carries a batch of members (KIP-345), each by member id or, for an admin
//! removing static members, by instance id alone; each gets its own error code.
//! Those that left trigger one rebalance for all of them.

use weir_protocol::messages::leave_group::{LeaveGroupResponse, MemberIdentity, MemberResponse};
use weir_types::ErrorCode;

use super::unknown_member_join;
use crate::coordinator::group::GroupState;
use crate::coordinator::shard::{Now, Outcome, Shard};

impl Shard {
    /// Handles a LeaveGroup for `members` (v0-2 requests are one member without an
    /// instance id).
    pub(crate) fn leave(
        &mut self,
        group_id: &str,
        members: &[MemberIdentity],
        now: Now,
    ) -> Outcome<LeaveGroupResponse> {
        let Some(group) = self.groups.get(group_id) else {
            // Kafka answers a missing group with UNKNOWN_MEMBER_ID for each member.
            let members = members
                .iter()
                .map(|m| MemberResponse {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    error_code: ErrorCode::UnknownMemberId.code(),
                })
                .collect();
            return Outcome::just(LeaveGroupResponse {
                members,
                ..LeaveGroupResponse::default()
            });
        };
        if group.is(GroupState::Dead) {
            return Outcome::just(LeaveGroupResponse {
                error_code: ErrorCode::CoordinatorNotAvailable.code(),
                ..LeaveGroupResponse::default()
            });
        }
        let mut responses = Vec::with_capacity(members.len());
        let mut left = 0usize;
        for identity in members {
            let code = self.leave_one(group_id, identity);
            if code == ErrorCode::None {
                left += 1;
            }
            responses.push(MemberResponse {
                member_id: identity.member_id.clone(),
                group_instance_id: identity.group_instance_id.clone(),
                error_code: code.code(),
            });
        }
        let outcome = if left == 0 {
            Outcome::just(())
        } else {
            match self.group_state(group_id) {
                GroupState::Stable | GroupState::CompletingRebalance => {
                    self.maybe_prepare_rebalance_or_complete_join(group_id, now)
                }
                GroupState::PreparingRebalance => self.maybe_complete_join_phase(group_id, now),
                _ => Outcome::just(()),
            }
        };
        outcome.map(|()| LeaveGroupResponse {
            members: responses,
            ..LeaveGroupResponse::default()
        })
    }

    /// Removes one member; its error code.
    fn leave_one(&mut self, group_id: &str, identity: &MemberIdentity) -> ErrorCode {
        let Some(group) = self.groups.get_mut(group_id) else {
            return ErrorCode::UnknownMemberId;
        };
        let instance = identity.group_instance_id.as_deref();
        if identity.member_id.is_empty() {
            // Removal of a static member by instance id (an admin tool).
            let Some(member_id) = instance
                .and_then(|i| group.static_member_id(i))
                .map(str::to_owned)
            else {
                return ErrorCode::UnknownMemberId;
            };
            self.remove_current_member(group_id, &member_id);
            return ErrorCode::None;
        }
        if group.is_pending_member(&identity.member_id) {
            group.remove(&identity.member_id);
            self.cancel_heartbeat(group_id, &identity.member_id);
            return ErrorCode::None;
        }
        if let Err(code) = group.validate_member(&identity.member_id, instance) {
            return code;
        }
        self.remove_current_member(group_id, &identity.member_id);
        ErrorCode::None
    }

    /// Removes a member that left; a parked JoinGroup of it is answered
    /// UNKNOWN_MEMBER_ID.
    fn remove_current_member(&mut self, group_id: &str, member_id: &str) {
        self.cancel_heartbeat(group_id, member_id);
        if let Some(group) = self.groups.get_mut(group_id) {
            tracing::info!(
                group = group_id,
                member = member_id,
                "member left the group"
            );
            group.complete_join(member_id, unknown_member_join());
            group.remove(member_id);
        }
    }
}
