//! What changed for one broker between two images (Kafka's `TopicsDelta.localChanges`).
//!
//! The controller publishes images through a `watch` channel, which keeps only the
//! latest one: a slow subscriber may skip images. So the replica manager compares the
//! image it last acted on with the current one instead of reading deltas: partitions
//! it now leads or follows (new, or with a changed registration), partitions it must
//! stop hosting (topic deleted, or replica moved away), and topics whose configs
//! changed. Comparing by topic id makes a topic deleted and re-created under the same
//! name a delete of the old partitions plus new ones.

use std::sync::Arc;

use weir_protocol::Uuid;
use weir_types::NodeId;

use crate::image::{MetadataImage, PartitionImage, TopicImage};

/// A partition hosted on the local broker, with its new registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPartition {
    /// The topic id.
    pub topic_id: Uuid,
    /// The topic name.
    pub topic: String,
    /// The partition id.
    pub partition: i32,
    /// The registration in the new image.
    pub image: PartitionImage,
}

/// A partition the local broker no longer hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedPartition {
    /// The topic id.
    pub topic_id: Uuid,
    /// The topic name.
    pub topic: String,
    /// The partition id.
    pub partition: i32,
    /// Whether the whole topic was deleted (its logs go), rather than the replica
    /// moved elsewhere.
    pub topic_deleted: bool,
}

/// Changes that concern one broker; see the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalChanges {
    /// Partitions the broker now leads whose registration is new or changed.
    pub leaders: Vec<LocalPartition>,
    /// Partitions the broker now follows whose registration is new or changed.
    pub followers: Vec<LocalPartition>,
    /// Partitions the broker must stop hosting.
    pub removed: Vec<RemovedPartition>,
    /// Topics hosted here (by id) whose config overrides changed.
    pub config_changed: Vec<Uuid>,
}

impl LocalChanges {
    /// The changes for `node` from image `old` to image `new`.
    pub fn between(old: &MetadataImage, new: &MetadataImage, node: NodeId) -> LocalChanges {
        let mut out = LocalChanges::default();
        for topic in new.topics() {
            let before = old.topic_by_id(topic.id);
            if before.is_some_and(|b| Arc::ptr_eq(b, topic)) {
                continue;
            }
            out.topic(before.map(Arc::as_ref), topic, node);
        }
        for topic in old.topics() {
            if new.topic_by_id(topic.id).is_none() {
                for (i, p) in topic.partitions.iter().enumerate() {
                    if p.has_replica(node) {
                        out.removed.push(removed(topic, i, true));
                    }
                }
            }
        }
        out
    }

    /// Whether nothing changed for the broker.
    pub fn is_empty(&self) -> bool {
        self.leaders.is_empty()
            && self.followers.is_empty()
            && self.removed.is_empty()
            && self.config_changed.is_empty()
    }

    fn topic(&mut self, before: Option<&TopicImage>, topic: &TopicImage, node: NodeId) {
        let mut hosted = false;
        for (i, p) in topic.partitions.iter().enumerate() {
            let old = before.and_then(|b| b.partitions.get(i));
            if p.has_replica(node) {
                hosted = true;
                if old == Some(p) {
                    continue;
                }
                let local = LocalPartition {
                    topic_id: topic.id,
                    topic: topic.name.clone(),
                    partition: i32::try_from(i).unwrap_or(i32::MAX),
                    image: p.clone(),
                };
                if p.leader == Some(node) {
                    self.leaders.push(local);
                } else {
                    self.followers.push(local);
                }
            } else if old.is_some_and(|o| o.has_replica(node)) {
                self.removed.push(removed(topic, i, false));
            }
        }
        if hosted && before.is_some_and(|b| b.configs != topic.configs) {
            self.config_changed.push(topic.id);
        }
    }
}

fn removed(topic: &TopicImage, i: usize, topic_deleted: bool) -> RemovedPartition {
    RemovedPartition {
        topic_id: topic.id,
        topic: topic.name.clone(),
        partition: i32::try_from(i).unwrap_or(i32::MAX),
        topic_deleted,
    }
}
