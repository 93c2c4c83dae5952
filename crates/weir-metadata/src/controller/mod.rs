//! The single-node controller: the one writer of the metadata log.
//!
//! Kafka's `QuorumController` handles one event at a time on one thread: it checks a
//! request against the current state, produces records, appends them, and replays
//! them. This is that shape for one node. [`Controller`] is a cheap, cloneable handle;
//! its methods send a request over a bounded channel to the controller thread (a
//! plain OS thread, because every change ends in an fsync that must not stall a tokio
//! worker) and await the reply. The thread validates against the current image,
//! makes the records (one batch per request, so a request is atomic), appends them
//! durably through the [`MetadataStore`], and publishes the new image on a
//! `tokio::sync::watch` channel before it replies — so a caller that saw success also
//! sees the change in [`Controller::image`]. Subscribers (the replica manager, the
//! Metadata handler) hold a `watch::Receiver` from [`Controller::subscribe`].
//!
//! Client mistakes come back per topic as an [`ApiError`] with Kafka's error code;
//! the `Err` of a method is a controller failure (disk, stopped), which the api layer
//! reports as an unknown server error or a storage error.
//!
//! With a Raft quorum later, the thread appends through Raft instead of the local
//! store, and brokers follow the log through the same image and delta types.

mod config;
mod configs;
mod names;
mod topics;
mod types;

use std::path::Path;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info};
use weir_protocol::messages::metadata_register_broker_record::{BrokerEndpoint, BrokerFeature};
use weir_protocol::messages::{FeatureLevelRecord, RegisterBrokerRecord};
use weir_types::{ErrorCode, NodeId};

pub use config::{
    AcceptAllConfigs, ControllerConfig, LogConfigValidator, PairValidator, TopicConfigValidator,
};
pub use names::{invalid_topic_name, is_internal, INTERNAL_TOPICS, MAX_TOPIC_NAME_LEN};
pub use types::{
    AlterConfigOp, AlterConfigsResult, AlterTopicConfigs, ApiError, ConfigOp, CreatePartitions,
    CreatePartitionsResult, CreateTopic, CreateTopicResult, DeleteTopicResult,
    IncrementalAlterTopicConfigs, ReplicaAssignment, TopicRef,
};

use crate::error::{MetadataError, Result};
use crate::image::{Endpoint, MetadataImage};
use crate::record::{MetadataRecord, METADATA_VERSION_FEATURE, METADATA_VERSION_LEVEL};
use crate::store::MetadataStore;
use crate::uuid::UuidGenerator;

/// What a request's validation sees: the current image, the settings, the ids.
pub(crate) struct Ctx<'a> {
    pub(crate) image: &'a MetadataImage,
    pub(crate) config: &'a ControllerConfig,
    pub(crate) ids: &'a mut UuidGenerator,
}

type Reply<T> = oneshot::Sender<Result<T>>;

/// A request to the controller thread.
enum Command {
    CreateTopics(Vec<CreateTopic>, bool, Reply<Vec<CreateTopicResult>>),
    AutoCreateTopics(Vec<String>, Reply<Vec<CreateTopicResult>>),
    DeleteTopics(Vec<TopicRef>, Reply<Vec<DeleteTopicResult>>),
    CreatePartitions(
        Vec<CreatePartitions>,
        bool,
        Reply<Vec<CreatePartitionsResult>>,
    ),
    AlterConfigs(Vec<AlterTopicConfigs>, bool, Reply<Vec<AlterConfigsResult>>),
    IncrementalAlterConfigs(
        Vec<IncrementalAlterTopicConfigs>,
        bool,
        Reply<Vec<AlterConfigsResult>>,
    ),
    RegisterBroker(Vec<Endpoint>, Option<String>, Reply<()>),
    Shutdown(oneshot::Sender<()>),
}

/// A handle to the controller thread; see the module docs.
#[derive(Debug, Clone)]
pub struct Controller {
    /// Requests to the thread (bounded: callers wait when it is behind).
    requests: mpsc::Sender<Command>,
    /// The latest published image.
    images: watch::Receiver<Arc<MetadataImage>>,
    /// This node's id.
    node_id: NodeId,
}

impl Controller {
    /// Opens the local metadata store in `data_dir` and starts the controller on it.
    /// Blocking (it recovers and replays the log): call it before serving, or from
    /// `spawn_blocking`.
    pub fn open(data_dir: &Path, config: ControllerConfig) -> Result<Controller> {
        let store = MetadataStore::open(data_dir, config.node_id)?;
        Controller::start(store, config)
    }

    /// Starts the controller thread on `store`. A new log gets its `metadata.version`
    /// record, and the local broker is registered if `config.listeners` is set and
    /// its registration differs from the image's.
    pub fn start(store: MetadataStore, config: ControllerConfig) -> Result<Controller> {
        config.validate()?;
        let ids = config
            .id_seed
            .map_or_else(UuidGenerator::from_entropy, UuidGenerator::seeded);
        let (publish, images) = watch::channel(Arc::clone(store.image()));
        let mut worker = Worker {
            store,
            config,
            ids,
            publish,
        };
        let node_id = worker.config.node_id;
        let (listeners, rack) = (worker.config.listeners.clone(), worker.config.rack.clone());
        worker.bootstrap(listeners, rack)?;
        let (requests, rx) = mpsc::channel(worker.config.queue_capacity);
        std::thread::Builder::new()
            .name("weir-controller".into())
            .spawn(move || worker.run(rx))
            .map_err(|e| MetadataError::io("spawn", "weir-controller", e))?;
        Ok(Controller {
            requests,
            images,
            node_id,
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

    /// A receiver of every image the controller publishes from now on (a slow
    /// receiver sees only the latest; diff images with `LocalChanges::between`).
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.images.clone()
    }

    /// CreateTopics. With `validate_only` nothing is written, but the results are
    /// those a real request would get (ids included, as in Kafka).
    pub async fn create_topics(
        &self,
        topics: Vec<CreateTopic>,
        validate_only: bool,
    ) -> Result<Vec<CreateTopicResult>> {
        self.call(|r| Command::CreateTopics(topics, validate_only, r))
            .await
    }

    /// Creates unknown topics a Metadata request named, with the broker defaults (the
    /// Metadata handler calls this when `auto.create.topics.enable` is on). A topic
    /// that exists by now is a success with its current id; internal topics are
    /// refused (UNKNOWN_TOPIC_OR_PARTITION): their coordinators create them with
    /// their own settings.
    pub async fn auto_create_topics(&self, names: Vec<String>) -> Result<Vec<CreateTopicResult>> {
        self.call(|r| Command::AutoCreateTopics(names, r)).await
    }

    /// DeleteTopics, by name or id.
    pub async fn delete_topics(&self, topics: Vec<TopicRef>) -> Result<Vec<DeleteTopicResult>> {
        self.call(|r| Command::DeleteTopics(topics, r)).await
    }

    /// CreatePartitions: grows topics to a new total partition count.
    pub async fn create_partitions(
        &self,
        topics: Vec<CreatePartitions>,
        validate_only: bool,
    ) -> Result<Vec<CreatePartitionsResult>> {
        self.call(|r| Command::CreatePartitions(topics, validate_only, r))
            .await
    }

    /// AlterConfigs for topics: replaces each topic's overrides with the given set.
    pub async fn alter_configs(
        &self,
        resources: Vec<AlterTopicConfigs>,
        validate_only: bool,
    ) -> Result<Vec<AlterConfigsResult>> {
        self.call(|r| Command::AlterConfigs(resources, validate_only, r))
            .await
    }

    /// IncrementalAlterConfigs for topics.
    pub async fn incremental_alter_configs(
        &self,
        resources: Vec<IncrementalAlterTopicConfigs>,
        validate_only: bool,
    ) -> Result<Vec<AlterConfigsResult>> {
        self.call(|r| Command::IncrementalAlterConfigs(resources, validate_only, r))
            .await
    }

    /// (Re-)registers the local broker with its listeners — e.g. once the listener is
    /// bound and its port known. A registration equal to the current one writes
    /// nothing.
    pub async fn register_broker(
        &self,
        listeners: Vec<Endpoint>,
        rack: Option<String>,
    ) -> Result<()> {
        self.call(|r| Command::RegisterBroker(listeners, rack, r))
            .await
    }

    /// Stops the controller thread after the requests queued before this one; the
    /// metadata log is closed when this returns. Later calls fail with
    /// `ControllerStopped`.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.requests.send(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(make(tx))
            .await
            .map_err(|_| MetadataError::ControllerStopped)?;
        rx.await.map_err(|_| MetadataError::ControllerStopped)?
    }
}

/// The controller thread's state.
struct Worker {
    store: MetadataStore,
    config: ControllerConfig,
    ids: UuidGenerator,
    publish: watch::Sender<Arc<MetadataImage>>,
}

impl Worker {
    fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        info!(node_id = %self.config.node_id, "controller started");
        let mut shutdown_reply = None;
        while let Some(command) = rx.blocking_recv() {
            match command {
                Command::CreateTopics(topics, validate_only, reply) => {
                    let (records, results) = topics::create_topics(&mut self.ctx(), &topics);
                    let _ = reply.send(self.commit(records, validate_only).map(|()| results));
                }
                Command::AutoCreateTopics(names, reply) => {
                    let _ = reply.send(self.auto_create(names));
                }
                Command::DeleteTopics(refs, reply) => {
                    let (records, results) = topics::delete_topics(&self.ctx(), &refs);
                    let _ = reply.send(self.commit(records, false).map(|()| results));
                }
                Command::CreatePartitions(topics, validate_only, reply) => {
                    let (records, results) = topics::create_partitions(&mut self.ctx(), &topics);
                    let _ = reply.send(self.commit(records, validate_only).map(|()| results));
                }
                Command::AlterConfigs(resources, validate_only, reply) => {
                    let (records, results) = configs::alter_configs(&self.ctx(), &resources);
                    let _ = reply.send(self.commit(records, validate_only).map(|()| results));
                }
                Command::IncrementalAlterConfigs(resources, validate_only, reply) => {
                    let (records, results) =
                        configs::incremental_alter_configs(&self.ctx(), &resources);
                    let _ = reply.send(self.commit(records, validate_only).map(|()| results));
                }
                Command::RegisterBroker(listeners, rack, reply) => {
                    let _ = reply.send(self.bootstrap(listeners, rack));
                }
                Command::Shutdown(reply) => {
                    shutdown_reply = Some(reply);
                    break;
                }
            }
        }
        let offset = self.store.image().offset();
        drop(self);
        info!(offset = %offset, "controller stopped");
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
    }

    fn ctx(&mut self) -> Ctx<'_> {
        Ctx {
            image: self.store.image(),
            config: &self.config,
            ids: &mut self.ids,
        }
    }

    /// Appends `records` durably and publishes the new image (nothing for a
    /// validate-only or empty change).
    fn commit(&mut self, records: Vec<MetadataRecord>, validate_only: bool) -> Result<()> {
        if validate_only || records.is_empty() {
            return Ok(());
        }
        match self.store.append(&records) {
            Ok(image) => {
                self.publish.send_replace(image);
                Ok(())
            }
            Err(e) => {
                error!(error = %e, records = records.len(), "metadata change not written");
                Err(e)
            }
        }
    }

    fn auto_create(&mut self, names: Vec<String>) -> Result<Vec<CreateTopicResult>> {
        let (internal, external): (Vec<String>, Vec<String>) =
            names.into_iter().partition(|n| is_internal(n));
        let requests: Vec<CreateTopic> = external
            .into_iter()
            .map(CreateTopic::with_defaults)
            .collect();
        let (records, mut results) = topics::create_topics(&mut self.ctx(), &requests);
        self.commit(records, false)?;
        let image = self.store.image();
        for r in &mut results {
            if r.error.code != ErrorCode::TopicAlreadyExists {
                continue;
            }
            if let Some(t) = image.topic(&r.name) {
                *r = CreateTopicResult {
                    name: r.name.clone(),
                    error: ApiError::NONE,
                    topic_id: t.id,
                    num_partitions: i32::try_from(t.partitions.len()).unwrap_or(i32::MAX),
                    replication_factor: i16::try_from(t.replication_factor()).unwrap_or(i16::MAX),
                    configs: t.configs.clone(),
                };
            }
        }
        results.extend(internal.iter().map(|n| {
            CreateTopicResult::failed(
                n,
                ApiError::new(
                    ErrorCode::UnknownTopicOrPartition,
                    format!("internal topic {n} is created by its coordinator"),
                ),
            )
        }));
        Ok(results)
    }

    /// Writes `metadata.version` into a new log, and (re-)registers the local broker
    /// when `listeners` is set and differs from its registration.
    fn bootstrap(&mut self, listeners: Vec<Endpoint>, rack: Option<String>) -> Result<()> {
        let image = Arc::clone(self.store.image());
        let mut records = Vec::new();
        if !image.features().contains_key(METADATA_VERSION_FEATURE) {
            records.push(MetadataRecord::FeatureLevel(FeatureLevelRecord {
                name: METADATA_VERSION_FEATURE.into(),
                feature_level: METADATA_VERSION_LEVEL,
            }));
        }
        let node = self.config.node_id;
        let current = image.broker(node);
        let unchanged = current.is_some_and(|b| {
            b.endpoints == listeners && b.rack == rack && !b.fenced && !b.in_controlled_shutdown
        });
        if !listeners.is_empty() && !unchanged {
            // Kafka's broker epoch is the offset of the registration record.
            let epoch = self.store.next_offset().plus(records.len() as i64).get();
            records.push(MetadataRecord::RegisterBroker(RegisterBrokerRecord {
                broker_id: node.get(),
                incarnation_id: self.ids.next_uuid(),
                broker_epoch: epoch,
                end_points: listeners
                    .iter()
                    .map(|e| BrokerEndpoint {
                        name: e.name.clone(),
                        host: e.host.clone(),
                        port: e.port,
                        security_protocol: e.security_protocol,
                    })
                    .collect(),
                features: vec![BrokerFeature {
                    name: METADATA_VERSION_FEATURE.into(),
                    min_supported_version: METADATA_VERSION_LEVEL,
                    max_supported_version: METADATA_VERSION_LEVEL,
                }],
                rack: rack.clone(),
                fenced: false,
                ..RegisterBrokerRecord::default()
            }));
            info!(node_id = %node, broker_epoch = epoch, "registering the local broker");
        }
        self.config.listeners = listeners;
        self.config.rack = rack;
        self.commit(records, false)
    }
}

#[cfg(test)]
mod tests;
