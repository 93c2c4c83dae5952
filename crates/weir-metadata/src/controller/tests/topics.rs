use weir_protocol::Uuid;
use weir_types::LeaderEpoch;

use super::*;

#[tokio::test]
async fn create_topics_with_defaults_and_explicit_counts() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let mut rx = c.subscribe();
    rx.borrow_and_update();
    let results = create_ok(&c, vec![topic("a", -1, -1), topic("b", 2, 1)]).await;
    assert_eq!(
        (results[0].num_partitions, results[0].replication_factor),
        (3, 1)
    );
    assert_eq!(
        (results[1].num_partitions, results[1].replication_factor),
        (2, 1)
    );
    assert!(rx.has_changed().unwrap(), "the new image is published");

    let image = c.image();
    let a = image.topic("a").unwrap();
    assert_eq!(a.id, results[0].topic_id);
    assert_ne!(a.id, Uuid::ZERO);
    assert_eq!(a.partitions.len(), 3);
    for p in &a.partitions {
        assert_eq!(p.replicas, vec![NodeId(1)]);
        assert_eq!(p.isr, vec![NodeId(1)]);
        assert_eq!(p.leader, Some(NodeId(1)));
        assert_eq!((p.leader_epoch, p.partition_epoch), (LeaderEpoch(0), 0));
    }
    assert_ne!(image.topic("b").unwrap().id, a.id);
    // Offsets 0-1 are the bootstrap (metadata.version, the broker); then one batch
    // for the whole request: two topic records and five partition records.
    assert_eq!(image.offset().get(), 8);
}

#[tokio::test]
async fn create_topics_with_configs_returns_them() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let mut t = topic("logs", 1, 1);
    t.configs = cfg(&[("retention.ms", "1000"), ("cleanup.policy", "compact")]);
    let r = create_ok(&c, vec![t]).await;
    let want = map(&[("retention.ms", "1000"), ("cleanup.policy", "compact")]);
    assert_eq!(r[0].configs, want);
    assert_eq!(c.image().topic("logs").unwrap().configs, want);
}

#[tokio::test]
async fn invalid_topic_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let long = "x".repeat(250);
    for name in ["", ".", "..", "a b", "a/b", "é", long.as_str()] {
        let (code, msg) = create_code(&c, topic(name, 1, 1)).await;
        assert_eq!(code, ErrorCode::InvalidTopicException, "{name:?}");
        assert!(msg.unwrap().starts_with("Topic name is invalid"));
    }
    create_ok(&c, vec![topic(&"y".repeat(249), 1, 1)]).await;
    // '.' and '_' collide.
    create_ok(&c, vec![topic("a_b", 1, 1)]).await;
    let (code, msg) = create_code(&c, topic("a.b", 1, 1)).await;
    assert_eq!(code, ErrorCode::InvalidTopicException);
    assert_eq!(
        msg.unwrap(),
        "Topic 'a.b' collides with existing topic: a_b"
    );
    let r = c
        .create_topics(vec![topic("x.y", 1, 1), topic("x_y", 1, 1)], false)
        .await
        .unwrap();
    assert!(r[0].error.is_success());
    assert_eq!(r[1].error.code, ErrorCode::InvalidTopicException);
}

#[tokio::test]
async fn existing_and_duplicate_topics_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    create_ok(&c, vec![topic("t", 1, 1)]).await;
    let (code, msg) = create_code(&c, topic("t", 1, 1)).await;
    assert_eq!(code, ErrorCode::TopicAlreadyExists);
    assert_eq!(msg.unwrap(), "Topic 't' already exists.");

    let r = c
        .create_topics(
            vec![topic("d", 1, 1), topic("ok", 1, 1), topic("d", 2, 1)],
            false,
        )
        .await
        .unwrap();
    assert_eq!(r.len(), 2, "one result per distinct name");
    assert_eq!(r[0].name, "d");
    assert_eq!(r[0].error.code, ErrorCode::InvalidRequest);
    assert!(
        r[1].error.is_success(),
        "other topics of the request still succeed"
    );
    assert!(c.image().topic("d").is_none());
}

#[tokio::test]
async fn bad_counts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    for rf in [0, -2] {
        let (code, _) = create_code(&c, topic("t", 1, rf)).await;
        assert_eq!(code, ErrorCode::InvalidReplicationFactor);
    }
    for n in [0, -2] {
        let (code, _) = create_code(&c, topic("t", n, 1)).await;
        assert_eq!(code, ErrorCode::InvalidPartitions);
    }
    // More replicas than brokers: one broker is registered.
    let (code, msg) = create_code(&c, topic("t", 1, 2)).await;
    assert_eq!(code, ErrorCode::InvalidReplicationFactor);
    assert!(msg.unwrap().contains("only 1 broker(s) are registered"));
    let (code, _) = create_code(&c, topic("t", 20_000, 1)).await;
    assert_eq!(code, ErrorCode::PolicyViolation);
    assert_eq!(c.image().topic_count(), 0);
}

#[tokio::test]
async fn invalid_configs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let mut t = topic("t", 1, 1);
    t.configs = vec![("retention.ms".into(), None)];
    let (code, msg) = create_code(&c, t.clone()).await;
    assert_eq!(code, ErrorCode::InvalidConfig);
    assert_eq!(
        msg.unwrap(),
        "Null value not supported for topic configs: retention.ms"
    );
    t.configs = cfg(&[("retention.ms", "soon")]);
    assert_eq!(create_code(&c, t.clone()).await.0, ErrorCode::InvalidConfig);
    t.configs = cfg(&[("no.such.config", "1")]);
    let (code, msg) = create_code(&c, t).await;
    assert_eq!(code, ErrorCode::InvalidConfig);
    assert_eq!(msg.unwrap(), "Unknown topic config name: no.such.config");
    assert_eq!(c.image().topic_count(), 0);
}

fn assigned(name: &str, parts: &[(i32, &[i32])]) -> CreateTopic {
    CreateTopic {
        assignments: parts
            .iter()
            .map(|(p, ids)| ReplicaAssignment {
                partition_index: *p,
                broker_ids: ids.to_vec(),
            })
            .collect(),
        ..topic(name, -1, -1)
    }
}

#[tokio::test]
async fn manual_assignments_are_checked_like_kafka() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let r = create_ok(&c, vec![assigned("m", &[(1, &[1]), (0, &[1])])]).await;
    assert_eq!((r[0].num_partitions, r[0].replication_factor), (2, 1));
    assert_eq!(c.image().partition("m", 1).unwrap().leader, Some(NodeId(1)));

    let cases: Vec<(CreateTopic, ErrorCode)> = vec![
        (
            CreateTopic {
                num_partitions: 1,
                ..assigned("x", &[(0, &[1])])
            },
            ErrorCode::InvalidRequest,
        ),
        (
            CreateTopic {
                replication_factor: 1,
                ..assigned("x", &[(0, &[1])])
            },
            ErrorCode::InvalidRequest,
        ),
        (
            assigned("x", &[(0, &[])]),
            ErrorCode::InvalidReplicaAssignment,
        ),
        (
            assigned("x", &[(0, &[7])]),
            ErrorCode::InvalidReplicaAssignment,
        ),
        (
            assigned("x", &[(0, &[1, 1])]),
            ErrorCode::InvalidReplicaAssignment,
        ),
        (
            assigned("x", &[(0, &[1]), (0, &[1])]),
            ErrorCode::InvalidReplicaAssignment,
        ),
        (
            assigned("x", &[(0, &[1]), (2, &[1])]),
            ErrorCode::InvalidReplicaAssignment,
        ),
        (
            assigned("x", &[(1, &[1])]),
            ErrorCode::InvalidReplicaAssignment,
        ),
    ];
    for (t, want) in cases {
        let (code, msg) = create_code(&c, t.clone()).await;
        assert_eq!(code, want, "{t:?}: {msg:?}");
    }
    assert!(c.image().topic("x").is_none());
}

#[tokio::test]
async fn validate_only_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let before = c.image();
    let r = c.create_topics(vec![topic("v", 2, 1)], true).await.unwrap();
    assert!(r[0].error.is_success());
    assert_eq!(r[0].num_partitions, 2);
    let r = c.create_topics(vec![topic("v", 2, 5)], true).await.unwrap();
    assert_eq!(r[0].error.code, ErrorCode::InvalidReplicationFactor);
    assert!(Arc::ptr_eq(&before, &c.image()));
    create_ok(&c, vec![topic("v", 2, 1)]).await;
}

#[tokio::test]
async fn delete_topics_by_name_and_id() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let mut with_cfg = topic("a", 1, 1);
    with_cfg.configs = cfg(&[("retention.ms", "5")]);
    let created = create_ok(&c, vec![with_cfg, topic("b", 2, 1), topic("c", 1, 1)]).await;
    let (a, b) = (created[0].topic_id, created[1].topic_id);

    let r = c
        .delete_topics(vec![TopicRef::Name("a".into()), TopicRef::Id(b)])
        .await
        .unwrap();
    assert_eq!(
        r[0],
        DeleteTopicResult {
            name: Some("a".into()),
            topic_id: a,
            error: ApiError::NONE
        }
    );
    assert_eq!(
        r[1],
        DeleteTopicResult {
            name: Some("b".into()),
            topic_id: b,
            error: ApiError::NONE
        }
    );
    let image = c.image();
    assert!(image.topic("a").is_none() && image.topic_by_id(b).is_none());
    assert_eq!(image.topic_count(), 1);

    // Re-created under the same name: a new id, and the old configs are gone.
    let again = create_ok(&c, vec![topic("a", 1, 1)]).await;
    assert_ne!(again[0].topic_id, a);
    assert!(c.image().topic("a").unwrap().configs.is_empty());
}

#[tokio::test]
async fn delete_topics_errors() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let id = create_ok(&c, vec![topic("t", 1, 1)]).await[0].topic_id;
    let codes = |r: Vec<DeleteTopicResult>| r.into_iter().map(|r| r.error.code).collect::<Vec<_>>();

    let r = c
        .delete_topics(vec![
            TopicRef::Name("nope".into()),
            TopicRef::Id(Uuid([9; 16])),
            TopicRef::Id(Uuid::ZERO),
        ])
        .await
        .unwrap();
    assert_eq!(
        codes(r),
        [
            ErrorCode::UnknownTopicOrPartition,
            ErrorCode::UnknownTopicId,
            ErrorCode::InvalidRequest
        ]
    );
    let r = c
        .delete_topics(vec![TopicRef::Name("t".into()), TopicRef::Name("t".into())])
        .await
        .unwrap();
    assert_eq!(codes(r), [ErrorCode::InvalidRequest]);
    // The same topic by id and by name: the first deletes, the second is refused.
    let r = c
        .delete_topics(vec![TopicRef::Id(id), TopicRef::Name("t".into())])
        .await
        .unwrap();
    assert_eq!(codes(r), [ErrorCode::None, ErrorCode::InvalidRequest]);
    assert_eq!(c.image().topic_count(), 0);
    c.shutdown().await;

    let disabled = ControllerConfig {
        delete_topic_enable: false,
        ..config()
    };
    let c = Controller::open(dir.path(), disabled).unwrap();
    create_ok(&c, vec![topic("kept", 1, 1)]).await;
    let r = c
        .delete_topics(vec![TopicRef::Name("kept".into())])
        .await
        .unwrap();
    assert_eq!(codes(r), [ErrorCode::TopicDeletionDisabled]);
    assert!(c.image().topic("kept").is_some());
}

fn grow(name: &str, count: i32, assignments: Option<Vec<Vec<i32>>>) -> CreatePartitions {
    CreatePartitions {
        name: name.into(),
        count,
        assignments,
    }
}

#[tokio::test]
async fn create_partitions_grows_topics() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    create_ok(&c, vec![topic("t", 1, 1), topic("u", 1, 1)]).await;
    let r = c
        .create_partitions(
            vec![grow("t", 3, None), grow("u", 2, Some(vec![vec![1]]))],
            false,
        )
        .await
        .unwrap();
    assert!(r.iter().all(|r| r.error.is_success()), "{r:?}");
    let image = c.image();
    let t = image.topic("t").unwrap();
    assert_eq!(t.partitions.len(), 3);
    assert!(t
        .partitions
        .iter()
        .all(|p| p.leader == Some(NodeId(1)) && p.leader_epoch == LeaderEpoch(0)));
    assert_eq!(image.topic("u").unwrap().partitions.len(), 2);

    let r = c
        .create_partitions(vec![grow("t", 5, None)], true)
        .await
        .unwrap();
    assert!(r[0].error.is_success());
    assert_eq!(
        c.image().topic("t").unwrap().partitions.len(),
        3,
        "validate only"
    );
}

#[tokio::test]
async fn create_partitions_errors() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    create_ok(&c, vec![topic("t", 2, 1)]).await;
    let cases = [
        (
            grow("t", 2, None),
            ErrorCode::InvalidPartitions,
            Some("Topic already has 2 partition(s)."),
        ),
        (
            grow("t", 1, None),
            ErrorCode::InvalidPartitions,
            Some("The topic t currently has 2 partition(s); 1 would not be an increase."),
        ),
        (
            grow("nope", 3, None),
            ErrorCode::UnknownTopicOrPartition,
            None,
        ),
        (
            grow("t", 4, Some(vec![vec![1]])),
            ErrorCode::InvalidReplicaAssignment,
            None,
        ),
        (
            grow("t", 3, Some(vec![vec![1, 1]])),
            ErrorCode::InvalidReplicaAssignment,
            None,
        ),
        (
            grow("t", 3, Some(vec![vec![5]])),
            ErrorCode::InvalidReplicaAssignment,
            None,
        ),
        (grow("t", 50_000, None), ErrorCode::PolicyViolation, None),
    ];
    for (req, code, msg) in cases {
        let r = c.create_partitions(vec![req.clone()], false).await.unwrap();
        assert_eq!(r[0].error.code, code, "{req:?}");
        if let Some(m) = msg {
            assert_eq!(r[0].error.message.as_deref(), Some(m));
        }
    }
    let r = c
        .create_partitions(vec![grow("t", 3, None), grow("t", 4, None)], false)
        .await
        .unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].error.code, ErrorCode::InvalidRequest);
    assert_eq!(c.image().topic("t").unwrap().partitions.len(), 2);
}

#[tokio::test]
async fn auto_create_uses_defaults_and_tolerates_races() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let existing = create_ok(&c, vec![topic("old", 1, 1)]).await[0].topic_id;
    let r = c
        .auto_create_topics(vec![
            "new".into(),
            "old".into(),
            "bad name".into(),
            "__consumer_offsets".into(),
        ])
        .await
        .unwrap();
    let by_name: BTreeMap<&str, &CreateTopicResult> =
        r.iter().map(|r| (r.name.as_str(), r)).collect();
    assert!(by_name["new"].error.is_success());
    assert_eq!(by_name["new"].num_partitions, 3, "num.partitions");
    assert!(by_name["old"].error.is_success());
    assert_eq!(by_name["old"].topic_id, existing);
    assert_eq!(
        by_name["bad name"].error.code,
        ErrorCode::InvalidTopicException
    );
    assert_eq!(
        by_name["__consumer_offsets"].error.code,
        ErrorCode::UnknownTopicOrPartition
    );
    let image = c.image();
    assert_eq!(image.topic("new").unwrap().partitions.len(), 3);
    assert!(image.topic("__consumer_offsets").is_none());
}
