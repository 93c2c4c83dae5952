//! IncrementalAlterConfigs (KIP-339): set, delete, append to or subtract from single
//! config entries.
//!
//! Topic resources go to the controller, which applies each resource's operations
//! together or not at all and checks the result with the log's config parser;
//! APPEND and SUBTRACT work on list configs (`cleanup.policy`) only. An operation
//! code outside 0-3 fails its resource with INVALID_REQUEST before anything is
//! applied. Broker resources are handled as in AlterConfigs (no dynamic broker
//! configs).

use weir_metadata::controller::{AlterConfigOp, ApiError, ConfigOp, IncrementalAlterTopicConfigs};
use weir_protocol::messages::incremental_alter_configs::{
    AlterConfigsResource, AlterConfigsResourceResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use weir_types::ErrorCode;

use super::alter_configs::{merge, not_a_topic, results_or_failure};
use super::describe_configs::RESOURCE_TOPIC;
use super::{errors, ApiState};

/// Answers an IncrementalAlterConfigs request.
pub(super) async fn handle(
    state: &ApiState,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut outcomes: Vec<Option<ApiError>> = Vec::with_capacity(request.resources.len());
    let mut topics = Vec::new();
    for r in &request.resources {
        if r.resource_type != RESOURCE_TOPIC {
            outcomes.push(Some(not_a_topic(
                state,
                r.resource_type,
                &r.resource_name,
                !r.configs.is_empty(),
            )));
            continue;
        }
        match operations(r) {
            Ok(ops) => {
                topics.push(IncrementalAlterTopicConfigs {
                    topic: r.resource_name.clone(),
                    ops,
                });
                outcomes.push(None);
            }
            Err(error) => outcomes.push(Some(error)),
        }
    }
    let topic_names: Vec<String> = topics.iter().map(|t| t.topic.clone()).collect();
    let results = if topics.is_empty() {
        Vec::new()
    } else {
        let outcome = state
            .controller
            .incremental_alter_configs(topics, request.validate_only)
            .await;
        results_or_failure(outcome, topic_names)
    };
    let results = merge(state, outcomes, results, request.validate_only).await;
    IncrementalAlterConfigsResponse {
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

/// The resource's operations, or INVALID_REQUEST naming the first unknown one.
fn operations(resource: &AlterConfigsResource) -> Result<Vec<ConfigOp>, ApiError> {
    resource
        .configs
        .iter()
        .map(|c| {
            let op = AlterConfigOp::from_i8(c.config_operation).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!(
                        "Unknown alter config operation {} for {}",
                        c.config_operation, c.name
                    ),
                )
            })?;
            Ok(ConfigOp {
                name: c.name.clone(),
                op,
                value: c.value.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_protocol::messages::incremental_alter_configs::AlterableConfig;

    #[test]
    fn unknown_operations_fail_the_resource() {
        let resource = |op| AlterConfigsResource {
            resource_type: RESOURCE_TOPIC,
            resource_name: "t".into(),
            configs: vec![AlterableConfig {
                name: "retention.ms".into(),
                config_operation: op,
                value: Some("1".into()),
            }],
        };
        let ops = operations(&resource(2)).expect("append is known");
        assert_eq!(ops[0].op, AlterConfigOp::Append);
        let error = operations(&resource(7)).expect_err("7 is not an operation");
        assert_eq!(error.code, ErrorCode::InvalidRequest);
    }
}
