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
//! v0 only: v1's `allow_replication_factor_change` (KIP-860) is not in the schema.
//! The top-level error is set when the request as a whole failed (the controller
//! unreachable), and then every partition carries it too. Accepted changes are
//! answered once this broker has applied them (bounded by `timeout_ms`).

use std::time::Duration;

use super::{errors, topic_groups, ApiState};
use weir_metadata::controller::{ApiError, PartitionResult, Reassignment, TopicPartition};
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
    if reassignments.is_empty() {
        return respond(&ApiError::NONE, Vec::new());
    }
    let named: Vec<TopicPartition> = reassignments.iter().map(|r| r.partition.clone()).collect();
    let results = match state
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
                .collect();
            return respond(&error, results);
        }
    };
    if results.iter().any(|r| r.error.is_success()) && request.timeout_ms > 0 {
        let wait = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0));
        state.wait_applied(wait.min(MAX_APPLY_WAIT)).await;
    }
    respond(&ApiError::NONE, results)
}

fn respond(top: &ApiError, results: Vec<PartitionResult>) -> AlterPartitionReassignmentsResponse {
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
    use weir_types::ErrorCode;

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
        );
        assert_eq!((r.error_code, r.error_message), (0, None));
        let p = &r.responses[0].partitions[0];
        assert_eq!(p.partition_index, 3);
        assert_eq!(p.error_code, ErrorCode::UnknownTopicOrPartition.code());
        assert!(p.error_message.is_some());
    }
}
