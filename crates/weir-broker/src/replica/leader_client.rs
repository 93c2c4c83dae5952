//! The follower's way to its leaders: [`LeaderClient`], and an in-memory one.
//!
//! The fetcher (`replica_fetcher.rs`) speaks to a leader through this seam, in the
//! replica layer's own terms: a Fetch with this broker's replica id, an
//! OffsetForLeaderEpoch, and a ListOffsets for the earliest offset. The real one
//! speaks the Kafka protocol over TCP (`tcp_leader_client.rs`);
//! [`InMemoryLeaders`] calls other [`ReplicaManager`]s of the same process
//! directly, so replication tests run without sockets.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use weir_log::special_timestamps;
use weir_types::{ErrorCode, LeaderEpoch, NodeId, Offset};

use super::error::ReplicaError;
use super::fetch::{FetchParams, FetchPartition, FetchedPartition, IsolationLevel};
use super::isr::BoxFuture;
use super::manager::ReplicaManager;

/// A follower's fetch from its leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaFetch {
    /// The fetching broker (the Fetch `replica_id`).
    pub replica_id: NodeId,
    /// `replica.fetch.wait.max.ms`.
    pub max_wait: Duration,
    /// `replica.fetch.min.bytes`.
    pub min_bytes: usize,
    /// `replica.fetch.response.max.bytes`.
    pub max_bytes: usize,
    /// The partitions, each at the follower's log end, with its leader epoch.
    pub partitions: Vec<FetchPartition>,
}

/// One partition of an OffsetForLeaderEpoch from a follower.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochQuery {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The leader epoch the follower is in (fences a stale leader).
    pub current_leader_epoch: LeaderEpoch,
    /// The epoch whose end offset is asked (the follower's latest).
    pub leader_epoch: LeaderEpoch,
}

/// The leader's answer to one [`EpochQuery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEnd {
    /// `ErrorCode::None` or why there is no answer.
    pub error: ErrorCode,
    /// The largest epoch at or below the one asked, -1 if unknown.
    pub leader_epoch: LeaderEpoch,
    /// Where it ended on the leader, -1 if unknown.
    pub end_offset: Offset,
}

impl EpochEnd {
    /// No answer for the partition, because of `error`.
    pub fn failed(error: ErrorCode) -> EpochEnd {
        EpochEnd {
            error,
            leader_epoch: LeaderEpoch(-1),
            end_offset: Offset(-1),
        }
    }
}

/// What a follower needs from a leader; see the module docs. A call fails as a
/// whole on a transport error (the fetcher backs off `replica.fetch.backoff.ms`);
/// partition errors are in the answers.
pub trait LeaderClient: Send + Sync + 'static {
    /// Fetch from `leader`; one result per partition, in request order.
    fn fetch(
        &self,
        leader: NodeId,
        request: ReplicaFetch,
    ) -> BoxFuture<'_, Result<Vec<FetchedPartition>, ReplicaError>>;

    /// OffsetForLeaderEpoch to `leader` (with this broker's replica id); one
    /// answer per query, in order.
    fn offset_for_leader_epoch(
        &self,
        leader: NodeId,
        replica_id: NodeId,
        queries: Vec<EpochQuery>,
    ) -> BoxFuture<'_, Result<Vec<EpochEnd>, ReplicaError>>;

    /// The leader's log start offset for one partition (ListOffsets earliest):
    /// where a follower that fell below it restarts.
    fn log_start_offset(
        &self,
        leader: NodeId,
        replica_id: NodeId,
        query: EpochQuery,
    ) -> BoxFuture<'_, Result<Offset, ReplicaError>>;
}

/// A [`LeaderClient`] over the [`ReplicaManager`]s of this process, by node id:
/// for tests. A node not registered (or removed) is unreachable, and a fetch
/// answered after its leader was removed is lost (a network partition).
#[derive(Debug, Default, Clone)]
pub struct InMemoryLeaders {
    nodes: Arc<RwLock<HashMap<NodeId, ReplicaManager>>>,
}

impl InMemoryLeaders {
    /// An empty set.
    pub fn new() -> InMemoryLeaders {
        InMemoryLeaders::default()
    }

    /// Makes `manager` reachable as `node`.
    pub fn insert(&self, node: NodeId, manager: ReplicaManager) {
        self.nodes
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(node, manager);
    }

    /// Makes `node` unreachable.
    pub fn remove(&self, node: NodeId) {
        self.nodes
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&node);
    }

    fn get(&self, node: NodeId) -> Result<ReplicaManager, ReplicaError> {
        self.nodes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&node)
            .cloned()
            .ok_or_else(|| ReplicaError::LeaderUnreachable {
                leader: node,
                reason: "not registered with the in-memory leaders".into(),
            })
    }
}

impl LeaderClient for InMemoryLeaders {
    fn fetch(
        &self,
        leader: NodeId,
        request: ReplicaFetch,
    ) -> BoxFuture<'_, Result<Vec<FetchedPartition>, ReplicaError>> {
        Box::pin(async move {
            let m = self.get(leader)?;
            let params = FetchParams {
                max_wait: request.max_wait,
                min_bytes: request.min_bytes,
                max_bytes: request.max_bytes,
                isolation_level: IsolationLevel::ReadUncommitted,
                replica_id: request.replica_id.get(),
                follower_reads: false,
            };
            let fetched = m.fetch(params, request.partitions).await;
            // Cut off while the fetch waited: the answer is lost, as over a
            // broken connection.
            self.get(leader)?;
            Ok(fetched)
        })
    }

    fn offset_for_leader_epoch(
        &self,
        leader: NodeId,
        _replica_id: NodeId,
        queries: Vec<EpochQuery>,
    ) -> BoxFuture<'_, Result<Vec<EpochEnd>, ReplicaError>> {
        Box::pin(async move {
            let m = self.get(leader)?;
            Ok(queries
                .iter()
                .map(|q| {
                    match m.end_offset_for_epoch(
                        &q.topic,
                        q.partition,
                        q.current_leader_epoch,
                        q.leader_epoch,
                    ) {
                        Ok((leader_epoch, end_offset)) => EpochEnd {
                            error: ErrorCode::None,
                            leader_epoch,
                            end_offset,
                        },
                        Err(e) => EpochEnd::failed(e.error_code()),
                    }
                })
                .collect())
        })
    }

    fn log_start_offset(
        &self,
        leader: NodeId,
        replica_id: NodeId,
        query: EpochQuery,
    ) -> BoxFuture<'_, Result<Offset, ReplicaError>> {
        Box::pin(async move {
            let m = self.get(leader)?;
            let listed = m.list_offsets(
                &query.topic,
                query.partition,
                special_timestamps::EARLIEST,
                IsolationLevel::ReadUncommitted,
                query.current_leader_epoch,
                replica_id.get(),
            )?;
            Ok(listed.offset)
        })
    }
}
