//! DescribeTopicPartitions (KIP-966) over a real socket: every topic or named ones,
//! in name order, paged by `response_partition_limit` and the cursor, unknown and
//! illegal names, bad cursors, and the API advertised in ApiVersions.

mod common;

use common::client::{Client, TestBroker};
use common::TEST_TIMEOUT;
use tokio::time::timeout;
use weir_protocol::messages::api_versions::ApiVersionsRequest;
use weir_protocol::messages::describe_topic_partitions::{
    Cursor, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicRequest,
};
use weir_protocol::{ApiKey, Request, Response, Uuid};
use weir_types::ErrorCode;

async fn describe(
    client: &mut Client,
    topics: &[&str],
    limit: i32,
    cursor: Option<(&str, i32)>,
) -> DescribeTopicPartitionsResponse {
    let request = DescribeTopicPartitionsRequest {
        topics: topics
            .iter()
            .map(|n| TopicRequest { name: (*n).into() })
            .collect(),
        response_partition_limit: limit,
        cursor: cursor.map(|(t, p)| Cursor {
            topic_name: t.into(),
            partition_index: p,
        }),
    };
    let Response::DescribeTopicPartitions(r) = client
        .call(0, Request::DescribeTopicPartitions(request))
        .await
    else {
        panic!("not a DescribeTopicPartitions response")
    };
    r
}

/// One topic of an answer: name, error code, partition indexes.
type Entry = (String, i16, Vec<i32>);

/// The answer as its entries and the next cursor.
fn pages(r: &DescribeTopicPartitionsResponse) -> (Vec<Entry>, Option<(String, i32)>) {
    let topics = r
        .topics
        .iter()
        .map(|t| {
            let parts = t.partitions.iter().map(|p| p.partition_index).collect();
            (t.name.clone().unwrap_or_default(), t.error_code, parts)
        })
        .collect();
    let cursor = r
        .next_cursor
        .as_ref()
        .map(|c| (c.topic_name.clone(), c.partition_index));
    (topics, cursor)
}

fn entry(name: &str, code: ErrorCode, parts: &[i32]) -> Entry {
    (name.to_owned(), code.code(), parts.to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describes_partitions_in_pages_by_name_like_kafka() {
    timeout(TEST_TIMEOUT, async {
        let broker = TestBroker::start(|_| {}).await;
        let mut client = broker.client().await;
        let Response::ApiVersions(v) = client
            .call(0, Request::ApiVersions(ApiVersionsRequest::default()))
            .await
        else {
            panic!("not ApiVersions")
        };
        let row = v
            .api_keys
            .iter()
            .find(|k| k.api_key == ApiKey::DescribeTopicPartitions as i16)
            .expect("advertised");
        assert_eq!((row.min_version, row.max_version), (0, 0));

        // Created out of name order: answers come in name order.
        for (name, n) in [("c", 1), ("a", 3), ("b", 2)] {
            assert_eq!(client.create_topic(name, n, &[]).await.error_code, 0);
        }
        let none = ErrorCode::None;

        // Every topic, two partitions a page.
        let r = describe(&mut client, &[], 2, None).await;
        assert_eq!(
            pages(&r),
            (vec![entry("a", none, &[0, 1])], Some(("a".into(), 2)))
        );
        let r = describe(&mut client, &[], 2, Some(("a", 2))).await;
        assert_eq!(
            pages(&r),
            (
                vec![entry("a", none, &[2]), entry("b", none, &[0])],
                Some(("b".into(), 1))
            )
        );
        let r = describe(&mut client, &[], 2, Some(("b", 1))).await;
        assert_eq!(
            pages(&r),
            (vec![entry("b", none, &[1]), entry("c", none, &[0])], None)
        );
        // A page that ends exactly at a topic's end points at the next topic.
        let r = describe(&mut client, &[], 3, None).await;
        assert_eq!(
            pages(&r),
            (vec![entry("a", none, &[0, 1, 2])], Some(("b".into(), 0)))
        );
        // A limit below 1 still makes progress.
        let r = describe(&mut client, &[], 0, None).await;
        assert_eq!(
            pages(&r),
            (vec![entry("a", none, &[0])], Some(("a".into(), 1)))
        );

        // Named topics: unknown and illegal names get their errors, in name order.
        let r = describe(&mut client, &["zz", "b", "bad name!"], 2000, None).await;
        assert_eq!(
            pages(&r),
            (
                vec![
                    entry("b", none, &[0, 1]),
                    entry("bad name!", ErrorCode::InvalidTopicException, &[]),
                    entry("zz", ErrorCode::UnknownTopicOrPartition, &[]),
                ],
                None
            )
        );
        assert_eq!(r.topics[2].topic_id, Uuid::ZERO);
        let b = &r.topics[0];
        assert_ne!(b.topic_id, Uuid::ZERO);
        assert!(!b.is_internal);
        for p in &b.partitions {
            assert_eq!(p.error_code, 0);
            assert_eq!((p.leader_id, p.replica_nodes.as_slice()), (1, &[1][..]));
            assert_eq!(p.isr_nodes, vec![1]);
            assert!(p.leader_epoch >= 0);
            assert_eq!(p.eligible_leader_replicas.as_deref(), Some(&[][..]));
            assert_eq!(p.last_known_elr.as_deref(), Some(&[][..]));
            assert!(p.offline_replicas.is_empty());
        }
        // Named topics before the cursor's are skipped.
        let r = describe(&mut client, &["a", "c"], 2000, Some(("c", 0))).await;
        assert_eq!(pages(&r), (vec![entry("c", none, &[0])], None));

        // A cursor naming a topic that is not asked for, or a negative partition.
        let bad = ErrorCode::InvalidRequest;
        let r = describe(&mut client, &["a"], 2000, Some(("b", 0))).await;
        assert_eq!(pages(&r), (vec![entry("a", bad, &[])], None));
        let r = describe(&mut client, &["a"], 2000, Some(("a", -1))).await;
        assert_eq!(pages(&r), (vec![entry("a", bad, &[])], None));
    })
    .await
    .expect("test timed out");
}
