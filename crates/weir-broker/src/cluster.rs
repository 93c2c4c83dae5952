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

/// Starts the controller: over the local metadata log on a single node, over the
/// Raft quorum bound to `controller_socket` otherwise.
pub(crate) async fn start_control_plane(
    config: &BrokerConfig,
    data_dir: PathBuf,
    controller_socket: Option<TcpListener>,
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
    if !config.roles().broker {
        return Err(BrokerError::Unsupported(
            "a controller-only node (process.roles=controller) is not supported yet: give \
             every node both roles (process.roles=broker,controller) and a client listener"
                .into(),
        ));
    }
    let socket = match (config.roles().controller, controller_socket) {
        (true, Some(socket)) => socket,
        _ => {
            return Err(BrokerError::Unsupported(
                "a broker-only node (process.roles=broker) is not supported yet: give every \
                 node the controller role and a CONTROLLER listener"
                    .into(),
            ))
        }
    };
    let quorum = Quorum::start(quorum_config(config, data_dir), socket)
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
