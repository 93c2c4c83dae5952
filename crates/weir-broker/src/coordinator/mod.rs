//! The group coordinator: consumer groups and committed offsets.
//!
//! Kafka's design, in Kafka's shape. Groups are partitioned by id over the
//! partitions of the internal topic `__consumer_offsets` (Kafka's
//! `abs(groupId.hashCode) % offsets.topic.num.partitions`); the coordinator of a
//! group is the leader of its partition. Each partition is a [`shard`] state
//! machine: a request or a timer runs on it and yields the records to append and
//! the response; the records are appended to the partition (acks=all: answered
//! only once durable), and the same `replay` that applies records while serving
//! rebuilds the state when the partition is loaded after a restart.
//!
//! # Usage (api handlers and the broker)
//!
//! ```text
//! let groups = GroupCoordinator::start(CoordinatorConfig::from_broker(&config), clock,
//!                                      Arc::new(ReplicaLog::new(replicas.clone())), &draining);
//! groups.follow_metadata(controller.subscribe(), replicas.clone(), node_id); // load/unload partitions
//! ensure_offsets_topic(&controller, &replicas, groups.config()).await?;  // FindCoordinator
//! let reply = groups.join_group(ctx, request).await;   // the state change, in request order
//! let response = reply.await;                          // the wait (rebalance, fsync)
//! groups.shutdown().await;                             // before the replica manager
//! ```
//!
//! # Files
//!
//! `group/` (a classic group's bookkeeping and states), `classic/` (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup, rebalances), `consumer/` (KIP-848 groups:
//! ConsumerGroupHeartbeat, server-side assignors, ConsumerGroupDescribe), `offsets.rs` (commit, fetch,
//! delete, retention), `admin.rs` (list, describe, delete groups), `shard.rs` (one
//! partition's state and `replay`), `runtime.rs` (locking, writing, loading,
//! timers), `records.rs` (the record formats), `store.rs` (the log seam),
//! `timers.rs`, `topic.rs` (creating the topic), `config.rs`, `error.rs`.
//!
//! # Not here yet
//!
//! Transactional offset commits; KIP-848's mixed classic/consumer groups (see
//! `consumer/`). Reads (OffsetFetch, DescribeGroups) see a write as soon as it is
//! appended, before it is fsynced; with no transactions there is nothing unstable
//! for `require_stable` to wait for.

mod admin;
mod classic;
mod config;
mod consumer;
mod error;
mod group;
mod offsets;
mod records;
mod runtime;
mod shard;
mod store;
mod timers;
mod topic;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use weir_metadata::MetadataImage;
use weir_protocol::messages::consumer_group_describe::DescribedGroup as ConsumerDescribedGroup;
use weir_protocol::messages::consumer_group_heartbeat::ConsumerGroupHeartbeatRequest;
use weir_protocol::messages::describe_groups::DescribedGroup;
use weir_protocol::messages::heartbeat::{HeartbeatRequest, HeartbeatResponse};
use weir_protocol::messages::join_group::{JoinGroupRequest, JoinGroupResponse};
use weir_protocol::messages::leave_group::{LeaveGroupResponse, MemberIdentity};
use weir_protocol::messages::list_groups::ListedGroup;
use weir_protocol::messages::offset_commit::{OffsetCommitRequest, OffsetCommitResponse};
use weir_protocol::messages::offset_delete::{OffsetDeleteRequestTopic, OffsetDeleteResponse};
use weir_protocol::messages::offset_fetch::OffsetFetchResponseGroup;
use weir_protocol::messages::sync_group::{SyncGroupRequest, SyncGroupResponse};
use weir_types::{Clock, ErrorCode, NodeId};

pub(crate) use classic::JoinContext;
pub use config::{CoordinatorConfig, OFFSETS_TOPIC, OFFSETS_TOPIC_SEGMENT_BYTES};
pub(crate) use consumer::HeartbeatResult;
pub use consumer::TopicCatalog;
pub use error::{CoordinatorError, StoreError};
pub use group::GroupState;
pub(crate) use offsets::FetchTopics;
pub use store::{BoxFuture, Durable, OffsetsLog, ReadChunk, ReplicaLog};
pub use topic::ensure_offsets_topic;

use classic::error_join;
use runtime::Runtime;

use crate::replica::ReplicaManager;

/// The waiting half of a request: resolves to the response (or why the coordinator
/// could not serve it).
pub type Reply<T> = Pin<Box<dyn Future<Output = Result<T, CoordinatorError>> + Send + 'static>>;

/// How long a request waits for its partition to finish loading before it is told
/// COORDINATOR_LOAD_IN_PROGRESS (clients retry that).
const LOAD_WAIT: Duration = Duration::from_secs(5);

/// The group coordinator; cheap to clone (one shared state).
#[derive(Debug, Clone)]
pub struct GroupCoordinator {
    /// The shards, the log, the timers.
    runtime: Arc<Runtime>,
    /// The cluster's topics, for KIP-848 assignments (kept current by
    /// [`GroupCoordinator::follow_metadata`]).
    topics: Arc<RwLock<Arc<TopicCatalog>>>,
}

impl GroupCoordinator {
    /// A coordinator over `log`, with its timer task running until `parent` is
    /// cancelled (the broker passes its drain token: parked JoinGroups are answered
    /// NOT_COORDINATOR instead of holding the drain). No partition is served until
    /// it is loaded ([`GroupCoordinator::follow_metadata`], or a request for it).
    pub fn start(
        config: CoordinatorConfig,
        clock: Arc<dyn Clock>,
        log: Arc<dyn OffsetsLog>,
        parent: &CancellationToken,
    ) -> GroupCoordinator {
        let runtime = Arc::new(Runtime::new(config, clock, log, parent.child_token()));
        let coordinator = GroupCoordinator {
            runtime,
            topics: Arc::default(),
        };
        coordinator.spawn_timer_task();
        coordinator
    }

    /// The settings.
    pub fn config(&self) -> &CoordinatorConfig {
        &self.runtime.config
    }

    /// The `__consumer_offsets` partition of `group_id`.
    pub fn partition_for(&self, group_id: &str) -> i32 {
        runtime::partition_for(group_id, self.runtime.partitions())
    }

    /// Whether `partition` is loaded and served.
    pub fn is_serving(&self, partition: i32) -> bool {
        self.runtime.is_active(partition)
    }

    /// Starts loading `partition` if this broker leads it and it is not loaded.
    pub fn load(&self, partition: i32) {
        self.runtime.start_load(partition);
    }

    /// Waits (at most `timeout`) for `partition` to finish loading; whether it is
    /// served now.
    pub async fn wait_serving(&self, partition: i32, timeout: Duration) -> bool {
        self.runtime.wait_loaded(partition, timeout).await;
        self.is_serving(partition)
    }

    /// Follows the cluster metadata: loads the offsets partitions `node` leads
    /// (once the replica manager serves them) and unloads those it stops leading.
    pub fn follow_metadata(
        &self,
        mut images: watch::Receiver<Arc<MetadataImage>>,
        replicas: ReplicaManager,
        node: NodeId,
    ) {
        let runtime = self.runtime.clone();
        let catalog = self.topics.clone();
        self.runtime.tasks.spawn(async move {
            loop {
                let image = images.borrow_and_update().clone();
                let topics = TopicCatalog::new(image.topics().map(|t| {
                    let partitions = i32::try_from(t.partitions.len()).unwrap_or(i32::MAX);
                    (t.name.clone(), t.id, partitions)
                }));
                *catalog.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(topics);
                let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
                tokio::select! {
                    _ = replicas.wait_applied(image.offset(), deadline) => {}
                    () = runtime.cancel.cancelled() => return,
                }
                for partition in 0..runtime.partitions() {
                    let led = image
                        .partition(OFFSETS_TOPIC, partition)
                        .is_some_and(|p| p.leader_id() == node.get());
                    if led {
                        runtime.start_load(partition);
                    } else {
                        runtime.unload(partition);
                    }
                }
                tokio::select! {
                    changed = images.changed() => if changed.is_err() { return },
                    () = runtime.cancel.cancelled() => return,
                }
            }
        });
    }

    /// Replaces the topic catalog (tests; the broker follows the metadata).
    pub fn set_topics(&self, topics: TopicCatalog) {
        *self.topics.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(topics);
    }

    /// The current topic catalog.
    fn topics(&self) -> Arc<TopicCatalog> {
        self.topics
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops the timers and loads, answers every parked request NOT_COORDINATOR,
    /// and waits for the coordinator's tasks to end. Call before the replica
    /// manager shuts down.
    pub async fn shutdown(&self) {
        self.runtime.cancel.cancel();
        self.runtime.tasks.close();
        self.runtime.tasks.wait().await;
        for partition in 0..self.runtime.partitions() {
            self.runtime.unload(partition);
        }
    }

    /// Runs the timer task: sleeps until the earliest deadline (or a change), runs
    /// what is due; on cancellation unloads everything.
    fn spawn_timer_task(&self) {
        let runtime = self.runtime.clone();
        self.runtime.tasks.spawn(async move {
            loop {
                let changed = runtime.timers_changed.notified();
                let deadline = runtime.next_deadline().map(|d| runtime.instant_of(d));
                let sleep = async {
                    match deadline {
                        Some(at) => {
                            tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await
                        }
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = runtime.cancel.cancelled() => break,
                    () = changed => {}
                    () = sleep => runtime.tick().await,
                }
            }
            for partition in 0..runtime.partitions() {
                runtime.unload(partition);
            }
        });
    }

    /// Runs due timers now (tests drive time with a fake clock).
    #[cfg(test)]
    pub(crate) async fn tick(&self) {
        self.runtime.tick().await;
    }

    /// Waits for a loading partition before an operation on it.
    async fn ready(&self, partition: i32) {
        if !self.runtime.is_active(partition) {
            self.runtime.wait_loaded(partition, LOAD_WAIT).await;
        }
    }

    /// JoinGroup. The state change happens now; the reply waits for the join phase.
    pub(crate) async fn join_group(
        &self,
        ctx: JoinContext,
        request: JoinGroupRequest,
    ) -> Reply<JoinGroupResponse> {
        if request.group_id.is_empty() {
            return ready_reply(error_join(ErrorCode::InvalidGroupId, &request.member_id));
        }
        let config = self.config();
        let session = request.session_timeout_ms;
        if session < config.min_session_timeout_ms || session > config.max_session_timeout_ms {
            return ready_reply(error_join(
                ErrorCode::InvalidSessionTimeout,
                &request.member_id,
            ));
        }
        let partition = self.partition_for(&request.group_id);
        self.ready(partition).await;
        let member_id = request.member_id.clone();
        let pending = self
            .runtime
            .begin(partition, |shard, now| shard.join(&ctx, &request, now));
        Box::pin(async move {
            let receiver = pending?.finish().await?;
            // A dropped answer means the member was removed while it waited.
            Ok(receiver
                .await
                .unwrap_or_else(|_| error_join(ErrorCode::UnknownMemberId, &member_id)))
        })
    }

    /// SyncGroup. The reply waits for the leader's assignment and its write.
    pub(crate) async fn sync_group(&self, request: SyncGroupRequest) -> Reply<SyncGroupResponse> {
        if request.group_id.is_empty() {
            return ready_reply(SyncGroupResponse {
                error_code: ErrorCode::InvalidGroupId.code(),
                ..SyncGroupResponse::default()
            });
        }
        let partition = self.partition_for(&request.group_id);
        self.ready(partition).await;
        let pending = self
            .runtime
            .begin(partition, |shard, now| shard.sync(&request, now));
        Box::pin(async move {
            let receiver = pending?.finish().await?;
            Ok(receiver.await.unwrap_or_else(|_| SyncGroupResponse {
                error_code: ErrorCode::UnknownMemberId.code(),
                ..SyncGroupResponse::default()
            }))
        })
    }

    /// Heartbeat.
    pub(crate) async fn heartbeat(
        &self,
        request: HeartbeatRequest,
    ) -> Result<HeartbeatResponse, CoordinatorError> {
        if request.group_id.is_empty() {
            return Ok(HeartbeatResponse {
                error_code: ErrorCode::InvalidGroupId.code(),
                ..HeartbeatResponse::default()
            });
        }
        let partition = self.partition_for(&request.group_id);
        self.ready(partition).await;
        self.runtime
            .begin(partition, |shard, now| shard.heartbeat(&request, now))?
            .finish()
            .await
    }

    /// LeaveGroup for `members` (v0-2: the one member id).
    pub(crate) async fn leave_group(
        &self,
        group_id: String,
        members: Vec<MemberIdentity>,
    ) -> Reply<LeaveGroupResponse> {
        if group_id.is_empty() {
            return ready_reply(LeaveGroupResponse {
                error_code: ErrorCode::InvalidGroupId.code(),
                ..LeaveGroupResponse::default()
            });
        }
        let partition = self.partition_for(&group_id);
        self.ready(partition).await;
        let pending = self.runtime.begin(partition, |shard, now| {
            shard.leave(&group_id, &members, now)
        });
        Box::pin(async move { pending?.finish().await })
    }

    /// OffsetCommit of partitions known to exist. The reply waits for durability.
    pub(crate) async fn commit_offsets(
        &self,
        request: OffsetCommitRequest,
        api_version: i16,
    ) -> Reply<OffsetCommitResponse> {
        let partition = self.partition_for(&request.group_id);
        self.ready(partition).await;
        let pending = self.runtime.begin(partition, |shard, now| {
            shard.commit_offsets(&request, api_version, now)
        });
        Box::pin(async move { pending?.finish().await })
    }

    /// OffsetFetch for one group; `member` is the (id, epoch) a v9+ request names.
    pub(crate) async fn fetch_offsets(
        &self,
        group_id: &str,
        topics: &FetchTopics,
        member: (Option<&str>, i32),
    ) -> Result<OffsetFetchResponseGroup, CoordinatorError> {
        let partition = self.partition_for(group_id);
        self.ready(partition).await;
        self.runtime.read(partition, |shard| {
            shard.fetch_offsets(group_id, topics, member)
        })
    }

    /// ConsumerGroupHeartbeat (KIP-848). Answered once its records are durable;
    /// a refused heartbeat is its code and Kafka's message.
    pub(crate) async fn consumer_group_heartbeat(
        &self,
        ctx: JoinContext,
        request: ConsumerGroupHeartbeatRequest,
    ) -> Reply<HeartbeatResult> {
        let partition = self.partition_for(&request.group_id);
        self.ready(partition).await;
        let topics = self.topics();
        let pending = self.runtime.begin(partition, |shard, now| {
            shard.consumer_heartbeat(&ctx, &request, &topics, now)
        });
        Box::pin(async move { pending?.finish().await })
    }

    /// ConsumerGroupDescribe; each group's failure is its own error code.
    pub(crate) async fn consumer_group_describe(
        &self,
        group_ids: &[String],
    ) -> Vec<ConsumerDescribedGroup> {
        let topics = self.topics();
        let mut out = Vec::with_capacity(group_ids.len());
        for id in group_ids {
            if id.is_empty() {
                out.push(ConsumerDescribedGroup {
                    error_code: ErrorCode::InvalidGroupId.code(),
                    group_id: id.clone(),
                    ..ConsumerDescribedGroup::default()
                });
                continue;
            }
            let partition = self.partition_for(id);
            self.ready(partition).await;
            out.push(
                self.runtime
                    .read(partition, |shard| shard.consumer_describe(id, &topics))
                    .unwrap_or_else(|e| ConsumerDescribedGroup {
                        error_code: e.error_code().code(),
                        error_message: Some(e.to_string()),
                        group_id: id.clone(),
                        ..ConsumerDescribedGroup::default()
                    }),
            );
        }
        out
    }

    /// OffsetDelete of partitions known to exist.
    pub(crate) async fn delete_offsets(
        &self,
        group_id: String,
        topics: Vec<OffsetDeleteRequestTopic>,
    ) -> Reply<OffsetDeleteResponse> {
        if group_id.is_empty() {
            return ready_reply(OffsetDeleteResponse {
                error_code: ErrorCode::InvalidGroupId.code(),
                ..OffsetDeleteResponse::default()
            });
        }
        let partition = self.partition_for(&group_id);
        self.ready(partition).await;
        let pending = self.runtime.begin(partition, |shard, _| {
            shard.delete_offsets(&group_id, &topics)
        });
        Box::pin(async move { pending?.finish().await })
    }

    /// ListGroups over every partition served here. A partition still loading fails
    /// the whole list (COORDINATOR_LOAD_IN_PROGRESS), as in Kafka; others are not
    /// ours and are skipped.
    pub(crate) fn list_groups(
        &self,
        states: &BTreeSet<String>,
        types: &BTreeSet<String>,
    ) -> Result<Vec<ListedGroup>, CoordinatorError> {
        let mut groups = Vec::new();
        for partition in 0..self.runtime.partitions() {
            match self
                .runtime
                .read(partition, |shard| shard.list_groups(states, types))
            {
                Ok(listed) => groups.extend(listed),
                Err(CoordinatorError::NotCoordinator { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(groups)
    }

    /// DescribeGroups; each group's failure is its own error code.
    pub(crate) async fn describe_groups(&self, group_ids: &[String]) -> Vec<DescribedGroup> {
        let mut out = Vec::with_capacity(group_ids.len());
        for id in group_ids {
            let partition = self.partition_for(id);
            self.ready(partition).await;
            out.push(
                self.runtime
                    .read(partition, |shard| shard.describe_group(id))
                    .unwrap_or_else(|e| DescribedGroup {
                        error_code: e.error_code().code(),
                        group_id: id.clone(),
                        ..DescribedGroup::default()
                    }),
            );
        }
        out
    }

    /// DeleteGroups; the code of each group, in request order.
    pub(crate) async fn delete_groups(
        &self,
        group_ids: Vec<String>,
    ) -> Pin<Box<dyn Future<Output = Vec<(String, ErrorCode)>> + Send>> {
        let mut by_partition: BTreeMap<i32, Vec<String>> = BTreeMap::new();
        for id in &group_ids {
            by_partition
                .entry(self.partition_for(id))
                .or_default()
                .push(id.clone());
        }
        let mut pending = Vec::new();
        for (partition, ids) in by_partition {
            self.ready(partition).await;
            let begun = self
                .runtime
                .begin(partition, |shard, _| shard.delete_groups(&ids));
            pending.push((ids, begun));
        }
        Box::pin(async move {
            let mut codes: BTreeMap<String, ErrorCode> = BTreeMap::new();
            for (ids, begun) in pending {
                match begun {
                    Ok(p) => match p.finish().await {
                        Ok(results) => codes.extend(results),
                        Err(e) => codes.extend(ids.into_iter().map(|id| (id, e.error_code()))),
                    },
                    Err(e) => codes.extend(ids.into_iter().map(|id| (id, e.error_code()))),
                }
            }
            group_ids
                .into_iter()
                .map(|id| {
                    let code = codes
                        .get(&id)
                        .copied()
                        .unwrap_or(ErrorCode::UnknownServerError);
                    (id, code)
                })
                .collect()
        })
    }
}

/// A reply that is already known.
fn ready_reply<T: Send + 'static>(response: T) -> Reply<T> {
    Box::pin(async move { Ok(response) })
}
