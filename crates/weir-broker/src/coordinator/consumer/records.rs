//! The records of consumer groups in `__consumer_offsets`, Kafka's key versions 3
//! to 8, and their replay.
//!
//! One record per piece of state, each keyed so compaction keeps only its newest
//! value: the group epoch (3), the subscribed topics' metadata (4), each member's
//! subscription (5), the target assignment's epoch (6) and each member's part of
//! it (7), and each member's current assignment (8). Values are written at version
//! 0, as Kafka writes them. Deleting a member writes tombstones for 8, 7 and 5 in
//! that order; deleting the group, for every member's, then 6, 4 and 3.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use weir_protocol::messages::group_consumer_current_member_assignment_key::ConsumerGroupCurrentMemberAssignmentKey;
use weir_protocol::messages::group_consumer_current_member_assignment_value::{
    ConsumerGroupCurrentMemberAssignmentValue, TopicPartitions,
};
use weir_protocol::messages::group_consumer_member_metadata_key::ConsumerGroupMemberMetadataKey;
use weir_protocol::messages::group_consumer_member_metadata_value::ConsumerGroupMemberMetadataValue;
use weir_protocol::messages::group_consumer_metadata_key::ConsumerGroupMetadataKey;
use weir_protocol::messages::group_consumer_metadata_value::ConsumerGroupMetadataValue;
use weir_protocol::messages::group_consumer_partition_metadata_key::ConsumerGroupPartitionMetadataKey;
use weir_protocol::messages::group_consumer_partition_metadata_value::{
    ConsumerGroupPartitionMetadataValue, TopicMetadata,
};
use weir_protocol::messages::group_consumer_target_assignment_member_key::ConsumerGroupTargetAssignmentMemberKey;
use weir_protocol::messages::group_consumer_target_assignment_member_value::{
    ConsumerGroupTargetAssignmentMemberValue, TopicPartition,
};
use weir_protocol::messages::group_consumer_target_assignment_metadata_key::ConsumerGroupTargetAssignmentMetadataKey;
use weir_protocol::messages::group_consumer_target_assignment_metadata_value::ConsumerGroupTargetAssignmentMetadataValue;
use weir_protocol::{EncodeError, Message};

use super::{Assignment, ConsumerGroup, ConsumerMember, MemberState, TopicMeta, TopicRegex};
use crate::coordinator::records::{read_value, versioned, RecordError};
use crate::coordinator::shard::Shard;

/// A consumer group record; `None` values are tombstones.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ConsumerRecord {
    /// Key version 3: the group epoch.
    GroupEpoch {
        /// The group id.
        group: String,
        /// The epoch.
        epoch: Option<i32>,
    },
    /// Key version 4: the subscribed topics' metadata.
    Subscription {
        /// The group id.
        group: String,
        /// Topic metadata by name.
        topics: Option<BTreeMap<String, TopicMeta>>,
    },
    /// Key version 5: a member's subscription (its metadata fields).
    Member {
        /// The group id.
        group: String,
        /// The member id.
        member_id: String,
        /// The member (only its subscription fields are stored).
        member: Option<ConsumerMember>,
    },
    /// Key version 6: the target assignment's epoch.
    TargetEpoch {
        /// The group id.
        group: String,
        /// The epoch.
        epoch: Option<i32>,
    },
    /// Key version 7: a member's target assignment.
    Target {
        /// The group id.
        group: String,
        /// The member id.
        member_id: String,
        /// Its partitions.
        assignment: Option<Assignment>,
    },
    /// Key version 8: a member's current assignment (its epoch fields).
    Current {
        /// The group id.
        group: String,
        /// The member id.
        member_id: String,
        /// The member (only its epoch, state and partitions are stored).
        member: Option<ConsumerMember>,
    },
}

fn to_wire(a: &Assignment) -> Vec<TopicPartitions> {
    a.iter()
        .map(|(id, ps)| TopicPartitions {
            topic_id: *id,
            partitions: ps.iter().copied().collect(),
        })
        .collect()
}

fn from_wire(tps: Vec<TopicPartitions>) -> Assignment {
    let mut a = Assignment::new();
    for tp in tps {
        a.entry(tp.topic_id).or_default().extend(tp.partitions);
    }
    a
}

impl ConsumerRecord {
    /// The key and value bytes, each with its version prefix.
    pub(crate) fn encode(&self) -> Result<(Bytes, Option<Bytes>), EncodeError> {
        match self {
            ConsumerRecord::GroupEpoch { group, epoch } => Ok((
                versioned(
                    &ConsumerGroupMetadataKey {
                        group_id: group.clone(),
                    },
                    3,
                )?,
                epoch
                    .map(|epoch| versioned(&ConsumerGroupMetadataValue { epoch }, 0))
                    .transpose()?,
            )),
            ConsumerRecord::Subscription { group, topics } => Ok((
                versioned(
                    &ConsumerGroupPartitionMetadataKey {
                        group_id: group.clone(),
                    },
                    4,
                )?,
                topics
                    .as_ref()
                    .map(|topics| {
                        let value = ConsumerGroupPartitionMetadataValue {
                            topics: topics
                                .iter()
                                .map(|(name, meta)| TopicMetadata {
                                    topic_id: meta.id,
                                    topic_name: name.clone(),
                                    num_partitions: meta.partitions,
                                    partition_metadata: Vec::new(),
                                })
                                .collect(),
                        };
                        versioned(&value, 0)
                    })
                    .transpose()?,
            )),
            ConsumerRecord::Member {
                group,
                member_id,
                member,
            } => Ok((
                versioned(
                    &ConsumerGroupMemberMetadataKey {
                        group_id: group.clone(),
                        member_id: member_id.clone(),
                    },
                    5,
                )?,
                member
                    .as_ref()
                    .map(|m| {
                        let value = ConsumerGroupMemberMetadataValue {
                            instance_id: m.instance_id.clone(),
                            rack_id: m.rack_id.clone(),
                            client_id: m.client_id.clone(),
                            client_host: m.client_host.clone(),
                            subscribed_topic_names: m.subscribed_topics.iter().cloned().collect(),
                            subscribed_topic_regex: m
                                .subscribed_topic_regex
                                .as_ref()
                                .map(|re| re.as_str().to_owned()),
                            rebalance_timeout_ms: m.rebalance_timeout_ms,
                            server_assignor: m.server_assignor.clone(),
                        };
                        versioned(&value, 0)
                    })
                    .transpose()?,
            )),
            ConsumerRecord::TargetEpoch { group, epoch } => Ok((
                versioned(
                    &ConsumerGroupTargetAssignmentMetadataKey {
                        group_id: group.clone(),
                    },
                    6,
                )?,
                epoch
                    .map(|assignment_epoch| {
                        versioned(
                            &ConsumerGroupTargetAssignmentMetadataValue { assignment_epoch },
                            0,
                        )
                    })
                    .transpose()?,
            )),
            ConsumerRecord::Target {
                group,
                member_id,
                assignment,
            } => Ok((
                versioned(
                    &ConsumerGroupTargetAssignmentMemberKey {
                        group_id: group.clone(),
                        member_id: member_id.clone(),
                    },
                    7,
                )?,
                assignment
                    .as_ref()
                    .map(|a| {
                        let value = ConsumerGroupTargetAssignmentMemberValue {
                            topic_partitions: a
                                .iter()
                                .map(|(id, ps)| TopicPartition {
                                    topic_id: *id,
                                    partitions: ps.iter().copied().collect(),
                                })
                                .collect(),
                        };
                        versioned(&value, 0)
                    })
                    .transpose()?,
            )),
            ConsumerRecord::Current {
                group,
                member_id,
                member,
            } => Ok((
                versioned(
                    &ConsumerGroupCurrentMemberAssignmentKey {
                        group_id: group.clone(),
                        member_id: member_id.clone(),
                    },
                    8,
                )?,
                member
                    .as_ref()
                    .map(|m| {
                        let value = ConsumerGroupCurrentMemberAssignmentValue {
                            member_epoch: m.member_epoch,
                            previous_member_epoch: m.previous_member_epoch,
                            state: m.state.value(),
                            assigned_partitions: to_wire(&m.assigned),
                            partitions_pending_revocation: to_wire(&m.pending_revocation),
                        };
                        versioned(&value, 0)
                    })
                    .transpose()?,
            )),
        }
    }

    /// Reads a record of key `version` (3 to 8) from the key body and value.
    pub(crate) fn decode(
        version: i16,
        key: Bytes,
        value: Option<Bytes>,
    ) -> Result<Option<ConsumerRecord>, RecordError> {
        let key_error = |source| RecordError::Decode {
            what: "consumer group record key",
            source,
        };
        Ok(Some(match version {
            3 => {
                let k = ConsumerGroupMetadataKey::from_bytes(key, 3).map_err(key_error)?;
                let v = value
                    .map(|v| read_value::<ConsumerGroupMetadataValue>(v, "consumer group epoch"))
                    .transpose()?;
                ConsumerRecord::GroupEpoch {
                    group: k.group_id,
                    epoch: v.map(|v| v.epoch),
                }
            }
            4 => {
                let k = ConsumerGroupPartitionMetadataKey::from_bytes(key, 4).map_err(key_error)?;
                let v = value
                    .map(|v| {
                        read_value::<ConsumerGroupPartitionMetadataValue>(
                            v,
                            "consumer group topic metadata",
                        )
                    })
                    .transpose()?;
                ConsumerRecord::Subscription {
                    group: k.group_id,
                    topics: v.map(|v| {
                        v.topics
                            .into_iter()
                            .map(|t| {
                                (
                                    t.topic_name,
                                    TopicMeta {
                                        id: t.topic_id,
                                        partitions: t.num_partitions,
                                    },
                                )
                            })
                            .collect()
                    }),
                }
            }
            5 => {
                let k = ConsumerGroupMemberMetadataKey::from_bytes(key, 5).map_err(key_error)?;
                let v = value
                    .map(|v| {
                        read_value::<ConsumerGroupMemberMetadataValue>(v, "consumer group member")
                    })
                    .transpose()?;
                ConsumerRecord::Member {
                    group: k.group_id,
                    member: v.map(|v| ConsumerMember {
                        instance_id: v.instance_id,
                        rack_id: v.rack_id,
                        client_id: v.client_id,
                        client_host: v.client_host,
                        subscribed_topics: v
                            .subscribed_topic_names
                            .into_iter()
                            .collect::<BTreeSet<_>>(),
                        subscribed_topic_regex: v
                            .subscribed_topic_regex
                            .filter(|re| !re.is_empty())
                            .map(TopicRegex::restored),
                        rebalance_timeout_ms: v.rebalance_timeout_ms,
                        server_assignor: v.server_assignor,
                        ..ConsumerMember::new(&k.member_id)
                    }),
                    member_id: k.member_id,
                }
            }
            6 => {
                let k = ConsumerGroupTargetAssignmentMetadataKey::from_bytes(key, 6)
                    .map_err(key_error)?;
                let v = value
                    .map(|v| {
                        read_value::<ConsumerGroupTargetAssignmentMetadataValue>(
                            v,
                            "consumer group target epoch",
                        )
                    })
                    .transpose()?;
                ConsumerRecord::TargetEpoch {
                    group: k.group_id,
                    epoch: v.map(|v| v.assignment_epoch),
                }
            }
            7 => {
                let k = ConsumerGroupTargetAssignmentMemberKey::from_bytes(key, 7)
                    .map_err(key_error)?;
                let v = value
                    .map(|v| {
                        read_value::<ConsumerGroupTargetAssignmentMemberValue>(
                            v,
                            "consumer group target",
                        )
                    })
                    .transpose()?;
                ConsumerRecord::Target {
                    group: k.group_id,
                    member_id: k.member_id,
                    assignment: v.map(|v| {
                        let mut a = Assignment::new();
                        for tp in v.topic_partitions {
                            a.entry(tp.topic_id).or_default().extend(tp.partitions);
                        }
                        a
                    }),
                }
            }
            8 => {
                let k = ConsumerGroupCurrentMemberAssignmentKey::from_bytes(key, 8)
                    .map_err(key_error)?;
                let v = value
                    .map(|v| {
                        read_value::<ConsumerGroupCurrentMemberAssignmentValue>(
                            v,
                            "consumer group current assignment",
                        )
                    })
                    .transpose()?;
                ConsumerRecord::Current {
                    group: k.group_id,
                    member: v.map(|v| ConsumerMember {
                        member_epoch: v.member_epoch,
                        previous_member_epoch: v.previous_member_epoch,
                        state: MemberState::from_value(v.state),
                        assigned: from_wire(v.assigned_partitions),
                        pending_revocation: from_wire(v.partitions_pending_revocation),
                        ..ConsumerMember::new(&k.member_id)
                    }),
                    member_id: k.member_id,
                }
            }
            _ => return Ok(None),
        }))
    }

    /// The records that remove a member: its current assignment, its target, its
    /// subscription.
    pub(crate) fn remove_member(group: &str, member_id: &str, out: &mut Vec<ConsumerRecord>) {
        out.push(ConsumerRecord::Current {
            group: group.to_owned(),
            member_id: member_id.to_owned(),
            member: None,
        });
        out.push(ConsumerRecord::Target {
            group: group.to_owned(),
            member_id: member_id.to_owned(),
            assignment: None,
        });
        out.push(ConsumerRecord::Member {
            group: group.to_owned(),
            member_id: member_id.to_owned(),
            member: None,
        });
    }

    /// The records that delete a whole group (Kafka's `createGroupTombstoneRecords`).
    pub(crate) fn delete_group(group: &ConsumerGroup, out: &mut Vec<ConsumerRecord>) {
        let id = group.id.clone();
        for m in group.members.keys() {
            out.push(ConsumerRecord::Current {
                group: id.clone(),
                member_id: m.clone(),
                member: None,
            });
        }
        for m in group.members.keys() {
            out.push(ConsumerRecord::Target {
                group: id.clone(),
                member_id: m.clone(),
                assignment: None,
            });
        }
        out.push(ConsumerRecord::TargetEpoch {
            group: id.clone(),
            epoch: None,
        });
        for m in group.members.keys() {
            out.push(ConsumerRecord::Member {
                group: id.clone(),
                member_id: m.clone(),
                member: None,
            });
        }
        out.push(ConsumerRecord::Subscription {
            group: id.clone(),
            topics: None,
        });
        out.push(ConsumerRecord::GroupEpoch {
            group: id,
            epoch: None,
        });
    }
}

impl Shard {
    /// The consumer group `id`, created if `create` (a classic group of the same id
    /// is replaced: its tombstone comes first in a well-formed log).
    fn consumer_group_for_replay(&mut self, id: &str, create: bool) -> Option<&mut ConsumerGroup> {
        if create && !self.consumer_groups.contains_key(id) {
            if self.groups.contains_key(id) {
                tracing::warn!(
                    group = id,
                    "a consumer group record replaces a classic group"
                );
                self.remove_group(id);
            }
            self.consumer_groups
                .insert(id.to_owned(), ConsumerGroup::new(id));
        }
        self.consumer_groups.get_mut(id)
    }

    /// Applies a consumer group record (Kafka's `replay` for key versions 3-8).
    pub(crate) fn replay_consumer(&mut self, record: ConsumerRecord) {
        match record {
            ConsumerRecord::GroupEpoch { group, epoch } => match epoch {
                Some(epoch) => {
                    if let Some(g) = self.consumer_group_for_replay(&group, true) {
                        g.group_epoch = epoch;
                    }
                }
                None => {
                    if self.consumer_groups.remove(&group).is_some() {
                        self.timers.cancel_group(&group);
                    }
                }
            },
            ConsumerRecord::Subscription { group, topics } => {
                let create = topics.is_some();
                if let Some(g) = self.consumer_group_for_replay(&group, create) {
                    g.subscription_metadata = topics.unwrap_or_default();
                }
            }
            ConsumerRecord::Member {
                group,
                member_id,
                member,
            } => match member {
                Some(m) => {
                    if let Some(g) = self.consumer_group_for_replay(&group, true) {
                        let entry = g
                            .members
                            .entry(member_id.clone())
                            .or_insert_with(|| ConsumerMember::new(&member_id));
                        entry.instance_id = m.instance_id;
                        entry.rack_id = m.rack_id;
                        entry.client_id = m.client_id;
                        entry.client_host = m.client_host;
                        entry.subscribed_topics = m.subscribed_topics;
                        entry.subscribed_topic_regex = m.subscribed_topic_regex;
                        entry.rebalance_timeout_ms = m.rebalance_timeout_ms;
                        entry.server_assignor = m.server_assignor;
                    }
                }
                None => {
                    if let Some(g) = self.consumer_groups.get_mut(&group) {
                        g.members.remove(&member_id);
                    }
                }
            },
            ConsumerRecord::TargetEpoch { group, epoch } => {
                if let Some(g) = self.consumer_group_for_replay(&group, epoch.is_some()) {
                    g.assignment_epoch = epoch.unwrap_or(-1);
                }
            }
            ConsumerRecord::Target {
                group,
                member_id,
                assignment,
            } => match assignment {
                Some(a) => {
                    if let Some(g) = self.consumer_group_for_replay(&group, true) {
                        g.target.insert(member_id, a);
                    }
                }
                None => {
                    if let Some(g) = self.consumer_groups.get_mut(&group) {
                        g.target.remove(&member_id);
                    }
                }
            },
            ConsumerRecord::Current {
                group,
                member_id,
                member,
            } => {
                let create = member.is_some();
                let Some(g) = self.consumer_group_for_replay(&group, create) else {
                    return;
                };
                let Some(entry) = (match &member {
                    Some(_) => Some(
                        g.members
                            .entry(member_id.clone())
                            .or_insert_with(|| ConsumerMember::new(&member_id)),
                    ),
                    None => g.members.get_mut(&member_id),
                }) else {
                    return;
                };
                match member {
                    Some(m) => {
                        entry.member_epoch = m.member_epoch;
                        entry.previous_member_epoch = m.previous_member_epoch;
                        entry.state = m.state;
                        entry.assigned = m.assigned;
                        entry.pending_revocation = m.pending_revocation;
                    }
                    None => {
                        entry.member_epoch = super::LEAVE_EPOCH;
                        entry.previous_member_epoch = super::LEAVE_EPOCH;
                        entry.assigned.clear();
                        entry.pending_revocation.clear();
                    }
                }
            }
        }
    }
}
