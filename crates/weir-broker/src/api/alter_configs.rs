//! AlterConfigs (the legacy, whole-set form): replace a topic's config overrides.
//!
//! Topic resources go to the controller, which checks the new set with the log's
//! config parser (INVALID_CONFIG with the reason otherwise), refuses a topic listed
//! twice and writes the valid ones; `validate_only` checks without writing. Weir has
//! no dynamic broker configs: a BROKER resource with changes is refused with a
//! message saying where to set them instead (an empty set, which changes nothing,
//! succeeds). The helpers here are shared with IncrementalAlterConfigs.

use std::time::Duration;

use weir_metadata::controller::{AlterConfigsResult, AlterTopicConfigs, ApiError};
use weir_protocol::messages::alter_configs::{
    AlterConfigsRequest, AlterConfigsResourceResponse, AlterConfigsResponse,
};
use weir_types::ErrorCode;

use super::describe_configs::{check_broker_id, RESOURCE_BROKER, RESOURCE_TOPIC};
use super::{errors, ApiState};

/// How long a config change waits to be applied to the partitions before it is
/// acknowledged, so the next Produce runs under the new settings.
const APPLY_WAIT: Duration = Duration::from_secs(5);

/// Answers an AlterConfigs request.
pub(super) async fn handle(state: &ApiState, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut outcomes: Vec<Option<ApiError>> = Vec::with_capacity(request.resources.len());
    let mut topics = Vec::new();
    for r in &request.resources {
        if r.resource_type == RESOURCE_TOPIC {
            topics.push(AlterTopicConfigs {
                topic: r.resource_name.clone(),
                configs: r
                    .configs
                    .iter()
                    .map(|c| (c.name.clone(), c.value.clone()))
                    .collect(),
            });
            outcomes.push(None);
        } else {
            outcomes.push(Some(not_a_topic(
                state,
                r.resource_type,
                &r.resource_name,
                !r.configs.is_empty(),
            )));
        }
    }
    let topic_names: Vec<String> = topics.iter().map(|t| t.topic.clone()).collect();
    let results = if topics.is_empty() {
        Vec::new()
    } else {
        let outcome = state
            .controller
            .alter_configs(topics, request.validate_only)
            .await;
        results_or_failure(outcome, topic_names)
    };
    let results = merge(state, outcomes, results, request.validate_only).await;
    AlterConfigsResponse {
        throttle_time_ms: 0,
        responses: request
            .resources
            .iter()
            .zip(results)
            .map(|(r, error)| AlterConfigsResourceResponse {
                error_message: errors::message(&error),
                error_code: error.code.code(),
                resource_type: r.resource_type,
                resource_name: r.resource_name.clone(),
            })
            .collect(),
    }
}

/// The outcome for a resource that is not a topic.
pub(super) fn not_a_topic(
    state: &ApiState,
    resource_type: i8,
    name: &str,
    has_changes: bool,
) -> ApiError {
    if resource_type != RESOURCE_BROKER {
        return ApiError::new(
            ErrorCode::InvalidRequest,
            format!("Unsupported resource type {resource_type}"),
        );
    }
    if !name.is_empty() {
        if let Err((code, message)) = check_broker_id(state, name) {
            return ApiError::new(code, message);
        }
    }
    if has_changes {
        ApiError::new(
            ErrorCode::InvalidConfig,
            "Weir has no dynamic broker configs: set broker configs in the server's \
             properties file (or with --override) and restart it",
        )
    } else {
        ApiError::NONE
    }
}

/// The controller's per-topic results, or its failure repeated for every topic.
pub(super) fn results_or_failure(
    outcome: weir_metadata::Result<Vec<AlterConfigsResult>>,
    topics: Vec<String>,
) -> Vec<AlterConfigsResult> {
    match outcome {
        Ok(results) => results,
        Err(e) => {
            let error = errors::controller(&e);
            topics
                .into_iter()
                .map(|topic| AlterConfigsResult {
                    topic,
                    error: error.clone(),
                })
                .collect()
        }
    }
}

/// Puts the topic results (in order) into the slots left for them, and waits for a
/// successful change to be applied before it is acknowledged.
pub(super) async fn merge(
    state: &ApiState,
    outcomes: Vec<Option<ApiError>>,
    topic_results: Vec<AlterConfigsResult>,
    validate_only: bool,
) -> Vec<ApiError> {
    if !validate_only && topic_results.iter().any(|r| r.error.is_success()) {
        state.wait_applied(APPLY_WAIT).await;
    }
    let mut topic_results = topic_results.into_iter();
    outcomes
        .into_iter()
        .map(|o| match o {
            Some(error) => error,
            None => topic_results.next().map_or_else(
                || ApiError::new(ErrorCode::UnknownServerError, "no result for this topic"),
                |r| r.error,
            ),
        })
        .collect()
}
