//! A running quorum node: start, handles, shutdown.
//!
//! [`Quorum::start`] checks the data directory's identity (`meta.properties`: this
//! node, this cluster), opens the Raft log and the newest snapshot, starts openraft
//! and serves the controller listener it is given. On a first start (an empty,
//! uninitialised log) every voter calls openraft's `initialize` with the full voter
//! set; all voters doing so with the same set is safe, and whichever elections
//! follow, the membership entry at index 0 is the same on every node. A task
//! follows openraft's metrics to publish the active controller.
//!
//! A node outside the voters (`QuorumConfig::learner_address` set) never
//! initializes: it waits to be added as a learner, which it asks for itself (see
//! `learner`), and then applies the committed log like any voter.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use openraft::error::{InitializeError, RaftError};
use openraft::{BasicNode, RaftMetrics, ServerState};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use weir_metadata::meta_properties::MetaProperties;
use weir_metadata::{ControllerTransport, ForwardedRequestHandler, MetadataImage};
use weir_types::NodeId;

use crate::config::QuorumConfig;
use crate::error::QuorumError;
use crate::journal::QuorumJournal;
use crate::learner::{self, Contact, Joiner};
use crate::log_store::LogStore;
use crate::net::client::{NetworkFactory, Peers, Transport};
use crate::net::server::{self, HandlerSlot, ServerContext};
use crate::state_machine::StateMachine;
use crate::types::{raft_id, weir_id, Raft};

/// The directory of the Raft log inside the data directory (the metadata log's
/// name in Kafka).
pub const METADATA_LOG_DIR: &str = "__cluster_metadata-0";

/// How long `shutdown` waits for connection tasks.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// One running quorum node; see the module docs.
pub struct Quorum {
    node_id: NodeId,
    raft: Raft,
    journal: QuorumJournal,
    peers: Arc<Peers>,
    handler: HandlerSlot,
    call_timeout: Duration,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    local_addr: std::net::SocketAddr,
}

impl std::fmt::Debug for Quorum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quorum")
            .field("node_id", &self.node_id)
            .field("listener", &self.local_addr)
            .field("journal", &self.journal)
            .finish_non_exhaustive()
    }
}

impl Quorum {
    /// Starts the node of `config` serving the controller listener `listener`
    /// (bound by the caller, so tests can use port 0). Must run inside a
    /// multi-threaded tokio runtime, which the node then uses for good.
    pub async fn start(config: QuorumConfig, listener: TcpListener) -> Result<Quorum, QuorumError> {
        config.validate()?;
        let cluster_id = config.cluster_id();
        let me = raft_id(config.node_id);
        let dir = config.data_dir.join(METADATA_LOG_DIR);
        let (log, sm, images) = {
            let (data_dir, dir, node, cluster) = (
                config.data_dir.clone(),
                dir.clone(),
                config.node_id,
                cluster_id.clone(),
            );
            tokio::task::spawn_blocking(move || {
                check_identity(&data_dir, node, &cluster)?;
                let log = LogStore::open(&dir)?;
                let (sm, images) = StateMachine::open(dir, cluster)?;
                Ok::<_, QuorumError>((log, sm, images))
            })
            .await
            .map_err(|e| QuorumError::Raft(format!("startup task: {e}")))??
        };
        let peers = Arc::new(Peers::new(
            me,
            cluster_id.clone(),
            config.max_frame_bytes,
            &config.voters,
        ));
        let network = NetworkFactory {
            peers: Arc::clone(&peers),
        };
        let raft = Raft::new(me, Arc::new(config.raft_config()?), network, log, sm)
            .await
            .map_err(|e| QuorumError::Raft(e.to_string()))?;

        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let handler: HandlerSlot = Arc::new(RwLock::new(None));
        let contact = Arc::new(Contact::new());
        let local_addr = listener
            .local_addr()
            .map_err(|e| QuorumError::io("local_addr", "controller listener", e))?;
        let ctx = Arc::new(ServerContext {
            raft: raft.clone(),
            cluster_id: cluster_id.clone(),
            node_id: me,
            max_frame_bytes: config.max_frame_bytes,
            handler: Arc::clone(&handler),
            contact: Arc::clone(&contact),
        });
        tracker.spawn(server::serve(
            listener,
            ctx,
            shutdown.clone(),
            tracker.clone(),
        ));

        let (active_tx, active) = watch::channel(None);
        let lease_ms = u64::try_from(config.election_timeout_max.as_millis()).unwrap_or(u64::MAX);
        tracker.spawn(follow_leader(
            raft.clone(),
            me,
            lease_ms,
            active_tx,
            shutdown.clone(),
        ));

        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| QuorumError::Raft(e.to_string()))?;
        if let Some(address) = config.learner_address.clone() {
            let joiner = Joiner {
                raft: raft.clone(),
                peers: Arc::clone(&peers),
                voters: config.voters.keys().map(|id| raft_id(*id)).collect(),
                me,
                address,
                contact,
                lost_after: config.election_timeout_max * 2,
                call_timeout: config.call_timeout.min(config.election_timeout_max * 2),
            };
            tracker.spawn(learner::stay_joined(joiner, shutdown.clone()));
        } else {
            tracker.spawn(learner::forget_unregistered(
                raft.clone(),
                me,
                images.clone(),
                shutdown.clone(),
            ));
        }
        if !initialized && !config.is_learner() {
            let members: BTreeMap<u64, BasicNode> = config
                .voters
                .iter()
                .map(|(id, addr)| (raft_id(*id), BasicNode::new(addr)))
                .collect();
            match raft.initialize(members).await {
                Ok(()) => {
                    tracing::info!(voters = ?config.voters, "initialized a new controller quorum")
                }
                Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => return Err(QuorumError::Raft(format!("initialize: {e}"))),
            }
        }
        let role = if config.is_learner() {
            "learner"
        } else {
            "voter"
        };
        tracing::info!(node = %config.node_id, %cluster_id, listener = %local_addr, role, "controller quorum node started");
        let journal = QuorumJournal {
            node_id: config.node_id,
            raft: raft.clone(),
            runtime: tokio::runtime::Handle::current(),
            images,
            active,
            activation_timeout: config.election_timeout_max * 2,
            append_timeout: config.append_timeout,
            max_change_bytes: config.max_frame_bytes / 2,
        };
        Ok(Quorum {
            node_id: config.node_id,
            raft,
            journal,
            peers,
            handler,
            call_timeout: config.call_timeout,
            shutdown,
            tracker,
            local_addr,
        })
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The address the controller listener is bound to.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.local_addr
    }

    /// The node's `MetadataJournal` (clone it freely).
    pub fn journal(&self) -> QuorumJournal {
        self.journal.clone()
    }

    /// The transport for controller calls to other voters.
    pub fn transport(&self) -> Arc<dyn ControllerTransport> {
        Arc::new(Transport {
            peers: Arc::clone(&self.peers),
            timeout: self.call_timeout,
        })
    }

    /// Sets the handler of controller calls from other nodes; until then they are
    /// answered with an error.
    pub fn set_forwarded_handler(&self, handler: Arc<dyn ForwardedRequestHandler>) {
        match self.handler.write() {
            Ok(mut slot) => *slot = Some(handler),
            Err(poisoned) => *poisoned.into_inner() = Some(handler),
        }
    }

    /// The active controller as this node knows it.
    pub fn leader(&self) -> Option<NodeId> {
        *self.journal.active.borrow()
    }

    /// The voters and the learners of the membership as this node knows it (the
    /// latest membership entry in its log, committed or not).
    pub fn membership(&self) -> (Vec<NodeId>, Vec<NodeId>) {
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        (
            membership.voter_ids().map(weir_id).collect(),
            membership.learner_ids().map(weir_id).collect(),
        )
    }

    /// The current image of this node.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.journal.images.borrow().clone()
    }

    /// Stops the node: Raft, the listener and its connections. The data directory
    /// can then be opened again by a new `start`.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft did not shut down cleanly");
        }
        self.peers.close_idle();
        self.tracker.close();
        if tokio::time::timeout(SHUTDOWN_WAIT, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("controller listener tasks did not stop in time");
        }
        tracing::info!(node = %self.node_id, "controller quorum node stopped");
    }
}

impl Drop for Quorum {
    /// A node dropped without [`Quorum::shutdown`] still stops: its listener and
    /// connections at once, Raft on the runtime (after `shutdown` this is a no-op).
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let raft = self.raft.clone();
            runtime.spawn(async move {
                let _ = raft.shutdown().await;
            });
        }
    }
}

/// Checks (or, in a new directory, writes) `meta.properties`: a directory of
/// another node or cluster must not join this one.
fn check_identity(data_dir: &Path, node: NodeId, cluster_id: &str) -> Result<(), QuorumError> {
    std::fs::create_dir_all(data_dir).map_err(|e| QuorumError::io("create", data_dir, e))?;
    match MetaProperties::load(data_dir)? {
        Some(p) if p.node_id == node && p.cluster_id == cluster_id => Ok(()),
        Some(p) => Err(QuorumError::Identity {
            path: data_dir.to_path_buf(),
            reason: format!(
                "the directory belongs to node {} of cluster {}, not node {node} of cluster {cluster_id}",
                p.node_id, p.cluster_id
            ),
        }),
        None => Ok(MetaProperties {
            cluster_id: cluster_id.to_string(),
            node_id: node,
        }
        .write(data_dir)?),
    }
}

/// The active controller per `m`, as node `me` sees it: the leader it knows of;
/// itself only once it has applied an entry of its own term, and only while a
/// majority has acknowledged it within `lease_ms` (the longest election timeout) — a
/// leader cut off from its followers stops calling itself active about when they
/// elect another (KRaft's leader likewise resigns when a majority stops fetching),
/// instead of until a new leader reaches it.
fn active_of(m: &RaftMetrics<u64, BasicNode>, me: u64, lease_ms: u64) -> Option<NodeId> {
    match m.current_leader {
        Some(l) if l == me => {
            let ready = m.state == ServerState::Leader
                && m.last_applied
                    .is_some_and(|a| a.leader_id.term == m.current_term)
                && m.millis_since_quorum_ack.is_none_or(|ms| ms <= lease_ms);
            ready.then(|| weir_id(me))
        }
        other => other.map(weir_id),
    }
}

/// Publishes the active controller whenever openraft's metrics change.
async fn follow_leader(
    raft: Raft,
    me: u64,
    lease_ms: u64,
    active: watch::Sender<Option<NodeId>>,
    shutdown: CancellationToken,
) {
    let mut metrics = raft.metrics();
    loop {
        let now = active_of(&metrics.borrow_and_update(), me, lease_ms);
        active.send_if_modified(|cur| {
            if *cur != now {
                tracing::info!(node = me, active_controller = ?now, "active controller changed");
                *cur = now;
                true
            } else {
                false
            }
        });
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = metrics.changed() => if changed.is_err() { break },
        }
    }
    active.send_replace(None);
}
