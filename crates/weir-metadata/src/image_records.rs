//! An image written back out as records: the content of a metadata snapshot.
//!
//! A Raft controller quorum cannot keep its log forever: it snapshots the image and
//! purges the log below it, and a lagging or restarted node loads the snapshot
//! instead of the purged records (Kafka's `<offset>-<epoch>.checkpoint` files hold
//! the image as records in the same way). [`MetadataImage::to_records`] is the one
//! place that knows how to restate every part of an image as records; replaying its
//! output onto an empty image of the same cluster yields an equal image (tested
//! below), and [`MetadataImage::with_provenance`] then puts the loaded image back at
//! the offset the snapshot was taken at.
//!
//! The order is the order replay needs: features, brokers, then each topic followed
//! by its partitions and configs, then the configs of other resources, then the
//! producer id block (without it, a controller elected after loading the snapshot
//! would hand out producer ids again).
//!
//! Every field of [`MetadataImage`] must be restated here: a field added to the image
//! needs its record below and a value in the round-trip test's history.

use weir_protocol::messages::metadata_register_broker_record::BrokerEndpoint;
use weir_protocol::messages::{
    ConfigRecord, FeatureLevelRecord, PartitionRecord, ProducerIdsRecord, RegisterBrokerRecord,
    TopicRecord,
};

use crate::image::{MetadataImage, MetadataProvenance};
use crate::record::{MetadataRecord, RESOURCE_TYPE_TOPIC};

impl MetadataImage {
    /// Every part of the image as records, in replay order (see the module docs).
    /// The provenance is not a record: a snapshot carries it beside them.
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        let mut out = Vec::new();
        for (name, level) in &self.features {
            out.push(MetadataRecord::FeatureLevel(FeatureLevelRecord {
                name: name.clone(),
                feature_level: *level,
            }));
        }
        for b in self.brokers.values() {
            out.push(MetadataRecord::RegisterBroker(RegisterBrokerRecord {
                broker_id: b.id.get(),
                incarnation_id: b.incarnation_id,
                broker_epoch: b.epoch,
                end_points: b
                    .endpoints
                    .iter()
                    .map(|e| BrokerEndpoint {
                        name: e.name.clone(),
                        host: e.host.clone(),
                        port: e.port,
                        security_protocol: e.security_protocol,
                    })
                    .collect(),
                rack: b.rack.clone(),
                fenced: b.fenced,
                in_controlled_shutdown: b.in_controlled_shutdown,
                ..RegisterBrokerRecord::default()
            }));
        }
        for t in self.topics_by_name() {
            out.push(MetadataRecord::Topic(TopicRecord {
                name: t.name.clone(),
                topic_id: t.id,
            }));
            for (i, p) in t.partitions.iter().enumerate() {
                let ids = |v: &[weir_types::NodeId]| v.iter().map(|n| n.get()).collect();
                out.push(MetadataRecord::Partition(PartitionRecord {
                    partition_id: i32::try_from(i).unwrap_or(i32::MAX),
                    topic_id: t.id,
                    replicas: ids(&p.replicas),
                    isr: ids(&p.isr),
                    removing_replicas: ids(&p.removing_replicas),
                    adding_replicas: ids(&p.adding_replicas),
                    leader: p.leader_id(),
                    leader_recovery_state: p.leader_recovery_state,
                    leader_epoch: p.leader_epoch.get(),
                    partition_epoch: p.partition_epoch,
                    // Null when empty, so partitions without ELR keep the v0 encoding.
                    eligible_leader_replicas: (!p.elr.is_empty()).then(|| ids(&p.elr)),
                    last_known_elr: (!p.last_known_elr.is_empty()).then(|| ids(&p.last_known_elr)),
                    ..PartitionRecord::default()
                }));
            }
            for (name, value) in &t.configs {
                out.push(MetadataRecord::Config(ConfigRecord {
                    resource_type: RESOURCE_TYPE_TOPIC,
                    resource_name: t.name.clone(),
                    name: name.clone(),
                    value: Some(value.clone()),
                }));
            }
        }
        for (resource, configs) in &self.other_configs {
            for (name, value) in configs {
                out.push(MetadataRecord::Config(ConfigRecord {
                    resource_type: resource.resource_type,
                    resource_name: resource.name.clone(),
                    name: name.clone(),
                    value: Some(value.clone()),
                }));
            }
        }
        if self.next_producer_id > 0 {
            out.push(MetadataRecord::ProducerIds(ProducerIdsRecord {
                broker_id: -1,
                broker_epoch: -1,
                next_producer_id: self.next_producer_id,
            }));
        }
        out
    }

    /// The same image, standing at `provenance`: for a loaded snapshot (whose records
    /// were replayed at offsets of their own) and for a journal whose changes take
    /// one offset per change rather than one per record.
    pub fn with_provenance(mut self, provenance: MetadataProvenance) -> MetadataImage {
        self.provenance = provenance;
        self
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use weir_protocol::messages::{PartitionChangeRecord, RemoveTopicRecord};
    use weir_protocol::Uuid;
    use weir_types::Offset;

    use super::*;
    use crate::delta::MetadataDelta;
    use crate::record::RESOURCE_TYPE_BROKER;

    fn replay_all(cluster: &str, records: &[MetadataRecord]) -> MetadataImage {
        let mut delta = MetadataDelta::new(Arc::new(MetadataImage::empty(cluster)));
        for (i, r) in records.iter().enumerate() {
            delta.replay(Offset(i as i64), 3, 1000, r).unwrap();
        }
        delta.apply()
    }

    fn broker(id: i32, fenced: bool, shutting_down: bool) -> MetadataRecord {
        MetadataRecord::RegisterBroker(RegisterBrokerRecord {
            broker_id: id,
            incarnation_id: Uuid([id as u8; 16]),
            broker_epoch: 10 + i64::from(id),
            end_points: vec![BrokerEndpoint {
                name: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: 9000 + id as u16,
                security_protocol: 0,
            }],
            rack: (id == 2).then(|| "r2".to_string()),
            fenced,
            in_controlled_shutdown: shutting_down,
            ..RegisterBrokerRecord::default()
        })
    }

    fn partition(topic: u8, p: i32, replicas: &[i32], leader: i32) -> MetadataRecord {
        MetadataRecord::Partition(PartitionRecord {
            partition_id: p,
            topic_id: Uuid([topic; 16]),
            replicas: replicas.to_vec(),
            isr: replicas.to_vec(),
            removing_replicas: if p == 1 { vec![replicas[0]] } else { vec![] },
            adding_replicas: if p == 1 { vec![3] } else { vec![] },
            leader,
            leader_recovery_state: 0,
            leader_epoch: 4,
            partition_epoch: 6,
            ..PartitionRecord::default()
        })
    }

    fn config(resource_type: i8, resource: &str, k: &str, v: Option<&str>) -> MetadataRecord {
        MetadataRecord::Config(ConfigRecord {
            resource_type,
            resource_name: resource.into(),
            name: k.into(),
            value: v.map(String::from),
        })
    }

    /// A history touching every part of an image.
    fn history() -> Vec<MetadataRecord> {
        let topic = |name: &str, n: u8| {
            MetadataRecord::Topic(TopicRecord {
                name: name.into(),
                topic_id: Uuid([n; 16]),
            })
        };
        vec![
            MetadataRecord::FeatureLevel(FeatureLevelRecord {
                name: "metadata.version".into(),
                feature_level: 7,
            }),
            broker(1, false, false),
            broker(2, true, false),
            broker(3, false, true),
            topic("orders", 1),
            config(RESOURCE_TYPE_TOPIC, "orders", "retention.ms", Some("1000")),
            partition(1, 0, &[1, 2], 1),
            partition(1, 1, &[2, 1], 2),
            partition(1, 2, &[3], -1),
            topic("gone", 2),
            partition(2, 0, &[1], 1),
            MetadataRecord::PartitionChange(PartitionChangeRecord {
                partition_id: 0,
                topic_id: Uuid([1; 16]),
                leader: 2,
                isr: Some(vec![2]),
                ..PartitionChangeRecord::default()
            }),
            config(
                RESOURCE_TYPE_TOPIC,
                "orders",
                "cleanup.policy",
                Some("compact"),
            ),
            config(RESOURCE_TYPE_BROKER, "", "log.retention.ms", Some("5")),
            config(RESOURCE_TYPE_BROKER, "2", "log.retention.ms", Some("7")),
            MetadataRecord::RemoveTopic(RemoveTopicRecord {
                topic_id: Uuid([2; 16]),
            }),
            topic("after", 3),
            partition(3, 0, &[2], 2),
            MetadataRecord::ProducerIds(ProducerIdsRecord {
                broker_id: 1,
                broker_epoch: 11,
                next_producer_id: 1000,
            }),
            MetadataRecord::ProducerIds(ProducerIdsRecord {
                broker_id: 2,
                broker_epoch: 12,
                next_producer_id: 2000,
            }),
        ]
    }

    #[test]
    fn an_image_replayed_from_its_records_is_equal() {
        let image = replay_all("c1", &history());
        assert!(image.topic_count() == 2 && image.brokers().len() == 3);
        assert_eq!(image.next_producer_id(), 2000);
        let restated = image.to_records();
        let back = replay_all("c1", &restated).with_provenance(image.provenance());
        assert_eq!(back, image);
        assert!(back.check_invariants().is_ok());
        // Written out again, the records are the same: the order is deterministic.
        assert_eq!(back.to_records(), restated);
    }

    #[test]
    fn the_empty_image_has_no_records() {
        assert!(MetadataImage::empty("c").to_records().is_empty());
    }
}
