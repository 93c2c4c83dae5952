//! Controller tests: every operation and its errors, over a real metadata log in a
//! temporary directory.

mod cluster;
mod configs;
mod elr;
mod failover;
mod lifecycle;
mod topics;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use weir_types::{ErrorCode, NodeId};

use super::*;
use crate::image::Endpoint;

pub(super) fn listener(port: u16) -> Vec<Endpoint> {
    vec![Endpoint {
        name: "PLAINTEXT".into(),
        host: "127.0.0.1".into(),
        port,
        security_protocol: 0,
    }]
}

/// A validator in the spirit of the log's: known names only, values checked.
pub(super) fn validate(name: &str, value: &str) -> Result<(), String> {
    match name {
        "retention.ms" | "segment.bytes" => value
            .parse::<i64>()
            .map(drop)
            .map_err(|_| format!("Invalid value {value} for configuration {name}")),
        "cleanup.policy" => value
            .split(',')
            .all(|p| p == "delete" || p == "compact")
            .then_some(())
            .ok_or_else(|| format!("Invalid value {value} for configuration {name}")),
        _ => Err(format!("Unknown topic config name: {name}")),
    }
}

pub(super) fn config() -> ControllerConfig {
    ControllerConfig {
        node_id: NodeId(1),
        num_partitions: 3,
        listeners: listener(9092),
        validator: Arc::new(PairValidator(validate)),
        id_seed: Some(42),
        ..ControllerConfig::default()
    }
}

pub(super) fn open(dir: &Path) -> Controller {
    Controller::open(dir, config()).unwrap()
}

pub(super) fn topic(name: &str, partitions: i32, rf: i16) -> CreateTopic {
    CreateTopic {
        name: name.into(),
        num_partitions: partitions,
        replication_factor: rf,
        assignments: vec![],
        configs: vec![],
    }
}

pub(super) fn cfg(pairs: &[(&str, &str)]) -> Vec<(String, Option<String>)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Some(v.to_string())))
        .collect()
}

pub(super) fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Creates topics and asserts they all succeeded.
pub(super) async fn create_ok(c: &Controller, topics: Vec<CreateTopic>) -> Vec<CreateTopicResult> {
    let results = c.create_topics(topics, false).await.unwrap();
    for r in &results {
        assert_eq!(r.error, ApiError::NONE, "{}", r.name);
    }
    results
}

/// The single result's error code of a one-topic create.
pub(super) async fn create_code(c: &Controller, t: CreateTopic) -> (ErrorCode, Option<String>) {
    let mut r = c.create_topics(vec![t], false).await.unwrap();
    assert_eq!(r.len(), 1);
    let e = r.remove(0).error;
    (e.code, e.message)
}
