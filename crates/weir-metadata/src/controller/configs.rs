//! Topic config changes: AlterConfigs (replace all overrides) and
//! IncrementalAlterConfigs (SET / DELETE / APPEND / SUBTRACT), Kafka's
//! `ConfigurationControlManager` plus the request checks of `ConfigAdminManager`.
//!
//! A resource's changes apply together or not at all. Only changed values produce a
//! ConfigRecord (value null = override removed); the whole resulting set of overrides
//! goes through the validator, so a change that breaks a combination is refused.

use std::collections::{BTreeMap, BTreeSet};

use weir_types::ErrorCode;

use super::topics::{config_record, limit_batch};
use super::types::{
    AlterConfigOp, AlterConfigsResult, AlterTopicConfigs, ApiError, ConfigOp,
    IncrementalAlterTopicConfigs,
};
use super::Ctx;
use crate::record::MetadataRecord;

/// AlterConfigs for topics: records and a result per resource.
pub(crate) fn alter_configs(
    ctx: &Ctx<'_>,
    resources: &[AlterTopicConfigs],
) -> (Vec<MetadataRecord>, Vec<AlterConfigsResult>) {
    let dups = duplicate_topics(resources.iter().map(|r| r.topic.as_str()));
    let mut records = Vec::new();
    let mut results: Vec<AlterConfigsResult> = resources
        .iter()
        .map(|r| {
            let outcome = if dups.contains(r.topic.as_str()) {
                Err(once_only())
            } else {
                replace(ctx, r)
            };
            result(&r.topic, outcome, &mut records)
        })
        .collect();
    limit_batch(&mut records, &mut results);
    (records, results)
}

/// IncrementalAlterConfigs for topics: records and a result per resource.
pub(crate) fn incremental_alter_configs(
    ctx: &Ctx<'_>,
    resources: &[IncrementalAlterTopicConfigs],
) -> (Vec<MetadataRecord>, Vec<AlterConfigsResult>) {
    let dups = duplicate_topics(resources.iter().map(|r| r.topic.as_str()));
    let mut records = Vec::new();
    let mut results: Vec<AlterConfigsResult> = resources
        .iter()
        .map(|r| {
            let outcome = if dups.contains(r.topic.as_str()) {
                Err(once_only())
            } else {
                incremental(ctx, r)
            };
            result(&r.topic, outcome, &mut records)
        })
        .collect();
    limit_batch(&mut records, &mut results);
    (records, results)
}

fn result(
    topic: &str,
    outcome: Result<Vec<MetadataRecord>, ApiError>,
    records: &mut Vec<MetadataRecord>,
) -> AlterConfigsResult {
    let error = match outcome {
        Ok(new) => {
            records.extend(new);
            ApiError::NONE
        }
        Err(e) => e,
    };
    AlterConfigsResult {
        topic: topic.to_string(),
        error,
    }
}

fn once_only() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidRequest,
        "Each resource must appear at most once.",
    )
}

fn duplicate_topics<'a>(names: impl Iterator<Item = &'a str>) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    names.filter(|n| !seen.insert(*n)).collect()
}

/// The current overrides of `topic`, or UNKNOWN_TOPIC_OR_PARTITION.
fn current<'a>(ctx: &'a Ctx<'_>, topic: &str) -> Result<&'a BTreeMap<String, String>, ApiError> {
    ctx.image
        .topic(topic)
        .map(|t| &t.configs)
        .ok_or(ApiError::from_code(ErrorCode::UnknownTopicOrPartition))
}

fn check_keys<'a>(
    names: impl Iterator<Item = &'a str>,
    null_names: impl Iterator<Item = &'a str>,
) -> Result<(), ApiError> {
    let mut seen = BTreeSet::new();
    for n in names {
        if !seen.insert(n) {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "Error due to duplicate config keys",
            ));
        }
    }
    let nulls: Vec<&str> = null_names.collect();
    if !nulls.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("Null value not supported for : {}", nulls.join(", ")),
        ));
    }
    Ok(())
}

fn replace(ctx: &Ctx<'_>, r: &AlterTopicConfigs) -> Result<Vec<MetadataRecord>, ApiError> {
    check_keys(
        r.configs.iter().map(|(k, _)| k.as_str()),
        r.configs
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.as_str()),
    )?;
    let old = current(ctx, &r.topic)?;
    let new: BTreeMap<String, String> = r
        .configs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
        .collect();
    finish(ctx, &r.topic, old, new)
}

fn incremental(
    ctx: &Ctx<'_>,
    r: &IncrementalAlterTopicConfigs,
) -> Result<Vec<MetadataRecord>, ApiError> {
    check_keys(
        r.ops.iter().map(|o| o.name.as_str()),
        r.ops
            .iter()
            .filter(|o| o.op != AlterConfigOp::Delete && o.value.is_none())
            .map(|o| o.name.as_str()),
    )?;
    let old = current(ctx, &r.topic)?;
    let mut new = old.clone();
    for op in &r.ops {
        apply_op(ctx, &mut new, op)?;
    }
    finish(ctx, &r.topic, old, new)
}

/// Applies one operation to `configs` (Kafka's `incrementalAlterConfigResource`).
fn apply_op(
    ctx: &Ctx<'_>,
    configs: &mut BTreeMap<String, String>,
    op: &ConfigOp,
) -> Result<(), ApiError> {
    let value = op.value.clone().unwrap_or_default();
    match op.op {
        AlterConfigOp::Set => {
            configs.insert(op.name.clone(), value);
        }
        AlterConfigOp::Delete => {
            configs.remove(&op.name);
        }
        AlterConfigOp::Append | AlterConfigOp::Subtract => {
            let verb = if op.op == AlterConfigOp::Append {
                "APPEND"
            } else {
                "SUBTRACT"
            };
            let validator = &ctx.config.validator;
            if !validator.is_list(&op.name) {
                return Err(ApiError::new(
                    ErrorCode::InvalidConfig,
                    format!(
                        "Can't {verb} to key {} because its type is not LIST.",
                        op.name
                    ),
                ));
            }
            let start = configs
                .get(&op.name)
                .cloned()
                .or_else(|| validator.default_value(&op.name))
                .unwrap_or_default();
            let mut parts: Vec<String> = start
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            for item in value.split(',') {
                if op.op == AlterConfigOp::Append {
                    if !parts.iter().any(|p| p == item) {
                        parts.push(item.to_string());
                    }
                } else if let Some(i) = parts.iter().position(|p| p == item) {
                    parts.remove(i);
                }
            }
            configs.insert(op.name.clone(), parts.join(","));
        }
    }
    Ok(())
}

/// Validates the resulting overrides and emits a record per changed name, in name
/// order.
fn finish(
    ctx: &Ctx<'_>,
    topic: &str,
    old: &BTreeMap<String, String>,
    new: BTreeMap<String, String>,
) -> Result<Vec<MetadataRecord>, ApiError> {
    ctx.config
        .validator
        .validate(&new)
        .map_err(|why| ApiError::new(ErrorCode::InvalidConfig, why))?;
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    Ok(names
        .into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|k| config_record(topic, k, new.get(k)))
        .collect())
}
