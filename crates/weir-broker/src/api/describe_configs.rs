//! DescribeConfigs: the effective configuration of topics and of this broker.
//!
//! Every entry says where its value came from (topic override, broker setting,
//! built-in default; see [`super::configs`]), its type (v3+) and, when asked, its
//! synonyms: the values it would have at each level, most specific first. Topic
//! configs come from the controller's newest image, so a describe right after an
//! AlterConfigs reads the change.
//!
//! Resources (Kafka's resource type ids): TOPIC (2); BROKER (4) named by this node's
//! id, or "" for the cluster-wide dynamic defaults, which Weir does not have (an
//! empty list); BROKER_LOGGER (8), for which Weir reports no loggers. Any other type,
//! or another broker's id, is INVALID_REQUEST with Kafka's message.

use weir_metadata::controller::invalid_topic_name;
use weir_protocol::messages::describe_configs::{
    DescribeConfigsRequest, DescribeConfigsResource, DescribeConfigsResourceResult,
    DescribeConfigsResponse, DescribeConfigsResult, DescribeConfigsSynonym,
};
use weir_types::ErrorCode;

use super::configs::{broker_entries, ConfigEntry};
use super::ApiState;

/// Kafka's resource type ids.
pub(super) const RESOURCE_TOPIC: i8 = 2;
pub(super) const RESOURCE_BROKER: i8 = 4;
pub(super) const RESOURCE_BROKER_LOGGER: i8 = 8;

/// Answers a DescribeConfigs request.
pub(super) fn handle(
    state: &ApiState,
    request: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let synonyms = version >= 1 && request.include_synonyms;
    DescribeConfigsResponse {
        throttle_time_ms: 0,
        results: request
            .resources
            .into_iter()
            .map(|r| describe(state, r, synonyms))
            .collect(),
    }
}

fn describe(
    state: &ApiState,
    resource: DescribeConfigsResource,
    include_synonyms: bool,
) -> DescribeConfigsResult {
    let result = |code: ErrorCode, message: Option<String>, configs| DescribeConfigsResult {
        error_code: code.code(),
        error_message: message,
        resource_type: resource.resource_type,
        resource_name: resource.resource_name.clone(),
        configs,
    };
    let entries = match entries(state, resource.resource_type, &resource.resource_name) {
        Ok(entries) => entries,
        Err((code, message)) => return result(code, Some(message), Vec::new()),
    };
    let wanted = |name: &str| {
        resource
            .configuration_keys
            .as_ref()
            .is_none_or(|keys| keys.iter().any(|k| k == name))
    };
    let configs = entries
        .into_iter()
        .filter(|e| wanted(&e.name))
        .map(|e| to_wire(e, include_synonyms))
        .collect();
    result(ErrorCode::None, None, configs)
}

/// The entries of one resource, or why it cannot be described.
fn entries(
    state: &ApiState,
    resource_type: i8,
    name: &str,
) -> Result<Vec<ConfigEntry>, (ErrorCode, String)> {
    match resource_type {
        RESOURCE_TOPIC => {
            if let Some(why) = invalid_topic_name(name) {
                return Err((ErrorCode::InvalidTopicException, why));
            }
            let image = state.controller.image();
            let topic = image.topic(name).ok_or_else(|| {
                (
                    ErrorCode::UnknownTopicOrPartition,
                    format!("Topic {name} does not exist."),
                )
            })?;
            Ok(state.topic_configs.describe(&topic.configs))
        }
        RESOURCE_BROKER | RESOURCE_BROKER_LOGGER => {
            if name.is_empty() {
                return Ok(Vec::new());
            }
            check_broker_id(state, name)?;
            Ok(if resource_type == RESOURCE_BROKER {
                broker_entries(&state.config)
            } else {
                Vec::new()
            })
        }
        other => Err((
            ErrorCode::InvalidRequest,
            format!("Unsupported resource type {other}"),
        )),
    }
}

/// Checks that a BROKER resource names this broker, with Kafka's messages.
pub(super) fn check_broker_id(state: &ApiState, name: &str) -> Result<(), (ErrorCode, String)> {
    let me = state.node_id().get();
    match name.parse::<i32>() {
        Ok(id) if id == me => Ok(()),
        Ok(_) => Err((
            ErrorCode::InvalidRequest,
            format!("Unexpected broker id, expected {me} or empty string, but received {name}"),
        )),
        Err(_) => Err((
            ErrorCode::InvalidRequest,
            format!("Broker id must be an integer, but it is: {name}"),
        )),
    }
}

fn to_wire(e: ConfigEntry, include_synonyms: bool) -> DescribeConfigsResourceResult {
    let synonyms = if include_synonyms {
        e.synonyms
            .into_iter()
            .map(|(name, value, source)| DescribeConfigsSynonym {
                name,
                value: Some(value),
                source,
            })
            .collect()
    } else {
        Vec::new()
    };
    DescribeConfigsResourceResult {
        is_default: e.source == super::configs::SOURCE_DEFAULT,
        name: e.name,
        value: Some(e.value),
        read_only: e.read_only,
        config_source: e.source,
        is_sensitive: false,
        synonyms,
        config_type: e.ty as i8,
        documentation: None,
    }
}
