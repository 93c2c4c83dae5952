//! Topic-level log configuration, under Kafka's names and with Kafka's defaults.
//!
//! Clients send these names in CreateTopics and AlterConfigs, so the names, the value
//! syntax and the defaults are Kafka's (4.x). [`LogConfig::set`] parses one
//! `(name, value)` pair, [`LogConfig::validate`] checks ranges and combinations and
//! says what to change, and [`LogConfig::to_pairs`] gives the values back for
//! DescribeConfigs.
//!
//! Some names are accepted and kept but not acted on by this crate: compaction
//! (`min.cleanable.dirty.ratio`, ...) is later work, `min.insync.replicas` and
//! `unclean.leader.election.enable` belong to the replica layer, `compression.type`
//! other than `producer` needs recompression that the log does not do yet.

use std::collections::BTreeMap;

use crate::error::{LogError, Result};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Which timestamp a record keeps (`message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// The producer's timestamp is stored as sent (Kafka's default).
    #[default]
    CreateTime,
    /// The broker overwrites the batch timestamp with its clock at append.
    LogAppendTime,
}

/// What happens to old data (`cleanup.policy`): a set of `delete` and `compact`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// Old segments are deleted by `retention.ms` / `retention.bytes`.
    pub delete: bool,
    /// The log is compacted by key (not implemented yet: segments are kept).
    pub compact: bool,
}

impl Default for CleanupPolicy {
    fn default() -> Self {
        CleanupPolicy {
            delete: true,
            compact: false,
        }
    }
}

/// The topic's compression policy (`compression.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompressionType {
    /// Keep whatever the producer used (Kafka's default; the only one the log honours
    /// today: others are stored and reported but batches are not recompressed).
    #[default]
    Producer,
    /// No compression.
    Uncompressed,
    /// gzip.
    Gzip,
    /// snappy.
    Snappy,
    /// lz4.
    Lz4,
    /// zstd.
    Zstd,
}

impl CompressionType {
    fn name(self) -> &'static str {
        match self {
            CompressionType::Producer => "producer",
            CompressionType::Uncompressed => "uncompressed",
            CompressionType::Gzip => "gzip",
            CompressionType::Snappy => "snappy",
            CompressionType::Lz4 => "lz4",
            CompressionType::Zstd => "zstd",
        }
    }
}

/// A partition log's configuration. Every field documents its Kafka name and default.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll a new segment when the active one would exceed this.
    /// Default 1 GiB; Kafka's minimum is 1 MiB (`validate` enforces it, `Log::open`
    /// only needs room for one batch, so tests may use tiny segments).
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's first batch is this old.
    /// Default 7 days; minimum 1.
    pub segment_ms: i64,
    /// `segment.jitter.ms`: subtracted from `segment.ms` so many partitions do not
    /// roll at once. Default 0 (Weir applies no random jitter yet).
    pub segment_jitter_ms: i64,
    /// `segment.index.bytes`: size limit of each `.index` / `.timeindex` file; a
    /// full index rolls the segment. Default 10 MiB; minimum 12 (one time-index entry).
    pub segment_index_bytes: u64,
    /// `index.interval.bytes`: bytes of batches between two sparse index entries.
    /// Default 4096; minimum 0 (index every batch).
    pub index_interval_bytes: u32,
    /// `retention.ms`: delete segments whose newest record is older than this;
    /// -1 keeps them forever. Default 7 days.
    pub retention_ms: i64,
    /// `retention.bytes`: delete the oldest segments while the partition is larger
    /// than this; -1 for no limit (the default).
    pub retention_bytes: i64,
    /// `max.message.bytes`: the largest batch accepted, checked per batch.
    /// Default 1048588 (1 MiB plus the batch overhead).
    pub max_message_bytes: u32,
    /// `flush.messages`: fsync after this many unflushed messages, for users who do
    /// not ack with acks=all. Default `i64::MAX` (never; acks=all fsyncs anyway).
    pub flush_messages: i64,
    /// `flush.ms`: fsync when unflushed data is this old. Default `i64::MAX` (never).
    pub flush_ms: i64,
    /// `message.timestamp.type`: CreateTime (default) or LogAppendTime.
    pub message_timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`: how far in the past a CreateTime timestamp
    /// may be. Default `i64::MAX` (no limit).
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: how far in the future a CreateTime timestamp
    /// may be. Default 3600000 (1 hour, Kafka 4.0).
    pub message_timestamp_after_max_ms: i64,
    /// `cleanup.policy`: `delete` (default), `compact`, or both.
    pub cleanup_policy: CleanupPolicy,
    /// `min.insync.replicas`: acks=all needs this many in-sync replicas. Default 1.
    /// Enforced by the replica layer, kept here because it is a topic config.
    pub min_insync_replicas: i32,
    /// `compression.type`: default `producer`.
    pub compression_type: CompressionType,
    /// `delete.retention.ms`: how long compaction keeps tombstones. Default 1 day.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`. Default 0.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`. Default `i64::MAX`; minimum 1.
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`, in [0, 1]. Default 0.5.
    pub min_cleanable_dirty_ratio: f64,
    /// `file.delete.delay.ms`: Kafka deletes segments asynchronously after this;
    /// Weir deletes at once and keeps the value for DescribeConfigs. Default 60000.
    pub file_delete_delay_ms: i64,
    /// `preallocate`: accepted, not acted on. Default false.
    pub preallocate: bool,
    /// `unclean.leader.election.enable`: default false (Weir never elects uncleanly).
    pub unclean_leader_election_enable: bool,
    /// Kafka topic configs that are accepted and reported but have no effect here
    /// (tiered storage, replication throttles, compression levels), by name.
    pub passthrough: BTreeMap<String, String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: GIB,
            segment_ms: 7 * DAY_MS,
            segment_jitter_ms: 0,
            segment_index_bytes: 10 * MIB,
            index_interval_bytes: 4096,
            retention_ms: 7 * DAY_MS,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            message_timestamp_type: TimestampType::CreateTime,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: 3_600_000,
            cleanup_policy: CleanupPolicy::default(),
            min_insync_replicas: 1,
            compression_type: CompressionType::Producer,
            delete_retention_ms: DAY_MS,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio: 0.5,
            file_delete_delay_ms: 60_000,
            preallocate: false,
            unclean_leader_election_enable: false,
            passthrough: BTreeMap::new(),
        }
    }
}

/// Kafka topic configs accepted without effect (see [`LogConfig::passthrough`]).
const PASSTHROUGH_NAMES: &[&str] = &[
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.zstd.level",
    "follower.replication.throttled.replicas",
    "leader.replication.throttled.replicas",
    "local.retention.bytes",
    "local.retention.ms",
    "remote.storage.enable",
    "remote.log.copy.disable",
    "remote.log.delete.on.disable",
];

/// The smallest `segment.bytes` Kafka 4 accepts from a client.
pub const MIN_SEGMENT_BYTES: u64 = MIB;

fn invalid(name: &str, reason: impl Into<String>) -> LogError {
    LogError::InvalidConfig {
        name: name.to_string(),
        reason: reason.into(),
    }
}

fn parse_i64(name: &str, value: &str) -> Result<i64> {
    value.trim().parse::<i64>().map_err(|_| {
        invalid(
            name,
            format!("{value:?} is not a whole number (a 64-bit long)"),
        )
    })
}

fn parse_min(name: &str, value: &str, min: i64) -> Result<i64> {
    let v = parse_i64(name, value)?;
    if v < min {
        return Err(invalid(name, format!("{v} is below the minimum {min}")));
    }
    Ok(v)
}

fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(name, format!("{value:?} is not true or false"))),
    }
}

impl LogConfig {
    /// Every topic config name [`LogConfig::set`] understands.
    pub const NAMES: &'static [&'static str] = &[
        "cleanup.policy",
        "compression.type",
        "delete.retention.ms",
        "file.delete.delay.ms",
        "flush.messages",
        "flush.ms",
        "index.interval.bytes",
        "max.compaction.lag.ms",
        "max.message.bytes",
        "message.timestamp.after.max.ms",
        "message.timestamp.before.max.ms",
        "message.timestamp.type",
        "min.cleanable.dirty.ratio",
        "min.compaction.lag.ms",
        "min.insync.replicas",
        "preallocate",
        "retention.bytes",
        "retention.ms",
        "segment.bytes",
        "segment.index.bytes",
        "segment.jitter.ms",
        "segment.ms",
        "unclean.leader.election.enable",
    ];

    /// Defaults overridden by `pairs`, then validated.
    pub fn from_pairs<'a, I>(pairs: I) -> Result<LogConfig>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        LogConfig::default().with_overrides(pairs)
    }

    /// A copy of `self` (e.g. the broker's defaults) with `pairs` applied, validated.
    pub fn with_overrides<'a, I>(&self, pairs: I) -> Result<LogConfig>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut config = self.clone();
        for (name, value) in pairs {
            config.set(name, value)?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Parses one `name = value` setting into its field. Range checks that involve
    /// only this value are done here; combinations are checked by [`validate`].
    ///
    /// [`validate`]: LogConfig::validate
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        match name {
            "segment.bytes" => {
                let v = parse_min(name, value, MIN_SEGMENT_BYTES as i64)?;
                if v > i32::MAX as i64 {
                    return Err(invalid(
                        name,
                        format!("{v} is above the maximum {}", i32::MAX),
                    ));
                }
                self.segment_bytes = v as u64;
            }
            "segment.ms" => self.segment_ms = parse_min(name, value, 1)?,
            "segment.jitter.ms" => self.segment_jitter_ms = parse_min(name, value, 0)?,
            "segment.index.bytes" => {
                let v = parse_min(name, value, 12)?;
                if v > i32::MAX as i64 {
                    return Err(invalid(
                        name,
                        format!("{v} is above the maximum {}", i32::MAX),
                    ));
                }
                self.segment_index_bytes = v as u64;
            }
            "index.interval.bytes" => {
                let v = parse_min(name, value, 0)?;
                self.index_interval_bytes = u32::try_from(v)
                    .map_err(|_| invalid(name, format!("{v} does not fit a 32-bit int")))?;
            }
            "retention.ms" => self.retention_ms = parse_min(name, value, -1)?,
            "retention.bytes" => self.retention_bytes = parse_min(name, value, -1)?,
            "max.message.bytes" => {
                let v = parse_min(name, value, 0)?;
                self.max_message_bytes = u32::try_from(v)
                    .ok()
                    .filter(|v| *v <= i32::MAX as u32)
                    .ok_or_else(|| invalid(name, format!("{v} does not fit a 32-bit int")))?;
            }
            "flush.messages" => self.flush_messages = parse_min(name, value, 1)?,
            "flush.ms" => self.flush_ms = parse_min(name, value, 0)?,
            "message.timestamp.type" => {
                self.message_timestamp_type = match value.trim() {
                    "CreateTime" => TimestampType::CreateTime,
                    "LogAppendTime" => TimestampType::LogAppendTime,
                    _ => {
                        return Err(invalid(
                            name,
                            format!("{value:?} is not CreateTime or LogAppendTime"),
                        ))
                    }
                }
            }
            "message.timestamp.before.max.ms" => {
                self.message_timestamp_before_max_ms = parse_min(name, value, 0)?
            }
            "message.timestamp.after.max.ms" => {
                self.message_timestamp_after_max_ms = parse_min(name, value, 0)?
            }
            "cleanup.policy" => {
                let mut policy = CleanupPolicy {
                    delete: false,
                    compact: false,
                };
                for item in value.split(',').map(str::trim) {
                    match item.to_ascii_lowercase().as_str() {
                        "delete" => policy.delete = true,
                        "compact" => policy.compact = true,
                        _ => {
                            return Err(invalid(
                                name,
                                format!("{item:?} is not one of delete, compact"),
                            ))
                        }
                    }
                }
                self.cleanup_policy = policy;
            }
            "min.insync.replicas" => {
                let v = parse_min(name, value, 1)?;
                self.min_insync_replicas = i32::try_from(v)
                    .map_err(|_| invalid(name, format!("{v} does not fit a 32-bit int")))?;
            }
            "compression.type" => {
                self.compression_type = match value.trim().to_ascii_lowercase().as_str() {
                    "producer" => CompressionType::Producer,
                    "uncompressed" => CompressionType::Uncompressed,
                    "gzip" => CompressionType::Gzip,
                    "snappy" => CompressionType::Snappy,
                    "lz4" => CompressionType::Lz4,
                    "zstd" => CompressionType::Zstd,
                    _ => {
                        return Err(invalid(
                            name,
                            format!(
                        "{value:?} is not one of producer, uncompressed, gzip, snappy, lz4, zstd"
                    ),
                        ))
                    }
                }
            }
            "delete.retention.ms" => self.delete_retention_ms = parse_min(name, value, 0)?,
            "min.compaction.lag.ms" => self.min_compaction_lag_ms = parse_min(name, value, 0)?,
            "max.compaction.lag.ms" => self.max_compaction_lag_ms = parse_min(name, value, 1)?,
            "min.cleanable.dirty.ratio" => {
                let v: f64 = value.trim().parse().map_err(|_| {
                    invalid(name, format!("{value:?} is not a number between 0 and 1"))
                })?;
                if !(0.0..=1.0).contains(&v) {
                    return Err(invalid(name, format!("{v} is not between 0 and 1")));
                }
                self.min_cleanable_dirty_ratio = v;
            }
            "file.delete.delay.ms" => self.file_delete_delay_ms = parse_min(name, value, 0)?,
            "preallocate" => self.preallocate = parse_bool(name, value)?,
            "unclean.leader.election.enable" => {
                self.unclean_leader_election_enable = parse_bool(name, value)?
            }
            _ if PASSTHROUGH_NAMES.contains(&name) => {
                self.passthrough.insert(name.to_string(), value.to_string());
            }
            _ => {
                return Err(invalid(
                    name,
                    "unknown topic config name (Kafka topic-level names, e.g. retention.ms)",
                ))
            }
        }
        Ok(())
    }

    /// Checks every value and combination Kafka checks; the error names the setting
    /// and says what would be accepted.
    pub fn validate(&self) -> Result<()> {
        if self.segment_bytes < MIN_SEGMENT_BYTES || self.segment_bytes > i32::MAX as u64 {
            return Err(invalid(
                "segment.bytes",
                format!(
                    "{} is outside [{MIN_SEGMENT_BYTES}, {}]",
                    self.segment_bytes,
                    i32::MAX
                ),
            ));
        }
        self.validate_structure()?;
        if self.retention_ms < -1 {
            return Err(invalid(
                "retention.ms",
                "use -1 for unlimited, or a positive value",
            ));
        }
        if self.retention_bytes < -1 {
            return Err(invalid(
                "retention.bytes",
                "use -1 for unlimited, or a positive value",
            ));
        }
        if self.flush_messages < 1 || self.flush_ms < 0 {
            return Err(invalid(
                "flush.messages",
                "flush.messages must be >= 1 and flush.ms >= 0",
            ));
        }
        if self.message_timestamp_before_max_ms < 0 || self.message_timestamp_after_max_ms < 0 {
            return Err(invalid(
                "message.timestamp.before.max.ms",
                "timestamp windows must be >= 0",
            ));
        }
        if !self.cleanup_policy.delete && !self.cleanup_policy.compact {
            return Err(invalid(
                "cleanup.policy",
                "give delete, compact, or delete,compact",
            ));
        }
        if self.min_insync_replicas < 1 {
            return Err(invalid("min.insync.replicas", "must be at least 1"));
        }
        if self.min_compaction_lag_ms > self.max_compaction_lag_ms {
            return Err(invalid(
                "min.compaction.lag.ms",
                format!(
                    "{} is greater than max.compaction.lag.ms ({}); lower it or raise the max",
                    self.min_compaction_lag_ms, self.max_compaction_lag_ms
                ),
            ));
        }
        if !(0.0..=1.0).contains(&self.min_cleanable_dirty_ratio) {
            return Err(invalid(
                "min.cleanable.dirty.ratio",
                "must be between 0 and 1",
            ));
        }
        Ok(())
    }

    /// The checks the log itself depends on (not Kafka's client-facing minimums):
    /// [`crate::Log::open`] runs these, so tests may use tiny segments.
    pub fn validate_structure(&self) -> Result<()> {
        // A segment must hold at least one minimal batch.
        if self.segment_bytes < 61 || self.segment_bytes > i32::MAX as u64 {
            return Err(invalid(
                "segment.bytes",
                format!("{} is outside [61, {}]", self.segment_bytes, i32::MAX),
            ));
        }
        if self.segment_index_bytes < 12 || self.segment_index_bytes > i32::MAX as u64 {
            return Err(invalid(
                "segment.index.bytes",
                format!("{} is outside [12, {}]", self.segment_index_bytes, i32::MAX),
            ));
        }
        if self.segment_ms < 1 || self.segment_jitter_ms < 0 {
            return Err(invalid(
                "segment.ms",
                "segment.ms must be >= 1 and segment.jitter.ms >= 0",
            ));
        }
        Ok(())
    }

    /// Whether retention by time or size deletes segments (`cleanup.policy` has delete).
    pub fn deletes_old_segments(&self) -> bool {
        self.cleanup_policy.delete
    }

    /// Every setting as `(name, value)` in Kafka's syntax, sorted by name.
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        let policy = match (self.cleanup_policy.delete, self.cleanup_policy.compact) {
            (true, true) => "delete,compact",
            (false, true) => "compact",
            _ => "delete",
        };
        let ts_type = match self.message_timestamp_type {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        };
        let mut pairs: Vec<(String, String)> = [
            ("cleanup.policy", policy.to_string()),
            ("compression.type", self.compression_type.name().to_string()),
            ("delete.retention.ms", self.delete_retention_ms.to_string()),
            (
                "file.delete.delay.ms",
                self.file_delete_delay_ms.to_string(),
            ),
            ("flush.messages", self.flush_messages.to_string()),
            ("flush.ms", self.flush_ms.to_string()),
            (
                "index.interval.bytes",
                self.index_interval_bytes.to_string(),
            ),
            (
                "max.compaction.lag.ms",
                self.max_compaction_lag_ms.to_string(),
            ),
            ("max.message.bytes", self.max_message_bytes.to_string()),
            (
                "message.timestamp.after.max.ms",
                self.message_timestamp_after_max_ms.to_string(),
            ),
            (
                "message.timestamp.before.max.ms",
                self.message_timestamp_before_max_ms.to_string(),
            ),
            ("message.timestamp.type", ts_type.to_string()),
            (
                "min.cleanable.dirty.ratio",
                self.min_cleanable_dirty_ratio.to_string(),
            ),
            (
                "min.compaction.lag.ms",
                self.min_compaction_lag_ms.to_string(),
            ),
            ("min.insync.replicas", self.min_insync_replicas.to_string()),
            ("preallocate", self.preallocate.to_string()),
            ("retention.bytes", self.retention_bytes.to_string()),
            ("retention.ms", self.retention_ms.to_string()),
            ("segment.bytes", self.segment_bytes.to_string()),
            ("segment.index.bytes", self.segment_index_bytes.to_string()),
            ("segment.jitter.ms", self.segment_jitter_ms.to_string()),
            ("segment.ms", self.segment_ms.to_string()),
            (
                "unclean.leader.election.enable",
                self.unclean_leader_election_enable.to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        pairs.extend(self.passthrough.iter().map(|(k, v)| (k.clone(), v.clone())));
        pairs.sort();
        pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafkas() {
        let c = LogConfig::default();
        assert_eq!(c.segment_bytes, 1 << 30);
        assert_eq!(c.segment_ms, 604_800_000);
        assert_eq!(c.retention_ms, 604_800_000);
        assert_eq!(c.retention_bytes, -1);
        assert_eq!(c.max_message_bytes, 1_048_588);
        assert_eq!(c.index_interval_bytes, 4096);
        assert_eq!(c.segment_index_bytes, 10 << 20);
        assert_eq!(c.flush_messages, i64::MAX);
        assert_eq!(c.flush_ms, i64::MAX);
        assert_eq!(c.min_insync_replicas, 1);
        assert!(c.cleanup_policy.delete && !c.cleanup_policy.compact);
        c.validate().unwrap();
    }

    #[test]
    fn parses_pairs_and_round_trips_through_to_pairs() {
        let c = LogConfig::from_pairs([
            ("retention.ms", "1000"),
            ("retention.bytes", " 5000 "),
            ("cleanup.policy", "compact,delete"),
            ("message.timestamp.type", "LogAppendTime"),
            ("min.insync.replicas", "2"),
            ("compression.type", "zstd"),
            ("remote.storage.enable", "false"),
        ])
        .unwrap();
        assert_eq!(c.retention_ms, 1000);
        assert_eq!(c.retention_bytes, 5000);
        assert!(c.cleanup_policy.delete && c.cleanup_policy.compact);
        assert_eq!(c.message_timestamp_type, TimestampType::LogAppendTime);
        let pairs = c.to_pairs();
        let again =
            LogConfig::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn errors_name_the_setting_and_the_fix() {
        let err = LogConfig::from_pairs([("segment.bytes", "100")]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("segment.bytes") && text.contains("minimum"),
            "{text}"
        );
        let err = LogConfig::from_pairs([("retention.ms", "soon")]).unwrap_err();
        assert!(err.to_string().contains("not a whole number"), "{err}");
        let err = LogConfig::from_pairs([("cleanup.policy", "archive")]).unwrap_err();
        assert!(err.to_string().contains("delete, compact"), "{err}");
        let err = LogConfig::from_pairs([("no.such.config", "1")]).unwrap_err();
        assert!(err.to_string().contains("unknown topic config"), "{err}");
        let err = LogConfig::from_pairs([
            ("min.compaction.lag.ms", "10"),
            ("max.compaction.lag.ms", "5"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("max.compaction.lag.ms"), "{err}");
        assert_eq!(err.error_code(), weir_types::ErrorCode::InvalidConfig);
    }

    #[test]
    fn structure_check_allows_tiny_test_segments() {
        let c = LogConfig {
            segment_bytes: 1024,
            ..LogConfig::default()
        };
        assert!(c.validate().is_err());
        c.validate_structure().unwrap();
    }
}
