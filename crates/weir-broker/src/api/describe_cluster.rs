//! DescribeCluster (KIP-700): the cluster id, the controller and the brokers.
//!
//! The brokers are those Metadata lists, on the listener the request came through.
//! v1 can ask for controllers instead (`endpoint_type` 2, KIP-919); Weir's controller
//! has no listener of its own, so that is answered as a Kafka broker answers it:
//! MISMATCHED_ENDPOINT_TYPE. Other endpoint types are UNSUPPORTED_ENDPOINT_TYPE.

use weir_protocol::messages::describe_cluster::{
    DescribeClusterBroker, DescribeClusterRequest, DescribeClusterResponse,
};
use weir_types::ErrorCode;

use super::metadata::{brokers, CLUSTER_AUTHORIZED_OPERATIONS, OPERATIONS_NOT_REQUESTED};
use super::{ApiState, RequestContext};

/// `endpoint_type`: brokers.
const ENDPOINT_BROKERS: i8 = 1;
/// `endpoint_type`: controllers.
const ENDPOINT_CONTROLLERS: i8 = 2;

/// Answers a DescribeCluster request.
pub(super) async fn handle(
    state: &ApiState,
    rc: RequestContext<'_>,
    request: &DescribeClusterRequest,
) -> DescribeClusterResponse {
    let image = state.served_image().await;
    let base = DescribeClusterResponse {
        endpoint_type: request.endpoint_type,
        cluster_id: image.cluster_id().to_owned(),
        controller_id: state.controller_id(),
        ..DescribeClusterResponse::default()
    };
    if request.endpoint_type != ENDPOINT_BROKERS {
        let (code, message) = if request.endpoint_type == ENDPOINT_CONTROLLERS {
            (
                ErrorCode::MismatchedEndpointType,
                "The request was sent to an endpoint of type BROKER, but we wanted an \
                 endpoint of type CONTROLLER",
            )
        } else {
            (
                ErrorCode::UnsupportedEndpointType,
                "Unsupported endpoint type",
            )
        };
        return DescribeClusterResponse {
            error_code: code.code(),
            error_message: Some(message.to_owned()),
            ..base
        };
    }
    DescribeClusterResponse {
        brokers: brokers(state, &image, &rc.connection.listener)
            .into_iter()
            .map(|b| DescribeClusterBroker {
                broker_id: b.node_id,
                host: b.host,
                port: b.port,
                rack: b.rack,
            })
            .collect(),
        cluster_authorized_operations: if request.include_cluster_authorized_operations {
            CLUSTER_AUTHORIZED_OPERATIONS
        } else {
            OPERATIONS_NOT_REQUESTED
        },
        ..base
    }
}
