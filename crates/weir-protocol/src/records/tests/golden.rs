//! Differential tests against an independent implementation, the `kafka-protocol`
//! crate: batches it encodes must parse here record for record, and batches we build
//! must decode there, for every codec.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as KpCompression, Record as KpRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType as KpTimestampType,
};

use crate::records::{BatchBuilder, BatchView, Batches, Compression, Record};

const PAIRS: [(Compression, KpCompression); 5] = [
    (Compression::None, KpCompression::None),
    (Compression::Gzip, KpCompression::Gzip),
    (Compression::Snappy, KpCompression::Snappy),
    (Compression::Lz4, KpCompression::Lz4),
    (Compression::Zstd, KpCompression::Zstd),
];

fn kp_records(n: usize) -> Vec<KpRecord> {
    (0..n)
        .map(|i| {
            let mut headers = IndexMap::new();
            if i % 2 == 0 {
                headers.insert(
                    StrBytes::from_string(format!("h{i}")),
                    Some(Bytes::from("hv")),
                );
                headers.insert(StrBytes::from_string("null".into()), None);
            }
            KpRecord {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 4,
                producer_id: 1234,
                producer_epoch: 2,
                timestamp_type: KpTimestampType::Creation,
                offset: 100 + i as i64,
                sequence: 50 + i as i32,
                timestamp: 1_600_000_000_000 + (i as i64 * 37) % 500,
                key: (i % 3 != 0).then(|| Bytes::from(format!("key{i}"))),
                value: (i % 5 != 4).then(|| Bytes::from(format!("value{i}").repeat(i % 50))),
                headers,
            }
        })
        .collect()
}

fn assert_matches(ours: &[Record], theirs: &[KpRecord]) {
    assert_eq!(ours.len(), theirs.len());
    for (o, t) in ours.iter().zip(theirs) {
        assert_eq!(o.offset, t.offset);
        assert_eq!(o.timestamp, t.timestamp);
        assert_eq!(o.key, t.key);
        assert_eq!(o.value, t.value);
        let oh: Vec<(Bytes, Option<Bytes>)> = o.headers.iter().map(|h| (h.key, h.value)).collect();
        let th: Vec<(Bytes, Option<Bytes>)> = t
            .headers
            .iter()
            .map(|(k, v)| (Bytes::copy_from_slice(k.as_bytes()), v.clone()))
            .collect();
        assert_eq!(oh, th);
    }
}

#[test]
fn batches_from_kafka_protocol_parse_here() {
    let records = kp_records(120);
    for (ours, theirs) in PAIRS {
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: theirs,
        };
        RecordBatchEncoder::encode(&mut buf, records.iter(), &options).unwrap();
        let views: Vec<BatchView> = Batches::new(buf.freeze()).map(Result::unwrap).collect();
        assert_eq!(views.len(), 1, "{ours:?}");
        let v = &views[0];
        assert_eq!(v.compression(), ours);
        assert_eq!((v.base_offset(), v.last_offset()), (100, 219));
        assert_eq!(v.record_count(), 120);
        assert_eq!((v.producer_id(), v.producer_epoch()), (1234, 2));
        assert_eq!((v.base_sequence(), v.partition_leader_epoch()), (50, 4));
        v.validate_client_append().unwrap();
        v.validate_client_records(1 << 20).unwrap();
        let parsed: Vec<Record> = v.records(1 << 20).unwrap().map(Result::unwrap).collect();
        assert_matches(&parsed, &records);
    }
}

#[test]
fn batches_built_here_decode_in_kafka_protocol() {
    let expected = kp_records(120);
    for (ours, theirs) in PAIRS {
        let mut b = BatchBuilder::new()
            .compression(ours)
            .base_offset(100)
            .producer(1234, 2, 50)
            .partition_leader_epoch(4);
        for r in &expected {
            let headers: Vec<(&str, Option<&[u8]>)> = r
                .headers
                .iter()
                .map(|(k, v)| (&**k, v.as_deref()))
                .collect();
            b.append(r.timestamp, r.key.as_deref(), r.value.as_deref(), &headers)
                .unwrap();
        }
        let mut buf = b.build().unwrap();
        let set = RecordBatchDecoder::decode(&mut buf).unwrap();
        assert_eq!(set.compression, theirs);
        assert_eq!(set.records.len(), expected.len());
        for (got, want) in set.records.iter().zip(&expected) {
            assert_eq!(got.offset, want.offset);
            assert_eq!(got.sequence, want.sequence);
            assert_eq!(got.timestamp, want.timestamp);
            assert_eq!((got.producer_id, got.producer_epoch), (1234, 2));
            assert_eq!(got.partition_leader_epoch, 4);
            assert_eq!(got.key, want.key);
            assert_eq!(got.value, want.value);
            assert_eq!(got.headers, want.headers);
        }
    }
}

#[test]
fn codecs_agree_with_kafka_protocol_payloads() {
    // Their compressed records sections decompress with our codecs to exactly our
    // own uncompressed encoding of the same records.
    let records = kp_records(40);
    let encode = |c| {
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: c,
        };
        RecordBatchEncoder::encode(&mut buf, records.iter(), &options).unwrap();
        BatchView::parse(buf.freeze()).unwrap()
    };
    let plain = encode(KpCompression::None).records_bytes();
    for (ours, theirs) in PAIRS {
        let v = encode(theirs);
        assert_eq!(v.uncompressed_records(1 << 20).unwrap(), plain, "{ours:?}");
    }
}
