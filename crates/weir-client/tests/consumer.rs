//! Consumer tests against the mini cluster: round trips, seeks, transactions and
//! control records, offset resets, leader moves, fetch versions.

mod common;

use std::time::Duration;

use bytes::Bytes;
use weir_client::consumer::{Consumer, ConsumerConfig, IsolationLevel, OffsetReset};
use weir_client::producer::{Compression, Producer, ProducerConfig, ProducerRecord};
use weir_client::{ConsumerRecord, Error, TopicPartition};
use weir_protocol::records::control::EndTxnMarker;
use weir_protocol::records::{patch_in_place, BatchBuilder};
use weir_protocol::ApiKey;

use common::mini::Mini;

fn consumer_config(mini: &Mini) -> ConsumerConfig {
    ConsumerConfig {
        client: common::client_config(&mini.bootstrap()),
        fetch_max_wait: Duration::from_millis(50),
        auto_offset_reset: OffsetReset::Earliest,
        ..ConsumerConfig::default()
    }
}

async fn producer(mini: &Mini, codec: Compression) -> Producer {
    let mut c = ProducerConfig {
        client: common::client_config(&mini.bootstrap()),
        ..ProducerConfig::default()
    };
    c.compression = codec;
    Producer::new(c).await.unwrap()
}

/// Polls until `n` records arrived (or 10 s passed).
async fn poll_n(c: &mut Consumer, n: usize) -> Vec<ConsumerRecord> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while out.len() < n && tokio::time::Instant::now() < deadline {
        out.extend(c.poll(Duration::from_millis(200)).await.unwrap());
    }
    out
}

fn value(r: &ConsumerRecord) -> String {
    String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap()
}

#[tokio::test]
async fn produced_records_come_back_with_keys_headers_and_timestamps() {
    let mini = Mini::start(1).await;
    mini.create_topic("t", 2, 1);
    let p = producer(&mini, Compression::Zstd).await;
    for i in 0..100 {
        let rec = ProducerRecord::new("t", format!("v{i}"))
            .key(format!("k{i}"))
            .header("n", format!("{i}"))
            .timestamp(1_000 + i)
            .partition((i % 2) as i32);
        p.send(rec).await.unwrap();
    }
    p.flush().await.unwrap();
    let mut c = Consumer::new(consumer_config(&mini)).await.unwrap();
    c.assign([TopicPartition::new("t", 0), TopicPartition::new("t", 1)]);
    let records = poll_n(&mut c, 100).await;
    assert_eq!(records.len(), 100);
    for part in 0..2 {
        let mine: Vec<&ConsumerRecord> = records.iter().filter(|r| r.partition == part).collect();
        assert_eq!(mine.len(), 50);
        for (j, r) in mine.iter().enumerate() {
            let i = j as i64 * 2 + i64::from(part);
            assert_eq!(r.offset, j as i64);
            assert_eq!(value(r), format!("v{i}"));
            assert_eq!(r.key.as_deref(), Some(format!("k{i}").as_bytes()));
            assert_eq!(
                r.headers,
                vec![("n".to_owned(), Some(Bytes::from(format!("{i}"))))]
            );
            assert_eq!(r.timestamp, 1_000 + i);
            assert_eq!(&*r.topic, "t");
        }
    }
    assert_eq!(c.position(&TopicPartition::new("t", 0)), Some(50));
    assert_eq!(c.high_watermark(&TopicPartition::new("t", 1)), Some(50));
}

#[tokio::test]
async fn seeks_to_an_offset_inside_a_batch_the_end_and_a_time() {
    let mini = Mini::start(1).await;
    mini.create_topic("t", 1, 1);
    let tp = TopicPartition::new("t", 0);
    let p = producer(&mini, Compression::None).await;
    for i in 0..10 {
        p.send(ProducerRecord::new("t", format!("{i}")).timestamp(1_000 * (i + 1)))
            .await
            .unwrap();
    }
    p.flush().await.unwrap();
    assert_eq!(
        mini.state().topics["t"].partitions[0].batches.len(),
        1,
        "one batch of ten"
    );

    let mut c = Consumer::new(consumer_config(&mini)).await.unwrap();
    c.assign([tp.clone()]);
    c.seek(&tp, 5).unwrap();
    let got = poll_n(&mut c, 5).await;
    assert_eq!(
        got.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![5, 6, 7, 8, 9]
    );

    c.seek_to_timestamp(std::slice::from_ref(&tp), 2_500)
        .unwrap();
    let got = poll_n(&mut c, 7).await;
    assert_eq!(
        got.first().map(|r| r.offset),
        Some(2),
        "first record at or after 2500 ms"
    );

    c.seek_to_timestamp(std::slice::from_ref(&tp), 99_999)
        .unwrap();
    assert!(c.poll(Duration::from_millis(300)).await.unwrap().is_empty());
    assert_eq!(
        c.position(&tp),
        Some(10),
        "a time past the last record means the end"
    );

    c.seek_to_end(std::slice::from_ref(&tp)).unwrap();
    assert!(c.poll(Duration::from_millis(300)).await.unwrap().is_empty());
    p.send_and_wait(ProducerRecord::new("t", "new"))
        .await
        .unwrap();
    let got = poll_n(&mut c, 1).await;
    assert_eq!((got[0].offset, value(&got[0])), (10, "new".to_owned()));

    c.seek_to_beginning(std::slice::from_ref(&tp)).unwrap();
    assert_eq!(poll_n(&mut c, 11).await.len(), 11);
}

fn txn_batch(pid: i64, values: &[&str]) -> Bytes {
    let mut b = BatchBuilder::new().producer(pid, 0, 0).transactional(true);
    for v in values {
        b.append(1_000, None, Some(v.as_bytes()), &[]).unwrap();
    }
    b.build().unwrap()
}

fn marker(pid: i64, commit: bool) -> Bytes {
    let m = EndTxnMarker {
        commit,
        coordinator_epoch: 0,
    };
    let mut b = m.build_batch(pid, 0, 1_000).unwrap().to_vec();
    assert!(patch_in_place(&mut b, 0, -1));
    Bytes::from(b)
}

#[tokio::test]
async fn read_committed_skips_aborted_transactions_and_control_records() {
    let mini = Mini::start(1).await;
    mini.create_topic("t", 1, 1);
    let tp = TopicPartition::new("t", 0);
    let first = mini.append_raw("t", 0, txn_batch(7, &["aborted-1", "aborted-2"]));
    mini.append_raw("t", 0, txn_batch(8, &["committed"]));
    let abort_at = mini.append_raw("t", 0, marker(7, false));
    mini.append_raw("t", 0, marker(8, true));
    mini.state().topics.get_mut("t").unwrap().partitions[0]
        .aborted
        .push((7, first, abort_at));

    let mut config = consumer_config(&mini);
    config.isolation_level = IsolationLevel::ReadCommitted;
    let mut c = Consumer::new(config).await.unwrap();
    c.assign([tp.clone()]);
    let got = poll_n(&mut c, 1).await;
    assert_eq!(got.iter().map(value).collect::<Vec<_>>(), vec!["committed"]);
    assert!(c.poll(Duration::from_millis(200)).await.unwrap().is_empty());
    assert_eq!(c.position(&tp), Some(5), "past both markers");

    let mut c = Consumer::new(consumer_config(&mini)).await.unwrap();
    c.assign([tp.clone()]);
    let got = poll_n(&mut c, 3).await;
    assert_eq!(
        got.iter().map(value).collect::<Vec<_>>(),
        vec!["aborted-1", "aborted-2", "committed"]
    );
    assert!(
        c.poll(Duration::from_millis(200)).await.unwrap().is_empty(),
        "never a control record"
    );
}

#[tokio::test]
async fn an_out_of_range_position_resets_or_fails_per_policy() {
    let mini = Mini::start(1).await;
    mini.create_topic("t", 1, 1);
    let tp = TopicPartition::new("t", 0);
    let p = producer(&mini, Compression::None).await;
    for i in 0..3 {
        p.send_and_wait(ProducerRecord::new("t", format!("{i}")))
            .await
            .unwrap();
    }
    let mut c = Consumer::new(consumer_config(&mini)).await.unwrap();
    c.assign([tp.clone()]);
    c.seek(&tp, 1_000).unwrap();
    let got = poll_n(&mut c, 3).await;
    assert_eq!(
        got.first().map(|r| r.offset),
        Some(0),
        "earliest after out of range"
    );

    let mut config = consumer_config(&mini);
    config.auto_offset_reset = OffsetReset::None;
    let mut c = Consumer::new(config).await.unwrap();
    c.assign([tp.clone()]);
    let e = c.poll(Duration::from_millis(500)).await.unwrap_err();
    assert!(matches!(e, Error::NoOffset { .. }), "{e}");
    c.seek(&tp, 1_000).unwrap();
    let mut result = Ok(Vec::new());
    for _ in 0..20 {
        result = c.poll(Duration::from_millis(100)).await;
        if result.is_err() {
            break;
        }
    }
    let e = result.unwrap_err();
    assert!(
        matches!(e, Error::OffsetOutOfRange { offset: 1_000, .. }),
        "{e}"
    );
}

#[tokio::test]
async fn the_consumer_follows_a_leader_move() {
    let mini = Mini::start(2).await;
    mini.create_topic("t", 1, 1);
    let tp = TopicPartition::new("t", 0);
    let p = producer(&mini, Compression::Lz4).await;
    for i in 0..3 {
        p.send_and_wait(ProducerRecord::new("t", format!("{i}")))
            .await
            .unwrap();
    }
    let mut c = Consumer::new(consumer_config(&mini)).await.unwrap();
    c.assign([tp.clone()]);
    assert_eq!(poll_n(&mut c, 3).await.len(), 3);
    mini.move_leader("t", 0, 2);
    for i in 3..6 {
        p.send_and_wait(ProducerRecord::new("t", format!("{i}")))
            .await
            .unwrap();
    }
    let got = poll_n(&mut c, 3).await;
    assert_eq!(
        got.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    let fetch_nodes: Vec<i32> = mini
        .state()
        .requests
        .iter()
        .filter(|r| r.1 == ApiKey::Fetch as i16)
        .map(|r| r.0)
        .collect();
    assert_eq!(fetch_nodes.last(), Some(&2));
}

#[tokio::test]
async fn fetch_names_topics_by_id_or_by_name_as_the_broker_allows() {
    for (cap, want) in [(None, 17i16), (Some(12i16), 12)] {
        let mini = Mini::start(1).await;
        if let Some(cap) = cap {
            mini.state().api_max.insert(ApiKey::Fetch as i16, cap);
        }
        mini.create_topic("t", 1, 1);
        let p = producer(&mini, Compression::Snappy).await;
        p.send_and_wait(ProducerRecord::new("t", "x"))
            .await
            .unwrap();
        let mut c = Consumer::new(consumer_config(&mini)).await.unwrap();
        c.assign([TopicPartition::new("t", 0)]);
        assert_eq!(poll_n(&mut c, 1).await.len(), 1);
        let versions: Vec<i16> = mini
            .state()
            .requests
            .iter()
            .filter(|r| r.1 == ApiKey::Fetch as i16)
            .map(|r| r.2)
            .collect();
        assert!(versions.iter().all(|&v| v == want), "{versions:?}");
    }
}

#[tokio::test]
async fn max_poll_records_bounds_each_poll() {
    let mini = Mini::start(1).await;
    mini.create_topic("t", 1, 1);
    let p = producer(&mini, Compression::None).await;
    for i in 0..25 {
        p.send(ProducerRecord::new("t", format!("{i}")))
            .await
            .unwrap();
    }
    p.flush().await.unwrap();
    let mut config = consumer_config(&mini);
    config.max_poll_records = 10;
    let mut c = Consumer::new(config).await.unwrap();
    c.assign([TopicPartition::new("t", 0)]);
    let mut sizes = Vec::new();
    let mut offsets = Vec::new();
    while offsets.len() < 25 {
        let got = c.poll(Duration::from_secs(2)).await.unwrap();
        assert!(!got.is_empty());
        sizes.push(got.len());
        offsets.extend(got.iter().map(|r| r.offset));
    }
    assert!(sizes.iter().all(|&n| n <= 10), "{sizes:?}");
    assert_eq!(offsets, (0..25).collect::<Vec<i64>>());
}
