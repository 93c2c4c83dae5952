use bytes::Bytes;
use weir_protocol::messages::metadata_register_broker_record::{BrokerEndpoint, BrokerFeature};
use weir_protocol::messages::*;
use weir_protocol::{Message, Uuid};

use super::*;

/// A small deterministic source of field values.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 17
    }
    fn i32(&mut self) -> i32 {
        self.next() as i32
    }
    fn uuid(&mut self) -> Uuid {
        let mut b = [0u8; 16];
        b.iter_mut().for_each(|x| *x = self.next() as u8);
        Uuid(b)
    }
    fn ints(&mut self) -> Vec<i32> {
        (0..self.next() % 4).map(|_| self.i32()).collect()
    }
    fn opt_ints(&mut self) -> Option<Vec<i32>> {
        (self.next() % 2 == 0).then(|| self.ints())
    }
    fn string(&mut self) -> String {
        (0..self.next() % 12)
            .map(|_| char::from(b'a' + (self.next() % 26) as u8))
            .collect()
    }
}

/// One record of every type, with the fields that exist at `version` filled in.
fn samples(r: &mut Rng, version: i16) -> Vec<MetadataRecord> {
    let v = version;
    let mut out = vec![];
    out.push(MetadataRecord::RegisterBroker(RegisterBrokerRecord {
        broker_id: r.i32(),
        is_migrating_zk_broker: v >= 2 && r.next() % 2 == 0,
        incarnation_id: r.uuid(),
        broker_epoch: r.next() as i64,
        end_points: vec![BrokerEndpoint {
            name: r.string(),
            host: r.string(),
            port: r.next() as u16,
            security_protocol: 0,
        }],
        features: vec![BrokerFeature {
            name: r.string(),
            min_supported_version: 1,
            max_supported_version: 7,
        }],
        rack: (r.next() % 2 == 0).then(|| r.string()),
        fenced: r.next() % 2 == 0,
        in_controlled_shutdown: v >= 1 && r.next() % 2 == 0,
        log_dirs: if v >= 3 { vec![r.uuid()] } else { vec![] },
    }));
    out.push(MetadataRecord::Topic(TopicRecord {
        name: r.string(),
        topic_id: r.uuid(),
    }));
    out.push(MetadataRecord::Partition(PartitionRecord {
        partition_id: r.i32(),
        topic_id: r.uuid(),
        replicas: r.ints(),
        isr: r.ints(),
        removing_replicas: r.ints(),
        adding_replicas: r.ints(),
        leader: r.i32(),
        leader_recovery_state: (r.next() % 2) as i8,
        leader_epoch: r.i32(),
        partition_epoch: r.i32(),
        directories: if v >= 1 { vec![r.uuid()] } else { vec![] },
        eligible_leader_replicas: if v >= 2 { r.opt_ints() } else { None },
        last_known_elr: if v >= 2 { r.opt_ints() } else { None },
    }));
    out.push(MetadataRecord::Config(ConfigRecord {
        resource_type: RESOURCE_TYPE_TOPIC,
        resource_name: r.string(),
        name: r.string(),
        value: (r.next() % 2 == 0).then(|| r.string()),
    }));
    out.push(MetadataRecord::PartitionChange(PartitionChangeRecord {
        partition_id: r.i32(),
        topic_id: r.uuid(),
        isr: r.opt_ints(),
        leader: r.i32(),
        replicas: r.opt_ints(),
        removing_replicas: r.opt_ints(),
        adding_replicas: r.opt_ints(),
        leader_recovery_state: -1,
        directories: if v >= 1 { Some(vec![r.uuid()]) } else { None },
        eligible_leader_replicas: if v >= 2 { r.opt_ints() } else { None },
        last_known_elr: if v >= 2 { r.opt_ints() } else { None },
    }));
    out.push(MetadataRecord::RemoveTopic(RemoveTopicRecord {
        topic_id: r.uuid(),
    }));
    out.push(MetadataRecord::FeatureLevel(FeatureLevelRecord {
        name: r.string(),
        feature_level: r.next() as i16,
    }));
    out.push(MetadataRecord::UnregisterBroker(UnregisterBrokerRecord {
        broker_id: r.i32(),
        broker_epoch: r.next() as i64,
    }));
    out.push(MetadataRecord::FenceBroker(FenceBrokerRecord {
        id: r.i32(),
        epoch: r.next() as i64,
    }));
    out.push(MetadataRecord::UnfenceBroker(UnfenceBrokerRecord {
        id: r.i32(),
        epoch: r.next() as i64,
    }));
    out.push(MetadataRecord::ProducerIds(ProducerIdsRecord {
        broker_id: r.i32(),
        broker_epoch: r.next() as i64,
        next_producer_id: r.next() as i64,
    }));
    out.push(MetadataRecord::BrokerRegistrationChange(
        BrokerRegistrationChangeRecord {
            broker_id: r.i32(),
            broker_epoch: r.next() as i64,
            fenced: (r.next() % 3) as i8 - 1,
            in_controlled_shutdown: if v >= 1 { (r.next() % 2) as i8 } else { 0 },
            log_dirs: if v >= 2 { vec![r.uuid()] } else { vec![] },
        },
    ));
    out
}

fn max_version(rec: &MetadataRecord) -> i16 {
    match rec {
        MetadataRecord::RegisterBroker(_) => RegisterBrokerRecord::VERSIONS.1,
        MetadataRecord::Topic(_) => TopicRecord::VERSIONS.1,
        MetadataRecord::Partition(_) => PartitionRecord::VERSIONS.1,
        MetadataRecord::Config(_) => ConfigRecord::VERSIONS.1,
        MetadataRecord::PartitionChange(_) => PartitionChangeRecord::VERSIONS.1,
        MetadataRecord::RemoveTopic(_) => RemoveTopicRecord::VERSIONS.1,
        MetadataRecord::FeatureLevel(_) => FeatureLevelRecord::VERSIONS.1,
        MetadataRecord::UnregisterBroker(_) => UnregisterBrokerRecord::VERSIONS.1,
        MetadataRecord::FenceBroker(_) => FenceBrokerRecord::VERSIONS.1,
        MetadataRecord::UnfenceBroker(_) => UnfenceBrokerRecord::VERSIONS.1,
        MetadataRecord::ProducerIds(_) => ProducerIdsRecord::VERSIONS.1,
        MetadataRecord::BrokerRegistrationChange(_) => BrokerRegistrationChangeRecord::VERSIONS.1,
    }
}

#[test]
fn every_record_type_round_trips_at_every_version() {
    let mut checked = 0;
    for version in 0..=3 {
        for seed in 0..30 {
            for rec in samples(&mut Rng(seed * 7 + version as u64), version) {
                if version > max_version(&rec) {
                    continue;
                }
                let frame = rec.encode_at(version).unwrap();
                let (back, v) = MetadataRecord::decode_with_version(frame.clone()).unwrap();
                assert_eq!(back, rec, "{} v{version}", rec.type_name());
                assert_eq!(v, version);
                // Every strict prefix fails, as an error value.
                for cut in [0, 1, 3, frame.len() / 2, frame.len() - 1] {
                    assert!(MetadataRecord::decode(frame.slice(..cut)).is_err());
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 30 * (12 + 4 + 4 + 1));
}

#[test]
fn default_encoding_uses_the_write_version() {
    for rec in samples(&mut Rng(1), 0) {
        let (back, v) = MetadataRecord::decode_with_version(rec.encode().unwrap()).unwrap();
        assert_eq!(v, rec.write_version());
        assert_eq!(back.api_key(), rec.api_key());
    }
}

#[test]
fn topic_record_frame_is_byte_exact() {
    let rec = MetadataRecord::Topic(TopicRecord {
        name: "foo".into(),
        topic_id: Uuid([0x11; 16]),
    });
    let mut want = vec![1, 2, 0, 4, b'f', b'o', b'o'];
    want.extend_from_slice(&[0x11; 16]);
    want.push(0); // no tagged fields
    assert_eq!(rec.encode().unwrap(), Bytes::from(want));
}

#[test]
fn bad_frames_are_errors() {
    let good = MetadataRecord::RemoveTopic(RemoveTopicRecord {
        topic_id: Uuid([3; 16]),
    })
    .encode()
    .unwrap();
    let with_byte = |i: usize, b: u8| {
        let mut v = good.to_vec();
        v[i] = b;
        Bytes::from(v)
    };
    // Frame version 0 (the 2.8 preview) and 2 (unknown).
    assert!(matches!(
        MetadataRecord::decode(with_byte(0, 0)),
        Err(MetadataError::Frame { .. })
    ));
    assert!(MetadataRecord::decode(with_byte(0, 2)).is_err());
    // Unknown record type, and a version the type does not have.
    assert!(matches!(
        MetadataRecord::decode(with_byte(1, 99)),
        Err(MetadataError::Frame { .. })
    ));
    assert!(matches!(
        MetadataRecord::decode(with_byte(2, 1)),
        Err(MetadataError::Frame { .. })
    ));
    // A varint type that does not fit a short.
    assert!(MetadataRecord::decode(Bytes::from_static(&[1, 0xff, 0xff, 0x03, 0])).is_err());
    // Trailing garbage.
    let mut long = good.to_vec();
    long.push(0);
    assert!(matches!(
        MetadataRecord::decode(Bytes::from(long)),
        Err(MetadataError::Decode { .. })
    ));
    assert!(MetadataRecord::decode(Bytes::new()).is_err());
}
