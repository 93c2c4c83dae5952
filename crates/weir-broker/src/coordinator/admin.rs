//! Group administration: ListGroups, DescribeGroups, DeleteGroups.
//!
//! Answers are Kafka's: a group that does not exist is described as "Dead" with no
//! error (DescribeGroups v0-5 has no GROUP_ID_NOT_FOUND); member metadata is shown
//! only for a stable group (before that there is no chosen protocol to show it
//! for); only a group without members may be deleted, with its offsets.

use std::collections::BTreeSet;

use weir_protocol::messages::describe_groups::{DescribedGroup, DescribedGroupMember};
use weir_protocol::messages::list_groups::ListedGroup;
use weir_types::ErrorCode;

use super::consumer::{ConsumerGroup, ConsumerRecord, CONSUMER_GROUP_TYPE};
use super::group::GroupState;
use super::records::Record;
use super::shard::{Outcome, Shard};

/// The type every classic group reports in ListGroups v5+.
pub(crate) const CLASSIC_GROUP_TYPE: &str = "classic";

impl Shard {
    /// The groups matching both filters (each case-insensitive; an empty filter
    /// matches everything).
    pub(crate) fn list_groups(
        &self,
        states: &BTreeSet<String>,
        types: &BTreeSet<String>,
    ) -> Vec<ListedGroup> {
        let mut listed: Vec<ListedGroup> = self
            .groups
            .values()
            .filter(|g| states.is_empty() || states.contains(&g.state().name().to_lowercase()))
            .filter(|_| types.is_empty() || types.contains(CLASSIC_GROUP_TYPE))
            .map(|g| ListedGroup {
                group_id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                group_state: g.state().name().to_owned(),
                group_type: CLASSIC_GROUP_TYPE.to_owned(),
            })
            .collect();
        listed.extend(
            self.consumer_groups
                .values()
                .map(ConsumerGroup::listed)
                .filter(|g| states.is_empty() || states.contains(&g.group_state.to_lowercase()))
                .filter(|_| types.is_empty() || types.contains(CONSUMER_GROUP_TYPE)),
        );
        listed.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        listed
    }

    /// One group as DescribeGroups shows it.
    pub(crate) fn describe_group(&self, group_id: &str) -> DescribedGroup {
        let Some(group) = self.groups.get(group_id) else {
            return DescribedGroup {
                group_id: group_id.to_owned(),
                group_state: GroupState::Dead.name().to_owned(),
                ..DescribedGroup::default()
            };
        };
        let stable_protocol = group
            .protocol_name
            .as_deref()
            .filter(|_| group.is(GroupState::Stable));
        DescribedGroup {
            error_code: ErrorCode::None.code(),
            group_id: group_id.to_owned(),
            group_state: group.state().name().to_owned(),
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol_data: stable_protocol.unwrap_or_default().to_owned(),
            members: group
                .members
                .values()
                .map(|m| DescribedGroupMember {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    member_metadata: stable_protocol
                        .and_then(|p| m.metadata(p).cloned())
                        .unwrap_or_default(),
                    member_assignment: m.assignment.clone(),
                })
                .collect(),
            ..DescribedGroup::default()
        }
    }

    /// Deletes the groups that may be deleted (with their offsets); the code for
    /// each, in request order.
    pub(crate) fn delete_groups(&self, group_ids: &[String]) -> Outcome<Vec<(String, ErrorCode)>> {
        let mut records = Vec::new();
        let mut results = Vec::with_capacity(group_ids.len());
        for id in group_ids {
            if let Some(group) = self.consumer_groups.get(id) {
                let code = if group.members.is_empty() {
                    self.delete_all_offsets(id, &mut records);
                    let mut tombstones = Vec::new();
                    ConsumerRecord::delete_group(group, &mut tombstones);
                    records.extend(
                        tombstones
                            .into_iter()
                            .map(|r| Record::Consumer(Box::new(r))),
                    );
                    ErrorCode::None
                } else {
                    ErrorCode::NonEmptyGroup
                };
                results.push((id.clone(), code));
                continue;
            }
            let code = match self.groups.get(id).map(|g| g.state()) {
                None | Some(GroupState::Dead) => ErrorCode::GroupIdNotFound,
                Some(
                    GroupState::Stable
                    | GroupState::PreparingRebalance
                    | GroupState::CompletingRebalance,
                ) => ErrorCode::NonEmptyGroup,
                Some(GroupState::Empty) => {
                    self.delete_all_offsets(id, &mut records);
                    records.push(Record::group_metadata(id, None));
                    ErrorCode::None
                }
            };
            results.push((id.clone(), code));
        }
        Outcome::replayed(records, results)
    }
}
