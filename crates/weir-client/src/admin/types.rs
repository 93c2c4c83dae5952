//! The admin client's inputs and results.

use weir_protocol::Uuid;
use weir_types::NodeId;

use crate::cluster::BrokerInfo;

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// The name.
    pub name: String,
    /// Partitions; -1 lets the broker use `num.partitions`.
    pub num_partitions: i32,
    /// Replication factor; -1 lets the broker use `default.replication.factor`.
    pub replication_factor: i16,
    /// Explicit replica assignment (partition -> brokers); when given, partitions and
    /// replication factor must be -1.
    pub assignments: Vec<(i32, Vec<i32>)>,
    /// Topic configs (`retention.ms`, `cleanup.policy`, ...).
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    /// A topic with this many partitions and replicas.
    pub fn new(name: impl Into<String>, num_partitions: i32, replication_factor: i16) -> Self {
        NewTopic {
            name: name.into(),
            num_partitions,
            replication_factor,
            assignments: Vec::new(),
            configs: Vec::new(),
        }
    }

    /// Adds a topic config.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.push((key.into(), value.into()));
        self
    }
}

/// What CreateTopics reported about a created (or validated) topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTopic {
    /// The topic id (CreateTopics v7+; all zero before).
    pub topic_id: Uuid,
    /// The partition count (v5+; -1 before).
    pub num_partitions: i32,
    /// The replication factor (v5+; -1 before).
    pub replication_factor: i16,
    /// The effective configs (v5+).
    pub configs: Vec<ConfigEntry>,
}

/// A topic as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// The name.
    pub name: String,
    /// The topic id (all zero from brokers without ids).
    pub topic_id: Uuid,
    /// Whether it is internal.
    pub is_internal: bool,
    /// The partitions, by index.
    pub partitions: Vec<PartitionDescription>,
}

/// A partition's placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDescription {
    /// The index.
    pub partition: i32,
    /// The leader, if any.
    pub leader: Option<NodeId>,
    /// The leader epoch (-1 if unknown).
    pub leader_epoch: i32,
    /// The replicas.
    pub replicas: Vec<NodeId>,
    /// The in-sync replicas.
    pub isr: Vec<NodeId>,
    /// Offline replicas.
    pub offline_replicas: Vec<NodeId>,
    /// Eligible leader replicas (KIP-966): out of the ISR, but holding every
    /// committed record. Empty when the broker does not report them (Metadata, or
    /// a broker without DescribeTopicPartitions).
    pub eligible_leader_replicas: Vec<NodeId>,
    /// The last known ELR (KIP-966): the last leader of a partition whose ISR
    /// emptied. Empty when not reported.
    pub last_known_elr: Vec<NodeId>,
}

/// The kind of thing a config belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConfigResourceType {
    /// A topic (2).
    Topic,
    /// A broker (4); the name is the node id, or empty for the cluster default.
    Broker,
    /// A broker's loggers (8).
    BrokerLogger,
    /// Another type, by wire value.
    Other(i8),
}

impl ConfigResourceType {
    /// The wire value.
    pub fn as_i8(self) -> i8 {
        match self {
            ConfigResourceType::Topic => 2,
            ConfigResourceType::Broker => 4,
            ConfigResourceType::BrokerLogger => 8,
            ConfigResourceType::Other(v) => v,
        }
    }

    /// The type for a wire value.
    pub fn from_i8(v: i8) -> Self {
        match v {
            2 => ConfigResourceType::Topic,
            4 => ConfigResourceType::Broker,
            8 => ConfigResourceType::BrokerLogger,
            other => ConfigResourceType::Other(other),
        }
    }
}

/// A topic or broker whose configs are described or altered.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfigResource {
    /// The kind.
    pub resource_type: ConfigResourceType,
    /// The topic name or broker id.
    pub name: String,
}

impl ConfigResource {
    /// A topic's configs.
    pub fn topic(name: impl Into<String>) -> Self {
        ConfigResource {
            resource_type: ConfigResourceType::Topic,
            name: name.into(),
        }
    }

    /// A broker's configs.
    pub fn broker(node: i32) -> Self {
        ConfigResource {
            resource_type: ConfigResourceType::Broker,
            name: node.to_string(),
        }
    }
}

/// Where a config value comes from (DescribeConfigs v1+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Set on the topic.
    DynamicTopic,
    /// Set dynamically for this broker.
    DynamicBroker,
    /// Set dynamically as the default of every broker.
    DynamicDefaultBroker,
    /// From the broker's config file.
    StaticBroker,
    /// The built-in default.
    Default,
    /// A dynamic broker logger level.
    DynamicBrokerLogger,
    /// Unknown or another value.
    Unknown(i8),
}

impl ConfigSource {
    /// The source for a wire value.
    pub fn from_i8(v: i8) -> Self {
        match v {
            1 => ConfigSource::DynamicTopic,
            2 => ConfigSource::DynamicBroker,
            3 => ConfigSource::DynamicDefaultBroker,
            4 => ConfigSource::StaticBroker,
            5 => ConfigSource::Default,
            6 => ConfigSource::DynamicBrokerLogger,
            other => ConfigSource::Unknown(other),
        }
    }
}

/// One config entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The key.
    pub name: String,
    /// The value (`None` for sensitive values or unset ones).
    pub value: Option<String>,
    /// Whether it cannot be changed.
    pub read_only: bool,
    /// Whether it is the default.
    pub is_default: bool,
    /// Whether the value is hidden.
    pub is_sensitive: bool,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// The documentation, when asked for and given.
    pub documentation: Option<String>,
}

/// One change in an incremental AlterConfigs (KIP-339).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterConfigOp {
    /// Sets a value.
    Set(String, String),
    /// Removes the override (back to the default).
    Delete(String),
    /// Appends to a list value.
    Append(String, String),
    /// Removes from a list value.
    Subtract(String, String),
}

impl AlterConfigOp {
    /// (name, operation code, value) as the wire has them.
    pub(crate) fn wire(&self) -> (String, i8, Option<String>) {
        match self {
            AlterConfigOp::Set(k, v) => (k.clone(), 0, Some(v.clone())),
            AlterConfigOp::Delete(k) => (k.clone(), 1, None),
            AlterConfigOp::Append(k, v) => (k.clone(), 2, Some(v.clone())),
            AlterConfigOp::Subtract(k, v) => (k.clone(), 3, Some(v.clone())),
        }
    }
}

/// The cluster as DescribeCluster (or Metadata) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// The cluster id.
    pub cluster_id: Option<String>,
    /// The controller, as the broker reports it.
    pub controller_id: Option<NodeId>,
    /// The brokers.
    pub brokers: Vec<BrokerInfo>,
}

/// The kind of leader election ElectLeaders runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElectionType {
    /// Move leadership to the preferred (first) replica when it is in sync and live.
    Preferred,
    /// Elect a leader for leaderless partitions, from outside the ISR if need be
    /// (data written only to the old ISR may be lost).
    Unclean,
}

impl ElectionType {
    /// The wire value.
    pub fn as_i8(self) -> i8 {
        match self {
            ElectionType::Preferred => 0,
            ElectionType::Unclean => 1,
        }
    }
}

/// A replica move in progress (ListPartitionReassignments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionReassignment {
    /// The current replicas: the targets and those being removed.
    pub replicas: Vec<NodeId>,
    /// The replicas being added.
    pub adding_replicas: Vec<NodeId>,
    /// The replicas being removed.
    pub removing_replicas: Vec<NodeId>,
}
