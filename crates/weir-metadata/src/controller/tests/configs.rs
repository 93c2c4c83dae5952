use super::*;

fn replace(topic: &str, pairs: &[(&str, &str)]) -> AlterTopicConfigs {
    AlterTopicConfigs {
        topic: topic.into(),
        configs: cfg(pairs),
    }
}

fn op(name: &str, op: AlterConfigOp, value: Option<&str>) -> ConfigOp {
    ConfigOp {
        name: name.into(),
        op,
        value: value.map(String::from),
    }
}

fn ops(topic: &str, ops: Vec<ConfigOp>) -> IncrementalAlterTopicConfigs {
    IncrementalAlterTopicConfigs {
        topic: topic.into(),
        ops,
    }
}

async fn with_topic(dir: &Path, configs: &[(&str, &str)]) -> Controller {
    let c = open(dir);
    let mut t = topic("t", 1, 1);
    t.configs = cfg(configs);
    create_ok(&c, vec![t]).await;
    c
}

fn configs_of(c: &Controller) -> BTreeMap<String, String> {
    c.image().topic("t").unwrap().configs.clone()
}

#[tokio::test]
async fn alter_configs_replaces_every_override() {
    let dir = tempfile::tempdir().unwrap();
    let c = with_topic(dir.path(), &[("retention.ms", "1"), ("segment.bytes", "2")]).await;
    let r = c
        .alter_configs(
            vec![replace(
                "t",
                &[("retention.ms", "7"), ("cleanup.policy", "compact")],
            )],
            false,
        )
        .await
        .unwrap();
    assert_eq!(r[0].error, ApiError::NONE);
    assert_eq!(
        configs_of(&c),
        map(&[("retention.ms", "7"), ("cleanup.policy", "compact")])
    );

    let before = c.image();
    let r = c
        .alter_configs(vec![replace("t", &[])], true)
        .await
        .unwrap();
    assert!(r[0].error.is_success());
    assert!(Arc::ptr_eq(&before, &c.image()), "validate only");
    // Setting what is already there writes nothing.
    c.alter_configs(
        vec![replace(
            "t",
            &[("retention.ms", "7"), ("cleanup.policy", "compact")],
        )],
        false,
    )
    .await
    .unwrap();
    assert_eq!(c.image().offset(), before.offset());
    c.alter_configs(vec![replace("t", &[])], false)
        .await
        .unwrap();
    assert!(configs_of(&c).is_empty());
}

#[tokio::test]
async fn alter_configs_errors() {
    let dir = tempfile::tempdir().unwrap();
    let c = with_topic(dir.path(), &[("retention.ms", "1")]).await;
    let code = |r: Vec<AlterConfigsResult>| r.into_iter().map(|r| r.error.code).collect::<Vec<_>>();
    let r = c
        .alter_configs(vec![replace("nope", &[])], false)
        .await
        .unwrap();
    assert_eq!(code(r), [ErrorCode::UnknownTopicOrPartition]);
    let r = c
        .alter_configs(vec![replace("t", &[("retention.ms", "x")])], false)
        .await
        .unwrap();
    assert_eq!(code(r), [ErrorCode::InvalidConfig]);
    let r = c
        .alter_configs(
            vec![replace(
                "t",
                &[("retention.ms", "1"), ("retention.ms", "2")],
            )],
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        r[0].error.message.as_deref(),
        Some("Error due to duplicate config keys")
    );
    let null = AlterTopicConfigs {
        topic: "t".into(),
        configs: vec![("retention.ms".into(), None)],
    };
    let r = c.alter_configs(vec![null], false).await.unwrap();
    assert_eq!(code(r), [ErrorCode::InvalidRequest]);
    let r = c
        .alter_configs(vec![replace("t", &[]), replace("t", &[])], false)
        .await
        .unwrap();
    assert_eq!(
        code(r),
        [ErrorCode::InvalidRequest, ErrorCode::InvalidRequest]
    );
    assert_eq!(configs_of(&c), map(&[("retention.ms", "1")]));
}

#[tokio::test]
async fn incremental_set_delete_append_subtract() {
    let dir = tempfile::tempdir().unwrap();
    let c = with_topic(dir.path(), &[("retention.ms", "1"), ("segment.bytes", "9")]).await;
    let r = c
        .incremental_alter_configs(
            vec![ops(
                "t",
                vec![
                    op("retention.ms", AlterConfigOp::Set, Some("2")),
                    op("segment.bytes", AlterConfigOp::Delete, None),
                    // No override yet: APPEND starts from the default, "delete".
                    op("cleanup.policy", AlterConfigOp::Append, Some("compact")),
                ],
            )],
            false,
        )
        .await
        .unwrap();
    assert_eq!(r[0].error, ApiError::NONE);
    assert_eq!(
        configs_of(&c),
        map(&[("retention.ms", "2"), ("cleanup.policy", "delete,compact")])
    );

    let append_again = ops(
        "t",
        vec![op(
            "cleanup.policy",
            AlterConfigOp::Append,
            Some("compact,delete"),
        )],
    );
    c.incremental_alter_configs(vec![append_again], false)
        .await
        .unwrap();
    assert_eq!(
        configs_of(&c)["cleanup.policy"],
        "delete,compact",
        "no duplicates"
    );
    let subtract = ops(
        "t",
        vec![op(
            "cleanup.policy",
            AlterConfigOp::Subtract,
            Some("delete"),
        )],
    );
    c.incremental_alter_configs(vec![subtract], false)
        .await
        .unwrap();
    assert_eq!(configs_of(&c)["cleanup.policy"], "compact");
    // Deleting what is not set writes nothing.
    let before = c.image().offset();
    let noop = ops("t", vec![op("segment.bytes", AlterConfigOp::Delete, None)]);
    c.incremental_alter_configs(vec![noop], false)
        .await
        .unwrap();
    assert_eq!(c.image().offset(), before);
}

#[tokio::test]
async fn incremental_errors_leave_the_topic_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let c = with_topic(dir.path(), &[("retention.ms", "1")]).await;
    let cases = vec![
        (
            ops(
                "t",
                vec![op("retention.ms", AlterConfigOp::Append, Some("2"))],
            ),
            ErrorCode::InvalidConfig,
            Some("Can't APPEND to key retention.ms because its type is not LIST."),
        ),
        (
            ops("t", vec![op("retention.ms", AlterConfigOp::Set, None)]),
            ErrorCode::InvalidRequest,
            Some("Null value not supported for : retention.ms"),
        ),
        (
            ops(
                "t",
                vec![
                    op("segment.bytes", AlterConfigOp::Set, Some("5")),
                    op("cleanup.policy", AlterConfigOp::Append, Some("bogus")),
                ],
            ),
            ErrorCode::InvalidConfig,
            None,
        ),
        (
            ops(
                "t",
                vec![
                    op("retention.ms", AlterConfigOp::Set, Some("5")),
                    op("retention.ms", AlterConfigOp::Delete, None),
                ],
            ),
            ErrorCode::InvalidRequest,
            None,
        ),
        (
            ops("nope", vec![]),
            ErrorCode::UnknownTopicOrPartition,
            None,
        ),
    ];
    for (req, code, msg) in cases {
        let r = c
            .incremental_alter_configs(vec![req.clone()], false)
            .await
            .unwrap();
        assert_eq!(r[0].error.code, code, "{req:?}");
        if let Some(m) = msg {
            assert_eq!(r[0].error.message.as_deref(), Some(m));
        }
    }
    assert_eq!(configs_of(&c), map(&[("retention.ms", "1")]));
    assert_eq!(AlterConfigOp::from_i8(3), Some(AlterConfigOp::Subtract));
    assert_eq!(AlterConfigOp::from_i8(4), None);
}

#[tokio::test]
async fn the_default_validator_is_the_logs_own() {
    let dir = tempfile::tempdir().unwrap();
    let c = Controller::open(
        dir.path(),
        ControllerConfig {
            validator: Arc::new(LogConfigValidator::default()),
            ..config()
        },
    )
    .unwrap();
    let mut t = topic("t", 1, 1);
    t.configs = cfg(&[("retention.ms", "60000"), ("max.message.bytes", "2000000")]);
    create_ok(&c, vec![t]).await;
    for (name, value) in [
        ("no.such.config", "1"),
        ("segment.bytes", "12"),
        ("retention.ms", "x"),
    ] {
        let mut t = topic("u", 1, 1);
        t.configs = cfg(&[(name, value)]);
        let (code, msg) = create_code(&c, t).await;
        assert_eq!(code, ErrorCode::InvalidConfig, "{name}");
        assert!(msg.unwrap().contains(name), "the message names the setting");
    }
    // APPEND starts from the log's default cleanup.policy.
    let append = IncrementalAlterTopicConfigs {
        topic: "t".into(),
        ops: vec![ConfigOp {
            name: "cleanup.policy".into(),
            op: AlterConfigOp::Append,
            value: Some("compact".into()),
        }],
    };
    let r = c
        .incremental_alter_configs(vec![append], false)
        .await
        .unwrap();
    assert_eq!(r[0].error, ApiError::NONE);
    assert_eq!(
        c.image().topic("t").unwrap().configs["cleanup.policy"],
        "delete,compact"
    );
}

#[tokio::test]
async fn a_change_too_large_for_one_batch_fails_whole() {
    let dir = tempfile::tempdir().unwrap();
    let loose = ControllerConfig {
        validator: Arc::new(AcceptAllConfigs),
        ..config()
    };
    let c = Controller::open(dir.path(), loose).unwrap();
    create_ok(&c, vec![topic("t", 1, 1)]).await;
    let set = |n: usize| {
        ops(
            "t",
            (0..n)
                .map(|i| op(&format!("x{i}"), AlterConfigOp::Set, Some("1")))
                .collect(),
        )
    };
    let r = c
        .incremental_alter_configs(vec![set(10_001)], false)
        .await
        .unwrap();
    assert_eq!(r[0].error.code, ErrorCode::PolicyViolation);
    assert!(configs_of(&c).is_empty());
    let r = c
        .incremental_alter_configs(vec![set(10_000)], false)
        .await
        .unwrap();
    assert!(r[0].error.is_success());
    assert_eq!(configs_of(&c).len(), 10_000);
}
