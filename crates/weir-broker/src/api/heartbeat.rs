//! Heartbeat (v0-4): a member's sign of life, and how it learns of a rebalance.
//!
//! While the group's partition is still loading the answer is a blind success, as
//! in Kafka: the member's session is not in danger before the group exists again,
//! and an error would only make it rejoin needlessly.

use weir_protocol::messages::heartbeat::{HeartbeatRequest, HeartbeatResponse};
use weir_types::ErrorCode;

use super::ApiState;

/// Answers a Heartbeat request.
pub(super) async fn handle(state: &ApiState, request: HeartbeatRequest) -> HeartbeatResponse {
    match state.groups.heartbeat(request).await {
        Ok(response) => response,
        Err(e) => {
            let code = match e.error_code() {
                ErrorCode::CoordinatorLoadInProgress => ErrorCode::None,
                other => other,
            };
            HeartbeatResponse {
                error_code: code.code(),
                ..HeartbeatResponse::default()
            }
        }
    }
}
