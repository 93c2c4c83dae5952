//! Durability end to end: the real `weir server` process takes acks=all produces
//! from a real client (rskafka, which always produces with acks=all), is killed with
//! SIGKILL in the middle of them, restarts on the same data directory, and must
//! still hold every record it acknowledged, at the offset it acknowledged.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rskafka::chrono::{TimeZone, Utc};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;
use rskafka::BackoffConfig;

use common::{Server, PROCESS_TIMEOUT};

/// Value by (partition, offset), for every produce the broker acknowledged.
type Acked = BTreeMap<(i32, i64), Vec<u8>>;

/// Acknowledged produces to wait for before the kill.
const ACKED_BEFORE_KILL: usize = 300;
/// Concurrent producers, so the kill lands with appends in flight.
const PRODUCERS: usize = 4;

async fn connect(addr: &str) -> Client {
    ClientBuilder::new(vec![addr.to_owned()])
        .backoff_config(BackoffConfig {
            deadline: Some(Duration::from_secs(2)),
            ..BackoffConfig::default()
        })
        .build()
        .await
        .expect("rskafka connects")
}

fn record(producer: usize, n: usize) -> Record {
    Record {
        key: Some(format!("p{producer}").into_bytes()),
        value: Some(format!("producer {producer} record {n}").into_bytes()),
        headers: BTreeMap::new(),
        timestamp: Utc
            .timestamp_millis_opt(1_700_000_000_000 + i64::try_from(n).unwrap_or(0))
            .single()
            .expect("timestamp"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_record_survives_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_in(dir.path());
    let client = connect(&server.addr).await;
    client
        .controller_client()
        .expect("controller client")
        .create_topic("crash", 2, 1, 10_000)
        .await
        .expect("create topic");

    // offset -> value, per partition, for every produce the broker acknowledged.
    let acked: Arc<Mutex<Acked>> = Arc::default();
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let partition = i32::try_from(p % 2).expect("partition");
        let client = client
            .partition_client("crash", partition, UnknownTopicHandling::Retry)
            .await
            .expect("partition client");
        let acked = Arc::clone(&acked);
        producers.push(tokio::spawn(async move {
            for n in 0.. {
                let batch = vec![record(p, n), record(p, n + 1_000_000)];
                let Ok(offsets) = client.produce(batch.clone(), Compression::Lz4).await else {
                    return;
                };
                let mut acked = acked.lock().expect("lock");
                for (offset, r) in offsets.into_iter().zip(batch) {
                    acked.insert((partition, offset), r.value.unwrap_or_default());
                }
            }
        }));
    }
    let started = Instant::now();
    while acked.lock().expect("lock").len() < ACKED_BEFORE_KILL * 2 {
        assert!(
            started.elapsed() < PROCESS_TIMEOUT,
            "produces are not being acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Kill while the producers are still sending. Responses already on their way
    // are still counted for a moment; then the producers are stopped rather than
    // left to their client's reconnect backoff.
    server.kill_9();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for producer in producers {
        producer.abort();
        let _ = producer.await;
    }
    drop(client);
    let acked = std::mem::take(&mut *acked.lock().expect("lock"));

    let mut server = Server::start_in(dir.path());
    let client = connect(&server.addr).await;
    let mut lost = Vec::new();
    for partition in 0..2 {
        let reader = client
            .partition_client("crash", partition, UnknownTopicHandling::Retry)
            .await
            .expect("partition client after restart");
        let mut stored = BTreeMap::new();
        let mut offset = 0;
        loop {
            let (records, high_watermark) = reader
                .fetch_records(offset, 1..10_000_000, 100)
                .await
                .expect("fetch after restart");
            for r in records {
                offset = r.offset + 1;
                stored.insert(r.offset, r.record.value.unwrap_or_default());
            }
            if offset >= high_watermark {
                break;
            }
        }
        for ((p, offset), value) in acked.range((partition, 0)..(partition + 1, 0)) {
            debug_assert_eq!(*p, partition);
            if stored.get(offset) != Some(value) {
                lost.push((partition, *offset));
            }
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged records lost or changed after kill -9, e.g. {:?}; restart log:\n{}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(10)],
        server.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_then_flushes_then_stops_the_controller() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start_in(dir.path());
    // stderr lines up to and including the ready line.
    let startup = server.lines().len();
    let client = connect(&server.addr).await;
    client
        .controller_client()
        .expect("controller client")
        .create_topic("clean", 1, 1, 10_000)
        .await
        .expect("create topic");
    let partition = client
        .partition_client("clean", 0, UnknownTopicHandling::Retry)
        .await
        .expect("partition client");
    let offsets = partition
        .produce(vec![record(0, 0), record(0, 1)], Compression::NoCompression)
        .await
        .expect("produce");
    assert_eq!(offsets, [0, 1]);
    drop((partition, client));

    server.signal("TERM");
    let exit = server.wait_exit();
    assert!(exit.success(), "weir exited with {exit}");
    // stderr lines after the ready line.
    let log = &server.lines()[startup..];
    let at = |needle: &str| {
        log.iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} line in:\n{}", log.join("\n")))
    };
    // Stop accepting and drain, then close the partitions, then the controller.
    assert!(at("listener closed") < at("replica manager closed"));
    assert!(at("replica manager closed") < at("controller stopped"));
    assert!(at("controller stopped") < at("weir broker stopped"));
    assert!(
        dir.path().join(".kafka_cleanshutdown").exists(),
        "no clean-shutdown marker"
    );

    // The next start trusts the marker: no segment is recovered.
    let server = Server::start_in(dir.path());
    let opened = server
        .lines()
        .iter()
        .find(|l| l.contains("opened log"))
        .expect("an opened log line");
    assert!(opened.contains("recovered=0"), "{opened}");
}
