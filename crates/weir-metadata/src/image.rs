//! The metadata image: the cluster's state as of one offset of the metadata log.
//!
//! An image is immutable and shared as `Arc<MetadataImage>`: the controller publishes
//! a new one after every change, and readers (the Metadata handler, the replica
//! manager) hold whichever one they last saw without locking. Topics are `Arc`ed
//! individually, so a new image shares every topic a change did not touch. Maps are
//! ordered, so iteration — and thus every response built from an image — is
//! deterministic.

use std::collections::BTreeMap;
use std::sync::Arc;

use weir_protocol::Uuid;
use weir_types::{LeaderEpoch, NodeId, Offset};

/// Where an image stands in the metadata log (Kafka's `MetadataProvenance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataProvenance {
    /// Offset of the last record the image contains; -1 for the empty image.
    pub last_offset: Offset,
    /// Epoch (controller leader epoch) of the batch that held that record; -1 if none.
    pub last_epoch: i32,
    /// Append time of that batch, in ms since the epoch; -1 if none.
    pub last_log_time_ms: i64,
}

impl MetadataProvenance {
    /// The provenance of the empty image.
    pub const EMPTY: MetadataProvenance = MetadataProvenance {
        last_offset: Offset(-1),
        last_epoch: -1,
        last_log_time_ms: -1,
    };
}

impl Default for MetadataProvenance {
    fn default() -> Self {
        Self::EMPTY
    }
}

/// A broker listener as registered: where clients and followers reach the broker.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Endpoint {
    /// The listener name (`PLAINTEXT`, ...).
    pub name: String,
    /// The advertised host.
    pub host: String,
    /// The advertised port.
    pub port: u16,
    /// Kafka's security protocol id (0 PLAINTEXT, 1 SSL, 2 SASL_PLAINTEXT, 3 SASL_SSL).
    pub security_protocol: i16,
}

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerImage {
    /// The broker's `node.id`.
    pub id: NodeId,
    /// Random per broker process start; tells a restarted broker from the old one.
    pub incarnation_id: Uuid,
    /// The offset of the registration record; fences requests of older incarnations.
    pub epoch: i64,
    /// Listeners, in registration order.
    pub endpoints: Vec<Endpoint>,
    /// `broker.rack`, if set.
    pub rack: Option<String>,
    /// A fenced broker leads nothing and is not in any new ISR.
    pub fenced: bool,
    /// Whether the broker is shutting down and giving up leadership.
    pub in_controlled_shutdown: bool,
}

impl BrokerImage {
    /// The endpoint of listener `name`, if the broker has one.
    pub fn endpoint(&self, name: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.name == name)
    }
}

/// One partition's registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionImage {
    /// Replicas in preferred order; the first is the preferred leader.
    pub replicas: Vec<NodeId>,
    /// The in-sync replicas.
    pub isr: Vec<NodeId>,
    /// Replicas being removed by a reassignment (empty without one).
    pub removing_replicas: Vec<NodeId>,
    /// Replicas being added by a reassignment (empty without one).
    pub adding_replicas: Vec<NodeId>,
    /// The leader, or `None` when the partition has none (offline).
    pub leader: Option<NodeId>,
    /// The leader epoch: bumps with every leader change, fences stale leaders.
    pub leader_epoch: LeaderEpoch,
    /// Bumps with every change to the partition (Kafka's partition epoch).
    pub partition_epoch: i32,
    /// 1 while recovering from an unclean election, else 0.
    pub leader_recovery_state: i8,
    /// Eligible leader replicas (KIP-966): replicas that left the ISR while it was
    /// below `min.insync.replicas`. The high watermark cannot advance in that state,
    /// so each holds every committed record and may lead when no ISR member can.
    /// Never overlaps the ISR.
    pub elr: Vec<NodeId>,
    /// The last leader, kept when the ISR became empty (KIP-966's LastKnownElr as
    /// Kafka fills it): with the ISR and ELR both empty it may lead again.
    pub last_known_elr: Vec<NodeId>,
}

impl PartitionImage {
    /// The leader as the wire writes it: -1 for none.
    pub fn leader_id(&self) -> i32 {
        self.leader.map_or(-1, NodeId::get)
    }

    /// Whether `node` holds a replica of this partition.
    pub fn has_replica(&self, node: NodeId) -> bool {
        self.replicas.contains(&node)
    }
}

/// A topic: its id, name, partitions and dynamic configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    /// The topic id; a topic deleted and re-created under the same name gets a new one.
    pub id: Uuid,
    /// The topic name.
    pub name: String,
    /// Partitions, indexed by partition id (ids are 0..len, without gaps).
    pub partitions: Vec<PartitionImage>,
    /// Topic-level config overrides (`retention.ms` -> "86400000"); names absent here
    /// take the broker default.
    pub configs: BTreeMap<String, String>,
}

impl TopicImage {
    /// Partition `id`, if it exists.
    pub fn partition(&self, id: i32) -> Option<&PartitionImage> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }

    /// The replication factor (the replica count of partition 0; 0 without partitions).
    pub fn replication_factor(&self) -> usize {
        self.partitions.first().map_or(0, |p| p.replicas.len())
    }
}

/// A config resource other than a topic (topic configs live in [`TopicImage`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfigResource {
    /// DescribeConfigs' resource type (4 = broker).
    pub resource_type: i8,
    /// The resource name ("" = the cluster-wide broker default).
    pub name: String,
}

/// The cluster's metadata as of [`MetadataImage::provenance`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetadataImage {
    /// The cluster id (from `meta.properties`; not a record).
    pub(crate) cluster_id: String,
    /// Where in the metadata log this image stands.
    pub(crate) provenance: MetadataProvenance,
    /// Finalized feature levels (`metadata.version` -> 7).
    pub(crate) features: BTreeMap<String, i16>,
    /// Registered brokers by id.
    pub(crate) brokers: BTreeMap<NodeId, BrokerImage>,
    /// Topics by id.
    pub(crate) topics_by_id: BTreeMap<Uuid, Arc<TopicImage>>,
    /// Topic ids by name.
    pub(crate) topic_ids_by_name: BTreeMap<String, Uuid>,
    /// Dynamic configs of resources other than topics.
    pub(crate) other_configs: BTreeMap<ConfigResource, BTreeMap<String, String>>,
    /// The first producer id of the next block the controller hands out (Kafka's
    /// ProducerIdsImage); 0 before any block.
    pub(crate) next_producer_id: i64,
}

impl MetadataImage {
    /// The image of an empty metadata log of cluster `cluster_id`.
    pub fn empty(cluster_id: impl Into<String>) -> Self {
        MetadataImage {
            cluster_id: cluster_id.into(),
            ..MetadataImage::default()
        }
    }

    /// The cluster id.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// Where in the metadata log this image stands.
    pub fn provenance(&self) -> MetadataProvenance {
        self.provenance
    }

    /// The offset of the last record in the image (-1 if none).
    pub fn offset(&self) -> Offset {
        self.provenance.last_offset
    }

    /// Finalized feature levels.
    pub fn features(&self) -> &BTreeMap<String, i16> {
        &self.features
    }

    /// Registered brokers by id.
    pub fn brokers(&self) -> &BTreeMap<NodeId, BrokerImage> {
        &self.brokers
    }

    /// Broker `id`, if registered.
    pub fn broker(&self, id: NodeId) -> Option<&BrokerImage> {
        self.brokers.get(&id)
    }

    /// Topics in id order.
    pub fn topics(&self) -> impl Iterator<Item = &Arc<TopicImage>> {
        self.topics_by_id.values()
    }

    /// Topics in name order.
    pub fn topics_by_name(&self) -> impl Iterator<Item = &Arc<TopicImage>> {
        self.topic_ids_by_name
            .values()
            .filter_map(|id| self.topics_by_id.get(id))
    }

    /// The number of topics.
    pub fn topic_count(&self) -> usize {
        self.topics_by_id.len()
    }

    /// Topic `name`, if it exists.
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topic_ids_by_name
            .get(name)
            .and_then(|id| self.topics_by_id.get(id))
    }

    /// The topic with id `id`, if it exists.
    pub fn topic_by_id(&self, id: Uuid) -> Option<&Arc<TopicImage>> {
        self.topics_by_id.get(&id)
    }

    /// Partition `partition` of topic `name`, if both exist.
    pub fn partition(&self, name: &str, partition: i32) -> Option<&PartitionImage> {
        self.topic(name).and_then(|t| t.partition(partition))
    }

    /// Dynamic configs of a non-topic resource (empty if none).
    pub fn configs(&self, resource: &ConfigResource) -> Option<&BTreeMap<String, String>> {
        self.other_configs.get(resource)
    }

    /// The first producer id of the next block the controller will hand out.
    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }

    /// Whether broker `id` may lead or join an ISR: registered, unfenced, and not
    /// in controlled shutdown.
    pub fn is_usable(&self, id: NodeId) -> bool {
        self.brokers
            .get(&id)
            .is_some_and(|b| !b.fenced && !b.in_controlled_shutdown)
    }

    /// Brokers that can take new replicas: registered and not fenced.
    pub fn usable_brokers(&self) -> impl Iterator<Item = &BrokerImage> {
        self.brokers
            .values()
            .filter(|b| !b.fenced && !b.in_controlled_shutdown)
    }

    /// Checks the image's internal invariants (the two topic maps agree; partitions
    /// are well formed). A violation is a bug in replay; the controller asserts this
    /// after every change in debug builds and tests.
    pub fn check_invariants(&self) -> Result<(), String> {
        if self.topics_by_id.len() != self.topic_ids_by_name.len() {
            return Err("topic maps differ in size".into());
        }
        for (name, id) in &self.topic_ids_by_name {
            match self.topics_by_id.get(id) {
                Some(t) if &t.name == name && t.id == *id => {}
                _ => return Err(format!("topic {name} does not map back to its id")),
            }
        }
        for t in self.topics_by_id.values() {
            for (i, p) in t.partitions.iter().enumerate() {
                if let Some(l) = p.leader {
                    if !p.isr.contains(&l) && !p.isr.is_empty() {
                        return Err(format!("{}-{i}: leader {l} not in ISR", t.name));
                    }
                }
                if p.isr.iter().any(|r| !p.replicas.contains(r)) {
                    return Err(format!("{}-{i}: ISR member not a replica", t.name));
                }
                if p.elr.iter().any(|r| p.isr.contains(r)) {
                    return Err(format!(
                        "{}-{i}: ELR {:?} overlaps ISR {:?}",
                        t.name, p.elr, p.isr
                    ));
                }
            }
        }
        Ok(())
    }
}
