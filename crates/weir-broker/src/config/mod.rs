//! Broker configuration: Kafka's broker config names, Weir's defaults.
//!
//! [`BrokerConfig`] holds every broker-level setting Weir uses, each documented with
//! its Kafka name, its default and why. Settings arrive in layers: the defaults,
//! then a Kafka-style properties file ([`BrokerConfig::apply_file`]), then
//! command-line overrides ([`BrokerConfig::set`]); [`BrokerConfig::validate`] checks
//! the result as a whole. Names follow Kafka so a `server.properties` can be reused:
//! keys Weir does not use are warnings ([`ConfigWarning`]), never errors, while a
//! value Weir cannot use is an error that says what to write instead.
//!
//! The cluster settings (`process.roles`, `controller.quorum.voters`, the controller
//! listener) are checked together by `cluster.rs`: without voters the node is the
//! single-node cluster `weir server` starts with no arguments.

mod cluster;
#[cfg(test)]
mod cluster_tests;
mod java_properties;
mod listener;
mod properties;
mod validate;

use std::path::PathBuf;

use weir_types::NodeId;

pub use cluster::{
    parse_voters, voters_to_string, ProcessRoles, QuorumVoters, VoterAddress,
    DEFAULT_CONTROLLER_LISTENER_NAME,
};
pub use java_properties::parse_properties;
pub use listener::{ListenerConfig, DEFAULT_LISTENER_NAME};
pub use properties::{ConfigWarning, Setting};

/// `log.retention.ms` / `log.roll.ms` default: 7 days, as in Kafka.
const SEVEN_DAYS_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// Smallest `log.segment.bytes`: far below any useful size, but it stops a typo like
/// `log.segment.bytes=1` from rolling a segment per batch.
pub const LOG_SEGMENT_BYTES_MIN: u64 = 1024;

/// A configuration problem: unreadable file, bad value, or an inconsistent whole.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The properties file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file as given.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A value that does not parse for its key.
    #[error("invalid value {value:?} for {key}: {reason}")]
    InvalidValue {
        /// The config key.
        key: String,
        /// The value as written.
        value: String,
        /// What a valid value looks like.
        reason: String,
    },
    /// A line of a properties file that cannot be read as `key=value`.
    #[error("{reason}")]
    Syntax {
        /// What is wrong with the line.
        reason: String,
    },
    /// A setting that parsed but cannot work, alone or with the others.
    #[error("{key}: {reason}")]
    Invalid {
        /// The key to change.
        key: &'static str,
        /// What is wrong and what to do.
        reason: String,
    },
    /// Another error, located: `server.properties line 12` or `--override`.
    #[error("{origin}: {error}")]
    At {
        /// Where the setting came from.
        origin: String,
        /// What is wrong with it.
        error: Box<ConfigError>,
    },
}

/// `compression.type`: the codec the broker stores batches in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionType {
    /// Keep whatever codec the producer used (no recompression).
    Producer,
    /// Store uncompressed.
    Uncompressed,
    /// Recompress with gzip.
    Gzip,
    /// Recompress with snappy.
    Snappy,
    /// Recompress with lz4.
    Lz4,
    /// Recompress with zstd.
    Zstd,
}

/// `log.cleanup.policy`: what happens to old segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// Delete segments past retention (`delete`).
    pub delete: bool,
    /// Keep only the latest record per key (`compact`).
    pub compact: bool,
}

/// Every broker-level setting Weir uses, under Kafka's names.
///
/// Durations carry their unit in the name (`_ms`); `Option` is Kafka's `-1`
/// ("unlimited") or an unset value.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerConfig {
    /// `node.id` (alias `broker.id`): this node's id in the cluster. Default: 1, so a
    /// single node needs no configuration; a cluster gives each node its own.
    pub node_id: NodeId,
    /// `listeners`: where to accept connections. Default: `PLAINTEXT://127.0.0.1:9092`,
    /// loopback rather than Kafka's all-interfaces, so a default start exposes
    /// nothing to the network. Entries named in `controller.listener.names` carry
    /// controller traffic only ([`BrokerConfig::controller_listener`]); the others
    /// serve clients ([`BrokerConfig::client_listeners`]).
    pub listeners: Vec<ListenerConfig>,
    /// `advertised.listeners`: the addresses handed to clients in Metadata (and, in a
    /// cluster, registered with the controller, so other brokers' followers fetch
    /// from them). Default:
    /// unset, meaning each listener's bound address (the real port when listening on
    /// port 0); required when a listener binds all interfaces, because 0.0.0.0 is
    /// not an address a client can connect to.
    pub advertised_listeners: Option<Vec<ListenerConfig>>,
    /// `log.dirs` (alias `log.dir`): directories holding partition data; each is
    /// locked by the running broker. Default: `./weir-data`, the interface
    /// contract's embedded default.
    pub log_dirs: Vec<PathBuf>,

    /// `cluster.id`: the cluster this node belongs to, in Kafka's form (22
    /// characters of URL-safe base64, e.g. from `weir cluster new-id`). A new data
    /// directory is formatted with it; one formatted for another cluster refuses
    /// to start. Kafka sets it with `kafka-storage format -t`. Default: unset, so
    /// a single node picks a random id and a quorum derives one from its voter
    /// ids (two clusters with the same voter ids then share it, and nothing stops
    /// a node of one from talking to the other).
    pub cluster_id: Option<String>,
    /// `process.roles`: `broker`, `controller` or both. Default: unset, meaning both:
    /// the single-node cluster without voters, a full member of the quorum with them.
    /// A broker-only or controller-only node needs `controller.quorum.voters`.
    pub process_roles: Option<ProcessRoles>,
    /// `controller.quorum.voters`: the controller quorum's members, `id@host:port`
    /// each, by node id. Default: empty, the single-node cluster. A node with the
    /// controller role must be among them; ids are unique.
    pub controller_quorum_voters: QuorumVoters,
    /// `controller.listener.names`: names of the listeners that carry controller
    /// traffic (Raft and forwarded requests), never Kafka clients. Default:
    /// `CONTROLLER`, the name Kafka's example configs use.
    pub controller_listener_names: Vec<String>,
    /// `inter.broker.listener.name`: the listener whose advertised address other
    /// brokers' followers fetch from when this node follows them: a follower on node
    /// N connects to the leader's endpoint of the name node N is configured with.
    /// Default: unset, meaning the first client listener (`PLAINTEXT` by default).
    /// Giving each node its own name, with a per-source address advertised for it,
    /// lets tests route every broker-to-broker link through a fault proxy.
    pub inter_broker_listener_name: Option<String>,
    /// `broker.rack`: this broker's rack, for rack-aware placement of replicas.
    /// Default: unset (placement ignores racks).
    pub broker_rack: Option<String>,
    /// `replica.selector.class`: how a leader picks the replica a consumer should
    /// fetch from (KIP-392). Kafka's `RackAwareReplicaSelector` (its class name,
    /// or that short name) sends a consumer whose `client.rack` is another rack
    /// than the leader's to an in-sync follower of its own rack. Default: unset,
    /// consumers fetch from the leader (they may still be sent to followers by
    /// hand: any follower serves Fetch v11+ up to its high watermark).
    pub replica_selector_rack_aware: bool,
    /// `broker.session.timeout.ms`: the controller fences a broker that has not
    /// heartbeated for this long. Default: 9000, Kafka's.
    pub broker_session_timeout_ms: u64,
    /// `broker.heartbeat.interval.ms`: how often a broker heartbeats to the active
    /// controller. Default: 2000, Kafka's; below the session timeout, so one lost
    /// heartbeat does not fence a broker.
    pub broker_heartbeat_interval_ms: u64,
    /// `controlled.shutdown.enable`: on a clean stop, ask the controller to move
    /// leadership away first, so clients see no unavailable partitions. Default:
    /// true, Kafka's.
    pub controlled_shutdown_enable: bool,
    /// `controller.quorum.election.timeout.ms`: how long a voter waits for a leader
    /// before it stands for election. Default: 1000, Kafka's.
    pub controller_quorum_election_timeout_ms: u64,
    /// `controller.quorum.fetch.timeout.ms`: a follower that hears nothing from the
    /// leader for this long starts an election. Default: 2000, Kafka's.
    pub controller_quorum_fetch_timeout_ms: u64,
    /// `metadata.log.max.snapshot.interval.ms`: snapshot the metadata log at least
    /// this often when it has changed, so a restart replays little. Default: 3600000
    /// (1 hour), Kafka's.
    pub metadata_log_max_snapshot_interval_ms: u64,
    /// `metadata.log.max.record.bytes.between.snapshots`: snapshot once this many
    /// bytes of records have been appended since the last one. Default: 20971520
    /// (20 MiB), Kafka's.
    pub metadata_log_max_record_bytes_between_snapshots: u64,

    /// `replica.lag.time.max.ms`: a follower that has not caught up with the leader's
    /// log end for this long leaves the ISR. Default: 30000, Kafka's.
    pub replica_lag_time_max_ms: u64,
    /// `replica.fetch.max.bytes`: bytes a follower asks for per partition per fetch
    /// (a larger first batch is still returned whole). Default: 1048576, Kafka's.
    pub replica_fetch_max_bytes: usize,
    /// `replica.fetch.response.max.bytes`: bytes a follower asks for per fetch
    /// response. Default: 10485760, Kafka's.
    pub replica_fetch_response_max_bytes: usize,
    /// `replica.fetch.min.bytes`: bytes a follower's fetch waits for (up to
    /// `replica.fetch.wait.max.ms`). Default: 1, Kafka's.
    pub replica_fetch_min_bytes: usize,
    /// `replica.fetch.wait.max.ms`: longest a follower's fetch waits at the leader.
    /// Default: 500, Kafka's; at most `replica.lag.time.max.ms`, or an idle follower
    /// would drop out of the ISR between fetches.
    pub replica_fetch_wait_max_ms: u64,
    /// `replica.fetch.backoff.ms`: pause after a failed follower fetch. Default:
    /// 1000, Kafka's.
    pub replica_fetch_backoff_ms: u64,
    /// `replica.socket.timeout.ms`: a follower's fetch request times out after this
    /// long. Default: 30000, Kafka's; at least `replica.fetch.wait.max.ms`.
    pub replica_socket_timeout_ms: u64,
    /// `num.replica.fetchers`: fetcher tasks per source broker. Default: 1, Kafka's.
    pub num_replica_fetchers: usize,
    /// `unclean.leader.election.enable`: elect a replica outside the ISR when no ISR
    /// member is left, losing acknowledged records. Default: false, Kafka's; Weir
    /// never elects a replica that may lack committed data unless this is set.
    pub unclean_leader_election_enable: bool,
    /// `auto.leader.rebalance.enable`: move leadership back to each partition's
    /// preferred replica when brokers return. Default: true, Kafka's.
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.check.interval.seconds`: how often the controller looks for
    /// partitions led away from their preferred replica. Default: 300, Kafka's.
    pub leader_imbalance_check_interval_seconds: u64,
    /// `leader.imbalance.per.broker.percentage`: rebalance a broker's leaders once
    /// more than this percent of its preferred partitions are led elsewhere (0:
    /// any). Default: 10, Kafka's.
    pub leader_imbalance_per_broker_percentage: u32,

    /// `socket.request.max.bytes`: largest request frame; larger ones close the
    /// connection. Default: 104857600 (100 MiB), Kafka's.
    pub socket_request_max_bytes: usize,
    /// `max.connections`: open client connections across all listeners; at the limit
    /// new clients wait in the backlog. Default: 10000. Kafka's default is unlimited;
    /// Weir bounds everything, and each connection costs buffers and a descriptor.
    pub max_connections: usize,
    /// `queued.max.requests.per.connection` (Weir's own): requests read from one
    /// connection but not yet answered; at the limit the connection stops reading.
    /// Default: 100, far above what clients pipeline (Kafka clients default to 5 in
    /// flight) yet small enough to bound memory. Kafka's `queued.max.requests` is a
    /// broker-wide queue Weir does not have.
    pub queued_max_requests_per_connection: usize,
    /// `connections.max.idle.ms`: close connections idle this long. Default: 600000
    /// (10 minutes), Kafka's.
    pub connections_max_idle_ms: u64,

    /// `num.partitions`: partitions of an auto-created topic. Default: 1, Kafka's.
    pub num_partitions: i32,
    /// `default.replication.factor`: replicas of an auto-created topic. Default: 1,
    /// Kafka's, so a single node can create topics.
    pub default_replication_factor: i16,
    /// `min.insync.replicas`: in-sync replicas an acks=all produce needs. Default: 1,
    /// Kafka's.
    pub min_insync_replicas: i32,
    /// `auto.create.topics.enable`: Metadata and Produce create unknown topics.
    /// Default: true, Kafka's; client test suites rely on it.
    pub auto_create_topics_enable: bool,
    /// `delete.topic.enable`: DeleteTopics is allowed. Default: true, Kafka's.
    pub delete_topic_enable: bool,
    /// `message.max.bytes`: largest record batch accepted (MESSAGE_TOO_LARGE above).
    /// Default: 1048588, Kafka's (1 MiB plus batch overhead).
    pub message_max_bytes: usize,
    /// `compression.type`: codec batches are stored in. Default: `producer` (keep the
    /// producer's), Kafka's, and the only choice that stores batches verbatim.
    pub compression_type: CompressionType,
    /// `log.cleanup.policy`: delete or compact old data. Default: `delete`, Kafka's.
    pub log_cleanup_policy: CleanupPolicy,

    /// `log.segment.bytes`: roll to a new segment past this size. Default: 1073741824
    /// (1 GiB), Kafka's. Minimum: [`LOG_SEGMENT_BYTES_MIN`]; maximum: `i32::MAX`, as
    /// index entries hold 32-bit positions.
    pub log_segment_bytes: u64,
    /// `log.roll.ms` (or `log.roll.hours`): roll a segment this old even if not full,
    /// so time retention can delete it. Default: 7 days, Kafka's.
    pub log_roll_ms: u64,
    /// `log.retention.ms` (or `.minutes`, `.hours`; ms wins, as in Kafka): delete
    /// segments older than this; `None` (-1) keeps data forever. Default: 7 days.
    pub log_retention_ms: Option<u64>,
    /// `log.retention.bytes`: delete old segments beyond this size per partition;
    /// `None` (-1) means no size limit. Default: -1, Kafka's.
    pub log_retention_bytes: Option<u64>,
    /// `log.retention.check.interval.ms`: how often retention runs. Default: 300000
    /// (5 minutes), Kafka's.
    pub log_retention_check_interval_ms: u64,
    /// `log.flush.interval.messages`: fsync after this many messages. Default: 1:
    /// Weir acknowledges acks=all only after fsync, with group commit keeping that
    /// cheap (Kafka's default, `i64::MAX`, leaves durability to replication alone).
    pub log_flush_interval_messages: u64,
    /// `log.flush.interval.ms`: also fsync data older than this. Default: unset (no
    /// timer), as in Kafka; with the message default of 1 there is nothing to wait for.
    pub log_flush_interval_ms: Option<u64>,
    /// `log.index.size.max.bytes`: preallocated size of an offset or time index, which
    /// also caps a segment's entries. Default: 10485760 (10 MiB), Kafka's.
    pub log_index_size_max_bytes: u64,
    /// `log.index.interval.bytes`: log bytes between index entries. Default: 4096,
    /// Kafka's.
    pub log_index_interval_bytes: u64,

    /// `offsets.topic.num.partitions`: partitions of `__consumer_offsets`; fixed once
    /// the topic exists. Default: 50, Kafka's.
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.replication.factor`: replicas of `__consumer_offsets`.
    /// Default: 3, Kafka's; the coordinator is meant to cap it at the number of
    /// registered brokers, so a single node still works.
    pub offsets_topic_replication_factor: i16,
    /// `offsets.retention.minutes`: keep committed offsets of an empty group this
    /// long. Default: 10080 (7 days), Kafka's.
    pub offsets_retention_minutes: u64,
    /// `group.initial.rebalance.delay.ms`: wait this long for more members before the
    /// first rebalance of a new group. Default: 3000, Kafka's; clients' tests expect
    /// a first join within seconds.
    pub group_initial_rebalance_delay_ms: u64,
    /// `group.min.session.timeout.ms`: smallest session timeout a member may ask for.
    /// Default: 6000, Kafka's.
    pub group_min_session_timeout_ms: u64,
    /// `group.max.session.timeout.ms`: largest session timeout a member may ask for.
    /// Default: 1800000 (30 minutes), Kafka's.
    pub group_max_session_timeout_ms: u64,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            node_id: NodeId(1),
            listeners: vec![ListenerConfig {
                name: DEFAULT_LISTENER_NAME.to_owned(),
                host: "127.0.0.1".to_owned(),
                port: 9092,
            }],
            advertised_listeners: None,
            log_dirs: vec![PathBuf::from("./weir-data")],
            cluster_id: None,
            process_roles: None,
            controller_quorum_voters: QuorumVoters::new(),
            controller_listener_names: vec![DEFAULT_CONTROLLER_LISTENER_NAME.to_owned()],
            inter_broker_listener_name: None,
            broker_rack: None,
            replica_selector_rack_aware: false,
            broker_session_timeout_ms: 9000,
            broker_heartbeat_interval_ms: 2000,
            controlled_shutdown_enable: true,
            controller_quorum_election_timeout_ms: 1000,
            controller_quorum_fetch_timeout_ms: 2000,
            metadata_log_max_snapshot_interval_ms: 3_600_000,
            metadata_log_max_record_bytes_between_snapshots: 20_971_520,
            replica_lag_time_max_ms: 30_000,
            replica_fetch_max_bytes: 1_048_576,
            replica_fetch_response_max_bytes: 10_485_760,
            replica_fetch_min_bytes: 1,
            replica_fetch_wait_max_ms: 500,
            replica_fetch_backoff_ms: 1000,
            replica_socket_timeout_ms: 30_000,
            num_replica_fetchers: 1,
            unclean_leader_election_enable: false,
            auto_leader_rebalance_enable: true,
            leader_imbalance_check_interval_seconds: 300,
            leader_imbalance_per_broker_percentage: 10,
            socket_request_max_bytes: 104_857_600,
            max_connections: 10_000,
            queued_max_requests_per_connection: 100,
            connections_max_idle_ms: 600_000,
            num_partitions: 1,
            default_replication_factor: 1,
            min_insync_replicas: 1,
            auto_create_topics_enable: true,
            delete_topic_enable: true,
            message_max_bytes: 1_048_588,
            compression_type: CompressionType::Producer,
            log_cleanup_policy: CleanupPolicy {
                delete: true,
                compact: false,
            },
            log_segment_bytes: 1_073_741_824,
            log_roll_ms: SEVEN_DAYS_MS,
            log_retention_ms: Some(SEVEN_DAYS_MS),
            log_retention_bytes: None,
            log_retention_check_interval_ms: 300_000,
            log_flush_interval_messages: 1,
            log_flush_interval_ms: None,
            log_index_size_max_bytes: 10_485_760,
            log_index_interval_bytes: 4096,
            offsets_topic_num_partitions: 50,
            offsets_topic_replication_factor: 3,
            offsets_retention_minutes: 10_080,
            group_initial_rebalance_delay_ms: 3000,
            group_min_session_timeout_ms: 6000,
            group_max_session_timeout_ms: 1_800_000,
        }
    }
}
