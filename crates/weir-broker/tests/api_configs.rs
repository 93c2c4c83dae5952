//! The config APIs and DescribeCluster over a real socket: effective topic configs
//! with sources, synonyms and types; the broker's own configs; AlterConfigs and
//! IncrementalAlterConfigs with validate-only; errors for what cannot be changed.

mod common;

use common::client::{Client, TestBroker};
use common::TEST_TIMEOUT;
use tokio::time::timeout;
use weir_protocol::messages::alter_configs::{self, AlterConfigsRequest};
use weir_protocol::messages::describe_cluster::DescribeClusterRequest;
use weir_protocol::messages::describe_configs::{
    DescribeConfigsRequest, DescribeConfigsResource, DescribeConfigsResult,
};
use weir_protocol::messages::incremental_alter_configs::{self, IncrementalAlterConfigsRequest};
use weir_protocol::{Request, Response};
use weir_types::ErrorCode;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

async fn describe(
    client: &mut Client,
    resource_type: i8,
    name: &str,
    keys: Option<&[&str]>,
) -> DescribeConfigsResult {
    let request = DescribeConfigsRequest {
        resources: vec![DescribeConfigsResource {
            resource_type,
            resource_name: name.into(),
            configuration_keys: keys.map(|ks| ks.iter().map(|k| (*k).to_owned()).collect()),
        }],
        include_synonyms: true,
        include_documentation: false,
    };
    let Response::DescribeConfigs(mut r) = client.call(4, Request::DescribeConfigs(request)).await
    else {
        panic!("not DescribeConfigs")
    };
    r.results.pop().expect("one result")
}

fn value<'a>(r: &'a DescribeConfigsResult, name: &str) -> (&'a str, i8) {
    let c = r.configs.iter().find(|c| c.name == name).expect(name);
    (c.value.as_deref().unwrap_or(""), c.config_source)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_configs_reports_values_sources_synonyms_and_types() {
    timeout(TEST_TIMEOUT, async {
        let broker = TestBroker::start(|c| c.log_retention_ms = Some(3_600_000)).await;
        let mut client = broker.client().await;
        assert_eq!(
            client
                .create_topic("c", 1, &[("cleanup.policy", "compact")])
                .await
                .error_code,
            0
        );

        let r = describe(&mut client, TOPIC, "c", None).await;
        assert_eq!(r.error_code, 0);
        assert_eq!(value(&r, "cleanup.policy"), ("compact", SOURCE_TOPIC));
        assert_eq!(value(&r, "retention.ms"), ("3600000", SOURCE_STATIC_BROKER));
        assert_eq!(value(&r, "max.message.bytes"), ("1048588", SOURCE_DEFAULT));
        let retention = r
            .configs
            .iter()
            .find(|c| c.name == "retention.ms")
            .expect("retention.ms");
        let synonyms: Vec<(&str, i8)> = retention
            .synonyms
            .iter()
            .map(|s| (s.name.as_str(), s.source))
            .collect();
        assert_eq!(
            synonyms,
            [
                ("log.retention.ms", SOURCE_STATIC_BROKER),
                ("log.retention.ms", SOURCE_DEFAULT)
            ]
        );
        assert_eq!(retention.config_type, 5, "LONG");
        assert!(!retention.read_only);
        let policy = r
            .configs
            .iter()
            .find(|c| c.name == "cleanup.policy")
            .expect("policy");
        assert_eq!(policy.config_type, 7, "LIST");

        // Only the keys asked for.
        let r = describe(&mut client, TOPIC, "c", Some(&["segment.bytes", "no.such"])).await;
        let names: Vec<&str> = r.configs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["segment.bytes"]);

        // Errors per resource.
        let r = describe(&mut client, TOPIC, "missing", None).await;
        assert_eq!(r.error_code, ErrorCode::UnknownTopicOrPartition.code());
        assert!(r.error_message.is_some());
        let r = describe(&mut client, 99, "x", None).await;
        assert_eq!(r.error_code, ErrorCode::InvalidRequest.code());

        // The broker's own configs, read-only.
        let r = describe(&mut client, BROKER, "1", None).await;
        assert_eq!(r.error_code, 0);
        assert_eq!(
            value(&r, "log.retention.ms"),
            ("3600000", SOURCE_STATIC_BROKER)
        );
        assert_eq!(value(&r, "num.partitions"), ("1", SOURCE_DEFAULT));
        assert!(r.configs.iter().all(|c| c.read_only));
        let r = describe(&mut client, BROKER, "2", None).await;
        assert_eq!(r.error_code, ErrorCode::InvalidRequest.code());
        assert!(describe(&mut client, BROKER, "", None)
            .await
            .configs
            .is_empty());
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_configs_replaces_and_incremental_alter_edits() {
    timeout(TEST_TIMEOUT, async {
        let broker = TestBroker::start(|_| {}).await;
        let mut client = broker.client().await;
        let created = client
            .create_topic("a", 1, &[("retention.ms", "1000")])
            .await;
        assert_eq!(created.error_code, 0);

        // AlterConfigs replaces the whole set: retention.ms goes back to its default.
        let alter = |configs: &[(&str, &str)], validate_only| {
            Request::AlterConfigs(AlterConfigsRequest {
                resources: vec![alter_configs::AlterConfigsResource {
                    resource_type: TOPIC,
                    resource_name: "a".into(),
                    configs: configs
                        .iter()
                        .map(|(k, v)| alter_configs::AlterableConfig {
                            name: (*k).into(),
                            value: Some((*v).into()),
                        })
                        .collect(),
                }],
                validate_only,
            })
        };
        let Response::AlterConfigs(r) = client
            .call(2, alter(&[("segment.ms", "60000")], false))
            .await
        else {
            panic!("not AlterConfigs")
        };
        assert_eq!(r.responses[0].error_code, 0);
        let d = describe(&mut client, TOPIC, "a", None).await;
        assert_eq!(value(&d, "segment.ms"), ("60000", SOURCE_TOPIC));
        assert_eq!(value(&d, "retention.ms").1, SOURCE_DEFAULT);
        // A bad value: INVALID_CONFIG with the reason; nothing changes.
        let Response::AlterConfigs(r) = client.call(1, alter(&[("segment.ms", "-5")], false)).await
        else {
            panic!("not AlterConfigs")
        };
        assert_eq!(r.responses[0].error_code, ErrorCode::InvalidConfig.code());
        assert!(r.responses[0].error_message.is_some());

        // IncrementalAlterConfigs: set, append to a list, delete; validate-only first.
        let incremental = |ops: &[(&str, i8, Option<&str>)], validate_only| {
            Request::IncrementalAlterConfigs(IncrementalAlterConfigsRequest {
                resources: vec![incremental_alter_configs::AlterConfigsResource {
                    resource_type: TOPIC,
                    resource_name: "a".into(),
                    configs: ops
                        .iter()
                        .map(|(k, op, v)| incremental_alter_configs::AlterableConfig {
                            name: (*k).into(),
                            config_operation: *op,
                            value: v.map(str::to_owned),
                        })
                        .collect(),
                }],
                validate_only,
            })
        };
        let ops = [
            ("max.message.bytes", 0, Some("2000")),
            ("cleanup.policy", 2, Some("compact")),
            ("segment.ms", 1, None),
        ];
        let Response::IncrementalAlterConfigs(r) = client.call(1, incremental(&ops, true)).await
        else {
            panic!("not IncrementalAlterConfigs")
        };
        assert_eq!(r.responses[0].error_code, 0);
        let d = describe(&mut client, TOPIC, "a", None).await;
        assert_eq!(
            value(&d, "segment.ms"),
            ("60000", SOURCE_TOPIC),
            "validate-only changed it"
        );
        let Response::IncrementalAlterConfigs(r) = client.call(1, incremental(&ops, false)).await
        else {
            panic!("not IncrementalAlterConfigs")
        };
        assert_eq!(r.responses[0].error_code, 0);
        let d = describe(&mut client, TOPIC, "a", None).await;
        assert_eq!(value(&d, "max.message.bytes"), ("2000", SOURCE_TOPIC));
        assert_eq!(
            value(&d, "cleanup.policy"),
            ("delete,compact", SOURCE_TOPIC)
        );
        assert_eq!(value(&d, "segment.ms").1, SOURCE_DEFAULT);
        // The new max.message.bytes applies to the next Produce.
        let big = common::client::batch(
            &[&"x".repeat(3000)],
            1,
            weir_protocol::records::Compression::None,
        );
        let p = client.produce("a", 0, big, 1).await.expect("answered");
        assert_eq!(p.error_code, ErrorCode::MessageTooLarge.code());

        // An unknown operation fails its resource.
        let Response::IncrementalAlterConfigs(r) = client
            .call(1, incremental(&[("segment.ms", 9, Some("1"))], false))
            .await
        else {
            panic!("not IncrementalAlterConfigs")
        };
        assert_eq!(r.responses[0].error_code, ErrorCode::InvalidRequest.code());

        // Broker configs are static in Weir.
        let request = Request::AlterConfigs(AlterConfigsRequest {
            resources: vec![alter_configs::AlterConfigsResource {
                resource_type: BROKER,
                resource_name: "1".into(),
                configs: vec![alter_configs::AlterableConfig {
                    name: "num.partitions".into(),
                    value: Some("3".into()),
                }],
            }],
            validate_only: false,
        });
        let Response::AlterConfigs(r) = client.call(2, request).await else {
            panic!("not AlterConfigs")
        };
        assert_eq!(r.responses[0].error_code, ErrorCode::InvalidConfig.code());
        assert!(r.responses[0]
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("dynamic")));
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_cluster_names_this_broker() {
    timeout(TEST_TIMEOUT, async {
        let broker = TestBroker::start(|_| {}).await;
        let mut client = broker.client().await;
        let request = |endpoint_type| {
            Request::DescribeCluster(DescribeClusterRequest {
                include_cluster_authorized_operations: true,
                endpoint_type,
            })
        };
        let Response::DescribeCluster(r) = client.call(1, request(1)).await else {
            panic!("not DescribeCluster")
        };
        assert_eq!(r.error_code, 0);
        assert_eq!(r.controller_id, 1);
        assert_eq!(r.brokers.len(), 1);
        assert_eq!(
            (r.brokers[0].broker_id, r.brokers[0].port),
            (1, i32::from(broker.addr.port()))
        );
        assert!(!r.cluster_id.is_empty());
        assert!(r.cluster_authorized_operations > 0);
        let metadata = client.metadata(Some(&[])).await;
        assert_eq!(metadata.cluster_id.as_deref(), Some(r.cluster_id.as_str()));
        let Response::DescribeCluster(r) = client.call(1, request(2)).await else {
            panic!("not DescribeCluster")
        };
        assert_eq!(r.error_code, ErrorCode::MismatchedEndpointType.code());
    })
    .await
    .expect("test timed out");
}
