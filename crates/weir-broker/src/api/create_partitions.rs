//! CreatePartitions: raise topics' partition counts.
//!
//! The controller checks the new count (larger than the current one:
//! INVALID_PARTITIONS otherwise) and any explicit assignments, and adds the
//! partitions; a topic listed twice is INVALID_REQUEST, as in Kafka. A change is
//! answered once this broker serves the new partitions (bounded by `timeout_ms`).

use std::collections::BTreeMap;
use std::time::Duration;

use weir_metadata::controller::{ApiError, CreatePartitions, CreatePartitionsResult};
use weir_protocol::messages::create_partitions::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreatePartitionsTopicResult,
};
use weir_types::ErrorCode;

use super::{errors, ApiState};

/// The longest a CreatePartitions waits for the new partitions to be served.
const MAX_APPLY_WAIT: Duration = Duration::from_secs(30);

/// Answers a CreatePartitions request.
pub(super) async fn handle(
    state: &ApiState,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for t in &request.topics {
        *counts.entry(t.name.clone()).or_default() += 1;
    }
    let topics: Vec<CreatePartitions> = request
        .topics
        .into_iter()
        .filter(|t| counts.get(&t.name) == Some(&1))
        .map(|t| CreatePartitions {
            name: t.name,
            count: t.count,
            assignments: t
                .assignments
                .map(|a| a.into_iter().map(|a| a.broker_ids).collect()),
        })
        .collect();
    let names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
    let mut results = if topics.is_empty() {
        Vec::new()
    } else {
        match state
            .controller
            .create_partitions(topics, request.validate_only)
            .await
        {
            Ok(results) => results,
            Err(e) => {
                let error = errors::controller(&e);
                names
                    .into_iter()
                    .map(|name| CreatePartitionsResult {
                        name,
                        error: error.clone(),
                    })
                    .collect()
            }
        }
    };
    let changed = results.iter().any(|r| r.error.is_success());
    if changed && !request.validate_only && request.timeout_ms > 0 {
        let wait = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0));
        state.wait_applied(wait.min(MAX_APPLY_WAIT)).await;
    }
    results.extend(counts.into_iter().filter(|(_, n)| *n > 1).map(|(name, _)| {
        CreatePartitionsResult {
            name,
            error: ApiError::new(ErrorCode::InvalidRequest, "Duplicate topic name."),
        }
    }));
    CreatePartitionsResponse {
        throttle_time_ms: 0,
        results: results
            .into_iter()
            .map(|r| CreatePartitionsTopicResult {
                error_message: errors::message(&r.error),
                error_code: r.error.code.code(),
                name: r.name,
            })
            .collect(),
    }
}
