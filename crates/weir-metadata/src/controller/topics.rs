//! Topic operations: validation and record generation, Kafka's
//! `ReplicationControlManager` (plus the request checks of its `ControllerApis`).
//!
//! Every function here is pure: it reads the current image and returns the records
//! that make the change and a result per topic. The controller appends the records
//! (one batch per request, so a request is atomic) and only then applies them.

use std::collections::{BTreeMap, BTreeSet};

use weir_protocol::messages::{ConfigRecord, PartitionRecord, RemoveTopicRecord, TopicRecord};
use weir_protocol::Uuid;
use weir_types::{ErrorCode, NodeId};

use super::names::{has_collision_chars, invalid_topic_name, unify_collision_chars};
use super::placement::{place, Placement};
use super::types::{
    ApiError, CreatePartitions, CreatePartitionsResult, CreateTopic, CreateTopicResult,
    DeleteTopicResult, Outcome, TopicRef,
};
use super::Ctx;
use crate::image::{MetadataImage, TopicImage};
use crate::record::{MetadataRecord, RESOURCE_TYPE_TOPIC};
use crate::store::MAX_RECORDS_PER_BATCH;

/// The message of a request whose records would not fit one batch (Kafka's words).
const TOO_LARGE: &str = "Unable to perform excessively large batch operation.";

/// CreateTopics: records and a result per topic (a duplicated name gets one result).
pub(crate) fn create_topics(
    ctx: &mut Ctx<'_>,
    topics: &[CreateTopic],
) -> (Vec<MetadataRecord>, Vec<CreateTopicResult>) {
    let dups = duplicates(topics.iter().map(|t| t.name.as_str()));
    let mut seen = BTreeSet::new();
    let mut records = Vec::new();
    let mut results = Vec::new();
    // Names created earlier in this request, unified, so two new topics cannot collide.
    let mut new_unified: BTreeMap<String, String> = BTreeMap::new();
    for topic in topics {
        if !seen.insert(topic.name.as_str()) {
            continue;
        }
        if dups.contains(topic.name.as_str()) {
            let e = ApiError::new(ErrorCode::InvalidRequest, "Duplicate topic name.");
            results.push(CreateTopicResult::failed(&topic.name, e));
            continue;
        }
        match create_topic(ctx, topic, &new_unified) {
            Ok((result, topic_records)) => {
                if has_collision_chars(&topic.name) {
                    new_unified.insert(unify_collision_chars(&topic.name), topic.name.clone());
                }
                records.extend(topic_records);
                results.push(result);
            }
            Err(e) => results.push(CreateTopicResult::failed(&topic.name, e)),
        }
    }
    limit_batch(&mut records, &mut results);
    (records, results)
}

fn create_topic(
    ctx: &mut Ctx<'_>,
    topic: &CreateTopic,
    new_unified: &BTreeMap<String, String>,
) -> Result<(CreateTopicResult, Vec<MetadataRecord>), ApiError> {
    let image = ctx.image;
    let name = &topic.name;
    if let Some(why) = invalid_topic_name(name) {
        return Err(ApiError::new(ErrorCode::InvalidTopicException, why));
    }
    if has_collision_chars(name) {
        let unified = unify_collision_chars(name);
        let existing = new_unified.get(&unified).cloned().or_else(|| {
            image
                .topics_by_name()
                .find(|t| t.name != *name && unify_collision_chars(&t.name) == unified)
                .map(|t| t.name.clone())
        });
        if let Some(other) = existing {
            return Err(ApiError::new(
                ErrorCode::InvalidTopicException,
                format!("Topic '{name}' collides with existing topic: {other}"),
            ));
        }
    }
    if image.topic(name).is_some() {
        return Err(ApiError::new(
            ErrorCode::TopicAlreadyExists,
            format!("Topic '{name}' already exists."),
        ));
    }
    let configs = creation_configs(ctx, topic)?;
    let placement = if topic.assignments.is_empty() {
        placed(ctx.image, ctx.config, topic)?
    } else {
        manual(ctx.image, topic)?
    };
    let topic_id = ctx.ids.next_uuid();
    let mut records = vec![MetadataRecord::Topic(TopicRecord {
        name: name.clone(),
        topic_id,
    })];
    // Configs go after the TopicRecord and before the partitions, as in Kafka.
    records.extend(configs.iter().map(|(k, v)| config_record(name, k, Some(v))));
    for (i, (replicas, isr)) in placement.iter().enumerate() {
        records.push(partition_record(topic_id, i, replicas, isr));
    }
    let result = CreateTopicResult {
        name: name.clone(),
        error: ApiError::NONE,
        topic_id,
        num_partitions: i32::try_from(placement.len()).unwrap_or(i32::MAX),
        replication_factor: placement
            .first()
            .map_or(0, |(r, _)| i16::try_from(r.len()).unwrap_or(i16::MAX)),
        configs,
    };
    Ok((result, records))
}

/// The topic's config overrides, checked: no null values, and valid as a whole.
fn creation_configs(
    ctx: &Ctx<'_>,
    topic: &CreateTopic,
) -> Result<BTreeMap<String, String>, ApiError> {
    let nulls: Vec<&str> = topic
        .configs
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| k.as_str())
        .collect();
    if !nulls.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidConfig,
            format!(
                "Null value not supported for topic configs: {}",
                nulls.join(",")
            ),
        ));
    }
    let configs: BTreeMap<String, String> = topic
        .configs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
        .collect();
    ctx.config
        .validator
        .validate(&configs)
        .map_err(|why| ApiError::new(ErrorCode::InvalidConfig, why))?;
    Ok(configs)
}

/// Partitions placed by the controller: counts from the request or the defaults.
fn placed(
    image: &MetadataImage,
    config: &super::ControllerConfig,
    topic: &CreateTopic,
) -> Result<Placement, ApiError> {
    if topic.replication_factor < -1 || topic.replication_factor == 0 {
        return Err(ApiError::new(
            ErrorCode::InvalidReplicationFactor,
            "Replication factor must be larger than 0, or -1 to use the default value.",
        ));
    }
    if topic.num_partitions < -1 || topic.num_partitions == 0 {
        return Err(ApiError::new(
            ErrorCode::InvalidPartitions,
            "Number of partitions was set to an invalid non-positive value.",
        ));
    }
    let partitions = match topic.num_partitions {
        -1 => config.num_partitions,
        n => n,
    };
    let rf = match topic.replication_factor {
        -1 => config.default_replication_factor,
        n => n,
    };
    if usize::try_from(partitions).unwrap_or(usize::MAX) > MAX_RECORDS_PER_BATCH {
        return Err(ApiError::new(ErrorCode::PolicyViolation, TOO_LARGE));
    }
    // The topic count varies the start, so leaders of successive topics spread.
    place(image, image.topic_count(), 0, partitions, rf)
}

/// Partitions from a manual assignment (CreateTopics with `assignments`).
fn manual(image: &MetadataImage, topic: &CreateTopic) -> Result<Placement, ApiError> {
    if topic.replication_factor != -1 {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "A manual partition assignment was specified, but replication factor was not set to -1.",
        ));
    }
    if topic.num_partitions != -1 {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "A manual partition assignment was specified, but numPartitions was not set to -1.",
        ));
    }
    if topic.assignments.len() > MAX_RECORDS_PER_BATCH {
        return Err(ApiError::new(ErrorCode::PolicyViolation, TOO_LARGE));
    }
    let mut parts = BTreeMap::new();
    let mut rf = None;
    for a in &topic.assignments {
        if parts.contains_key(&a.partition_index) {
            return Err(bad_assignment(format!(
                "Found multiple manual partition assignments for partition {}",
                a.partition_index
            )));
        }
        let entry = manual_partition(image, &a.broker_ids, a.partition_index, &mut rf)?;
        parts.insert(a.partition_index, entry);
    }
    let consecutive = parts
        .keys()
        .copied()
        .eq(0..i32::try_from(parts.len()).unwrap_or(0));
    if !consecutive {
        return Err(bad_assignment(
            "partitions should be a consecutive 0-based integer sequence".into(),
        ));
    }
    Ok(parts.into_values().collect())
}

/// Checks one manual replica list (Kafka's `validateManualPartitionAssignment`) and
/// derives its ISR: the replicas that are usable.
fn manual_partition(
    image: &MetadataImage,
    broker_ids: &[i32],
    partition: i32,
    rf: &mut Option<usize>,
) -> Result<(Vec<NodeId>, Vec<NodeId>), ApiError> {
    if broker_ids.is_empty() {
        return Err(bad_assignment(
            "The manual partition assignment includes an empty replica list.".into(),
        ));
    }
    let mut sorted = broker_ids.to_vec();
    sorted.sort_unstable();
    for (i, id) in sorted.iter().enumerate() {
        if image.broker(NodeId(*id)).is_none() {
            return Err(bad_assignment(format!(
                "The manual partition assignment includes broker {id}, but no such broker is registered."
            )));
        }
        if i > 0 && sorted[i - 1] == *id {
            return Err(bad_assignment(format!(
                "The manual partition assignment includes the broker {id} more than once."
            )));
        }
    }
    match *rf {
        Some(expected) if expected != broker_ids.len() => {
            return Err(bad_assignment(format!(
                "The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have {expected} replica(s).",
                broker_ids.len()
            )))
        }
        _ => *rf = Some(broker_ids.len()),
    }
    let replicas: Vec<NodeId> = broker_ids.iter().copied().map(NodeId).collect();
    let isr: Vec<NodeId> = replicas
        .iter()
        .copied()
        .filter(|id| image.usable_brokers().any(|b| b.id == *id))
        .collect();
    if isr.is_empty() {
        return Err(bad_assignment(format!(
            "All brokers specified in the manual partition assignment for partition {partition} are fenced or in controlled shutdown."
        )));
    }
    Ok((replicas, isr))
}

fn bad_assignment(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidReplicaAssignment, message)
}

/// CreatePartitions: records and a result per topic (a duplicated name gets one).
pub(crate) fn create_partitions(
    ctx: &mut Ctx<'_>,
    topics: &[CreatePartitions],
) -> (Vec<MetadataRecord>, Vec<CreatePartitionsResult>) {
    let dups = duplicates(topics.iter().map(|t| t.name.as_str()));
    let mut seen = BTreeSet::new();
    let mut records = Vec::new();
    let mut results = Vec::new();
    for t in topics {
        if !seen.insert(t.name.as_str()) {
            continue;
        }
        let outcome = if dups.contains(t.name.as_str()) {
            Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "Duplicate topic name.",
            ))
        } else {
            add_partitions(ctx.image, t)
        };
        let error = match outcome {
            Ok(new_records) => {
                records.extend(new_records);
                ApiError::NONE
            }
            Err(e) => e,
        };
        results.push(CreatePartitionsResult {
            name: t.name.clone(),
            error,
        });
    }
    limit_batch(&mut records, &mut results);
    (records, results)
}

fn add_partitions(
    image: &MetadataImage,
    t: &CreatePartitions,
) -> Result<Vec<MetadataRecord>, ApiError> {
    let topic: &TopicImage = image
        .topic(&t.name)
        .ok_or(ApiError::from_code(ErrorCode::UnknownTopicOrPartition))?;
    let current = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
    if t.count == current {
        return Err(ApiError::new(
            ErrorCode::InvalidPartitions,
            format!("Topic already has {current} partition(s)."),
        ));
    }
    if t.count < current {
        return Err(ApiError::new(
            ErrorCode::InvalidPartitions,
            format!(
                "The topic {} currently has {current} partition(s); {} would not be an increase.",
                t.name, t.count
            ),
        ));
    }
    let additional = t.count - current;
    if usize::try_from(additional).unwrap_or(usize::MAX) > MAX_RECORDS_PER_BATCH {
        return Err(ApiError::new(ErrorCode::PolicyViolation, TOO_LARGE));
    }
    let rf = topic.replication_factor();
    let placement = match &t.assignments {
        Some(lists) => {
            if lists.len() != usize::try_from(additional).unwrap_or(0) {
                return Err(bad_assignment(format!(
                    "Attempted to add {additional} additional partition(s), but only {} assignment(s) were specified.",
                    lists.len()
                )));
            }
            let mut expected = Some(rf);
            lists
                .iter()
                .zip(current..)
                .map(|(ids, p)| manual_partition(image, ids, p, &mut expected))
                .collect::<Result<Placement, ApiError>>()?
        }
        None => place(
            image,
            image.topic_count(),
            current,
            additional,
            i16::try_from(rf).unwrap_or(i16::MAX),
        )?,
    };
    Ok(placement
        .iter()
        .enumerate()
        .map(|(i, (replicas, isr))| partition_record(topic.id, current as usize + i, replicas, isr))
        .collect())
}

/// DeleteTopics: records and a result per topic reference (a duplicate gets one).
pub(crate) fn delete_topics(
    ctx: &Ctx<'_>,
    refs: &[TopicRef],
) -> (Vec<MetadataRecord>, Vec<DeleteTopicResult>) {
    let image = ctx.image;
    let dups = duplicates(refs.iter());
    let mut seen = BTreeSet::new();
    let mut deleting: BTreeSet<Uuid> = BTreeSet::new();
    let mut records = Vec::new();
    let mut results = Vec::new();
    for r in refs {
        if !seen.insert(r) {
            continue;
        }
        let (name, id) = match r {
            TopicRef::Name(n) => (Some(n.clone()), Uuid::ZERO),
            TopicRef::Id(id) => (None, *id),
        };
        let fail = |error: ApiError| DeleteTopicResult {
            name: name.clone(),
            topic_id: id,
            error,
        };
        if !ctx.config.delete_topic_enable {
            results.push(fail(ApiError::from_code(ErrorCode::TopicDeletionDisabled)));
            continue;
        }
        if dups.contains(r) {
            let what = if name.is_some() { "name" } else { "id" };
            let message = format!("Duplicate topic {what}.");
            results.push(fail(ApiError::new(ErrorCode::InvalidRequest, message)));
            continue;
        }
        let topic = match r {
            TopicRef::Name(n) => image.topic(n).ok_or(ErrorCode::UnknownTopicOrPartition),
            TopicRef::Id(id) if *id == Uuid::ZERO => Err(ErrorCode::InvalidRequest),
            TopicRef::Id(id) => image.topic_by_id(*id).ok_or(ErrorCode::UnknownTopicId),
        };
        let topic = match topic {
            Ok(t) => t,
            Err(code) => {
                results.push(fail(ApiError::from_code(code)));
                continue;
            }
        };
        if !deleting.insert(topic.id) {
            results.push(DeleteTopicResult {
                name: Some(topic.name.clone()),
                topic_id: topic.id,
                error: ApiError::new(
                    ErrorCode::InvalidRequest,
                    "The provided topic name maps to an ID that was already supplied.",
                ),
            });
            continue;
        }
        records.push(MetadataRecord::RemoveTopic(RemoveTopicRecord {
            topic_id: topic.id,
        }));
        results.push(DeleteTopicResult {
            name: Some(topic.name.clone()),
            topic_id: topic.id,
            error: ApiError::NONE,
        });
    }
    limit_batch(&mut records, &mut results);
    (records, results)
}

/// Fails the whole request (POLICY_VIOLATION, Kafka's words) when its records would
/// not fit one batch: a request is one atomic batch or nothing.
pub(crate) fn limit_batch<R: Outcome>(records: &mut Vec<MetadataRecord>, results: &mut [R]) {
    if records.len() > MAX_RECORDS_PER_BATCH {
        records.clear();
        for r in results.iter_mut().filter(|r| r.succeeded()) {
            r.fail(ApiError::new(ErrorCode::PolicyViolation, TOO_LARGE));
        }
    }
}

/// The items that occur more than once.
fn duplicates<T: Ord>(items: impl Iterator<Item = T>) -> BTreeSet<T> {
    let mut seen = BTreeSet::new();
    let mut dups = BTreeSet::new();
    for item in items {
        if seen.contains(&item) {
            dups.insert(item);
        } else {
            seen.insert(item);
        }
    }
    dups
}

pub(crate) fn config_record(topic: &str, name: &str, value: Option<&String>) -> MetadataRecord {
    MetadataRecord::Config(ConfigRecord {
        resource_type: RESOURCE_TYPE_TOPIC,
        resource_name: topic.to_string(),
        name: name.to_string(),
        value: value.cloned(),
    })
}

fn partition_record(
    topic_id: Uuid,
    partition: usize,
    replicas: &[NodeId],
    isr: &[NodeId],
) -> MetadataRecord {
    MetadataRecord::Partition(PartitionRecord {
        partition_id: i32::try_from(partition).unwrap_or(i32::MAX),
        topic_id,
        replicas: replicas.iter().map(|n| n.get()).collect(),
        isr: isr.iter().map(|n| n.get()).collect(),
        // The first in-sync replica leads, at leader and partition epoch 0.
        leader: isr.first().map_or(-1, |n| n.get()),
        leader_epoch: 0,
        partition_epoch: 0,
        ..PartitionRecord::default()
    })
}
