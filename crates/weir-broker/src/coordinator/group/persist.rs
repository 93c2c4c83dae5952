//! A classic group as its metadata record: written after each completed
//! rebalance, read back when the partition is loaded. Also the subscribed topics,
//! which come from the members' metadata.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use weir_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
use weir_protocol::messages::group_metadata_value::{GroupMetadataValue, MemberMetadata};
use weir_protocol::wire::Decoder;
use weir_protocol::Message;

use super::{ClassicGroup, GroupState, Member, Protocol};

impl ClassicGroup {
    /// The group a metadata record describes (loading): Stable with its members, or
    /// Empty.
    pub(crate) fn from_record(id: &str, value: GroupMetadataValue) -> ClassicGroup {
        let protocol_type = Some(value.protocol_type).filter(|t| !t.is_empty());
        let mut group = ClassicGroup {
            state: if value.members.is_empty() {
                GroupState::Empty
            } else {
                GroupState::Stable
            },
            state_timestamp_ms: Some(value.current_state_timestamp).filter(|t| *t >= 0),
            protocol_type: protocol_type.clone(),
            protocol_name: value.protocol.clone(),
            generation: value.generation,
            leader: value.leader,
            ..ClassicGroup::new(id, 0)
        };
        for m in value.members {
            let rebalance_timeout_ms = if m.rebalance_timeout == -1 {
                m.session_timeout
            } else {
                m.rebalance_timeout
            };
            let mut member = Member::new(
                m.member_id,
                m.group_instance_id,
                m.client_id,
                m.client_host,
                rebalance_timeout_ms,
                m.session_timeout,
                protocol_type.clone().unwrap_or_default(),
                vec![Protocol {
                    name: value.protocol.clone().unwrap_or_default(),
                    metadata: m.subscription,
                }],
            );
            member.assignment = m.assignment;
            group.insert(member, None);
        }
        group.subscribed_topics = group.compute_subscribed_topics();
        group
    }

    /// The metadata record of the group with `assignment` (Kafka's
    /// `newGroupMetadataRecord`; members without an entry get an empty assignment).
    pub(crate) fn to_record_value(
        &self,
        assignment: &BTreeMap<String, Bytes>,
    ) -> GroupMetadataValue {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol_name.clone(),
            leader: self.leader.clone(),
            current_state_timestamp: self.state_timestamp_or_default(),
            members: self
                .members
                .values()
                .map(|m| MemberMetadata {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout: m.rebalance_timeout_ms,
                    session_timeout: m.session_timeout_ms,
                    subscription: m.metadata(protocol).cloned().unwrap_or_default(),
                    assignment: assignment.get(&m.id).cloned().unwrap_or_default(),
                })
                .collect(),
        }
    }

    /// The record of a group that exists but has no generation yet (Kafka's
    /// `newEmptyGroupMetadataRecord`).
    pub(crate) fn empty_record_value(&self) -> GroupMetadataValue {
        GroupMetadataValue {
            protocol_type: String::new(),
            generation: 0,
            protocol: None,
            leader: None,
            current_state_timestamp: self.state_timestamp_or_default(),
            members: Vec::new(),
        }
    }

    /// Whether offsets of `topic` are in use: the consumers subscribe to it (or, for
    /// a consumer group whose subscriptions are unknown, assume so).
    pub(crate) fn is_subscribed_to_topic(&self, topic: &str) -> bool {
        match &self.subscribed_topics {
            Some(topics) => topics.contains(topic),
            None => self.uses_consumer_protocol(),
        }
    }

    /// The topics the consumers subscribe to, read from their metadata (the
    /// consumer protocol's v0 prefix, which every version starts with).
    pub(super) fn compute_subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if !self.uses_consumer_protocol() {
            return None;
        }
        if self.members.is_empty() {
            return Some(BTreeSet::new());
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for m in self.members.values() {
            let metadata = m.metadata(protocol)?.clone();
            let mut d = Decoder::new(metadata);
            d.i16().ok()?;
            let subscription = ConsumerProtocolSubscription::decode(&mut d, 0).ok()?;
            topics.extend(subscription.topics);
        }
        Some(topics)
    }
}
