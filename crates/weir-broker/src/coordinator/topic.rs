//! Creating `__consumer_offsets` on first use, as Kafka does.
//!
//! The topic appears when the first client looks for a group coordinator, with
//! `offsets.topic.num.partitions` partitions, the replication factor capped at the
//! brokers there are, and the configs Kafka gives it: compacted (only the newest
//! commit of each partition and the newest metadata of each group matter), 100 MiB
//! segments so compaction gets to run, and the producer's compression kept.

use std::time::Duration;

use tokio::time::Instant;
use weir_metadata::controller::CreateTopic;
use weir_metadata::Controller;
use weir_types::ErrorCode;

use super::config::{CoordinatorConfig, OFFSETS_TOPIC, OFFSETS_TOPIC_SEGMENT_BYTES};
use super::error::CoordinatorError;
use crate::replica::ReplicaManager;

/// How long a FindCoordinator waits for a new offsets topic to be served here.
const CREATE_WAIT: Duration = Duration::from_secs(10);

/// Makes sure the offsets topic exists and is served by this broker's replica
/// manager; creates it if needed.
pub async fn ensure_offsets_topic(
    controller: &Controller,
    replicas: &ReplicaManager,
    config: &CoordinatorConfig,
) -> Result<(), CoordinatorError> {
    let image = controller.image();
    if image.topic(OFFSETS_TOPIC).is_some() {
        return Ok(());
    }
    let brokers = image.usable_brokers().count().max(1);
    let replication_factor = if config.cap_replication_factor {
        config
            .replication_factor
            .min(i16::try_from(brokers).unwrap_or(i16::MAX))
            .max(1)
    } else {
        config.replication_factor
    };
    let topic = CreateTopic {
        name: OFFSETS_TOPIC.to_owned(),
        num_partitions: config.num_partitions,
        replication_factor,
        assignments: Vec::new(),
        configs: vec![
            ("cleanup.policy".to_owned(), Some("compact".to_owned())),
            (
                "segment.bytes".to_owned(),
                Some(OFFSETS_TOPIC_SEGMENT_BYTES.to_string()),
            ),
            ("compression.type".to_owned(), Some("producer".to_owned())),
        ],
    };
    let results = controller
        .create_topics(vec![topic], false)
        .await
        .map_err(|e| CoordinatorError::TopicCreation(e.to_string()))?;
    for result in results {
        let code = result.error.code;
        if code != ErrorCode::None && code != ErrorCode::TopicAlreadyExists {
            return Err(CoordinatorError::TopicCreation(format!(
                "{code:?}: {}",
                result.error.message.unwrap_or_default()
            )));
        }
    }
    tracing::info!(
        partitions = config.num_partitions,
        replication_factor,
        "created {OFFSETS_TOPIC}"
    );
    replicas
        .wait_applied(controller.image().offset(), Instant::now() + CREATE_WAIT)
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio_util::sync::CancellationToken;
    use weir_metadata::{ControllerConfig, Endpoint};
    use weir_types::{NodeId, SystemClock};

    use super::*;
    use crate::replica::ReplicaConfig;

    /// A single-broker metadata log and replica manager in `dir`.
    async fn one_broker(dir: &std::path::Path) -> (Controller, ReplicaManager) {
        let config = ControllerConfig {
            node_id: NodeId(1),
            listeners: vec![Endpoint {
                name: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: 9092,
                security_protocol: 0,
            }],
            ..ControllerConfig::default()
        };
        let controller = Controller::open(dir, config).expect("controller");
        let replicas = ReplicaManager::open(
            ReplicaConfig::for_dir(dir),
            Arc::new(SystemClock),
            &CancellationToken::new(),
        )
        .await
        .expect("replica manager");
        replicas.spawn_image_listener(controller.subscribe());
        (controller, replicas)
    }

    #[tokio::test]
    async fn a_single_node_caps_the_factor_and_a_cluster_refuses_too_few_brokers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (controller, replicas) = one_broker(dir.path()).await;
        let cluster = CoordinatorConfig {
            num_partitions: 2,
            cap_replication_factor: false,
            ..CoordinatorConfig::default()
        };
        let err = ensure_offsets_topic(&controller, &replicas, &cluster)
            .await
            .expect_err("three replicas on one broker");
        assert_eq!(err.error_code(), ErrorCode::CoordinatorNotAvailable);
        assert!(controller.image().topic(OFFSETS_TOPIC).is_none());

        let single = CoordinatorConfig {
            cap_replication_factor: true,
            ..cluster
        };
        ensure_offsets_topic(&controller, &replicas, &single)
            .await
            .expect("capped at the one broker");
        let image = controller.image();
        let topic = image.topic(OFFSETS_TOPIC).expect("created");
        assert_eq!(topic.replication_factor(), 1);
        replicas.shutdown().await.expect("shutdown");
        controller.shutdown().await;
    }
}
