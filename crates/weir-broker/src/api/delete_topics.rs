//! DeleteTopics: by name (v1-5), or by name or id (v6+).
//!
//! The controller checks `delete.topic.enable`, refuses internal topics and removes
//! the rest in one batch; this handler adds Kafka's request checks (a v6+ entry that
//! names both a name and an id, or neither, is INVALID_REQUEST, and so is a topic
//! listed twice) and waits, bounded by `timeout_ms`, until this broker has stopped
//! serving the deleted partitions, so a client that re-creates the topic right away
//! gets a fresh one.

use std::collections::BTreeMap;
use std::time::Duration;

use weir_metadata::controller::{ApiError, DeleteTopicResult, TopicRef};
use weir_metadata::Uuid;
use weir_protocol::messages::delete_topics::{
    DeletableTopicResult, DeleteTopicsRequest, DeleteTopicsResponse,
};
use weir_types::ErrorCode;

use super::{errors, ApiState};

/// The longest a DeleteTopics waits for the deletion to be applied.
const MAX_APPLY_WAIT: Duration = Duration::from_secs(30);

/// Answers a DeleteTopics request.
pub(super) async fn handle(
    state: &ApiState,
    request: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let mut invalid: Vec<DeleteTopicResult> = Vec::new();
    let refs: Vec<TopicRef> = if version >= 6 {
        request
            .topics
            .into_iter()
            .filter_map(|t| match (t.name, t.topic_id) {
                (None, id) if id != Uuid::ZERO => Some(TopicRef::Id(id)),
                (Some(name), Uuid::ZERO) => Some(TopicRef::Name(name)),
                (name, topic_id) => {
                    let both = name.is_some();
                    invalid.push(DeleteTopicResult {
                        name,
                        topic_id,
                        error: ApiError::new(
                            ErrorCode::InvalidRequest,
                            if both {
                                "You may not specify both topic name and topic id."
                            } else {
                                "Neither a topic name nor a topic id was given."
                            },
                        ),
                    });
                    None
                }
            })
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(TopicRef::Name)
            .collect()
    };
    let (unique, duplicates) = split_duplicates(refs);
    let mut results = if unique.is_empty() {
        Vec::new()
    } else {
        match state.controller.delete_topics(unique.clone()).await {
            Ok(results) => results,
            Err(e) => {
                let error = errors::controller(&e);
                unique
                    .into_iter()
                    .map(|r| result(r, error.clone()))
                    .collect()
            }
        }
    };
    if results.iter().any(|r| r.error.is_success()) && request.timeout_ms > 0 {
        let wait = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0));
        state.wait_applied(wait.min(MAX_APPLY_WAIT)).await;
    }
    results.extend(invalid);
    results.extend(duplicates.into_iter().map(|r| {
        result(
            r,
            ApiError::new(ErrorCode::InvalidRequest, "Duplicate topic name or id."),
        )
    }));
    DeleteTopicsResponse {
        throttle_time_ms: 0,
        responses: results
            .into_iter()
            .map(|r| DeletableTopicResult {
                error_message: errors::message(&r.error),
                error_code: r.error.code.code(),
                // v0-5 names are not nullable: an unknown id never reaches them.
                name: r.name.or_else(|| (version < 6).then(String::new)),
                topic_id: r.topic_id,
            })
            .collect(),
    }
}

fn result(r: TopicRef, error: ApiError) -> DeleteTopicResult {
    match r {
        TopicRef::Name(name) => DeleteTopicResult {
            name: Some(name),
            topic_id: Uuid::ZERO,
            error,
        },
        TopicRef::Id(topic_id) => DeleteTopicResult {
            name: None,
            topic_id,
            error,
        },
    }
}

/// The topics named once, and those named more than once (each once).
fn split_duplicates(refs: Vec<TopicRef>) -> (Vec<TopicRef>, Vec<TopicRef>) {
    let mut counts: BTreeMap<TopicRef, usize> = BTreeMap::new();
    for r in &refs {
        *counts.entry(r.clone()).or_default() += 1;
    }
    let unique = refs
        .into_iter()
        .filter(|r| counts.get(r) == Some(&1))
        .collect();
    let duplicates = counts
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(r, _)| r)
        .collect();
    (unique, duplicates)
}
