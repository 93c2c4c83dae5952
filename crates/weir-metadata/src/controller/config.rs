//! The controller's settings and the topic config validator it consults.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use weir_log::LogConfig;
use weir_types::{Clock, NodeId, SystemClock};

use crate::error::{MetadataError, Result};
use crate::image::Endpoint;

/// Checks topic config overrides. The controller knows config *names* only as
/// strings; what is valid (names, value syntax, ranges, combinations) belongs to the
/// log's `LogConfig`, which the composition root plugs in here.
pub trait TopicConfigValidator: Send + Sync + 'static {
    /// Checks a topic's complete set of overrides (what the topic would have after
    /// the change); the error says what is wrong and becomes INVALID_CONFIG.
    fn validate(&self, configs: &BTreeMap<String, String>) -> Result<(), String>;

    /// Whether `name` is a list config (IncrementalAlterConfigs APPEND/SUBTRACT apply).
    fn is_list(&self, name: &str) -> bool {
        matches!(
            name,
            "cleanup.policy"
                | "leader.replication.throttled.replicas"
                | "follower.replication.throttled.replicas"
        )
    }

    /// The topic-level default of `name`, which APPEND and SUBTRACT start from when
    /// the topic has no override (Kafka: `cleanup.policy` is "delete").
    fn default_value(&self, name: &str) -> Option<String> {
        (name == "cleanup.policy").then(|| "delete".to_string())
    }
}

/// A validator made of a per-setting check, `Fn(name, value) -> Result<(), reason>`.
pub struct PairValidator<F>(pub F);

impl<F> TopicConfigValidator for PairValidator<F>
where
    F: Fn(&str, &str) -> Result<(), String> + Send + Sync + 'static,
{
    fn validate(&self, configs: &BTreeMap<String, String>) -> Result<(), String> {
        configs.iter().try_for_each(|(k, v)| (self.0)(k, v))
    }
}

/// The log's own rules: the overrides are applied to the broker's defaults with
/// weir-log's [`LogConfig::with_overrides`], which knows every Kafka topic config
/// name, its syntax, its range, and the combinations Kafka checks. The default
/// validator of [`ControllerConfig`].
#[derive(Debug, Clone, Default)]
pub struct LogConfigValidator {
    /// The broker-level defaults (`log.retention.ms`, ...) the overrides apply to.
    pub defaults: LogConfig,
}

impl TopicConfigValidator for LogConfigValidator {
    fn validate(&self, configs: &BTreeMap<String, String>) -> Result<(), String> {
        self.defaults
            .with_overrides(configs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn default_value(&self, name: &str) -> Option<String> {
        self.defaults
            .to_pairs()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// Accepts every config (tests and tools that validate elsewhere).
#[derive(Debug, Default, Clone, Copy)]
pub struct AcceptAllConfigs;

impl TopicConfigValidator for AcceptAllConfigs {
    fn validate(&self, _: &BTreeMap<String, String>) -> Result<(), String> {
        Ok(())
    }
}

/// The controller's settings, under Kafka's broker config names where one exists.
#[derive(Clone)]
pub struct ControllerConfig {
    /// This node's id (`node.id`); the broker registered at startup. Default: 1.
    pub node_id: NodeId,
    /// Partitions of a topic created without a count (`num.partitions`).
    /// Default: 1. Minimum: 1.
    pub num_partitions: i32,
    /// Replication factor of a topic created without one
    /// (`default.replication.factor`). Default: 1. Minimum: 1.
    pub default_replication_factor: i16,
    /// Whether DeleteTopics may delete (`delete.topic.enable`). Default: true.
    pub delete_topic_enable: bool,
    /// The local broker's advertised listeners, registered at startup (none: the
    /// broker registers later with `Controller::register_broker`).
    pub listeners: Vec<Endpoint>,
    /// The local broker's rack (`broker.rack`). Default: none.
    pub rack: Option<String>,
    /// Checks topic config overrides. Default: [`LogConfigValidator`] on weir-log's
    /// defaults.
    pub validator: Arc<dyn TopicConfigValidator>,
    /// Requests waiting for the controller before callers wait to enqueue.
    /// Default: 1024. Minimum: 1.
    pub queue_capacity: usize,
    /// The cluster a single node's data directory must belong to (`cluster.id`);
    /// `None`: a new directory gets a random id. Default: none.
    pub cluster_id: Option<String>,
    /// Seed of the id generator (topic ids, incarnation ids), for reproducible
    /// tests; `None` seeds from the OS. Default: none.
    pub id_seed: Option<u64>,
    /// How long a broker stays unfenced without a heartbeat
    /// (`broker.session.timeout.ms`). Default: 9 s. Minimum: 1 ms.
    pub session_timeout: Duration,
    /// The broker default of `min.insync.replicas`, for topics without an
    /// override: the eligible leader replicas (KIP-966) follow it, so it must be the
    /// value the brokers' high-watermark rule uses. Default: 1. Minimum: 1.
    pub min_insync_replicas: i32,
    /// Whether the controller moves leadership back to preferred replicas
    /// periodically (`auto.leader.rebalance.enable`). Default: true.
    pub auto_leader_rebalance_enable: bool,
    /// How often that rebalance runs (`leader.imbalance.check.interval.seconds`).
    /// Default: 300 s.
    pub leader_imbalance_check_interval: Duration,
    /// The share of a broker's preferred partitions that may be led elsewhere
    /// before the rebalance moves them back (`leader.imbalance.per.broker.percentage`).
    /// Default: 10.
    pub leader_imbalance_per_broker_percentage: u32,
    /// How often the controller runs its periodic checks (session expiry,
    /// elections, rebalance). Default: 250 ms. Minimum: 1 ms.
    pub tick_interval: Duration,
    /// How long a request waits for an active controller (forwarding, elections)
    /// before it fails with NOT_CONTROLLER (`request.timeout.ms`). Default: 30 s.
    pub request_timeout: Duration,
    /// The clock of sessions and batch timestamps (tests use a fake one).
    /// Default: the system clock.
    pub clock: Arc<dyn Clock>,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            node_id: NodeId(1),
            num_partitions: 1,
            default_replication_factor: 1,
            delete_topic_enable: true,
            listeners: Vec::new(),
            rack: None,
            validator: Arc::new(LogConfigValidator::default()),
            queue_capacity: 1024,
            cluster_id: None,
            id_seed: None,
            session_timeout: Duration::from_millis(9000),
            min_insync_replicas: 1,
            auto_leader_rebalance_enable: true,
            leader_imbalance_check_interval: Duration::from_secs(300),
            leader_imbalance_per_broker_percentage: 10,
            tick_interval: Duration::from_millis(250),
            request_timeout: Duration::from_secs(30),
            clock: Arc::new(SystemClock),
        }
    }
}

impl fmt::Debug for ControllerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControllerConfig")
            .field("node_id", &self.node_id)
            .field("num_partitions", &self.num_partitions)
            .field(
                "default_replication_factor",
                &self.default_replication_factor,
            )
            .field("delete_topic_enable", &self.delete_topic_enable)
            .field("listeners", &self.listeners)
            .field("rack", &self.rack)
            .field("queue_capacity", &self.queue_capacity)
            .field("cluster_id", &self.cluster_id)
            .field("id_seed", &self.id_seed)
            .field("session_timeout", &self.session_timeout)
            .field("min_insync_replicas", &self.min_insync_replicas)
            .field(
                "auto_leader_rebalance_enable",
                &self.auto_leader_rebalance_enable,
            )
            .field(
                "leader_imbalance_check_interval",
                &self.leader_imbalance_check_interval,
            )
            .field(
                "leader_imbalance_per_broker_percentage",
                &self.leader_imbalance_per_broker_percentage,
            )
            .field("tick_interval", &self.tick_interval)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl ControllerConfig {
    /// Checks the settings and says which one is wrong.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(MetadataError::Config(m));
        if self.node_id.get() < 0 {
            return bad(format!("node.id {} must be >= 0", self.node_id));
        }
        if self.num_partitions < 1 {
            return bad(format!(
                "num.partitions {} must be >= 1",
                self.num_partitions
            ));
        }
        if self.default_replication_factor < 1 {
            return bad(format!(
                "default.replication.factor {} must be >= 1",
                self.default_replication_factor
            ));
        }
        if self.min_insync_replicas < 1 {
            return bad(format!(
                "min.insync.replicas {} must be >= 1",
                self.min_insync_replicas
            ));
        }
        if self.queue_capacity == 0 {
            return bad("queue_capacity must be >= 1".into());
        }
        if self.session_timeout.is_zero() {
            return bad("broker.session.timeout.ms must be >= 1".into());
        }
        if self.tick_interval.is_zero() {
            return bad("tick_interval must be >= 1 ms".into());
        }
        Ok(())
    }
}
