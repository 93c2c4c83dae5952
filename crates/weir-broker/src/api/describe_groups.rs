//! DescribeGroups (v0-5): state, protocol, members and assignments of groups.
//!
//! A group that does not exist is described as "Dead" without an error, as Kafka
//! answers before v6. Authorized operations (v3+) are all of a group's operations:
//! Weir has no authorizer.

use weir_protocol::messages::describe_groups::{DescribeGroupsRequest, DescribeGroupsResponse};

use super::ApiState;

/// READ (3), DELETE (6) and DESCRIBE (8): what a group allows without an
/// authorizer.
const GROUP_AUTHORIZED_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

/// Answers a DescribeGroups request.
pub(super) async fn handle(
    state: &ApiState,
    request: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let mut groups = state.groups.describe_groups(&request.groups).await;
    if version >= 3 && request.include_authorized_operations {
        for g in groups.iter_mut().filter(|g| g.error_code == 0) {
            g.authorized_operations = GROUP_AUTHORIZED_OPERATIONS;
        }
    }
    DescribeGroupsResponse {
        groups,
        ..DescribeGroupsResponse::default()
    }
}
