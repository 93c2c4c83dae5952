//! The fetch path: reads bounded by the high watermark, KIP-74, and long polling.
//!
//! A consumer reads below the high watermark (read_committed: below the last stable
//! offset, which equals it until transactions exist); a replica fetcher (a request
//! with `replica_id >= 0`) reads to the log end, and its fetch offset tells the
//! leader how far that follower got (`leader.rs`: high watermark, ISR). Every
//! answer carries the high watermark, which is how followers learn it. Every read returns whole stored
//! batches. The response is limited to `max_bytes` over all partitions and to each
//! partition's `partition_max_bytes`, except that the first batch of the first
//! partition with data is returned whole even when larger (KIP-74), so a consumer
//! always makes progress.
//!
//! If fewer than `min_bytes` are available and no partition failed, the fetch waits
//! (Kafka's `DelayedFetch`) until an append or a high-watermark move on one of its
//! partitions wakes it (see [`super::delayed`]) and enough data is there, or until
//! `max_wait` passes, or until the broker shuts down; then it reads again and
//! answers. Waiting holds no lock and no buffer.
//!
//! Fetching from followers (KIP-392): a consumer's Fetch v11+ may go to a follower,
//! which serves it up to its own high watermark. With a rack-aware
//! `replica.selector.class`, the leader answers a consumer in another rack with
//! the most caught-up in-sync follower of the consumer's rack as its preferred
//! read replica, and no records; the consumer then fetches there.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;
use weir_types::{ErrorCode, LeaderEpoch, NodeId, Offset};

use super::error::{ReplicaError, Result};
use super::manager::ReplicaManager;
use super::partition::{Partition, Role, State};

/// Longest a fetch may wait, whatever `max_wait_ms` says: a bound on how long a
/// request (and its connection slot) can be held.
pub const MAX_FETCH_WAIT: Duration = Duration::from_secs(60);

/// Which records a consumer may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// Everything below the high watermark (wire value 0).
    #[default]
    ReadUncommitted,
    /// Everything below the last stable offset (wire value 1).
    ReadCommitted,
}

impl IsolationLevel {
    /// The wire value's meaning (unknown values read uncommitted, as Kafka's
    /// `IsolationLevel.forId` would reject them earlier in the handler).
    pub fn from_wire(level: i8) -> IsolationLevel {
        if level == 1 {
            IsolationLevel::ReadCommitted
        } else {
            IsolationLevel::ReadUncommitted
        }
    }
}

/// The request-level parameters of a fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchParams {
    /// `max_wait_ms`: how long to wait for `min_bytes` (capped at
    /// [`MAX_FETCH_WAIT`]).
    pub max_wait: Duration,
    /// `min_bytes`: answer as soon as this many bytes are available.
    pub min_bytes: usize,
    /// `max_bytes`: the response's record bytes over all partitions (soft: KIP-74).
    pub max_bytes: usize,
    /// `isolation_level`.
    pub isolation_level: IsolationLevel,
    /// The fetching replica's node id, or -1 for a consumer.
    pub replica_id: i32,
    /// A consumer that may read from a follower (Fetch v11+, which carries
    /// Kafka's client metadata): a follower serves it up to its own high
    /// watermark instead of answering NOT_LEADER_OR_FOLLOWER (KIP-392).
    pub follower_reads: bool,
}

/// One partition of a fetch request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPartition {
    /// Topic name (the handler resolves topic ids with
    /// [`ReplicaManager::topic_name`]).
    pub topic: String,
    /// Partition id.
    pub partition: i32,
    /// First offset wanted.
    pub fetch_offset: Offset,
    /// At most this many bytes from this partition (soft: KIP-74).
    pub partition_max_bytes: usize,
    /// The leader epoch the client believes current, or -1 to skip the check.
    pub current_leader_epoch: LeaderEpoch,
    /// Followers in the consumer's rack when this broker is not
    /// (`replica.selector.class` rack-aware, KIP-392): the leader names the most
    /// caught-up of those in the ISR as the preferred read replica instead of
    /// answering with records. Empty: read here.
    pub same_rack_replicas: Vec<NodeId>,
}

/// One partition of a fetch response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedPartition {
    /// `ErrorCode::None`, or why nothing was read.
    pub error: ErrorCode,
    /// The high watermark (-1 on error).
    pub high_watermark: Offset,
    /// The last stable offset (-1 on error).
    pub last_stable_offset: Offset,
    /// The log start offset (-1 on error).
    pub log_start_offset: Offset,
    /// Whole batches, verbatim; empty when none.
    pub records: Bytes,
    /// The follower the consumer should fetch from instead (KIP-392); no records
    /// then.
    pub preferred_read_replica: Option<NodeId>,
}

impl FetchedPartition {
    fn error(e: &ReplicaError) -> FetchedPartition {
        FetchedPartition {
            error: e.error_code(),
            high_watermark: Offset(-1),
            last_stable_offset: Offset(-1),
            log_start_offset: Offset(-1),
            records: Bytes::new(),
            preferred_read_replica: None,
        }
    }
}

/// Checks the client's view of the leader epoch against ours (KIP-320).
pub(crate) fn check_leader_epoch(requested: LeaderEpoch, current: LeaderEpoch) -> Result<()> {
    if requested.get() < 0 || requested == current {
        Ok(())
    } else if requested < current {
        Err(ReplicaError::FencedLeaderEpoch { requested, current })
    } else {
        Err(ReplicaError::UnknownLeaderEpoch { requested, current })
    }
}

impl ReplicaManager {
    /// Serves a Fetch: one result per requested partition, in request order; see
    /// the module docs. Errors are per partition; the call itself cannot fail.
    pub async fn fetch(
        &self,
        params: FetchParams,
        partitions: Vec<FetchPartition>,
    ) -> Vec<FetchedPartition> {
        let hosted: Vec<Option<Arc<Partition>>> = partitions
            .iter()
            .map(|p| self.hosted(&p.topic, p.partition))
            .collect();
        let replica = params.replica_id >= 0;
        let deadline = Instant::now() + params.max_wait.min(MAX_FETCH_WAIT);
        if replica {
            // A follower's fetch offset is its log end: the leader's view of its
            // progress (`leader.rs`).
            let follower = weir_types::NodeId(params.replica_id);
            for (request, p) in partitions.iter().zip(&hosted) {
                let Some(p) = p else { continue };
                let expand = p.record_follower_fetch(
                    follower,
                    request.fetch_offset,
                    request.current_leader_epoch,
                );
                if let Some(expand) = expand {
                    self.send_isr_change(Arc::clone(p), expand);
                }
            }
        }
        let waker = Arc::new(Notify::new());
        loop {
            // Register before reading: see `delayed` for why.
            for p in hosted.iter().flatten() {
                if replica {
                    p.leo_waiters.register(&waker);
                } else {
                    p.hw_waiters.register(&waker);
                }
            }
            let (results, bytes, failed) = read_all(&params, &partitions, &hosted);
            let done = failed
                || bytes >= params.min_bytes
                || params.max_wait.is_zero()
                || Instant::now() >= deadline
                || self.is_shutting_down();
            if done {
                return results;
            }
            tokio::select! {
                biased;
                _ = waker.notified() => {}
                _ = self.shutdown_token().cancelled() => {}
                _ = tokio::time::sleep_until(deadline) => {
                    return read_all(&params, &partitions, &hosted).0;
                }
            }
        }
    }
}

/// Reads every partition once: the results, the record bytes read, and whether a
/// partition failed or was redirected to a follower (either answers the fetch at
/// once, as in Kafka).
fn read_all(
    params: &FetchParams,
    partitions: &[FetchPartition],
    hosted: &[Option<Arc<Partition>>],
) -> (Vec<FetchedPartition>, usize, bool) {
    let mut remaining = params.max_bytes;
    let mut min_one = true;
    let mut total = 0usize;
    let mut failed = false;
    let mut results = Vec::with_capacity(partitions.len());
    for (request, partition) in partitions.iter().zip(hosted) {
        let read = match partition {
            Some(p) => {
                let limit = request.partition_max_bytes.min(remaining);
                p.read_for_fetch(request, limit, min_one, params)
            }
            None => Err(ReplicaError::UnknownTopicOrPartition {
                topic: request.topic.clone(),
                partition: request.partition,
            }),
        };
        match read {
            Ok(fetched) => {
                // A redirect is answered at once too, as in Kafka.
                failed |= fetched.preferred_read_replica.is_some();
                let n = fetched.records.len();
                if n > 0 {
                    min_one = false;
                    total += n;
                    remaining = remaining.saturating_sub(n);
                }
                results.push(fetched);
            }
            Err(e) => {
                failed = true;
                results.push(FetchedPartition::error(&e));
            }
        }
    }
    (results, total, failed)
}

/// The follower a consumer's fetch should go to instead of this leader (Kafka's
/// `findPreferredReadReplica` with the rack-aware selector): among the followers
/// in its rack, those in the ISR that already have the fetch offset, the one
/// furthest along (the lowest id on a tie). A follower outside the ISR may lag
/// indefinitely, and one without the offset would answer nothing.
fn preferred_read_replica(
    state: &State,
    request: &FetchPartition,
    params: &FetchParams,
) -> Option<NodeId> {
    if params.replica_id >= 0 || state.role != Role::Leader || request.same_rack_replicas.is_empty()
    {
        return None;
    }
    request
        .same_rack_replicas
        .iter()
        .filter(|id| state.isr.contains(id))
        .filter_map(|id| {
            let remote = state.replication.remotes.get(id)?;
            (remote.leo >= request.fetch_offset).then_some((remote.leo, *id))
        })
        .max_by(|(a, a_id), (b, b_id)| a.cmp(b).then(b_id.cmp(a_id)))
        .map(|(_, id)| id)
}

impl Partition {
    /// One partition's read for a fetch.
    fn read_for_fetch(
        &self,
        request: &FetchPartition,
        max_bytes: usize,
        min_one_batch: bool,
        params: &FetchParams,
    ) -> Result<FetchedPartition> {
        let state = self.read()?;
        if params.follower_reads && params.replica_id < 0 && state.role == Role::Follower {
            check_leader_epoch(request.current_leader_epoch, state.leader_epoch)?;
        } else {
            self.check_fetchable(&state, request.current_leader_epoch)?;
        }
        let log = self.log(&state)?;
        let high_watermark = log.high_watermark();
        // No transactions yet: nothing is unstable, the LSO is the high watermark.
        let last_stable_offset = high_watermark;
        if let Some(replica) = preferred_read_replica(&state, request, params) {
            return Ok(FetchedPartition {
                error: ErrorCode::None,
                high_watermark,
                last_stable_offset,
                log_start_offset: log.log_start_offset(),
                records: Bytes::new(),
                preferred_read_replica: Some(replica),
            });
        }
        let max_offset = if params.replica_id >= 0 {
            None
        } else {
            match params.isolation_level {
                IsolationLevel::ReadUncommitted => Some(high_watermark),
                IsolationLevel::ReadCommitted => Some(last_stable_offset),
            }
        };
        let info = log
            .read(request.fetch_offset, max_bytes, max_offset, min_one_batch)
            .inspect_err(|e| self.storage_failed(e))?;
        Ok(FetchedPartition {
            error: ErrorCode::None,
            high_watermark,
            last_stable_offset,
            log_start_offset: info.log_start_offset,
            records: info.records,
            preferred_read_replica: None,
        })
    }

    /// Leader and epoch checks shared by Fetch and ListOffsets.
    pub(crate) fn check_fetchable(&self, state: &State, epoch: LeaderEpoch) -> Result<()> {
        check_leader_epoch(epoch, state.leader_epoch)?;
        self.check_leader(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_epoch_checks() {
        assert!(check_leader_epoch(LeaderEpoch(-1), LeaderEpoch(5)).is_ok());
        assert!(check_leader_epoch(LeaderEpoch(5), LeaderEpoch(5)).is_ok());
        assert_eq!(
            check_leader_epoch(LeaderEpoch(4), LeaderEpoch(5))
                .unwrap_err()
                .error_code(),
            ErrorCode::FencedLeaderEpoch
        );
        assert_eq!(
            check_leader_epoch(LeaderEpoch(6), LeaderEpoch(5))
                .unwrap_err()
                .error_code(),
            ErrorCode::UnknownLeaderEpoch
        );
    }
}
