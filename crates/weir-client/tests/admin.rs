//! Admin client tests against the mini cluster: typed results, Kafka error codes
//! and messages per item, NOT_CONTROLLER retries.

mod common;

use weir_client::admin::{Admin, AlterConfigOp, ConfigResource, NewTopic};
use weir_client::consumer::IsolationLevel;
use weir_client::producer::{Producer, ProducerConfig, ProducerRecord};
use weir_client::{ErrorCode, OffsetSpec, TopicPartition};
use weir_protocol::messages::create_topics::{CreatableTopicResult, CreateTopicsResponse};
use weir_protocol::{ApiKey, Request, Response};
use weir_types::NodeId;

use common::mini::{HookAction, Mini};
use common::server::Reply;

async fn admin(mini: &Mini) -> Admin {
    Admin::new(common::client_config(&mini.bootstrap()))
        .await
        .unwrap()
}

#[tokio::test]
async fn create_topics_reports_each_topic_with_its_error() {
    let mini = Mini::start(1).await;
    mini.create_topic("exists", 1, 1);
    let a = admin(&mini).await;
    let results = a
        .create_topics(
            vec![
                NewTopic::new("fresh", 3, 1).config("retention.ms", "1000"),
                NewTopic::new("exists", 1, 1),
                NewTopic::new("bad", 0, 1),
            ],
            false,
        )
        .await
        .unwrap();
    assert_eq!(results.len(), 3);
    let created = results[0].1.as_ref().unwrap();
    assert_eq!(
        (results[0].0.as_str(), created.num_partitions),
        ("fresh", 3)
    );
    let e = results[1].1.as_ref().unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TopicAlreadyExists));
    assert!(
        e.to_string().contains("Topic 'exists' already exists."),
        "{e}"
    );
    assert_eq!(
        results[2].1.as_ref().unwrap_err().code(),
        Some(ErrorCode::InvalidPartitions)
    );
    assert_eq!(mini.state().topics["fresh"].configs["retention.ms"], "1000");

    let dry = a
        .create_topics(vec![NewTopic::new("dry", 2, 1)], true)
        .await
        .unwrap();
    assert!(dry[0].1.is_ok());
    assert!(
        !mini.state().topics.contains_key("dry"),
        "validate_only creates nothing"
    );
}

#[tokio::test]
async fn not_controller_is_retried_after_a_metadata_refresh() {
    let mini = Mini::start(1).await;
    let mut refused = false;
    mini.set_hook(move |_, req| match req {
        Request::CreateTopics(r) if !refused => {
            refused = true;
            let topics = r
                .topics
                .iter()
                .map(|t| CreatableTopicResult {
                    name: t.name.clone(),
                    error_code: ErrorCode::NotController.code(),
                    ..Default::default()
                })
                .collect();
            HookAction::Reply(Reply::Respond(Response::CreateTopics(
                CreateTopicsResponse {
                    topics,
                    ..Default::default()
                },
            )))
        }
        _ => HookAction::Continue,
    });
    let a = admin(&mini).await;
    let r = a
        .create_topics(vec![NewTopic::new("t", 1, 1)], false)
        .await
        .unwrap();
    assert!(r[0].1.is_ok(), "{:?}", r[0].1);
    assert_eq!(mini.count(ApiKey::CreateTopics), 2);
}

#[tokio::test]
async fn describe_list_add_partitions_and_delete() {
    let mini = Mini::start(2).await;
    mini.create_topic("a", 2, 2);
    let a = admin(&mini).await;
    let d = a
        .describe_topics(&["a".into(), "nope".into()])
        .await
        .unwrap();
    let desc = d[0].1.as_ref().unwrap();
    assert_eq!(desc.partitions.len(), 2);
    assert_eq!(desc.partitions[1].leader, Some(NodeId(2)));
    assert_eq!(desc.partitions[1].isr, vec![NodeId(2)]);
    assert_eq!(
        d[1].1.as_ref().unwrap_err().code(),
        Some(ErrorCode::UnknownTopicOrPartition)
    );
    assert!(
        !mini.state().topics.contains_key("nope"),
        "admin never auto-creates"
    );

    let names: Vec<String> = a
        .list_topics(false)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, vec!["a"]);

    let r = a
        .create_partitions(vec![("a".into(), 4)], false)
        .await
        .unwrap();
    assert!(r[0].1.is_ok());
    assert_eq!(mini.state().topics["a"].partitions.len(), 4);
    let r = a
        .create_partitions(vec![("a".into(), 3)], false)
        .await
        .unwrap();
    let e = r[0].1.as_ref().unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::InvalidPartitions));
    assert!(e.to_string().contains("higher than the requested 3"), "{e}");

    let r = a.delete_topics(&["a".into()]).await.unwrap();
    assert!(r[0].1.is_ok());
    let r = a.delete_topics(&["a".into()]).await.unwrap();
    assert_eq!(
        r[0].1.as_ref().unwrap_err().code(),
        Some(ErrorCode::UnknownTopicOrPartition)
    );
}

#[tokio::test]
async fn configs_are_described_and_altered_incrementally() {
    let mini = Mini::start(1).await;
    mini.create_topic("t", 1, 1);
    let a = admin(&mini).await;
    let topic = ConfigResource::topic("t");
    let r = a
        .incremental_alter_configs(
            vec![(
                topic.clone(),
                vec![
                    AlterConfigOp::Set("retention.ms".into(), "5".into()),
                    AlterConfigOp::Set("cleanup.policy".into(), "compact".into()),
                ],
            )],
            false,
        )
        .await
        .unwrap();
    assert!(r[0].1.is_ok());
    a.incremental_alter_configs(
        vec![(
            topic.clone(),
            vec![AlterConfigOp::Delete("cleanup.policy".into())],
        )],
        false,
    )
    .await
    .unwrap();
    let d = a
        .describe_configs(vec![
            topic.clone(),
            ConfigResource::broker(1),
            ConfigResource::topic("nope"),
        ])
        .await
        .unwrap();
    let entries = d[0].1.as_ref().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (entries[0].name.as_str(), entries[0].value.as_deref()),
        ("retention.ms", Some("5"))
    );
    assert_eq!(d[1].1.as_ref().unwrap()[0].name, "log.retention.ms");
    let e = d[2].1.as_ref().unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UnknownTopicOrPartition));
    assert!(e.to_string().contains("Topic nope does not exist."), "{e}");
}

#[tokio::test]
async fn offsets_and_cluster_are_described() {
    let mini = Mini::start(2).await;
    mini.create_topic("t", 1, 1);
    let p = Producer::new(ProducerConfig {
        client: common::client_config(&mini.bootstrap()),
        ..ProducerConfig::default()
    })
    .await
    .unwrap();
    for i in 0..4 {
        p.send_and_wait(ProducerRecord::new("t", "x").timestamp(100 * (i + 1)))
            .await
            .unwrap();
    }
    let a = admin(&mini).await;
    let tp = TopicPartition::new("t", 0);
    let r = a
        .list_offsets(
            &[
                (tp.clone(), OffsetSpec::Earliest),
                (tp.clone(), OffsetSpec::Latest),
                (tp.clone(), OffsetSpec::Timestamp(250)),
                (TopicPartition::new("t", 9), OffsetSpec::Latest),
            ],
            IsolationLevel::ReadUncommitted,
        )
        .await
        .unwrap();
    let offsets: Vec<i64> = r[..3]
        .iter()
        .map(|(_, x)| x.as_ref().unwrap().offset)
        .collect();
    assert_eq!(offsets, vec![0, 4, 2]);
    assert_eq!(r[2].1.as_ref().unwrap().timestamp, 300);
    assert_eq!(
        r[3].1.as_ref().unwrap_err().code(),
        Some(ErrorCode::UnknownTopicOrPartition)
    );

    let c = a.describe_cluster().await.unwrap();
    assert_eq!(c.cluster_id.as_deref(), Some("mini"));
    assert_eq!(c.controller_id, Some(NodeId(1)));
    assert_eq!(c.brokers.len(), 2);
}
