//! ConsumerGroupHeartbeat: joining, heartbeating, changing subscriptions and
//! leaving a consumer group, and the timers that fence silent members.
//!
//! One heartbeat is Kafka's three steps: (1) create or update the member, bumping
//! the group epoch when its subscription (or the subscribed topics' partitions)
//! changed; (2) recompute the target assignment when the group epoch is ahead of
//! it; (3) move the member's current assignment toward its target. Each step's
//! changes are records, applied by replay once written; the response is computed
//! from the same values.

use std::collections::{BTreeMap, BTreeSet};

use weir_protocol::messages::consumer_group_heartbeat::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
};
use weir_protocol::Uuid;
use weir_types::ErrorCode;

use super::assignor::{compute_target, DEFAULT_ASSIGNOR};
use super::checks::{check_epoch, rejoined, subscription_metadata, validate, wire, Failure};
use super::reconcile::{next_assignment, Owned};
use super::records::ConsumerRecord;
use super::{
    Assignment, ConsumerGroup, ConsumerMember, MemberState, TopicCatalog, TopicMeta, TopicRegex,
    LEAVE_EPOCH, STATIC_LEAVE_EPOCH,
};
use crate::coordinator::classic::JoinContext;
use crate::coordinator::records::Record;
use crate::coordinator::shard::{Now, Outcome, Shard};
use crate::coordinator::timers::{TimerAction, TimerKey};

/// A heartbeat's answer.
pub(crate) type HeartbeatResult = Result<ConsumerGroupHeartbeatResponse, Failure>;

fn fail<T>(code: ErrorCode, message: impl Into<String>) -> Outcome<Result<T, Failure>> {
    Outcome::just(Err((code, message.into())))
}

fn consumer(records: Vec<ConsumerRecord>) -> Vec<Record> {
    records
        .into_iter()
        .map(|r| Record::Consumer(Box::new(r)))
        .collect()
}

impl Shard {
    /// Handles a ConsumerGroupHeartbeat; see the module docs.
    pub(crate) fn consumer_heartbeat(
        &mut self,
        ctx: &JoinContext,
        request: &ConsumerGroupHeartbeatRequest,
        topics: &TopicCatalog,
        now: Now,
    ) -> Outcome<HeartbeatResult> {
        if let Err(e) = validate(request) {
            return Outcome::just(Err(e));
        }
        if request.member_epoch == LEAVE_EPOCH || request.member_epoch == STATIC_LEAVE_EPOCH {
            return self.consumer_leave(request);
        }
        let group_id = request.group_id.as_str();
        let join = request.member_epoch == 0;
        let mut records: Vec<Record> = Vec::new();
        let group = match self.consumer_groups.get(group_id) {
            Some(g) => g.clone(),
            None => {
                match self.groups.get(group_id) {
                    // An empty classic group gives way (its offsets stay).
                    Some(classic) if join && classic.is_empty() => {
                        records.push(Record::group_metadata(group_id, None))
                    }
                    Some(_) => {
                        return fail(
                            ErrorCode::GroupIdNotFound,
                            format!("Group {group_id} is not a consumer group."),
                        )
                    }
                    None if !join => {
                        return fail(
                            ErrorCode::GroupIdNotFound,
                            format!("Group {group_id} not found."),
                        )
                    }
                    None => {}
                }
                ConsumerGroup::new(group_id)
            }
        };
        if group.members.len() >= self.config.consumer_max_size
            && (request.member_id.is_empty() || !group.members.contains_key(&request.member_id))
        {
            return fail(
                ErrorCode::GroupMaxSizeReached,
                "The consumer group has reached its maximum capacity.",
            );
        }
        let member_id = if request.member_id.is_empty() {
            weir_metadata::uuid::to_base64(
                weir_metadata::uuid::UuidGenerator::from_entropy().next_uuid(),
            )
        } else {
            request.member_id.clone()
        };
        let owned_list: Option<Vec<(Uuid, Vec<i32>)>> =
            request.topic_partitions.as_ref().map(|tps| {
                tps.iter()
                    .map(|tp| (tp.topic_id, tp.partitions.clone()))
                    .collect()
            });
        let owned: Owned<'_> = owned_list.as_deref();
        let mut replace_records = Vec::new();
        let found = match request.instance_id.as_deref() {
            None => match group.members.get(&member_id) {
                // A known member rejoining from scratch (it released everything).
                Some(m) if join => Ok((rejoined(m), None)),
                Some(m) => check_epoch(m, request.member_epoch, owned).map(|()| (m.clone(), None)),
                None if join => Ok((ConsumerMember::new(&member_id), None)),
                None => Err((
                    ErrorCode::UnknownMemberId,
                    format!("Member {member_id} is not a member of group {group_id}."),
                )),
            },
            Some(instance) => {
                let existing = group
                    .static_member_id(instance)
                    .and_then(|id| group.members.get(id));
                match existing {
                    None if join => Ok((ConsumerMember::new(&member_id), None)),
                    None => Err((ErrorCode::UnknownMemberId, format!("Instance id {instance} is unknown."))),
                    Some(old) if join && old.id == member_id => Ok((rejoined(old), None)),
                    Some(old) if join => {
                        if old.member_epoch != STATIC_LEAVE_EPOCH {
                            Err((
                                ErrorCode::UnreleasedInstanceId,
                                format!(
                                    "Static member {member_id} with instance id {instance} cannot join the group \
                                     because the instance id is owned by {} member.",
                                    old.id
                                ),
                            ))
                        } else {
                            // The instance's restart: a new member id takes the old
                            // member's place and assignment.
                            let mut new = old.clone();
                            new.id.clone_from(&member_id);
                            new.member_epoch = 0;
                            new.previous_member_epoch = 0;
                            ConsumerRecord::remove_member(group_id, &old.id, &mut replace_records);
                            replace_records.push(ConsumerRecord::Member {
                                group: group_id.to_owned(),
                                member_id: member_id.clone(),
                                member: Some(new.clone()),
                            });
                            replace_records.push(ConsumerRecord::Target {
                                group: group_id.to_owned(),
                                member_id: member_id.clone(),
                                assignment: Some(group.target_of(&old.id)),
                            });
                            replace_records.push(ConsumerRecord::Current {
                                group: group_id.to_owned(),
                                member_id: member_id.clone(),
                                member: Some(new.clone()),
                            });
                            Ok((new, Some(old.id.clone())))
                        }
                    }
                    Some(old) if old.id != member_id => Err((
                        ErrorCode::FencedInstanceId,
                        format!("Static member {member_id} with instance id {instance} was fenced by member {}.", old.id),
                    )),
                    Some(old) => check_epoch(old, request.member_epoch, owned).map(|()| (old.clone(), None)),
                }
            }
        };
        let (member, replaced) = match found {
            Ok(found) => found,
            Err(e) => return Outcome::just(Err(e)),
        };
        records.extend(consumer(replace_records));

        // 1. The member and the group epoch.
        let mut updated = member.clone();
        if let Some(i) = &request.instance_id {
            updated.instance_id = Some(i.clone());
        }
        if let Some(r) = &request.rack_id {
            updated.rack_id = Some(r.clone());
        }
        if request.rebalance_timeout_ms != -1 {
            updated.rebalance_timeout_ms = request.rebalance_timeout_ms;
        }
        if let Some(a) = &request.server_assignor {
            updated.server_assignor = Some(a.clone());
        }
        if let Some(names) = &request.subscribed_topic_names {
            updated.subscribed_topics = names.iter().cloned().collect();
        }
        // Absent: unchanged; empty: no regex (librdkafka sends "" with names).
        match request.subscribed_topic_regex.as_deref() {
            None => {}
            Some("") => updated.subscribed_topic_regex = None,
            Some(re)
                if updated
                    .subscribed_topic_regex
                    .as_ref()
                    .map(TopicRegex::as_str)
                    == Some(re) => {}
            Some(re) => match TopicRegex::parse(re) {
                Ok(parsed) => updated.subscribed_topic_regex = Some(parsed),
                Err(message) => return fail(ErrorCode::InvalidRegularExpression, message),
            },
        }
        updated.client_id.clone_from(&ctx.client_id);
        updated.client_host.clone_from(&ctx.client_host);
        let is_new = !group.members.contains_key(&member_id) || replaced.is_some();
        let mut bump = false;
        if is_new || updated.metadata_differs(&member) {
            records.push(Record::Consumer(Box::new(ConsumerRecord::Member {
                group: group_id.to_owned(),
                member_id: member_id.clone(),
                member: Some(updated.clone()),
            })));
            bump |= is_new
                || updated.subscribed_topics != member.subscribed_topics
                || updated.subscribed_topic_regex != member.subscribed_topic_regex;
        }
        let without = replaced
            .as_deref()
            .and_then(|id| group.members.get(id))
            .unwrap_or(&member);
        let existing: Vec<&str> = topics.names().collect();
        let metadata = subscription_metadata(
            &group.subscribed_topics_with(Some(without), Some(&updated), &existing),
            topics,
        );
        if metadata != group.subscription_metadata {
            records.push(Record::Consumer(Box::new(ConsumerRecord::Subscription {
                group: group_id.to_owned(),
                topics: Some(metadata.clone()),
            })));
            bump = true;
        }
        let mut group_epoch = group.group_epoch;
        if bump {
            group_epoch += 1;
            records.push(Record::Consumer(Box::new(ConsumerRecord::GroupEpoch {
                group: group_id.to_owned(),
                epoch: Some(group_epoch),
            })));
            tracing::info!(
                group = group_id,
                epoch = group_epoch,
                "bumped consumer group epoch"
            );
        }

        // 2. The target assignment.
        let (target_epoch, target) = if group_epoch > group.assignment_epoch {
            let assignor = group
                .preferred_assignor(Some(&member), Some(&updated))
                .unwrap_or_else(|| DEFAULT_ASSIGNOR.to_owned());
            let (targets, target_records) = compute_target(
                &group,
                &updated,
                replaced.as_deref(),
                &metadata,
                group_epoch,
                &assignor,
            );
            records.extend(consumer(target_records));
            (
                group_epoch,
                targets.get(&member_id).cloned().unwrap_or_default(),
            )
        } else {
            let key = replaced.as_deref().unwrap_or(&member_id);
            (group.assignment_epoch, group.target_of(key))
        };

        // 3. Reconciliation.
        let reconciled = if updated.is_reconciled_to(target_epoch) {
            updated.clone()
        } else {
            match next_assignment(&updated, target_epoch, &target, &group.partition_epochs(&member_id), owned) {
                Ok(next) => next,
                Err(code) => {
                    return fail(code, "The consumer group member is in an unknown state. It must abandon all its partitions and rejoin.")
                }
            }
        };
        if reconciled != updated {
            records.push(Record::Consumer(Box::new(ConsumerRecord::Current {
                group: group_id.to_owned(),
                member_id: member_id.clone(),
                member: Some(reconciled.clone()),
            })));
            let key = TimerKey::ConsumerRebalance {
                group: group_id.to_owned(),
                member: member_id.clone(),
            };
            if reconciled.state == MemberState::UnrevokedPartitions {
                self.timers.schedule(
                    key,
                    now.mono_ms
                        .saturating_add(i64::from(reconciled.rebalance_timeout_ms.max(0))),
                    TimerAction::ExpireConsumerRebalance {
                        epoch: reconciled.member_epoch,
                    },
                );
            } else {
                self.timers.cancel(&key);
            }
        }
        self.schedule_consumer_session(group_id, &member_id, now);
        let full = request.member_epoch == 0
            || (request.rebalance_timeout_ms != -1
                && request.subscribed_topic_names.is_some()
                && request.topic_partitions.is_some());
        let response = ConsumerGroupHeartbeatResponse {
            member_id: Some(member_id),
            member_epoch: reconciled.member_epoch,
            heartbeat_interval_ms: self.config.consumer_heartbeat_interval_ms,
            assignment: (full || reconciled.assigned != member.assigned)
                .then(|| wire(&reconciled.assigned)),
            ..ConsumerGroupHeartbeatResponse::default()
        };
        Outcome::replayed(records, Ok(response))
    }

    /// A heartbeat with epoch -1 (leave) or -2 (a static member leaving for now).
    fn consumer_leave(
        &mut self,
        request: &ConsumerGroupHeartbeatRequest,
    ) -> Outcome<HeartbeatResult> {
        let group_id = request.group_id.as_str();
        let Some(group) = self.consumer_groups.get(group_id) else {
            return fail(
                ErrorCode::GroupIdNotFound,
                format!("Group {group_id} not found."),
            );
        };
        let response = ConsumerGroupHeartbeatResponse {
            member_id: Some(request.member_id.clone()),
            member_epoch: request.member_epoch,
            ..ConsumerGroupHeartbeatResponse::default()
        };
        let member = match request.instance_id.as_deref() {
            None => match group.members.get(&request.member_id) {
                Some(m) => m.clone(),
                None => {
                    return fail(
                        ErrorCode::UnknownMemberId,
                        format!(
                            "Member {} is not a member of group {group_id}.",
                            request.member_id
                        ),
                    )
                }
            },
            Some(instance) => {
                let Some(m) = group
                    .static_member_id(instance)
                    .and_then(|id| group.members.get(id))
                else {
                    return fail(
                        ErrorCode::UnknownMemberId,
                        format!("Instance id {instance} is unknown."),
                    );
                };
                if m.id != request.member_id {
                    return fail(
                        ErrorCode::FencedInstanceId,
                        format!(
                            "Static member {} with instance id {instance} was fenced by member {}.",
                            request.member_id, m.id
                        ),
                    );
                }
                if request.member_epoch == STATIC_LEAVE_EPOCH {
                    let mut leaving = m.clone();
                    leaving.member_epoch = STATIC_LEAVE_EPOCH;
                    leaving.pending_revocation = Assignment::new();
                    let record = Record::Consumer(Box::new(ConsumerRecord::Current {
                        group: group_id.to_owned(),
                        member_id: m.id.clone(),
                        member: Some(leaving),
                    }));
                    return Outcome::replayed(vec![record], Ok(response));
                }
                m.clone()
            }
        };
        self.fence_consumer_member(group_id, &member.id)
            .map(|()| Ok(response))
    }

    /// Removes a member (it left, or was fenced) and bumps the group epoch, so the
    /// rest rebalance.
    pub(crate) fn fence_consumer_member(&mut self, group_id: &str, member_id: &str) -> Outcome<()> {
        let Some(group) = self.consumer_groups.get(group_id) else {
            return Outcome::just(());
        };
        let Some(member) = group.members.get(member_id) else {
            return Outcome::just(());
        };
        let mut records = Vec::new();
        ConsumerRecord::remove_member(group_id, member_id, &mut records);
        // What the others' regexes match is among the topics subscribed so far.
        let existing: Vec<&str> = group
            .subscription_metadata
            .keys()
            .map(String::as_str)
            .collect();
        let topics: BTreeSet<String> = group.subscribed_topics_with(Some(member), None, &existing);
        let metadata: BTreeMap<String, TopicMeta> = group
            .subscription_metadata
            .iter()
            .filter(|(name, _)| topics.contains(*name))
            .map(|(name, meta)| (name.clone(), *meta))
            .collect();
        if metadata != group.subscription_metadata {
            records.push(ConsumerRecord::Subscription {
                group: group_id.to_owned(),
                topics: Some(metadata),
            });
        }
        records.push(ConsumerRecord::GroupEpoch {
            group: group_id.to_owned(),
            epoch: Some(group.group_epoch + 1),
        });
        tracing::info!(
            group = group_id,
            member = member_id,
            "consumer group member left or was fenced"
        );
        self.cancel_consumer_timers(group_id, member_id);
        Outcome::replayed(consumer(records), ())
    }

    /// (Re)starts a member's session.
    fn schedule_consumer_session(&mut self, group_id: &str, member_id: &str, now: Now) {
        self.timers.schedule(
            TimerKey::ConsumerSession {
                group: group_id.to_owned(),
                member: member_id.to_owned(),
            },
            now.mono_ms
                .saturating_add(i64::from(self.config.consumer_session_timeout_ms)),
            TimerAction::ExpireConsumerSession,
        );
    }

    /// Stops a member's timers.
    fn cancel_consumer_timers(&mut self, group_id: &str, member_id: &str) {
        self.timers.cancel(&TimerKey::ConsumerSession {
            group: group_id.to_owned(),
            member: member_id.to_owned(),
        });
        self.timers.cancel(&TimerKey::ConsumerRebalance {
            group: group_id.to_owned(),
            member: member_id.to_owned(),
        });
    }

    /// A member's rebalance timer fired: still holding revoked partitions at the
    /// same epoch, it is fenced.
    pub(crate) fn expire_consumer_rebalance(
        &mut self,
        group_id: &str,
        member_id: &str,
        epoch: i32,
    ) -> Outcome<()> {
        let stuck = self
            .consumer_groups
            .get(group_id)
            .and_then(|g| g.members.get(member_id))
            .is_some_and(|m| m.member_epoch == epoch);
        if !stuck {
            return Outcome::just(());
        }
        tracing::info!(
            group = group_id,
            member = member_id,
            epoch,
            "member did not release its partitions within its rebalance timeout"
        );
        self.fence_consumer_member(group_id, member_id)
    }

    /// After loading: sessions of every member start now; members still releasing
    /// partitions get their rebalance timeout again.
    pub(crate) fn consumer_on_loaded(&mut self, now: Now) {
        let members: Vec<(String, String, MemberState, i32, i32)> = self
            .consumer_groups
            .values()
            .flat_map(|g| {
                g.members.values().map(|m| {
                    (
                        g.id.clone(),
                        m.id.clone(),
                        m.state,
                        m.member_epoch,
                        m.rebalance_timeout_ms,
                    )
                })
            })
            .collect();
        for (group, member, state, epoch, rebalance_ms) in members {
            self.schedule_consumer_session(&group, &member, now);
            if state == MemberState::UnrevokedPartitions {
                self.timers.schedule(
                    TimerKey::ConsumerRebalance { group, member },
                    now.mono_ms.saturating_add(i64::from(rebalance_ms.max(0))),
                    TimerAction::ExpireConsumerRebalance { epoch },
                );
            }
        }
    }
}
