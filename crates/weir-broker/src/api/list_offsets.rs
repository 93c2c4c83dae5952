//! ListOffsets (v1+): offsets by timestamp, and the earliest, latest and
//! max-timestamp offsets.
//!
//! The replica layer answers each partition (see `ReplicaManager::list_offsets`):
//! latest is the high watermark for consumers (the log end for replicas), a search
//! by time returns the first record whose timestamp is at or after the target, at
//! record precision inside a batch, and finds nothing (offset -1, no error) past the
//! visible end; -3 (max timestamp, v7), -4 (earliest local, v8: the log start here)
//! and -5 (latest tiered, v9: none here) are understood at every version. The
//! response carries the leader epoch of the batch found (v4+), which consumers use to
//! validate their position after a leader change. A new leader whose high
//! watermark is still behind the start of its epoch answers OFFSET_NOT_AVAILABLE
//! (KIP-207; LEADER_NOT_AVAILABLE before v5). A partition listed twice in one
//! request is INVALID_REQUEST, as Kafka answers it.

use std::collections::BTreeMap;

use weir_protocol::messages::list_offsets::{
    ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsResponse, ListOffsetsTopicResponse,
};
use weir_types::{ErrorCode, LeaderEpoch};

use super::{errors, ApiState};
use crate::replica::IsolationLevel;

/// Answers a ListOffsets request.
pub(super) fn handle(
    state: &ApiState,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let mut counts: BTreeMap<(&str, i32), usize> = BTreeMap::new();
    for t in &request.topics {
        for p in &t.partitions {
            *counts
                .entry((t.name.as_str(), p.partition_index))
                .or_default() += 1;
        }
    }
    let isolation = IsolationLevel::from_wire(request.isolation_level);
    let topics = request
        .topics
        .iter()
        .map(|t| ListOffsetsTopicResponse {
            name: t.name.clone(),
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    if counts.get(&(t.name.as_str(), p.partition_index)) != Some(&1) {
                        return failed(p.partition_index, ErrorCode::InvalidRequest);
                    }
                    let listed = state.replicas.list_offsets(
                        &t.name,
                        p.partition_index,
                        p.timestamp,
                        isolation,
                        LeaderEpoch(p.current_leader_epoch),
                        request.replica_id,
                    );
                    match listed {
                        Ok(found) => ListOffsetsPartitionResponse {
                            partition_index: p.partition_index,
                            error_code: ErrorCode::None.code(),
                            timestamp: found.timestamp,
                            offset: found.offset.get(),
                            leader_epoch: found.leader_epoch.get(),
                            ..ListOffsetsPartitionResponse::default()
                        },
                        Err(e) => failed(p.partition_index, code_for(&e, version)),
                    }
                })
                .collect(),
        })
        .collect();
    ListOffsetsResponse {
        throttle_time_ms: 0,
        topics,
    }
}

/// The code for `e`; OFFSET_NOT_AVAILABLE is new in v5, so older clients hear
/// LEADER_NOT_AVAILABLE instead, which they also retry (as Kafka answers them).
fn code_for(e: &crate::replica::ReplicaError, version: i16) -> ErrorCode {
    match errors::replica_code(e) {
        ErrorCode::OffsetNotAvailable if version < 5 => ErrorCode::LeaderNotAvailable,
        code => code,
    }
}

fn failed(partition_index: i32, code: ErrorCode) -> ListOffsetsPartitionResponse {
    ListOffsetsPartitionResponse {
        partition_index,
        error_code: code.code(),
        timestamp: -1,
        offset: -1,
        leader_epoch: -1,
        ..ListOffsetsPartitionResponse::default()
    }
}
