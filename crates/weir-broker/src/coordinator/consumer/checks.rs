//! The checks of a ConsumerGroupHeartbeat (Kafka's request validation and member
//! epoch fencing), and small helpers of `heartbeat.rs`.

use std::collections::{BTreeMap, BTreeSet};

use weir_protocol::messages::consumer_group_heartbeat::{
    Assignment as WireAssignment, ConsumerGroupHeartbeatRequest, TopicPartitions,
};
use weir_types::ErrorCode;

use super::assignor::ASSIGNORS;
use super::reconcile::Owned;
use super::{
    Assignment, ConsumerMember, MemberState, TopicCatalog, TopicMeta, LEAVE_EPOCH,
    STATIC_LEAVE_EPOCH,
};

/// A heartbeat's failure: the code and Kafka's message.
pub(crate) type Failure = (ErrorCode, String);

/// Kafka's request checks (INVALID_REQUEST, UNSUPPORTED_ASSIGNOR).
pub(super) fn validate(r: &ConsumerGroupHeartbeatRequest) -> Result<(), Failure> {
    let invalid = |m: &str| Err((ErrorCode::InvalidRequest, m.to_owned()));
    if r.group_id.trim().is_empty() {
        return invalid("GroupId can't be empty.");
    }
    if r.instance_id
        .as_deref()
        .is_some_and(|i| i.trim().is_empty())
    {
        return invalid("InstanceId can't be empty.");
    }
    if r.rack_id.as_deref().is_some_and(|i| i.trim().is_empty()) {
        return invalid("RackId can't be empty.");
    }
    match r.member_epoch {
        e if e > 0 || e == LEAVE_EPOCH => {
            if r.member_id.trim().is_empty() {
                return invalid("MemberId can't be empty.");
            }
        }
        0 => {
            if r.rebalance_timeout_ms == -1 {
                return invalid("RebalanceTimeoutMs must be provided in first request.");
            }
            if r.topic_partitions.as_ref().is_none_or(|t| !t.is_empty()) {
                return invalid("TopicPartitions must be empty when (re-)joining.");
            }
            // An empty regex is "no regex": librdkafka sends one with every name
            // subscription.
            let names = r
                .subscribed_topic_names
                .as_ref()
                .is_some_and(|n| !n.is_empty());
            let regex = r
                .subscribed_topic_regex
                .as_ref()
                .is_some_and(|re| !re.is_empty());
            if !names && !regex {
                return invalid(
                    "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
                );
            }
        }
        STATIC_LEAVE_EPOCH => {
            if r.member_id.trim().is_empty() {
                return invalid("MemberId can't be empty.");
            }
            if r.instance_id.is_none() {
                return invalid("InstanceId can't be null.");
            }
        }
        _ => return invalid("MemberEpoch is invalid."),
    }
    if let Some(a) = &r.server_assignor {
        if !ASSIGNORS.contains(&a.as_str()) {
            return Err((
                ErrorCode::UnsupportedAssignor,
                format!(
                    "ServerAssignor {a} is not supported. Supported assignors: {}.",
                    ASSIGNORS.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Kafka's epoch check: a newer epoch than ours, or an older one that is not the
/// previous epoch with a subset of the current partitions (a lost response), is
/// FENCED_MEMBER_EPOCH.
pub(super) fn check_epoch(
    member: &ConsumerMember,
    received: i32,
    owned: Owned<'_>,
) -> Result<(), Failure> {
    let fenced = || {
        Err((
            ErrorCode::FencedMemberEpoch,
            format!(
                "The consumer group member has a different member epoch ({received}) than the one known by the \
                 group coordinator ({}). The member must abandon all its partitions and rejoin.",
                member.member_epoch
            ),
        ))
    };
    if received > member.member_epoch {
        return fenced();
    }
    if received < member.member_epoch {
        let subset = owned.is_some_and(|o| {
            o.iter().all(|(topic, ps)| {
                member
                    .assigned
                    .get(topic)
                    .is_some_and(|mine| ps.iter().all(|p| mine.contains(p)))
            })
        });
        if received != member.previous_member_epoch || !subset {
            return fenced();
        }
    }
    Ok(())
}

/// An assignment as the response carries it.
pub(super) fn wire(a: &Assignment) -> WireAssignment {
    WireAssignment {
        topic_partitions: a
            .iter()
            .map(|(id, ps)| TopicPartitions {
                topic_id: *id,
                partitions: ps.iter().copied().collect(),
            })
            .collect(),
    }
}

/// A member sending epoch 0 again under its id: it gave everything up and starts
/// over (Weir accepts this; it does not fence the rejoin).
pub(super) fn rejoined(m: &ConsumerMember) -> ConsumerMember {
    ConsumerMember {
        member_epoch: 0,
        previous_member_epoch: -1,
        state: MemberState::Stable,
        assigned: Assignment::new(),
        pending_revocation: Assignment::new(),
        ..m.clone()
    }
}

/// The metadata of the subscribed topics that exist.
pub(super) fn subscription_metadata(
    topics: &BTreeSet<String>,
    catalog: &TopicCatalog,
) -> BTreeMap<String, TopicMeta> {
    topics
        .iter()
        .filter_map(|name| {
            catalog
                .topic(name)
                .map(|(id, partitions)| (name.clone(), TopicMeta { id, partitions }))
        })
        .collect()
}
