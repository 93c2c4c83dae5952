//! ListGroups (v0-5): the groups this broker coordinates, optionally filtered by
//! state (v4+, case-insensitive) and type (v5+; every group here is "classic").

use super::ApiState;
use weir_protocol::messages::list_groups::{ListGroupsRequest, ListGroupsResponse};

/// Answers a ListGroups request.
pub(super) fn handle(state: &ApiState, request: &ListGroupsRequest) -> ListGroupsResponse {
    let states = request
        .states_filter
        .iter()
        .map(|s| s.trim().to_lowercase())
        .collect();
    let types = request
        .types_filter
        .iter()
        .map(|t| t.trim().to_lowercase())
        .collect();
    match state.groups.list_groups(&states, &types) {
        Ok(groups) => ListGroupsResponse {
            groups,
            ..ListGroupsResponse::default()
        },
        Err(e) => ListGroupsResponse {
            error_code: e.error_code().code(),
            ..ListGroupsResponse::default()
        },
    }
}
