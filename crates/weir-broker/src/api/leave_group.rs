//! LeaveGroup (v0-5): members leave at once instead of waiting out their session.
//!
//! v0-2 name one member and have one error code; v3+ name a batch of members
//! (KIP-345) and answer each, with a top-level error only for the group as a whole.

use weir_protocol::messages::leave_group::{LeaveGroupRequest, LeaveGroupResponse, MemberIdentity};
use weir_types::ErrorCode;

use super::{ApiState, Handled};

/// Answers a LeaveGroup request.
pub(super) async fn handle(state: &ApiState, request: LeaveGroupRequest, version: i16) -> Handled {
    let members = if version <= 2 {
        vec![MemberIdentity {
            member_id: request.member_id,
            ..MemberIdentity::default()
        }]
    } else {
        request.members
    };
    let reply = state.groups.leave_group(request.group_id, members).await;
    Handled::Later(Box::pin(async move {
        let response = reply.await.unwrap_or_else(|e| LeaveGroupResponse {
            error_code: e.error_code().code(),
            ..LeaveGroupResponse::default()
        });
        shape(response, version).into()
    }))
}

/// v0-2 have no member list: the top-level error, else the member's.
fn shape(response: LeaveGroupResponse, version: i16) -> LeaveGroupResponse {
    if version > 2 {
        return response;
    }
    let code = if response.error_code != ErrorCode::None.code() {
        response.error_code
    } else {
        response
            .members
            .iter()
            .map(|m| m.error_code)
            .find(|c| *c != ErrorCode::None.code())
            .unwrap_or(ErrorCode::None.code())
    };
    LeaveGroupResponse {
        error_code: code,
        ..LeaveGroupResponse::default()
    }
}
