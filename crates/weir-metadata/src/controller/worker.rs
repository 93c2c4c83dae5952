//! The controller thread: one request at a time against the journal's committed
//! image, and the periodic tick (session-timeout fencing, unclean elections where a
//! topic allows them, the preferred-leader rebalance).
//!
//! The thread writes only while its journal says this node is the active
//! controller; otherwise every request fails with `NotController` and the handle
//! forwards it. When the node becomes active it starts from the journal's committed
//! image and gives every registered broker a fresh session (heartbeats are in memory
//! and were received by the previous active controller).

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};
use weir_protocol::messages::FeatureLevelRecord;
use weir_types::{ErrorCode, NodeId};

use super::brokers::{self, Sessions};
use super::cluster_types::{BrokerRegistration, PartitionState};
use super::codec::{Request, Response};
use super::types::{ApiError, CreateTopic, CreateTopicResult};
use super::{configs, is_internal, replication, topics, ControllerConfig, Ctx};
use crate::error::{MetadataError, Result};
use crate::image::{Endpoint, MetadataImage};
use crate::journal::MetadataJournal;
use crate::record::{MetadataRecord, METADATA_VERSION_FEATURE, METADATA_VERSION_LEVEL};
use crate::uuid::UuidGenerator;

type Reply<T> = oneshot::Sender<Result<T>>;

/// A message to the controller thread.
pub(super) enum Command {
    /// A controller operation.
    Request(Request, Reply<Response>),
    /// (Re-)register the local broker (single node: the controller keeps it alive).
    RegisterLocal(Vec<Endpoint>, Option<String>, Reply<()>),
    /// Run the periodic checks now.
    Tick(Option<oneshot::Sender<()>>),
    /// Stop after the commands queued before this one.
    Shutdown(oneshot::Sender<()>),
}

/// The controller thread's state.
pub(super) struct Worker {
    pub(super) journal: Box<dyn MetadataJournal>,
    pub(super) active: watch::Receiver<Option<NodeId>>,
    pub(super) config: ControllerConfig,
    pub(super) ids: UuidGenerator,
    pub(super) sessions: Sessions,
    /// Whether the node was active at the last request or tick.
    pub(super) was_active: bool,
    /// When the preferred-leader rebalance last ran.
    pub(super) last_rebalance: Instant,
}

impl Worker {
    pub(super) fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        info!(node_id = %self.config.node_id, "controller started");
        let mut shutdown_reply = None;
        while let Some(command) = rx.blocking_recv() {
            match command {
                Command::Request(request, reply) => {
                    let _ = reply.send(self.handle(request));
                }
                Command::RegisterLocal(listeners, rack, reply) => {
                    let outcome = if self.check_activation() {
                        self.bootstrap(listeners, rack)
                    } else {
                        Err(self.not_controller())
                    };
                    let _ = reply.send(outcome);
                }
                Command::Tick(done) => {
                    self.tick();
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                }
                Command::Shutdown(reply) => {
                    shutdown_reply = Some(reply);
                    break;
                }
            }
        }
        let offset = self.journal.image().offset();
        drop(self);
        info!(offset = %offset, "controller stopped");
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
    }

    fn now(&self) -> Instant {
        self.config.clock.monotonic()
    }

    pub(super) fn is_active(&self) -> bool {
        *self.active.borrow() == Some(self.config.node_id)
    }

    fn not_controller(&self) -> MetadataError {
        let leader = *self.active.borrow();
        MetadataError::NotController {
            leader: leader.filter(|l| *l != self.config.node_id),
        }
    }

    /// Whether this node is the active controller; on becoming active, starts
    /// fresh sessions and bootstraps.
    pub(super) fn check_activation(&mut self) -> bool {
        let active = self.is_active();
        if active && !self.was_active {
            let now = self.now();
            let image = self.journal.image();
            info!(node_id = %self.config.node_id, offset = %image.offset(), "controller active");
            self.sessions.reset(&image, now);
            self.last_rebalance = now;
            let (listeners, rack) = (self.config.listeners.clone(), self.config.rack.clone());
            if let Err(e) = self.bootstrap(listeners, rack) {
                warn!(error = %e, "bootstrap records not written on activation");
            }
        }
        self.was_active = active;
        active
    }

    fn ctx<'a>(&'a mut self, image: &'a MetadataImage) -> Ctx<'a> {
        Ctx {
            image,
            config: &self.config,
            ids: &mut self.ids,
        }
    }

    fn handle(&mut self, request: Request) -> Result<Response> {
        if !self.check_activation() {
            return Err(self.not_controller());
        }
        let image = self.journal.image();
        let now = self.now();
        let min_isr = self.config.min_insync_replicas;
        Ok(match request {
            Request::CreateTopics(topics, validate_only) => {
                let (records, results) = topics::create_topics(&mut self.ctx(&image), &topics);
                self.commit(records, validate_only)?;
                Response::CreateTopics(results)
            }
            Request::AutoCreateTopics(names) => Response::CreateTopics(self.auto_create(names)?),
            Request::DeleteTopics(refs) => {
                let (records, results) = topics::delete_topics(&self.ctx(&image), &refs);
                self.commit(records, false)?;
                Response::DeleteTopics(results)
            }
            Request::CreatePartitions(topics, validate_only) => {
                let (records, results) = topics::create_partitions(&mut self.ctx(&image), &topics);
                self.commit(records, validate_only)?;
                Response::CreatePartitions(results)
            }
            Request::AlterConfigs(resources, validate_only) => {
                let (records, results) = configs::alter_configs(&self.ctx(&image), &resources);
                self.commit(records, validate_only)?;
                Response::AlterConfigs(results)
            }
            Request::IncrementalAlterConfigs(resources, validate_only) => {
                let (records, results) =
                    configs::incremental_alter_configs(&self.ctx(&image), &resources);
                self.commit(records, validate_only)?;
                Response::AlterConfigs(results)
            }
            Request::RegisterBroker(reg) => Response::RegisterBroker(self.register(&image, &reg)?),
            Request::Heartbeat(hb) => {
                let outcome =
                    match brokers::heartbeat(&image, &mut self.sessions, now, min_isr, &hb) {
                        Ok(records) => {
                            self.commit(records, false)?;
                            let image = self.journal.image();
                            Ok(brokers::heartbeat_reply(
                                &image,
                                &mut self.sessions,
                                now,
                                &hb,
                            ))
                        }
                        Err(e) => Err(e),
                    };
                Response::Heartbeat(outcome)
            }
            Request::AlterPartition(req) => {
                let outcome = match replication::alter_partition(&image, &req, min_isr) {
                    Ok(record) => {
                        self.commit(record.into_iter().map(Into::into).collect(), false)?;
                        partition_state(&self.journal.image(), &req)
                    }
                    Err(e) => Err(e),
                };
                Response::AlterPartition(outcome)
            }
            Request::ElectLeaders(kind, partitions) => {
                let (records, results) =
                    replication::elect_leaders(&image, kind, partitions.as_deref(), min_isr);
                self.commit(records, false)?;
                Response::PartitionResults(results)
            }
            Request::AlterReassignments(reqs) => {
                let (records, results) = replication::alter_reassignments(&image, &reqs, min_isr);
                self.commit(records, false)?;
                Response::PartitionResults(results)
            }
            Request::ListReassignments(partitions) => Response::ListReassignments(
                replication::list_reassignments(&image, partitions.as_deref()),
            ),
            Request::UnregisterBroker(node) => {
                let outcome = match brokers::unregister(&image, NodeId(node), min_isr) {
                    Ok(records) => {
                        self.commit(records, false)?;
                        Ok(())
                    }
                    Err(e) => Err(e),
                };
                Response::UnregisterBroker(outcome)
            }
            Request::AllocateProducerIds(broker, epoch) => {
                let outcome = match replication::allocate_producer_ids(&image, broker, epoch) {
                    Ok((record, block)) => {
                        self.commit(vec![record], false)?;
                        Ok(block)
                    }
                    Err(e) => Err(e),
                };
                Response::AllocateProducerIds(outcome)
            }
        })
    }

    fn register(
        &mut self,
        image: &MetadataImage,
        reg: &BrokerRegistration,
    ) -> Result<std::result::Result<i64, ApiError>> {
        let ctx = brokers::RegisterContext {
            next_offset: self.journal.next_offset().get(),
            now: self.now(),
            timeout: self.config.session_timeout,
            min_isr_default: self.config.min_insync_replicas,
        };
        match brokers::register(image, &mut self.sessions, &ctx, reg) {
            Ok((records, epoch)) => {
                self.commit(records, false)?;
                info!(node_id = %reg.node, broker_epoch = epoch, "broker registered");
                Ok(Ok(epoch))
            }
            Err(e) => Ok(Err(e)),
        }
    }

    /// The periodic checks; see the module docs.
    fn tick(&mut self) {
        if !self.check_activation() {
            return;
        }
        let now = self.now();
        let min_isr = self.config.min_insync_replicas;
        if !self.config.listeners.is_empty() {
            // The local broker registered by this controller lives in this process.
            self.sessions.touch(self.config.node_id, now);
        }
        let image = self.journal.image();
        for id in self
            .sessions
            .expired(&image, now, self.config.session_timeout)
        {
            // One broker per change: each fencing is computed on the image after the
            // previous one.
            let image = self.journal.image();
            let Some(broker) = image.broker(id) else {
                continue;
            };
            warn!(node_id = %id, "broker session expired; fencing it");
            if let Err(e) = self.commit(brokers::fence(&image, broker, min_isr), false) {
                error!(error = %e, node_id = %id, "fencing not written");
                return;
            }
        }
        let records = replication::unclean_elections(&self.journal.image(), min_isr);
        if let Err(e) = self.commit(records, false) {
            error!(error = %e, "unclean elections not written");
        }
        let due = now.saturating_duration_since(self.last_rebalance)
            >= self.config.leader_imbalance_check_interval;
        if self.config.auto_leader_rebalance_enable && due {
            self.last_rebalance = now;
            let records = replication::rebalance(
                &self.journal.image(),
                self.config.leader_imbalance_per_broker_percentage,
                min_isr,
            );
            if !records.is_empty() {
                info!(partitions = records.len(), "rebalancing preferred leaders");
            }
            if let Err(e) = self.commit(records, false) {
                error!(error = %e, "preferred leader elections not written");
            }
        }
    }

    /// Commits `records` through the journal (nothing for a validate-only or empty
    /// change); the journal publishes the new image before this returns.
    fn commit(&mut self, records: Vec<MetadataRecord>, validate_only: bool) -> Result<()> {
        if validate_only || records.is_empty() {
            return Ok(());
        }
        self.journal.append(&records).map(drop).map_err(|e| {
            if !matches!(e, MetadataError::NotController { .. }) {
                error!(error = %e, records = records.len(), "metadata change not written");
            }
            e
        })
    }

    fn auto_create(&mut self, names: Vec<String>) -> Result<Vec<CreateTopicResult>> {
        let (internal, external): (Vec<String>, Vec<String>) =
            names.into_iter().partition(|n| is_internal(n));
        let requests: Vec<CreateTopic> = external
            .into_iter()
            .map(CreateTopic::with_defaults)
            .collect();
        let image = self.journal.image();
        let (records, mut results) = topics::create_topics(&mut self.ctx(&image), &requests);
        self.commit(records, false)?;
        let image = self.journal.image();
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
    /// when `listeners` is set and differs from its registration. The local broker
    /// is registered unfenced: it runs in this process, so this controller keeps
    /// its session alive (see `tick`).
    pub(super) fn bootstrap(
        &mut self,
        listeners: Vec<Endpoint>,
        rack: Option<String>,
    ) -> Result<()> {
        let image = self.journal.image();
        let mut records = Vec::new();
        if !image.features().contains_key(METADATA_VERSION_FEATURE) {
            records.push(MetadataRecord::FeatureLevel(FeatureLevelRecord {
                name: METADATA_VERSION_FEATURE.into(),
                feature_level: METADATA_VERSION_LEVEL,
            }));
        }
        // Its own batch: the registration below must be first in its batch (see
        // `brokers::register`).
        self.commit(std::mem::take(&mut records), false)?;
        let image = self.journal.image();
        let node = self.config.node_id;
        let current = image.broker(node);
        let unchanged = current.is_some_and(|b| {
            b.endpoints == listeners && b.rack == rack && !b.fenced && !b.in_controlled_shutdown
        });
        if !listeners.is_empty() && !unchanged {
            // Kafka's broker epoch is the offset of the registration record.
            let epoch = self.journal.next_offset().get();
            let reg = BrokerRegistration {
                node,
                incarnation_id: self.ids.next_uuid(),
                listeners: listeners.clone(),
                rack: rack.clone(),
                previous_broker_epoch: -1,
            };
            records.push(brokers::registration_record(&reg, epoch, false));
            info!(node_id = %node, broker_epoch = epoch, "registering the local broker");
        }
        if !listeners.is_empty() {
            self.sessions.touch(node, self.now());
        }
        self.config.listeners = listeners;
        self.config.rack = rack;
        self.commit(records, false)
    }
}

/// The partition state AlterPartition answers, from the image after the change.
fn partition_state(
    image: &Arc<MetadataImage>,
    req: &super::cluster_types::AlterPartition,
) -> std::result::Result<PartitionState, ApiError> {
    let p = image
        .topic_by_id(req.topic_id)
        .and_then(|t| t.partition(req.partition))
        .ok_or(ApiError::from_code(ErrorCode::UnknownTopicOrPartition))?;
    Ok(PartitionState {
        leader: p.leader_id(),
        leader_epoch: p.leader_epoch.get(),
        isr: p.isr.iter().map(|n| n.get()).collect(),
        partition_epoch: p.partition_epoch,
    })
}
