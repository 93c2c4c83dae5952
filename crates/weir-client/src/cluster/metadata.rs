//! The metadata cache: brokers, topics, partitions and their leaders, as the last
//! Metadata responses described them.
//!
//! A [`Metadata`] value is an immutable snapshot; the [`super::Cluster`] swaps in a
//! new one after every refresh, so readers hold an `Arc` without locks. Merging a
//! response follows the Java client's rules: a response for some topics leaves the
//! others alone, a topic the broker says does not exist is dropped, and a partition
//! whose leader epoch would go *backwards* keeps what the cache had (an older broker
//! answered with stale information; KIP-320).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use weir_protocol::messages::metadata::{MetadataResponse, MetadataResponsePartition};
use weir_protocol::Uuid;
use weir_types::{ErrorCode, NodeId};

/// A partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic name.
    pub topic: String,
    /// The partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`-`partition`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A broker as the cluster advertises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// `node.id`.
    pub node_id: NodeId,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// `broker.rack`, if set.
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// `host:port`, with an IPv6 host in brackets.
    pub fn addr(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// One partition's placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The partition index.
    pub partition: i32,
    /// The leader, if there is one.
    pub leader: Option<NodeId>,
    /// The leader epoch (-1 if the broker did not say).
    pub leader_epoch: i32,
    /// All replicas, preferred leader first.
    pub replicas: Vec<NodeId>,
    /// In-sync replicas.
    pub isr: Vec<NodeId>,
    /// Replicas that are offline.
    pub offline_replicas: Vec<NodeId>,
    /// The partition's error in the response (LEADER_NOT_AVAILABLE while electing).
    pub error: ErrorCode,
}

/// One topic's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// The name.
    pub name: String,
    /// The topic id (all zero when the broker predates topic ids).
    pub topic_id: Uuid,
    /// Whether it is internal (`__consumer_offsets`).
    pub is_internal: bool,
    /// Partitions, indexed by partition number (index i is partition i).
    pub partitions: Vec<PartitionInfo>,
}

impl TopicInfo {
    /// The partition, if it exists.
    pub fn partition(&self, partition: i32) -> Option<&PartitionInfo> {
        usize::try_from(partition)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }
}

/// An immutable snapshot of what the client knows about the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// The cluster id (Metadata v2+).
    pub cluster_id: Option<String>,
    /// The controller (in KRaft, a broker that forwards to it).
    pub controller_id: Option<NodeId>,
    /// Live brokers by id.
    pub brokers: BTreeMap<NodeId, BrokerInfo>,
    /// Known topics by name.
    pub topics: BTreeMap<String, TopicInfo>,
}

/// What a response said about a topic that could not be cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicError {
    /// The topic.
    pub topic: String,
    /// The error.
    pub error: ErrorCode,
}

impl Metadata {
    /// A topic by name.
    pub fn topic(&self, name: &str) -> Option<&TopicInfo> {
        self.topics.get(name)
    }

    /// The leader of a partition, if known.
    pub fn leader(&self, tp: &TopicPartition) -> Option<NodeId> {
        self.topic(&tp.topic)?.partition(tp.partition)?.leader
    }

    /// The partition's metadata, if known.
    pub fn partition(&self, tp: &TopicPartition) -> Option<&PartitionInfo> {
        self.topic(&tp.topic)?.partition(tp.partition)
    }

    /// A topic name by id.
    pub fn topic_name(&self, id: &Uuid) -> Option<&str> {
        if *id == Uuid::ZERO {
            return None;
        }
        self.topics
            .values()
            .find(|t| t.topic_id == *id)
            .map(|t| t.name.as_str())
    }

    /// The address of a broker.
    pub fn broker_addr(&self, node: NodeId) -> Option<String> {
        self.brokers.get(&node).map(BrokerInfo::addr)
    }

    /// This snapshot updated with a response. `all_topics` says the request asked for
    /// every topic, so topics missing from the answer are gone. Returns the topics the
    /// response reported errors for (they are not cached).
    pub fn merged(&self, resp: &MetadataResponse, all_topics: bool) -> (Metadata, Vec<TopicError>) {
        let mut next = Metadata {
            cluster_id: resp.cluster_id.clone().or_else(|| self.cluster_id.clone()),
            controller_id: (resp.controller_id >= 0).then_some(NodeId(resp.controller_id)),
            brokers: resp
                .brokers
                .iter()
                .map(|b| {
                    let id = NodeId(b.node_id);
                    let info = BrokerInfo {
                        node_id: id,
                        host: b.host.clone(),
                        port: b.port,
                        rack: b.rack.clone(),
                    };
                    (id, info)
                })
                .collect(),
            topics: if all_topics {
                BTreeMap::new()
            } else {
                self.topics.clone()
            },
        };
        let mut errors = Vec::new();
        let mut seen = BTreeSet::new();
        for t in &resp.topics {
            let Some(name) = t.name.clone() else { continue };
            seen.insert(name.clone());
            let error = ErrorCode::from_code(t.error_code);
            if !error.is_ok() {
                if error == ErrorCode::UnknownTopicOrPartition {
                    next.topics.remove(&name);
                }
                errors.push(TopicError { topic: name, error });
                continue;
            }
            let old = self.topics.get(&name);
            let mut partitions: Vec<PartitionInfo> = t
                .partitions
                .iter()
                .filter(|p| p.partition_index >= 0)
                .map(|p| {
                    let fresh = partition_info(p);
                    match old.and_then(|o| o.partition(p.partition_index)) {
                        Some(prev) if is_stale(prev.leader_epoch, fresh.leader_epoch) => {
                            prev.clone()
                        }
                        _ => fresh,
                    }
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            // Index i must be partition i; a response with holes is padded with
            // leaderless placeholders rather than trusted to be dense.
            let dense = partitions
                .iter()
                .enumerate()
                .all(|(i, p)| usize::try_from(p.partition).is_ok_and(|n| n == i));
            if !dense {
                partitions = densify(partitions);
            }
            next.topics.insert(
                name.clone(),
                TopicInfo {
                    name,
                    topic_id: t.topic_id,
                    is_internal: t.is_internal,
                    partitions,
                },
            );
        }
        (next, errors)
    }
}

/// Whether `fresh_epoch` goes backwards from `cached_epoch` (both known).
fn is_stale(cached_epoch: i32, fresh_epoch: i32) -> bool {
    cached_epoch >= 0 && fresh_epoch >= 0 && fresh_epoch < cached_epoch
}

fn partition_info(p: &MetadataResponsePartition) -> PartitionInfo {
    PartitionInfo {
        partition: p.partition_index,
        leader: (p.leader_id >= 0).then_some(NodeId(p.leader_id)),
        leader_epoch: p.leader_epoch,
        replicas: p.replica_nodes.iter().copied().map(NodeId).collect(),
        isr: p.isr_nodes.iter().copied().map(NodeId).collect(),
        offline_replicas: p.offline_replicas.iter().copied().map(NodeId).collect(),
        error: ErrorCode::from_code(p.error_code),
    }
}

/// Pads a sorted partition list with holes into index == partition order. Bounded by
/// the largest index present, which the response's own size bounds.
fn densify(sorted: Vec<PartitionInfo>) -> Vec<PartitionInfo> {
    let mut out: Vec<PartitionInfo> = Vec::with_capacity(sorted.len());
    for p in sorted {
        let Ok(idx) = usize::try_from(p.partition) else {
            continue;
        };
        // Refuse absurd gaps (a hostile response claiming partition 2^31 - 1).
        if idx > out.len() + 100_000 {
            continue;
        }
        while out.len() < idx {
            let missing = i32::try_from(out.len()).unwrap_or(i32::MAX);
            out.push(PartitionInfo {
                partition: missing,
                leader: None,
                leader_epoch: -1,
                replicas: Vec::new(),
                isr: Vec::new(),
                offline_replicas: Vec::new(),
                error: ErrorCode::LeaderNotAvailable,
            });
        }
        if out.len() == idx {
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_protocol::messages::metadata::{MetadataResponseBroker, MetadataResponseTopic};

    fn part(index: i32, leader: i32, epoch: i32) -> MetadataResponsePartition {
        MetadataResponsePartition {
            partition_index: index,
            leader_id: leader,
            leader_epoch: epoch,
            replica_nodes: vec![leader],
            isr_nodes: vec![leader],
            ..Default::default()
        }
    }

    fn resp(topics: Vec<(&str, i16, Vec<MetadataResponsePartition>)>) -> MetadataResponse {
        MetadataResponse {
            brokers: vec![MetadataResponseBroker {
                node_id: 1,
                host: "h".into(),
                port: 9092,
                rack: None,
            }],
            controller_id: 1,
            topics: topics
                .into_iter()
                .map(|(n, e, p)| MetadataResponseTopic {
                    error_code: e,
                    name: Some(n.into()),
                    partitions: p,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn merge_keeps_other_topics_and_drops_unknown_ones() {
        let (m, errs) = Metadata::default().merged(
            &resp(vec![
                ("a", 0, vec![part(1, 1, 0), part(0, 1, 0)]),
                ("b", 0, vec![part(0, 1, 0)]),
            ]),
            false,
        );
        assert!(errs.is_empty());
        assert_eq!(m.topic("a").unwrap().partitions[1].partition, 1);
        assert_eq!(m.leader(&TopicPartition::new("a", 0)), Some(NodeId(1)));
        assert_eq!(m.broker_addr(NodeId(1)).as_deref(), Some("h:9092"));
        let (m2, errs) = m.merged(&resp(vec![("b", 3, vec![])]), false);
        assert_eq!(
            errs,
            vec![TopicError {
                topic: "b".into(),
                error: ErrorCode::UnknownTopicOrPartition
            }]
        );
        assert!(m2.topic("a").is_some() && m2.topic("b").is_none());
        let (m3, _) = m.merged(&resp(vec![("b", 0, vec![part(0, 1, 0)])]), true);
        assert!(
            m3.topic("a").is_none(),
            "an all-topics response replaces the set"
        );
    }

    #[test]
    fn leader_epoch_never_goes_backwards() {
        let (m, _) = Metadata::default().merged(&resp(vec![("a", 0, vec![part(0, 2, 5)])]), false);
        let (m2, _) = m.merged(&resp(vec![("a", 0, vec![part(0, 1, 4)])]), false);
        assert_eq!(m2.leader(&TopicPartition::new("a", 0)), Some(NodeId(2)));
        let (m3, _) = m2.merged(&resp(vec![("a", 0, vec![part(0, 3, 6)])]), false);
        assert_eq!(m3.leader(&TopicPartition::new("a", 0)), Some(NodeId(3)));
    }

    #[test]
    fn partition_holes_become_leaderless_placeholders() {
        let (m, _) = Metadata::default().merged(
            &resp(vec![("a", 0, vec![part(2, 1, 0), part(0, 1, 0)])]),
            false,
        );
        let t = m.topic("a").unwrap();
        assert_eq!(t.partitions.len(), 3);
        assert_eq!(t.partitions[1].leader, None);
        assert_eq!(t.partitions[2].leader, Some(NodeId(1)));
    }
}
