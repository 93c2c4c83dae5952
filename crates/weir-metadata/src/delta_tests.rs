use weir_protocol::messages::metadata_register_broker_record::BrokerEndpoint;
use weir_protocol::messages::{FeatureLevelRecord, RemoveTopicRecord};

use super::*;
use crate::changes::LocalChanges;
use crate::record::RESOURCE_TYPE_BROKER;

pub(crate) fn id(n: u8) -> Uuid {
    Uuid([n; 16])
}

pub(crate) fn topic(name: &str, n: u8) -> MetadataRecord {
    MetadataRecord::Topic(TopicRecord {
        name: name.into(),
        topic_id: id(n),
    })
}

pub(crate) fn partition(n: u8, p: i32, replicas: &[i32], leader: i32) -> MetadataRecord {
    MetadataRecord::Partition(PartitionRecord {
        partition_id: p,
        topic_id: id(n),
        replicas: replicas.to_vec(),
        isr: replicas.to_vec(),
        leader,
        leader_epoch: 0,
        partition_epoch: 0,
        ..PartitionRecord::default()
    })
}

pub(crate) fn config(
    resource_type: i8,
    resource: &str,
    k: &str,
    v: Option<&str>,
) -> MetadataRecord {
    MetadataRecord::Config(ConfigRecord {
        resource_type,
        resource_name: resource.into(),
        name: k.into(),
        value: v.map(String::from),
    })
}

pub(crate) fn broker(node: i32, port: u16) -> MetadataRecord {
    MetadataRecord::RegisterBroker(RegisterBrokerRecord {
        broker_id: node,
        incarnation_id: id(200),
        broker_epoch: 5,
        end_points: vec![BrokerEndpoint {
            name: "PLAINTEXT".into(),
            host: "127.0.0.1".into(),
            port,
            security_protocol: 0,
        }],
        rack: Some("r1".into()),
        fenced: false,
        ..RegisterBrokerRecord::default()
    })
}

fn change(n: u8, p: i32, leader: i32, isr: Option<&[i32]>) -> MetadataRecord {
    MetadataRecord::PartitionChange(PartitionChangeRecord {
        partition_id: p,
        topic_id: id(n),
        leader,
        isr: isr.map(<[i32]>::to_vec),
        ..PartitionChangeRecord::default()
    })
}

fn remove(n: u8) -> MetadataRecord {
    MetadataRecord::RemoveTopic(RemoveTopicRecord { topic_id: id(n) })
}

/// A history touching every record type: brokers, topics, configs, changes, deletes.
pub(crate) fn history() -> Vec<MetadataRecord> {
    vec![
        MetadataRecord::FeatureLevel(FeatureLevelRecord {
            name: "metadata.version".into(),
            feature_level: 7,
        }),
        broker(1, 9092),
        broker(2, 9093),
        topic("orders", 1),
        config(RESOURCE_TYPE_TOPIC, "orders", "retention.ms", Some("1000")),
        partition(1, 0, &[1, 2], 1),
        partition(1, 1, &[2, 1], 2),
        topic("tmp", 2),
        partition(2, 0, &[1], 1),
        change(1, 0, 2, Some(&[2])),
        config(RESOURCE_TYPE_TOPIC, "orders", "retention.ms", None),
        config(
            RESOURCE_TYPE_TOPIC,
            "orders",
            "cleanup.policy",
            Some("compact"),
        ),
        config(RESOURCE_TYPE_BROKER, "", "log.retention.ms", Some("5")),
        remove(2),
        topic("tmp", 3),
        partition(3, 0, &[2], 2),
    ]
}

pub(crate) fn replay_all(base: MetadataImage, records: &[MetadataRecord]) -> Result<MetadataImage> {
    let mut d = MetadataDelta::new(Arc::new(base));
    for (i, r) in records.iter().enumerate() {
        d.replay(Offset(i as i64), 1, 100 + i as i64, r)?;
    }
    Ok(d.apply())
}

#[test]
fn replay_builds_the_image() {
    let image = replay_all(MetadataImage::empty("c1"), &history()).unwrap();
    image.check_invariants().unwrap();
    assert_eq!(image.cluster_id(), "c1");
    assert_eq!(image.offset(), Offset(15));
    assert_eq!(image.provenance().last_epoch, 1);
    assert_eq!(image.provenance().last_log_time_ms, 115);
    assert_eq!(image.features().get("metadata.version"), Some(&7));
    let b = image.broker(NodeId(2)).unwrap();
    assert_eq!(b.endpoint("PLAINTEXT").unwrap().port, 9093);
    assert_eq!(b.rack.as_deref(), Some("r1"));

    let orders = image.topic("orders").unwrap();
    assert_eq!(orders.id, id(1));
    assert_eq!(orders.partitions.len(), 2);
    let p0 = orders.partition(0).unwrap();
    assert_eq!(p0.leader, Some(NodeId(2)));
    assert_eq!(p0.isr, vec![NodeId(2)]);
    assert_eq!(p0.replicas, vec![NodeId(1), NodeId(2)]);
    assert_eq!((p0.leader_epoch, p0.partition_epoch), (LeaderEpoch(1), 1));
    assert_eq!(
        orders.configs,
        BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())])
    );
    // "tmp" was deleted and re-created: a new id, and the old one is gone.
    assert_eq!(image.topic("tmp").unwrap().id, id(3));
    assert!(image.topic_by_id(id(2)).is_none());
    assert_eq!(image.topic_count(), 2);
    let names: Vec<&str> = image.topics_by_name().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["orders", "tmp"]);
    let cluster_default = ConfigResource {
        resource_type: RESOURCE_TYPE_BROKER,
        name: String::new(),
    };
    assert_eq!(
        image.configs(&cluster_default).unwrap()["log.retention.ms"],
        "5"
    );
}

#[test]
fn replaying_the_same_records_always_yields_the_same_image() {
    let records = history();
    let once = replay_all(MetadataImage::empty("c"), &records).unwrap();
    let again = replay_all(MetadataImage::empty("c"), &records).unwrap();
    assert_eq!(once, again);
    // One delta per record (as the controller does per change) gives the same image
    // as one delta for everything (as a load at startup does).
    let mut image = Arc::new(MetadataImage::empty("c"));
    for (i, r) in records.iter().enumerate() {
        let mut d = MetadataDelta::new(Arc::clone(&image));
        d.replay(Offset(i as i64), 1, 100 + i as i64, r).unwrap();
        image = Arc::new(d.apply());
    }
    assert_eq!(*image, once);
}

#[test]
fn partition_change_follows_kafka_merge_rules() {
    let mut records = vec![topic("t", 1), partition(1, 0, &[1, 2, 3], 1)];
    // ISR shrink without a leader change: only the partition epoch moves.
    records.push(change(1, 0, -2, Some(&[1, 2])));
    let image = replay_all(MetadataImage::empty("c"), &records).unwrap();
    let p = image.partition("t", 0).unwrap();
    assert_eq!(
        (p.leader, p.leader_epoch, p.partition_epoch),
        (Some(NodeId(1)), LeaderEpoch(0), 1)
    );
    assert_eq!(p.isr, vec![NodeId(1), NodeId(2)]);
    // Leader -1: no leader, and the leader epoch bumps.
    records.push(change(1, 0, -1, Some(&[])));
    let image = replay_all(MetadataImage::empty("c"), &records).unwrap();
    let p = image.partition("t", 0).unwrap();
    assert_eq!(
        (p.leader, p.leader_id(), p.leader_epoch, p.partition_epoch),
        (None, -1, LeaderEpoch(1), 2)
    );
}

#[test]
fn records_that_do_not_fit_the_image_are_errors() {
    let base = || MetadataImage::empty("c");
    let cases: Vec<Vec<MetadataRecord>> = vec![
        vec![partition(1, 0, &[1], 1)],                // unknown topic
        vec![topic("t", 1), topic("t", 2)],            // name taken
        vec![topic("t", 1), topic("u", 1)],            // id taken
        vec![topic("t", 0)],                           // zero id
        vec![topic("t", 1), partition(1, 1, &[1], 1)], // gap in partition ids
        vec![topic("t", 1), change(1, 0, 1, None)],    // unknown partition
        vec![remove(4)],                               // unknown topic id
        vec![config(RESOURCE_TYPE_TOPIC, "nope", "a", Some("b"))], // config of unknown topic
    ];
    for records in cases {
        let err = replay_all(base(), &records).unwrap_err();
        assert!(
            matches!(err, MetadataError::Replay { .. }),
            "{records:?}: {err}"
        );
    }
    let mut d = MetadataDelta::new(Arc::new(base()));
    d.replay(Offset(3), 1, 0, &topic("t", 1)).unwrap();
    let err = d.replay(Offset(3), 1, 0, &topic("u", 2)).unwrap_err();
    assert!(matches!(err, MetadataError::Replay { offset: 3, .. }));
}

#[test]
fn delta_reports_changed_and_deleted_topics() {
    let base = Arc::new(replay_all(MetadataImage::empty("c"), &history()).unwrap());
    let mut d = MetadataDelta::new(Arc::clone(&base));
    assert!(d.is_empty());
    d.replay(Offset(16), 1, 0, &remove(3)).unwrap();
    d.replay(
        Offset(17),
        1,
        0,
        &config(RESOURCE_TYPE_TOPIC, "orders", "a", Some("b")),
    )
    .unwrap();
    d.replay(Offset(18), 1, 0, &broker(1, 1)).unwrap();
    assert!(!d.is_empty());
    assert_eq!(d.changed_topics().iter().collect::<Vec<_>>(), [&id(1)]);
    assert_eq!(d.deleted_topics().keys().collect::<Vec<_>>(), [&id(3)]);
    assert_eq!(d.changed_brokers().iter().collect::<Vec<_>>(), [&NodeId(1)]);
    let next = d.apply();
    assert!(!Arc::ptr_eq(
        base.topic("orders").unwrap(),
        next.topic("orders").unwrap()
    ));
    assert!(next.topic("tmp").is_none());

    // A topic the delta does not touch is shared with the base, not copied.
    let mut d = MetadataDelta::new(Arc::clone(&base));
    d.replay(
        Offset(16),
        1,
        0,
        &config(RESOURCE_TYPE_TOPIC, "orders", "a", Some("b")),
    )
    .unwrap();
    let next = d.apply();
    assert!(Arc::ptr_eq(
        base.topic("tmp").unwrap(),
        next.topic("tmp").unwrap()
    ));
}

#[test]
fn local_changes_say_what_a_broker_must_do() {
    let records = history();
    let empty = MetadataImage::empty("c");
    let image = replay_all(empty.clone(), &records).unwrap();
    // From nothing: broker 2 leads orders-0 (after the change), orders-1, tmp-0.
    let c = LocalChanges::between(&empty, &image, NodeId(2));
    let lead: Vec<(&str, i32)> = c
        .leaders
        .iter()
        .map(|p| (p.topic.as_str(), p.partition))
        .collect();
    assert_eq!(lead.len(), 3);
    assert!(lead.contains(&("orders", 0)) && lead.contains(&("tmp", 0)));
    assert!(c.followers.is_empty() && c.removed.is_empty());
    // Broker 1 follows orders-0 and orders-1 and hosts nothing else.
    let c = LocalChanges::between(&empty, &image, NodeId(1));
    assert_eq!(c.followers.len(), 2);
    assert!(c.leaders.is_empty());

    // Before the delete of "tmp" (id 2), broker 1 led tmp-0; after it, it must drop it.
    let before = replay_all(empty.clone(), &records[..13]).unwrap();
    let c = LocalChanges::between(&before, &image, NodeId(1));
    assert_eq!(c.removed.len(), 1);
    assert!(c.removed[0].topic_deleted && c.removed[0].topic_id == id(2));
    // orders' configs changed between the two images (retention.ms -> cleanup.policy
    // happened before offset 13, so no config change is reported here).
    assert!(c.config_changed.is_empty());
    assert!(LocalChanges::between(&image, &image, NodeId(1)).is_empty());
    let before_configs = replay_all(empty, &records[..11]).unwrap();
    let c = LocalChanges::between(&before_configs, &image, NodeId(1));
    assert_eq!(c.config_changed, vec![id(1)]);
}

#[test]
fn broker_state_records_replay_onto_the_registration() {
    use weir_protocol::messages::{
        BrokerRegistrationChangeRecord, FenceBrokerRecord, ProducerIdsRecord, UnfenceBrokerRecord,
        UnregisterBrokerRecord,
    };
    let change = |fenced: i8, shutdown: i8| {
        MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
            broker_id: 1,
            broker_epoch: 5,
            fenced,
            in_controlled_shutdown: shutdown,
            log_dirs: vec![],
        })
    };
    let base = MetadataImage::empty("c");
    let state = |records: &[MetadataRecord]| {
        let image = replay_all(base.clone(), records).unwrap();
        image
            .broker(NodeId(1))
            .map(|b| (b.fenced, b.in_controlled_shutdown))
    };
    assert_eq!(state(&[broker(1, 9092)]), Some((false, false)));
    assert_eq!(state(&[broker(1, 9092), change(1, 0)]), Some((true, false)));
    assert_eq!(
        state(&[broker(1, 9092), change(1, 0), change(-1, 0)]),
        Some((false, false))
    );
    assert_eq!(state(&[broker(1, 9092), change(0, 1)]), Some((false, true)));
    let fence = MetadataRecord::FenceBroker(FenceBrokerRecord { id: 1, epoch: 5 });
    let unfence = MetadataRecord::UnfenceBroker(UnfenceBrokerRecord { id: 1, epoch: 5 });
    assert_eq!(
        state(&[broker(1, 9092), fence.clone()]),
        Some((true, false))
    );
    assert_eq!(
        state(&[broker(1, 9092), fence, unfence]),
        Some((false, false))
    );
    let unregister = MetadataRecord::UnregisterBroker(UnregisterBrokerRecord {
        broker_id: 1,
        broker_epoch: 5,
    });
    assert_eq!(state(&[broker(1, 9092), unregister]), None);

    // A record for another epoch, an unknown broker, or a bad value does not apply.
    let stale = MetadataRecord::FenceBroker(FenceBrokerRecord { id: 1, epoch: 4 });
    assert!(replay_all(base.clone(), &[broker(1, 9092), stale]).is_err());
    assert!(replay_all(base.clone(), &[change(1, 0)]).is_err());
    assert!(replay_all(base.clone(), &[broker(1, 9092), change(2, 0)]).is_err());

    // Producer id blocks only move forward.
    let ids = |next: i64| {
        MetadataRecord::ProducerIds(ProducerIdsRecord {
            broker_id: 1,
            broker_epoch: 5,
            next_producer_id: next,
        })
    };
    let image = replay_all(base.clone(), &[ids(1000), ids(2000)]).unwrap();
    assert_eq!(image.next_producer_id(), 2000);
    assert!(replay_all(base, &[ids(1000), ids(1000)]).is_err());
}
