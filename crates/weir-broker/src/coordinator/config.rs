//! The coordinator's settings, with Kafka's names and defaults.
//!
//! Most come from the broker config (`offsets.topic.num.partitions`,
//! `group.min.session.timeout.ms`, ...); the few Kafka settings the broker config does
//! not carry yet keep Kafka's defaults here, so a later broker setting only has to
//! fill the field.

use crate::config::BrokerConfig;

/// The name of the internal topic that stores groups and committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// `segment.bytes` of the offsets topic, as Kafka creates it: 100 MiB, so that
/// compaction (which never touches the active segment) gets to run.
pub const OFFSETS_TOPIC_SEGMENT_BYTES: u64 = 100 * 1024 * 1024;

/// Settings of the group coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorConfig {
    /// `offsets.topic.num.partitions`: the partitions of `__consumer_offsets`, and the
    /// modulus that maps a group id to its partition. Default 50. Must never change
    /// once the topic exists: groups would be looked up in the wrong partition.
    pub num_partitions: i32,
    /// `offsets.topic.replication.factor`. Default 3.
    pub replication_factor: i16,
    /// Whether the factor is capped at the number of live brokers: on a single
    /// node (so `weir server` works out of the box), not in a cluster, where Kafka
    /// refuses to create the topic with fewer replicas than asked (an offsets topic
    /// created while one broker had registered would keep every group's offsets
    /// on one disk).
    pub cap_replication_factor: bool,
    /// `group.min.session.timeout.ms`: a JoinGroup asking for less is refused with
    /// INVALID_SESSION_TIMEOUT. Default 6000.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`: a JoinGroup asking for more is refused with
    /// INVALID_SESSION_TIMEOUT. Default 1800000.
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty
    /// group waits for more members (extended while members keep arriving, up to
    /// the rebalance timeout). Default 3000.
    pub initial_rebalance_delay_ms: i32,
    /// `group.max.size`: members one classic group may have. Default unbounded.
    pub max_group_size: usize,
    /// How long a new member's JoinGroup may stay parked before the member is
    /// dropped (Kafka's fixed 5 minutes): a member that disconnected while waiting
    /// would otherwise hold the rebalance forever.
    pub new_member_join_timeout_ms: i32,
    /// `offset.metadata.max.bytes`: longer commit metadata is refused with
    /// OFFSET_METADATA_TOO_LARGE. Default 4096.
    pub offset_metadata_max_bytes: usize,
    /// `offsets.retention.minutes` in ms: committed offsets of an empty group (or of a
    /// standalone consumer) are deleted this long after the group emptied (or after
    /// the commit). Default 7 days.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`: how often expired offsets are looked
    /// for. Default 600000.
    pub offsets_retention_check_interval_ms: i64,
    /// `offsets.commit.timeout.ms`: how long a write to the offsets topic may wait to
    /// become durable before the request fails. Default 5000.
    pub commit_timeout_ms: i64,
    /// `group.consumer.session.timeout.ms`: a KIP-848 member silent this long is
    /// fenced. Default 45000.
    pub consumer_session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`: how often KIP-848 members are told to
    /// heartbeat. Default 5000.
    pub consumer_heartbeat_interval_ms: i32,
    /// `group.consumer.max.size`: members one consumer group may have. Default
    /// unbounded.
    pub consumer_max_size: usize,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        Self {
            num_partitions: 50,
            replication_factor: 3,
            cap_replication_factor: true,
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            max_group_size: usize::MAX,
            new_member_join_timeout_ms: 5 * 60 * 1000,
            offset_metadata_max_bytes: 4096,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
            offsets_retention_check_interval_ms: 600_000,
            commit_timeout_ms: 5_000,
            consumer_session_timeout_ms: 45_000,
            consumer_heartbeat_interval_ms: 5_000,
            consumer_max_size: usize::MAX,
        }
    }
}

impl CoordinatorConfig {
    /// The coordinator settings a broker config implies.
    pub fn from_broker(config: &BrokerConfig) -> Self {
        let ms = |v: u64| i32::try_from(v).unwrap_or(i32::MAX);
        Self {
            num_partitions: config.offsets_topic_num_partitions.max(1),
            replication_factor: config.offsets_topic_replication_factor,
            cap_replication_factor: config.is_single_node(),
            min_session_timeout_ms: ms(config.group_min_session_timeout_ms),
            max_session_timeout_ms: ms(config.group_max_session_timeout_ms),
            initial_rebalance_delay_ms: ms(config.group_initial_rebalance_delay_ms),
            offsets_retention_ms: i64::try_from(config.offsets_retention_minutes)
                .unwrap_or(i64::MAX / 60_000)
                .saturating_mul(60_000),
            ..Self::default()
        }
    }
}
