//! Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete, and retention.
//!
//! A commit is validated against the group (a consumer of the group must be a
//! current member of the current generation; a standalone consumer commits with
//! generation -1 to a group without members), then written as one record per
//! partition and replayed into the state once written. Kafka's rules throughout,
//! including what a group that does not exist answers.
//!
//! Retention (`offsets.retention.minutes`): offsets of an empty group expire that
//! long after the group emptied; a standalone consumer's offsets that long after
//! their commit; a stable consumer group's offsets of topics it no longer
//! subscribes to, that long after their commit. A group left with no offsets and no
//! members is deleted.

use weir_protocol::messages::group_offset_commit_value::OffsetCommitValue;
use weir_protocol::messages::offset_commit::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetCommitResponsePartition,
    OffsetCommitResponseTopic,
};
use weir_protocol::messages::offset_delete::{
    OffsetDeleteRequestTopic, OffsetDeleteResponse, OffsetDeleteResponsePartition,
    OffsetDeleteResponseTopic,
};
use weir_protocol::messages::offset_fetch::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
};
use weir_types::ErrorCode;

use super::consumer::ConsumerRecord;
use super::group::{ClassicGroup, GroupState};
use super::records::Record;
use super::shard::{CommittedOffset, Now, Outcome, Shard};

/// The topics and partitions an OffsetFetch asks for; `None` asks for all.
pub(crate) type FetchTopics = Option<Vec<(String, Vec<i32>)>>;

impl Shard {
    /// Handles an OffsetCommit whose topics and partitions exist.
    pub(crate) fn commit_offsets(
        &mut self,
        request: &OffsetCommitRequest,
        api_version: i16,
        now: Now,
    ) -> Outcome<OffsetCommitResponse> {
        if let Err(code) = self.validate_commit(request, api_version) {
            return Outcome::just(commit_error_response(request, code));
        }
        // A commit from a member counts as a sign of life.
        if let Some(group) = self.groups.get(&request.group_id) {
            if matches!(
                group.state(),
                GroupState::Stable | GroupState::PreparingRebalance
            ) {
                if let Some(m) = group.members.get(&request.member_id) {
                    let session = m.session_timeout_ms;
                    self.schedule_heartbeat(&request.group_id, &request.member_id, session, now);
                }
            }
        }
        let expire_timestamp = if request.retention_time_ms == -1 {
            -1
        } else {
            now.wall_ms.saturating_add(request.retention_time_ms)
        };
        let max_metadata = self.config.offset_metadata_max_bytes;
        let mut records = Vec::new();
        let mut topics = Vec::with_capacity(request.topics.len());
        for topic in &request.topics {
            let mut partitions = Vec::with_capacity(topic.partitions.len());
            for p in &topic.partitions {
                let metadata = p.committed_metadata.clone().unwrap_or_default();
                // Kafka measures Java string length: UTF-16 code units.
                let code = if metadata.encode_utf16().count() > max_metadata {
                    ErrorCode::OffsetMetadataTooLarge
                } else {
                    let value = OffsetCommitValue {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata,
                        commit_timestamp: if p.commit_timestamp == -1 {
                            now.wall_ms
                        } else {
                            p.commit_timestamp
                        },
                        expire_timestamp,
                    };
                    records.push(Record::offset_commit(
                        &request.group_id,
                        &topic.name,
                        p.partition_index,
                        Some(value),
                    ));
                    ErrorCode::None
                };
                partitions.push(OffsetCommitResponsePartition {
                    partition_index: p.partition_index,
                    error_code: code.code(),
                });
            }
            topics.push(OffsetCommitResponseTopic {
                name: topic.name.clone(),
                partitions,
            });
        }
        Outcome::replayed(
            records,
            OffsetCommitResponse {
                topics,
                ..OffsetCommitResponse::default()
            },
        )
    }

    /// Whether the group takes this commit.
    fn validate_commit(
        &self,
        request: &OffsetCommitRequest,
        api_version: i16,
    ) -> Result<(), ErrorCode> {
        let generation = request.generation_id_or_member_epoch;
        if let Some(group) = self.consumer_groups.get(&request.group_id) {
            return group.validate_offset_commit(&request.member_id, generation, api_version);
        }
        match self.groups.get(&request.group_id) {
            // A standalone consumer creates its group by committing.
            None if generation < 0 => Ok(()),
            None if api_version >= 9 => Err(ErrorCode::GroupIdNotFound),
            None => Err(ErrorCode::IllegalGeneration),
            Some(group) => group.validate_offset_commit(
                &request.member_id,
                request.group_instance_id.as_deref(),
                generation,
            ),
        }
    }

    /// The committed offsets of `group_id` (OffsetFetch, one group). A group that
    /// does not exist has none: every requested partition answers -1. A consumer
    /// group checks the member a v9+ fetch names (UNKNOWN_MEMBER_ID,
    /// STALE_MEMBER_EPOCH for the whole group).
    pub(crate) fn fetch_offsets(
        &self,
        group_id: &str,
        topics: &FetchTopics,
        member: (Option<&str>, i32),
    ) -> OffsetFetchResponseGroup {
        if let Some(group) = self.consumer_groups.get(group_id) {
            if let Err(code) = group.validate_offset_fetch(member.0, member.1) {
                return OffsetFetchResponseGroup {
                    group_id: group_id.to_owned(),
                    topics: Vec::new(),
                    error_code: code.code(),
                };
            }
        }
        let live = self.consumer_groups.contains_key(group_id)
            || self
                .groups
                .get(group_id)
                .is_some_and(|g| !g.is(GroupState::Dead));
        let offsets = if live {
            self.offsets.get(group_id)
        } else {
            None
        };
        let topics = match topics {
            Some(requested) => requested
                .iter()
                .map(|(name, partitions)| {
                    let stored = offsets.and_then(|o| o.get(name));
                    OffsetFetchResponseTopics {
                        name: name.clone(),
                        partitions: partitions
                            .iter()
                            .map(|p| fetched(*p, stored.and_then(|s| s.get(p))))
                            .collect(),
                    }
                })
                .collect(),
            None => offsets
                .map(|o| {
                    o.iter()
                        .map(|(name, partitions)| OffsetFetchResponseTopics {
                            name: name.clone(),
                            partitions: partitions
                                .iter()
                                .map(|(p, c)| fetched(*p, Some(c)))
                                .collect(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        };
        OffsetFetchResponseGroup {
            group_id: group_id.to_owned(),
            topics,
            error_code: ErrorCode::None.code(),
        }
    }

    /// Handles an OffsetDelete whose topics and partitions exist.
    pub(crate) fn delete_offsets(
        &mut self,
        group_id: &str,
        topics: &[OffsetDeleteRequestTopic],
    ) -> Outcome<OffsetDeleteResponse> {
        let error = |code: ErrorCode| {
            Outcome::just(OffsetDeleteResponse {
                error_code: code.code(),
                ..OffsetDeleteResponse::default()
            })
        };
        let consumer = self.consumer_groups.get(group_id);
        let classic = self.groups.get(group_id);
        match (consumer, classic) {
            (None, None) => return error(ErrorCode::GroupIdNotFound),
            (None, Some(group)) => match group.state() {
                GroupState::Dead => return error(ErrorCode::GroupIdNotFound),
                GroupState::Stable
                | GroupState::PreparingRebalance
                | GroupState::CompletingRebalance
                    if !group.uses_consumer_protocol() =>
                {
                    return error(ErrorCode::NonEmptyGroup)
                }
                _ => {}
            },
            (Some(_), _) => {}
        }
        let stored = self.offsets.get(group_id);
        let mut records = Vec::new();
        let mut response_topics = Vec::with_capacity(topics.len());
        for topic in topics {
            let subscribed = match (consumer, classic) {
                (Some(g), _) => g.is_subscribed_to_topic(&topic.name),
                (None, Some(g)) => g.is_subscribed_to_topic(&topic.name),
                (None, None) => false,
            };
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let code = if subscribed {
                        ErrorCode::GroupSubscribedToTopic
                    } else {
                        let committed = stored
                            .and_then(|s| s.get(&topic.name))
                            .is_some_and(|t| t.contains_key(&p.partition_index));
                        if committed {
                            records.push(Record::offset_commit(
                                group_id,
                                &topic.name,
                                p.partition_index,
                                None,
                            ));
                        }
                        ErrorCode::None
                    };
                    OffsetDeleteResponsePartition {
                        partition_index: p.partition_index,
                        error_code: code.code(),
                    }
                })
                .collect();
            response_topics.push(OffsetDeleteResponseTopic {
                name: topic.name.clone(),
                partitions,
            });
        }
        Outcome::replayed(
            records,
            OffsetDeleteResponse {
                topics: response_topics,
                ..OffsetDeleteResponse::default()
            },
        )
    }

    /// Tombstones for every committed offset of `group_id`.
    pub(crate) fn delete_all_offsets(&self, group_id: &str, records: &mut Vec<Record>) {
        if let Some(topics) = self.offsets.get(group_id) {
            for (topic, partitions) in topics {
                for partition in partitions.keys() {
                    records.push(Record::offset_commit(group_id, topic, *partition, None));
                }
            }
        }
    }

    /// The retention sweep: tombstones for expired offsets, and for groups left with
    /// neither offsets nor members (Kafka's `cleanupGroupMetadata`).
    pub(crate) fn expire_offsets(&mut self, now: Now) -> Outcome<()> {
        let mut records = Vec::new();
        let mut ids: Vec<&String> = self.groups.keys().collect();
        ids.sort();
        for id in ids {
            let Some(group) = self.groups.get(id) else {
                continue;
            };
            let Some(base) = expiration_base(group) else {
                continue;
            };
            let all_expired = self.expire_group_offsets(id, base, now, &mut records, |t| {
                group.is_subscribed_to_topic(t)
            });
            if all_expired && group.is_empty() {
                records.push(Record::group_metadata(id, None));
            }
        }
        let mut ids: Vec<&String> = self.consumer_groups.keys().collect();
        ids.sort();
        for id in ids {
            let Some(group) = self.consumer_groups.get(id) else {
                continue;
            };
            // Consumer groups: from each offset's commit, for topics no member
            // subscribes to.
            let all_expired = self.expire_group_offsets(id, None, now, &mut records, |t| {
                group.is_subscribed_to_topic(t)
            });
            if all_expired && group.members.is_empty() {
                let mut tombstones = Vec::new();
                ConsumerRecord::delete_group(group, &mut tombstones);
                records.extend(
                    tombstones
                        .into_iter()
                        .map(|r| Record::Consumer(Box::new(r))),
                );
            }
        }
        if !records.is_empty() {
            tracing::info!(
                partition = self.partition,
                tombstones = records.len(),
                "expired offsets and groups"
            );
        }
        self.schedule_retention(now);
        Outcome::replayed(records, ())
    }

    /// Tombstones for `group_id`'s expired offsets (those of topics `subscribed`
    /// says are in use never expire); whether every offset expired (or there were
    /// none). `base` is when retention counts from (`None`: each commit's time).
    fn expire_group_offsets(
        &self,
        group_id: &str,
        base: Option<i64>,
        now: Now,
        records: &mut Vec<Record>,
        subscribed: impl Fn(&str) -> bool,
    ) -> bool {
        let retention_ms = self.config.offsets_retention_ms;
        let Some(topics) = self.offsets.get(group_id) else {
            return true;
        };
        let mut all = true;
        for (topic, partitions) in topics {
            if subscribed(topic) {
                all = false;
                continue;
            }
            for (partition, committed) in partitions {
                let expired = if committed.expire_timestamp_ms >= 0 {
                    now.wall_ms >= committed.expire_timestamp_ms
                } else {
                    let since = base.unwrap_or(committed.commit_timestamp_ms);
                    now.wall_ms.saturating_sub(since) >= retention_ms
                };
                if expired {
                    records.push(Record::offset_commit(group_id, topic, *partition, None));
                } else {
                    all = false;
                }
            }
        }
        all
    }
}

/// When `group`'s offsets may expire, and from what time: `None` if they may not;
/// `Some(Some(t))` from `t` (an empty group: when it emptied); `Some(None)` from each
/// offset's commit time.
fn expiration_base(group: &ClassicGroup) -> Option<Option<i64>> {
    match &group.protocol_type {
        None => Some(None),
        Some(_) if group.is_empty() => {
            let t = group.state_timestamp_or_default();
            Some((t >= 0).then_some(t))
        }
        Some(_) if group.uses_consumer_protocol() && group.is(GroupState::Stable) => Some(None),
        Some(_) => None,
    }
}

/// One partition of an OffsetFetch answer.
fn fetched(partition: i32, committed: Option<&CommittedOffset>) -> OffsetFetchResponsePartitions {
    match committed {
        Some(c) => OffsetFetchResponsePartitions {
            partition_index: partition,
            committed_offset: c.offset,
            committed_leader_epoch: c.leader_epoch,
            metadata: Some(c.metadata.clone()),
            error_code: ErrorCode::None.code(),
        },
        None => OffsetFetchResponsePartitions {
            partition_index: partition,
            committed_offset: -1,
            committed_leader_epoch: -1,
            metadata: Some(String::new()),
            error_code: ErrorCode::None.code(),
        },
    }
}

/// Every partition of the request with `code`.
pub(crate) fn commit_error_response(
    request: &OffsetCommitRequest,
    code: ErrorCode,
) -> OffsetCommitResponse {
    OffsetCommitResponse {
        topics: request
            .topics
            .iter()
            .map(|t| OffsetCommitResponseTopic {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| OffsetCommitResponsePartition {
                        partition_index: p.partition_index,
                        error_code: code.code(),
                    })
                    .collect(),
            })
            .collect(),
        ..OffsetCommitResponse::default()
    }
}
