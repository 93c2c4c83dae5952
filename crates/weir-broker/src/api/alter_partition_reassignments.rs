//! AlterPartitionReassignments: start, change or cancel replica moves (KIP-455).
//!
//! The controller checks each target (INVALID_REPLICA_ASSIGNMENT for an empty
//! list, duplicates or a broker that is not registered; UNKNOWN_TOPIC_OR_PARTITION
//! for a partition that does not exist; NO_REASSIGNMENT_IN_PROGRESS for a cancel
//! with nothing to cancel; INVALID_REQUEST for a partition named twice) and writes
//! the changes: the new replicas are added, and once they are in the ISR the old
//! ones leave (completing at once when every target is in sync already). A null
//! replica list cancels the partition's reassignment.
//!
//! v1 adds `allow_replication_factor_change` (KIP-860): when false, a target whose
//! length differs from the partition's replication factor (its replicas without
//! any being added) is INVALID_REPLICATION_FACTOR, checked here against this
//! broker's image as Kafka's controller checks it; the response echoes the flag.
//! The top-level error is set when the request as a whole failed (the controller
//! unreachable), and then every partition carries it too. Accepted changes are
//! answered once this broker has applied them (bounded by `timeout_ms`).

use std::time::Duration;

use weir_types::ErrorCode;

use super::{errors, topic_groups, ApiState};
use weir_metadata::controller::{ApiError, PartitionResult, Reassignment, TopicPartition};
use weir_metadata::MetadataImage;
use weir_protocol::messages::alter_partition_reassignments::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
    ReassignablePartitionResponse, ReassignableTopicResponse,
};

/// The longest an AlterPartitionReassignments waits for its changes to be applied.
const MAX_APPLY_WAIT: Duration = Duration::from_secs(30);

/// Answers an AlterPartitionReassignments request.
pub(super) async fn handle(
    state: &ApiState,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let reassignments: Vec<Reassignment> = request
        .topics
        .into_iter()
        .flat_map(|t| {
            let topic = t.name;
            t.partitions.into_iter().map(move |p| Reassignment {
                partition: TopicPartition {
                    topic: topic.clone(),
                    partition: p.partition_index,
                },
                replicas: p.replicas,
            })
        })
        .collect();
    let order: Vec<TopicPartition> = reassignments.iter().map(|r| r.partition.clone()).collect();
    let allow_rf_change = request.allow_replication_factor_change;
    let image = state.controller.image();
    let (reassignments, refused): (Vec<_>, Vec<_>) = reassignments
        .into_iter()
        .map(|r| match rf_change_refused(&image, &r, allow_rf_change) {
            Some(error) => Err(PartitionResult {
                partition: r.partition,
                error,
            }),
            None => Ok(r),
        })
        .partition(Result::is_ok);
    let reassignments: Vec<Reassignment> = reassignments.into_iter().flatten().collect();
    let refused: Vec<PartitionResult> = refused.into_iter().filter_map(Result::err).collect();
    if reassignments.is_empty() {
        return respond(&ApiError::NONE, refused, allow_rf_change);
    }
    let named: Vec<TopicPartition> = reassignments.iter().map(|r| r.partition.clone()).collect();
    let mut results = match state
        .controller
        .alter_partition_reassignments(reassignments)
        .await
    {
        Ok(results) => results,
        Err(e) => {
            let error = errors::controller(&e);
            let results = named
                .into_iter()
                .map(|partition| PartitionResult {
                    partition,
                    error: error.clone(),
                })
                .chain(refused)
                .collect();
            return respond(&error, results, allow_rf_change);
        }
    };
    if results.iter().any(|r| r.error.is_success()) && request.timeout_ms > 0 {
        let wait = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0));
        state.wait_applied(wait.min(MAX_APPLY_WAIT)).await;
    }
    results.extend(refused);
    // Back in request order (those refused here were set aside).
    results.sort_by_key(|r| order.iter().position(|tp| *tp == r.partition));
    respond(&ApiError::NONE, results, allow_rf_change)
}

/// INVALID_REPLICATION_FACTOR when `r` would change its partition's replication
/// factor and the request does not allow it. Cancels and partitions that do not
/// exist are left to the controller.
fn rf_change_refused(image: &MetadataImage, r: &Reassignment, allow: bool) -> Option<ApiError> {
    let target = r.replicas.as_ref().filter(|_| !allow)?;
    let p = image.partition(&r.partition.topic, r.partition.partition)?;
    let current = p
        .replicas
        .iter()
        .filter(|n| !p.adding_replicas.contains(n))
        .count();
    (current != target.len()).then(|| {
        ApiError::new(
            ErrorCode::InvalidReplicationFactor,
            format!(
                "The replication factor is changed from {current} to {} but \
                 allowReplicationFactorChange is false.",
                target.len()
            ),
        )
    })
}

/// The response: `top` as the request's error, each partition's result, and the
/// request's `allow_replication_factor_change` echoed (v1+).
fn respond(
    top: &ApiError,
    results: Vec<PartitionResult>,
    allow_replication_factor_change: bool,
) -> AlterPartitionReassignmentsResponse {
    let grouped = topic_groups::by_topic(results.into_iter().map(|r| {
        let result = ReassignablePartitionResponse {
            partition_index: r.partition.partition,
            error_code: r.error.code.code(),
            error_message: errors::message(&r.error),
        };
        (r.partition.topic, result)
    }));
    AlterPartitionReassignmentsResponse {
        throttle_time_ms: 0,
        allow_replication_factor_change,
        error_code: top.code.code(),
        error_message: errors::message(top),
        responses: grouped
            .into_iter()
            .map(|(name, partitions)| ReassignableTopicResponse { name, partitions })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_has_no_top_level_message() {
        let r = respond(
            &ApiError::NONE,
            vec![PartitionResult {
                partition: TopicPartition {
                    topic: "t".into(),
                    partition: 3,
                },
                error: ApiError::from_code(ErrorCode::UnknownTopicOrPartition),
            }],
            true,
        );
        assert_eq!((r.error_code, r.error_message), (0, None));
        let p = &r.responses[0].partitions[0];
        assert_eq!(p.partition_index, 3);
        assert_eq!(p.error_code, ErrorCode::UnknownTopicOrPartition.code());
        assert!(p.error_message.is_some());
    }
}
