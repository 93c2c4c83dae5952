//! KIP-848 consumer groups: the broker computes the assignment (server-side
//! assignors) and each member reconciles toward it through ConsumerGroupHeartbeat,
//! with member epochs instead of generations.
//!
//! The shape is Kafka's: a group has an epoch, bumped whenever what the assignment
//! depends on changes (members, subscriptions, subscribed topics' partitions); a
//! target assignment computed at some group epoch; and per member a current
//! assignment with its own member epoch. A member moves to a new target epoch only
//! once it has released the partitions it must give up (state UNREVOKED_PARTITIONS
//! until then), and a partition moves to its new owner only once the old owner has
//! released it (UNRELEASED_PARTITIONS). Every change is a record (`records.rs`),
//! and the state changes by replaying them, while serving and when loading.
//!
//! Files: `heartbeat.rs` (ConsumerGroupHeartbeat, leaving, fencing, timeouts),
//! `checks.rs` (request validation, member epoch fencing),
//! `reconcile.rs` (a member's next assignment), `assignor.rs` (uniform and range,
//! and the target assignment), `records.rs` (record formats and replay),
//! `describe.rs` (ConsumerGroupDescribe, ListGroups entries), `topic_regex.rs`
//! (regular-expression subscriptions).
//!
//! Not supported: rack-aware assignment, and classic-protocol members inside a consumer group
//! (Kafka's online migration): a classic JoinGroup to a consumer group with members
//! is refused with INCONSISTENT_GROUP_PROTOCOL, and an empty group of either kind is
//! replaced by the other, offsets kept.

mod assignor;
mod checks;
mod describe;
mod heartbeat;
mod reconcile;
pub(crate) mod records;
mod topic_regex;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use weir_protocol::Uuid;
use weir_types::ErrorCode;

pub(crate) use assignor::DEFAULT_ASSIGNOR;
pub(crate) use describe::CONSUMER_GROUP_TYPE;
pub(crate) use heartbeat::HeartbeatResult;
pub(crate) use records::ConsumerRecord;
pub(crate) use topic_regex::TopicRegex;

/// A member's partitions, by topic id.
pub(crate) type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// The member epoch a member sends to leave.
pub(crate) const LEAVE_EPOCH: i32 = -1;
/// The member epoch a static member sends to leave for now (it may come back).
pub(crate) const STATIC_LEAVE_EPOCH: i32 = -2;

/// The topics of the cluster, as the coordinator sees them: names, ids and
/// partition counts, from the newest metadata image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicCatalog {
    /// Topic id and partition count by name.
    by_name: BTreeMap<String, (Uuid, i32)>,
    /// Names by topic id.
    by_id: HashMap<Uuid, String>,
}

impl TopicCatalog {
    /// A catalog of `(name, id, partitions)`.
    pub fn new(topics: impl IntoIterator<Item = (String, Uuid, i32)>) -> Self {
        let mut catalog = TopicCatalog::default();
        for (name, id, partitions) in topics {
            catalog.by_id.insert(id, name.clone());
            catalog.by_name.insert(name, (id, partitions));
        }
        catalog
    }

    /// A topic's id and partition count.
    pub(crate) fn topic(&self, name: &str) -> Option<(Uuid, i32)> {
        self.by_name.get(name).copied()
    }

    /// Every topic's name, in order.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// A topic's name.
    pub(crate) fn name(&self, id: Uuid) -> Option<&str> {
        self.by_id.get(&id).map(String::as_str)
    }
}

/// The metadata of a subscribed topic the assignment was computed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TopicMeta {
    /// The topic id.
    pub(crate) id: Uuid,
    /// The partition count.
    pub(crate) partitions: i32,
}

/// Where a member is in reconciling toward the target assignment (Kafka's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemberState {
    /// Owns exactly what its epoch's target gives it.
    Stable,
    /// Must release partitions before it may move to the new epoch.
    UnrevokedPartitions,
    /// At the new epoch, waiting for partitions other members still hold.
    UnreleasedPartitions,
    /// Unknown (a record from a newer writer); the member must rejoin.
    Unknown,
}

impl MemberState {
    /// The stored value.
    pub(crate) fn value(self) -> i8 {
        match self {
            MemberState::Stable => 0,
            MemberState::UnrevokedPartitions => 1,
            MemberState::UnreleasedPartitions => 2,
            MemberState::Unknown => 127,
        }
    }

    /// From a stored value.
    pub(crate) fn from_value(value: i8) -> MemberState {
        match value {
            0 => MemberState::Stable,
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Unknown,
        }
    }
}

/// A member of a consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConsumerMember {
    /// The member id (the coordinator's, from the first heartbeat).
    pub(crate) id: String,
    /// `group.instance.id` of a static member.
    pub(crate) instance_id: Option<String>,
    /// `client.rack`.
    pub(crate) rack_id: Option<String>,
    /// The client id of its last heartbeat.
    pub(crate) client_id: String,
    /// Its address as Kafka shows it (`/127.0.0.1`).
    pub(crate) client_host: String,
    /// The topics it subscribes to.
    pub(crate) subscribed_topics: BTreeSet<String>,
    /// Its regular-expression subscription (never set by v0 clients); see
    /// `topic_regex.rs`.
    pub(crate) subscribed_topic_regex: Option<TopicRegex>,
    /// How long it may take to release revoked partitions.
    pub(crate) rebalance_timeout_ms: i32,
    /// The server assignor it asked for.
    pub(crate) server_assignor: Option<String>,
    /// Its epoch.
    pub(crate) member_epoch: i32,
    /// Its epoch before the last bump (accepted in case the bump was lost).
    pub(crate) previous_member_epoch: i32,
    /// Its reconciliation state.
    pub(crate) state: MemberState,
    /// What it owns.
    pub(crate) assigned: Assignment,
    /// What it must still release.
    pub(crate) pending_revocation: Assignment,
}

impl ConsumerMember {
    /// A member that just appeared (Kafka's builder defaults).
    pub(crate) fn new(id: &str) -> ConsumerMember {
        ConsumerMember {
            id: id.to_owned(),
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            subscribed_topics: BTreeSet::new(),
            subscribed_topic_regex: None,
            rebalance_timeout_ms: -1,
            server_assignor: None,
            member_epoch: 0,
            previous_member_epoch: -1,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
        }
    }

    /// Whether it owns exactly the target of `epoch`.
    pub(crate) fn is_reconciled_to(&self, epoch: i32) -> bool {
        self.state == MemberState::Stable && self.member_epoch == epoch
    }

    /// Whether its subscription fields (what the member metadata record holds)
    /// differ from `other`'s.
    pub(crate) fn metadata_differs(&self, other: &ConsumerMember) -> bool {
        self.instance_id != other.instance_id
            || self.rack_id != other.rack_id
            || self.client_id != other.client_id
            || self.client_host != other.client_host
            || self.subscribed_topics != other.subscribed_topics
            || self.subscribed_topic_regex != other.subscribed_topic_regex
            || self.rebalance_timeout_ms != other.rebalance_timeout_ms
            || self.server_assignor != other.server_assignor
    }

    /// Whether it subscribes to `topic`, by name or by its regex.
    pub(crate) fn subscribes_to(&self, topic: &str) -> bool {
        self.subscribed_topics.contains(topic)
            || self
                .subscribed_topic_regex
                .as_ref()
                .is_some_and(|re| re.matches(topic))
    }

    /// Its subscribed topics among `existing` (the topic names it sent, whether or
    /// not they exist, and the existing topics its regex matches).
    pub(crate) fn subscribed_among<'a>(
        &self,
        existing: impl IntoIterator<Item = &'a str>,
    ) -> BTreeSet<String> {
        let mut topics = self.subscribed_topics.clone();
        if let Some(re) = &self.subscribed_topic_regex {
            topics.extend(
                existing
                    .into_iter()
                    .filter(|t| re.matches(t))
                    .map(str::to_owned),
            );
        }
        topics
    }

    /// Moves to `epoch`, remembering the old one.
    pub(crate) fn bump_epoch(&mut self, epoch: i32) {
        self.previous_member_epoch = self.member_epoch;
        self.member_epoch = epoch;
    }
}

/// The states of a consumer group, as Kafka names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConsumerGroupState {
    /// No members.
    Empty,
    /// The group epoch is ahead of the target assignment.
    Assigning,
    /// Some member has not reached the target assignment.
    Reconciling,
    /// Everyone owns its target.
    Stable,
}

impl ConsumerGroupState {
    /// The name Kafka reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

/// A consumer group; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConsumerGroup {
    /// The group id.
    pub(crate) id: String,
    /// The group epoch.
    pub(crate) group_epoch: i32,
    /// The group epoch the target assignment was computed at (-1 once deleted).
    pub(crate) assignment_epoch: i32,
    /// Members by id.
    pub(crate) members: BTreeMap<String, ConsumerMember>,
    /// The subscribed topics' metadata the target assignment was computed for.
    pub(crate) subscription_metadata: BTreeMap<String, TopicMeta>,
    /// The target assignment, by member id.
    pub(crate) target: BTreeMap<String, Assignment>,
}

impl ConsumerGroup {
    /// A new, empty group.
    pub(crate) fn new(id: &str) -> ConsumerGroup {
        ConsumerGroup {
            id: id.to_owned(),
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            subscription_metadata: BTreeMap::new(),
            target: BTreeMap::new(),
        }
    }

    /// The group's state, derived as Kafka derives it.
    pub(crate) fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| !m.is_reconciled_to(self.assignment_epoch))
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// The member id of static member `instance`.
    pub(crate) fn static_member_id(&self, instance: &str) -> Option<&str> {
        self.members
            .values()
            .find(|m| m.instance_id.as_deref() == Some(instance))
            .map(|m| m.id.as_str())
    }

    /// The target assignment of a member (a static member's previous incarnation's
    /// when it rejoins under a new id).
    pub(crate) fn target_of(&self, member_id: &str) -> Assignment {
        self.target.get(member_id).cloned().unwrap_or_default()
    }

    /// Every topic some member subscribes to, with `old` replaced by `new`; regex
    /// subscriptions are resolved against the topic names `existing`.
    pub(crate) fn subscribed_topics_with(
        &self,
        old: Option<&ConsumerMember>,
        new: Option<&ConsumerMember>,
        existing: &[&str],
    ) -> BTreeSet<String> {
        let mut topics = BTreeSet::new();
        for m in self.members.values() {
            if old.is_some_and(|o| o.id == m.id) {
                continue;
            }
            topics.extend(m.subscribed_among(existing.iter().copied()));
        }
        if let Some(n) = new {
            topics.extend(n.subscribed_among(existing.iter().copied()));
        }
        topics
    }

    /// Whether some member subscribes to `topic`, by name or regex (its offsets are
    /// in use).
    pub(crate) fn is_subscribed_to_topic(&self, topic: &str) -> bool {
        self.members.values().any(|m| m.subscribes_to(topic))
    }

    /// The epoch at which each partition is owned (assigned or pending revocation)
    /// by a member other than `except` (a member never waits for itself).
    pub(crate) fn partition_epochs(&self, except: &str) -> HashMap<(Uuid, i32), i32> {
        let mut epochs = HashMap::new();
        for m in self.members.values().filter(|m| m.id != except) {
            for (topic, partitions) in m.assigned.iter().chain(m.pending_revocation.iter()) {
                for p in partitions {
                    epochs.insert((*topic, *p), m.member_epoch);
                }
            }
        }
        epochs
    }

    /// The server assignor most members asked for (ties: the first name).
    pub(crate) fn preferred_assignor(
        &self,
        old: Option<&ConsumerMember>,
        new: Option<&ConsumerMember>,
    ) -> Option<String> {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if old.is_some_and(|o| o.id == m.id) {
                continue;
            }
            if let Some(a) = &m.server_assignor {
                *counts.entry(a).or_default() += 1;
            }
        }
        if let Some(a) = new.and_then(|n| n.server_assignor.as_deref()) {
            *counts.entry(a).or_default() += 1;
        }
        let best = counts.values().copied().max()?;
        counts
            .into_iter()
            .find(|(_, n)| *n == best)
            .map(|(name, _)| name.to_owned())
    }

    /// Kafka's checks for an OffsetCommit by a member: the member must exist, use
    /// OffsetCommit v9+, and send its current epoch.
    pub(crate) fn validate_offset_commit(
        &self,
        member_id: &str,
        member_epoch: i32,
        api_version: i16,
    ) -> Result<(), ErrorCode> {
        if member_epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        let member = self
            .members
            .get(member_id)
            .ok_or(ErrorCode::UnknownMemberId)?;
        if api_version < 9 {
            return Err(ErrorCode::UnsupportedVersion);
        }
        if member_epoch != member.member_epoch {
            return Err(ErrorCode::StaleMemberEpoch);
        }
        Ok(())
    }

    /// Kafka's checks for an OffsetFetch naming a member (v9+).
    pub(crate) fn validate_offset_fetch(
        &self,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Result<(), ErrorCode> {
        if member_id.is_none() && member_epoch < 0 {
            return Ok(());
        }
        let member = member_id
            .and_then(|id| self.members.get(id))
            .ok_or(ErrorCode::UnknownMemberId)?;
        if member_epoch != member.member_epoch {
            return Err(ErrorCode::StaleMemberEpoch);
        }
        Ok(())
    }
}
