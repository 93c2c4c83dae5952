//! Fetch (v4+): read record batches, waiting for data when there is not enough.
//!
//! - Topics by name up to v12, by id from v13 (an unknown id is UNKNOWN_TOPIC_ID for
//!   each of its partitions).
//! - A fetch with a replica id reads past the high watermark, so the claim is
//!   checked: only a replica of the partition other than this broker may make it;
//!   anyone else gets NOT_LEADER_OR_FOLLOWER, as Kafka answers a fetch from a
//!   broker that is not a follower.
//! - The replica layer does the reading and the long poll: bounded by the high
//!   watermark (read_committed: the last stable offset), `max_bytes` over the
//!   response and `partition_max_bytes` per partition with KIP-74's "first batch
//!   whole", and waiting until `min_bytes` are there or `max_wait_ms` passes. A
//!   fetch that may wait is answered as [`Handled::Later`], so the connection keeps
//!   reading; one that may not (`max_wait_ms` or `min_bytes` at most 0) is answered
//!   inline.
//! - Fetching from followers (KIP-392): a consumer's v11+ fetch may be served by
//!   a follower (up to its high watermark). With `replica.selector.class` set to
//!   Kafka's rack-aware selector, the leader answers a consumer whose `rack_id`
//!   names another rack with a preferred read replica in that rack, when one is
//!   in sync and has the offset (see the replica layer).
//! - Fetch sessions (KIP-227): Weir creates none. A full fetch (session id 0) is
//!   answered with session id 0, which tells the client no session exists, so it
//!   keeps sending full fetches: legal and what Kafka does when its session cache is
//!   full. Forgotten topics only matter inside a session, so they are ignored. A
//!   session id we never issued is FETCH_SESSION_ID_NOT_FOUND, and a session epoch
//!   other than 0 or -1 without a session is INVALID_FETCH_SESSION_EPOCH, as Kafka
//!   answers them; the client then starts over with a full fetch.

use std::time::Duration;

use weir_metadata::Uuid;
use weir_protocol::messages::fetch::{
    FetchRequest, FetchResponse, FetchableTopicResponse, PartitionData,
};
use weir_protocol::Response;
use weir_types::{ErrorCode, LeaderEpoch, Offset};

use super::{ApiState, Handled};
use crate::replica::{FetchParams, FetchPartition, FetchedPartition, IsolationLevel};

/// A requested topic: its name and id as the response echoes them, and for each
/// partition either its index into the replica layer's request or an error.
struct TopicSlot {
    name: String,
    id: Uuid,
    partitions: Vec<(i32, Result<usize, ErrorCode>)>,
}

/// Handles a Fetch request; see the module docs.
pub(super) async fn handle(state: &ApiState, request: FetchRequest, version: i16) -> Handled {
    if version >= 7 {
        if let Some(code) = session_error(request.session_id, request.session_epoch) {
            return Handled::Now(Response::Fetch(FetchResponse {
                error_code: code.code(),
                session_id: request.session_id,
                ..FetchResponse::default()
            }));
        }
    }
    let replica_id = if version >= 15 {
        request.replica_state.replica_id
    } else {
        request.replica_id
    };
    // A consumer's rack, when the leader should send it to a follower there.
    let client_rack = (version >= 11 && replica_id < 0 && state.config.replica_selector_rack_aware)
        .then_some(request.rack_id.as_str())
        .filter(|rack| !rack.is_empty());
    // Topic ids need the image, and so do checking a follower's claim and racks.
    let image = if version >= 13 || replica_id >= 0 || client_rack.is_some() {
        Some(state.served_image().await)
    } else {
        None
    };
    let mut wanted: Vec<FetchPartition> = Vec::new();
    let mut slots = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = match &image {
            Some(image) if version >= 13 => {
                image.topic_by_id(topic.topic_id).map(|t| t.name.clone())
            }
            _ => Some(topic.topic.clone()),
        };
        let partitions = topic
            .partitions
            .iter()
            .map(|p| {
                let Some(name) = &name else {
                    return (p.partition, Err(ErrorCode::UnknownTopicId));
                };
                if replica_id >= 0 {
                    let follower = image.as_ref().is_some_and(|image| {
                        image.partition(name, p.partition).is_some_and(|pi| {
                            replica_id != state.node_id().get()
                                && pi.replicas.iter().any(|r| r.get() == replica_id)
                        })
                    });
                    if !follower {
                        return (p.partition, Err(ErrorCode::NotLeaderOrFollower));
                    }
                }
                let same_rack_replicas = match (&image, client_rack) {
                    (Some(image), Some(rack)) => same_rack(state, image, name, p.partition, rack),
                    _ => Vec::new(),
                };
                wanted.push(FetchPartition {
                    topic: name.clone(),
                    partition: p.partition,
                    fetch_offset: Offset(p.fetch_offset),
                    partition_max_bytes: non_negative(p.partition_max_bytes),
                    current_leader_epoch: LeaderEpoch(p.current_leader_epoch),
                    same_rack_replicas,
                });
                (p.partition, Ok(wanted.len() - 1))
            })
            .collect();
        slots.push(TopicSlot {
            name: name.unwrap_or_default(),
            id: topic.topic_id,
            partitions,
        });
    }
    let isolation = IsolationLevel::from_wire(request.isolation_level);
    // A partition that failed here (an unknown topic id) answers the fetch at once,
    // as any partition error does in the replica layer and in Kafka.
    let failed_here = slots
        .iter()
        .any(|s| s.partitions.iter().any(|(_, r)| r.is_err()));
    let max_wait = if failed_here {
        Duration::ZERO
    } else {
        Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0))
    };
    let params = FetchParams {
        max_wait,
        min_bytes: non_negative(request.min_bytes),
        max_bytes: non_negative(request.max_bytes),
        isolation_level: isolation,
        replica_id,
        // Kafka's client metadata comes with v11: such a consumer may read from
        // a follower.
        follower_reads: version >= 11 && replica_id < 0,
    };
    let replicas = state.replicas.clone();
    if params.max_wait.is_zero() || params.min_bytes == 0 {
        let fetched = replicas.fetch(params, wanted).await;
        return Handled::Now(Response::Fetch(respond(slots, fetched, isolation)));
    }
    let draining = state.draining.clone();
    Handled::Later(Box::pin(async move {
        // A broker that starts draining answers long polls with what is there now
        // (dropping the wait holds nothing), so shutdown is not held up by them.
        let fetched = tokio::select! {
            fetched = replicas.fetch(params, wanted.clone()) => fetched,
            () = draining.cancelled() => {
                let now = FetchParams { max_wait: Duration::ZERO, ..params };
                replicas.fetch(now, wanted).await
            }
        };
        Response::Fetch(respond(slots, fetched, isolation))
    }))
}

/// The other replicas of a partition in the consumer's `rack`, unless this
/// broker is in that rack itself (then it serves the consumer, as Kafka's
/// rack-aware selector prefers the leader in the consumer's rack).
fn same_rack(
    state: &ApiState,
    image: &weir_metadata::MetadataImage,
    topic: &str,
    partition: i32,
    rack: &str,
) -> Vec<weir_types::NodeId> {
    let in_rack = |id: weir_types::NodeId| {
        image
            .broker(id)
            .is_some_and(|b| b.rack.as_deref() == Some(rack))
    };
    let me = state.node_id();
    if in_rack(me) {
        return Vec::new();
    }
    image
        .partition(topic, partition)
        .map(|p| {
            p.replicas
                .iter()
                .copied()
                .filter(|r| *r != me && in_rack(*r))
                .collect()
        })
        .unwrap_or_default()
}

/// The top-level error for a session we cannot serve, if any.
fn session_error(session_id: i32, session_epoch: i32) -> Option<ErrorCode> {
    if session_id != 0 {
        Some(ErrorCode::FetchSessionIdNotFound)
    } else if session_epoch != 0 && session_epoch != -1 {
        Some(ErrorCode::InvalidFetchSessionEpoch)
    } else {
        None
    }
}

fn non_negative(n: i32) -> usize {
    usize::try_from(n).unwrap_or(0)
}

fn respond(
    slots: Vec<TopicSlot>,
    fetched: Vec<FetchedPartition>,
    isolation: IsolationLevel,
) -> FetchResponse {
    // read_committed readers get an (empty) aborted-transactions list, as Kafka
    // sends; read_uncommitted ones null.
    let aborted = (isolation == IsolationLevel::ReadCommitted).then(Vec::new);
    let mut fetched: Vec<Option<FetchedPartition>> = fetched.into_iter().map(Some).collect();
    FetchResponse {
        responses: slots
            .into_iter()
            .map(|slot| FetchableTopicResponse {
                topic: slot.name,
                topic_id: slot.id,
                partitions: slot
                    .partitions
                    .into_iter()
                    .map(|(index, r)| {
                        let got = r.and_then(|i| {
                            fetched
                                .get_mut(i)
                                .and_then(Option::take)
                                .ok_or(ErrorCode::UnknownServerError)
                        });
                        partition_data(index, got, aborted.clone())
                    })
                    .collect(),
            })
            .collect(),
        ..FetchResponse::default()
    }
}

fn partition_data(
    index: i32,
    got: Result<FetchedPartition, ErrorCode>,
    aborted: Option<Vec<weir_protocol::messages::fetch::AbortedTransaction>>,
) -> PartitionData {
    match got {
        Ok(p) => PartitionData {
            partition_index: index,
            error_code: p.error.code(),
            high_watermark: p.high_watermark.get(),
            last_stable_offset: p.last_stable_offset.get(),
            log_start_offset: p.log_start_offset.get(),
            aborted_transactions: aborted,
            records: Some(p.records),
            preferred_read_replica: p.preferred_read_replica.map_or(-1, |r| r.get()),
            ..PartitionData::default()
        },
        Err(code) => PartitionData {
            partition_index: index,
            error_code: code.code(),
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            records: Some(bytes::Bytes::new()),
            ..PartitionData::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_refused_the_way_kafka_refuses_them() {
        assert_eq!(session_error(0, -1), None);
        assert_eq!(session_error(0, 0), None);
        assert_eq!(session_error(5, 1), Some(ErrorCode::FetchSessionIdNotFound));
        assert_eq!(
            session_error(0, 3),
            Some(ErrorCode::InvalidFetchSessionEpoch)
        );
    }
}
