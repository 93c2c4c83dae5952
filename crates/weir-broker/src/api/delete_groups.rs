//! DeleteGroups (v0-2): deletes groups without members, with their offsets.
//!
//! NON_EMPTY_GROUP for a group with members, GROUP_ID_NOT_FOUND for one that does
//! not exist; a name given twice is answered once, as Kafka dedups it.

use weir_protocol::messages::delete_groups::{
    DeletableGroupResult, DeleteGroupsRequest, DeleteGroupsResponse,
};

use super::{ApiState, Handled};

/// Answers a DeleteGroups request.
pub(super) async fn handle(state: &ApiState, request: DeleteGroupsRequest) -> Handled {
    let mut names = Vec::with_capacity(request.groups_names.len());
    for name in request.groups_names {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let reply = state.groups.delete_groups(names).await;
    Handled::Later(Box::pin(async move {
        let results = reply
            .await
            .into_iter()
            .map(|(group_id, code)| DeletableGroupResult {
                group_id,
                error_code: code.code(),
            })
            .collect();
        DeleteGroupsResponse {
            results,
            ..DeleteGroupsResponse::default()
        }
        .into()
    }))
}
