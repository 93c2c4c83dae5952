//! The replica layer's settings, and how broker defaults become topic configs.
//!
//! Kafka has two levels of log settings: broker defaults under `log.*` names
//! (`log.retention.ms`, `log.flush.interval.messages`, ...) and per-topic overrides
//! under the short names (`retention.ms`, `flush.messages`, ...). A partition's
//! [`LogConfig`] is the broker defaults ([`log_defaults`]) with the topic's overrides
//! from the metadata image applied ([`topic_log_config`]). DescribeConfigs can use the
//! same two functions to report a value and whether it is a default.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use weir_log::{LogConfig, LogError};
use weir_types::NodeId;

use crate::config::{BrokerConfig, CompressionType};

/// Kafka's `replica.high.watermark.checkpoint.interval.ms` default: how often the
/// high watermarks (and, here, recovery points and log start offsets) are written.
pub const DEFAULT_CHECKPOINT_INTERVAL_MS: u64 = 5_000;

/// Kafka's `producer.id.expiration.ms` default (1 day): idempotent producer state
/// is forgotten after this long without a write.
pub const DEFAULT_PRODUCER_ID_EXPIRATION_MS: i64 = 86_400_000;

/// Kafka's `replica.lag.time.max.ms` default.
pub const DEFAULT_REPLICA_LAG_TIME_MAX_MS: u64 = 30_000;
/// Kafka's `replica.fetch.max.bytes` default (1 MiB).
pub const DEFAULT_REPLICA_FETCH_MAX_BYTES: usize = 1 << 20;
/// Kafka's `replica.fetch.response.max.bytes` default (10 MiB).
pub const DEFAULT_REPLICA_FETCH_RESPONSE_MAX_BYTES: usize = 10 << 20;
/// Kafka's `replica.fetch.wait.max.ms` default.
pub const DEFAULT_REPLICA_FETCH_WAIT_MAX_MS: u64 = 500;
/// Kafka's `replica.fetch.min.bytes` default.
pub const DEFAULT_REPLICA_FETCH_MIN_BYTES: usize = 1;
/// Kafka's `replica.fetch.backoff.ms` default.
pub const DEFAULT_REPLICA_FETCH_BACKOFF_MS: u64 = 1_000;

/// What the replica layer needs to run, taken from the broker's configuration.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// This broker's `node.id`: a partition is hosted here when its replicas
    /// include it, and led here when its leader is it.
    pub node_id: NodeId,
    /// `log.dirs`: where partition directories live. New partitions go to the
    /// directory holding the fewest partitions, as in Kafka.
    pub log_dirs: Vec<PathBuf>,
    /// Broker-level topic config defaults (see [`log_defaults`]).
    pub log_defaults: LogConfig,
    /// `log.retention.check.interval.ms`: how often retention runs. Default 300000.
    pub retention_check_interval: Duration,
    /// How often checkpoints (recovery points, log start offsets, high watermarks)
    /// are written. Default [`DEFAULT_CHECKPOINT_INTERVAL_MS`].
    pub checkpoint_interval: Duration,
    /// `producer.id.expiration.ms`. Default [`DEFAULT_PRODUCER_ID_EXPIRATION_MS`].
    pub producer_id_expiration_ms: i64,
    /// `replica.lag.time.max.ms`: a follower not caught up with the leader's log
    /// end for this long leaves the ISR. Default 30000.
    pub replica_lag_time_max: Duration,
    /// `replica.fetch.max.bytes`: per partition in a follower's fetch (soft, as
    /// KIP-74). Default 1048576.
    pub replica_fetch_max_bytes: usize,
    /// `replica.fetch.response.max.bytes`: per follower fetch response (soft).
    /// Default 10485760.
    pub replica_fetch_response_max_bytes: usize,
    /// `replica.fetch.wait.max.ms`: how long a follower's fetch waits at the
    /// leader for data. Default 500.
    pub replica_fetch_wait_max: Duration,
    /// `replica.fetch.min.bytes`: the leader answers a follower's fetch once this
    /// much data is there. Default 1.
    pub replica_fetch_min_bytes: usize,
    /// `replica.fetch.backoff.ms`: pause after a failed fetch. Default 1000.
    pub replica_fetch_backoff: Duration,
    /// Test seam for group commit: when set, every partition flusher takes one
    /// permit from this semaphore before each fsync, so a test can hold fsyncs
    /// back, pile up appends, and release them to observe that one fsync covers
    /// them all. `None` (the default) in production.
    pub flush_gate: Option<Arc<Semaphore>>,
}

impl ReplicaConfig {
    /// The replica settings of `broker`.
    pub fn from_broker(broker: &BrokerConfig) -> ReplicaConfig {
        ReplicaConfig {
            node_id: broker.node_id,
            log_dirs: broker.log_dirs.clone(),
            log_defaults: log_defaults(broker),
            retention_check_interval: Duration::from_millis(
                broker.log_retention_check_interval_ms.max(1),
            ),
            checkpoint_interval: Duration::from_millis(DEFAULT_CHECKPOINT_INTERVAL_MS),
            producer_id_expiration_ms: DEFAULT_PRODUCER_ID_EXPIRATION_MS,
            replica_lag_time_max: Duration::from_millis(broker.replica_lag_time_max_ms.max(1)),
            replica_fetch_max_bytes: broker.replica_fetch_max_bytes,
            replica_fetch_response_max_bytes: broker.replica_fetch_response_max_bytes,
            replica_fetch_wait_max: Duration::from_millis(broker.replica_fetch_wait_max_ms),
            replica_fetch_min_bytes: broker.replica_fetch_min_bytes,
            replica_fetch_backoff: Duration::from_millis(broker.replica_fetch_backoff_ms),
            flush_gate: None,
        }
    }

    /// Settings for one data directory with Weir's defaults (tests, tools).
    pub fn for_dir(dir: impl Into<PathBuf>) -> ReplicaConfig {
        let broker = BrokerConfig {
            log_dirs: vec![dir.into()],
            ..BrokerConfig::default()
        };
        ReplicaConfig::from_broker(&broker)
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The topic config defaults a broker configuration implies: each `log.*` broker
/// setting becomes the default of its topic-level name. Notably
/// `log.flush.interval.messages` (Weir's default 1) becomes `flush.messages`, which
/// makes acks=all wait for fsync (see the replica module docs).
pub fn log_defaults(broker: &BrokerConfig) -> LogConfig {
    let compression_type = match broker.compression_type {
        CompressionType::Producer => weir_log::CompressionType::Producer,
        CompressionType::Uncompressed => weir_log::CompressionType::Uncompressed,
        CompressionType::Gzip => weir_log::CompressionType::Gzip,
        CompressionType::Snappy => weir_log::CompressionType::Snappy,
        CompressionType::Lz4 => weir_log::CompressionType::Lz4,
        CompressionType::Zstd => weir_log::CompressionType::Zstd,
    };
    LogConfig {
        segment_bytes: broker.log_segment_bytes,
        segment_ms: to_i64(broker.log_roll_ms).max(1),
        segment_index_bytes: broker.log_index_size_max_bytes,
        index_interval_bytes: u32::try_from(broker.log_index_interval_bytes).unwrap_or(u32::MAX),
        retention_ms: broker.log_retention_ms.map_or(-1, to_i64),
        retention_bytes: broker.log_retention_bytes.map_or(-1, to_i64),
        max_message_bytes: u32::try_from(broker.message_max_bytes).unwrap_or(u32::MAX),
        flush_messages: to_i64(broker.log_flush_interval_messages).max(1),
        flush_ms: broker.log_flush_interval_ms.map_or(i64::MAX, to_i64),
        cleanup_policy: weir_log::CleanupPolicy {
            delete: broker.log_cleanup_policy.delete,
            compact: broker.log_cleanup_policy.compact,
        },
        min_insync_replicas: broker.min_insync_replicas,
        compression_type,
        ..LogConfig::default()
    }
}

/// A topic's effective config: `defaults` with the topic's `overrides` (from the
/// metadata image) applied. Only the structural checks the log depends on are run
/// here; the controller or CreateTopics/AlterConfigs handler has already checked the
/// overrides against Kafka's client-facing rules (`LogConfig::validate`), and the
/// broker defaults may legitimately be smaller than those minimums (tests).
pub fn topic_log_config(
    defaults: &LogConfig,
    overrides: &BTreeMap<String, String>,
) -> Result<LogConfig, LogError> {
    let mut config = defaults.clone();
    for (name, value) in overrides {
        config.set(name, value)?;
    }
    config.validate_structure()?;
    Ok(config)
}

/// Whether a topic with `config` acknowledges acks=all only after fsync: Kafka's
/// `flush.messages=1` ("flush after every message"), made cheap by group commit.
pub fn fsync_before_ack(config: &LogConfig) -> bool {
    config.flush_messages <= 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weir_defaults_fsync_before_ack() {
        let defaults = log_defaults(&BrokerConfig::default());
        assert_eq!(defaults.flush_messages, 1);
        assert_eq!(defaults.flush_ms, i64::MAX);
        assert!(fsync_before_ack(&defaults));
        assert_eq!(defaults.retention_ms, 7 * 24 * 3_600_000);
        assert_eq!(defaults.retention_bytes, -1);
        assert_eq!(defaults.max_message_bytes, 1_048_588);
    }

    #[test]
    fn overrides_apply_on_top_of_broker_defaults() {
        let broker = BrokerConfig {
            log_segment_bytes: 4096,
            ..BrokerConfig::default()
        };
        let defaults = log_defaults(&broker);
        let mut overrides = BTreeMap::new();
        overrides.insert("flush.messages".to_string(), "1000".to_string());
        overrides.insert("retention.ms".to_string(), "-1".to_string());
        let config = topic_log_config(&defaults, &overrides).expect("valid");
        assert_eq!(config.segment_bytes, 4096, "small broker default kept");
        assert_eq!(config.flush_messages, 1000);
        assert!(!fsync_before_ack(&config));
        assert_eq!(config.retention_ms, -1);
        overrides.insert("no.such.config".to_string(), "1".to_string());
        assert!(topic_log_config(&defaults, &overrides).is_err());
    }
}
