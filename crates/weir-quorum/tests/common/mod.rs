//! A three-voter quorum on loopback sockets in temporary directories.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use weir_metadata::{MetadataImage, MetadataJournal, MetadataRecord};
use weir_protocol::messages::{ConfigRecord, TopicRecord};
use weir_protocol::Uuid;
use weir_quorum::{Quorum, QuorumConfig};
use weir_types::NodeId;

/// How long any wait in these tests may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(15);

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            std::env::var("RUST_LOG").unwrap_or_else(|_| "weir_quorum=info,openraft=warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Three voters: their addresses, directories and (when running) nodes.
pub struct Cluster {
    pub dirs: tempfile::TempDir,
    pub addrs: BTreeMap<NodeId, SocketAddr>,
    pub nodes: BTreeMap<NodeId, Quorum>,
    pub snapshot_threshold: u64,
    pub max_frame_bytes: usize,
}

impl Cluster {
    /// Binds three listeners on port 0 and starts a node on each.
    pub async fn start(n: i32, snapshot_threshold: u64) -> Cluster {
        Cluster::start_with(n, snapshot_threshold, 32 << 20).await
    }

    /// [`Cluster::start`] with a frame cap.
    pub async fn start_with(n: i32, snapshot_threshold: u64, max_frame_bytes: usize) -> Cluster {
        let (mut c, pending) = Cluster::bind(n, snapshot_threshold, max_frame_bytes).await;
        for (id, l) in pending {
            let q = Quorum::start(c.config(id), l).await.unwrap();
            c.nodes.insert(id, q);
        }
        c
    }

    /// Binds `n` listeners and starts nothing: returns the listeners to start nodes on.
    pub async fn bind(
        n: i32,
        snapshot_threshold: u64,
        max_frame_bytes: usize,
    ) -> (Cluster, BTreeMap<NodeId, TcpListener>) {
        init_tracing();
        let mut listeners = BTreeMap::new();
        let mut addrs = BTreeMap::new();
        for id in 1..=n {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            addrs.insert(NodeId(id), l.local_addr().unwrap());
            listeners.insert(NodeId(id), l);
        }
        let c = Cluster {
            dirs: tempfile::tempdir().unwrap(),
            addrs,
            nodes: BTreeMap::new(),
            snapshot_threshold,
            max_frame_bytes,
        };
        (c, listeners)
    }

    /// Starts node `id` for the first time on its bound listener.
    pub async fn start_node(&mut self, id: NodeId, listener: TcpListener) {
        let q = Quorum::start(self.config(id), listener).await.unwrap();
        self.nodes.insert(id, q);
    }

    pub fn dir(&self, id: NodeId) -> PathBuf {
        self.dirs.path().join(format!("node-{id}"))
    }

    pub fn config(&self, id: NodeId) -> QuorumConfig {
        let voters = self
            .addrs
            .iter()
            .map(|(i, a)| (*i, a.to_string()))
            .collect();
        let mut c = QuorumConfig::new(id, voters, self.dir(id));
        c.election_timeout_min = Duration::from_millis(300);
        c.election_timeout_max = Duration::from_millis(600);
        c.heartbeat_interval = Duration::from_millis(50);
        c.snapshot_threshold = self.snapshot_threshold;
        c.max_frame_bytes = self.max_frame_bytes;
        c
    }

    /// Starts node `id` (not a voter) as a learner on a new port-0 listener, over
    /// its directory (kept from an earlier run, if any).
    pub async fn start_learner(&mut self, id: NodeId) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = self.config(id);
        config.learner_address = Some(addr.to_string());
        let q = Quorum::start(config, listener).await.unwrap();
        self.nodes.insert(id, q);
        addr
    }

    /// Waits until node `on` sees `learner` among the learners of the membership.
    pub async fn wait_learner(&self, on: NodeId, learner: NodeId) {
        let started = Instant::now();
        loop {
            let (_, learners) = self.nodes[&on].membership();
            if learners.contains(&learner) {
                return;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "{learner} not a learner on {on}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Appends `records` through whichever voter leads, retrying across leader
    /// changes.
    pub async fn append(&self, records: Vec<MetadataRecord>) -> Arc<MetadataImage> {
        let started = Instant::now();
        loop {
            let leader = self.leader().await;
            match self.nodes[&leader]
                .journal()
                .append_async(records.clone())
                .await
            {
                Ok(image) => return image,
                Err(weir_metadata::MetadataError::NotController { .. })
                    if started.elapsed() < DEADLINE => {}
                Err(e) => panic!("append: {e}"),
            }
        }
    }

    /// Restarts node `id` on its old address and directory.
    pub async fn restart(&mut self, id: NodeId) {
        let addr = self.addrs[&id];
        let started = Instant::now();
        let listener = loop {
            match TcpListener::bind(addr).await {
                Ok(l) => break l,
                Err(e) if started.elapsed() < DEADLINE => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("rebinding {addr}: {e}"),
            }
        };
        let q = Quorum::start(self.config(id), listener).await.unwrap();
        self.nodes.insert(id, q);
    }

    pub async fn stop(&mut self, id: NodeId) {
        if let Some(q) = self.nodes.remove(&id) {
            q.shutdown().await;
        }
    }

    /// Waits until every running node names the same active controller, and returns it.
    pub async fn leader(&self) -> NodeId {
        let started = Instant::now();
        loop {
            let seen: Vec<Option<NodeId>> = self.nodes.values().map(|q| q.leader()).collect();
            if let Some(Some(l)) = seen.first() {
                if seen.iter().all(|s| *s == Some(*l)) && self.nodes.contains_key(l) {
                    return *l;
                }
            }
            assert!(started.elapsed() < DEADLINE, "no agreed leader: {seen:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every running node's image reaches `offset`.
    pub async fn converged(&self, offset: i64) -> Arc<MetadataImage> {
        let started = Instant::now();
        loop {
            let images: Vec<Arc<MetadataImage>> = self.nodes.values().map(|q| q.image()).collect();
            if images.iter().all(|i| i.offset().get() >= offset) {
                return images[0].clone();
            }
            let offsets: Vec<i64> = images.iter().map(|i| i.offset().get()).collect();
            assert!(
                started.elapsed() < DEADLINE,
                "images stuck at {offsets:?}, want {offset}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Appends one change creating topic `name` through the leader; returns the image.
    pub async fn create_topic(&self, name: &str, n: u32) -> Arc<MetadataImage> {
        let started = Instant::now();
        loop {
            let leader = self.leader().await;
            match self.nodes[&leader]
                .journal()
                .append_async(topic_change(name, n))
                .await
            {
                Ok(image) => return image,
                // A leader change in between: find the new one.
                Err(weir_metadata::MetadataError::NotController { .. })
                    if started.elapsed() < DEADLINE => {}
                Err(e) => panic!("append of {name}: {e}"),
            }
        }
    }

    pub async fn shutdown(mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.stop(id).await;
        }
    }
}

/// The records of a change creating topic `name` (id from `n`) with a config.
pub fn topic_change(name: &str, n: u32) -> Vec<MetadataRecord> {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&n.to_be_bytes());
    id[15] = 1;
    vec![
        MetadataRecord::Topic(TopicRecord {
            name: name.into(),
            topic_id: Uuid(id),
        }),
        MetadataRecord::Config(ConfigRecord {
            resource_type: 2,
            resource_name: name.into(),
            name: "retention.ms".into(),
            value: Some(n.to_string()),
        }),
    ]
}

/// The image without its provenance time (equal content and offset).
pub fn same_image(a: &MetadataImage, b: &MetadataImage) -> bool {
    a == b
}

pub fn journal_image(q: &Quorum) -> Arc<MetadataImage> {
    q.journal().image()
}
