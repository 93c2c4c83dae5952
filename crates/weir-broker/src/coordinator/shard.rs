//! One partition of `__consumer_offsets` as a state machine: the groups and
//! committed offsets whose ids hash to it, and their timers.
//!
//! Every operation (a request, a timer) runs on a `&mut Shard` under the shard's
//! lock and returns an [`Outcome`]: the records to append, the response, and what to
//! do once the records are durable. This is Kafka's coordinator shape. [`Shard::replay`]
//! applies a record to the state; the loader replays every stored record through it,
//! and the runtime replays an outcome's records after writing them when the outcome
//! asks for it (offset commits and deletions). A classic group's metadata record is
//! the exception, as in Kafka: while serving, the in-memory group is already ahead
//! of it (parked requests, pending members), so it is written but only replayed when
//! loading.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use weir_protocol::messages::group_offset_commit_value::OffsetCommitValue;
use weir_types::ErrorCode;

use super::config::CoordinatorConfig;
use super::consumer::ConsumerGroup;
use super::group::{ClassicGroup, GroupState};
use super::records::Record;
use super::timers::{TimerAction, TimerKey, Timers};

/// The two clocks an operation runs at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Now {
    /// Wall-clock ms since the epoch: commit and state timestamps.
    pub(crate) wall_ms: i64,
    /// Monotonic ms on the coordinator's clock: timer deadlines.
    pub(crate) mono_ms: i64,
}

/// What to run once an outcome's records are durable (or failed to be).
pub(crate) type AfterWrite = Box<dyn FnOnce(&mut Shard, Now, Result<(), ErrorCode>) + Send>;

/// What an operation produced; see the module docs.
pub(crate) struct Outcome<T> {
    /// Records to append, in order.
    pub(crate) records: Vec<Record>,
    /// Whether the runtime replays `records` into the state once they are written.
    pub(crate) replay: bool,
    /// The operation's answer.
    pub(crate) response: T,
    /// Run under the lock once the records are durable (immediately when there are
    /// none), with the write's result.
    pub(crate) then: Option<AfterWrite>,
}

impl<T> Outcome<T> {
    /// An outcome that writes nothing.
    pub(crate) fn just(response: T) -> Self {
        Outcome {
            records: Vec::new(),
            replay: false,
            response,
            then: None,
        }
    }

    /// An outcome whose records are replayed once written.
    pub(crate) fn replayed(records: Vec<Record>, response: T) -> Self {
        Outcome {
            records,
            replay: true,
            response,
            then: None,
        }
    }

    /// The same records and follow-up with another response.
    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        Outcome {
            records: self.records,
            replay: self.replay,
            response: f(self.response),
            then: self.then,
        }
    }
}

/// A committed offset as the coordinator keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommittedOffset {
    /// The offset.
    pub(crate) offset: i64,
    /// The leader epoch of the committed record, or -1.
    pub(crate) leader_epoch: i32,
    /// The client's metadata string.
    pub(crate) metadata: String,
    /// When it was committed (wall ms).
    pub(crate) commit_timestamp_ms: i64,
    /// An explicit expiry (OffsetCommit v2-4 retention), else -1.
    pub(crate) expire_timestamp_ms: i64,
}

impl CommittedOffset {
    /// From a stored value.
    pub(crate) fn from_value(v: &OffsetCommitValue) -> Self {
        CommittedOffset {
            offset: v.offset,
            leader_epoch: v.leader_epoch,
            metadata: v.metadata.clone(),
            commit_timestamp_ms: v.commit_timestamp,
            expire_timestamp_ms: v.expire_timestamp,
        }
    }
}

/// A group's committed offsets: topic, then partition.
pub(crate) type GroupOffsets = BTreeMap<String, BTreeMap<i32, CommittedOffset>>;

/// The state of one offsets-topic partition; see the module docs.
#[derive(Debug)]
pub(crate) struct Shard {
    /// The partition of `__consumer_offsets`.
    pub(crate) partition: i32,
    /// Shared settings.
    pub(crate) config: Arc<CoordinatorConfig>,
    /// Classic groups by id.
    pub(crate) groups: HashMap<String, ClassicGroup>,
    /// KIP-848 consumer groups by id (never an id that is also in `groups`).
    pub(crate) consumer_groups: HashMap<String, ConsumerGroup>,
    /// Committed offsets by group id.
    pub(crate) offsets: HashMap<String, GroupOffsets>,
    /// Timers of the groups here.
    pub(crate) timers: Timers,
}

impl Shard {
    /// An empty shard for `partition`.
    pub(crate) fn new(partition: i32, config: Arc<CoordinatorConfig>) -> Shard {
        Shard {
            partition,
            config,
            groups: HashMap::new(),
            consumer_groups: HashMap::new(),
            offsets: HashMap::new(),
            timers: Timers::default(),
        }
    }

    /// Applies one stored record; see the module docs.
    pub(crate) fn replay(&mut self, record: Record, now: Now) {
        match record {
            Record::OffsetCommit { key, value } => match value {
                Some(value) => {
                    // A standalone consumer's commit creates a (simple, classic)
                    // group, unless a group of either kind exists.
                    if !self.consumer_groups.contains_key(&key.group) {
                        self.groups
                            .entry(key.group.clone())
                            .or_insert_with(|| ClassicGroup::new(&key.group, now.wall_ms));
                    }
                    self.offsets
                        .entry(key.group)
                        .or_default()
                        .entry(key.topic)
                        .or_default()
                        .insert(key.partition, CommittedOffset::from_value(&value));
                }
                None => {
                    if let Some(topics) = self.offsets.get_mut(&key.group) {
                        if let Some(partitions) = topics.get_mut(&key.topic) {
                            partitions.remove(&key.partition);
                            if partitions.is_empty() {
                                topics.remove(&key.topic);
                            }
                        }
                        if topics.is_empty() {
                            self.offsets.remove(&key.group);
                        }
                    }
                }
            },
            Record::GroupMetadata { key, value } => match value {
                Some(value) => {
                    let group = ClassicGroup::from_record(&key.group, value);
                    if let Some(mut old) = self.groups.insert(key.group.clone(), group) {
                        old.fail_all_parked(ErrorCode::NotCoordinator);
                    }
                }
                None => self.remove_group(&key.group),
            },
            Record::Consumer(record) => self.replay_consumer(*record),
        }
    }

    /// Drops a group and its timers, answering whatever it had parked. Its offsets
    /// stay: they have their own tombstones, and a group id that changes protocol
    /// (an emptied classic group becoming a consumer group) keeps them, as in Kafka.
    pub(crate) fn remove_group(&mut self, group_id: &str) {
        if let Some(mut group) = self.groups.remove(group_id) {
            group.fail_all_parked(ErrorCode::CoordinatorNotAvailable);
        }
        self.timers.cancel_group(group_id);
    }

    /// After loading: every loaded member's session starts now, and the retention
    /// sweep is scheduled (Kafka's `onLoaded`).
    pub(crate) fn on_loaded(&mut self, now: Now) {
        let sessions: Vec<(String, String, i32)> = self
            .groups
            .values()
            .flat_map(|g| {
                g.members
                    .values()
                    .map(|m| (g.id.clone(), m.id.clone(), m.session_timeout_ms))
            })
            .collect();
        for (group, member, timeout) in sessions {
            self.schedule_heartbeat(&group, &member, timeout, now);
        }
        self.consumer_on_loaded(now);
        self.schedule_retention(now);
    }

    /// Answers everything parked with NOT_COORDINATOR and drops the state (the
    /// partition is no longer ours, or the broker stops).
    pub(crate) fn unload(&mut self) {
        for group in self.groups.values_mut() {
            group.fail_all_parked(ErrorCode::NotCoordinator);
        }
        self.groups.clear();
        self.consumer_groups.clear();
        self.offsets.clear();
        self.timers.clear();
    }

    /// (Re)starts a member's session timer.
    pub(crate) fn schedule_heartbeat(
        &mut self,
        group: &str,
        member: &str,
        timeout_ms: i32,
        now: Now,
    ) {
        self.timers.schedule(
            TimerKey::Heartbeat {
                group: group.to_owned(),
                member: member.to_owned(),
            },
            now.mono_ms.saturating_add(i64::from(timeout_ms)),
            TimerAction::ExpireHeartbeat,
        );
    }

    /// Stops a member's session timer.
    pub(crate) fn cancel_heartbeat(&mut self, group: &str, member: &str) {
        self.timers.cancel(&TimerKey::Heartbeat {
            group: group.to_owned(),
            member: member.to_owned(),
        });
    }

    /// Schedules the next retention sweep.
    pub(crate) fn schedule_retention(&mut self, now: Now) {
        self.timers.schedule(
            TimerKey::Retention,
            now.mono_ms
                .saturating_add(self.config.offsets_retention_check_interval_ms),
            TimerAction::Retention,
        );
    }

    /// The group's state name, "Dead" when it does not exist.
    pub(crate) fn group_state(&self, group_id: &str) -> GroupState {
        self.groups
            .get(group_id)
            .map_or(GroupState::Dead, ClassicGroup::state)
    }

    /// Runs one timer's operation.
    pub(crate) fn fire(&mut self, key: TimerKey, action: TimerAction, now: Now) -> Outcome<()> {
        match (key, action) {
            (TimerKey::Heartbeat { group, member }, TimerAction::ExpireHeartbeat) => {
                self.expire_heartbeat(&group, &member, now)
            }
            (TimerKey::Join { group }, TimerAction::CompleteJoin) => {
                self.complete_join_by_id(&group, now)
            }
            (
                TimerKey::Join { group },
                TimerAction::InitialRebalance {
                    delay_ms,
                    remaining_ms,
                },
            ) => self.initial_rebalance_elapsed(&group, delay_ms, remaining_ms, now),
            (TimerKey::Sync { group }, TimerAction::ExpireSync { generation }) => {
                self.expire_pending_sync(&group, generation, now)
            }
            (TimerKey::Retention, TimerAction::Retention) => self.expire_offsets(now),
            (TimerKey::ConsumerSession { group, member }, TimerAction::ExpireConsumerSession) => {
                tracing::info!(group = %group, member = %member, "consumer group member session expired");
                self.fence_consumer_member(&group, &member)
            }
            (
                TimerKey::ConsumerRebalance { group, member },
                TimerAction::ExpireConsumerRebalance { epoch },
            ) => self.expire_consumer_rebalance(&group, &member, epoch),
            (key, action) => {
                tracing::error!(?key, ?action, "a timer fired with an action of another key");
                Outcome::just(())
            }
        }
    }
}

/// A fresh member id suffix in UUID form, as Kafka's `UUID.randomUUID()`: unique in
/// the process (a counter) and not guessable (hashed with a random key).
pub(crate) fn random_uuid() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let state = std::collections::hash_map::RandomState::new();
    let mut a = state.build_hasher();
    a.write_u64(n);
    let hi = a.finish();
    let mut b = state.build_hasher();
    b.write_u64(!n);
    b.write_u64(hi);
    let lo = b.finish();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0x0fff,
        (lo >> 48) & 0x3fff | 0x8000,
        lo & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_distinct_and_shaped() {
        let a = random_uuid();
        let b = random_uuid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
    }
}
