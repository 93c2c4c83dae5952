//! Helpers for the replication tests: a fake controller (images built from
//! metadata records, AlterPartition answered like the controller would) and a
//! cluster of replica managers in one process, connected through
//! [`InMemoryLeaders`].

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{timeout, Instant};
use weir_broker::net::CancellationToken;
use weir_broker::replica::{
    AlterIsr, BoxFuture, EpochEnd, EpochQuery, FetchedPartition, InMemoryLeaders, IsrChannel,
    IsrUpdate, LeaderClient, PartitionStatus, ReplicaConfig, ReplicaError, ReplicaFetch,
    ReplicaManager,
};
use weir_metadata::{MetadataDelta, MetadataImage, MetadataRecord};
use weir_protocol::messages::metadata_register_broker_record::BrokerEndpoint;
use weir_protocol::messages::{
    ConfigRecord, PartitionChangeRecord, PartitionRecord, RegisterBrokerRecord, TopicRecord,
};
use weir_protocol::Uuid;
use weir_types::{ErrorCode, NodeId, Offset, SystemClock};

pub const STEP: Duration = Duration::from_secs(30);
pub const TOPIC_ID: Uuid = Uuid([7; 16]);
pub const LONG: Duration = Duration::from_secs(60);

/// The controller as the brokers see it: an image channel, and AlterPartition.
pub struct FakeController {
    image: Mutex<Arc<MetadataImage>>,
    tx: watch::Sender<Arc<MetadataImage>>,
    /// Every AlterPartition received, in order.
    pub alters: Mutex<Vec<AlterIsr>>,
    /// When set, every AlterPartition is refused with this code.
    pub refuse: Mutex<Option<ErrorCode>>,
}

impl FakeController {
    pub fn new() -> Arc<FakeController> {
        let image = Arc::new(MetadataImage::empty("cluster"));
        Arc::new(FakeController {
            image: Mutex::new(Arc::clone(&image)),
            tx: watch::Sender::new(image),
            alters: Mutex::new(Vec::new()),
            refuse: Mutex::new(None),
        })
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.image.lock().unwrap())
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.tx.subscribe()
    }

    /// Appends `records` as one change and publishes the new image.
    pub fn replay(&self, records: &[MetadataRecord]) -> Arc<MetadataImage> {
        let mut image = self.image.lock().unwrap();
        let mut delta = MetadataDelta::new(Arc::clone(&image));
        let mut offset = image.offset().get();
        for r in records {
            offset += 1;
            delta.replay(Offset(offset), 1, 0, r).expect("replay");
        }
        let next = Arc::new(delta.apply());
        *image = Arc::clone(&next);
        self.tx.send_replace(Arc::clone(&next));
        next
    }

    fn alter(&self, req: AlterIsr) -> Result<IsrUpdate, ErrorCode> {
        self.alters.lock().unwrap().push(req.clone());
        if let Some(code) = *self.refuse.lock().unwrap() {
            return Err(code);
        }
        let image = self.image();
        let p = image
            .topic_by_id(req.topic_id)
            .and_then(|t| t.partition(req.partition))
            .ok_or(ErrorCode::UnknownTopicOrPartition)?;
        if req.leader_epoch != p.leader_epoch {
            return Err(ErrorCode::FencedLeaderEpoch);
        }
        if req.partition_epoch != p.partition_epoch {
            return Err(ErrorCode::InvalidUpdateVersion);
        }
        let next = self.replay(&[MetadataRecord::PartitionChange(PartitionChangeRecord {
            partition_id: req.partition,
            topic_id: req.topic_id,
            isr: Some(req.new_isr.iter().map(|n| n.get()).collect()),
            ..PartitionChangeRecord::default()
        })]);
        let p = next
            .topic_by_id(req.topic_id)
            .and_then(|t| t.partition(req.partition))
            .ok_or(ErrorCode::UnknownTopicOrPartition)?;
        Ok(IsrUpdate {
            isr: p.isr.clone(),
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
        })
    }
}

/// [`IsrChannel`] over a shared [`FakeController`].
pub struct FakeIsr(pub Arc<FakeController>);

impl IsrChannel for FakeIsr {
    fn alter_partition(
        &self,
        request: AlterIsr,
    ) -> BoxFuture<'static, Result<IsrUpdate, ErrorCode>> {
        let reply = self.0.alter(request);
        Box::pin(async move { reply })
    }
}

pub fn register_broker(node: i32, port: u16) -> MetadataRecord {
    MetadataRecord::RegisterBroker(RegisterBrokerRecord {
        broker_id: node,
        incarnation_id: Uuid([node as u8; 16]),
        broker_epoch: 1,
        end_points: vec![BrokerEndpoint {
            name: "PLAINTEXT".into(),
            host: "127.0.0.1".into(),
            port,
            security_protocol: 0,
        }],
        fenced: false,
        ..RegisterBrokerRecord::default()
    })
}

pub fn topic_record(name: &str) -> MetadataRecord {
    MetadataRecord::Topic(TopicRecord {
        name: name.into(),
        topic_id: TOPIC_ID,
    })
}

pub fn partition_record(replicas: &[i32], isr: &[i32], leader: i32) -> MetadataRecord {
    MetadataRecord::Partition(PartitionRecord {
        partition_id: 0,
        topic_id: TOPIC_ID,
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
        leader,
        leader_epoch: 0,
        partition_epoch: 0,
        ..PartitionRecord::default()
    })
}

pub fn topic_config(topic: &str, name: &str, value: &str) -> MetadataRecord {
    MetadataRecord::Config(ConfigRecord {
        resource_type: 2,
        resource_name: topic.into(),
        name: name.into(),
        value: Some(value.into()),
    })
}

/// A leader change of partition 0 (bumps the leader epoch).
pub fn leader_change(leader: i32, isr: &[i32]) -> MetadataRecord {
    MetadataRecord::PartitionChange(PartitionChangeRecord {
        partition_id: 0,
        topic_id: TOPIC_ID,
        leader,
        isr: Some(isr.to_vec()),
        ..PartitionChangeRecord::default()
    })
}

/// One follower's way to the leaders: the shared in-memory leaders, unless
/// blocked (a follower cut off from every leader).
pub struct Gate {
    leaders: InMemoryLeaders,
    pub blocked: AtomicBool,
    /// Fetches that reached the leader.
    pub fetches: AtomicUsize,
}

impl Gate {
    fn check(&self, leader: NodeId) -> Result<(), ReplicaError> {
        if self.blocked.load(Ordering::SeqCst) {
            return Err(ReplicaError::LeaderUnreachable {
                leader,
                reason: "blocked by the test".into(),
            });
        }
        Ok(())
    }
}

impl LeaderClient for Gate {
    fn fetch(
        &self,
        leader: NodeId,
        request: ReplicaFetch,
    ) -> BoxFuture<'_, Result<Vec<FetchedPartition>, ReplicaError>> {
        Box::pin(async move {
            self.check(leader)?;
            self.fetches.fetch_add(1, Ordering::SeqCst);
            let got = self.leaders.fetch(leader, request).await?;
            self.check(leader)?;
            Ok(got)
        })
    }

    fn offset_for_leader_epoch(
        &self,
        leader: NodeId,
        replica_id: NodeId,
        queries: Vec<EpochQuery>,
    ) -> BoxFuture<'_, Result<Vec<EpochEnd>, ReplicaError>> {
        Box::pin(async move {
            self.check(leader)?;
            self.leaders
                .offset_for_leader_epoch(leader, replica_id, queries)
                .await
        })
    }

    fn log_start_offset(
        &self,
        leader: NodeId,
        replica_id: NodeId,
        query: EpochQuery,
    ) -> BoxFuture<'_, Result<Offset, ReplicaError>> {
        Box::pin(async move {
            self.check(leader)?;
            self.leaders
                .log_start_offset(leader, replica_id, query)
                .await
        })
    }
}

pub struct Node {
    pub id: NodeId,
    pub gate: Arc<Gate>,
    pub replicas: ReplicaManager,
    pub shutdown: CancellationToken,
    pub dir: PathBuf,
}

pub struct Cluster {
    pub controller: Arc<FakeController>,
    pub leaders: InMemoryLeaders,
    pub nodes: Vec<Node>,
    _dirs: Vec<tempfile::TempDir>,
}

/// Short timings so tests run fast; `lag` is `replica.lag.time.max.ms`.
pub fn test_config(dir: &std::path::Path, id: i32, lag: Duration) -> ReplicaConfig {
    let mut c = ReplicaConfig::for_dir(dir);
    c.node_id = NodeId(id);
    c.replica_lag_time_max = lag;
    c.replica_fetch_wait_max = Duration::from_millis(100);
    c.replica_fetch_backoff = Duration::from_millis(50);
    c
}

impl Cluster {
    /// `n` brokers (ids 1..=n), registered, each following the controller's
    /// images and fetching through the in-memory leaders.
    pub async fn start(n: i32, lag: Duration) -> Cluster {
        let controller = FakeController::new();
        let brokers: Vec<MetadataRecord> = (1..=n).map(|i| register_broker(i, 0)).collect();
        controller.replay(&brokers);
        let leaders = InMemoryLeaders::new();
        let mut nodes = Vec::new();
        let mut dirs = Vec::new();
        for id in 1..=n {
            let dir = tempfile::tempdir().unwrap();
            let config = test_config(dir.path(), id, lag);
            let shutdown = CancellationToken::new();
            let replicas = ReplicaManager::open(config, Arc::new(SystemClock), &shutdown)
                .await
                .expect("open");
            leaders.insert(NodeId(id), replicas.clone());
            let gate = Arc::new(Gate {
                leaders: leaders.clone(),
                blocked: AtomicBool::new(false),
                fetches: AtomicUsize::new(0),
            });
            replicas.start_replication(
                Arc::new(FakeIsr(Arc::clone(&controller))),
                Arc::clone(&gate) as Arc<dyn LeaderClient>,
            );
            replicas.spawn_image_listener(controller.subscribe());
            nodes.push(Node {
                id: NodeId(id),
                gate,
                replicas,
                shutdown,
                dir: dir.path().to_path_buf(),
            });
            dirs.push(dir);
        }
        Cluster {
            controller,
            leaders,
            nodes,
            _dirs: dirs,
        }
    }

    pub fn node(&self, id: i32) -> &Node {
        &self.nodes[usize::try_from(id - 1).unwrap()]
    }

    pub fn status(&self, id: i32) -> PartitionStatus {
        self.node(id)
            .replicas
            .partition_status("t", 0)
            .expect("hosted")
    }

    /// Publishes records and waits until every running node applied them.
    pub async fn publish(&self, records: &[MetadataRecord]) {
        let image = self.controller.replay(records);
        for n in &self.nodes {
            if !n.shutdown.is_cancelled() {
                let ok = n
                    .replicas
                    .wait_applied(image.offset(), Instant::now() + STEP)
                    .await;
                assert!(ok, "node {} applied the image", n.id.get());
            }
        }
    }

    /// Stops node `id` (its fetcher too) and makes it unreachable.
    pub async fn stop(&self, id: i32) {
        let n = self.node(id);
        self.leaders.remove(n.id);
        n.replicas.shutdown().await.expect("shutdown");
        n.shutdown.cancel();
    }

    /// The bytes of partition t-0's first segment on node `id`.
    pub fn segment_bytes(&self, id: i32) -> Vec<u8> {
        std::fs::read(
            self.node(id)
                .dir
                .join("t-0")
                .join("00000000000000000000.log"),
        )
        .expect("segment")
    }
}

/// Polls `cond` until it holds.
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + STEP;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

pub async fn in_time<T>(f: impl std::future::Future<Output = T>) -> T {
    timeout(STEP, f).await.expect("in time")
}
