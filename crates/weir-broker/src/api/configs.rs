//! The config catalog the config APIs share: every topic and broker config Weir
//! reports, its type, its broker-level synonym, its value and where that value came
//! from.
//!
//! Admin tools (kafka-configs.sh, AdminClient, kcat -L) show a topic's *effective*
//! configuration, not just its overrides: each entry says whether it is set on the
//! topic (TOPIC_CONFIG), inherited from a setting in the broker's configuration
//! (STATIC_BROKER_CONFIG) or a built-in default (DEFAULT_CONFIG). A topic default is
//! the broker's `log.*` setting, exactly as the replica layer computes it
//! ([`log_defaults`]), so what DescribeConfigs reports is what the log runs with.
//! Weir has no dynamic broker configs, so a broker value is static when it differs
//! from Weir's default and a default otherwise.

use std::collections::BTreeMap;

use crate::config::{BrokerConfig, CleanupPolicy, CompressionType};
use crate::replica::log_defaults;

/// DescribeConfigs `config_source`: set on the topic.
pub(crate) const SOURCE_TOPIC: i8 = 1;
/// DescribeConfigs `config_source`: from the broker's configuration file.
pub(crate) const SOURCE_STATIC_BROKER: i8 = 4;
/// DescribeConfigs `config_source`: a built-in default.
pub(crate) const SOURCE_DEFAULT: i8 = 5;

/// DescribeConfigs `config_type` (v3+), Kafka's `ConfigDef.Type` ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub(crate) enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    Double = 6,
    List = 7,
}

/// A topic config: its name, type, the broker setting it defaults to, and (for the
/// names the log only passes through) Kafka's default value.
struct TopicDef {
    name: &'static str,
    ty: ConfigType,
    broker: Option<&'static str>,
    passthrough_default: Option<&'static str>,
}

const fn def(name: &'static str, ty: ConfigType, broker: Option<&'static str>) -> TopicDef {
    TopicDef {
        name,
        ty,
        broker,
        passthrough_default: None,
    }
}

const fn passthrough(name: &'static str, ty: ConfigType, default: &'static str) -> TopicDef {
    TopicDef {
        name,
        ty,
        broker: None,
        passthrough_default: Some(default),
    }
}

use ConfigType::{Boolean, Double, Int, List, Long};

/// Every topic config, sorted by name; the broker synonyms are Kafka's
/// (`ServerTopicConfigSynonyms`).
const TOPIC_DEFS: &[TopicDef] = &[
    def("cleanup.policy", List, Some("log.cleanup.policy")),
    passthrough("compression.gzip.level", Int, "-1"),
    passthrough("compression.lz4.level", Int, "9"),
    def(
        "compression.type",
        ConfigType::String,
        Some("compression.type"),
    ),
    passthrough("compression.zstd.level", Int, "3"),
    def(
        "delete.retention.ms",
        Long,
        Some("log.cleaner.delete.retention.ms"),
    ),
    def(
        "file.delete.delay.ms",
        Long,
        Some("log.segment.delete.delay.ms"),
    ),
    def("flush.messages", Long, Some("log.flush.interval.messages")),
    def("flush.ms", Long, Some("log.flush.interval.ms")),
    passthrough("follower.replication.throttled.replicas", List, ""),
    def(
        "index.interval.bytes",
        Int,
        Some("log.index.interval.bytes"),
    ),
    passthrough("leader.replication.throttled.replicas", List, ""),
    passthrough("local.retention.bytes", Long, "-2"),
    passthrough("local.retention.ms", Long, "-2"),
    def(
        "max.compaction.lag.ms",
        Long,
        Some("log.cleaner.max.compaction.lag.ms"),
    ),
    def("max.message.bytes", Int, Some("message.max.bytes")),
    def(
        "message.timestamp.after.max.ms",
        Long,
        Some("log.message.timestamp.after.max.ms"),
    ),
    def(
        "message.timestamp.before.max.ms",
        Long,
        Some("log.message.timestamp.before.max.ms"),
    ),
    def(
        "message.timestamp.type",
        ConfigType::String,
        Some("log.message.timestamp.type"),
    ),
    def(
        "min.cleanable.dirty.ratio",
        Double,
        Some("log.cleaner.min.cleanable.ratio"),
    ),
    def(
        "min.compaction.lag.ms",
        Long,
        Some("log.cleaner.min.compaction.lag.ms"),
    ),
    def("min.insync.replicas", Int, Some("min.insync.replicas")),
    def("preallocate", Boolean, Some("log.preallocate")),
    passthrough("remote.log.copy.disable", Boolean, "false"),
    passthrough("remote.log.delete.on.disable", Boolean, "false"),
    passthrough("remote.storage.enable", Boolean, "false"),
    def("retention.bytes", Long, Some("log.retention.bytes")),
    def("retention.ms", Long, Some("log.retention.ms")),
    def("segment.bytes", Int, Some("log.segment.bytes")),
    def("segment.index.bytes", Int, Some("log.index.size.max.bytes")),
    def("segment.jitter.ms", Long, Some("log.roll.jitter.ms")),
    def("segment.ms", Long, Some("log.roll.ms")),
    def(
        "unclean.leader.election.enable",
        Boolean,
        Some("unclean.leader.election.enable"),
    ),
];

/// One entry of a described configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigEntry {
    /// The config name.
    pub(crate) name: String,
    /// Its effective value.
    pub(crate) value: String,
    /// Where the value came from (`SOURCE_*`).
    pub(crate) source: i8,
    /// Whether AlterConfigs can change it.
    pub(crate) read_only: bool,
    /// Its type.
    pub(crate) ty: ConfigType,
    /// The values it would have at each level, most specific first:
    /// (name, value, source).
    pub(crate) synonyms: Vec<(String, String, i8)>,
}

/// The topic config catalog for one broker configuration; see the module docs.
#[derive(Debug, Clone)]
pub struct TopicConfigs {
    /// Topic defaults implied by this broker's configuration, by name.
    defaults: BTreeMap<String, String>,
    /// Topic defaults of a broker with Weir's default configuration.
    builtin: BTreeMap<String, String>,
}

impl TopicConfigs {
    /// The catalog for a broker configured with `broker`.
    pub fn new(broker: &BrokerConfig) -> TopicConfigs {
        let pairs = |c: &BrokerConfig| log_defaults(c).to_pairs().into_iter().collect();
        TopicConfigs {
            defaults: pairs(broker),
            builtin: pairs(&BrokerConfig::default()),
        }
    }

    /// Whether `name` is a topic config Weir knows.
    #[cfg(test)]
    pub(crate) fn is_known(name: &str) -> bool {
        TOPIC_DEFS.iter().any(|d| d.name == name)
    }

    /// The effective configuration of a topic with `overrides`, every entry.
    pub(crate) fn describe(&self, overrides: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
        TOPIC_DEFS
            .iter()
            .map(|d| self.entry(d, overrides.get(d.name)))
            .collect()
    }

    fn entry(&self, d: &TopicDef, topic_value: Option<&String>) -> ConfigEntry {
        let default = match d.passthrough_default {
            Some(v) => v.to_owned(),
            None => self.defaults.get(d.name).cloned().unwrap_or_default(),
        };
        let builtin = match d.passthrough_default {
            Some(v) => v.to_owned(),
            None => self.builtin.get(d.name).cloned().unwrap_or_default(),
        };
        let broker_name = d.broker.unwrap_or(d.name).to_owned();
        let mut synonyms = Vec::with_capacity(3);
        if let Some(v) = topic_value {
            synonyms.push((d.name.to_owned(), v.clone(), SOURCE_TOPIC));
        }
        if default != builtin {
            synonyms.push((broker_name.clone(), default.clone(), SOURCE_STATIC_BROKER));
        }
        synonyms.push((broker_name, builtin, SOURCE_DEFAULT));
        let (value, source) = match topic_value {
            Some(v) => (v.clone(), SOURCE_TOPIC),
            None if synonyms.len() > 1 => (default, SOURCE_STATIC_BROKER),
            None => (default, SOURCE_DEFAULT),
        };
        ConfigEntry {
            name: d.name.to_owned(),
            value,
            source,
            read_only: false,
            ty: d.ty,
            synonyms,
        }
    }
}

/// The broker's own configuration as DescribeConfigs reports it for a BROKER
/// resource: (name, value, type), every entry read-only (no dynamic broker configs).
pub(crate) fn broker_entries(config: &BrokerConfig) -> Vec<ConfigEntry> {
    let builtin = broker_values(&BrokerConfig::default());
    broker_values(config)
        .into_iter()
        .zip(builtin)
        .map(|((name, value, ty), (_, default, _))| {
            let source = if value == default {
                SOURCE_DEFAULT
            } else {
                SOURCE_STATIC_BROKER
            };
            let mut synonyms = Vec::with_capacity(2);
            if source == SOURCE_STATIC_BROKER {
                synonyms.push((name.to_owned(), value.clone(), SOURCE_STATIC_BROKER));
            }
            synonyms.push((name.to_owned(), default, SOURCE_DEFAULT));
            ConfigEntry {
                name: name.to_owned(),
                value,
                source,
                read_only: true,
                ty,
                synonyms,
            }
        })
        .collect()
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-1".to_owned(), |v| v.to_string())
}

fn joined<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn cleanup_policy(p: CleanupPolicy) -> &'static str {
    match (p.delete, p.compact) {
        (true, true) => "delete,compact",
        (false, true) => "compact",
        _ => "delete",
    }
}

fn compression(c: CompressionType) -> &'static str {
    match c {
        CompressionType::Producer => "producer",
        CompressionType::Uncompressed => "uncompressed",
        CompressionType::Gzip => "gzip",
        CompressionType::Snappy => "snappy",
        CompressionType::Lz4 => "lz4",
        CompressionType::Zstd => "zstd",
    }
}

/// Every broker setting Weir has, in a fixed order (so two configs zip by row).
fn broker_values(c: &BrokerConfig) -> Vec<(&'static str, String, ConfigType)> {
    use ConfigType::String as Str;
    let dirs: Vec<String> = c.log_dirs.iter().map(|d| d.display().to_string()).collect();
    vec![
        (
            "advertised.listeners",
            c.advertised_listeners
                .as_deref()
                .map(joined)
                .unwrap_or_default(),
            Str,
        ),
        (
            "auto.create.topics.enable",
            c.auto_create_topics_enable.to_string(),
            Boolean,
        ),
        ("broker.id", c.node_id.to_string(), Int),
        (
            "compression.type",
            compression(c.compression_type).to_owned(),
            Str,
        ),
        (
            "connections.max.idle.ms",
            c.connections_max_idle_ms.to_string(),
            Long,
        ),
        (
            "default.replication.factor",
            c.default_replication_factor.to_string(),
            Int,
        ),
        (
            "delete.topic.enable",
            c.delete_topic_enable.to_string(),
            Boolean,
        ),
        (
            "group.initial.rebalance.delay.ms",
            c.group_initial_rebalance_delay_ms.to_string(),
            Int,
        ),
        (
            "group.max.session.timeout.ms",
            c.group_max_session_timeout_ms.to_string(),
            Int,
        ),
        (
            "group.min.session.timeout.ms",
            c.group_min_session_timeout_ms.to_string(),
            Int,
        ),
        ("listeners", joined(&c.listeners), Str),
        (
            "log.cleanup.policy",
            cleanup_policy(c.log_cleanup_policy).to_owned(),
            List,
        ),
        ("log.dirs", dirs.join(","), Str),
        (
            "log.flush.interval.messages",
            c.log_flush_interval_messages.to_string(),
            Long,
        ),
        ("log.flush.interval.ms", opt(c.log_flush_interval_ms), Long),
        (
            "log.index.interval.bytes",
            c.log_index_interval_bytes.to_string(),
            Int,
        ),
        (
            "log.index.size.max.bytes",
            c.log_index_size_max_bytes.to_string(),
            Int,
        ),
        ("log.retention.bytes", opt(c.log_retention_bytes), Long),
        (
            "log.retention.check.interval.ms",
            c.log_retention_check_interval_ms.to_string(),
            Long,
        ),
        ("log.retention.ms", opt(c.log_retention_ms), Long),
        ("log.roll.ms", c.log_roll_ms.to_string(), Long),
        ("log.segment.bytes", c.log_segment_bytes.to_string(), Int),
        ("max.connections", c.max_connections.to_string(), Int),
        ("message.max.bytes", c.message_max_bytes.to_string(), Int),
        (
            "min.insync.replicas",
            c.min_insync_replicas.to_string(),
            Int,
        ),
        ("node.id", c.node_id.to_string(), Int),
        ("num.partitions", c.num_partitions.to_string(), Int),
        (
            "offsets.retention.minutes",
            c.offsets_retention_minutes.to_string(),
            Int,
        ),
        (
            "offsets.topic.num.partitions",
            c.offsets_topic_num_partitions.to_string(),
            Int,
        ),
        (
            "offsets.topic.replication.factor",
            c.offsets_topic_replication_factor.to_string(),
            Int,
        ),
        (
            "queued.max.requests.per.connection",
            c.queued_max_requests_per_connection.to_string(),
            Int,
        ),
        (
            "socket.request.max.bytes",
            c.socket_request_max_bytes.to_string(),
            Int,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use weir_log::LogConfig;

    use super::*;

    fn find<'a>(entries: &'a [ConfigEntry], name: &str) -> &'a ConfigEntry {
        entries.iter().find(|e| e.name == name).expect(name)
    }

    #[test]
    fn catalog_covers_every_name_the_log_knows_and_is_sorted() {
        for name in LogConfig::NAMES {
            assert!(TopicConfigs::is_known(name), "{name} missing");
        }
        let names: Vec<&str> = TOPIC_DEFS.iter().map(|d| d.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
    }

    #[test]
    fn sources_say_where_a_value_came_from() {
        let broker = BrokerConfig {
            log_retention_ms: Some(3_600_000),
            ..BrokerConfig::default()
        };
        let configs = TopicConfigs::new(&broker);
        let overrides = BTreeMap::from([("segment.ms".to_owned(), "60000".to_owned())]);
        let entries = configs.describe(&overrides);
        let topic = find(&entries, "segment.ms");
        assert_eq!(
            (topic.value.as_str(), topic.source),
            ("60000", SOURCE_TOPIC)
        );
        assert_eq!(topic.synonyms.len(), 2, "{:?}", topic.synonyms);
        let broker = find(&entries, "retention.ms");
        assert_eq!(
            (broker.value.as_str(), broker.source),
            ("3600000", SOURCE_STATIC_BROKER)
        );
        assert_eq!(broker.synonyms[0].0, "log.retention.ms");
        let default = find(&entries, "max.message.bytes");
        assert_eq!(
            (default.value.as_str(), default.source),
            ("1048588", SOURCE_DEFAULT)
        );
        assert_eq!(default.ty, ConfigType::Int);
        let passthrough = find(&entries, "remote.storage.enable");
        assert_eq!(passthrough.value, "false");
    }

    #[test]
    fn broker_entries_mark_changed_settings_static() {
        let broker = BrokerConfig {
            num_partitions: 3,
            ..BrokerConfig::default()
        };
        let entries = broker_entries(&broker);
        let n = find(&entries, "num.partitions");
        assert_eq!(
            (n.value.as_str(), n.source, n.read_only),
            ("3", SOURCE_STATIC_BROKER, true)
        );
        let a = find(&entries, "auto.create.topics.enable");
        assert_eq!((a.value.as_str(), a.source), ("true", SOURCE_DEFAULT));
    }
}
