//! The data path over a real socket: Produce with each acks, Fetch by name and by
//! id with a long poll, ListOffsets, DeleteRecords, OffsetForLeaderEpoch,
//! InitProducerId and idempotent produce, DescribeLogDirs, and a clean restart.

mod common;

use std::time::{Duration, Instant};

use common::client::{batch, values, TestBroker};
use common::TEST_TIMEOUT;
use tokio::time::timeout;
use weir_protocol::messages::delete_records::{
    DeleteRecordsPartition, DeleteRecordsRequest, DeleteRecordsTopic,
};
use weir_protocol::messages::describe_log_dirs::DescribeLogDirsRequest;
use weir_protocol::messages::fetch::{FetchPartition, FetchRequest, FetchTopic};
use weir_protocol::messages::init_producer_id::InitProducerIdRequest;
use weir_protocol::messages::offset_for_leader_epoch::{
    OffsetForLeaderEpochRequest, OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use weir_protocol::messages::produce::{PartitionProduceData, ProduceRequest, TopicProduceData};
use weir_protocol::records::{BatchBuilder, Compression};
use weir_protocol::{ApiKey, Request, Response, Uuid};
use weir_types::ErrorCode;

fn code(e: ErrorCode) -> i16 {
    e.code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_with_each_acks_and_fetch_back() {
    timeout(TEST_TIMEOUT, async {
        let broker = TestBroker::start(|_| {}).await;
        let mut client = broker.client().await;
        assert_eq!(client.create_topic("t", 1, &[]).await.error_code, 0);

        let all = client
            .produce("t", 0, batch(&["a", "b"], 1_000, Compression::None), -1)
            .await
            .expect("acks=all answers");
        assert_eq!(
            (all.error_code, all.base_offset, all.log_start_offset),
            (0, 0, 0)
        );
        let one = client
            .produce("t", 0, batch(&["c"], 1_002, Compression::Lz4), 1)
            .await
            .expect("acks=1 answers");
        assert_eq!((one.error_code, one.base_offset), (0, 2));
        // acks=0: no response at all; the next request's response comes next.
        assert!(client
            .produce("t", 0, batch(&["d"], 1_003, Compression::Zstd), 0)
            .await
            .is_none());
        // acks=0 to a partition that does not exist: no response to carry the error,
        // so the connection is closed (Kafka's signal to refresh metadata).
        let mut fire_and_forget = broker.client().await;
        fire_and_forget
            .produce("t", 9, batch(&["lost"], 1, Compression::None), 0)
            .await;
        fire_and_forget.expect_closed().await;
        let p = client.fetch("t", 0, 0, 1_000).await;
        assert_eq!(p.error_code, 0);
        let records = p.records.expect("records");
        let got: Vec<String> = values(&records).into_iter().map(|(_, v)| v).collect();
        assert_eq!(got, ["a", "b", "c", "d"]);
        assert_eq!((p.high_watermark, p.log_start_offset), (4, 0));

        // Bad acks and unknown partitions: errors per partition, nothing written.
        let bad = client
            .produce("t", 0, batch(&["x"], 1, Compression::None), 2)
            .await
            .expect("answered");
        assert_eq!(bad.error_code, code(ErrorCode::InvalidRequiredAcks));
        let unknown = client
            .produce("t", 7, batch(&["x"], 1, Compression::None), 1)
            .await
            .expect("answered");
        assert_eq!(unknown.error_code, code(ErrorCode::UnknownTopicOrPartition));
        let nowhere = client
            .produce("nowhere", 0, batch(&["x"], 1, Compression::None), -1)
            .await
            .expect("answered");
        assert_eq!(nowhere.error_code, code(ErrorCode::UnknownTopicOrPartition));
        let p = client.fetch("nowhere", 0, 0, 0).await;
        assert_eq!(p.error_code, code(ErrorCode::UnknownTopicOrPartition));

        // A corrupted batch: CORRUPT_MESSAGE with a message; two batches in one
        // partition: INVALID_RECORD (Kafka: exactly one per partition).
        let mut corrupt = batch(&["x"], 1, Compression::None).to_vec();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0xff;
        let r = client
            .produce("t", 0, corrupt.into(), 1)
            .await
            .expect("answered");
        assert_eq!(r.error_code, code(ErrorCode::CorruptMessage));
        assert!(r.error_message.is_some());
        let two = [
            batch(&["x"], 1, Compression::None),
            batch(&["y"], 1, Compression::None),
        ]
        .concat();
        let r = client
            .produce("t", 0, two.into(), 1)
            .await
            .expect("answered");
        assert_eq!(r.error_code, code(ErrorCode::InvalidRecord));
        assert_eq!(
            client.list_offset("t", 0, -1).await.1,
            4,
            "nothing was written"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_produce_is_refused_honestly() {
    timeout(TEST_TIMEOUT, async {
        let broker = TestBroker::start(|_| {}).await;
        let mut client = broker.client().await;
        assert_eq!(client.create_topic("t", 1, &[]).await.error_code, 0);
        let request = Request::Produce(ProduceRequest {
            transactional_id: Some("txn".into()),
            acks: -1,
            timeout_ms: 1_000,
            topic_data: vec![TopicProduceData {
                name: "t".into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(batch(&["x"], 1, Compression::None)),
                }],
            }],
        });
        let Response::Produce(r) = client.call(9, request).await else {
            panic!("not Produce")
        };
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(p.error_code, code(ErrorCode::UnsupportedVersion));
        assert!(p
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("transactions")));
        let Response::InitProducerId(r) = client
            .call(
                4,
                Request::InitProducerId(InitProducerIdRequest {
                    transactional_id: Some("txn".into()),
                    transaction_timeout_ms: 60_000,
                    producer_id: -1,
                    producer_epoch: -1,
                }),
            )
            .await
        else {
            panic!("not InitProducerId")
        };
        assert_eq!(r.error_code, code(ErrorCode::UnsupportedVersion));
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_by_topic_id_and_long_poll_woken_by_a_produce() {
    timeout(TEST_TIMEOUT, async {
        let broker = TestBroker::start(|_| {}).await;
        let mut admin = broker.client().await;
        let created = admin.create_topic("poll", 1, &[]).await;
        assert_eq!(created.error_code, 0);
        let fetch = |topic_id: Uuid, max_wait_ms| {
            Request::Fetch(FetchRequest {
                replica_id: -1,
                max_wait_ms,
                min_bytes: 1,
                max_bytes: 1 << 20,
                session_epoch: -1,
                topics: vec![FetchTopic {
                    topic_id,
                    partitions: vec![FetchPartition {
                        partition: 0,
                        partition_max_bytes: 1 << 20,
                        ..FetchPartition::default()
                    }],
                    ..FetchTopic::default()
                }],
                ..FetchRequest::default()
            })
        };
        // Unknown id: UNKNOWN_TOPIC_ID, at once (an error ends a long poll).
        let asked = Instant::now();
        let Response::Fetch(r) = admin.call(13, fetch(Uuid([3; 16]), 10_000)).await else {
            panic!("not Fetch")
        };
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "an error is answered at once"
        );
        assert_eq!(
            r.responses[0].partitions[0].error_code,
            code(ErrorCode::UnknownTopicId)
        );
        assert_eq!(r.session_id, 0, "no fetch sessions");

        // A long poll on an empty partition, answered by a later produce; the
        // consumer's connection keeps working meanwhile (pipelined ApiVersions).
        let mut consumer = broker.client().await;
        let started = Instant::now();
        let fetch_id = consumer.send(16, &fetch(created.topic_id, 20_000)).await;
        let versions_id = consumer
            .send(
                0,
                &Request::ApiVersions(
                    weir_protocol::messages::api_versions::ApiVersionsRequest::default(),
                ),
            )
            .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let p = admin
            .produce("poll", 0, batch(&["wake"], 5, Compression::Snappy), -1)
            .await
            .expect("answered");
        assert_eq!(p.error_code, 0);
        let (got, r) = consumer.recv_decoded(ApiKey::Fetch, 16).await;

        assert_eq!(got, fetch_id);
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the produce woke the fetch"
        );
        let Response::Fetch(r) = r else {
            panic!("not Fetch")
        };
        assert_eq!(r.responses[0].topic_id, created.topic_id);
        let records = r.responses[0].partitions[0]
            .records
            .clone()
            .expect("records");
        assert_eq!(values(&records), [(0, "wake".to_owned())]);
        let (got, _) = consumer.recv_decoded(ApiKey::ApiVersions, 0).await;
        assert_eq!(got, versions_id, "responses stay in request order");

        // Posing as a follower (replica id 1, this broker itself) to read past the
        // high watermark: NOT_LEADER_OR_FOLLOWER.
        let mut request = fetch(created.topic_id, 0);
        if let Request::Fetch(f) = &mut request {
            f.replica_id = 1;
        }
        let Response::Fetch(r) = consumer.call(13, request).await else {
            panic!("not Fetch")
        };
        assert_eq!(
            r.responses[0].partitions[0].error_code,
            code(ErrorCode::NotLeaderOrFollower)
        );

        // A session id we never issued: FETCH_SESSION_ID_NOT_FOUND.
        let mut request = fetch(created.topic_id, 0);
        if let Request::Fetch(f) = &mut request {
            f.session_id = 77;
            f.session_epoch = 3;
        }
        let Response::Fetch(r) = consumer.call(13, request).await else {
            panic!("not Fetch")
        };
        assert_eq!(r.error_code, code(ErrorCode::FetchSessionIdNotFound));
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_delete_records_and_leader_epochs() {
    timeout(TEST_TIMEOUT, async {
        let broker = TestBroker::start(|_| {}).await;
        let mut client = broker.client().await;
        assert_eq!(client.create_topic("o", 1, &[]).await.error_code, 0);
        // Offsets 0..=2 at 1000..=1002, 3..=4 at 2000..=2001.
        client
            .produce(
                "o",
                0,
                batch(&["a", "b", "c"], 1_000, Compression::None),
                -1,
            )
            .await;
        client
            .produce("o", 0, batch(&["d", "e"], 2_000, Compression::Gzip), -1)
            .await;
        assert_eq!(client.list_offset("o", 0, -2).await.1, 0, "earliest");
        assert_eq!(client.list_offset("o", 0, -1).await.1, 5, "latest");
        let (error, offset, ts, epoch) = client.list_offset("o", 0, 1_001).await;
        assert_eq!(
            (error, offset, ts),
            (0, 1, 1_001),
            "record precision inside a batch"
        );
        assert!(epoch >= 0, "the leader epoch of the batch");
        assert_eq!(client.list_offset("o", 0, 1_500).await.1, 3);
        assert_eq!(
            client.list_offset("o", 0, 9_999).await.1,
            -1,
            "nothing that late"
        );
        let (_, offset, ts, _) = client.list_offset("o", 0, -3).await;
        assert_eq!((offset, ts), (4, 2_001), "max timestamp");
        assert_eq!(
            client.list_offset("o", 9, -1).await.0,
            code(ErrorCode::UnknownTopicOrPartition)
        );

        // OffsetForLeaderEpoch: the current epoch ends at the log end.
        let request = |leader_epoch| {
            Request::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest {
                replica_id: -1,
                topics: vec![OffsetForLeaderTopic {
                    topic: "o".into(),
                    partitions: vec![OffsetForLeaderPartition {
                        partition: 0,
                        current_leader_epoch: -1,
                        leader_epoch,
                    }],
                }],
            })
        };
        let Response::OffsetForLeaderEpoch(r) = client.call(4, request(epoch)).await else {
            panic!("not OffsetForLeaderEpoch")
        };
        let e = &r.topics[0].partitions[0];
        assert_eq!((e.error_code, e.leader_epoch, e.end_offset), (0, epoch, 5));

        // DeleteRecords moves the log start; fetching below it is out of range.
        let Response::DeleteRecords(r) = client
            .call(
                2,
                Request::DeleteRecords(DeleteRecordsRequest {
                    topics: vec![DeleteRecordsTopic {
                        name: "o".into(),
                        partitions: vec![
                            DeleteRecordsPartition {
                                partition_index: 0,
                                offset: 2,
                            },
                            DeleteRecordsPartition {
                                partition_index: 5,
                                offset: 2,
                            },
                        ],
                    }],
                    timeout_ms: 5_000,
                }),
            )
            .await
        else {
            panic!("not DeleteRecords")
        };
        let ps = &r.topics[0].partitions;
        assert_eq!((ps[0].error_code, ps[0].low_watermark), (0, 2));
        assert_eq!(ps[1].error_code, code(ErrorCode::UnknownTopicOrPartition));
        assert_eq!(client.list_offset("o", 0, -2).await.1, 2);
        let p = client.fetch("o", 0, 0, 0).await;
        assert_eq!(p.error_code, code(ErrorCode::OffsetOutOfRange));

        // DescribeLogDirs names the partition and its size.
        let Response::DescribeLogDirs(r) = client
            .call(
                4,
                Request::DescribeLogDirs(DescribeLogDirsRequest { topics: None }),
            )
            .await
        else {
            panic!("not DescribeLogDirs")
        };
        assert_eq!(r.results.len(), 1);
        let topic = &r.results[0].topics[0];
        assert_eq!(
            (topic.name.as_str(), topic.partitions[0].partition_index),
            ("o", 0)
        );
        assert!(topic.partitions[0].partition_size > 0);
        // v4: the file system's size and free space (KIP-827), not "unknown".
        let dir = &r.results[0];
        assert!(dir.total_bytes > 0, "{dir:?}");
        assert!(
            dir.usable_bytes >= 0 && dir.usable_bytes <= dir.total_bytes,
            "{dir:?}"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_ids_epochs_and_duplicates() {
    timeout(TEST_TIMEOUT, async {
        let broker = TestBroker::start(|_| {}).await;
        let mut client = broker.client().await;
        assert_eq!(client.create_topic("i", 1, &[]).await.error_code, 0);
        let init = |producer_id, producer_epoch| {
            Request::InitProducerId(InitProducerIdRequest {
                transactional_id: None,
                transaction_timeout_ms: 60_000,
                producer_id,
                producer_epoch,
            })
        };
        // v0 (aiokafka, KafkaJS) works, and ids never repeat.
        let Response::InitProducerId(first) = client.call(0, init(-1, -1)).await else {
            panic!("not InitProducerId")
        };
        let Response::InitProducerId(second) = client.call(2, init(-1, -1)).await else {
            panic!("not InitProducerId")
        };
        assert_eq!((first.error_code, first.producer_epoch), (0, 0));
        assert_ne!(first.producer_id, second.producer_id);
        // v3+ with the current id and epoch: the epoch is bumped.
        let Response::InitProducerId(bumped) = client.call(4, init(first.producer_id, 0)).await
        else {
            panic!("not InitProducerId")
        };
        assert_eq!(
            (bumped.producer_id, bumped.producer_epoch),
            (first.producer_id, 1)
        );

        // A retried batch is answered with its first offsets and not written twice.
        let idempotent = || {
            let mut b = BatchBuilder::new().producer(second.producer_id, 0, 0);
            b.append(1, None, Some(b"once"), &[]).expect("append");
            b.build().expect("batch")
        };
        let a = client
            .produce("i", 0, idempotent(), -1)
            .await
            .expect("answered");
        let b = client
            .produce("i", 0, idempotent(), -1)
            .await
            .expect("answered");
        assert_eq!((a.error_code, b.error_code), (0, 0));
        assert_eq!(a.base_offset, b.base_offset);
        assert_eq!(client.list_offset("i", 0, -1).await.1, 1);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_restart_keeps_topics_records_and_producer_ids() {
    timeout(TEST_TIMEOUT, async {
        let broker = TestBroker::start(|_| {}).await;
        let mut client = broker.client().await;
        let created = client
            .create_topic("keep", 2, &[("retention.ms", "86400000")])
            .await;
        assert_eq!(created.error_code, 0);
        client
            .produce("keep", 1, batch(&["x", "y"], 10, Compression::Zstd), -1)
            .await;
        let Response::InitProducerId(before) = client
            .call(
                4,
                Request::InitProducerId(InitProducerIdRequest {
                    producer_id: -1,
                    producer_epoch: -1,
                    ..InitProducerIdRequest::default()
                }),
            )
            .await
        else {
            panic!("not InitProducerId")
        };
        drop(client);
        let dir = broker.stop().await;

        let broker = TestBroker::start_in(dir, |_| {}).await;
        let mut client = broker.client().await;
        let r = client.metadata(Some(&["keep"])).await;
        assert_eq!(r.topics[0].topic_id, created.topic_id);
        assert_eq!(r.topics[0].partitions.len(), 2);
        let p = client.fetch("keep", 1, 0, 0).await;
        let records = p.records.expect("records");
        assert_eq!(values(&records), [(0, "x".to_owned()), (1, "y".to_owned())]);
        let Response::InitProducerId(after) = client
            .call(
                4,
                Request::InitProducerId(InitProducerIdRequest {
                    producer_id: -1,
                    producer_epoch: -1,
                    ..InitProducerIdRequest::default()
                }),
            )
            .await
        else {
            panic!("not InitProducerId")
        };
        assert!(
            after.producer_id > before.producer_id,
            "ids never repeat across restarts"
        );
    })
    .await
    .expect("test timed out");
}
