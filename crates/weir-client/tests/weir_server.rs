//! End-to-end: the client against the real `weir server` binary (built on demand,
//! temp data dir, 127.0.0.1 port 0).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use weir_client::admin::{Admin, AlterConfigOp, ConfigResource, ElectionType, NewTopic};
use weir_client::consumer::{Consumer, ConsumerConfig, IsolationLevel, OffsetReset};
use weir_client::producer::partitioner::partition_for_key;
use weir_client::producer::{Compression, Producer, ProducerConfig, ProducerRecord};
use weir_client::{ConsumerRecord, ErrorCode, OffsetSpec, TopicPartition};

use common::weir::WeirServer;

fn producer_config(addr: &str, codec: Compression) -> ProducerConfig {
    ProducerConfig {
        client: common::client_config(addr),
        compression: codec,
        delivery_timeout: Duration::from_secs(60),
        ..ProducerConfig::default()
    }
}

async fn consume_all(addr: &str, topic: &str, partitions: i32, n: usize) -> Vec<ConsumerRecord> {
    let config = ConsumerConfig {
        client: common::client_config(addr),
        auto_offset_reset: OffsetReset::Earliest,
        fetch_max_wait: Duration::from_millis(100),
        ..ConsumerConfig::default()
    };
    let mut c = Consumer::new(config).await.unwrap();
    c.assign((0..partitions).map(|p| TopicPartition::new(topic, p)));
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while out.len() < n && tokio::time::Instant::now() < deadline {
        out.extend(c.poll(Duration::from_millis(500)).await.unwrap());
    }
    // Nothing more than expected arrives.
    out.extend(c.poll(Duration::from_millis(300)).await.unwrap());
    out
}

fn by_partition(records: &[ConsumerRecord]) -> BTreeMap<i32, Vec<(i64, Bytes)>> {
    let mut m: BTreeMap<i32, Vec<(i64, Bytes)>> = BTreeMap::new();
    for r in records {
        m.entry(r.partition)
            .or_default()
            .push((r.offset, r.value.clone().unwrap_or_default()));
    }
    m
}

#[tokio::test]
async fn every_codec_round_trips_through_weir_server_on_java_partitions() {
    let server = WeirServer::start();
    let admin = Admin::new(common::client_config(&server.addr))
        .await
        .unwrap();
    let created = admin
        .create_topics(vec![NewTopic::new("codecs", 3, 1)], false)
        .await
        .unwrap();
    assert!(created[0].1.is_ok(), "{:?}", created[0].1);
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    let mut sent: BTreeMap<i32, Vec<Bytes>> = BTreeMap::new();
    for (c, codec) in codecs.into_iter().enumerate() {
        let p = Producer::new(producer_config(&server.addr, codec))
            .await
            .unwrap();
        let mut futures = Vec::new();
        for i in 0..300 {
            let key = format!("key-{i}");
            let value = Bytes::from(format!("{codec:?} {i} {}", "x".repeat(i % 50)));
            let rec = ProducerRecord::new("codecs", value.clone())
                .key(key.clone())
                .header("codec", format!("{c}"));
            futures.push((key, value, p.send(rec).await.unwrap()));
        }
        for (key, value, f) in futures {
            let meta = f.await.unwrap();
            assert_eq!(
                meta.partition,
                partition_for_key(key.as_bytes(), 3),
                "{key}"
            );
            sent.entry(meta.partition).or_default().push(value);
        }
        p.close().await.unwrap();
    }
    let records = consume_all(&server.addr, "codecs", 3, 1500).await;
    assert_eq!(records.len(), 1500);
    let got = by_partition(&records);
    for (partition, values) in &sent {
        let stored = &got[partition];
        assert_eq!(
            stored.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
            *values,
            "partition {partition}"
        );
        assert!(
            stored.iter().enumerate().all(|(i, (o, _))| *o == i as i64),
            "offsets without gaps"
        );
    }
}

#[tokio::test]
async fn admin_calls_against_weir_server() {
    let server = WeirServer::start();
    let admin = Admin::new(common::client_config(&server.addr))
        .await
        .unwrap();
    admin
        .create_topics(
            vec![NewTopic::new("a", 2, 1).config("retention.ms", "3600000")],
            false,
        )
        .await
        .unwrap()[0]
        .1
        .as_ref()
        .unwrap();
    let dup = admin
        .create_topics(vec![NewTopic::new("a", 2, 1)], false)
        .await
        .unwrap();
    assert_eq!(
        dup[0].1.as_ref().unwrap_err().code(),
        Some(ErrorCode::TopicAlreadyExists)
    );

    let d = admin.describe_topics(&["a".into()]).await.unwrap();
    let desc = d[0].1.as_ref().unwrap();
    assert_eq!(desc.partitions.len(), 2);
    assert!(desc
        .partitions
        .iter()
        .all(|p| p.leader.is_some() && !p.isr.is_empty()));

    admin
        .create_partitions(vec![("a".into(), 4)], false)
        .await
        .unwrap()[0]
        .1
        .as_ref()
        .unwrap();
    let d = admin.describe_topics(&["a".into()]).await.unwrap();
    assert_eq!(d[0].1.as_ref().unwrap().partitions.len(), 4);

    let res = ConfigResource::topic("a");
    admin
        .incremental_alter_configs(
            vec![(
                res.clone(),
                vec![AlterConfigOp::Set("retention.ms".into(), "7200000".into())],
            )],
            false,
        )
        .await
        .unwrap()[0]
        .1
        .as_ref()
        .unwrap();
    let configs = admin.describe_configs(vec![res]).await.unwrap();
    let entries = configs[0].1.as_ref().unwrap();
    let retention = entries.iter().find(|e| e.name == "retention.ms").unwrap();
    assert_eq!(retention.value.as_deref(), Some("7200000"));
    assert!(!retention.is_default);

    let p = Producer::new(producer_config(&server.addr, Compression::None))
        .await
        .unwrap();
    for i in 0..5 {
        p.send_and_wait(
            ProducerRecord::new("a", "v")
                .partition(0)
                .timestamp(1_000 * (i + 1)),
        )
        .await
        .unwrap();
    }
    let tp = TopicPartition::new("a", 0);
    let offsets = admin
        .list_offsets(
            &[
                (tp.clone(), OffsetSpec::Earliest),
                (tp.clone(), OffsetSpec::Latest),
                (tp.clone(), OffsetSpec::Timestamp(2_500)),
            ],
            IsolationLevel::ReadUncommitted,
        )
        .await
        .unwrap();
    let got: Vec<i64> = offsets
        .iter()
        .map(|(_, r)| r.as_ref().unwrap().offset)
        .collect();
    assert_eq!(got, vec![0, 5, 2]);

    let cluster = admin.describe_cluster().await.unwrap();
    assert_eq!(cluster.brokers.len(), 1);
    assert!(cluster.cluster_id.is_some());

    admin.delete_topics(&["a".into()]).await.unwrap()[0]
        .1
        .as_ref()
        .unwrap();
    let d = admin.describe_topics(&["a".into()]).await.unwrap();
    assert_eq!(
        d[0].1.as_ref().unwrap_err().code(),
        Some(ErrorCode::UnknownTopicOrPartition)
    );
}

/// The partition admin calls on one node: typed per-partition results with the
/// broker's codes (moves between brokers are in weir-cli's cluster_admin tests).
#[tokio::test]
async fn partition_admin_calls_against_weir_server() {
    let server = WeirServer::start();
    let admin = Admin::new(common::client_config(&server.addr))
        .await
        .unwrap();
    admin
        .create_topics(vec![NewTopic::new("p", 2, 1)], false)
        .await
        .unwrap()[0]
        .1
        .as_ref()
        .unwrap();
    let tp = |topic: &str, partition| TopicPartition::new(topic, partition);
    let code = |r: &weir_client::Result<()>| r.as_ref().err().and_then(weir_client::Error::code);

    let elected = admin
        .elect_leaders(
            ElectionType::Preferred,
            Some(vec![tp("p", 0), tp("missing", 0)]),
        )
        .await
        .unwrap();
    assert_eq!(elected.len(), 2);
    assert_eq!(elected[0].0, tp("p", 0));
    assert_eq!(code(&elected[0].1), Some(ErrorCode::ElectionNotNeeded));
    assert_eq!(
        code(&elected[1].1),
        Some(ErrorCode::UnknownTopicOrPartition)
    );
    let all = admin
        .elect_leaders(ElectionType::Preferred, None)
        .await
        .unwrap();
    assert!(all.is_empty(), "{all:?}");

    let moved = admin
        .alter_partition_reassignments(vec![(tp("p", 0), Some(vec![7])), (tp("p", 1), None)], true)
        .await
        .unwrap();
    assert_eq!(code(&moved[0].1), Some(ErrorCode::InvalidReplicaAssignment));
    assert_eq!(code(&moved[1].1), Some(ErrorCode::NoReassignmentInProgress));
    // v1 (KIP-860): a target of another length is refused when asked to.
    let fixed = admin
        .alter_partition_reassignments(
            vec![(tp("p", 0), Some(vec![1, 7])), (tp("p", 1), Some(vec![1]))],
            false,
        )
        .await
        .unwrap();
    assert_eq!(code(&fixed[0].1), Some(ErrorCode::InvalidReplicationFactor));
    assert_eq!(code(&fixed[1].1), None);
    let listed = admin.list_partition_reassignments(None).await.unwrap();
    assert!(listed.is_empty(), "{listed:?}");
}

#[tokio::test]
async fn seeks_against_weir_server() {
    let server = WeirServer::start();
    let p = Producer::new(producer_config(&server.addr, Compression::Lz4))
        .await
        .unwrap();
    for i in 0..10 {
        p.send(ProducerRecord::new("s", format!("{i}")).timestamp(10_000 + i))
            .await
            .unwrap();
    }
    p.flush().await.unwrap();
    let config = ConsumerConfig {
        client: common::client_config(&server.addr),
        fetch_max_wait: Duration::from_millis(100),
        ..ConsumerConfig::default()
    };
    let mut c = Consumer::new(config).await.unwrap();
    let tp = TopicPartition::new("s", 0);
    c.assign([tp.clone()]);
    c.seek_to_timestamp(std::slice::from_ref(&tp), 10_004)
        .unwrap();
    let first = loop {
        let got = c.poll(Duration::from_secs(5)).await.unwrap();
        if let Some(r) = got.first() {
            break r.offset;
        }
    };
    assert_eq!(first, 4);
    c.seek(&tp, 7).unwrap();
    let got = c.poll(Duration::from_secs(5)).await.unwrap();
    assert_eq!(got.first().map(|r| r.offset), Some(7));
}

#[tokio::test]
async fn records_survive_a_broker_kill_and_the_producer_carries_on_without_duplicates() {
    let mut server = WeirServer::start();
    let temp = server.take_temp();
    let addr = server.addr.clone();
    let admin = Admin::new(common::client_config(&addr)).await.unwrap();
    admin
        .create_topics(vec![NewTopic::new("r", 2, 1)], false)
        .await
        .unwrap()[0]
        .1
        .as_ref()
        .unwrap();
    let p = Producer::new(producer_config(&addr, Compression::Snappy))
        .await
        .unwrap();
    for i in 0..100 {
        p.send(ProducerRecord::new("r", format!("{i}")).key(format!("{i}")))
            .await
            .unwrap();
    }
    p.flush().await.unwrap();

    server.kill();
    // These wait in the producer, retrying, while the broker is down.
    let mut pending = Vec::new();
    for i in 100..200 {
        pending.push(
            p.send(ProducerRecord::new("r", format!("{i}")).key(format!("{i}")))
                .await
                .unwrap(),
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let dir = server.data_dir.clone();
    let _restarted = WeirServer::start_in(&dir, &addr);
    for f in pending {
        tokio::time::timeout(Duration::from_secs(60), f)
            .await
            .expect("delivered after restart")
            .unwrap();
    }
    let records = consume_all(&addr, "r", 2, 200).await;
    let mut values: Vec<i32> = records
        .iter()
        .map(|r| {
            String::from_utf8_lossy(r.value.as_deref().unwrap_or_default())
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(values.len(), 200, "every record exactly once");
    values.sort_unstable();
    assert_eq!(values, (0..200).collect::<Vec<_>>());
    drop(temp);
}
