//! OffsetForLeaderEpoch (v2+): where a leader epoch ended in a partition's log.
//!
//! Consumers call it after a leader change to check that their position is still on
//! the leader's log (KIP-320), and followers before they fetch to find where to
//! truncate. The answer comes from the log's leader epoch cache: the largest epoch
//! at or below the requested one and the offset where it ended (the log end for the
//! latest epoch), or -1/-1 when the epoch is unknown. The client's
//! `current_leader_epoch` is checked first (FENCED_LEADER_EPOCH /
//! UNKNOWN_LEADER_EPOCH), and only the leader answers.
//!
//! The replica layer answers ([`crate::replica::ReplicaManager::end_offset_for_epoch`]),
//! with the same checks ListOffsets uses.

use weir_protocol::messages::offset_for_leader_epoch::{
    EpochEndOffset, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
    OffsetForLeaderTopicResult,
};
use weir_types::{ErrorCode, LeaderEpoch, Offset};

use super::{errors, ApiState};
use crate::replica::ReplicaError;

/// Answers an OffsetForLeaderEpoch request.
pub(super) fn handle(
    state: &ApiState,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    OffsetForLeaderEpochResponse {
        throttle_time_ms: 0,
        topics: request
            .topics
            .into_iter()
            .map(|t| OffsetForLeaderTopicResult {
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| {
                        let found = end_offset(
                            state,
                            &t.topic,
                            p.partition,
                            LeaderEpoch(p.current_leader_epoch),
                            LeaderEpoch(p.leader_epoch),
                        );
                        match found {
                            Ok((epoch, end_offset)) => EpochEndOffset {
                                error_code: ErrorCode::None.code(),
                                partition: p.partition,
                                leader_epoch: epoch.get(),
                                end_offset: end_offset.get(),
                            },
                            Err(e) => EpochEndOffset {
                                error_code: errors::replica_code(&e).code(),
                                partition: p.partition,
                                leader_epoch: -1,
                                end_offset: -1,
                            },
                        }
                    })
                    .collect(),
                topic: t.topic,
            })
            .collect(),
    }
}

fn end_offset(
    state: &ApiState,
    topic: &str,
    partition: i32,
    current: LeaderEpoch,
    requested: LeaderEpoch,
) -> Result<(LeaderEpoch, Offset), ReplicaError> {
    state
        .replicas
        .end_offset_for_epoch(topic, partition, current, requested)
}
