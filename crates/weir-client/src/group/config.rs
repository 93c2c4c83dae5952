//! Group consumer settings, named and defaulted as in the Java client, and the
//! rebalance callbacks.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::cluster::TopicPartition;
use crate::consumer::ConsumerConfig;
use crate::error::{Error, Result};
use crate::group::assignor::Assignor;

/// Group consumer settings: the plain consumer's, plus membership and commits.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// Fetching, `auto.offset.reset` (used when the group has no committed offset
    /// for a partition), and the cluster settings.
    pub consumer: ConsumerConfig,
    /// `group.id`. Required.
    pub group_id: String,
    /// `group.instance.id`: makes the member static (KIP-345): a restart within
    /// `session.timeout.ms` takes its old place without a rebalance, and `close`
    /// does not leave the group. Default: none (dynamic member).
    pub group_instance_id: Option<String>,
    /// `session.timeout.ms`: the coordinator drops a member that sends no heartbeat
    /// for this long. Default: 45 s. Must lie within the broker's
    /// `group.min.session.timeout.ms` / `group.max.session.timeout.ms`.
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms`. Default: 3 s. Must be below `session.timeout.ms`.
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms`, sent as the rebalance timeout: how long the group
    /// waits for members to rejoin in a rebalance. Default: 5 minutes.
    pub rebalance_timeout: Duration,
    /// `partition.assignment.strategy`, in order of preference; the group uses the
    /// first one every member supports. Default: `[range, cooperative-sticky]`
    /// (Kafka 3's default order; eager while any member lacks cooperative-sticky).
    pub assignors: Vec<Assignor>,
    /// `enable.auto.commit`: commit the positions every `auto.commit.interval.ms`
    /// from `poll`, and before partitions are revoked or the consumer closes.
    /// Default: true.
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms`. Default: 5 s.
    pub auto_commit_interval: Duration,
    /// `group.protocol`: the classic protocol (JoinGroup/SyncGroup, client-side
    /// assignors) or KIP-848's consumer protocol (ConsumerGroupHeartbeat, the broker
    /// assigns). Default: classic.
    pub group_protocol: GroupProtocol,
    /// `group.remote.assignor`: the broker-side assignor a consumer-protocol member
    /// asks for (`uniform` or `range` on Weir and Kafka). Default: none (the
    /// broker's default). Unused by the classic protocol.
    pub remote_assignor: Option<String>,
}

/// `group.protocol`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GroupProtocol {
    /// JoinGroup, SyncGroup and Heartbeat; the group leader assigns.
    #[default]
    Classic,
    /// KIP-848 (`group.protocol=consumer`): ConsumerGroupHeartbeat; the broker
    /// assigns and the member reconciles toward its assignment.
    Consumer,
}

impl GroupProtocol {
    /// Parses Kafka's names (`classic`, `consumer`).
    pub fn from_name(name: &str) -> Option<GroupProtocol> {
        match name.trim().to_ascii_lowercase().as_str() {
            "classic" => Some(GroupProtocol::Classic),
            "consumer" => Some(GroupProtocol::Consumer),
            _ => None,
        }
    }
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            consumer: ConsumerConfig::default(),
            group_id: String::new(),
            group_instance_id: None,
            session_timeout: Duration::from_secs(45),
            heartbeat_interval: Duration::from_secs(3),
            rebalance_timeout: Duration::from_secs(300),
            assignors: vec![Assignor::Range, Assignor::CooperativeSticky],
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            group_protocol: GroupProtocol::Classic,
            remote_assignor: None,
        }
    }
}

impl GroupConfig {
    /// The defaults with these bootstrap servers and group id.
    pub fn new(bootstrap: &str, group_id: impl Into<String>) -> Self {
        GroupConfig {
            consumer: ConsumerConfig::new(bootstrap),
            group_id: group_id.into(),
            ..GroupConfig::default()
        }
    }

    /// Parses `partition.assignment.strategy` (comma-separated names).
    pub fn parse_assignors(text: &str) -> Result<Vec<Assignor>> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                Assignor::from_name(s).ok_or_else(|| {
                    Error::Config(format!(
                        "unknown assignor {s:?}: use range or cooperative-sticky"
                    ))
                })
            })
            .collect()
    }

    /// Whether the group rebalances cooperatively: only if every configured
    /// assignor is cooperative (as in the Java client).
    pub fn is_cooperative(&self) -> bool {
        !self.assignors.is_empty() && self.assignors.iter().all(|a| a.is_cooperative())
    }

    /// Checks the values and says what is wrong.
    pub fn validate(&self) -> Result<()> {
        self.consumer.validate()?;
        if self.group_id.is_empty() {
            return Err(Error::Config("group.id is required".into()));
        }
        if self.group_instance_id.as_deref() == Some("") {
            return Err(Error::Config(
                "group.instance.id must not be empty (leave it unset instead)".into(),
            ));
        }
        if self.remote_assignor.as_deref().is_some_and(str::is_empty) {
            return Err(Error::Config(
                "group.remote.assignor must not be empty (leave it unset instead)".into(),
            ));
        }
        if self.assignors.is_empty() {
            return Err(Error::Config(
                "partition.assignment.strategy is empty".into(),
            ));
        }
        if self.heartbeat_interval.is_zero() || self.heartbeat_interval >= self.session_timeout {
            return Err(Error::Config(
                "heartbeat.interval.ms must be positive and below session.timeout.ms".into(),
            ));
        }
        for (name, d) in [
            ("session.timeout.ms", self.session_timeout),
            ("max.poll.interval.ms", self.rebalance_timeout),
        ] {
            if d.is_zero() || i32::try_from(d.as_millis()).is_err() {
                return Err(Error::Config(format!(
                    "{name} must be between 1 and {} ms",
                    i32::MAX
                )));
            }
        }
        if self.enable_auto_commit && self.auto_commit_interval.is_zero() {
            return Err(Error::Config(
                "auto.commit.interval.ms must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// Callbacks for assignment changes, run from inside `poll` (and `close`), before
/// it returns any record of the new assignment.
pub trait RebalanceListener: Send {
    /// These partitions are now this member's (only the new ones under
    /// cooperative rebalancing). Their positions are set from the committed
    /// offsets already; a seek here overrides them.
    fn on_assigned(&mut self, partitions: &[TopicPartition]) {
        let _ = partitions;
    }
    /// These partitions are no longer this member's. With auto commit their
    /// positions were committed just before.
    fn on_revoked(&mut self, partitions: &[TopicPartition]) {
        let _ = partitions;
    }
    /// These partitions were lost without a chance to commit (the member was
    /// fenced: its session expired or its generation is stale). Default: calls
    /// `on_revoked`.
    fn on_lost(&mut self, partitions: &[TopicPartition]) {
        self.on_revoked(partitions);
    }
}

/// A predicate on topic names.
pub(crate) type TopicFilter = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// What a subscription matches: a list of topics, a regular expression, or a
/// predicate on topic names.
#[derive(Clone)]
pub enum Topics {
    /// These topics (created on first use if the broker auto-creates topics).
    Names(Vec<String>),
    /// Every existing topic, internal ones excepted, whose whole name the
    /// expression matches (Java's `subscribe(Pattern)`). The classic protocol
    /// matches it here on every metadata refresh (`metadata.max.age.ms`); the
    /// consumer protocol sends it to the broker, which resolves it.
    Regex(TopicRegex),
    /// Every existing topic, internal ones excepted, whose name the predicate
    /// accepts; re-evaluated on every metadata refresh (`metadata.max.age.ms`).
    /// Classic protocol only.
    Pattern(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl Topics {
    /// The predicate of a pattern subscription (`None` for names).
    pub(crate) fn matcher(&self) -> Option<TopicFilter> {
        match self {
            Topics::Names(_) => None,
            Topics::Regex(re) => {
                let re = re.clone();
                Some(Arc::new(move |t: &str| re.is_match(t)))
            }
            Topics::Pattern(f) => Some(f.clone()),
        }
    }
}

impl fmt::Debug for Topics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topics::Names(n) => f.debug_tuple("Names").field(n).finish(),
            Topics::Regex(re) => f.debug_tuple("Regex").field(&re.as_str()).finish(),
            Topics::Pattern(_) => f.write_str("Pattern(..)"),
        }
    }
}

/// A topic-name regular expression (RE2 syntax, the subset Java's and RE2/J's
/// agree on) that must match a whole topic name.
#[derive(Debug, Clone)]
pub struct TopicRegex {
    /// The expression as given (what the consumer protocol sends).
    source: String,
    /// `^(?:source)$`.
    compiled: regex::Regex,
}

impl TopicRegex {
    /// Compiles `source`; an invalid expression is a configuration error.
    pub fn new(source: &str) -> Result<TopicRegex> {
        let compiled = regex::Regex::new(&format!("^(?:{source})$")).map_err(|e| {
            Error::Config(format!("invalid topic regular expression {source:?}: {e}"))
        })?;
        Ok(TopicRegex {
            source: source.to_owned(),
            compiled,
        })
    }

    /// The expression as given.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the whole of `topic` matches.
    pub fn is_match(&self, topic: &str) -> bool {
        self.compiled.is_match(topic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_says_what_is_wrong() {
        assert!(GroupConfig::new("h:1", "g").validate().is_ok());
        let e = GroupConfig::new("h:1", "").validate().unwrap_err();
        assert!(e.to_string().contains("group.id"));
        let mut c = GroupConfig::new("h:1", "g");
        c.heartbeat_interval = c.session_timeout;
        assert!(c.validate().unwrap_err().to_string().contains("heartbeat"));
    }

    #[test]
    fn strategies_parse_and_decide_the_protocol() {
        let a = GroupConfig::parse_assignors("cooperative-sticky").unwrap();
        let c = GroupConfig {
            assignors: a,
            ..GroupConfig::new("h:1", "g")
        };
        assert!(c.is_cooperative());
        assert!(!GroupConfig::new("h:1", "g").is_cooperative());
        assert!(GroupConfig::parse_assignors("range, sticky").is_err());
        assert_eq!(
            GroupProtocol::from_name("Consumer"),
            Some(GroupProtocol::Consumer)
        );
        assert_eq!(GroupProtocol::from_name("eager"), None);
    }

    #[test]
    fn a_topic_regex_matches_whole_names() {
        let re = TopicRegex::new("orders-.*").unwrap();
        assert!(re.is_match("orders-eu"));
        assert!(!re.is_match("old-orders-eu"));
        let either = Topics::Regex(TopicRegex::new("a|b").unwrap());
        let m = either.matcher().unwrap();
        assert!(m("b") && !m("ab"));
        assert!(TopicRegex::new("orders-(").is_err());
    }
}
