//! FindCoordinator: which broker coordinates a group (v0-6; v4+ asks for several
//! keys at once).
//!
//! The coordinator of a group is the leader of its `__consumer_offsets` partition.
//! The topic is created on the first lookup, as Kafka does; unlike Kafka, which
//! answers that first lookup COORDINATOR_NOT_AVAILABLE and lets the client retry,
//! this waits (briefly) for the new partitions to be served and answers at once.
//!
//! Transaction coordinators (key type 1) do not exist yet: UNSUPPORTED_VERSION, the
//! error InitProducerId also gives a transactional producer, fatal in clients
//! because retrying cannot help. Share groups (key type 2) and unknown key types
//! are INVALID_REQUEST, as Kafka answers them without a share coordinator.

use std::time::Duration;

use weir_protocol::messages::find_coordinator::{
    Coordinator, FindCoordinatorRequest, FindCoordinatorResponse,
};
use weir_types::ErrorCode;

use super::metadata::brokers;
use super::{ApiState, RequestContext};
use crate::coordinator::{ensure_offsets_topic, OFFSETS_TOPIC};

/// Key type of a consumer group.
const GROUP_KEY: i8 = 0;
/// Key type of a transactional id.
const TRANSACTION_KEY: i8 = 1;

/// How long a lookup waits for the group's partition to be loaded, so the first
/// JoinGroup is not told COORDINATOR_LOAD_IN_PROGRESS.
const LOAD_WAIT: Duration = Duration::from_secs(5);

/// Answers a FindCoordinator request.
pub(super) async fn handle(
    state: &ApiState,
    rc: RequestContext<'_>,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let version = rc.version();
    if version >= 4 {
        let mut coordinators = Vec::with_capacity(request.coordinator_keys.len());
        for key in request.coordinator_keys {
            coordinators.push(find(state, rc, request.key_type, key).await);
        }
        return FindCoordinatorResponse {
            coordinators,
            ..FindCoordinatorResponse::default()
        };
    }
    let c = find(state, rc, request.key_type, request.key).await;
    FindCoordinatorResponse {
        error_code: c.error_code,
        error_message: c.error_message,
        node_id: c.node_id,
        host: c.host,
        port: c.port,
        ..FindCoordinatorResponse::default()
    }
}

/// The coordinator of one key, or why there is none (node -1, no address).
async fn find(state: &ApiState, rc: RequestContext<'_>, key_type: i8, key: String) -> Coordinator {
    let failed = |key: String, code: ErrorCode, message: &str| Coordinator {
        key,
        node_id: -1,
        host: String::new(),
        port: -1,
        error_code: code.code(),
        error_message: Some(message.to_owned()),
    };
    match key_type {
        GROUP_KEY => {}
        TRANSACTION_KEY => {
            return failed(
                key,
                ErrorCode::UnsupportedVersion,
                "transactions are not supported by this broker",
            )
        }
        _ => {
            return failed(
                key,
                ErrorCode::InvalidRequest,
                "unsupported coordinator key type",
            )
        }
    }
    if let Err(e) =
        ensure_offsets_topic(&state.controller, &state.replicas, state.groups.config()).await
    {
        tracing::warn!(error = %e, "FindCoordinator cannot create the offsets topic");
        return failed(key, e.error_code(), &e.to_string());
    }
    let partition = state.groups.partition_for(&key);
    let image = state.served_image().await;
    let leader = image
        .partition(OFFSETS_TOPIC, partition)
        .map_or(-1, |p| p.leader_id());
    let endpoint = brokers(state, &image, &rc.connection.listener)
        .into_iter()
        .find(|b| b.node_id == leader);
    let Some(endpoint) = endpoint else {
        return failed(
            key,
            ErrorCode::CoordinatorNotAvailable,
            "the group's coordinator is not available",
        );
    };
    if leader == state.node_id().get()
        && !state.groups.wait_serving(partition, Duration::ZERO).await
    {
        state.groups.load(partition);
        state.groups.wait_serving(partition, LOAD_WAIT).await;
    }
    Coordinator {
        key,
        node_id: endpoint.node_id,
        host: endpoint.host,
        port: endpoint.port,
        error_code: ErrorCode::None.code(),
        error_message: None,
    }
}
