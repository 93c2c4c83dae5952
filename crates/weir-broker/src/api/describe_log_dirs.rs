//! DescribeLogDirs (v1+): this broker's data directories and the partition sizes in
//! them (kafka-log-dirs.sh, AdminClient.describeLogDirs).
//!
//! `topics` null asks for every partition; otherwise only the named ones (a named
//! partition this broker does not host is simply absent, as in Kafka). Weir has no
//! replica moves between directories, so `offset_lag` is 0 and `is_future_key`
//! false. `total_bytes` and `usable_bytes` (v4, KIP-827) are the file system's size
//! and the space still available to the broker (statvfs), -1 when unreadable.

use std::collections::BTreeSet;

use weir_protocol::messages::describe_log_dirs::{
    DescribeLogDirsPartition, DescribeLogDirsRequest, DescribeLogDirsResponse,
    DescribeLogDirsResult, DescribeLogDirsTopic,
};
use weir_types::ErrorCode;

use super::ApiState;
use crate::replica::LogDirPartition;

/// Answers a DescribeLogDirs request.
pub(super) fn handle(
    state: &ApiState,
    request: &DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let wanted: Option<BTreeSet<(&str, i32)>> = request.topics.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t.topic.as_str(), *p)))
            .collect()
    });
    let results = state
        .replicas
        .log_dirs()
        .into_iter()
        .map(|dir| {
            let partitions: Vec<&LogDirPartition> = dir
                .partitions
                .iter()
                .filter(|p| {
                    wanted
                        .as_ref()
                        .is_none_or(|w| w.contains(&(p.topic.as_str(), p.partition)))
                })
                .collect();
            DescribeLogDirsResult {
                error_code: if dir.offline {
                    ErrorCode::KafkaStorageError.code()
                } else {
                    ErrorCode::None.code()
                },
                log_dir: dir.path.display().to_string(),
                topics: group_by_topic(&partitions),
                total_bytes: dir.total_bytes,
                usable_bytes: dir.usable_bytes,
            }
        })
        .collect();
    DescribeLogDirsResponse {
        throttle_time_ms: 0,
        error_code: ErrorCode::None.code(),
        results,
    }
}

/// Partitions sorted by topic, grouped under their topic.
fn group_by_topic(partitions: &[&LogDirPartition]) -> Vec<DescribeLogDirsTopic> {
    let mut topics: Vec<DescribeLogDirsTopic> = Vec::new();
    for p in partitions {
        let entry = DescribeLogDirsPartition {
            partition_index: p.partition,
            partition_size: i64::try_from(p.size_bytes).unwrap_or(i64::MAX),
            offset_lag: 0,
            is_future_key: false,
        };
        match topics.last_mut() {
            Some(t) if t.name == p.topic => t.partitions.push(entry),
            _ => topics.push(DescribeLogDirsTopic {
                name: p.topic.clone(),
                partitions: vec![entry],
            }),
        }
    }
    topics
}
