//! Controller requests as values, and their encoding for forwarding.
//!
//! Every controller operation is a [`Request`] answered by a [`Response`]. The
//! controller thread executes them; a handle on a node that is not the active
//! controller encodes the request (postcard over serde: compact, and decoding
//! bounded by the bytes at hand) and sends it through the `ControllerTransport` to
//! the active one, whose `ForwardedRequestHandler` decodes, executes and encodes the
//! reply. The encoding is private to this crate: both ends run the same build.

use serde::{Deserialize, Serialize};

use super::cluster_types::{
    AlterPartition, BrokerRegistration, ElectionType, Heartbeat, HeartbeatReply,
    OngoingReassignment, PartitionResult, PartitionState, ProducerIdBlock, Reassignment,
    TopicPartition,
};
use super::types::{
    AlterConfigsResult, AlterTopicConfigs, ApiError, CreatePartitions, CreatePartitionsResult,
    CreateTopic, CreateTopicResult, DeleteTopicResult, IncrementalAlterTopicConfigs, TopicRef,
};
use crate::error::{MetadataError, Result};

/// One controller operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Request {
    CreateTopics(Vec<CreateTopic>, bool),
    AutoCreateTopics(Vec<String>),
    DeleteTopics(Vec<TopicRef>),
    CreatePartitions(Vec<CreatePartitions>, bool),
    AlterConfigs(Vec<AlterTopicConfigs>, bool),
    IncrementalAlterConfigs(Vec<IncrementalAlterTopicConfigs>, bool),
    RegisterBroker(BrokerRegistration),
    Heartbeat(Heartbeat),
    AlterPartition(AlterPartition),
    ElectLeaders(ElectionType, Option<Vec<TopicPartition>>),
    AlterReassignments(Vec<Reassignment>),
    ListReassignments(Option<Vec<TopicPartition>>),
    AllocateProducerIds(i32, i64),
    UnregisterBroker(i32),
}

/// The answer to a [`Request`] of the same name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Response {
    CreateTopics(Vec<CreateTopicResult>),
    DeleteTopics(Vec<DeleteTopicResult>),
    CreatePartitions(Vec<CreatePartitionsResult>),
    AlterConfigs(Vec<AlterConfigsResult>),
    RegisterBroker(Result<i64, ApiError>),
    Heartbeat(Result<HeartbeatReply, ApiError>),
    AlterPartition(Result<PartitionState, ApiError>),
    PartitionResults(Vec<PartitionResult>),
    ListReassignments(Vec<OngoingReassignment>),
    AllocateProducerIds(Result<ProducerIdBlock, ApiError>),
    UnregisterBroker(Result<(), ApiError>),
}

/// A controller failure as it travels back to the forwarding node.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum WireError {
    /// The receiver is not the active controller (any more).
    NotController(Option<i32>),
    /// Any other failure, as its message.
    Failed(String),
}

pub(crate) fn encode_request(request: &Request) -> Result<Vec<u8>> {
    postcard::to_allocvec(request).map_err(|e| MetadataError::Config(format!("encode: {e}")))
}

pub(crate) fn decode_request(bytes: &[u8]) -> std::result::Result<Request, String> {
    postcard::from_bytes(bytes).map_err(|e| e.to_string())
}

/// Encodes a reply with the offset of the active controller's image once it ran
/// the request, so the caller can wait until its own image has the change too.
pub(crate) fn encode_reply(reply: &Result<Response>, offset: i64) -> Vec<u8> {
    let wire: std::result::Result<&Response, WireError> = match reply {
        Ok(r) => Ok(r),
        Err(MetadataError::NotController { leader }) => {
            Err(WireError::NotController(leader.map(|n| n.get())))
        }
        Err(e) => Err(WireError::Failed(e.to_string())),
    };
    // A Response always encodes (no maps with non-string keys, no unsized data); an
    // empty reply makes the caller report a transport error rather than hang.
    postcard::to_allocvec(&(offset, wire)).unwrap_or_default()
}

/// Decodes a reply of `node`: the outcome, and the image offset it ran at.
pub(crate) fn decode_reply(node: weir_types::NodeId, bytes: &[u8]) -> Result<(Response, i64)> {
    let (offset, wire): (i64, std::result::Result<Response, WireError>) =
        postcard::from_bytes(bytes).map_err(|e| MetadataError::Transport {
            node,
            reason: format!("undecodable reply: {e}"),
        })?;
    let response = wire.map_err(|e| match e {
        WireError::NotController(leader) => MetadataError::NotController {
            leader: leader.map(weir_types::NodeId),
        },
        WireError::Failed(reason) => MetadataError::Remote { node, reason },
    })?;
    Ok((response, offset))
}

/// Serde for `weir_types::ErrorCode`, as its wire value.
pub(crate) mod error_code {
    use serde::{Deserialize, Deserializer, Serializer};
    use weir_types::ErrorCode;

    pub(crate) fn serialize<S: Serializer>(
        c: &ErrorCode,
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_i16(c.code())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<ErrorCode, D::Error> {
        i16::deserialize(d).map(ErrorCode::from_code)
    }
}

/// Serde for topic ids, as their 16 bytes.
pub(crate) mod uuid {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use weir_protocol::Uuid;

    pub(crate) fn serialize<S: Serializer>(u: &Uuid, s: S) -> std::result::Result<S::Ok, S::Error> {
        u.0.serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Uuid, D::Error> {
        <[u8; 16]>::deserialize(d).map(Uuid)
    }
}

/// Serde for node ids, as their i32.
pub(crate) mod node_id {
    use serde::{Deserialize, Deserializer, Serializer};
    use weir_types::NodeId;

    pub(crate) fn serialize<S: Serializer>(
        n: &NodeId,
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_i32(n.get())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<NodeId, D::Error> {
        i32::deserialize(d).map(NodeId)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use weir_protocol::Uuid;
    use weir_types::{ErrorCode, NodeId};

    use super::*;
    use crate::controller::types::{AlterConfigOp, ConfigOp, ReplicaAssignment};

    fn tp() -> TopicPartition {
        TopicPartition {
            topic: "t".into(),
            partition: 3,
        }
    }

    #[test]
    fn requests_and_replies_survive_the_trip() {
        let requests = vec![
            Request::CreateTopics(
                vec![CreateTopic {
                    name: "t".into(),
                    num_partitions: -1,
                    replication_factor: -1,
                    assignments: vec![ReplicaAssignment {
                        partition_index: 0,
                        broker_ids: vec![1, 2],
                    }],
                    configs: vec![("a".into(), None), ("b".into(), Some("1".into()))],
                }],
                true,
            ),
            Request::DeleteTopics(vec![
                TopicRef::Id(Uuid([7; 16])),
                TopicRef::Name("x".into()),
            ]),
            Request::IncrementalAlterConfigs(
                vec![IncrementalAlterTopicConfigs {
                    topic: "t".into(),
                    ops: vec![ConfigOp {
                        name: "n".into(),
                        op: AlterConfigOp::Subtract,
                        value: None,
                    }],
                }],
                false,
            ),
            Request::Heartbeat(Heartbeat {
                node: NodeId(4),
                broker_epoch: i64::MAX,
                current_metadata_offset: -1,
                want_fence: true,
                want_shut_down: false,
            }),
            Request::AlterPartition(AlterPartition {
                broker_id: NodeId(1),
                broker_epoch: 9,
                topic_id: Uuid([1; 16]),
                partition: 0,
                leader_epoch: 2,
                partition_epoch: 3,
                new_isr: vec![1, 2],
            }),
            Request::ElectLeaders(ElectionType::Unclean, Some(vec![tp()])),
            Request::AlterReassignments(vec![Reassignment {
                partition: tp(),
                replicas: None,
            }]),
            Request::AllocateProducerIds(1, 5),
        ];
        for r in requests {
            let bytes = encode_request(&r).unwrap();
            assert_eq!(decode_request(&bytes).unwrap(), r);
        }
        let replies = vec![
            Response::CreateTopics(vec![CreateTopicResult {
                name: "t".into(),
                error: ApiError::new(ErrorCode::TopicAlreadyExists, "exists"),
                topic_id: Uuid([2; 16]),
                num_partitions: 1,
                replication_factor: 1,
                configs: BTreeMap::from([("k".into(), "v".into())]),
            }]),
            Response::Heartbeat(Err(ApiError::from_code(ErrorCode::StaleBrokerEpoch))),
            Response::PartitionResults(vec![PartitionResult {
                partition: tp(),
                error: ApiError::from_code(ErrorCode::Other(9999)),
            }]),
        ];
        for (offset, r) in replies.into_iter().enumerate() {
            let offset = offset as i64 * 1000 + 7;
            let bytes = encode_reply(&Ok(r.clone()), offset);
            assert_eq!(decode_reply(NodeId(1), &bytes).unwrap(), (r, offset));
        }
    }

    #[test]
    fn failures_travel_as_errors() {
        let not = encode_reply(
            &Err(MetadataError::NotController {
                leader: Some(NodeId(3)),
            }),
            5,
        );
        assert!(matches!(
            decode_reply(NodeId(1), &not),
            Err(MetadataError::NotController {
                leader: Some(NodeId(3))
            })
        ));
        let other = encode_reply(&Err(MetadataError::LogFailed), 5);
        assert!(matches!(
            decode_reply(NodeId(1), &other),
            Err(MetadataError::Remote { .. })
        ));
        // Garbage is an error value, never a panic or a huge allocation.
        for junk in [
            &[][..],
            &[0xff; 3][..],
            &[3, 0xff, 0xff, 0xff, 0xff, 0x0f][..],
        ] {
            assert!(decode_request(junk).is_err());
            assert!(decode_reply(NodeId(1), junk).is_err());
        }
    }
}
