//! A multi-process cluster for tests: N `weir server` children on 127.0.0.1, each
//! with both roles (or the roles [`TestCluster::start_roles`] gives them), killed,
//! stopped, restarted and partitioned by node id.
//!
//! Ports are found by binding port 0 (then released and handed to the nodes), and
//! stay fixed for the cluster's life, so a restarted node comes back where the
//! others expect it. Everything is torn down on drop: every child is SIGKILLed by
//! PID, the proxies stop, and the temp directory goes.
//!
//! # Partitions
//!
//! [`TestCluster::start_proxied`] routes every node-to-node link through its own
//! [`Proxy`], one per direction and plane, so [`TestCluster::isolate`] can cut a node
//! off from the others in both directions while the test (the client) still
//! reaches every node directly:
//! - Controller plane: node N's `controller.quorum.voters` lists every other voter
//!   M at the port of the proxy N->M (its own entry is its real controller port),
//!   so the voter lists differ per node. This needs the quorum to dial voters at the
//!   addresses of the local `controller.quorum.voters`, not at addresses replicated
//!   in the Raft membership.
//! - Data plane: node M has a listener `LINKn` for every node N, advertised at the
//!   port of the proxy N->M, and node N sets `inter.broker.listener.name=LINKn`, so
//!   its followers fetch from M through that proxy. This needs the replica fetcher
//!   to pick the leader's endpoint by `inter.broker.listener.name`.
//! - Clients: `PLAINTEXT` is advertised at its real port on every node.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use weir_client::admin::TopicDescription;
use weir_client::consumer::IsolationLevel;
use weir_client::{
    Admin, ClientConfig, Connection, ConnectionConfig, Consumer, ConsumerConfig, OffsetSpec,
    TopicPartition,
};
use weir_protocol::messages::list_offsets::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use weir_protocol::messages::metadata::{MetadataRequest, MetadataRequestTopic};
use weir_protocol::messages::produce::{PartitionProduceData, TopicProduceData};
use weir_protocol::messages::ProduceRequest;
use weir_types::NodeId;

use super::proxy::Proxy;
use super::{run, Output, Server, CONTROLLER_READY};

/// Settings that make failover take seconds rather than Kafka's defaults' tens.
pub(crate) const FAST: &[&str] = &[
    "broker.session.timeout.ms=3000",
    "broker.heartbeat.interval.ms=500",
    "replica.lag.time.max.ms=5000",
    "replica.fetch.wait.max.ms=200",
    "replica.fetch.backoff.ms=200",
];

/// How long the cluster gets to settle after a fault (elect a leader, ...); the
/// issue asks for "within seconds", with room for a loaded machine.
pub(crate) const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The plane a proxied link carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Plane {
    /// Raft and forwarded controller requests.
    Controller,
    /// Follower fetches.
    Data,
}

/// What a node runs (`process.roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Broker and controller quorum voter: the default.
    Combined,
    /// Broker only: not a voter, no controller listener.
    Broker,
    /// Controller only: a voter with no client listener.
    Controller,
}

impl Role {
    /// Hosts partitions and serves clients.
    pub(crate) fn is_broker(self) -> bool {
        self != Role::Controller
    }

    /// Votes in the controller quorum.
    pub(crate) fn is_controller(self) -> bool {
        self != Role::Broker
    }
}

/// One node: its fixed ports and arguments, and its process while it runs.
pub(crate) struct ClusterNode {
    /// `node.id`, 1..=N.
    pub(crate) id: i32,
    /// What it runs.
    pub(crate) role: Role,
    /// The client listener's real port.
    pub(crate) client_port: u16,
    /// The controller listener's real port.
    pub(crate) controller_port: u16,
    /// The data directory, kept across restarts.
    pub(crate) data_dir: PathBuf,
    /// `weir server` arguments, the same for every start.
    args: Vec<String>,
    /// The running process, if any.
    server: Option<Server>,
}

impl ClusterNode {
    /// `127.0.0.1:PORT` of the client listener.
    pub(crate) fn client_addr(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }
}

/// A cluster of `weir server` processes; see the module docs.
pub(crate) struct TestCluster {
    /// By id - 1. Dropped first: the children are killed before anything else goes.
    nodes: Vec<ClusterNode>,
    /// `(from, to, plane)` -> the proxy `from` dials to reach `to`.
    proxies: BTreeMap<(i32, i32, Plane), Proxy>,
    /// For the weir-client calls the harness makes (and tests may spawn on).
    runtime: tokio::runtime::Runtime,
    /// Holds every node's data; removed last.
    _dir: tempfile::TempDir,
}

/// Where [`free_ports`] looks: below Linux's ephemeral range (32768-60999), so no
/// outgoing connection or port-0 listener of another test can take a port between
/// the moment it is found free and the moment a node binds it (or binds it again
/// after a restart).
const PORT_RANGE: std::ops::Range<u32> = 20_000..32_000;

/// The next candidate port; starts at a place that depends on the process, so
/// test binaries run one after another do not walk the same ports.
static NEXT_PORT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// `n` distinct ports on 127.0.0.1 that were free when checked; see [`PORT_RANGE`].
pub(crate) fn free_ports(n: usize) -> Vec<u16> {
    use std::sync::atomic::Ordering;
    let span = PORT_RANGE.end - PORT_RANGE.start;
    let _ = NEXT_PORT.compare_exchange(
        0,
        std::process::id().wrapping_mul(7_919) % span + 1,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    let mut ports = Vec::with_capacity(n);
    for _ in 0..span {
        if ports.len() == n {
            break;
        }
        let port = PORT_RANGE.start + NEXT_PORT.fetch_add(1, Ordering::SeqCst) % span;
        let port = u16::try_from(port).expect("the range is below 65536");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            ports.push(port);
        }
    }
    assert_eq!(ports.len(), n, "not enough free ports in {PORT_RANGE:?}");
    ports
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl TestCluster {
    /// Starts `n` nodes, every link direct, with `overrides` (`key=value`) on each,
    /// and waits for every ready line.
    pub(crate) fn start(n: usize, overrides: &[&str]) -> TestCluster {
        TestCluster::launch(&vec![Role::Combined; n], false, overrides)
    }

    /// As [`TestCluster::start`], with every node-to-node link through a proxy, so
    /// [`TestCluster::isolate`] works.
    pub(crate) fn start_proxied(n: usize, overrides: &[&str]) -> TestCluster {
        TestCluster::launch(&vec![Role::Combined; n], true, overrides)
    }

    /// Starts one node per entry of `roles` (node N has `roles[N-1]`), every link
    /// direct; the voters are the nodes with the controller role.
    pub(crate) fn start_roles(roles: &[Role], overrides: &[&str]) -> TestCluster {
        TestCluster::launch(roles, false, overrides)
    }

    fn launch(roles: &[Role], proxied: bool, overrides: &[&str]) -> TestCluster {
        let n = roles.len();
        assert!(n >= 1, "a cluster has at least one node");
        assert!(
            !proxied || roles.iter().all(|r| *r == Role::Combined),
            "proxied clusters have combined nodes only"
        );
        assert!(roles.iter().any(|r| r.is_controller()), "no voter");
        let dir = tempfile::tempdir().expect("temp dir");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let ids: Vec<i32> = (1..=n)
            .map(|i| i32::try_from(i).expect("small n"))
            .collect();
        // Per node: client, controller, and (proxied) one LINK listener per node.
        let per_node = if proxied { 2 + n } else { 2 };
        let ports = free_ports(n * per_node);
        let port_of = |node: i32, slot: usize| ports[(node as usize - 1) * per_node + slot];
        let link_port = |from: i32, to: i32| port_of(to, 2 + from as usize - 1);

        let mut proxies = BTreeMap::new();
        if proxied {
            for &from in &ids {
                for &to in ids.iter().filter(|&&to| to != from) {
                    let controller = Proxy::start(addr(port_of(to, 1)));
                    proxies.insert((from, to, Plane::Controller), controller);
                    let data = Proxy::start(addr(link_port(from, to)));
                    proxies.insert((from, to, Plane::Data), data);
                }
            }
        }

        let mut nodes = Vec::with_capacity(n);
        let role_of = |id: i32| roles[id as usize - 1];
        for &id in &ids {
            let voters: Vec<String> = ids
                .iter()
                .filter(|&&v| role_of(v).is_controller())
                .map(|&v| {
                    let port = match proxies.get(&(id, v, Plane::Controller)) {
                        Some(proxy) => proxy.addr().port(),
                        None => port_of(v, 1),
                    };
                    format!("{v}@127.0.0.1:{port}")
                })
                .collect();
            let data_dir = dir.path().join(format!("node-{id}"));
            let role = role_of(id);
            let mut args = vec![
                "--node-id".to_owned(),
                id.to_string(),
                "--data-dir".to_owned(),
                data_dir.display().to_string(),
                "--voters".to_owned(),
                voters.join(","),
            ];
            if role.is_controller() {
                args.extend([
                    "--controller-listen".to_owned(),
                    format!("127.0.0.1:{}", port_of(id, 1)),
                ]);
            }
            match role {
                Role::Combined => {}
                Role::Broker => args.extend(["--process-roles".to_owned(), "broker".to_owned()]),
                Role::Controller => {
                    args.extend(["--process-roles".to_owned(), "controller".to_owned()])
                }
            }
            // A controller-only node has no client listener.
            if role.is_broker() && proxied {
                let mut listeners = vec![format!("PLAINTEXT://127.0.0.1:{}", port_of(id, 0))];
                let mut advertised = listeners.clone();
                for &from in &ids {
                    listeners.push(format!("LINK{from}://127.0.0.1:{}", link_port(from, id)));
                    let port = match proxies.get(&(from, id, Plane::Data)) {
                        Some(proxy) => proxy.addr().port(),
                        None => link_port(from, id),
                    };
                    advertised.push(format!("LINK{from}://127.0.0.1:{port}"));
                }
                args.extend([
                    "--listen".to_owned(),
                    listeners.join(","),
                    "--advertise".to_owned(),
                    advertised.join(","),
                    "--override".to_owned(),
                    format!("inter.broker.listener.name=LINK{id}"),
                ]);
            } else if role.is_broker() {
                args.extend([
                    "--listen".to_owned(),
                    format!("127.0.0.1:{}", port_of(id, 0)),
                ]);
            }
            for o in overrides {
                args.extend(["--override".to_owned(), (*o).to_owned()]);
            }
            nodes.push(ClusterNode {
                id,
                role,
                client_port: port_of(id, 0),
                controller_port: port_of(id, 1),
                data_dir,
                args,
                server: None,
            });
        }
        let mut cluster = TestCluster {
            nodes,
            proxies,
            runtime,
            _dir: dir,
        };
        // Spawn all before waiting: a quorum node may wait for its peers.
        for node in &mut cluster.nodes {
            node.server = Some(Server::spawn_args(&node.args));
        }
        for node in &mut cluster.nodes {
            let role = node.role;
            if let Some(server) = node.server.as_mut() {
                wait_ready(server, role);
            }
        }
        cluster.wait_for_brokers(roles.iter().filter(|r| r.is_broker()).count());
        cluster
    }

    /// Waits until `n` brokers are registered and unfenced (listening is not
    /// enough: a topic with replication factor `n` needs `n` live brokers).
    pub(crate) fn wait_for_brokers(&self, n: usize) {
        self.wait_until(&format!("{n} live brokers"), SETTLE_TIMEOUT, |c| {
            let admin = c.admin_of(&[]).ok()?;
            let cluster = c.block_on(admin.describe_cluster()).ok()?;
            (cluster.brokers.len() == n).then_some(())
        });
    }

    /// The node with `id`.
    pub(crate) fn node(&self, id: i32) -> &ClusterNode {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn node_mut(&mut self, id: i32) -> &mut ClusterNode {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// Every node id.
    pub(crate) fn ids(&self) -> Vec<i32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// The client addresses of the running brokers, comma-separated.
    pub(crate) fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .filter(|n| n.server.is_some() && n.role.is_broker())
            .map(ClusterNode::client_addr)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The runtime the harness's client calls run on; tests spawn producers on it.
    pub(crate) fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    /// True while node `id`'s process runs.
    pub(crate) fn is_running(&self, id: i32) -> bool {
        self.node(id).server.is_some()
    }

    /// SIGKILL: no flush, no controlled shutdown.
    pub(crate) fn kill_9(&mut self, id: i32) {
        if let Some(server) = self.node_mut(id).server.take() {
            server.kill_9();
        }
    }

    /// SIGTERM, then waits for a clean exit (panics on a failure exit).
    pub(crate) fn stop(&mut self, id: i32) {
        if let Some(mut server) = self.node_mut(id).server.take() {
            server.signal("TERM");
            let status = server.wait_exit();
            assert!(
                status.success(),
                "node {id} exited with {status}:\n{}",
                server.stderr()
            );
        }
    }

    /// Starts node `id` again with the same ports and data, and waits until ready.
    pub(crate) fn restart(&mut self, id: i32) {
        let node = self.node_mut(id);
        assert!(node.server.is_none(), "node {id} still runs");
        let mut server = Server::spawn_args(&node.args);
        wait_ready(&mut server, node.role);
        node.server = Some(server);
    }

    /// The running node `id`'s stderr so far, for failure messages.
    pub(crate) fn log_of(&mut self, id: i32) -> String {
        self.node_mut(id)
            .server
            .as_mut()
            .map_or_else(|| "(not running)".to_owned(), Server::log_text)
    }

    /// The proxy `from` dials to reach `to` on `plane` (proxied clusters only).
    pub(crate) fn proxy(&self, from: i32, to: i32, plane: Plane) -> &Proxy {
        self.proxies
            .get(&(from, to, plane))
            .unwrap_or_else(|| panic!("no proxy {from}->{to} {plane:?}: use start_proxied"))
    }

    /// Cuts node `id` off from every other node, both ways, both planes; clients
    /// still reach it.
    pub(crate) fn isolate(&self, id: i32) {
        assert!(!self.proxies.is_empty(), "isolate needs start_proxied");
        for ((from, to, _), proxy) in &self.proxies {
            if *from == id || *to == id {
                proxy.blackhole();
            }
        }
    }

    /// Undoes [`TestCluster::isolate`].
    pub(crate) fn heal(&self, id: i32) {
        for ((from, to, _), proxy) in &self.proxies {
            if *from == id || *to == id {
                proxy.heal();
            }
        }
    }

    /// Runs a future on the harness runtime.
    pub(crate) fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// An admin client bootstrapped from `nodes` only (all running nodes when
    /// empty): asking an isolated node shows what it believes.
    pub(crate) fn admin_of(&self, nodes: &[i32]) -> weir_client::Result<Admin> {
        let bootstrap = if nodes.is_empty() {
            self.bootstrap()
        } else {
            nodes
                .iter()
                .map(|&id| self.node(id).client_addr())
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut config = ClientConfig::new(&bootstrap);
        config.api_timeout = Duration::from_secs(5);
        config.connection.request_timeout = Duration::from_secs(5);
        self.block_on(Admin::new(config))
    }

    /// The topic as the running nodes describe it, or as the first of `ask` that
    /// answers does. Asked directly, not through an admin client: a client
    /// bootstrapped from `ask` would learn every broker and could send the
    /// request to any of them, and an isolated or restarted node answers from its
    /// own, possibly stale, metadata.
    pub(crate) fn describe(&self, topic: &str, ask: &[i32]) -> Option<TopicDescription> {
        if !ask.is_empty() {
            return ask.iter().find_map(|&id| self.describe_on(id, topic));
        }
        let admin = self.admin_of(ask).ok()?;
        let results = self
            .block_on(admin.describe_topics(&[topic.to_owned()]))
            .ok()?;
        results.into_iter().next().and_then(|(_, r)| r.ok())
    }

    /// The topic per a Metadata request sent to node `id` alone.
    pub(crate) fn describe_on(&self, id: i32, topic: &str) -> Option<TopicDescription> {
        let addr = self.node(id).client_addr();
        let request = MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                topic_id: weir_protocol::Uuid::ZERO,
                name: Some(topic.to_owned()),
            }]),
            ..Default::default()
        };
        let response = self.block_on(async {
            let config = ConnectionConfig {
                request_timeout: Duration::from_secs(5),
                ..ConnectionConfig::default()
            };
            let conn = Connection::connect(&addr, config).await.ok()?;
            conn.send(request).await.ok()
        })?;
        let t = response.topics.into_iter().next()?;
        weir_client::admin::describe_metadata_topic(t).1.ok()
    }

    /// Every record of `tp` from the beginning up to its end offset (ListOffsets
    /// latest at `isolation`), once that end is at least `at_least`: `(offset,
    /// value, leader epoch)`, read by a consumer at the same isolation level.
    pub(crate) fn read_partition(
        &self,
        tp: &TopicPartition,
        at_least: i64,
        isolation: IsolationLevel,
    ) -> Vec<(i64, String, Option<i32>)> {
        let end = self.wait_until("the partition's end offset", SETTLE_TIMEOUT, |c| {
            let admin = c.admin_of(&[]).ok()?;
            let listed = c
                .block_on(admin.list_offsets(&[(tp.clone(), OffsetSpec::Latest)], isolation))
                .ok()?;
            let end = listed.into_iter().next()?.1.ok()?.offset;
            (end >= at_least).then_some(end)
        });
        let mut config = ConsumerConfig::new(&self.bootstrap());
        config.isolation_level = isolation;
        self.block_on(async {
            let mut consumer = Consumer::new(config).await.expect("consumer");
            consumer.assign([tp.clone()]);
            consumer
                .seek_to_beginning(std::slice::from_ref(tp))
                .expect("seek");
            let mut out: Vec<(i64, String, Option<i32>)> = Vec::new();
            let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
            while out.last().map_or(0, |(o, _, _)| o + 1) < end {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "read {} records, end offset {end}",
                    out.len()
                );
                for r in consumer
                    .poll(Duration::from_millis(500))
                    .await
                    .unwrap_or_default()
                {
                    let value = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default());
                    out.push((r.offset, value.into_owned(), r.leader_epoch));
                }
            }
            out
        })
    }

    /// Waits until every running node, asked directly, names the same leader and
    /// leader epoch for `topic`-`partition` with `member` in its ISR: after a
    /// heal or a restart, until then a client may still be sent to a node that
    /// answers from the metadata it had before.
    pub(crate) fn wait_converged(&self, topic: &str, partition: i32, member: i32) {
        let what = format!("every node agrees on {topic}-{partition} with {member} in the ISR");
        self.wait_until(&what, SETTLE_TIMEOUT, |c| {
            let running = c
                .ids()
                .into_iter()
                .filter(|&id| c.is_running(id) && c.node(id).role.is_broker());
            let views: Vec<(Option<NodeId>, i32, bool)> = running
                .map(|id| {
                    let d = c.describe_on(id, topic)?;
                    let p = d
                        .partitions
                        .into_iter()
                        .find(|p| p.partition == partition)?;
                    Some((p.leader, p.leader_epoch, p.isr.contains(&NodeId(member))))
                })
                .collect::<Option<_>>()?;
            let first = *views.first()?;
            (first.0.is_some() && first.2 && views.iter().all(|v| *v == first)).then_some(())
        });
    }

    /// The leader of `topic`-`partition` per Metadata from the running nodes.
    pub(crate) fn leader_of(&self, topic: &str, partition: i32) -> Option<i32> {
        let description = self.describe(topic, &[])?;
        let p = description
            .partitions
            .iter()
            .find(|p| p.partition == partition)?;
        p.leader.map(|l| l.get())
    }

    /// The ISR of `topic`-`partition` per Metadata from the running nodes.
    pub(crate) fn isr_of(&self, topic: &str, partition: i32) -> Vec<i32> {
        self.describe(topic, &[])
            .and_then(|d| d.partitions.into_iter().find(|p| p.partition == partition))
            .map(|p| p.isr.into_iter().map(|n| n.get()).collect())
            .unwrap_or_default()
    }

    /// The high watermark node `id` itself reports for `topic`-`partition`
    /// (ListOffsets latest, read uncommitted, sent to that node alone): what an
    /// isolated leader believes. `None` if it does not answer or is not the leader.
    pub(crate) fn high_watermark_on(&self, id: i32, topic: &str, partition: i32) -> Option<i64> {
        let addr = self.node(id).client_addr();
        let request = ListOffsetsRequest {
            replica_id: -1,
            isolation_level: 0,
            topics: vec![ListOffsetsTopic {
                name: topic.to_owned(),
                partitions: vec![ListOffsetsPartition {
                    partition_index: partition,
                    timestamp: -1,
                    ..Default::default()
                }],
            }],
            ..Default::default()
        };
        self.block_on(async {
            let config = ConnectionConfig {
                request_timeout: Duration::from_secs(5),
                ..ConnectionConfig::default()
            };
            let conn = Connection::connect(&addr, config).await.ok()?;
            let response = conn.send(request).await.ok()?;
            let p = response.topics.first()?.partitions.first()?;
            (p.error_code == 0).then_some(p.offset)
        })
    }

    /// Sends one acks=all produce of `value` to node `id` alone (no metadata, no
    /// retries: what a client stuck on that node gets) and returns the partition's
    /// error code, or `None` when the node gave no answer within `timeout_ms` plus
    /// a margin.
    pub(crate) fn produce_on(
        &self,
        id: i32,
        topic: &str,
        partition: i32,
        value: &str,
        timeout_ms: i32,
    ) -> Option<i16> {
        let addr = self.node(id).client_addr();
        let mut batch = weir_protocol::records::BatchBuilder::new();
        batch
            .append(0, None, Some(value.as_bytes()), &[])
            .expect("append a record");
        let request = ProduceRequest {
            transactional_id: None,
            acks: -1,
            timeout_ms,
            topic_data: vec![TopicProduceData {
                name: topic.to_owned(),
                partition_data: vec![PartitionProduceData {
                    index: partition,
                    records: Some(batch.build().expect("build a batch")),
                }],
            }],
        };
        self.block_on(async {
            let config = ConnectionConfig {
                request_timeout: Duration::from_millis(u64::try_from(timeout_ms).ok()? + 5_000),
                ..ConnectionConfig::default()
            };
            let conn = Connection::connect(&addr, config).await.ok()?;
            let response = conn.send(request).await.ok()?;
            Some(
                response
                    .responses
                    .first()?
                    .partition_responses
                    .first()?
                    .error_code,
            )
        })
    }

    /// The process id of node `id` while it runs.
    pub(crate) fn pid(&self, id: i32) -> Option<u32> {
        self.node(id).server.as_ref().map(Server::id)
    }

    /// The directory holding every node's data.
    pub(crate) fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// The active controller per DescribeCluster from the running nodes.
    pub(crate) fn active_controller(&self) -> Option<i32> {
        let admin = self.admin_of(&[]).ok()?;
        let cluster = self.block_on(admin.describe_cluster()).ok()?;
        cluster.controller_id.map(|c| c.get())
    }

    /// Polls `probe` until it returns `Some`, or panics with `what` after `limit`.
    pub(crate) fn wait_until<T>(
        &self,
        what: &str,
        limit: Duration,
        mut probe: impl FnMut(&Self) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(value) = probe(self) {
                return value;
            }
            assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for a leader of `topic`-`partition` other than `not`.
    pub(crate) fn wait_for_leader(&self, topic: &str, partition: i32, not: Option<i32>) -> i32 {
        self.wait_until(
            &format!("a leader of {topic}-{partition} other than {not:?}"),
            SETTLE_TIMEOUT,
            |c| c.leader_of(topic, partition).filter(|l| Some(*l) != not),
        )
    }

    /// Runs `weir ARGS` against the running nodes.
    pub(crate) fn weir(&self, args: &[&str], stdin: &str) -> Output {
        let bootstrap = self.bootstrap();
        let mut args = args.to_vec();
        args.extend(["--bootstrap-server", bootstrap.as_str()]);
        run(&args, stdin)
    }
}

/// Waits for the ready line of a node with `role`: the broker's, or a
/// controller-only node's.
fn wait_ready(server: &mut Server, role: Role) {
    if role.is_broker() {
        server.wait_ready();
    } else {
        server.wait_for(CONTROLLER_READY);
    }
}

impl TestCluster {
    /// The active controller as the controller nodes' own logs last named it: each
    /// voter logs `active controller changed node=N active_controller=...` when its
    /// view changes. For clusters whose active controller is controller-only (no
    /// client listener, so DescribeCluster cannot name it). `None` until every
    /// running voter's latest line names the same running node.
    pub(crate) fn active_controller_from_logs(&mut self) -> Option<i32> {
        let mut seen = Vec::new();
        for node in &mut self.nodes {
            if !node.role.is_controller() {
                continue;
            }
            let Some(server) = node.server.as_mut() else {
                continue;
            };
            let text = server.log_text();
            let line = text
                .lines()
                .rev()
                .find(|l| l.contains("active controller changed"))?;
            let named = line
                .split("active_controller=Some(NodeId(")
                .nth(1)?
                .split(')')
                .next()?
                .parse::<i32>()
                .ok()?;
            seen.push(named);
        }
        let first = *seen.first()?;
        (seen.iter().all(|s| *s == first) && self.is_running(first)).then_some(first)
    }
}

impl Drop for TestCluster {
    /// When a test fails, every node's log goes to a file named on stderr: a
    /// fault test that fails once must leave enough to find out why.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let dir = std::env::temp_dir().join(format!("weir-cluster-logs-{}", std::process::id()));
        if std::fs::create_dir_all(&dir).is_err() {
            return;
        }
        for node in &mut self.nodes {
            if let Some(server) = node.server.as_mut() {
                let _ =
                    std::fs::write(dir.join(format!("node-{}.log", node.id)), server.log_text());
            }
        }
        eprintln!("cluster logs of the failed test: {}", dir.display());
    }
}
