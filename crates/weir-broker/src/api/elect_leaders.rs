//! ElectLeaders: move leadership to the preferred replica (PREFERRED, 0), or elect
//! a leader for leaderless partitions from outside the ISR (UNCLEAN, 1).
//!
//! The controller decides per partition and answers as Kafka's does:
//! ELECTION_NOT_NEEDED when the preferred replica already leads (or, for UNCLEAN,
//! when there is a leader), PREFERRED_LEADER_NOT_AVAILABLE when the preferred
//! replica is out of the ISR or not live, ELIGIBLE_LEADERS_NOT_AVAILABLE when no
//! replica can lead, UNKNOWN_TOPIC_OR_PARTITION for a partition that does not
//! exist. Null `topic_partitions` means every partition; the answer then lists only
//! the partitions where an election was tried. v0 has no election type and is
//! PREFERRED; v1+ adds the top-level error code, set when the request as a whole
//! failed (an election type that is not one, or the controller unreachable).
//!
//! An election is answered once this broker has applied it (bounded by
//! `timeout_ms`), so the client's next Metadata shows the new leaders.

use std::collections::BTreeSet;
use std::time::Duration;

use weir_metadata::controller::{ApiError, ElectionType, PartitionResult, TopicPartition};
use weir_protocol::messages::elect_leaders::{
    ElectLeadersRequest, ElectLeadersResponse, PartitionResult as WirePartitionResult,
    ReplicaElectionResult,
};
use weir_types::ErrorCode;

use super::{errors, topic_groups, ApiState};

/// The longest an ElectLeaders waits for its elections to be applied here.
const MAX_APPLY_WAIT: Duration = Duration::from_secs(30);

/// Answers an ElectLeaders request.
pub(super) async fn handle(state: &ApiState, request: ElectLeadersRequest) -> ElectLeadersResponse {
    let partitions = request.topic_partitions.map(named_once);
    let Some(kind) = ElectionType::from_i8(request.election_type) else {
        let error = ApiError::new(
            ErrorCode::InvalidRequest,
            format!("Unknown election type {}.", request.election_type),
        );
        return failed(partitions.unwrap_or_default(), &error);
    };
    if partitions.as_ref().is_some_and(Vec::is_empty) {
        return respond(ErrorCode::None, Vec::new());
    }
    let results = match state
        .controller
        .elect_leaders(kind, partitions.clone())
        .await
    {
        Ok(results) => results,
        Err(e) => return failed(partitions.unwrap_or_default(), &errors::controller(&e)),
    };
    if results.iter().any(|r| r.error.is_success()) && request.timeout_ms > 0 {
        let wait = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0));
        state.wait_applied(wait.min(MAX_APPLY_WAIT)).await;
    }
    respond(ErrorCode::None, results)
}

/// The partitions a request names, each once, in the order first named.
fn named_once(
    topics: Vec<weir_protocol::messages::elect_leaders::TopicPartitions>,
) -> Vec<TopicPartition> {
    let mut seen = BTreeSet::new();
    topics
        .into_iter()
        .flat_map(|t| {
            let topic = t.topic;
            t.partitions
                .into_iter()
                .map(move |partition| TopicPartition {
                    topic: topic.clone(),
                    partition,
                })
        })
        .filter(|tp| seen.insert(tp.clone()))
        .collect()
}

/// The answer to a request that failed as a whole: `error` at the top (v1+) and for
/// every partition it named.
fn failed(partitions: Vec<TopicPartition>, error: &ApiError) -> ElectLeadersResponse {
    let results = partitions
        .into_iter()
        .map(|partition| PartitionResult {
            partition,
            error: error.clone(),
        })
        .collect();
    respond(error.code, results)
}

fn respond(code: ErrorCode, results: Vec<PartitionResult>) -> ElectLeadersResponse {
    let grouped = topic_groups::by_topic(results.into_iter().map(|r| {
        let result = WirePartitionResult {
            partition_id: r.partition.partition,
            error_code: r.error.code.code(),
            error_message: errors::message(&r.error),
        };
        (r.partition.topic, result)
    }));
    ElectLeadersResponse {
        throttle_time_ms: 0,
        error_code: code.code(),
        replica_election_results: grouped
            .into_iter()
            .map(|(topic, partition_result)| ReplicaElectionResult {
                topic,
                partition_result,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use weir_protocol::messages::elect_leaders::TopicPartitions;

    use super::*;

    #[test]
    fn partitions_named_twice_are_elected_once() {
        let named = named_once(vec![
            TopicPartitions {
                topic: "a".into(),
                partitions: vec![0, 1, 0],
            },
            TopicPartitions {
                topic: "a".into(),
                partitions: vec![1, 2],
            },
        ]);
        let got: Vec<i32> = named.iter().map(|tp| tp.partition).collect();
        assert_eq!(got, [0, 1, 2]);
    }

    #[test]
    fn a_failed_request_names_every_partition() {
        let error = ApiError::new(ErrorCode::NotController, "gone");
        let tp = |topic: &str, partition| TopicPartition {
            topic: topic.into(),
            partition,
        };
        let r = failed(vec![tp("a", 0), tp("b", 0), tp("a", 1)], &error);
        assert_eq!(r.error_code, ErrorCode::NotController.code());
        let topics: Vec<(&str, usize)> = r
            .replica_election_results
            .iter()
            .map(|t| (t.topic.as_str(), t.partition_result.len()))
            .collect();
        assert_eq!(topics, [("a", 2), ("b", 1)]);
        let p = &r.replica_election_results[0].partition_result[0];
        assert_eq!(p.error_message.as_deref(), Some("gone"));
    }
}
