//! Where the coordinator's records go: the partitions of `__consumer_offsets`.
//!
//! [`OffsetsLog`] is the seam between the state machine and storage. The broker uses
//! [`ReplicaLog`], which appends through the replica manager with acks=all (so a
//! write is acknowledged only once it is fsynced, like any acks=all produce) and
//! reads through a consumer-style fetch below the high watermark. Unit tests plug in
//! an in-memory log instead.
//!
//! Appends are split in two, as the replica manager's are: the write happens inside
//! the caller (under the shard lock, so records reach the log in the order the state
//! machine produced them), and the returned future waits for durability outside it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use weir_types::{ErrorCode, LeaderEpoch, Offset};

use super::config::OFFSETS_TOPIC;
use super::error::StoreError;
use crate::replica::{Acks, FetchParams, FetchPartition, IsolationLevel, ReplicaManager, Role};

/// A boxed future, for the trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What waits for a write to become durable.
pub type Durable = BoxFuture<'static, Result<(), StoreError>>;

/// The most one load read asks for.
const READ_MAX_BYTES: usize = 8 * 1024 * 1024;

/// One read of a partition while loading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadChunk {
    /// Whole batches from the requested offset (empty at the end).
    pub records: Bytes,
    /// The end of what may be loaded: the high watermark (everything below it is
    /// durable).
    pub high_watermark: i64,
}

/// The offsets topic as the coordinator sees it.
pub trait OffsetsLog: Send + Sync + fmt::Debug + 'static {
    /// Writes `batch` to `partition` now and returns a future that resolves once it
    /// is durable (or fails after `timeout`).
    fn append(
        &self,
        partition: i32,
        batch: Bytes,
        timeout: Duration,
    ) -> Result<Durable, StoreError>;

    /// The partition's first offset: where loading starts.
    fn log_start_offset(&self, partition: i32) -> Result<i64, StoreError>;

    /// Whole batches of `partition` from offset `from`.
    fn read(&self, partition: i32, from: i64) -> BoxFuture<'_, Result<ReadChunk, StoreError>>;

    /// Whether this broker leads `partition` with its log online, and so may serve
    /// its groups.
    fn is_leader(&self, partition: i32) -> bool;
}

/// [`OffsetsLog`] over the broker's replica manager.
#[derive(Debug, Clone)]
pub struct ReplicaLog {
    /// The partitions this broker hosts.
    replicas: ReplicaManager,
}

impl ReplicaLog {
    /// The offsets topic as hosted by `replicas`.
    pub fn new(replicas: ReplicaManager) -> Self {
        Self { replicas }
    }
}

impl OffsetsLog for ReplicaLog {
    fn append(
        &self,
        partition: i32,
        batch: Bytes,
        timeout: Duration,
    ) -> Result<Durable, StoreError> {
        let pending = self
            .replicas
            .start_append(OFFSETS_TOPIC, partition, batch, Acks::All)?;
        let deadline = Instant::now()
            .checked_add(timeout)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        Ok(Box::pin(async move {
            pending.wait_until(deadline).await?;
            Ok(())
        }))
    }

    fn log_start_offset(&self, partition: i32) -> Result<i64, StoreError> {
        match self.replicas.partition_status(OFFSETS_TOPIC, partition) {
            Some(status) if status.online => Ok(status.log_start_offset.get()),
            _ => Err(StoreError::Unavailable(format!(
                "partition {partition} of {OFFSETS_TOPIC} is not online here"
            ))),
        }
    }

    fn read(&self, partition: i32, from: i64) -> BoxFuture<'_, Result<ReadChunk, StoreError>> {
        Box::pin(async move {
            let params = FetchParams {
                max_wait: Duration::ZERO,
                min_bytes: 0,
                max_bytes: READ_MAX_BYTES,
                isolation_level: IsolationLevel::ReadUncommitted,
                replica_id: -1,
                follower_reads: false,
            };
            let request = FetchPartition {
                topic: OFFSETS_TOPIC.to_owned(),
                partition,
                fetch_offset: Offset(from),
                partition_max_bytes: READ_MAX_BYTES,
                current_leader_epoch: LeaderEpoch(-1),
                same_rack_replicas: Vec::new(),
            };
            let fetched = self.replicas.fetch(params, vec![request]).await;
            let Some(p) = fetched.into_iter().next() else {
                return Err(StoreError::Unavailable("the fetch returned nothing".into()));
            };
            if p.error != ErrorCode::None {
                return Err(StoreError::Unavailable(format!(
                    "reading partition {partition} at offset {from} failed: {:?}",
                    p.error
                )));
            }
            Ok(ReadChunk {
                records: p.records,
                high_watermark: p.high_watermark.get(),
            })
        })
    }

    fn is_leader(&self, partition: i32) -> bool {
        self.replicas
            .partition_status(OFFSETS_TOPIC, partition)
            .is_some_and(|s| s.online && s.role == Role::Leader)
    }
}
