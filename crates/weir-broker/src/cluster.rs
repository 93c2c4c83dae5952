//! What a node of a replicated cluster runs besides the single-node machinery.
//!
//! A single node commits metadata to its own log and is always the active
//! controller. A node named in `controller.quorum.voters` instead joins the Raft
//! quorum (`weir-quorum`) on its controller listener: the quorum's leader is the
//! active controller, every node applies the committed metadata, and a controller
//! handle on any node forwards to the active one. The broker half then registers
//! and heartbeats ([`BrokerLifecycle`]), follows its leaders with replica fetchers,
//! and sends ISR changes to the controller ([`ControllerIsr`]). This module builds
//! those pieces from the config; `broker.rs` orders their start and stop.

use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use weir_metadata::controller::AlterPartition;
use weir_metadata::{
    BrokerLifecycle, BrokerStatus, Controller, ControllerConfig, LifecycleConfig, MetadataJournal,
};
use weir_quorum::{Quorum, QuorumConfig};
use weir_types::{ErrorCode, LeaderEpoch, NodeId};

use crate::config::BrokerConfig;
use crate::replica::{AlterIsr, BoxFuture, IsrChannel, IsrUpdate, ReplicaManager};
use crate::BrokerError;

/// The controller side of a node: the handle every component uses, and the quorum
/// under it on a cluster node.
pub(crate) struct ControlPlane {
    /// The controller handle (local or forwarding).
    pub(crate) controller: Controller,
    /// The Raft quorum; `None` on a single node.
    pub(crate) quorum: Option<Quorum>,
}

/// Where a broker-only node receives the metadata log.
///
/// Kafka's broker-only nodes fetch the metadata log from the controllers, so they
/// need no listener for it; openraft's leader pushes the log to learners instead.
/// Rather than a new listener name (Kafka refuses a controller listener on a
/// broker-only node, and its configs would need one more entry per broker), the
/// node binds an ephemeral port on the host of its inter-broker listener — the
/// interface other cluster nodes already reach it on — and hands the address to
/// the leader each time it joins, so a new port after a restart is fine. The host
/// it advertises is the inter-broker listener's advertised one, else the bound IP.
#[derive(Debug)]
pub(crate) struct LearnerListener {
    /// The bound socket, served by the quorum's controller-plane server.
    pub(crate) socket: TcpListener,
    /// `host:port` the leader dials.
    pub(crate) address: String,
}

impl LearnerListener {
    /// Binds the learner's listener for `config`, advertised per `endpoints` (the
    /// node's advertised client endpoints).
    pub(crate) async fn bind(
        config: &BrokerConfig,
        endpoints: &[crate::Endpoint],
    ) -> Result<LearnerListener, BrokerError> {
        let name = config.inter_broker_listener_name();
        let bind_host = config
            .client_listeners()
            .find(|l| l.name == name)
            .or_else(|| config.client_listeners().next())
            .map_or("127.0.0.1", |l| l.bind_host())
            .to_owned();
        let bind_error = |source| BrokerError::Bind {
            listener: format!("metadata learner listener on {bind_host}:0"),
            source,
        };
        let socket = TcpListener::bind((bind_host.as_str(), 0))
            .await
            .map_err(bind_error)?;
        let local = socket.local_addr().map_err(bind_error)?;
        let advertised = endpoints
            .iter()
            .find(|e| e.listener == name)
            .map(|e| e.host.clone())
            .filter(|h| !matches!(h.as_str(), "" | "0.0.0.0" | "::"));
        let host = advertised.unwrap_or_else(|| local.ip().to_string());
        let address = if host.contains(':') {
            format!("[{host}]:{}", local.port())
        } else {
            format!("{host}:{}", local.port())
        };
        tracing::info!(%local, %address, "metadata learner listener bound");
        Ok(LearnerListener { socket, address })
    }
}

/// How this node takes part in the quorum: the controller listener of a voter, or
/// the listener of a learner.
#[derive(Debug)]
pub(crate) enum QuorumSocket {
    /// A voter's controller listener.
    Voter(TcpListener),
    /// A broker-only node's learner listener.
    Learner(LearnerListener),
}

/// The controller settings of `config`, registering `listeners` (used on a single
/// node only; cluster brokers register through their lifecycle).
pub(crate) fn controller_config(
    config: &BrokerConfig,
    listeners: Vec<weir_metadata::Endpoint>,
) -> ControllerConfig {
    ControllerConfig {
        node_id: config.node_id,
        num_partitions: config.num_partitions,
        default_replication_factor: config.default_replication_factor,
        delete_topic_enable: config.delete_topic_enable,
        listeners,
        rack: config.broker_rack.clone(),
        cluster_id: config.cluster_id.clone(),
        min_insync_replicas: config.min_insync_replicas,
        auto_leader_rebalance_enable: config.auto_leader_rebalance_enable,
        leader_imbalance_check_interval: Duration::from_secs(
            config.leader_imbalance_check_interval_seconds.max(1),
        ),
        leader_imbalance_per_broker_percentage: config.leader_imbalance_per_broker_percentage,
        ..ControllerConfig::default()
    }
}

/// Starts the controller: over the local metadata log on a single node, over the
/// Raft quorum on `socket` otherwise (as a voter or a learner).
pub(crate) async fn start_control_plane(
    config: &BrokerConfig,
    data_dir: PathBuf,
    socket: Option<QuorumSocket>,
    mut controller_config: ControllerConfig,
) -> Result<ControlPlane, BrokerError> {
    if config.is_single_node() {
        let controller = blocking(move || Controller::open(&data_dir, controller_config))
            .await?
            .map_err(BrokerError::Metadata)?;
        return Ok(ControlPlane {
            controller,
            quorum: None,
        });
    }
    let mut quorum_config = quorum_config(config, data_dir);
    let socket = match socket {
        Some(QuorumSocket::Voter(socket)) if config.roles().controller => socket,
        Some(QuorumSocket::Learner(learner)) if !config.roles().controller => {
            quorum_config.learner_address = Some(learner.address);
            learner.socket
        }
        _ => {
            return Err(BrokerError::Unsupported(format!(
                "process.roles={}: a voter needs its controller listener and a broker-only \
                 node its learner listener",
                config.roles()
            )))
        }
    };
    let quorum = Quorum::start(quorum_config, socket)
        .await
        .map_err(BrokerError::Quorum)?;
    // In a cluster the broker registers itself through `BrokerLifecycle`, like any
    // other broker; the controller must not register it a second time.
    controller_config.listeners = Vec::new();
    controller_config.session_timeout = Duration::from_millis(config.broker_session_timeout_ms);
    let journal: Box<dyn MetadataJournal> = Box::new(quorum.journal());
    let transport = Some(quorum.transport());
    // Blocking: an already-active controller bootstraps through the quorum.
    let controller = blocking(move || Controller::start(journal, transport, controller_config))
        .await?
        .map_err(BrokerError::Metadata)?;
    quorum.set_forwarded_handler(controller.forwarded_handler());
    Ok(ControlPlane {
        controller,
        quorum: Some(quorum),
    })
}

/// The quorum settings of `config`: Kafka's election timeout as the lower bound of
/// the randomized range, twice it as the upper.
fn quorum_config(config: &BrokerConfig, data_dir: PathBuf) -> QuorumConfig {
    let voters = config
        .controller_quorum_voters
        .iter()
        .map(|(id, address)| (*id, address.to_string()))
        .collect();
    let mut quorum = QuorumConfig::new(config.node_id, voters, data_dir);
    quorum.cluster_id.clone_from(&config.cluster_id);
    let election = Duration::from_millis(config.controller_quorum_election_timeout_ms.max(1));
    quorum.election_timeout_min = election;
    quorum.election_timeout_max = election * 2;
    quorum.heartbeat_interval = quorum.heartbeat_interval.min(election / 3);
    quorum
}

/// Starts registering and heartbeating as a broker of the cluster, vouching for a
/// clean previous shutdown with `previous_broker_epoch` (-1 after a crash).
pub(crate) fn start_lifecycle(
    config: &BrokerConfig,
    controller: &Controller,
    listeners: Vec<weir_metadata::Endpoint>,
    previous_broker_epoch: i64,
) -> BrokerLifecycle {
    let mut lifecycle = LifecycleConfig::new(config.node_id, listeners, config.broker_rack.clone());
    lifecycle.heartbeat_interval = Duration::from_millis(config.broker_heartbeat_interval_ms);
    lifecycle.session_timeout = Duration::from_millis(config.broker_session_timeout_ms);
    lifecycle.previous_broker_epoch = previous_broker_epoch;
    BrokerLifecycle::start(controller.clone(), lifecycle, controller.subscribe())
}

/// Keeps the replica manager's fencing in step with the broker's registration: a
/// fenced broker (new, or cut off from the controller) takes no writes as leader.
/// The broker epoch follows too, for the clean-shutdown marker.
pub(crate) fn follow_fencing(replicas: &ReplicaManager, mut status: watch::Receiver<BrokerStatus>) {
    let replicas = replicas.clone();
    tokio::spawn(async move {
        loop {
            let BrokerStatus {
                fenced,
                broker_epoch,
                ..
            } = *status.borrow_and_update();
            replicas.set_broker_epoch(broker_epoch);
            replicas.set_fenced(fenced);
            if status.changed().await.is_err() {
                return;
            }
        }
    });
}

/// ISR changes proposed by this broker's partitions, sent to the controller as this
/// broker in its current epoch.
pub(crate) struct ControllerIsr {
    /// The controller handle (forwards to the active controller).
    pub(crate) controller: Controller,
    /// This broker.
    pub(crate) node: NodeId,
    /// Its registration, for the broker epoch.
    pub(crate) status: watch::Receiver<BrokerStatus>,
}

impl IsrChannel for ControllerIsr {
    fn alter_partition(
        &self,
        request: AlterIsr,
    ) -> BoxFuture<'static, Result<IsrUpdate, ErrorCode>> {
        let controller = self.controller.clone();
        let change = AlterPartition {
            broker_id: self.node,
            broker_epoch: self.status.borrow().broker_epoch,
            topic_id: request.topic_id,
            partition: request.partition,
            leader_epoch: request.leader_epoch.get(),
            partition_epoch: request.partition_epoch,
            new_isr: request.new_isr.iter().map(|n| n.get()).collect(),
        };
        Box::pin(async move {
            let state = controller
                .alter_partition(change)
                .await
                .map_err(|e| e.code)?;
            Ok(IsrUpdate {
                isr: state.isr.into_iter().map(NodeId).collect(),
                leader_epoch: LeaderEpoch(state.leader_epoch),
                partition_epoch: state.partition_epoch,
            })
        })
    }
}

/// Runs blocking startup work (log recovery, a first metadata commit) off the async
/// workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, BrokerError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(BrokerError::Startup)
}
