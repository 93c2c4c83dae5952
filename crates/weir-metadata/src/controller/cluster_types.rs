//! Requests and results of the cluster controller's broker-facing APIs: broker
//! registration and heartbeats, AlterPartition, ElectLeaders, partition
//! reassignments and producer id blocks.
//!
//! Like [`types`](super::types), these carry the fields of the Kafka requests
//! without their wire versions. They are also what a controller handle forwards to
//! the active controller, so they are serializable (see `codec`).

use serde::{Deserialize, Serialize};
use weir_protocol::Uuid;
use weir_types::NodeId;

use super::codec::{node_id, uuid};
use super::types::ApiError;
use crate::image::Endpoint;

/// A broker's registration (Kafka's BrokerRegistration request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    /// The broker's `node.id`.
    #[serde(with = "node_id")]
    pub node: NodeId,
    /// A fresh id per start of the broker process: a registration with another
    /// incarnation is a restart (new broker epoch), the same one a retry.
    #[serde(with = "uuid")]
    pub incarnation_id: Uuid,
    /// The advertised listeners.
    pub listeners: Vec<Endpoint>,
    /// `broker.rack`, if set.
    pub rack: Option<String>,
    /// The broker epoch the previous process shut down cleanly at, or -1 (Kafka's
    /// PreviousBrokerEpoch): a new incarnation without the epoch of the
    /// registration it replaces is taken out of every ELR (KIP-966).
    pub previous_broker_epoch: i64,
}

/// One broker heartbeat (Kafka's BrokerHeartbeat request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The broker.
    #[serde(with = "node_id")]
    pub node: NodeId,
    /// The epoch its registration returned.
    pub broker_epoch: i64,
    /// The offset of the last metadata record the broker has applied.
    pub current_metadata_offset: i64,
    /// Whether the broker wants to stay (or become) fenced.
    pub want_fence: bool,
    /// Whether the broker wants to shut down (controlled shutdown).
    pub want_shut_down: bool,
}

/// The controller's answer to a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HeartbeatReply {
    /// Whether the broker has applied the metadata up to its own registration.
    pub is_caught_up: bool,
    /// Whether the broker is fenced (leads nothing, joins no ISR).
    pub is_fenced: bool,
    /// Whether the broker may finish its controlled shutdown now.
    pub should_shut_down: bool,
}

/// One partition of an AlterPartition request: its leader proposes a new ISR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterPartition {
    /// The leader asking.
    #[serde(with = "node_id")]
    pub broker_id: NodeId,
    /// Its broker epoch.
    pub broker_epoch: i64,
    /// The topic.
    #[serde(with = "uuid")]
    pub topic_id: Uuid,
    /// The partition.
    pub partition: i32,
    /// The leader epoch the leader is at.
    pub leader_epoch: i32,
    /// The partition epoch the leader last saw.
    pub partition_epoch: i32,
    /// The proposed ISR (must contain the leader).
    pub new_isr: Vec<i32>,
}

/// A partition's leadership and ISR after an AlterPartition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// The leader (-1: none).
    pub leader: i32,
    /// The leader epoch.
    pub leader_epoch: i32,
    /// The ISR.
    pub isr: Vec<i32>,
    /// The partition epoch.
    pub partition_epoch: i32,
}

/// ElectLeaders' election type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElectionType {
    /// Move leadership to the preferred (first) replica if it is in the ISR and live
    /// (wire value 0).
    Preferred,
    /// Elect a leader for leaderless partitions, from outside the ISR if needed
    /// (wire value 1).
    Unclean,
}

impl ElectionType {
    /// The type for a wire value, if it is one.
    pub fn from_i8(v: i8) -> Option<ElectionType> {
        match v {
            0 => Some(ElectionType::Preferred),
            1 => Some(ElectionType::Unclean),
            _ => None,
        }
    }
}

/// A partition named by topic name and index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TopicPartition {
    /// The topic name.
    pub topic: String,
    /// The partition index.
    pub partition: i32,
}

/// The result for one partition of ElectLeaders or AlterPartitionReassignments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionResult {
    /// The partition.
    pub partition: TopicPartition,
    /// Success or why not.
    pub error: ApiError,
}

/// One partition of an AlterPartitionReassignments request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reassignment {
    /// The partition.
    pub partition: TopicPartition,
    /// The target replicas, or `None` to cancel an ongoing reassignment.
    pub replicas: Option<Vec<i32>>,
}

/// An ongoing reassignment (ListPartitionReassignments).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OngoingReassignment {
    /// The partition.
    pub partition: TopicPartition,
    /// The current replica set (targets and those being removed).
    pub replicas: Vec<i32>,
    /// Replicas being added.
    pub adding_replicas: Vec<i32>,
    /// Replicas being removed.
    pub removing_replicas: Vec<i32>,
}

/// A block of producer ids handed to a broker (AllocateProducerIds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerIdBlock {
    /// The first id of the block.
    pub first_id: i64,
    /// How many ids it holds.
    pub size: i32,
}
