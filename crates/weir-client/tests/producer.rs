//! Producer tests against the mini cluster: partitioning, batching, codecs, retries
//! on leader moves, idempotent retries without duplicates, epoch bumps, timeouts.

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use weir_client::producer::partitioner::partition_for_key;
use weir_client::producer::{
    Acks, Compression, DeliveryFuture, Producer, ProducerConfig, ProducerRecord,
};
use weir_client::{Error, ErrorCode};
use weir_protocol::messages::produce::{
    PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
};
use weir_protocol::records::BatchView;
use weir_protocol::{ApiKey, Request, Response};

use common::mini::{HookAction, Mini};
use common::server::Reply;

fn config(mini: &Mini) -> ProducerConfig {
    let mut c = ProducerConfig {
        client: common::client_config(&mini.bootstrap()),
        ..ProducerConfig::default()
    };
    c.delivery_timeout = Duration::from_secs(20);
    c
}

/// A Produce response failing every partition of `req` with `code`.
fn produce_error(req: &Request, code: i16, log_start_offset: i64) -> Reply {
    let Request::Produce(p) = req else {
        panic!("not produce")
    };
    let responses = p
        .topic_data
        .iter()
        .map(|t| TopicProduceResponse {
            name: t.name.clone(),
            partition_responses: t
                .partition_data
                .iter()
                .map(|d| PartitionProduceResponse {
                    index: d.index,
                    error_code: code,
                    base_offset: -1,
                    log_append_time_ms: -1,
                    log_start_offset,
                    ..Default::default()
                })
                .collect(),
        })
        .collect();
    Reply::Respond(Response::Produce(ProduceResponse {
        responses,
        ..Default::default()
    }))
}

async fn wait_all(
    futures: Vec<DeliveryFuture>,
) -> Vec<weir_client::Result<weir_client::RecordMetadata>> {
    let mut out = Vec::new();
    for f in futures {
        out.push(
            tokio::time::timeout(Duration::from_secs(30), f)
                .await
                .expect("delivery hung"),
        );
    }
    out
}

#[tokio::test]
async fn keyed_records_land_where_the_java_client_puts_them() {
    let mini = Mini::start(1).await;
    mini.create_topic("t", 6, 1);
    let producer = Producer::new(config(&mini)).await.unwrap();
    let mut futures = Vec::new();
    for i in 0..200 {
        let rec = ProducerRecord::new("t", format!("v{i}")).key(format!("k{i}"));
        futures.push(producer.send(rec).await.unwrap());
    }
    let results = wait_all(futures).await;
    let mut next = [0i64; 6];
    for (i, r) in results.into_iter().enumerate() {
        let meta = r.unwrap();
        let want = partition_for_key(format!("k{i}").as_bytes(), 6);
        assert_eq!(meta.partition, want, "key k{i}");
        // Per partition, offsets follow send order without gaps.
        assert_eq!(meta.offset, next[want as usize]);
        next[want as usize] += 1;
    }
    for (p, &count) in next.iter().enumerate() {
        let stored = mini.values("t", p);
        assert_eq!(stored.len() as i64, count);
        assert!(stored.iter().enumerate().all(|(i, (o, _))| *o == i as i64));
    }
    producer.close().await.unwrap();
}

#[tokio::test]
async fn keyless_records_fill_a_batch_per_partition() {
    let mini = Mini::start(1).await;
    mini.create_topic("t", 6, 1);
    let mut c = config(&mini);
    c.batch_size = 2000;
    let producer = Producer::new(c).await.unwrap();
    let mut futures = Vec::new();
    for _ in 0..200 {
        futures.push(
            producer
                .send(ProducerRecord::new("t", vec![b'x'; 100]))
                .await
                .unwrap(),
        );
    }
    let parts: Vec<i32> = wait_all(futures)
        .await
        .into_iter()
        .map(|r| r.unwrap().partition)
        .collect();
    let switches = parts.windows(2).filter(|w| w[0] != w[1]).count();
    // ~130 bytes per record, ~2000 bytes per sticky run: about 13 switches, never 199.
    assert!(
        (5..=25).contains(&switches),
        "{switches} partition switches"
    );
    assert!(parts.iter().collect::<std::collections::HashSet<_>>().len() > 1);
}

#[tokio::test]
async fn every_codec_round_trips() {
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let mini = Mini::start(1).await;
        mini.create_topic("t", 1, 1);
        let mut c = config(&mini);
        c.compression = codec;
        let producer = Producer::new(c).await.unwrap();
        let mut futures = Vec::new();
        for i in 0..50 {
            let rec = ProducerRecord::new("t", format!("value {i} {}", "z".repeat(i)))
                .header("h", format!("{i}"));
            futures.push(producer.send(rec).await.unwrap());
        }
        for r in wait_all(futures).await {
            r.unwrap();
        }
        let values: Vec<Bytes> = mini.values("t", 0).into_iter().map(|(_, v)| v).collect();
        let want: Vec<Bytes> = (0..50)
            .map(|i| Bytes::from(format!("value {i} {}", "z".repeat(i))))
            .collect();
        assert_eq!(values, want, "{codec:?}");
        let first = mini.state().topics["t"].partitions[0].batches[0].clone();
        assert_eq!(BatchView::parse(first).unwrap().compression(), codec);
        producer.close().await.unwrap();
    }
}

#[tokio::test]
async fn not_leader_refreshes_metadata_and_retries_on_the_new_leader() {
    let mini = Mini::start(2).await;
    mini.create_topic("t", 1, 1);
    let producer = Producer::new(config(&mini)).await.unwrap();
    let first = producer
        .send_and_wait(ProducerRecord::new("t", "a"))
        .await
        .unwrap();
    assert_eq!(first.offset, 0);
    let metadata_before = mini.count(ApiKey::Metadata);
    mini.move_leader("t", 0, 2);
    let second = producer
        .send_and_wait(ProducerRecord::new("t", "b"))
        .await
        .unwrap();
    assert_eq!((second.partition, second.offset), (0, 1));
    assert!(
        mini.count(ApiKey::Metadata) > metadata_before,
        "metadata was refreshed"
    );
    let produce_nodes: Vec<i32> = mini
        .state()
        .requests
        .iter()
        .filter(|r| r.1 == ApiKey::Produce as i16)
        .map(|r| r.0)
        .collect();
    assert_eq!(produce_nodes.first(), Some(&1));
    assert_eq!(produce_nodes.last(), Some(&2));
    assert!(
        produce_nodes.len() >= 3,
        "a refused attempt on the old leader: {produce_nodes:?}"
    );
    assert_eq!(mini.values("t", 0).len(), 2);
}

/// A broker that acknowledges requests in groups (one fsync covering several
/// produces) answers nothing until the window is full. The producer must fill its
/// whole `max.in.flight` window from the batches it has queued: sending one request
/// per wake-up, it got the others out only on its 100 ms idle tick (about 5 s for
/// this window), and against a real broker it committed one batch per fsync.
#[tokio::test]
async fn the_in_flight_window_fills_from_queued_batches_at_once() {
    const WINDOW: usize = 50;
    let mini = Mini::start(1).await;
    mini.create_topic("t", 1, 1);
    let (held, _) = tokio::sync::watch::channel(0usize);
    let counter = held.clone();
    mini.set_hook(move |_, req| match req {
        Request::Produce(_) => {
            counter.send_modify(|n| *n += 1);
            let mut seen = counter.subscribe();
            HookAction::AnswerAfter(Box::pin(async move {
                let _ = seen.wait_for(|&n| n >= WINDOW).await;
            }))
        }
        _ => HookAction::Continue,
    });
    let mut c = config(&mini);
    c.max_in_flight = WINDOW; // more than idempotence allows: acks=1 then
    c.acks = Acks::Leader;
    c.batch_size = 1; // every record is a full batch of its own
    let producer = Producer::new(c).await.unwrap();
    let started = Instant::now();
    let mut futures = Vec::new();
    for i in 0..2 * WINDOW {
        let record = ProducerRecord::new("t", format!("record {i}"));
        futures.push(producer.send(record).await.unwrap());
    }
    let mut window_full = held.subscribe();
    window_full.wait_for(|&n| n >= WINDOW).await.unwrap();
    let filled_in = started.elapsed();
    assert!(
        filled_in < Duration::from_secs(2),
        "the window of {WINDOW} filled in {filled_in:?}: one request per wake-up"
    );
    let offsets: Vec<i64> = wait_all(futures)
        .await
        .into_iter()
        .map(|r| r.unwrap().offset)
        .collect();
    assert_eq!(offsets, (0..2 * WINDOW as i64).collect::<Vec<_>>());
}

/// A producer on a one-broker mini cluster that has sent one record to topic `t`:
/// its metadata is known, so no later send has a reason to wait.
async fn producer_that_knows_t() -> (Mini, Producer) {
    let mini = Mini::start(1).await;
    mini.create_topic("t", 1, 1);
    let producer = Producer::new(config(&mini)).await.unwrap();
    producer
        .send_and_wait(ProducerRecord::new("t", "first"))
        .await
        .unwrap();
    (mini, producer)
}

/// `send` spends cooperative budget: a loop of sends that never waits still lets
/// the other tasks of its thread run (the sender, the connections), instead of
/// queueing records until `buffer.memory` runs out while nothing leaves.
#[tokio::test]
async fn a_loop_of_sends_lets_the_other_tasks_of_its_thread_run() {
    let (_mini, producer) = producer_that_knows_t().await;
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    tokio::spawn(async move { flag.store(true, Ordering::SeqCst) });
    let mut sends = 0;
    while !ran.load(Ordering::SeqCst) && sends < 10_000 {
        producer
            .send(ProducerRecord::new("t", "more"))
            .await
            .unwrap();
        sends += 1;
    }
    assert!(
        ran.load(Ordering::SeqCst),
        "{sends} sends in a row and the other task never ran"
    );
    producer.close().await.unwrap();
}

/// A send dropped while it yields to other tasks has queued nothing, so a caller
/// that gives up on a send and retries it does not write the record twice.
#[tokio::test]
async fn a_send_dropped_while_it_yields_has_queued_nothing() {
    let (mini, producer) = producer_that_knows_t().await;
    let (mut completed, mut dropped) = (Vec::new(), 0);
    // Polled once each without yielding in between: once the task's budget is
    // spent, every send is pending, and is dropped.
    for i in 0..1000 {
        let mut send = std::pin::pin!(producer.send(ProducerRecord::new("t", format!("{i}"))));
        match std::future::poll_fn(|cx| Poll::Ready(send.as_mut().poll(cx))).await {
            Poll::Ready(delivery) => completed.push(delivery.unwrap()),
            Poll::Pending => dropped += 1,
        }
    }
    assert!(dropped > 0, "no send yielded");
    let acked = wait_all(completed).await.len();
    producer.close().await.unwrap();
    assert_eq!(
        mini.values("t", 0).len(),
        1 + acked,
        "{dropped} dropped sends"
    );
}

#[tokio::test]
async fn a_lost_response_is_retried_without_duplicating() {
    let mini = Mini::start(1).await;
    mini.create_topic("t", 1, 1);
    let mut lost = false;
    mini.set_hook(move |_, req| match req {
        Request::Produce(_) if !lost => {
            lost = true;
            HookAction::HandleThenClose
        }
        _ => HookAction::Continue,
    });
    let mut c = config(&mini);
    c.linger = Duration::from_millis(50);
    let producer = Producer::new(c).await.unwrap();
    let mut futures = Vec::new();
    for i in 0..10 {
        futures.push(
            producer
                .send(ProducerRecord::new("t", format!("{i}")))
                .await
                .unwrap(),
        );
    }
    let offsets: Vec<i64> = wait_all(futures)
        .await
        .into_iter()
        .map(|r| r.unwrap().offset)
        .collect();
    assert_eq!(
        offsets,
        (0..10).collect::<Vec<_>>(),
        "the duplicate answered with the original offsets"
    );
    assert_eq!(mini.values("t", 0).len(), 10, "appended once");
    assert!(mini.count(ApiKey::Produce) >= 2, "the batch was sent twice");
    // Sequences continue after the retried batch.
    let next = producer
        .send_and_wait(ProducerRecord::new("t", "10"))
        .await
        .unwrap();
    assert_eq!(next.offset, 10);
    assert_eq!(mini.values("t", 0).len(), 11);
}

async fn bump_case(code: i16) {
    let mini = Mini::start(1).await;
    mini.create_topic("t", 1, 1);
    let mut refused = false;
    mini.set_hook(move |_, req| match req {
        Request::Produce(_) if !refused => {
            refused = true;
            HookAction::Reply(produce_error(req, code, 0))
        }
        _ => HookAction::Continue,
    });
    let producer = Producer::new(config(&mini)).await.unwrap();
    let meta = producer
        .send_and_wait(ProducerRecord::new("t", "only"))
        .await
        .unwrap();
    assert_eq!(meta.offset, 0);
    assert_eq!(
        mini.count(ApiKey::InitProducerId),
        2,
        "an epoch bump after error {code}"
    );
    let stored = mini.state().topics["t"].partitions[0].batches.clone();
    assert_eq!(stored.len(), 1);
    let v = BatchView::parse(stored[0].clone()).unwrap();
    assert_eq!(
        (v.producer_epoch(), v.base_sequence()),
        (1, 0),
        "re-stamped under the new epoch"
    );
}

#[tokio::test]
async fn out_of_order_sequence_on_the_next_batch_bumps_the_epoch() {
    bump_case(ErrorCode::OutOfOrderSequenceNumber.code()).await;
}

#[tokio::test]
async fn unknown_producer_id_bumps_the_epoch() {
    bump_case(ErrorCode::UnknownProducerId.code()).await;
}

#[tokio::test]
async fn a_non_retriable_error_fails_the_record_and_the_producer_goes_on() {
    let mini = Mini::start(1).await;
    mini.create_topic("t", 1, 1);
    let mut refused = false;
    mini.set_hook(move |_, req| match req {
        Request::Produce(_) if !refused => {
            refused = true;
            HookAction::Reply(produce_error(req, ErrorCode::MessageTooLarge.code(), 0))
        }
        _ => HookAction::Continue,
    });
    let producer = Producer::new(config(&mini)).await.unwrap();
    let e = producer
        .send_and_wait(ProducerRecord::new("t", "big"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::MessageTooLarge), "{e}");
    let ok = producer
        .send_and_wait(ProducerRecord::new("t", "small"))
        .await
        .unwrap();
    assert_eq!(ok.offset, 0);
    // The failed batch left a sequence gap: the next one went out under a new epoch.
    assert_eq!(mini.count(ApiKey::InitProducerId), 2);
}

#[tokio::test]
async fn acks_zero_resolves_without_offsets() {
    let mini = Mini::start(1).await;
    mini.create_topic("t", 1, 1);
    let mut c = config(&mini);
    c.acks = Acks::None;
    let producer = Producer::new(c).await.unwrap();
    let meta = producer
        .send_and_wait(ProducerRecord::new("t", "fire"))
        .await
        .unwrap();
    assert_eq!(meta.offset, -1);
    producer.close().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(mini.values("t", 0).len(), 1);
    assert_eq!(
        mini.count(ApiKey::InitProducerId),
        0,
        "not idempotent with acks=0"
    );
}

#[tokio::test]
async fn a_partition_that_never_accepts_times_out() {
    let mini = Mini::start(1).await;
    mini.create_topic("t", 1, 1);
    mini.set_hook(|_, req| match req {
        Request::Produce(_) => {
            HookAction::Reply(produce_error(req, ErrorCode::NotEnoughReplicas.code(), 0))
        }
        _ => HookAction::Continue,
    });
    let mut c = config(&mini);
    c.client.connection.request_timeout = Duration::from_millis(200);
    c.delivery_timeout = Duration::from_millis(600);
    let producer = Producer::new(c).await.unwrap();
    let started = Instant::now();
    let e = producer
        .send_and_wait(ProducerRecord::new("t", "x"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::DeliveryTimeout { .. }), "{e}");
    assert!(e.to_string().contains("NotEnoughReplicas"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn flush_and_close_do_not_wait_for_linger() {
    let mini = Mini::start(1).await;
    mini.create_topic("t", 2, 1);
    let mut c = config(&mini);
    c.linger = Duration::from_secs(30);
    c.delivery_timeout = Duration::from_secs(60);
    let producer = Producer::new(c).await.unwrap();
    let started = Instant::now();
    let f = producer
        .send(ProducerRecord::new("t", "a").partition(0))
        .await
        .unwrap();
    producer.flush().await.unwrap();
    assert_eq!(f.await.unwrap().offset, 0);
    let mut futures = Vec::new();
    for i in 0..5 {
        futures.push(
            producer
                .send(ProducerRecord::new("t", "b").partition(i % 2))
                .await
                .unwrap(),
        );
    }
    producer.close().await.unwrap();
    for r in wait_all(futures).await {
        r.unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    let e = producer
        .send(ProducerRecord::new("t", "late"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Closed(_)), "{e}");
}

#[tokio::test]
async fn an_unknown_partition_or_oversized_record_is_refused_at_send() {
    let mini = Mini::start(1).await;
    mini.create_topic("t", 2, 1);
    let mut c = config(&mini);
    c.max_request_size = 4096;
    let producer = Producer::new(c).await.unwrap();
    let e = producer
        .send(ProducerRecord::new("t", "x").partition(5))
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::UnknownPartition { partitions: 2, .. }),
        "{e}"
    );
    let e = producer
        .send(ProducerRecord::new("t", vec![0u8; 5000]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::RecordTooLarge {
                limit_name: "max.request.size",
                ..
            }
        ),
        "{e}"
    );
}
