//! Unit tests of the coordinator: the state machine driven through the public
//! operations, with a fake clock, explicit timer ticks and an in-memory log (no
//! sleeps, no disk).
//!
//! A reply is checked with [`now`]: it polls the reply once, so "still parked" and
//! "answered" are both observable without waiting.

mod admin;
mod consumer;
mod consumer_regex;
mod join;
mod load;
mod offsets;
mod static_members;
mod sync_heartbeat;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use weir_protocol::messages::heartbeat::HeartbeatRequest;
use weir_protocol::messages::join_group::{
    JoinGroupRequest, JoinGroupRequestProtocol, JoinGroupResponse,
};
use weir_protocol::messages::sync_group::{
    SyncGroupRequest, SyncGroupRequestAssignment, SyncGroupResponse,
};
use weir_protocol::records::{BatchView, Batches};
use weir_types::{Clock, ErrorCode};

use super::records::{decode_batch, Decoded, Record};
use super::*;

/// A clock that moves only when told.
#[derive(Debug)]
pub(super) struct FakeClock {
    /// The monotonic origin.
    base: Instant,
    /// Monotonic ms since `base`.
    mono_ms: AtomicU64,
    /// Wall-clock ms.
    wall_ms: AtomicI64,
}

impl FakeClock {
    pub(super) fn new() -> Arc<FakeClock> {
        Arc::new(FakeClock {
            base: Instant::now(),
            mono_ms: AtomicU64::new(0),
            wall_ms: AtomicI64::new(1_700_000_000_000),
        })
    }

    /// Moves both clocks forward.
    pub(super) fn advance(&self, ms: u64) {
        self.mono_ms.fetch_add(ms, Ordering::SeqCst);
        self.wall_ms
            .fetch_add(i64::try_from(ms).unwrap_or(0), Ordering::SeqCst);
    }

    pub(super) fn wall_ms(&self) -> i64 {
        self.wall_ms.load(Ordering::SeqCst)
    }
}

impl Clock for FakeClock {
    fn now_ms(&self) -> i64 {
        self.wall_ms.load(Ordering::SeqCst)
    }

    fn monotonic(&self) -> Instant {
        self.base + Duration::from_millis(self.mono_ms.load(Ordering::SeqCst))
    }
}

/// An offsets log in memory: batches get offsets as a real log would give them;
/// writes are durable at once unless `fail` is set.
#[derive(Debug, Default)]
pub(super) struct MemoryLog {
    /// Each partition's batches, with base offsets assigned.
    partitions: Mutex<std::collections::HashMap<i32, Vec<Bytes>>>,
    /// When set, appends fail with NOT_ENOUGH_REPLICAS.
    pub(super) fail: AtomicBool,
    /// When set, this broker leads nothing.
    pub(super) not_leader: AtomicBool,
    /// When set, reads wait for `released` (a partition stays loading).
    pub(super) hold_reads: AtomicBool,
    /// Wakes held reads.
    pub(super) released: tokio::sync::Notify,
}

impl MemoryLog {
    /// Every record written to `partition`, in order.
    pub(super) fn records(&self, partition: i32) -> Vec<Record> {
        let batches = self
            .partitions
            .lock()
            .expect("lock")
            .get(&partition)
            .cloned()
            .unwrap_or_default();
        let mut out = Vec::new();
        for batch in batches {
            let view = BatchView::parse(batch).expect("batch");
            for (_, record) in decode_batch(&view).expect("records") {
                if let Ok(Decoded::Known(r)) = record {
                    out.push(r);
                }
            }
        }
        out
    }

    fn next_offset(batches: &[Bytes]) -> i64 {
        batches
            .last()
            .map(|b| {
                BatchView::parse(b.clone())
                    .expect("batch")
                    .header()
                    .next_offset()
            })
            .unwrap_or(0)
    }
}

impl OffsetsLog for MemoryLog {
    fn append(
        &self,
        partition: i32,
        batch: Bytes,
        _timeout: Duration,
    ) -> Result<Durable, StoreError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::Replica(
                crate::replica::ReplicaError::NotEnoughReplicas { isr: 0, min: 1 },
            ));
        }
        let mut partitions = self.partitions.lock().expect("lock");
        let batches = partitions.entry(partition).or_default();
        let mut view = BatchView::parse(batch).expect("the coordinator writes valid batches");
        view.assign(Self::next_offset(batches), 0);
        batches.push(view.into_bytes());
        Ok(Box::pin(async { Ok(()) }))
    }

    fn log_start_offset(&self, _partition: i32) -> Result<i64, StoreError> {
        Ok(0)
    }

    fn read(&self, partition: i32, from: i64) -> BoxFuture<'_, Result<ReadChunk, StoreError>> {
        if self.hold_reads.load(Ordering::SeqCst) {
            return Box::pin(async move {
                self.released.notified().await;
                self.read(partition, from).await
            });
        }
        let batches = self
            .partitions
            .lock()
            .expect("lock")
            .get(&partition)
            .cloned()
            .unwrap_or_default();
        let high_watermark = Self::next_offset(&batches);
        // Two batches per read, so loading takes several reads.
        let records: Vec<u8> = batches
            .iter()
            .filter(|b| {
                BatchView::parse((*b).clone())
                    .expect("batch")
                    .header()
                    .next_offset()
                    > from
            })
            .take(2)
            .flat_map(|b| b.to_vec())
            .collect();
        Box::pin(async move {
            Ok(ReadChunk {
                records: records.into(),
                high_watermark,
            })
        })
    }

    fn is_leader(&self, _partition: i32) -> bool {
        !self.not_leader.load(Ordering::SeqCst)
    }
}

/// A coordinator on a fake clock and a memory log, with every partition it is
/// asked about loaded.
pub(super) struct Harness {
    pub(super) groups: GroupCoordinator,
    pub(super) clock: Arc<FakeClock>,
    pub(super) log: Arc<MemoryLog>,
    pub(super) cancel: CancellationToken,
}

/// The settings the tests use: Kafka's defaults and 5 partitions.
pub(super) fn test_config() -> CoordinatorConfig {
    CoordinatorConfig {
        num_partitions: 5,
        ..CoordinatorConfig::default()
    }
}

impl Harness {
    pub(super) async fn new() -> Harness {
        Harness::with(
            test_config(),
            Arc::new(MemoryLog::default()),
            FakeClock::new(),
        )
        .await
    }

    /// A coordinator over an existing log (a restart), all partitions loaded.
    pub(super) async fn with(
        config: CoordinatorConfig,
        log: Arc<MemoryLog>,
        clock: Arc<FakeClock>,
    ) -> Harness {
        let cancel = CancellationToken::new();
        let groups = GroupCoordinator::start(config, clock.clone(), log.clone(), &cancel);
        for p in 0..groups.config().num_partitions {
            groups.load(p);
            assert!(
                groups.wait_serving(p, Duration::from_secs(5)).await,
                "partition {p} loads"
            );
        }
        Harness {
            groups,
            clock,
            log,
            cancel,
        }
    }

    /// Moves time and runs due timers.
    pub(super) async fn advance(&self, ms: u64) {
        self.clock.advance(ms);
        self.groups.tick().await;
    }

    pub(super) async fn join(
        &self,
        version: i16,
        request: JoinGroupRequest,
    ) -> Reply<JoinGroupResponse> {
        self.groups.join_group(ctx(version), request).await
    }

    /// A v5+ join that does the KIP-394 round: returns the parked second join and
    /// the member id.
    pub(super) async fn join_new(&self, group: &str) -> (Reply<JoinGroupResponse>, String) {
        let mut first = self
            .join(5, join_request(group, "", &[("range", b"m")]))
            .await;
        let answer = now(&mut first).expect("answered").expect("served");
        assert_eq!(answer.error_code, ErrorCode::MemberIdRequired.code());
        let id = answer.member_id;
        let second = self
            .join(5, join_request(group, &id, &[("range", b"m")]))
            .await;
        (second, id)
    }

    pub(super) async fn sync(
        &self,
        group: &str,
        member: &str,
        generation: i32,
        assignments: &[(&str, &[u8])],
    ) -> Reply<SyncGroupResponse> {
        self.groups
            .sync_group(SyncGroupRequest {
                group_id: group.into(),
                generation_id: generation,
                member_id: member.into(),
                assignments: assignments
                    .iter()
                    .map(|(m, a)| SyncGroupRequestAssignment {
                        member_id: (*m).into(),
                        assignment: Bytes::copy_from_slice(a),
                    })
                    .collect(),
                ..SyncGroupRequest::default()
            })
            .await
    }

    pub(super) async fn heartbeat(&self, group: &str, member: &str, generation: i32) -> ErrorCode {
        self.heartbeat_as(group, member, None, generation).await
    }

    pub(super) async fn heartbeat_as(
        &self,
        group: &str,
        member: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> ErrorCode {
        let r = self
            .groups
            .heartbeat(HeartbeatRequest {
                group_id: group.into(),
                generation_id: generation,
                member_id: member.into(),
                group_instance_id: instance.map(Into::into),
            })
            .await
            .expect("served");
        ErrorCode::from_code(r.error_code)
    }

    /// The group's state, "Dead" if it does not exist.
    pub(super) async fn state(&self, group: &str) -> String {
        self.groups.describe_groups(&[group.to_owned()]).await[0]
            .group_state
            .clone()
    }

    /// Everything written to `group`'s partition.
    pub(super) fn written(&self, group: &str) -> Vec<Record> {
        self.log.records(self.groups.partition_for(group))
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A request context of `version` from client "c" on 127.0.0.1.
pub(super) fn ctx(version: i16) -> JoinContext {
    JoinContext {
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        api_version: version,
    }
}

/// A consumer JoinGroup (session 10 s, rebalance 30 s).
pub(super) fn join_request(
    group: &str,
    member: &str,
    protocols: &[(&str, &[u8])],
) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: group.into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        member_id: member.into(),
        group_instance_id: None,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|(name, metadata)| JoinGroupRequestProtocol {
                name: (*name).into(),
                metadata: Bytes::copy_from_slice(metadata),
            })
            .collect(),
        reason: None,
    }
}

/// Polls a reply once: `Some` if it is answered.
pub(super) fn now<T>(reply: &mut Reply<T>) -> Option<Result<T, CoordinatorError>> {
    let mut cx = Context::from_waker(Waker::noop());
    match reply.as_mut().poll(&mut cx) {
        Poll::Ready(r) => Some(r),
        Poll::Pending => None,
    }
}

/// The answer of a reply that must be ready.
pub(super) fn answered<T>(reply: &mut Reply<T>) -> T {
    now(reply).expect("answered now").expect("served")
}

/// The code of an answered JoinGroup.
pub(super) fn code(r: &JoinGroupResponse) -> ErrorCode {
    ErrorCode::from_code(r.error_code)
}

/// A consumer subscription to `topics` (version 0 prefix), as member metadata.
pub(super) fn subscription(topics: &[&str]) -> Vec<u8> {
    use weir_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
    use weir_protocol::Message;
    let body = ConsumerProtocolSubscription {
        topics: topics.iter().map(|t| (*t).into()).collect(),
        ..ConsumerProtocolSubscription::default()
    }
    .to_bytes(0)
    .expect("encode");
    let mut out = vec![0, 0];
    out.extend_from_slice(&body);
    out
}

/// Batches of a byte buffer (for tests that read raw log contents).
#[allow(dead_code)]
pub(super) fn batches(bytes: Bytes) -> Vec<BatchView> {
    Batches::new(bytes)
        .collect::<Result<_, _>>()
        .expect("batches")
}

#[test]
fn java_hash_and_partition_mapping_match_kafka() {
    use super::runtime::{java_string_hash, partition_for};
    assert_eq!(java_string_hash(""), 0);
    assert_eq!(java_string_hash("abc"), 96_354);
    assert_eq!(java_string_hash("hello"), 99_162_322);
    // Outside the BMP: two UTF-16 code units (a surrogate pair).
    assert_eq!(java_string_hash("\u{1F600}"), 55_357 * 31 + 56_832);
    // Negative hashes use the absolute value; i32::MIN maps to 0 as Kafka's
    // Utils.abs does. "polygenelubricants" hashes to i32::MIN in Java.
    assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
    assert_eq!(partition_for("polygenelubricants", 50), 0);
    let h = java_string_hash("console-consumer-12345");
    assert_eq!(partition_for("console-consumer-12345", 50), h.abs() % 50);
    assert_eq!(partition_for("anything", 1), 0);
}
