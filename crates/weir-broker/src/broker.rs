//! The broker as one value: configuration, bound listeners, and the service behind
//! them.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};
use weir_metadata::{BrokerLifecycle, Controller};
use weir_quorum::Quorum;
use weir_types::SystemClock;

use crate::api::{Api, ApiState, ProducerIds};
use crate::cluster::{self, blocking, LearnerListener, QuorumSocket};
use crate::config::BrokerConfig;
use crate::coordinator::{CoordinatorConfig, GroupCoordinator, ReplicaLog};
use crate::net::{self, ConnectionLimits, Service};
use crate::replica::{ReplicaConfig, ReplicaManager, TcpLeaderClient};
use crate::BrokerError;

/// An address clients are told to connect to (Metadata's broker endpoints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The listener name; a client is answered with the endpoint of the listener it
    /// connected through.
    pub listener: String,
    /// Host name or IP address.
    pub host: String,
    /// TCP port, never 0.
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.listener, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.listener, self.host, self.port)
        }
    }
}

/// A listener socket bound to its configured address.
#[derive(Debug)]
pub(crate) struct BoundListener {
    /// The listener's name from `listeners`.
    pub(crate) name: String,
    /// The socket, already listening, so the port is known before serving starts.
    pub(crate) socket: TcpListener,
    /// The address actually bound (the real port when the config said 0).
    pub(crate) local_addr: SocketAddr,
}

/// A broker: validated configuration, bound listeners and the [`Service`] that
/// answers their requests.
///
/// Binding and serving are separate steps so the composition root can learn the
/// real addresses (port 0 in tests) before anything is served, and so the service
/// is built knowing the endpoints it must advertise.
#[derive(Debug)]
pub struct Broker<S = Api> {
    /// The settings, shared with the service.
    config: Arc<BrokerConfig>,
    /// One per entry of `listeners`, in order.
    listeners: Vec<BoundListener>,
    /// Answers every request of every listener.
    service: Arc<S>,
    /// The storage and control machinery behind the real api layer, stopped after
    /// the listeners have drained; `None` for a service plugged in by `bind_with`.
    machinery: Option<Machinery>,
}

/// What [`Broker::bind`] starts besides the listeners, in the order it is stopped.
#[derive(Debug)]
struct Machinery {
    /// Set when the broker starts draining: long polls answer at once, so the drain
    /// is not held up for their `max_wait_ms`.
    draining: CancellationToken,
    /// The group coordinator; stopped before the partitions it writes to.
    groups: GroupCoordinator,
    /// The partitions, following the controller's images; shut down (image
    /// listener, flushers, final flush, checkpoints, clean-shutdown marker) once no
    /// request can reach them any more.
    replicas: ReplicaManager,
    /// The controller thread; stopped after the last metadata reader.
    controller: Controller,
    /// Registration and heartbeats of a cluster node; asks for a controlled
    /// shutdown before the listeners stop.
    lifecycle: Option<Arc<BrokerLifecycle>>,
    /// The Raft quorum of a cluster node; stopped last.
    quorum: Option<Quorum>,
}

impl Broker<Api> {
    /// Validates `config`, binds its listeners, opens the data directory (metadata
    /// log, partition logs with recovery, producer id block) and builds the api
    /// layer over it. Nothing is served until [`Broker::run`].
    ///
    /// The order matters: the listeners are bound first so the controller registers
    /// this broker with its real advertised ports, and the replica manager applies
    /// the recovered metadata before the first request, so every partition the
    /// metadata names is served from the start.
    pub async fn bind(config: BrokerConfig) -> Result<Self, BrokerError> {
        config.validate()?;
        if !config.roles().broker {
            return Err(BrokerError::Unsupported(
                "process.roles=controller runs no broker: start it as a ControllerNode".into(),
            ));
        }
        let (config, bound, endpoints) = bind_listeners(config).await?;
        let listeners = bound.clients;
        let data_dir = config.log_dirs[0].clone();
        let registered: Vec<weir_metadata::Endpoint> = endpoints
            .iter()
            .map(|e| weir_metadata::Endpoint {
                name: e.listener.clone(),
                host: e.host.clone(),
                port: e.port,
                // PLAINTEXT: the only security protocol Weir serves.
                security_protocol: 0,
            })
            .collect();
        let controller_config = cluster::controller_config(&config, registered.clone());
        let plane = cluster::start_control_plane(
            &config,
            data_dir.clone(),
            bound.quorum,
            controller_config,
        )
        .await?;
        let controller = plane.controller.clone();

        // The parent of the replica manager's own token; its `shutdown` stops it.
        let background = CancellationToken::new();
        let replicas = ReplicaManager::open(
            ReplicaConfig::from_broker(&config),
            Arc::new(SystemClock),
            &background,
        )
        .await
        .map_err(BrokerError::Replica)?;
        replicas
            .apply_image(&controller.image())
            .await
            .map_err(BrokerError::Replica)?;
        replicas.spawn_image_listener(controller.subscribe());

        let (lifecycle, producer_ids) = if plane.quorum.is_some() {
            let lifecycle = cluster::start_lifecycle(
                &config,
                &controller,
                registered,
                replicas.previous_broker_epoch(),
            );
            cluster::follow_fencing(&replicas, lifecycle.status());
            replicas.start_replication(
                Arc::new(cluster::ControllerIsr {
                    controller: controller.clone(),
                    node: config.node_id,
                    status: lifecycle.status(),
                }),
                Arc::new(TcpLeaderClient::new(
                    controller.subscribe(),
                    config.inter_broker_listener_name(),
                    Duration::from_millis(config.replica_socket_timeout_ms.max(1)),
                )),
            );
            let ids = ProducerIds::from_controller(
                controller.clone(),
                config.node_id,
                lifecycle.status(),
            );
            (Some(Arc::new(lifecycle)), ids)
        } else {
            let dir = data_dir.clone();
            let ids = blocking(move || ProducerIds::open(&dir))
                .await?
                .map_err(|source| BrokerError::ProducerIds {
                    dir: data_dir.clone(),
                    source,
                })?;
            (None, ids)
        };

        let draining = CancellationToken::new();
        // The group coordinator stops with the drain (parked JoinGroups are answered
        // NOT_COORDINATOR instead of holding it up) and loads the offsets partitions
        // this broker leads as the replica manager opens them.
        let groups = GroupCoordinator::start(
            CoordinatorConfig::from_broker(&config),
            Arc::new(SystemClock),
            Arc::new(ReplicaLog::new(replicas.clone())),
            &draining,
        );
        groups.follow_metadata(controller.subscribe(), replicas.clone(), config.node_id);
        let state = ApiState::new(
            config.clone(),
            endpoints,
            controller.clone(),
            replicas.clone(),
            producer_ids,
            groups.clone(),
            draining.clone(),
        );
        Ok(Self {
            config,
            listeners,
            service: Arc::new(Api::new(state)),
            machinery: Some(Machinery {
                draining,
                groups,
                replicas,
                controller,
                lifecycle,
                quorum: plane.quorum,
            }),
        })
    }
}

impl<S: Service> Broker<S> {
    /// On a cluster node, waits until the controller unfenced this broker, which
    /// it does once the broker applied the metadata up to its own registration:
    /// before that, a restarted node's image is the one it had before it stopped,
    /// and a client sent to it would hear that it still leads what it led then,
    /// read only up to the high watermark it had then, and could take an offset
    /// past that end for out of range (Kafka brokers likewise open their client
    /// listeners only after this initial catch-up). Connections wait in the
    /// listen backlog meanwhile. `false` if `shutdown` came first.
    async fn caught_up(&self, shutdown: &CancellationToken) -> bool {
        let Some(lifecycle) = self.machinery.as_ref().and_then(|m| m.lifecycle.as_ref()) else {
            return true;
        };
        let mut status = lifecycle.status();
        if !status.borrow().fenced {
            return true;
        }
        info!(node_id = %self.config.node_id, "catching up with the cluster metadata before serving clients");
        tokio::select! {
            caught_up = status.wait_for(|s| !s.fenced) => {
                if caught_up.is_err() {
                    tracing::warn!("the broker lifecycle ended before the first unfencing; serving anyway");
                }
                true
            }
            () = shutdown.cancelled() => false,
        }
    }

    /// As [`Broker::bind`], with the service built by `make_service` from the config
    /// and the advertised endpoints (tests and embedders plug in their own). Nothing
    /// but the listeners is opened.
    pub async fn bind_with(
        config: BrokerConfig,
        make_service: impl FnOnce(Arc<BrokerConfig>, Vec<Endpoint>) -> S,
    ) -> Result<Self, BrokerError> {
        config.validate()?;
        let (config, bound, endpoints) = bind_listeners(config).await?;
        let listeners = bound.clients;
        let service = Arc::new(make_service(config.clone(), endpoints));
        Ok(Self {
            config,
            listeners,
            service,
            machinery: None,
        })
    }

    /// The settings.
    pub fn config(&self) -> &Arc<BrokerConfig> {
        &self.config
    }

    /// The bound address of each listener, by name, in `listeners` order.
    pub fn local_addrs(&self) -> Vec<(String, SocketAddr)> {
        self.listeners
            .iter()
            .map(|l| (l.name.clone(), l.local_addr))
            .collect()
    }

    /// The service behind the listeners.
    pub fn service(&self) -> &Arc<S> {
        &self.service
    }

    /// Serves every listener until `shutdown` is cancelled and every connection has
    /// drained, then stops the machinery [`Broker::bind`] started: the metadata
    /// publisher, the partitions (final flush, checkpoints, clean-shutdown marker,
    /// so the next start skips recovery) and the controller. Logs `weir broker ready
    /// on ADDR[,ADDR...]` once serving: the line tests and scripts wait for.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), BrokerError> {
        // Not a child of `shutdown`: on a cluster node the listeners keep serving
        // through the controlled shutdown, so clients are told NOT_LEADER and move
        // to the new leaders instead of losing their connection first.
        let stop = CancellationToken::new();
        let timeout = Duration::from_millis(self.config.broker_session_timeout_ms);
        let lifecycle = self
            .machinery
            .as_ref()
            .and_then(|m| m.lifecycle.clone())
            .filter(|_| self.config.controlled_shutdown_enable);
        let draining = self.machinery.as_ref().map(|m| m.draining.clone());
        let (caller, serving_stop) = (shutdown.clone(), stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = caller.cancelled() => {}
                () = serving_stop.cancelled() => return,
            }
            if let Some(lifecycle) = lifecycle {
                if !lifecycle.controlled_shutdown(timeout).await {
                    tracing::warn!("controlled shutdown not confirmed; stopping anyway");
                }
            }
            if let Some(draining) = draining {
                draining.cancel();
            }
            serving_stop.cancel();
        });
        let limits = ConnectionLimits::from_config(&self.config);
        let mut serving = JoinSet::new();
        let mut addrs = Vec::with_capacity(self.listeners.len());
        let listeners = if self.caught_up(&shutdown).await {
            self.listeners
        } else {
            // Stopped before serving: let the controlled shutdown finish first.
            stop.cancelled().await;
            Vec::new()
        };
        for listener in listeners {
            addrs.push(listener.local_addr.to_string());
            let (service, limits, stop) = (self.service.clone(), limits.clone(), stop.clone());
            serving.spawn(async move {
                net::serve(listener.socket, &listener.name, service, limits, stop).await;
            });
        }
        if !addrs.is_empty() {
            info!(node_id = %self.config.node_id, "weir broker ready on {}", addrs.join(","));
        }
        let mut failure = None;
        while let Some(joined) = serving.join_next().await {
            if let Err(join_error) = joined {
                error!(error = %join_error, "listener failed; shutting down the broker");
                stop.cancel();
                failure.get_or_insert(join_error);
            }
        }
        let stopped = match self.machinery {
            Some(m) => m.stop().await,
            None => Ok(()),
        };
        info!(node_id = %self.config.node_id, "weir broker stopped");
        match failure {
            Some(join_error) => Err(BrokerError::Listener(join_error)),
            None => stopped,
        }
    }
}

impl Machinery {
    /// Stops everything in dependency order; see [`Broker::run`].
    async fn stop(self) -> Result<(), BrokerError> {
        self.draining.cancel();
        self.groups.shutdown().await;
        let flushed = self.replicas.shutdown().await;
        // Dropping the last handle stops the heartbeats.
        drop(self.lifecycle);
        self.controller.shutdown().await;
        if let Some(quorum) = self.quorum {
            quorum.shutdown().await;
        }
        flushed.map_err(BrokerError::Replica)
    }
}

/// Binds every listener of `config` and works out the endpoints to advertise.
/// The controller listener (when the node has one) is bound here too but kept apart:
/// it carries quorum and controller traffic only and is never served to Kafka
/// clients nor advertised to them. A broker-only cluster node binds its learner
/// listener instead (see [`LearnerListener`]).
async fn bind_listeners(
    config: BrokerConfig,
) -> Result<(Arc<BrokerConfig>, BoundListeners, Vec<Endpoint>), BrokerError> {
    let mut clients = Vec::with_capacity(config.listeners.len());
    for listener in config.client_listeners() {
        clients.push(bind_one(listener).await?);
    }
    let controller = match config.controller_listener() {
        Some(listener) if !config.is_single_node() => Some(bind_one(listener).await?),
        _ => None,
    };
    let config = Arc::new(config);
    let endpoints = advertised_endpoints(&config, &clients);
    let quorum = match controller {
        Some(listener) => Some(QuorumSocket::Voter(listener.socket)),
        None if !config.is_single_node() => Some(QuorumSocket::Learner(
            LearnerListener::bind(&config, &endpoints).await?,
        )),
        None => None,
    };
    Ok((config, BoundListeners { clients, quorum }, endpoints))
}

/// What [`bind_listeners`] bound.
#[derive(Debug)]
struct BoundListeners {
    /// The Kafka client listeners, in `listeners` order.
    clients: Vec<BoundListener>,
    /// How a cluster node takes part in the quorum (`None` on a single node).
    quorum: Option<QuorumSocket>,
}

/// Binds one listener, so its real port is known before anything is served.
pub(crate) async fn bind_one(
    listener: &crate::config::ListenerConfig,
) -> Result<BoundListener, BrokerError> {
    let bind_error = |source| BrokerError::Bind {
        listener: listener.to_string(),
        source,
    };
    let socket = TcpListener::bind((listener.bind_host(), listener.port))
        .await
        .map_err(bind_error)?;
    let local_addr = socket.local_addr().map_err(bind_error)?;
    info!(listener = %listener.name, %local_addr, "listening");
    Ok(BoundListener {
        name: listener.name.clone(),
        socket,
        local_addr,
    })
}

/// What Metadata will hand to clients: `advertised.listeners` when set, otherwise
/// each listener's bound IP and port. The bound IP, not the configured host name,
/// because a client may resolve `localhost` to a different address family than the
/// one we bound.
fn advertised_endpoints(config: &BrokerConfig, listeners: &[BoundListener]) -> Vec<Endpoint> {
    match config.client_advertised_listeners() {
        Some(advertised) => advertised
            .into_iter()
            .map(|a| Endpoint {
                listener: a.name.clone(),
                host: a.host.clone(),
                port: a.port,
            })
            .collect(),
        None => listeners
            .iter()
            .map(|l| Endpoint {
                listener: l.name.clone(),
                host: l.local_addr.ip().to_string(),
                port: l.local_addr.port(),
            })
            .collect(),
    }
}
