//! CreateTopics: new topics with a partition count or explicit assignments.
//!
//! The controller validates each topic (name, partition count and replication
//! factor with -1 meaning the broker default (KIP-464), assignments, configs through
//! the log's config parser) and writes the ones that pass as one batch; this handler
//! copies the fields across, refuses names listed twice (INVALID_REQUEST, as Kafka),
//! and copies the results back with their messages. v5+ results carry the new
//! topic's partition count, replication factor and full effective configuration, so
//! a client need not DescribeConfigs right after. `validate_only` gets the same
//! answers without creating anything.
//!
//! A creation is answered once this broker serves the new partitions (bounded by the
//! request's `timeout_ms`), so the client's next Produce finds them.

use std::collections::BTreeMap;
use std::time::Duration;

use weir_metadata::controller::{ApiError, CreateTopic, CreateTopicResult, ReplicaAssignment};
use weir_metadata::Uuid;
use weir_protocol::messages::create_topics::{
    CreatableTopic, CreatableTopicConfigs, CreatableTopicResult, CreateTopicsRequest,
    CreateTopicsResponse,
};
use weir_types::ErrorCode;

use super::{errors, ApiState};

/// The longest a CreateTopics waits for the new topics to be served, whatever its
/// `timeout_ms` says.
const MAX_APPLY_WAIT: Duration = Duration::from_secs(30);

/// Answers a CreateTopics request.
pub(super) async fn handle(
    state: &ApiState,
    request: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let (unique, duplicates) = split_duplicates(request.topics);
    let topics: Vec<CreateTopic> = unique.into_iter().map(to_controller).collect();
    let names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
    let validate_only = request.validate_only;
    let mut results: Vec<CreateTopicResult> = if topics.is_empty() {
        Vec::new()
    } else {
        match state.controller.create_topics(topics, validate_only).await {
            Ok(results) => results,
            Err(e) => {
                let error = errors::controller(&e);
                names.iter().map(|n| failed(n, error.clone())).collect()
            }
        }
    };
    let created = results.iter().any(|r| r.error.is_success());
    if created && !validate_only && request.timeout_ms > 0 {
        let wait = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0));
        state.wait_applied(wait.min(MAX_APPLY_WAIT)).await;
    }
    results.extend(duplicates.iter().map(|name| {
        failed(
            name,
            ApiError::new(ErrorCode::InvalidRequest, "Duplicate topic name."),
        )
    }));
    CreateTopicsResponse {
        throttle_time_ms: 0,
        topics: results
            .into_iter()
            .map(|r| response_topic(state, r, version))
            .collect(),
    }
}

/// The topics named once, and the names listed more than once (each once).
fn split_duplicates(topics: Vec<CreatableTopic>) -> (Vec<CreatableTopic>, Vec<String>) {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for t in &topics {
        *counts.entry(t.name.clone()).or_default() += 1;
    }
    let duplicates: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(name, _)| name.clone())
        .collect();
    let unique = topics
        .into_iter()
        .filter(|t| counts.get(&t.name) == Some(&1))
        .collect();
    (unique, duplicates)
}

fn to_controller(t: CreatableTopic) -> CreateTopic {
    CreateTopic {
        name: t.name,
        num_partitions: t.num_partitions,
        replication_factor: t.replication_factor,
        assignments: t
            .assignments
            .into_iter()
            .map(|a| ReplicaAssignment {
                partition_index: a.partition_index,
                broker_ids: a.broker_ids,
            })
            .collect(),
        configs: t.configs.into_iter().map(|c| (c.name, c.value)).collect(),
    }
}

fn failed(name: &str, error: ApiError) -> CreateTopicResult {
    CreateTopicResult {
        name: name.to_owned(),
        error,
        topic_id: Uuid::ZERO,
        num_partitions: -1,
        replication_factor: -1,
        configs: BTreeMap::new(),
    }
}

fn response_topic(state: &ApiState, r: CreateTopicResult, version: i16) -> CreatableTopicResult {
    let ok = r.error.is_success();
    let configs = (ok && version >= 5).then(|| {
        state
            .topic_configs
            .describe(&r.configs)
            .into_iter()
            .map(|e| CreatableTopicConfigs {
                name: e.name,
                value: Some(e.value),
                read_only: e.read_only,
                config_source: e.source,
                is_sensitive: false,
            })
            .collect()
    });
    CreatableTopicResult {
        error_message: errors::message(&r.error),
        error_code: r.error.code.code(),
        name: r.name,
        topic_id: r.topic_id,
        topic_config_error_code: ErrorCode::None.code(),
        num_partitions: if ok { r.num_partitions } else { -1 },
        replication_factor: if ok { r.replication_factor } else { -1 },
        configs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str) -> CreatableTopic {
        CreatableTopic {
            name: name.into(),
            num_partitions: -1,
            replication_factor: -1,
            ..CreatableTopic::default()
        }
    }

    #[test]
    fn names_listed_twice_are_refused_once() {
        let (unique, duplicates) = split_duplicates(vec![
            topic("a"),
            topic("b"),
            topic("a"),
            topic("c"),
            topic("a"),
        ]);
        let names: Vec<&str> = unique.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["b", "c"]);
        assert_eq!(duplicates, ["a"]);
    }
}
