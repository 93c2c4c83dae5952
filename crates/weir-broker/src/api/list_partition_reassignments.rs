//! ListPartitionReassignments: the replica moves in progress (KIP-455).
//!
//! Null `topics` lists every ongoing reassignment; named partitions that do not
//! exist or have none in progress are left out, as in Kafka's KRaft controller.
//! Each entry carries the current replicas (targets and those being removed) and
//! the replicas being added and removed. The top-level error is set only when the
//! controller could not be asked.

use weir_metadata::controller::TopicPartition;
use weir_protocol::messages::list_partition_reassignments::{
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
    OngoingPartitionReassignment, OngoingTopicReassignment,
};

use super::{errors, topic_groups, ApiState};

/// Answers a ListPartitionReassignments request.
pub(super) async fn handle(
    state: &ApiState,
    request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let partitions: Option<Vec<TopicPartition>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .flat_map(|t| {
                let topic = t.name;
                t.partition_indexes
                    .into_iter()
                    .map(move |partition| TopicPartition {
                        topic: topic.clone(),
                        partition,
                    })
            })
            .collect()
    });
    if partitions.as_ref().is_some_and(Vec::is_empty) {
        return ListPartitionReassignmentsResponse::default();
    }
    let ongoing = match state
        .controller
        .list_partition_reassignments(partitions)
        .await
    {
        Ok(ongoing) => ongoing,
        Err(e) => {
            let error = errors::controller(&e);
            return ListPartitionReassignmentsResponse {
                error_code: error.code.code(),
                error_message: errors::message(&error),
                ..ListPartitionReassignmentsResponse::default()
            };
        }
    };
    let grouped = topic_groups::by_topic(ongoing.into_iter().map(|o| {
        let partition = OngoingPartitionReassignment {
            partition_index: o.partition.partition,
            replicas: o.replicas,
            adding_replicas: o.adding_replicas,
            removing_replicas: o.removing_replicas,
        };
        (o.partition.topic, partition)
    }));
    ListPartitionReassignmentsResponse {
        topics: grouped
            .into_iter()
            .map(|(name, partitions)| OngoingTopicReassignment { name, partitions })
            .collect(),
        ..ListPartitionReassignmentsResponse::default()
    }
}
