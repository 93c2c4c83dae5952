//! A real third-party client against the broker: rskafka (pure Rust) creates a
//! topic, produces with every compression codec, fetches everything back, lists
//! offsets, deletes records, and reads the same data after a restart.

mod common;

use std::collections::BTreeMap;

use common::client::TestBroker;
use common::TEST_TIMEOUT;
use rskafka::chrono::{TimeZone, Utc};
use rskafka::client::partition::{Compression, OffsetAt, UnknownTopicHandling};
use rskafka::client::ClientBuilder;
use rskafka::record::Record;
use tokio::time::timeout;

fn record(i: usize, ts_ms: i64) -> Record {
    Record {
        key: Some(format!("key-{i}").into_bytes()),
        value: Some(format!("value-{i}").repeat(20).into_bytes()),
        headers: BTreeMap::from([("n".to_owned(), i.to_string().into_bytes())]),
        timestamp: Utc.timestamp_millis_opt(ts_ms).single().expect("timestamp"),
    }
}

const CODECS: [Compression; 5] = [
    Compression::NoCompression,
    Compression::Gzip,
    Compression::Lz4,
    Compression::Snappy,
    Compression::Zstd,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rskafka_produces_with_every_codec_and_reads_back() {
    timeout(TEST_TIMEOUT * 2, async {
        let broker = TestBroker::start(|_| {}).await;
        let client = ClientBuilder::new(vec![broker.addr.to_string()])
            .build()
            .await
            .expect("rskafka connects");
        client
            .controller_client()
            .expect("controller client")
            .create_topic("rs", 2, 1, 10_000)
            .await
            .expect("create topic");
        let topics = client.list_topics().await.expect("list topics");
        assert!(topics
            .iter()
            .any(|t| t.name == "rs" && t.partitions.len() == 2));

        let partition = client
            .partition_client("rs", 1, UnknownTopicHandling::Retry)
            .await
            .expect("partition client");
        let base_ts = 1_700_000_000_000i64;
        let mut expected = Vec::new();
        for (round, codec) in CODECS.into_iter().enumerate() {
            let records: Vec<Record> = (0..10)
                .map(|j| {
                    let i = round * 10 + j;
                    record(i, base_ts + i as i64)
                })
                .collect();
            let offsets = partition
                .produce(records.clone(), codec)
                .await
                .unwrap_or_else(|e| panic!("produce with {codec:?}: {e}"));
            let first = (round * 10) as i64;
            assert_eq!(
                offsets,
                (first..first + 10).collect::<Vec<_>>(),
                "{codec:?}"
            );
            expected.extend(records);
        }

        // Read everything back, whatever codec each batch was stored in.
        let mut got = Vec::new();
        let mut offset = 0;
        while got.len() < expected.len() {
            let (records, high_watermark) = partition
                .fetch_records(offset, 1..1_000_000, 1_000)
                .await
                .expect("fetch");
            assert_eq!(high_watermark, 50);
            for r in records {
                assert_eq!(r.offset, offset);
                offset += 1;
                got.push(r.record);
            }
        }
        assert_eq!(got, expected);

        assert_eq!(
            partition
                .get_offset(OffsetAt::Earliest)
                .await
                .expect("earliest"),
            0
        );
        assert_eq!(
            partition
                .get_offset(OffsetAt::Latest)
                .await
                .expect("latest"),
            50
        );
        let at = Utc
            .timestamp_millis_opt(base_ts + 25)
            .single()
            .expect("timestamp");
        assert_eq!(
            partition
                .get_offset(OffsetAt::Timestamp(at))
                .await
                .expect("by time"),
            25
        );

        partition
            .delete_records(20, 5_000)
            .await
            .expect("delete records");
        assert_eq!(
            partition
                .get_offset(OffsetAt::Earliest)
                .await
                .expect("earliest"),
            20
        );

        // The untouched partition is empty.
        let other = client
            .partition_client("rs", 0, UnknownTopicHandling::Error)
            .await
            .expect("partition 0");
        assert_eq!(other.get_offset(OffsetAt::Latest).await.expect("latest"), 0);

        // After a clean restart, the same records are there.
        drop((partition, other, client));
        let dir = broker.stop().await;
        let broker = TestBroker::start_in(dir, |_| {}).await;
        let client = ClientBuilder::new(vec![broker.addr.to_string()])
            .build()
            .await
            .expect("rskafka reconnects");
        let partition = client
            .partition_client("rs", 1, UnknownTopicHandling::Retry)
            .await
            .expect("partition client");
        assert_eq!(
            partition
                .get_offset(OffsetAt::Earliest)
                .await
                .expect("earliest"),
            20
        );
        let (records, _) = partition
            .fetch_records(20, 1..1_000_000, 1_000)
            .await
            .expect("fetch after restart");
        assert_eq!(records.first().map(|r| r.offset), Some(20));
        assert_eq!(records[0].record, expected[20]);
    })
    .await
    .expect("test timed out");
}
