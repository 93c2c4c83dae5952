//! A controller-only node (`process.roles=controller`): a voter of the controller
//! quorum and nothing else.
//!
//! Kafka's dedicated controllers keep the metadata log and run the active
//! controller while brokers do the data work, so a busy broker cannot slow an
//! election or a heartbeat. This node runs the Raft quorum on its controller
//! listener and the controller thread (which, when active, serves the requests the
//! brokers forward), and nothing of the broker: no client listener, no broker
//! registration (so Metadata and DescribeCluster never list it and placement never
//! picks it), no partitions, no group coordinator. Its data directory holds only
//! the metadata log.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::info;
use weir_metadata::Controller;
use weir_quorum::Quorum;

use crate::broker::bind_one;
use crate::cluster::{self, QuorumSocket};
use crate::config::BrokerConfig;
use crate::BrokerError;

/// A running controller-only node; see the module docs.
#[derive(Debug)]
pub struct ControllerNode {
    /// The settings.
    config: Arc<BrokerConfig>,
    /// The controller thread's handle; stopped before the quorum under it.
    controller: Controller,
    /// The Raft quorum on the controller listener; stopped last.
    quorum: Quorum,
    /// Where the controller listener is bound.
    local_addr: SocketAddr,
}

impl ControllerNode {
    /// Validates `config` (which must have the controller role only), binds the
    /// controller listener, and starts the quorum and the controller on it.
    pub async fn start(config: BrokerConfig) -> Result<ControllerNode, BrokerError> {
        config.validate()?;
        let roles = config.roles();
        if roles.broker || !roles.controller || config.is_single_node() {
            return Err(BrokerError::Unsupported(format!(
                "a controller node runs process.roles=controller in a quorum, not \
                 process.roles={roles}{}",
                if config.is_single_node() {
                    " without controller.quorum.voters"
                } else {
                    ""
                }
            )));
        }
        let Some(listener) = config.controller_listener() else {
            // validate() requires it for the controller role.
            return Err(BrokerError::Unsupported(
                "the controller role needs a controller listener".into(),
            ));
        };
        let bound = bind_one(listener).await?;
        let local_addr = bound.local_addr;
        let data_dir = config.log_dirs[0].clone();
        let plane = cluster::start_control_plane(
            &config,
            data_dir,
            Some(QuorumSocket::Voter(bound.socket)),
            cluster::controller_config(&config, Vec::new()),
        )
        .await?;
        let Some(quorum) = plane.quorum else {
            return Err(BrokerError::Unsupported(
                "a controller node needs the quorum".into(),
            ));
        };
        Ok(ControllerNode {
            config: Arc::new(config),
            controller: plane.controller,
            quorum,
            local_addr,
        })
    }

    /// The address of the controller listener.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The controller handle (tests ask it for the image and the active controller).
    pub fn controller(&self) -> &Controller {
        &self.controller
    }

    /// Serves until `shutdown` is cancelled, then stops the controller thread and the
    /// quorum. Logs `weir controller ready on ADDR` once serving: the line tests and
    /// scripts wait for, as the broker's ready line.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), BrokerError> {
        let node_id = self.config.node_id;
        info!(%node_id, "weir controller ready on {}", self.local_addr);
        shutdown.cancelled().await;
        info!(%node_id, "weir controller stopping");
        self.controller.shutdown().await;
        self.quorum.shutdown().await;
        info!(%node_id, "weir controller stopped");
        Ok(())
    }
}
