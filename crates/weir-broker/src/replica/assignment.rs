//! What the replica manager needs from the cluster metadata, as plain values.
//!
//! The replica manager reconciles the partitions it hosts with a full description of
//! the topics ([`TopicAssignment`]), not with deltas: the controller publishes images
//! on a `watch` channel, which may skip intermediate images, so comparing "what is
//! hosted" with "what should be hosted" is the only robust way to follow it. These
//! structs mirror the fields of `weir-metadata`'s `TopicImage` / `PartitionImage`
//! that the data path uses, so the replica layer stays testable without a
//! controller; the metadata publisher converts an image into them.

use std::collections::BTreeMap;

use weir_metadata::MetadataImage;
use weir_protocol::Uuid;
use weir_types::{LeaderEpoch, NodeId};

/// One topic as the metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicAssignment {
    /// The topic id; a topic re-created under the same name gets a new one, and its
    /// old logs are deleted rather than reused.
    pub topic_id: Uuid,
    /// The topic name (the partition directories are `<name>-<partition>`).
    pub name: String,
    /// Topic-level config overrides (`retention.ms` -> "86400000").
    pub configs: BTreeMap<String, String>,
    /// Every partition of the topic, any order.
    pub partitions: Vec<PartitionAssignment>,
}

/// One partition's registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionAssignment {
    /// The partition id.
    pub partition: i32,
    /// Replicas, preferred leader first. The partition is hosted on this broker
    /// only if this list names it.
    pub replicas: Vec<NodeId>,
    /// The in-sync replicas (acks=all waits for these; `min.insync.replicas` counts
    /// them).
    pub isr: Vec<NodeId>,
    /// The leader, or `None` while the partition has none.
    pub leader: Option<NodeId>,
    /// The leader epoch; bumps with every leader change.
    pub leader_epoch: LeaderEpoch,
    /// Bumps with every change to the registration.
    pub partition_epoch: i32,
}

/// Every topic of `image`, as the replica manager takes them.
pub fn assignments_from_image(image: &MetadataImage) -> Vec<TopicAssignment> {
    image
        .topics()
        .map(|topic| TopicAssignment {
            topic_id: topic.id,
            name: topic.name.clone(),
            configs: topic.configs.clone(),
            partitions: topic
                .partitions
                .iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    Some(PartitionAssignment {
                        partition: i32::try_from(i).ok()?,
                        replicas: p.replicas.clone(),
                        isr: p.isr.clone(),
                        leader: p.leader,
                        leader_epoch: p.leader_epoch,
                        partition_epoch: p.partition_epoch,
                    })
                })
                .collect(),
        })
        .collect()
}

impl TopicAssignment {
    /// A topic whose `partition_count` partitions are all led by `node` alone, in
    /// leader epoch 0: what a single-node cluster creates (and what tests use).
    pub fn single_node(
        name: impl Into<String>,
        topic_id: Uuid,
        partition_count: i32,
        node: NodeId,
    ) -> TopicAssignment {
        TopicAssignment {
            topic_id,
            name: name.into(),
            configs: BTreeMap::new(),
            partitions: (0..partition_count.max(0))
                .map(|partition| PartitionAssignment {
                    partition,
                    replicas: vec![node],
                    isr: vec![node],
                    leader: Some(node),
                    leader_epoch: LeaderEpoch(0),
                    partition_epoch: 0,
                })
                .collect(),
        }
    }

    /// The same topic with one config override set.
    pub fn with_config(mut self, name: &str, value: &str) -> TopicAssignment {
        self.configs.insert(name.to_string(), value.to_string());
        self
    }
}
