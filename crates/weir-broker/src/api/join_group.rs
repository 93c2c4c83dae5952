//! JoinGroup (v0-9): a consumer enters a group or rejoins it for a rebalance.
//!
//! The coordinator changes the group in request order, here; the answer usually
//! waits for the join phase to complete (up to the rebalance timeout), so it is a
//! deferred reply and the connection keeps serving pipelined requests meanwhile.
//! The version shapes the answer: before v7 the protocol name is never null.

use weir_protocol::messages::join_group::{JoinGroupRequest, JoinGroupResponse};

use super::{ApiState, Handled, RequestContext};
use crate::coordinator::JoinContext;

/// Answers a JoinGroup request.
pub(super) async fn handle(
    state: &ApiState,
    rc: RequestContext<'_>,
    request: JoinGroupRequest,
) -> Handled {
    let version = rc.version();
    let ctx = JoinContext {
        client_id: rc.header.client_id.clone().unwrap_or_default(),
        client_host: format!("/{}", rc.connection.peer.ip()),
        api_version: version,
    };
    let reply = state.groups.join_group(ctx, request).await;
    Handled::Later(Box::pin(async move {
        let response = reply.await.unwrap_or_else(|e| JoinGroupResponse {
            error_code: e.error_code().code(),
            generation_id: -1,
            ..JoinGroupResponse::default()
        });
        shape(response, version).into()
    }))
}

/// Kafka's per-version rules for the protocol name: "" before v7 (the field is not
/// nullable there), null instead of "" from v7.
fn shape(mut response: JoinGroupResponse, version: i16) -> JoinGroupResponse {
    if version < 7 && response.protocol_name.is_none() {
        response.protocol_name = Some(String::new());
    }
    if version >= 7 && response.protocol_name.as_deref() == Some("") {
        response.protocol_name = None;
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_name_is_empty_before_v7_and_null_after() {
        let r = shape(JoinGroupResponse::default(), 6);
        assert_eq!(r.protocol_name.as_deref(), Some(""));
        let r = shape(
            JoinGroupResponse {
                protocol_name: Some(String::new()),
                ..JoinGroupResponse::default()
            },
            7,
        );
        assert_eq!(r.protocol_name, None);
    }
}
