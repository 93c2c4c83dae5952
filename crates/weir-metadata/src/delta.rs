//! The metadata delta: records replayed on top of an image, then applied to make the
//! next image (Kafka's `MetadataDelta`).
//!
//! Replay is the one place records change state, both while the controller serves
//! and while the store loads the log at startup, so a given sequence of records
//! always yields the same image. A record that does not fit the image (a partition of
//! an unknown topic, a topic name taken twice) is an error: the delta is then thrown
//! away whole, and the image it started from stays current.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use weir_protocol::messages::{
    BrokerRegistrationChangeRecord, ConfigRecord, PartitionChangeRecord, PartitionRecord,
    RegisterBrokerRecord, TopicRecord,
};
use weir_protocol::Uuid;
use weir_types::{LeaderEpoch, NodeId, Offset};

use crate::error::{MetadataError, Result};
use crate::image::{
    BrokerImage, ConfigResource, Endpoint, MetadataImage, MetadataProvenance, PartitionImage,
    TopicImage,
};
use crate::record::{MetadataRecord, RESOURCE_TYPE_TOPIC};

/// PartitionChangeRecord's "leader unchanged".
const NO_LEADER_CHANGE: i32 = -2;
/// "No leader" on the wire.
const NO_LEADER: i32 = -1;

/// Changes on top of a base image; see the module docs.
#[derive(Debug, Clone)]
pub struct MetadataDelta {
    /// The image the delta started from.
    base: Arc<MetadataImage>,
    /// The base with every replayed record applied so far.
    next: MetadataImage,
    /// Topics created or changed (ids present in `next`).
    changed_topics: BTreeSet<Uuid>,
    /// Topics of the base image that were deleted, as they were in the base.
    deleted_topics: BTreeMap<Uuid, Arc<TopicImage>>,
    /// Brokers (re-)registered.
    changed_brokers: BTreeSet<NodeId>,
}

impl MetadataDelta {
    /// An empty delta on top of `base`.
    pub fn new(base: Arc<MetadataImage>) -> Self {
        MetadataDelta {
            next: (*base).clone(),
            base,
            changed_topics: BTreeSet::new(),
            deleted_topics: BTreeMap::new(),
            changed_brokers: BTreeSet::new(),
        }
    }

    /// The image the delta started from.
    pub fn base(&self) -> &Arc<MetadataImage> {
        &self.base
    }

    /// Ids of topics created or changed by the delta (and still existing).
    pub fn changed_topics(&self) -> &BTreeSet<Uuid> {
        &self.changed_topics
    }

    /// Topics of the base image that the delta deleted.
    pub fn deleted_topics(&self) -> &BTreeMap<Uuid, Arc<TopicImage>> {
        &self.deleted_topics
    }

    /// Brokers the delta (re-)registered.
    pub fn changed_brokers(&self) -> &BTreeSet<NodeId> {
        &self.changed_brokers
    }

    /// Whether no record was replayed.
    pub fn is_empty(&self) -> bool {
        self.next.provenance == self.base.provenance
    }

    /// Applies `record`, found at `offset` in a batch of leader epoch `epoch`
    /// appended at `log_time_ms`. Offsets must increase.
    pub fn replay(
        &mut self,
        offset: Offset,
        epoch: i32,
        log_time_ms: i64,
        record: &MetadataRecord,
    ) -> Result<()> {
        let fail = |reason: String| MetadataError::Replay {
            offset: offset.get(),
            reason,
        };
        if offset <= self.next.provenance.last_offset {
            return Err(fail(format!(
                "offset does not follow {}",
                self.next.provenance.last_offset
            )));
        }
        match record {
            MetadataRecord::RegisterBroker(r) => self.register_broker(r),
            MetadataRecord::Topic(r) => self.topic(r).map_err(fail)?,
            MetadataRecord::Partition(r) => self.partition(r).map_err(fail)?,
            MetadataRecord::Config(r) => self.config(r).map_err(fail)?,
            MetadataRecord::PartitionChange(r) => self.partition_change(r).map_err(fail)?,
            MetadataRecord::RemoveTopic(r) => self.remove_topic(r.topic_id).map_err(fail)?,
            MetadataRecord::UnregisterBroker(r) => {
                self.broker_mut(r.broker_id, r.broker_epoch).map_err(fail)?;
                self.next.brokers.remove(&NodeId(r.broker_id));
            }
            MetadataRecord::FenceBroker(r) => {
                self.broker_mut(r.id, r.epoch).map_err(fail)?.fenced = true
            }
            MetadataRecord::UnfenceBroker(r) => {
                self.broker_mut(r.id, r.epoch).map_err(fail)?.fenced = false;
            }
            MetadataRecord::BrokerRegistrationChange(r) => {
                self.registration_change(r).map_err(fail)?;
            }
            MetadataRecord::ProducerIds(r) => {
                if r.next_producer_id <= self.next.next_producer_id {
                    return Err(fail(format!(
                        "next producer id {} does not follow {}",
                        r.next_producer_id, self.next.next_producer_id
                    )));
                }
                self.next.next_producer_id = r.next_producer_id;
            }
            MetadataRecord::FeatureLevel(r) => {
                if r.feature_level == 0 {
                    self.next.features.remove(&r.name);
                } else {
                    self.next.features.insert(r.name.clone(), r.feature_level);
                }
            }
        }
        self.next.provenance = MetadataProvenance {
            last_offset: offset,
            last_epoch: epoch,
            last_log_time_ms: log_time_ms,
        };
        Ok(())
    }

    /// The next image: the base with every replayed record applied.
    pub fn apply(self) -> MetadataImage {
        self.next
    }

    fn register_broker(&mut self, r: &RegisterBrokerRecord) {
        let id = NodeId(r.broker_id);
        let endpoints = r
            .end_points
            .iter()
            .map(|e| Endpoint {
                name: e.name.clone(),
                host: e.host.clone(),
                port: e.port,
                security_protocol: e.security_protocol,
            })
            .collect();
        let broker = BrokerImage {
            id,
            incarnation_id: r.incarnation_id,
            epoch: r.broker_epoch,
            endpoints,
            rack: r.rack.clone(),
            fenced: r.fenced,
            in_controlled_shutdown: r.in_controlled_shutdown,
        };
        self.next.brokers.insert(id, broker);
        self.changed_brokers.insert(id);
    }

    /// Registered broker `id`, for changing; `epoch` must be its current epoch (a
    /// record for an older registration does not apply).
    fn broker_mut(&mut self, id: i32, epoch: i64) -> Result<&mut BrokerImage, String> {
        let b = self
            .next
            .brokers
            .get_mut(&NodeId(id))
            .ok_or_else(|| format!("broker {id} is not registered"))?;
        if b.epoch != epoch {
            return Err(format!("broker {id} has epoch {}, not {epoch}", b.epoch));
        }
        self.changed_brokers.insert(NodeId(id));
        Ok(b)
    }

    fn registration_change(&mut self, r: &BrokerRegistrationChangeRecord) -> Result<(), String> {
        let b = self.broker_mut(r.broker_id, r.broker_epoch)?;
        match r.fenced {
            -1 => b.fenced = false,
            0 => {}
            1 => b.fenced = true,
            other => return Err(format!("fenced value {other} is not -1, 0 or 1")),
        }
        match r.in_controlled_shutdown {
            0 => {}
            1 => b.in_controlled_shutdown = true,
            other => {
                return Err(format!(
                    "in_controlled_shutdown value {other} is not 0 or 1"
                ))
            }
        }
        Ok(())
    }

    fn topic(&mut self, r: &TopicRecord) -> Result<(), String> {
        if r.topic_id == Uuid::ZERO {
            return Err(format!("topic {} has the zero id", r.name));
        }
        if self.next.topic_ids_by_name.contains_key(&r.name) {
            return Err(format!("topic {} already exists", r.name));
        }
        if self.next.topics_by_id.contains_key(&r.topic_id) {
            return Err(format!("topic id of {} is already taken", r.name));
        }
        let topic = TopicImage {
            id: r.topic_id,
            name: r.name.clone(),
            partitions: Vec::new(),
            configs: BTreeMap::new(),
        };
        self.next
            .topic_ids_by_name
            .insert(r.name.clone(), r.topic_id);
        self.next.topics_by_id.insert(r.topic_id, Arc::new(topic));
        self.changed_topics.insert(r.topic_id);
        Ok(())
    }

    /// The topic `id` of the next image, for changing.
    fn topic_mut(&mut self, id: Uuid) -> Result<&mut TopicImage, String> {
        let topic = self
            .next
            .topics_by_id
            .get_mut(&id)
            .ok_or_else(|| format!("unknown topic id {}", crate::uuid::to_base64(id)))?;
        self.changed_topics.insert(id);
        Ok(Arc::make_mut(topic))
    }

    fn partition(&mut self, r: &PartitionRecord) -> Result<(), String> {
        let topic = self.topic_mut(r.topic_id)?;
        let partition = PartitionImage {
            replicas: nodes(&r.replicas),
            isr: nodes(&r.isr),
            removing_replicas: nodes(&r.removing_replicas),
            adding_replicas: nodes(&r.adding_replicas),
            leader: leader(r.leader),
            leader_epoch: LeaderEpoch(r.leader_epoch),
            partition_epoch: r.partition_epoch,
            leader_recovery_state: r.leader_recovery_state,
            elr: r
                .eligible_leader_replicas
                .as_deref()
                .map_or_else(Vec::new, nodes),
            last_known_elr: r.last_known_elr.as_deref().map_or_else(Vec::new, nodes),
        };
        let len = topic.partitions.len();
        match usize::try_from(r.partition_id) {
            Ok(i) if i == len => topic.partitions.push(partition),
            Ok(i) if i < len => topic.partitions[i] = partition,
            _ => {
                return Err(format!(
                    "partition {} of {} does not follow its {len} partitions",
                    r.partition_id, topic.name
                ))
            }
        }
        Ok(())
    }

    fn partition_change(&mut self, r: &PartitionChangeRecord) -> Result<(), String> {
        let topic = self.topic_mut(r.topic_id)?;
        let name = topic.name.clone();
        let p = usize::try_from(r.partition_id)
            .ok()
            .and_then(|i| topic.partitions.get_mut(i))
            .ok_or_else(|| format!("unknown partition {name}-{}", r.partition_id))?;
        // Kafka's PartitionRegistration.merge: a leader field other than "unchanged"
        // bumps the leader epoch (even naming the same leader); any change bumps the
        // partition epoch.
        if let Some(v) = &r.replicas {
            p.replicas = nodes(v);
        }
        if let Some(v) = &r.isr {
            p.isr = nodes(v);
        }
        if let Some(v) = &r.removing_replicas {
            p.removing_replicas = nodes(v);
        }
        if let Some(v) = &r.adding_replicas {
            p.adding_replicas = nodes(v);
        }
        if let Some(v) = &r.eligible_leader_replicas {
            p.elr = nodes(v);
        }
        if let Some(v) = &r.last_known_elr {
            p.last_known_elr = nodes(v);
        }
        if r.leader != NO_LEADER_CHANGE {
            p.leader = leader(r.leader);
            p.leader_epoch = LeaderEpoch(p.leader_epoch.get().saturating_add(1));
        }
        if r.leader_recovery_state != -1 {
            p.leader_recovery_state = r.leader_recovery_state;
        }
        p.partition_epoch = p.partition_epoch.saturating_add(1);
        Ok(())
    }

    fn config(&mut self, r: &ConfigRecord) -> Result<(), String> {
        let configs = if r.resource_type == RESOURCE_TYPE_TOPIC {
            let id = *self
                .next
                .topic_ids_by_name
                .get(&r.resource_name)
                .ok_or_else(|| format!("config {} of unknown topic {}", r.name, r.resource_name))?;
            &mut self.topic_mut(id)?.configs
        } else {
            let key = ConfigResource {
                resource_type: r.resource_type,
                name: r.resource_name.clone(),
            };
            self.next.other_configs.entry(key).or_default()
        };
        match &r.value {
            Some(v) => configs.insert(r.name.clone(), v.clone()),
            None => configs.remove(&r.name),
        };
        self.next.other_configs.retain(|_, c| !c.is_empty());
        Ok(())
    }

    fn remove_topic(&mut self, id: Uuid) -> Result<(), String> {
        let topic = self.next.topics_by_id.remove(&id).ok_or_else(|| {
            format!(
                "cannot remove unknown topic id {}",
                crate::uuid::to_base64(id)
            )
        })?;
        self.next.topic_ids_by_name.remove(&topic.name);
        self.changed_topics.remove(&id);
        if let Some(old) = self.base.topics_by_id.get(&id) {
            self.deleted_topics.insert(id, Arc::clone(old));
        }
        Ok(())
    }
}

fn nodes(ids: &[i32]) -> Vec<NodeId> {
    ids.iter().copied().map(NodeId).collect()
}

fn leader(id: i32) -> Option<NodeId> {
    (id != NO_LEADER && id >= 0).then_some(NodeId(id))
}

#[cfg(test)]
#[path = "delta_tests.rs"]
pub(crate) mod tests;
