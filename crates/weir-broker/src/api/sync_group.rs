//! SyncGroup (v0-5): members collect their assignment; the leader brings it.
//!
//! From v5 the protocol type and name are mandatory (INCONSISTENT_GROUP_PROTOCOL
//! without them, as Kafka checks before the coordinator). Followers wait for the
//! leader, and everyone waits for the generation to be written: a deferred reply.

use weir_protocol::messages::sync_group::{SyncGroupRequest, SyncGroupResponse};
use weir_types::ErrorCode;

use super::{ApiState, Handled};

/// Answers a SyncGroup request.
pub(super) async fn handle(state: &ApiState, request: SyncGroupRequest, version: i16) -> Handled {
    if version >= 5 && (request.protocol_type.is_none() || request.protocol_name.is_none()) {
        return Handled::now(error(ErrorCode::InconsistentGroupProtocol));
    }
    let reply = state.groups.sync_group(request).await;
    Handled::Later(Box::pin(async move {
        reply.await.unwrap_or_else(|e| error(e.error_code())).into()
    }))
}

fn error(code: ErrorCode) -> SyncGroupResponse {
    SyncGroupResponse {
        error_code: code.code(),
        ..SyncGroupResponse::default()
    }
}
