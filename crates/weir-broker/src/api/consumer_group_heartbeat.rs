//! ConsumerGroupHeartbeat (v0-v1, KIP-848): the consumer group protocol of Kafka 4
//! clients (`group.protocol=consumer`). One request joins, heartbeats, changes the
//! subscription (topic names, and from v1 a regular expression the coordinator
//! resolves), reports released partitions, or leaves; the answer carries the
//! member epoch and, when it changed, the member's assignment. It is answered once
//! its records are durable.

use weir_protocol::messages::consumer_group_heartbeat::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
};

use super::{ApiState, Handled, RequestContext};
use crate::coordinator::JoinContext;

/// Answers a ConsumerGroupHeartbeat request.
pub(super) async fn handle(
    state: &ApiState,
    rc: RequestContext<'_>,
    request: ConsumerGroupHeartbeatRequest,
) -> Handled {
    let ctx = JoinContext {
        client_id: rc.header.client_id.clone().unwrap_or_default(),
        client_host: format!("/{}", rc.connection.peer.ip()),
        api_version: rc.version(),
    };
    let reply = state.groups.consumer_group_heartbeat(ctx, request).await;
    Handled::Later(Box::pin(async move {
        let failed =
            |code: weir_types::ErrorCode, message: String| ConsumerGroupHeartbeatResponse {
                error_code: code.code(),
                error_message: Some(message),
                ..ConsumerGroupHeartbeatResponse::default()
            };
        match reply.await {
            Ok(Ok(response)) => response.into(),
            Ok(Err((code, message))) => failed(code, message).into(),
            Err(e) => failed(e.error_code(), e.to_string()).into(),
        }
    }))
}
