//! OffsetDelete (v0): an admin deletes a group's committed offsets of some
//! partitions.
//!
//! Unknown topics and partitions are UNKNOWN_TOPIC_OR_PARTITION here, as in Kafka;
//! the coordinator refuses partitions of topics the group still consumes
//! (GROUP_SUBSCRIBED_TO_TOPIC) and groups that are not empty unless they are
//! consumer groups (NON_EMPTY_GROUP). A failure for the whole group is the
//! top-level error, without partitions.

use weir_protocol::messages::offset_delete::{
    OffsetDeleteRequest, OffsetDeleteRequestTopic, OffsetDeleteResponse,
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use weir_types::ErrorCode;

use super::{ApiState, Handled};

/// Answers an OffsetDelete request.
pub(super) async fn handle(state: &ApiState, request: OffsetDeleteRequest) -> Handled {
    let image = state.controller.image();
    let mut unknown: Vec<OffsetDeleteResponseTopic> = Vec::new();
    let mut valid = Vec::new();
    for topic in request.topics {
        let (known, missing): (Vec<_>, Vec<_>) = topic
            .partitions
            .into_iter()
            .partition(|p| image.partition(&topic.name, p.partition_index).is_some());
        if !missing.is_empty() {
            unknown.push(OffsetDeleteResponseTopic {
                name: topic.name.clone(),
                partitions: missing
                    .into_iter()
                    .map(|p| OffsetDeleteResponsePartition {
                        partition_index: p.partition_index,
                        error_code: ErrorCode::UnknownTopicOrPartition.code(),
                    })
                    .collect(),
            });
        }
        if !known.is_empty() {
            valid.push(OffsetDeleteRequestTopic {
                name: topic.name,
                partitions: known,
            });
        }
    }
    let reply = state.groups.delete_offsets(request.group_id, valid).await;
    Handled::Later(Box::pin(async move {
        match reply.await {
            Ok(mut response) if response.error_code == ErrorCode::None.code() => {
                response.topics.extend(unknown);
                response.into()
            }
            Ok(response) => OffsetDeleteResponse {
                error_code: response.error_code,
                ..OffsetDeleteResponse::default()
            }
            .into(),
            Err(e) => OffsetDeleteResponse {
                error_code: e.error_code().code(),
                ..OffsetDeleteResponse::default()
            }
            .into(),
        }
    }))
}
