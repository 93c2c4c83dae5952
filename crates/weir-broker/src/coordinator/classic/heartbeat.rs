//! Heartbeat: a member says it is alive; the answer tells it whether to rejoin.
//!
//! The error codes are Kafka's, in Kafka's order: UNKNOWN_MEMBER_ID for a group or
//! member that does not exist (or an empty group), FENCED_INSTANCE_ID for a static
//! member replaced by a newer instance, ILLEGAL_GENERATION for an old generation,
//! REBALANCE_IN_PROGRESS while the group waits for members to rejoin.

use weir_protocol::messages::heartbeat::{HeartbeatRequest, HeartbeatResponse};
use weir_types::ErrorCode;

use crate::coordinator::group::GroupState;
use crate::coordinator::shard::{Now, Outcome, Shard};

impl Shard {
    /// Handles a Heartbeat; a valid one restarts the member's session.
    pub(crate) fn heartbeat(
        &mut self,
        request: &HeartbeatRequest,
        now: Now,
    ) -> Outcome<HeartbeatResponse> {
        let answer = |code: ErrorCode| {
            Outcome::just(HeartbeatResponse {
                error_code: code.code(),
                ..HeartbeatResponse::default()
            })
        };
        let Some(group) = self.groups.get(&request.group_id) else {
            return answer(ErrorCode::UnknownMemberId);
        };
        if group.is(GroupState::Dead) {
            return answer(ErrorCode::CoordinatorNotAvailable);
        }
        if let Err(code) =
            group.validate_member(&request.member_id, request.group_instance_id.as_deref())
        {
            return answer(code);
        }
        if request.generation_id != group.generation {
            return answer(ErrorCode::IllegalGeneration);
        }
        let session = group
            .members
            .get(&request.member_id)
            .map_or(0, |m| m.session_timeout_ms);
        let code = match group.state() {
            GroupState::Empty | GroupState::Dead => return answer(ErrorCode::UnknownMemberId),
            GroupState::PreparingRebalance => ErrorCode::RebalanceInProgress,
            // Clients heartbeat from their JoinGroup answer on, before SyncGroup.
            GroupState::CompletingRebalance | GroupState::Stable => ErrorCode::None,
        };
        self.schedule_heartbeat(&request.group_id, &request.member_id, session, now);
        answer(code)
    }
}
