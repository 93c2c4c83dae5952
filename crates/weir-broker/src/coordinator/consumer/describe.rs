//! ConsumerGroupDescribe, and consumer groups in ListGroups.

use weir_protocol::messages::consumer_group_describe::{
    Assignment as WireAssignment, DescribedGroup, Member, TopicPartitions,
};
use weir_protocol::messages::list_groups::ListedGroup;
use weir_types::ErrorCode;

use super::{Assignment, ConsumerGroup, TopicCatalog, DEFAULT_ASSIGNOR};
use crate::coordinator::shard::Shard;

/// The type consumer groups report in ListGroups v5+.
pub(crate) const CONSUMER_GROUP_TYPE: &str = "consumer";

/// An assignment with topic names (a deleted topic's partitions are left out).
fn wire(a: &Assignment, topics: &TopicCatalog) -> WireAssignment {
    WireAssignment {
        topic_partitions: a
            .iter()
            .filter_map(|(id, ps)| {
                topics.name(*id).map(|name| TopicPartitions {
                    topic_id: *id,
                    topic_name: name.to_owned(),
                    partitions: ps.iter().copied().collect(),
                })
            })
            .collect(),
    }
}

impl ConsumerGroup {
    /// The group as ListGroups lists it.
    pub(crate) fn listed(&self) -> ListedGroup {
        ListedGroup {
            group_id: self.id.clone(),
            protocol_type: crate::coordinator::group::CONSUMER_PROTOCOL_TYPE.to_owned(),
            group_state: self.state().name().to_owned(),
            group_type: CONSUMER_GROUP_TYPE.to_owned(),
        }
    }

    /// The group as ConsumerGroupDescribe shows it.
    fn described(&self, topics: &TopicCatalog) -> DescribedGroup {
        DescribedGroup {
            group_id: self.id.clone(),
            group_state: self.state().name().to_owned(),
            group_epoch: self.group_epoch,
            assignment_epoch: self.assignment_epoch,
            assignor_name: self
                .preferred_assignor(None, None)
                .unwrap_or_else(|| DEFAULT_ASSIGNOR.to_owned()),
            members: self
                .members
                .values()
                .map(|m| Member {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    member_epoch: m.member_epoch,
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    subscribed_topic_names: m.subscribed_topics.iter().cloned().collect(),
                    subscribed_topic_regex: m
                        .subscribed_topic_regex
                        .as_ref()
                        .map(|re| re.as_str().to_owned()),
                    assignment: wire(&m.assigned, topics),
                    target_assignment: wire(&self.target_of(&m.id), topics),
                })
                .collect(),
            ..DescribedGroup::default()
        }
    }
}

impl Shard {
    /// One group as ConsumerGroupDescribe answers it: GROUP_ID_NOT_FOUND unless it
    /// is a consumer group.
    pub(crate) fn consumer_describe(
        &self,
        group_id: &str,
        topics: &TopicCatalog,
    ) -> DescribedGroup {
        match self.consumer_groups.get(group_id) {
            Some(g) => g.described(topics),
            None => {
                let message = if self.groups.contains_key(group_id) {
                    format!("Group {group_id} is not a consumer group.")
                } else {
                    format!("Group {group_id} not found.")
                };
                DescribedGroup {
                    error_code: ErrorCode::GroupIdNotFound.code(),
                    error_message: Some(message),
                    group_id: group_id.to_owned(),
                    ..DescribedGroup::default()
                }
            }
        }
    }
}
