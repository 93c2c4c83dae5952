//! Request decode and response encode on the hot paths: a Produce request carrying
//! one 16 KiB batch, and a Fetch response carrying stored batches.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use weir_protocol::messages::fetch::{FetchResponse, FetchableTopicResponse, PartitionData};
use weir_protocol::messages::produce::{PartitionProduceData, ProduceRequest, TopicProduceData};
use weir_protocol::records::BatchBuilder;
use weir_protocol::{
    decode_request, encode_request, encode_response, Request, RequestHeader, Response,
};

fn batch_16k() -> Bytes {
    let mut b = BatchBuilder::new();
    let value = vec![b'x'; 1000];
    for i in 0..16 {
        b.append(1_700_000_000_000 + i, Some(b"key"), Some(&value), &[])
            .unwrap();
    }
    b.build().unwrap()
}

fn produce_frame(version: i16) -> Bytes {
    let req = ProduceRequest {
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: "orders".into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(batch_16k()),
            }],
        }],
        ..Default::default()
    };
    let header = RequestHeader {
        api_key: 0,
        api_version: version,
        correlation_id: 1,
        client_id: Some("bench".into()),
    };
    let chunks = encode_request(&header, &Request::Produce(req)).unwrap();
    Bytes::from(chunks.concat()).slice(4..)
}

fn bench_produce_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("produce_request_decode");
    for version in [3, 9] {
        let frame = produce_frame(version);
        g.throughput(Throughput::Bytes(frame.len() as u64));
        g.bench_function(format!("v{version}_one_16k_batch"), |b| {
            b.iter(|| decode_request(std::hint::black_box(frame.clone())).unwrap())
        });
    }
    g.finish();
}

fn bench_fetch_encode(c: &mut Criterion) {
    let batch = batch_16k();
    let stored: Bytes = batch
        .iter()
        .copied()
        .cycle()
        .take(batch.len() * 64)
        .collect::<Vec<u8>>()
        .into();
    let resp = FetchResponse {
        responses: vec![FetchableTopicResponse {
            topic: "orders".into(),
            partitions: (0..8)
                .map(|p| PartitionData {
                    partition_index: p,
                    high_watermark: 1000,
                    records: Some(stored.clone()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let resp = Response::Fetch(resp);
    let mut g = c.benchmark_group("fetch_response_encode");
    g.throughput(Throughput::Bytes(8 * stored.len() as u64));
    g.bench_function("v12_8_partitions_1MiB_each", |b| {
        b.iter(|| encode_response(1, 12, std::hint::black_box(&resp)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench_produce_decode, bench_fetch_encode);
criterion_main!(benches);
