//! OffsetCommit (v0-9): a consumer records how far it got, with optional metadata.
//!
//! Partitions of topics the cluster does not have are answered
//! UNKNOWN_TOPIC_OR_PARTITION here, as Kafka does before its coordinator sees the
//! request; the rest go to the coordinator, which checks the group (generation,
//! member, state) and writes one record per partition. The answer waits until the
//! commit is durable.

use std::collections::HashMap;

use weir_protocol::messages::offset_commit::{
    OffsetCommitRequest, OffsetCommitRequestTopic, OffsetCommitResponse,
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use weir_types::ErrorCode;

use super::{ApiState, Handled};

/// Each requested topic with its partitions, and the code decided here for a
/// partition the coordinator does not see.
type Decided = Vec<(String, Vec<(i32, Option<ErrorCode>)>)>;

/// Answers an OffsetCommit request.
pub(super) async fn handle(
    state: &ApiState,
    request: OffsetCommitRequest,
    version: i16,
) -> Handled {
    let image = state.controller.image();
    // Each requested (topic, partition) with the code decided here, if any.
    let mut decided: Decided = Vec::with_capacity(request.topics.len());
    let mut valid = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let known = image.topic(&topic.name).is_some();
        let mut codes = Vec::with_capacity(topic.partitions.len());
        let mut partitions = Vec::new();
        for p in &topic.partitions {
            if known && image.partition(&topic.name, p.partition_index).is_some() {
                codes.push((p.partition_index, None));
                partitions.push(p.clone());
            } else {
                codes.push((p.partition_index, Some(ErrorCode::UnknownTopicOrPartition)));
            }
        }
        decided.push((topic.name.clone(), codes));
        if !partitions.is_empty() {
            valid.push(OffsetCommitRequestTopic {
                name: topic.name.clone(),
                partitions,
            });
        }
    }
    if valid.is_empty() {
        return Handled::now(assemble(decided, &HashMap::new(), ErrorCode::None));
    }
    let reply = state
        .groups
        .commit_offsets(
            OffsetCommitRequest {
                topics: valid,
                ..request
            },
            version,
        )
        .await;
    Handled::Later(Box::pin(async move {
        match reply.await {
            Ok(response) => {
                let codes = response
                    .topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions.iter().map(|p| {
                            (
                                (t.name.clone(), p.partition_index),
                                ErrorCode::from_code(p.error_code),
                            )
                        })
                    })
                    .collect();
                assemble(decided, &codes, ErrorCode::None).into()
            }
            Err(e) => assemble(decided, &HashMap::new(), e.error_code()).into(),
        }
    }))
}

/// The response in request order: codes decided here, else the coordinator's,
/// else `fallback` (the coordinator's failure for the whole request).
fn assemble(
    decided: Decided,
    codes: &HashMap<(String, i32), ErrorCode>,
    fallback: ErrorCode,
) -> OffsetCommitResponse {
    let topics = decided
        .into_iter()
        .map(|(name, partitions)| OffsetCommitResponseTopic {
            partitions: partitions
                .into_iter()
                .map(|(index, code)| OffsetCommitResponsePartition {
                    partition_index: index,
                    error_code: code
                        .or_else(|| codes.get(&(name.clone(), index)).copied())
                        .unwrap_or(fallback)
                        .code(),
                })
                .collect(),
            name,
        })
        .collect();
    OffsetCommitResponse {
        topics,
        ..OffsetCommitResponse::default()
    }
}
