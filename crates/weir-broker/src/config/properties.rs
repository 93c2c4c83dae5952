//! Applying settings by their Kafka names: one at a time, from a properties file,
//! or from command-line overrides.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use weir_types::NodeId;

use super::cluster::{parse_cluster_id, parse_voters, ProcessRoles};
use super::java_properties::parse_properties;
use super::{BrokerConfig, CleanupPolicy, CompressionType, ConfigError, ListenerConfig};

/// Kafka's rack-aware replica selector, the one `replica.selector.class` Weir has.
const RACK_AWARE_SELECTOR: &str = "org.apache.kafka.common.replica.RackAwareReplicaSelector";

/// What [`BrokerConfig::set`] did with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// The value was stored.
    Applied,
    /// A Kafka setting Weir has no use for (thread pools, ZooKeeper, ...): ignored,
    /// so an existing `server.properties` still works.
    NotUsed,
    /// A key neither Weir nor Kafka knows: ignored, but likely a typo.
    Unknown,
}

/// A key that was ignored, with where it came from, for a `warn` log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// `server.properties line 12` or `--override`.
    pub origin: String,
    /// The key as written.
    pub key: String,
    /// [`Setting::NotUsed`] or [`Setting::Unknown`].
    pub setting: Setting,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.setting {
            Setting::NotUsed => write!(
                f,
                "{}: {} is a Kafka setting Weir does not use; ignored",
                self.origin, self.key
            ),
            _ => write!(
                f,
                "{}: unknown setting {}; ignored (check the spelling)",
                self.origin, self.key
            ),
        }
    }
}

/// Kafka broker settings that have no meaning in Weir; they are accepted with a
/// warning rather than rejected, so `server.properties` files can be reused.
const NOT_USED: &[&str] = &[
    "controller.quorum.bootstrap.servers",
    "group.coordinator.rebalance.protocols",
    "listener.security.protocol.map",
    "log.flush.offset.checkpoint.interval.ms",
    "log.flush.scheduler.interval.ms",
    "num.io.threads",
    "num.network.threads",
    "num.recovery.threads.per.data.dir",
    "queued.max.requests",
    "share.coordinator.state.topic.min.isr",
    "share.coordinator.state.topic.replication.factor",
    "socket.receive.buffer.bytes",
    "socket.send.buffer.bytes",
    "transaction.state.log.min.isr",
    "transaction.state.log.replication.factor",
    "zookeeper.connect",
    "zookeeper.connection.timeout.ms",
];

/// Key prefixes of Kafka settings Weir does not use.
const NOT_USED_PREFIXES: &[&str] = &["listener.name.", "log.cleaner.", "zookeeper."];

fn bad(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

fn number<T: FromStr>(key: &str, value: &str) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    value.parse().map_err(|e| {
        bad(
            key,
            value,
            format!("expected a whole number in range ({e})"),
        )
    })
}

fn boolean(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad(key, value, "expected true or false")),
    }
}

/// A count of `unit`s (ms per hour, say) converted to the base unit, or -1 for
/// "unlimited" (`None`).
fn scaled_or_unlimited(key: &str, value: &str, unit: u64) -> Result<Option<u64>, ConfigError> {
    if value == "-1" {
        return Ok(None);
    }
    let n: u64 = number(key, value).map_err(|_| {
        bad(
            key,
            value,
            "expected a whole number of 0 or more, or -1 for unlimited",
        )
    })?;
    n.checked_mul(unit)
        .map(Some)
        .ok_or_else(|| bad(key, value, "too large"))
}

/// As [`scaled_or_unlimited`], for settings that cannot be unlimited.
fn scaled(key: &str, value: &str, unit: u64) -> Result<u64, ConfigError> {
    scaled_or_unlimited(key, value, unit)?
        .ok_or_else(|| bad(key, value, "this setting cannot be unlimited (-1)"))
}

fn listeners(key: &str, value: &str) -> Result<Vec<ListenerConfig>, ConfigError> {
    ListenerConfig::parse_list(value).map_err(|reason| bad(key, value, reason))
}

/// A comma-separated list of listener names, upper-cased as listener names are.
fn listener_names(key: &str, value: &str) -> Result<Vec<String>, ConfigError> {
    let names: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_ascii_uppercase)
        .collect();
    match names
        .iter()
        .find(|n| !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        Some(n) => Err(bad(
            key,
            value,
            format!("listener name {n:?} must be letters, digits and '_'"),
        )),
        None => Ok(names),
    }
}

fn compression(key: &str, value: &str) -> Result<CompressionType, ConfigError> {
    Ok(match value.to_ascii_lowercase().as_str() {
        "producer" => CompressionType::Producer,
        "uncompressed" | "none" => CompressionType::Uncompressed,
        "gzip" => CompressionType::Gzip,
        "snappy" => CompressionType::Snappy,
        "lz4" => CompressionType::Lz4,
        "zstd" => CompressionType::Zstd,
        _ => {
            return Err(bad(
                key,
                value,
                "expected producer, uncompressed, gzip, snappy, lz4 or zstd",
            ))
        }
    })
}

fn cleanup_policy(key: &str, value: &str) -> Result<CleanupPolicy, ConfigError> {
    let mut policy = CleanupPolicy {
        delete: false,
        compact: false,
    };
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.to_ascii_lowercase().as_str() {
            "delete" => policy.delete = true,
            "compact" => policy.compact = true,
            _ => {
                return Err(bad(
                    key,
                    value,
                    "expected delete, compact, or compact,delete",
                ))
            }
        }
    }
    Ok(policy)
}

/// Within one file, Kafka lets the finer unit win whatever the order
/// (`log.retention.ms` over `.minutes` over `.hours`; `log.dirs` over `log.dir`):
/// applying coarser keys first gives the same result.
fn precedence(key: &str) -> u8 {
    match key {
        "log.retention.hours" | "log.roll.hours" | "log.dir" | "broker.id" => 0,
        "log.retention.minutes" => 1,
        _ => 2,
    }
}

impl BrokerConfig {
    /// Sets one setting by its Kafka name. The value is trimmed; an error says what a
    /// valid value looks like. Unused and unknown keys are not errors: see [`Setting`].
    pub fn set(&mut self, key: &str, value: &str) -> Result<Setting, ConfigError> {
        let value = value.trim();
        match key {
            "node.id" | "broker.id" => self.node_id = NodeId(number(key, value)?),
            "listeners" => self.listeners = listeners(key, value)?,
            "advertised.listeners" => {
                self.advertised_listeners = match value {
                    "" => None,
                    _ => Some(listeners(key, value)?),
                }
            }
            "log.dirs" | "log.dir" => {
                self.log_dirs = value
                    .split(',')
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(PathBuf::from)
                    .collect()
            }
            "cluster.id" => {
                self.cluster_id = Some(parse_cluster_id(value).map_err(|r| bad(key, value, r))?)
            }
            "process.roles" => {
                self.process_roles = ProcessRoles::parse(value).map_err(|r| bad(key, value, r))?
            }
            "controller.quorum.voters" => {
                self.controller_quorum_voters =
                    parse_voters(value).map_err(|r| bad(key, value, r))?
            }
            "controller.listener.names" => {
                self.controller_listener_names = listener_names(key, value)?
            }
            "inter.broker.listener.name" => {
                self.inter_broker_listener_name = listener_names(key, value)?.into_iter().next()
            }
            "broker.rack" => self.broker_rack = (!value.is_empty()).then(|| value.to_owned()),
            "replica.selector.class" => {
                self.replica_selector_rack_aware = match value.trim() {
                    "" => false,
                    RACK_AWARE_SELECTOR | "RackAwareReplicaSelector" => true,
                    _ => {
                        return Err(bad(
                            key,
                            value,
                            format!("the only selector is {RACK_AWARE_SELECTOR}; leave it unset to fetch from leaders"),
                        ))
                    }
                }
            }
            "broker.session.timeout.ms" => self.broker_session_timeout_ms = scaled(key, value, 1)?,
            "broker.heartbeat.interval.ms" => {
                self.broker_heartbeat_interval_ms = scaled(key, value, 1)?
            }
            "controlled.shutdown.enable" => self.controlled_shutdown_enable = boolean(key, value)?,
            "controller.quorum.election.timeout.ms" => {
                self.controller_quorum_election_timeout_ms = scaled(key, value, 1)?
            }
            "controller.quorum.fetch.timeout.ms" => {
                self.controller_quorum_fetch_timeout_ms = scaled(key, value, 1)?
            }
            "metadata.log.max.snapshot.interval.ms" => {
                self.metadata_log_max_snapshot_interval_ms = scaled(key, value, 1)?
            }
            "metadata.log.max.record.bytes.between.snapshots" => {
                self.metadata_log_max_record_bytes_between_snapshots = number(key, value)?
            }
            "replica.lag.time.max.ms" => self.replica_lag_time_max_ms = scaled(key, value, 1)?,
            "replica.fetch.max.bytes" => self.replica_fetch_max_bytes = number(key, value)?,
            "replica.fetch.response.max.bytes" => {
                self.replica_fetch_response_max_bytes = number(key, value)?
            }
            "replica.fetch.min.bytes" => self.replica_fetch_min_bytes = number(key, value)?,
            "replica.fetch.wait.max.ms" => self.replica_fetch_wait_max_ms = scaled(key, value, 1)?,
            "replica.fetch.backoff.ms" => self.replica_fetch_backoff_ms = scaled(key, value, 1)?,
            "replica.socket.timeout.ms" => self.replica_socket_timeout_ms = scaled(key, value, 1)?,
            "num.replica.fetchers" => self.num_replica_fetchers = number(key, value)?,
            "unclean.leader.election.enable" => {
                self.unclean_leader_election_enable = boolean(key, value)?
            }
            "auto.leader.rebalance.enable" => {
                self.auto_leader_rebalance_enable = boolean(key, value)?
            }
            "leader.imbalance.check.interval.seconds" => {
                self.leader_imbalance_check_interval_seconds = number(key, value)?
            }
            "leader.imbalance.per.broker.percentage" => {
                self.leader_imbalance_per_broker_percentage = number(key, value)?
            }
            "socket.request.max.bytes" => self.socket_request_max_bytes = number(key, value)?,
            "max.connections" => self.max_connections = number(key, value)?,
            "queued.max.requests.per.connection" => {
                self.queued_max_requests_per_connection = number(key, value)?
            }
            "connections.max.idle.ms" => self.connections_max_idle_ms = scaled(key, value, 1)?,
            "num.partitions" => self.num_partitions = number(key, value)?,
            "default.replication.factor" => self.default_replication_factor = number(key, value)?,
            "min.insync.replicas" => self.min_insync_replicas = number(key, value)?,
            "auto.create.topics.enable" => self.auto_create_topics_enable = boolean(key, value)?,
            "delete.topic.enable" => self.delete_topic_enable = boolean(key, value)?,
            "message.max.bytes" => self.message_max_bytes = number(key, value)?,
            "compression.type" => self.compression_type = compression(key, value)?,
            "log.cleanup.policy" => self.log_cleanup_policy = cleanup_policy(key, value)?,
            "log.segment.bytes" => self.log_segment_bytes = number(key, value)?,
            "log.roll.ms" => self.log_roll_ms = scaled(key, value, 1)?,
            "log.roll.hours" => self.log_roll_ms = scaled(key, value, 3_600_000)?,
            "log.retention.ms" => self.log_retention_ms = scaled_or_unlimited(key, value, 1)?,
            "log.retention.minutes" => {
                self.log_retention_ms = scaled_or_unlimited(key, value, 60_000)?
            }
            "log.retention.hours" => {
                self.log_retention_ms = scaled_or_unlimited(key, value, 3_600_000)?
            }
            "log.retention.bytes" => self.log_retention_bytes = scaled_or_unlimited(key, value, 1)?,
            "log.retention.check.interval.ms" => {
                self.log_retention_check_interval_ms = scaled(key, value, 1)?
            }
            "log.flush.interval.messages" => self.log_flush_interval_messages = number(key, value)?,
            "log.flush.interval.ms" => self.log_flush_interval_ms = Some(scaled(key, value, 1)?),
            "log.index.size.max.bytes" => self.log_index_size_max_bytes = number(key, value)?,
            "log.index.interval.bytes" => self.log_index_interval_bytes = number(key, value)?,
            "offsets.topic.num.partitions" => {
                self.offsets_topic_num_partitions = number(key, value)?
            }
            "offsets.topic.replication.factor" => {
                self.offsets_topic_replication_factor = number(key, value)?
            }
            "offsets.retention.minutes" => self.offsets_retention_minutes = number(key, value)?,
            "group.initial.rebalance.delay.ms" => {
                self.group_initial_rebalance_delay_ms = scaled(key, value, 1)?
            }
            "group.min.session.timeout.ms" => {
                self.group_min_session_timeout_ms = scaled(key, value, 1)?
            }
            "group.max.session.timeout.ms" => {
                self.group_max_session_timeout_ms = scaled(key, value, 1)?
            }
            _ if NOT_USED.contains(&key)
                || NOT_USED_PREFIXES.iter().any(|p| key.starts_with(p)) =>
            {
                return Ok(Setting::NotUsed)
            }
            _ => return Ok(Setting::Unknown),
        }
        Ok(Setting::Applied)
    }

    /// Applies the settings of a properties text; `origin` names it in messages
    /// (`server.properties line 12`). Returns the ignored keys as warnings.
    pub fn apply_properties(
        &mut self,
        text: &str,
        origin: &str,
    ) -> Result<Vec<ConfigWarning>, ConfigError> {
        let mut entries = parse_properties(text).map_err(|error| ConfigError::At {
            origin: origin.to_owned(),
            error: Box::new(error),
        })?;
        entries.sort_by_key(|(_, key, _)| precedence(key));
        let mut warnings = Vec::new();
        for (line, key, value) in entries {
            let origin = format!("{origin} line {line}");
            self.apply_one(&key, &value, origin, &mut warnings)?;
        }
        Ok(warnings)
    }

    /// Applies a properties file, as [`apply_properties`](Self::apply_properties).
    pub fn apply_file(&mut self, path: &Path) -> Result<Vec<ConfigWarning>, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        self.apply_properties(&text, &path.display().to_string())
    }

    /// Applies command-line `key=value` overrides; `origin` names the flag.
    pub fn apply_overrides<'a>(
        &mut self,
        overrides: impl IntoIterator<Item = (&'a str, &'a str)>,
        origin: &str,
    ) -> Result<Vec<ConfigWarning>, ConfigError> {
        let mut warnings = Vec::new();
        for (key, value) in overrides {
            self.apply_one(key.trim(), value, origin.to_owned(), &mut warnings)?;
        }
        Ok(warnings)
    }

    fn apply_one(
        &mut self,
        key: &str,
        value: &str,
        origin: String,
        warnings: &mut Vec<ConfigWarning>,
    ) -> Result<(), ConfigError> {
        match self.set(key, value) {
            Ok(Setting::Applied) => Ok(()),
            Ok(setting) => {
                warnings.push(ConfigWarning {
                    origin,
                    key: key.to_owned(),
                    setting,
                });
                Ok(())
            }
            Err(error) => Err(ConfigError::At {
                origin,
                error: Box::new(error),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_a_server_properties_file() {
        let text = "node.id=3\nlisteners=PLAINTEXT://127.0.0.1:19092\nlog.dirs=/a, /b\n\
                    num.partitions=6\nlog.retention.ms=1000\nlog.retention.hours=1\n\
                    num.network.threads=3\nlog.retnetion.hours=2\nauto.create.topics.enable=FALSE\n";
        let mut config = BrokerConfig::default();
        let warnings = config.apply_properties(text, "server.properties");
        let warnings = warnings.unwrap_or_default();
        assert_eq!(config.node_id, NodeId(3));
        assert_eq!(config.listeners[0].port, 19092);
        assert_eq!(
            config.log_dirs,
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
        assert_eq!(config.num_partitions, 6);
        // ms wins over hours whatever the order, as in Kafka.
        assert_eq!(config.log_retention_ms, Some(1000));
        assert!(!config.auto_create_topics_enable);
        assert_eq!(warnings.len(), 2);
        assert_eq!(warnings[0].setting, Setting::NotUsed);
        assert_eq!(warnings[1].setting, Setting::Unknown);
        let text = warnings[1].to_string();
        assert!(
            text.starts_with("server.properties line 8: unknown setting log.retnetion.hours"),
            "{text}"
        );
    }

    #[test]
    fn invalid_values_say_where_and_what() {
        let mut config = BrokerConfig::default();
        let error = config
            .apply_properties("a.b=1\nnum.partitions=many\n", "my.properties")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("my.properties line 2: invalid value \"many\" for num.partitions"),
            "{error}"
        );
        let error = config
            .apply_overrides([("auto.create.topics.enable", "yes")], "--override")
            .unwrap_err()
            .to_string();
        assert!(error.contains("expected true or false"), "{error}");
        let error = config
            .set("listeners", "localhost")
            .unwrap_err()
            .to_string();
        assert!(error.contains("host:port"), "{error}");
    }

    #[test]
    fn minus_one_means_unlimited_where_kafka_says_so() {
        let mut config = BrokerConfig::default();
        assert_eq!(
            config.set("log.retention.ms", "-1").ok(),
            Some(Setting::Applied)
        );
        assert_eq!(config.log_retention_ms, None);
        assert_eq!(
            config.set("log.retention.bytes", "1024").ok(),
            Some(Setting::Applied)
        );
        assert_eq!(config.log_retention_bytes, Some(1024));
        assert!(config.set("log.roll.ms", "-1").is_err());
        assert!(config.set("log.retention.ms", "-2").is_err());
    }

    #[test]
    fn empty_advertised_listeners_means_unset() {
        let mut config = BrokerConfig::default();
        assert!(config
            .set("advertised.listeners", "PLAINTEXT://h:1")
            .is_ok());
        assert!(config.advertised_listeners.is_some());
        assert!(config.set("advertised.listeners", "").is_ok());
        assert_eq!(config.advertised_listeners, None);
    }
}
