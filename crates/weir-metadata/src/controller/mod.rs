//! The controller: the one writer of the metadata log, on one node or in a quorum.
//!
//! Kafka's `QuorumController` handles one event at a time on one thread: it checks a
//! request against the current state, produces records, appends them, and replays
//! them. This is that shape. [`Controller`] is a cheap, cloneable handle; its methods
//! send a request over a bounded channel to the controller thread (a plain OS thread,
//! because every change ends in an fsync or a quorum round that must not stall a
//! tokio worker) and await the reply. The thread validates against the committed
//! image of its [`MetadataJournal`], makes the records (one batch per request, so a
//! request is atomic) and appends them through the journal, which applies them and
//! publishes the new image before the append returns — so a caller that saw success
//! also sees the change in [`Controller::image`].
//!
//! The journal is a [`MetadataStore`] on a single node (always the active
//! controller) or a Raft quorum (crate `weir-quorum`) in a cluster, where only the
//! leader is active. A handle on a node that is not active forwards each request to
//! the active controller through a [`ControllerTransport`] (see `codec`), whose node
//! executes it with [`Controller::forwarded_handler`]; while no controller is known
//! the handle retries with a short backoff until `request_timeout`, then fails with
//! `NotController`.
//!
//! Beyond the admin APIs the controller runs the cluster: broker registration,
//! heartbeats and fencing (`brokers`), leader election and ISR changes
//! (`partition_change`, `replication`), placement (`placement`), and a periodic tick.
//!
//! Client mistakes come back per resource as an [`ApiError`] with Kafka's error code;
//! the `Err` of an admin method is a controller failure (disk, stopped, no active
//! controller), which the api layer maps to an error code.

mod brokers;
mod cluster_types;
mod codec;
mod config;
mod configs;
mod names;
mod partition_change;
mod placement;
mod replication;
mod topics;
mod types;
mod worker;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use weir_types::NodeId;

pub use cluster_types::{
    AlterPartition, BrokerRegistration, ElectionType, Heartbeat, HeartbeatReply,
    OngoingReassignment, PartitionResult, PartitionState, ProducerIdBlock, Reassignment,
    TopicPartition,
};
pub use config::{
    AcceptAllConfigs, ControllerConfig, LogConfigValidator, PairValidator, TopicConfigValidator,
};
pub use names::{invalid_topic_name, is_internal, INTERNAL_TOPICS, MAX_TOPIC_NAME_LEN};
pub use replication::PRODUCER_ID_BLOCK_SIZE;
pub use types::{
    AlterConfigOp, AlterConfigsResult, AlterTopicConfigs, ApiError, ConfigOp, CreatePartitions,
    CreatePartitionsResult, CreateTopic, CreateTopicResult, DeleteTopicResult,
    IncrementalAlterTopicConfigs, ReplicaAssignment, TopicRef,
};

use codec::{Request, Response};
use worker::{Command, Worker};

use crate::error::{MetadataError, Result};
use crate::image::{Endpoint, MetadataImage};
use crate::journal::{BoxFuture, ControllerTransport, ForwardedRequestHandler, MetadataJournal};
use crate::store::MetadataStore;
use crate::uuid::UuidGenerator;

/// What a request's validation sees: the current image, the settings, the ids.
pub(crate) struct Ctx<'a> {
    pub(crate) image: &'a MetadataImage,
    pub(crate) config: &'a ControllerConfig,
    pub(crate) ids: &'a mut UuidGenerator,
}

/// How long a handle waits between attempts while no active controller is known.
const RETRY_BACKOFF: Duration = Duration::from_millis(50);

/// A handle to the controller thread; see the module docs.
#[derive(Clone)]
pub struct Controller {
    /// Requests to the thread (bounded: callers wait when it is behind).
    requests: mpsc::Sender<Command>,
    /// The journal's latest image.
    images: watch::Receiver<Arc<MetadataImage>>,
    /// The active controller as the journal knows it.
    active: watch::Receiver<Option<NodeId>>,
    /// How requests reach the active controller on another node.
    transport: Option<Arc<dyn ControllerTransport>>,
    /// This node's id.
    node_id: NodeId,
    /// How long a request may wait for an active controller.
    request_timeout: Duration,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("node_id", &self.node_id)
            .field("active", &*self.active.borrow())
            .finish_non_exhaustive()
    }
}

/// The typed answer of a request, or a bug if the thread answered another type.
macro_rules! expect {
    ($response:expr, $variant:ident) => {
        match $response {
            Ok(Response::$variant(v)) => Ok(v),
            Err(e) => Err(e),
            Ok(other) => Err(MetadataError::Transport {
                node: NodeId(-1),
                reason: format!("unexpected controller response {other:?}"),
            }),
        }
    };
}

impl Controller {
    /// Opens the local metadata store in `data_dir` and starts the single-node
    /// controller on it. Blocking (it recovers and replays the log): call it before
    /// serving, or from `spawn_blocking`.
    pub fn open(data_dir: &Path, config: ControllerConfig) -> Result<Controller> {
        let store =
            MetadataStore::open_in_cluster(data_dir, config.node_id, config.cluster_id.as_deref())?
                .with_clock(Arc::clone(&config.clock));
        Controller::start(Box::new(store), None, config)
    }

    /// Starts the controller thread on `journal`. `transport` carries requests to
    /// the active controller when this node is not it (`None` on a single node).
    /// When this node is active, a new log gets its `metadata.version` record and
    /// the local broker is registered if `config.listeners` is set (a single node;
    /// in a cluster brokers register through [`crate::lifecycle::BrokerLifecycle`]).
    pub fn start(
        journal: Box<dyn MetadataJournal>,
        transport: Option<Arc<dyn ControllerTransport>>,
        config: ControllerConfig,
    ) -> Result<Controller> {
        config.validate()?;
        let ids = config
            .id_seed
            .map_or_else(UuidGenerator::from_entropy, UuidGenerator::seeded);
        let images = journal.subscribe();
        let active = journal.active_controller();
        let now = config.clock.monotonic();
        let mut worker = Worker {
            journal,
            active: active.clone(),
            config,
            ids,
            sessions: Default::default(),
            was_active: false,
            last_rebalance: now,
        };
        let node_id = worker.config.node_id;
        let request_timeout = worker.config.request_timeout;
        let tick = worker.config.tick_interval;
        if worker.is_active() {
            worker.was_active = true;
            worker.sessions.reset(&worker.journal.image(), now);
            let (listeners, rack) = (worker.config.listeners.clone(), worker.config.rack.clone());
            worker.bootstrap(listeners, rack)?;
        }
        let (requests, rx) = mpsc::channel(worker.config.queue_capacity);
        std::thread::Builder::new()
            .name("weir-controller".into())
            .spawn(move || worker.run(rx))
            .map_err(|e| MetadataError::io("spawn", "weir-controller", e))?;
        spawn_ticker(requests.downgrade(), tick)?;
        Ok(Controller {
            requests,
            images,
            active,
            transport,
            node_id,
            request_timeout,
        })
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The latest image.
    pub fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.images.borrow())
    }

    /// A receiver of every image the journal publishes from now on (a slow receiver
    /// sees only the latest; diff images with `LocalChanges::between`).
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.images.clone()
    }

    /// The active controller as this node knows it.
    pub fn active_controller(&self) -> Option<NodeId> {
        *self.active.borrow()
    }

    /// CreateTopics. With `validate_only` nothing is written, but the results are
    /// those a real request would get (ids included, as in Kafka).
    pub async fn create_topics(
        &self,
        topics: Vec<CreateTopic>,
        validate_only: bool,
    ) -> Result<Vec<CreateTopicResult>> {
        expect!(
            self.request(Request::CreateTopics(topics, validate_only))
                .await,
            CreateTopics
        )
    }

    /// Creates unknown topics a Metadata request named, with the broker defaults (the
    /// Metadata handler calls this when `auto.create.topics.enable` is on). A topic
    /// that exists by now is a success with its current id; internal topics are
    /// refused (UNKNOWN_TOPIC_OR_PARTITION): their coordinators create them with
    /// their own settings.
    pub async fn auto_create_topics(&self, names: Vec<String>) -> Result<Vec<CreateTopicResult>> {
        expect!(
            self.request(Request::AutoCreateTopics(names)).await,
            CreateTopics
        )
    }

    /// DeleteTopics, by name or id.
    pub async fn delete_topics(&self, topics: Vec<TopicRef>) -> Result<Vec<DeleteTopicResult>> {
        expect!(
            self.request(Request::DeleteTopics(topics)).await,
            DeleteTopics
        )
    }

    /// CreatePartitions: grows topics to a new total partition count.
    pub async fn create_partitions(
        &self,
        topics: Vec<CreatePartitions>,
        validate_only: bool,
    ) -> Result<Vec<CreatePartitionsResult>> {
        expect!(
            self.request(Request::CreatePartitions(topics, validate_only))
                .await,
            CreatePartitions
        )
    }

    /// AlterConfigs for topics: replaces each topic's overrides with the given set.
    pub async fn alter_configs(
        &self,
        resources: Vec<AlterTopicConfigs>,
        validate_only: bool,
    ) -> Result<Vec<AlterConfigsResult>> {
        expect!(
            self.request(Request::AlterConfigs(resources, validate_only))
                .await,
            AlterConfigs
        )
    }

    /// IncrementalAlterConfigs for topics.
    pub async fn incremental_alter_configs(
        &self,
        resources: Vec<IncrementalAlterTopicConfigs>,
        validate_only: bool,
    ) -> Result<Vec<AlterConfigsResult>> {
        expect!(
            self.request(Request::IncrementalAlterConfigs(resources, validate_only))
                .await,
            AlterConfigs
        )
    }

    /// BrokerRegistration: returns the broker epoch. A new registration starts
    /// fenced; the same incarnation registering again gets its epoch back; another
    /// incarnation while the old one's session lives is DUPLICATE_BROKER_REGISTRATION.
    pub async fn register_broker(
        &self,
        registration: BrokerRegistration,
    ) -> std::result::Result<i64, ApiError> {
        flatten(expect!(
            self.request(Request::RegisterBroker(registration)).await,
            RegisterBroker
        ))
    }

    /// BrokerHeartbeat (STALE_BROKER_EPOCH for an epoch other than the broker's).
    pub async fn broker_heartbeat(
        &self,
        heartbeat: Heartbeat,
    ) -> std::result::Result<HeartbeatReply, ApiError> {
        flatten(expect!(
            self.request(Request::Heartbeat(heartbeat)).await,
            Heartbeat
        ))
    }

    /// AlterPartition for one partition: the leader proposes a new ISR; the answer is
    /// the partition's state after the change (an unchanged ISR is a no-op success).
    pub async fn alter_partition(
        &self,
        request: AlterPartition,
    ) -> std::result::Result<PartitionState, ApiError> {
        flatten(expect!(
            self.request(Request::AlterPartition(request)).await,
            AlterPartition
        ))
    }

    /// ElectLeaders for `partitions` (`None`: every partition; those that need no
    /// election are then left out of the results).
    pub async fn elect_leaders(
        &self,
        kind: ElectionType,
        partitions: Option<Vec<TopicPartition>>,
    ) -> Result<Vec<PartitionResult>> {
        expect!(
            self.request(Request::ElectLeaders(kind, partitions)).await,
            PartitionResults
        )
    }

    /// AlterPartitionReassignments.
    pub async fn alter_partition_reassignments(
        &self,
        reassignments: Vec<Reassignment>,
    ) -> Result<Vec<PartitionResult>> {
        expect!(
            self.request(Request::AlterReassignments(reassignments))
                .await,
            PartitionResults
        )
    }

    /// ListPartitionReassignments for `partitions` (`None`: all).
    pub async fn list_partition_reassignments(
        &self,
        partitions: Option<Vec<TopicPartition>>,
    ) -> Result<Vec<OngoingReassignment>> {
        expect!(
            self.request(Request::ListReassignments(partitions)).await,
            ListReassignments
        )
    }

    /// AllocateProducerIds: a block of [`PRODUCER_ID_BLOCK_SIZE`] ids that no other
    /// call, on any controller, ever hands out again.
    pub async fn allocate_producer_ids(
        &self,
        broker_id: NodeId,
        broker_epoch: i64,
    ) -> std::result::Result<ProducerIdBlock, ApiError> {
        flatten(expect!(
            self.request(Request::AllocateProducerIds(broker_id.get(), broker_epoch))
                .await,
            AllocateProducerIds
        ))
    }

    /// UnregisterBroker: removes `node`'s registration (its leadership moves away
    /// first, as when it is fenced). BROKER_ID_NOT_REGISTERED if it has none.
    pub async fn unregister_broker(&self, node: NodeId) -> std::result::Result<(), ApiError> {
        flatten(expect!(
            self.request(Request::UnregisterBroker(node.get())).await,
            UnregisterBroker
        ))
    }

    /// (Re-)registers the local broker of a single node with its listeners — e.g.
    /// once the listener is bound and its port known. A registration equal to the
    /// current one writes nothing. The controller keeps this broker's session alive.
    pub async fn register_local_broker(
        &self,
        listeners: Vec<Endpoint>,
        rack: Option<String>,
    ) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Command::RegisterLocal(listeners, rack, tx))
            .await
            .map_err(|_| MetadataError::ControllerStopped)?;
        rx.await.map_err(|_| MetadataError::ControllerStopped)?
    }

    /// Runs the periodic checks (session-timeout fencing, elections, rebalance) now
    /// and waits for them; the controller also runs them every `tick_interval`.
    pub async fn tick(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Command::Tick(Some(tx)))
            .await
            .map_err(|_| MetadataError::ControllerStopped)?;
        rx.await.map_err(|_| MetadataError::ControllerStopped)
    }

    /// The receiving side of forwarding: executes requests other nodes' handles send
    /// through their `ControllerTransport`, on this node's controller.
    pub fn forwarded_handler(&self) -> Arc<dyn ForwardedRequestHandler> {
        Arc::new(Forwarded(self.clone()))
    }

    /// Stops the controller thread after the requests queued before this one; the
    /// journal is closed when this returns. Later calls fail with `ControllerStopped`.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.requests.send(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Runs `request` on the active controller: here, or forwarded; retried while
    /// no controller is known, until `request_timeout`.
    async fn request(&self, request: Request) -> Result<Response> {
        let deadline = Instant::now() + self.request_timeout;
        loop {
            let leader = *self.active.borrow();
            let outcome = match leader {
                Some(n) if n == self.node_id => self.local(request.clone()).await,
                Some(n) => match &self.transport {
                    Some(t) => self.forward(t.as_ref(), n, &request).await,
                    None => Err(MetadataError::NotController { leader: Some(n) }),
                },
                None => Err(MetadataError::NotController { leader: None }),
            };
            match outcome {
                Err(MetadataError::NotController { .. } | MetadataError::Transport { .. })
                    if Instant::now() + RETRY_BACKOFF < deadline =>
                {
                    tokio::time::sleep(RETRY_BACKOFF).await;
                }
                other => return other,
            }
        }
    }

    /// Runs `request` on this node's controller thread.
    async fn local(&self, request: Request) -> Result<Response> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Command::Request(request, tx))
            .await
            .map_err(|_| MetadataError::ControllerStopped)?;
        rx.await.map_err(|_| MetadataError::ControllerStopped)?
    }

    async fn forward(
        &self,
        transport: &dyn ControllerTransport,
        node: NodeId,
        request: &Request,
    ) -> Result<Response> {
        let bytes = codec::encode_request(request)?;
        // A call that never returns (a peer that stopped answering) must not hold
        // the request past its deadline.
        let reply = tokio::time::timeout(self.request_timeout, transport.call(node, bytes))
            .await
            .map_err(|_| MetadataError::Transport {
                node,
                reason: "no reply within the request timeout".into(),
            })??;
        let (response, offset) = codec::decode_reply(node, &reply)?;
        // Read-your-writes: a caller that saw success also sees the change in this
        // node's image (the active controller's image is a round trip ahead).
        let mut images = self.images.clone();
        let caught_up = images.wait_for(|image| image.offset().get() >= offset);
        if tokio::time::timeout(self.request_timeout, caught_up)
            .await
            .is_err()
        {
            tracing::warn!(%node, offset, "local metadata did not reach a forwarded change in time");
        }
        Ok(response)
    }
}

/// A broker-facing answer with controller failures as Kafka error codes (see
/// [`MetadataError::error_code`]).
fn flatten<T>(
    outcome: Result<std::result::Result<T, ApiError>>,
) -> std::result::Result<T, ApiError> {
    outcome.unwrap_or_else(|e| Err(ApiError::new(e.error_code(), e.to_string())))
}

/// Sends a tick to the controller thread every `interval` until it stops (a weak
/// sender: the ticker does not keep the thread alive).
fn spawn_ticker(requests: mpsc::WeakSender<Command>, interval: Duration) -> Result<()> {
    std::thread::Builder::new()
        .name("weir-controller-tick".into())
        .spawn(move || loop {
            std::thread::sleep(interval);
            let Some(tx) = requests.upgrade() else {
                return;
            };
            // A full queue means the thread is busy; the next tick comes soon.
            if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(Command::Tick(None)) {
                return;
            }
        })
        .map(drop)
        .map_err(|e| MetadataError::io("spawn", "weir-controller-tick", e))
}

/// [`ForwardedRequestHandler`] over a controller handle.
struct Forwarded(Controller);

impl ForwardedRequestHandler for Forwarded {
    fn handle(&self, request: Vec<u8>) -> BoxFuture<Vec<u8>> {
        let controller = self.0.clone();
        Box::pin(async move {
            let reply = match codec::decode_request(&request) {
                // Executed here or refused: a forwarded request is never forwarded
                // again, so two nodes that disagree about the leader cannot loop.
                Ok(request) => controller.local(request).await,
                Err(reason) => Err(MetadataError::Transport {
                    node: controller.node_id,
                    reason: format!("undecodable forwarded request: {reason}"),
                }),
            };
            let offset = controller.images.borrow().offset().get();
            codec::encode_reply(&reply, offset)
        })
    }
}

#[cfg(test)]
mod tests;
