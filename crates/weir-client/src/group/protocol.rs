//! The group APIs on the wire: which versions the group client speaks, how a
//! version is chosen per connection, and the consumer protocol's member metadata
//! and assignment (each an i16 version followed by the body).
//!
//! The group requests are tied to their responses here rather than in
//! [`crate::api`]: they are only ever sent on the coordinator connection, and
//! [`send`] negotiates their version itself from the broker's advertised ranges.

use std::time::Duration;

use bytes::Bytes;
use weir_protocol::messages::consumer_protocol_assignment::{
    self as cpa, ConsumerProtocolAssignment,
};
use weir_protocol::messages::consumer_protocol_subscription::{
    self as cps, ConsumerProtocolSubscription,
};
use weir_protocol::messages::{
    consumer_group_describe, consumer_group_heartbeat, delete_groups, describe_groups,
    find_coordinator, heartbeat, join_group, leave_group, list_groups, offset_commit, offset_fetch,
    sync_group,
};
use weir_protocol::wire::{Decoder, Encoder};
use weir_protocol::{ApiKey, Message};

use crate::api::ClientRequest;
use crate::cluster::TopicPartition;
use crate::connection::Connection;
use crate::error::{Error, Result};

macro_rules! group_requests {
    ($($req:ty => $resp:ty, $api:ident, $min:literal..=$max:literal;)*) => {
        $(
            impl ClientRequest for $req {
                type Response = $resp;
                const API: ApiKey = ApiKey::$api;
                const CLIENT_VERSIONS: (i16, i16) = ($min, $max);
            }
        )*
    };
}

group_requests! {
    find_coordinator::FindCoordinatorRequest => find_coordinator::FindCoordinatorResponse, FindCoordinator, 0..=6;
    join_group::JoinGroupRequest => join_group::JoinGroupResponse, JoinGroup, 1..=9;
    sync_group::SyncGroupRequest => sync_group::SyncGroupResponse, SyncGroup, 0..=5;
    heartbeat::HeartbeatRequest => heartbeat::HeartbeatResponse, Heartbeat, 0..=4;
    leave_group::LeaveGroupRequest => leave_group::LeaveGroupResponse, LeaveGroup, 0..=5;
    offset_commit::OffsetCommitRequest => offset_commit::OffsetCommitResponse, OffsetCommit, 2..=9;
    offset_fetch::OffsetFetchRequest => offset_fetch::OffsetFetchResponse, OffsetFetch, 1..=9;
    list_groups::ListGroupsRequest => list_groups::ListGroupsResponse, ListGroups, 0..=5;
    describe_groups::DescribeGroupsRequest => describe_groups::DescribeGroupsResponse, DescribeGroups, 0..=5;
    delete_groups::DeleteGroupsRequest => delete_groups::DeleteGroupsResponse, DeleteGroups, 0..=2;
    consumer_group_describe::ConsumerGroupDescribeRequest => consumer_group_describe::ConsumerGroupDescribeResponse, ConsumerGroupDescribe, 0..=0;
    consumer_group_heartbeat::ConsumerGroupHeartbeatRequest => consumer_group_heartbeat::ConsumerGroupHeartbeatResponse, ConsumerGroupHeartbeat, 0..=1;
}

/// The highest version of `R` both this client and the broker at `conn` speak.
pub(crate) fn version<R: ClientRequest>(conn: &Connection) -> Result<i16> {
    let (cmin, cmax) = R::CLIENT_VERSIONS;
    conn.versions()
        .and_then(|t| t.broker_range(R::API))
        .and_then(|(bmin, bmax)| {
            let v = bmax.min(cmax);
            (v >= bmin.max(cmin)).then_some(v)
        })
        .ok_or_else(|| Error::UnsupportedApi {
            api: R::API.name(),
            addr: conn.addr().to_owned(),
            min: cmin,
            max: cmax,
        })
}

/// Sends `req` at `version`, allowing `extra` beyond `request.timeout.ms` for the
/// answer (JoinGroup and SyncGroup may be held for a whole rebalance).
pub(crate) async fn send_at<R: ClientRequest>(
    conn: &Connection,
    req: R,
    version: i16,
    extra: Duration,
) -> Result<R::Response> {
    if extra.is_zero() {
        return conn.send_versioned(req, version).await;
    }
    conn.enqueue(&req, version, Some(extra))?.await
}

/// The protocol type of consumer groups.
pub(crate) const PROTOCOL_TYPE: &str = "consumer";

/// The newest subscription and assignment versions written (owned partitions and
/// generation, for cooperative rebalancing, are v1 and v2; rack is v3).
const SUBSCRIPTION_VERSION: i16 = 3;
const ASSIGNMENT_VERSION: i16 = 3;

/// A member's subscription, as its JoinGroup metadata carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    /// The topics the member wants.
    pub topics: Vec<String>,
    /// The partitions the member owns (cooperative rebalancing).
    pub owned: Vec<TopicPartition>,
    /// The generation in which it owned them (-1: unknown).
    pub generation: i32,
    /// Assignor-specific bytes.
    pub user_data: Option<Bytes>,
}

/// Encodes a subscription with its version prefix.
pub(crate) fn encode_subscription(s: &Subscription) -> Result<Bytes> {
    let body = ConsumerProtocolSubscription {
        topics: s.topics.clone(),
        user_data: s.user_data.clone(),
        owned_partitions: group_by_topic(&s.owned)
            .into_iter()
            .map(|(topic, partitions)| cps::TopicPartition { topic, partitions })
            .collect(),
        generation_id: s.generation,
        rack_id: None,
    };
    let mut e = Encoder::new();
    e.i16(SUBSCRIPTION_VERSION);
    body.encode(&mut e, SUBSCRIPTION_VERSION)?;
    Ok(e.into_bytes())
}

/// Decodes a subscription of any version (a newer one is read with the newest
/// layout known: later versions only append fields).
pub fn decode_subscription(bytes: &Bytes) -> Result<Subscription> {
    let mut d = Decoder::new(bytes.clone());
    let version = d.i16()?.clamp(0, ConsumerProtocolSubscription::VERSIONS.1);
    let body = ConsumerProtocolSubscription::decode(&mut d, version)?;
    Ok(Subscription {
        topics: body.topics,
        owned: body
            .owned_partitions
            .into_iter()
            .flat_map(|t| {
                let topic = t.topic;
                t.partitions
                    .into_iter()
                    .map(move |p| TopicPartition::new(topic.clone(), p))
            })
            .collect(),
        generation: if version >= 2 { body.generation_id } else { -1 },
        user_data: body.user_data,
    })
}

/// Encodes an assignment with its version prefix.
pub(crate) fn encode_assignment(partitions: &[TopicPartition]) -> Result<Bytes> {
    let body = ConsumerProtocolAssignment {
        assigned_partitions: group_by_topic(partitions)
            .into_iter()
            .map(|(topic, partitions)| cpa::TopicPartition { topic, partitions })
            .collect(),
        user_data: None,
    };
    let mut e = Encoder::new();
    e.i16(ASSIGNMENT_VERSION);
    body.encode(&mut e, ASSIGNMENT_VERSION)?;
    Ok(e.into_bytes())
}

/// Decodes an assignment of any version; empty bytes are an empty assignment.
pub fn decode_assignment(bytes: &Bytes) -> Result<Vec<TopicPartition>> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut d = Decoder::new(bytes.clone());
    let version = d.i16()?.clamp(0, ConsumerProtocolAssignment::VERSIONS.1);
    let body = ConsumerProtocolAssignment::decode(&mut d, version)?;
    let mut out = Vec::new();
    for t in body.assigned_partitions {
        for p in t.partitions {
            out.push(TopicPartition::new(t.topic.clone(), p));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Partitions grouped by topic, both sorted.
pub(crate) fn group_by_topic(partitions: &[TopicPartition]) -> Vec<(String, Vec<i32>)> {
    let mut m: std::collections::BTreeMap<&str, Vec<i32>> = std::collections::BTreeMap::new();
    for tp in partitions {
        m.entry(tp.topic.as_str()).or_default().push(tp.partition);
    }
    m.into_iter()
        .map(|(t, mut ps)| {
            ps.sort_unstable();
            ps.dedup();
            (t.to_owned(), ps)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    #[test]
    fn subscription_round_trips_with_owned_partitions() {
        let s = Subscription {
            topics: vec!["a".into(), "b".into()],
            owned: vec![tp("a", 0), tp("b", 2)],
            generation: 7,
            user_data: None,
        };
        let bytes = encode_subscription(&s).unwrap();
        assert_eq!(&bytes[..2], &[0, 3], "version prefix");
        assert_eq!(decode_subscription(&bytes).unwrap(), s);
    }

    #[test]
    fn v0_subscription_and_newer_versions_decode() {
        // v0: topics ["t"], user_data null.
        let v0 = Bytes::from_static(&[0, 0, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff]);
        let s = decode_subscription(&v0).unwrap();
        assert_eq!(s.topics, vec!["t"]);
        assert!(s.owned.is_empty());
        assert_eq!(s.generation, -1);
        // A future v9 with trailing fields reads as v3.
        let mut v9 = encode_subscription(&Subscription {
            topics: vec!["t".into()],
            ..Subscription::default()
        })
        .unwrap()
        .to_vec();
        v9[1] = 9;
        v9.extend_from_slice(&[1, 2, 3]);
        assert_eq!(
            decode_subscription(&Bytes::from(v9)).unwrap().topics,
            vec!["t"]
        );
        assert!(decode_subscription(&Bytes::from_static(&[0])).is_err());
    }

    #[test]
    fn assignment_round_trips_and_empty_is_none() {
        let a = vec![tp("a", 1), tp("a", 0), tp("b", 3)];
        let bytes = encode_assignment(&a).unwrap();
        assert_eq!(
            decode_assignment(&bytes).unwrap(),
            vec![tp("a", 0), tp("a", 1), tp("b", 3)]
        );
        assert!(decode_assignment(&Bytes::new()).unwrap().is_empty());
        assert!(decode_assignment(&Bytes::from_static(&[0, 0, 0, 0, 0, 9])).is_err());
    }
}
