//! OffsetFetch (v0-9): the committed offsets of a group (v8+: of several groups).
//!
//! A partition without a commit answers offset -1 and empty metadata; a null topic
//! list (v2+) asks for every committed partition of the group. A failure of the
//! coordinator (not loaded, not ours) is the group's error code; v0-1 have none
//! and carry it on every partition instead, as Kafka answers them.
//!
//! v9 names the fetching KIP-848 member: an unknown member or an old member epoch
//! fails the group (UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH), as in Kafka.
//!
//! `require_stable` (v7+) asks the broker to hold back offsets of open
//! transactions; without transactions there are none.

use weir_protocol::messages::offset_fetch::{
    OffsetFetchRequest, OffsetFetchResponse, OffsetFetchResponseGroup,
    OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use weir_types::ErrorCode;

use super::ApiState;
use crate::coordinator::FetchTopics;

/// Answers an OffsetFetch request.
pub(super) async fn handle(
    state: &ApiState,
    request: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    if version >= 8 {
        let mut groups = Vec::with_capacity(request.groups.len());
        for g in request.groups {
            let topics: FetchTopics = g.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name, t.partition_indexes))
                    .collect()
            });
            let member = (g.member_id.as_deref(), g.member_epoch);
            groups.push(fetch(state, &g.group_id, &topics, member).await);
        }
        return OffsetFetchResponse {
            groups,
            ..OffsetFetchResponse::default()
        };
    }
    let topics: FetchTopics = request.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name, t.partition_indexes))
            .collect()
    });
    let group = fetch(state, &request.group_id, &topics, (None, -1)).await;
    single_group(group, version)
}

/// One group's offsets, or its error with the requested partitions; `member` is
/// the (id, epoch) a v9+ request names for a KIP-848 member.
async fn fetch(
    state: &ApiState,
    group_id: &str,
    topics: &FetchTopics,
    member: (Option<&str>, i32),
) -> OffsetFetchResponseGroup {
    match state.groups.fetch_offsets(group_id, topics, member).await {
        Ok(group) => group,
        Err(e) => OffsetFetchResponseGroup {
            group_id: group_id.to_owned(),
            topics: topics
                .iter()
                .flatten()
                .map(|(name, partitions)| OffsetFetchResponseTopics {
                    name: name.clone(),
                    partitions: partitions
                        .iter()
                        .map(|p| OffsetFetchResponsePartitions {
                            partition_index: *p,
                            committed_offset: -1,
                            committed_leader_epoch: -1,
                            metadata: Some(String::new()),
                            error_code: ErrorCode::None.code(),
                        })
                        .collect(),
                })
                .collect(),
            error_code: e.error_code().code(),
        },
    }
}

/// The v0-7 form of one group's answer.
fn single_group(group: OffsetFetchResponseGroup, version: i16) -> OffsetFetchResponse {
    let group_error = group.error_code;
    let topics = group
        .topics
        .into_iter()
        .map(|t| OffsetFetchResponseTopic {
            name: t.name,
            partitions: t
                .partitions
                .into_iter()
                .map(|p| {
                    if version < 2 && group_error != ErrorCode::None.code() {
                        // No top-level error before v2: it goes on each partition.
                        OffsetFetchResponsePartition {
                            partition_index: p.partition_index,
                            committed_offset: -1,
                            committed_leader_epoch: -1,
                            metadata: Some(String::new()),
                            error_code: group_error,
                        }
                    } else {
                        OffsetFetchResponsePartition {
                            partition_index: p.partition_index,
                            committed_offset: p.committed_offset,
                            committed_leader_epoch: p.committed_leader_epoch,
                            metadata: p.metadata,
                            error_code: p.error_code,
                        }
                    }
                })
                .collect(),
        })
        .collect();
    OffsetFetchResponse {
        topics,
        error_code: group_error,
        ..OffsetFetchResponse::default()
    }
}
