//! Helpers shared by the replica integration tests (`replica.rs`,
//! `replica_lifecycle.rs`): a manager over a temporary data directory, batch
//! builders, fetch shorthands, and polling.

#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::{timeout, Instant};
use weir_broker::net::CancellationToken;
use weir_broker::replica::{
    FetchParams, FetchPartition, FetchedPartition, IsolationLevel, PartitionStatus, ReplicaConfig,
    ReplicaManager, TopicAssignment,
};
use weir_protocol::records::{BatchBuilder, Batches};
use weir_protocol::Uuid;
use weir_types::{LeaderEpoch, NodeId, Offset, SystemClock};

/// Upper bound on any one test step, so a hang fails instead of stalling the suite.
pub const STEP: Duration = Duration::from_secs(20);
pub const NODE: NodeId = NodeId(1);
pub const TOPIC_ID: Uuid = Uuid([1; 16]);
pub const LONG: Duration = Duration::from_secs(60);

pub struct Broker {
    pub replicas: ReplicaManager,
    pub shutdown: CancellationToken,
}

pub async fn open_with(dir: &Path, tweak: impl FnOnce(&mut ReplicaConfig)) -> Broker {
    let mut config = ReplicaConfig::for_dir(dir);
    tweak(&mut config);
    let shutdown = CancellationToken::new();
    let replicas = ReplicaManager::open(config, Arc::new(SystemClock), &shutdown)
        .await
        .expect("open");
    Broker { replicas, shutdown }
}

/// A manager over `dir` serving `topics`.
pub async fn start(dir: &Path, topics: Vec<TopicAssignment>) -> Broker {
    let b = open_with(dir, |_| {}).await;
    b.replicas.apply(topics).await.expect("apply");
    b
}

impl Broker {
    pub async fn stop(self) {
        self.replicas.shutdown().await.expect("shutdown");
        self.shutdown.cancel();
    }
}

pub fn topic(name: &str, partitions: i32) -> TopicAssignment {
    TopicAssignment::single_node(name, TOPIC_ID, partitions, NODE)
}

/// A batch of `n` records with timestamps `ts, ts+1, ...` and `len`-byte values.
pub fn batch(n: usize, ts: i64, len: usize) -> Bytes {
    let value = vec![b'v'; len];
    let mut b = BatchBuilder::new();
    for i in 0..n {
        b.append(ts + i as i64, Some(b"k"), Some(&value), &[])
            .expect("record");
    }
    b.build().expect("batch")
}

/// An idempotent producer's batch.
pub fn producer_batch(pid: i64, epoch: i16, seq: i32, n: usize) -> Bytes {
    let mut b = BatchBuilder::new().producer(pid, epoch, seq);
    for _ in 0..n {
        b.append(now_ms(), None, Some(b"value"), &[])
            .expect("record");
    }
    b.build().expect("batch")
}

pub fn now_ms() -> i64 {
    use weir_types::Clock;
    SystemClock.now_ms()
}

pub fn consumer(max_wait: Duration, min_bytes: usize) -> FetchParams {
    FetchParams {
        max_wait,
        min_bytes,
        max_bytes: 50 << 20,
        isolation_level: IsolationLevel::ReadUncommitted,
        replica_id: -1,
        follower_reads: false,
    }
}

pub fn at(topic: &str, partition: i32, offset: i64) -> FetchPartition {
    FetchPartition {
        topic: topic.to_string(),
        partition,
        fetch_offset: Offset(offset),
        partition_max_bytes: 1 << 20,
        current_leader_epoch: LeaderEpoch(-1),
        same_rack_replicas: Vec::new(),
    }
}

pub async fn fetch_one(b: &Broker, params: FetchParams, p: FetchPartition) -> FetchedPartition {
    let mut r = timeout(STEP, b.replicas.fetch(params, vec![p]))
        .await
        .expect("fetch in time");
    assert_eq!(r.len(), 1);
    r.remove(0)
}

/// (base offset, record count) of each batch in `records`.
pub fn batches(records: &Bytes) -> Vec<(i64, i32)> {
    Batches::new(records.clone())
        .map(|b| {
            let b = b.expect("stored batch parses");
            (b.base_offset(), b.record_count())
        })
        .collect()
}

/// Polls `cond` (yielding to other tasks and the blocking pool) until it holds.
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + STEP;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

pub fn status(b: &Broker, t: &str, p: i32) -> PartitionStatus {
    b.replicas.partition_status(t, p).expect("hosted")
}
