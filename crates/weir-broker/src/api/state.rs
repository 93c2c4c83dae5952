//! What every handler works with: the broker's settings, the metadata, the
//! partitions and the producer id allocator.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use weir_metadata::{Controller, MetadataImage};
use weir_types::NodeId;

use super::configs::TopicConfigs;
use super::producer_ids::ProducerIds;
use crate::config::BrokerConfig;
use crate::coordinator::GroupCoordinator;
use crate::replica::ReplicaManager;
use crate::Endpoint;

/// The longest a Metadata request waits for the newest image to be applied before
/// it answers from that image anyway.
const SERVED_WAIT: Duration = Duration::from_secs(5);

/// The api layer's shared state; built once by the broker.
#[derive(Debug)]
pub struct ApiState {
    /// Broker settings (`auto.create.topics.enable`, defaults, ...).
    pub(crate) config: Arc<BrokerConfig>,
    /// This broker's advertised endpoints, one per listener: the fallback for
    /// Metadata before the registration reaches the image.
    pub(crate) endpoints: Vec<Endpoint>,
    /// The controller: admin requests and auto-creation go through it.
    pub(crate) controller: Controller,
    /// The partitions this broker hosts.
    pub(crate) replicas: ReplicaManager,
    /// Producer ids for InitProducerId.
    pub(crate) producer_ids: ProducerIds,
    /// The config catalog (DescribeConfigs, CreateTopics v5+).
    pub(crate) topic_configs: TopicConfigs,
    /// Consumer groups and committed offsets (FindCoordinator, JoinGroup, ...).
    pub(crate) groups: GroupCoordinator,
    /// Cancelled when the broker starts draining: long polls answer at once
    /// instead of holding the drain up for their `max_wait_ms`.
    pub(crate) draining: CancellationToken,
}

impl ApiState {
    /// The state the handlers need; `replicas` follows `controller`'s images.
    pub fn new(
        config: Arc<BrokerConfig>,
        endpoints: Vec<Endpoint>,
        controller: Controller,
        replicas: ReplicaManager,
        producer_ids: ProducerIds,
        groups: GroupCoordinator,
        draining: CancellationToken,
    ) -> Self {
        let topic_configs = TopicConfigs::new(&config);
        Self {
            config,
            endpoints,
            controller,
            replicas,
            producer_ids,
            topic_configs,
            groups,
            draining,
        }
    }

    /// This node's id.
    pub(crate) fn node_id(&self) -> NodeId {
        self.config.node_id
    }

    /// The `controller_id` clients are told: the active controller if it is also a
    /// broker, else this node (while an election is under way, or when the active
    /// controller is a controller-only node). Every node forwards admin requests to
    /// the active controller, so naming any live broker is correct, and a client
    /// that sends admin requests to "the controller" must be able to reach it: -1
    /// would stall such clients, and a controller-only node has no client listener
    /// (Kafka's brokers likewise name a broker, not a dedicated controller).
    pub(crate) fn controller_id(&self) -> i32 {
        let me = self.config.node_id;
        match self.controller.active_controller() {
            Some(active) if active == me => me.get(),
            Some(active) if self.controller.image().broker(active).is_some() => active.get(),
            _ => me.get(),
        }
    }

    /// The controller's newest image, once this broker serves it: waits (at most
    /// [`SERVED_WAIT`]) until the replica manager has applied it.
    ///
    /// Metadata and DescribeCluster answer from this, so a client is not sent to a
    /// partition in the moment between the controller creating it and this broker
    /// opening its log (Kafka's brokers answer from their applied image for the same
    /// reason). Normally nothing is in flight and this returns at once.
    pub(crate) async fn served_image(&self) -> Arc<MetadataImage> {
        let image = self.controller.image();
        self.replicas
            .wait_applied(image.offset(), Instant::now() + SERVED_WAIT)
            .await;
        image
    }

    /// Waits, at most `timeout`, until this broker serves every metadata change the
    /// controller has made so far.
    ///
    /// Admin handlers call this after a change so that a client that saw success
    /// can use the result at once: a topic whose creation was acknowledged is served
    /// by the next Produce. Kafka answers as soon as the controller commits, and
    /// clients retry the UNKNOWN_TOPIC_OR_PARTITION that may follow; waiting here
    /// spares them that round.
    pub(crate) async fn wait_applied(&self, timeout: Duration) {
        let offset = self.controller.image().offset();
        self.replicas
            .wait_applied(offset, Instant::now() + timeout)
            .await;
    }
}
