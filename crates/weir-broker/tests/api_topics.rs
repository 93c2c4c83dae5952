//! Metadata and topic administration over a real socket: auto-creation by Kafka's
//! rules, topic ids, CreateTopics (defaults, validate-only, configs back in v5+,
//! errors with messages), DeleteTopics by name and id, CreatePartitions.

mod common;

use common::client::TestBroker;
use common::TEST_TIMEOUT;
use tokio::time::timeout;
use weir_protocol::messages::create_partitions::{CreatePartitionsRequest, CreatePartitionsTopic};
use weir_protocol::messages::create_topics::{CreatableTopic, CreateTopicsRequest};
use weir_protocol::messages::delete_topics::{DeleteTopicState, DeleteTopicsRequest};
use weir_protocol::messages::metadata::{MetadataRequest, MetadataRequestTopic};
use weir_protocol::{Request, Response, Uuid};
use weir_types::ErrorCode;

fn code(e: ErrorCode) -> i16 {
    e.code()
}

fn named(names: &[&str], allow_auto: bool) -> MetadataRequest {
    MetadataRequest {
        topics: Some(
            names
                .iter()
                .map(|n| MetadataRequestTopic {
                    topic_id: Uuid::ZERO,
                    name: Some((*n).into()),
                })
                .collect(),
        ),
        allow_auto_topic_creation: allow_auto,
        ..MetadataRequest::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_lists_this_broker_and_auto_creates_like_kafka() {
    timeout(TEST_TIMEOUT, async {
        let broker = TestBroker::start(|c| c.num_partitions = 3).await;
        let mut client = broker.client().await;

        // Unknown topic, auto-creation allowed: LEADER_NOT_AVAILABLE now...
        let Response::Metadata(r) = client
            .call(9, Request::Metadata(named(&["auto"], true)))
            .await
        else {
            panic!("not Metadata")
        };
        assert_eq!(r.brokers.len(), 1);
        assert_eq!(r.brokers[0].node_id, 1);
        assert_eq!(r.brokers[0].host, "127.0.0.1");
        assert_eq!(r.brokers[0].port, i32::from(broker.addr.port()));
        assert_eq!(r.controller_id, 1);
        assert!(r.cluster_id.as_deref().is_some_and(|c| !c.is_empty()));
        assert_eq!(r.topics[0].error_code, code(ErrorCode::LeaderNotAvailable));
        assert!(r.topics[0].partitions.is_empty());

        // ... and served with num.partitions partitions on the next ask.
        let r = client.metadata(Some(&["auto"])).await;
        let t = &r.topics[0];
        assert_eq!(t.error_code, 0);
        assert_ne!(t.topic_id, Uuid::ZERO);
        assert_eq!(t.partitions.len(), 3);
        for (i, p) in t.partitions.iter().enumerate() {
            assert_eq!(p.partition_index, i as i32);
            assert_eq!(
                (
                    p.leader_id,
                    p.replica_nodes.as_slice(),
                    p.isr_nodes.as_slice()
                ),
                (1, &[1][..], &[1][..])
            );
            assert!(p.leader_epoch >= 0);
            assert!(p.offline_replicas.is_empty());
        }

        // Auto-creation refused by the request: UNKNOWN_TOPIC_OR_PARTITION.
        let r = client.metadata(Some(&["not-asked-for"])).await;
        assert_eq!(
            r.topics[0].error_code,
            code(ErrorCode::UnknownTopicOrPartition)
        );
        // An illegal name being auto-created: INVALID_TOPIC_EXCEPTION.
        let Response::Metadata(r) = client
            .call(12, Request::Metadata(named(&["bad name!"], true)))
            .await
        else {
            panic!("not Metadata")
        };
        assert_eq!(
            r.topics[0].error_code,
            code(ErrorCode::InvalidTopicException)
        );

        // Null topics: every topic. v0's empty list means the same.
        let r = client.metadata(None).await;
        let names: Vec<_> = r.topics.iter().filter_map(|t| t.name.clone()).collect();
        assert_eq!(names, ["auto"]);
        let Response::Metadata(r) = client
            .call(
                0,
                Request::Metadata(MetadataRequest {
                    topics: Some(Vec::new()),
                    ..MetadataRequest::default()
                }),
            )
            .await
        else {
            panic!("not Metadata")
        };
        assert_eq!(r.topics.len(), 1);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_auto_creation_follows_the_broker_setting() {
    timeout(TEST_TIMEOUT, async {
        let broker = TestBroker::start(|c| c.auto_create_topics_enable = false).await;
        let mut client = broker.client().await;
        // Metadata v3 has no allow flag: the broker setting alone decides.
        let Response::Metadata(r) = client.call(3, Request::Metadata(named(&["t"], true))).await
        else {
            panic!("not Metadata")
        };
        assert_eq!(
            r.topics[0].error_code,
            code(ErrorCode::UnknownTopicOrPartition)
        );
        assert!(client.metadata(None).await.topics.is_empty());
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_by_topic_id() {
    timeout(TEST_TIMEOUT, async {
        let broker = TestBroker::start(|_| {}).await;
        let mut client = broker.client().await;
        let created = client.create_topic("by-id", 2, &[]).await;
        assert_eq!(created.error_code, 0);
        let by_id = |id| MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                topic_id: id,
                name: None,
            }]),
            allow_auto_topic_creation: false,
            ..MetadataRequest::default()
        };
        let Response::Metadata(r) = client
            .call(12, Request::Metadata(by_id(created.topic_id)))
            .await
        else {
            panic!("not Metadata")
        };
        assert_eq!(r.topics[0].name.as_deref(), Some("by-id"));
        assert_eq!(r.topics[0].partitions.len(), 2);
        let unknown = Uuid([7; 16]);
        let Response::Metadata(r) = client.call(12, Request::Metadata(by_id(unknown))).await else {
            panic!("not Metadata")
        };
        assert_eq!(r.topics[0].error_code, code(ErrorCode::UnknownTopicId));
        assert_eq!(r.topics[0].name, None);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_topics_defaults_validation_and_configs() {
    timeout(TEST_TIMEOUT, async {
        let broker = TestBroker::start(|c| c.num_partitions = 2).await;
        let mut client = broker.client().await;

        // -1/-1: the broker defaults; v5+ returns the full effective config.
        let r = client
            .create_topic("orders", -1, &[("retention.ms", "60000")])
            .await;
        assert_eq!((r.error_code, r.error_message.as_deref()), (0, None));
        assert_eq!((r.num_partitions, r.replication_factor), (2, 1));
        let configs = r.configs.expect("configs in v7");
        let retention = configs
            .iter()
            .find(|c| c.name == "retention.ms")
            .expect("retention.ms");
        assert_eq!(
            (retention.value.as_deref(), retention.config_source),
            (Some("60000"), 1)
        );
        let segment = configs
            .iter()
            .find(|c| c.name == "segment.bytes")
            .expect("segment.bytes");
        assert_eq!(segment.config_source, 5, "a default");

        // Again: TOPIC_ALREADY_EXISTS, with a message.
        let r = client.create_topic("orders", 1, &[]).await;
        assert_eq!(r.error_code, code(ErrorCode::TopicAlreadyExists));
        assert!(r.error_message.is_some());

        // Bad partition count, bad config value, unknown config.
        let r = client.create_topic("zero", 0, &[]).await;
        assert_eq!(r.error_code, code(ErrorCode::InvalidPartitions));
        let r = client
            .create_topic("badcfg", 1, &[("retention.ms", "soon")])
            .await;
        assert_eq!(r.error_code, code(ErrorCode::InvalidConfig));
        assert!(r.error_message.is_some_and(|m| m.contains("retention.ms")));
        let r = client.create_topic("badname?", 1, &[]).await;
        assert_eq!(r.error_code, code(ErrorCode::InvalidTopicException));

        // validate_only answers as a creation would, and creates nothing; a name
        // listed twice is INVALID_REQUEST.
        let topic = |name: &str| CreatableTopic {
            name: name.into(),
            num_partitions: 4,
            replication_factor: 1,
            ..CreatableTopic::default()
        };
        let request = CreateTopicsRequest {
            topics: vec![topic("dry"), topic("twice"), topic("twice")],
            timeout_ms: 10_000,
            validate_only: true,
        };
        let Response::CreateTopics(r) = client.call(5, Request::CreateTopics(request)).await else {
            panic!("not CreateTopics")
        };
        let dry = r.topics.iter().find(|t| t.name == "dry").expect("dry");
        assert_eq!((dry.error_code, dry.num_partitions), (0, 4));
        let twice: Vec<_> = r.topics.iter().filter(|t| t.name == "twice").collect();
        assert_eq!(twice.len(), 1);
        assert_eq!(twice[0].error_code, code(ErrorCode::InvalidRequest));
        let r = client.metadata(None).await;
        let names: Vec<_> = r.topics.iter().filter_map(|t| t.name.clone()).collect();
        assert_eq!(names, ["orders"]);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_topics_by_name_and_by_id() {
    timeout(TEST_TIMEOUT, async {
        let broker = TestBroker::start(|_| {}).await;
        let mut client = broker.client().await;
        let a = client.create_topic("a", 1, &[]).await;
        let b = client.create_topic("b", 1, &[]).await;
        assert_eq!((a.error_code, b.error_code), (0, 0));

        let request = DeleteTopicsRequest {
            topic_names: vec!["a".into(), "missing".into()],
            timeout_ms: 10_000,
            ..DeleteTopicsRequest::default()
        };
        let Response::DeleteTopics(r) = client.call(5, Request::DeleteTopics(request)).await else {
            panic!("not DeleteTopics")
        };
        let by_name = |n: &str| {
            r.responses
                .iter()
                .find(|t| t.name.as_deref() == Some(n))
                .expect(n)
                .error_code
        };
        assert_eq!(by_name("a"), 0);
        assert_eq!(by_name("missing"), code(ErrorCode::UnknownTopicOrPartition));

        let request = DeleteTopicsRequest {
            topics: vec![
                DeleteTopicState {
                    name: None,
                    topic_id: b.topic_id,
                },
                DeleteTopicState {
                    name: None,
                    topic_id: Uuid([9; 16]),
                },
            ],
            timeout_ms: 10_000,
            ..DeleteTopicsRequest::default()
        };
        let Response::DeleteTopics(r) = client.call(6, Request::DeleteTopics(request)).await else {
            panic!("not DeleteTopics")
        };
        let b_result = r
            .responses
            .iter()
            .find(|t| t.topic_id == b.topic_id)
            .expect("b");
        assert_eq!(
            (b_result.error_code, b_result.name.as_deref()),
            (0, Some("b"))
        );
        let unknown = r
            .responses
            .iter()
            .find(|t| t.topic_id == Uuid([9; 16]))
            .expect("unknown id");
        assert_eq!(unknown.error_code, code(ErrorCode::UnknownTopicId));
        assert!(client.metadata(None).await.topics.is_empty());

        // A deleted topic created again is a new topic, empty.
        let again = client.create_topic("a", 1, &[]).await;
        assert_eq!(again.error_code, 0);
        assert_ne!(again.topic_id, a.topic_id);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_partitions_grows_a_topic() {
    timeout(TEST_TIMEOUT, async {
        let broker = TestBroker::start(|_| {}).await;
        let mut client = broker.client().await;
        assert_eq!(client.create_topic("grow", 1, &[]).await.error_code, 0);
        let request = |count| CreatePartitionsRequest {
            topics: vec![CreatePartitionsTopic {
                name: "grow".into(),
                count,
                assignments: None,
            }],
            timeout_ms: 10_000,
            validate_only: false,
        };
        let Response::CreatePartitions(r) =
            client.call(3, Request::CreatePartitions(request(3))).await
        else {
            panic!("not CreatePartitions")
        };
        assert_eq!(r.results[0].error_code, 0);
        assert_eq!(
            client.metadata(Some(&["grow"])).await.topics[0]
                .partitions
                .len(),
            3
        );
        let Response::CreatePartitions(r) =
            client.call(3, Request::CreatePartitions(request(2))).await
        else {
            panic!("not CreatePartitions")
        };
        assert_eq!(r.results[0].error_code, code(ErrorCode::InvalidPartitions));
        assert!(r.results[0].error_message.is_some());
        // The new partitions are served at once.
        let batch = common::client::batch(&["x"], 1_000, weir_protocol::records::Compression::None);
        let p = client
            .produce("grow", 2, batch, 1)
            .await
            .expect("acks=1 answers");
        assert_eq!((p.error_code, p.base_offset), (0, 0));
    })
    .await
    .expect("test timed out");
}
