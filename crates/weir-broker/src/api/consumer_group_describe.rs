//! ConsumerGroupDescribe (v0, KIP-848): epochs, assignor, and each member's current
//! and target assignment. A group that is not a consumer group is
//! GROUP_ID_NOT_FOUND; authorized operations (when asked) are all of a group's,
//! as Weir has no authorizer.

use weir_protocol::messages::consumer_group_describe::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse,
};

use super::ApiState;

/// READ (3), DELETE (6) and DESCRIBE (8).
const GROUP_AUTHORIZED_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

/// Answers a ConsumerGroupDescribe request.
pub(super) async fn handle(
    state: &ApiState,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let mut groups = state
        .groups
        .consumer_group_describe(&request.group_ids)
        .await;
    if request.include_authorized_operations {
        for g in groups.iter_mut().filter(|g| g.error_code == 0) {
            g.authorized_operations = GROUP_AUTHORIZED_OPERATIONS;
        }
    }
    ConsumerGroupDescribeResponse {
        groups,
        ..ConsumerGroupDescribeResponse::default()
    }
}
