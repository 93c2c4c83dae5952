//! Partition leadership and replica sets: AlterPartition (ISR changes from
//! leaders), ElectLeaders, the periodic preferred-leader rebalance, partition
//! reassignments, and producer id blocks — the rest of Kafka's
//! `ReplicationControlManager` (and its `ProducerIdControlManager`).
//!
//! Every function is pure over the image: it returns the records and the results,
//! and the controller thread commits them as one batch.

use std::collections::{BTreeMap, BTreeSet};

use weir_protocol::messages::{PartitionChangeRecord, ProducerIdsRecord};
use weir_types::{ErrorCode, NodeId};

use super::brokers::check_epoch;
use super::cluster_types::{
    AlterPartition, ElectionType, OngoingReassignment, PartitionResult, ProducerIdBlock,
    Reassignment, TopicPartition,
};
use super::partition_change::{
    default_election, effective_min_isr, index, unclean_allowed, Election, PartitionChange,
};
use super::types::ApiError;
use crate::image::{MetadataImage, PartitionImage, TopicImage};
use crate::record::MetadataRecord;

/// Producer ids per block (Kafka's `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`).
pub const PRODUCER_ID_BLOCK_SIZE: i32 = 1000;

fn nodes(ids: &[i32]) -> Vec<NodeId> {
    ids.iter().copied().map(NodeId).collect()
}

fn ids(nodes: &[NodeId]) -> Vec<i32> {
    nodes.iter().map(|n| n.get()).collect()
}

/// AlterPartition for one partition: the change record, if any, or Kafka's error.
/// `min_isr_default` (the broker default of `min.insync.replicas`) decides the ELR.
pub(crate) fn alter_partition(
    image: &MetadataImage,
    req: &AlterPartition,
    min_isr_default: i32,
) -> Result<Option<PartitionChangeRecord>, ApiError> {
    check_epoch(image, req.broker_id, req.broker_epoch)?;
    let topic = image
        .topic_by_id(req.topic_id)
        .ok_or(ApiError::from_code(ErrorCode::UnknownTopicId))?;
    let p = topic
        .partition(req.partition)
        .ok_or(ApiError::from_code(ErrorCode::UnknownTopicOrPartition))?;
    let here = format!("{}-{}", topic.name, req.partition);
    // A leader ahead of this controller's image: this node is likely no longer the
    // active controller, and the leader should find the new one.
    if req.leader_epoch > p.leader_epoch.get() || req.partition_epoch > p.partition_epoch {
        return Err(ApiError::new(
            ErrorCode::NotController,
            format!("{here}: the request is ahead of this controller"),
        ));
    }
    if req.leader_epoch < p.leader_epoch.get() {
        return Err(ApiError::new(
            ErrorCode::FencedLeaderEpoch,
            format!("{here}: leader epoch is {}", p.leader_epoch),
        ));
    }
    if p.leader != Some(req.broker_id) {
        return Err(ApiError::new(
            ErrorCode::NotLeaderOrFollower,
            format!("{here}: the leader is {}", p.leader_id()),
        ));
    }
    if req.partition_epoch < p.partition_epoch {
        return Err(ApiError::new(
            ErrorCode::InvalidUpdateVersion,
            format!("{here}: partition epoch is {}", p.partition_epoch),
        ));
    }
    let isr = nodes(&req.new_isr);
    let distinct: BTreeSet<NodeId> = isr.iter().copied().collect();
    if distinct.len() != isr.len() || isr.iter().any(|r| !p.replicas.contains(r)) {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("{here}: invalid ISR {:?}", req.new_isr),
        ));
    }
    if !isr.contains(&req.broker_id) {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("{here}: the ISR must contain its leader"),
        ));
    }
    let ineligible: Vec<i32> = isr
        .iter()
        .filter(|r| !p.isr.contains(r) && !image.is_usable(**r))
        .map(|r| r.get())
        .collect();
    if !ineligible.is_empty() {
        return Err(ApiError::new(
            ErrorCode::IneligibleReplica,
            format!("{here}: replicas {ineligible:?} are fenced or shutting down"),
        ));
    }
    if isr == p.isr {
        return Ok(None);
    }
    let eligible = |n: NodeId| image.is_usable(n);
    let min_isr = effective_min_isr(topic, min_isr_default);
    let change =
        PartitionChange::new(topic.id, req.partition, p, &eligible, min_isr).isr(isr.clone());
    let change = match reassignment_target(p) {
        Some(target) if target.iter().all(|r| isr.contains(r)) => {
            change.replicas(target, Vec::new(), Vec::new())
        }
        _ => change,
    };
    Ok(change.build())
}

/// The replicas a reassignment moves to (the current ones without those being
/// removed), if one is in progress.
fn reassignment_target(p: &PartitionImage) -> Option<Vec<NodeId>> {
    if p.adding_replicas.is_empty() && p.removing_replicas.is_empty() {
        return None;
    }
    Some(
        p.replicas
            .iter()
            .copied()
            .filter(|r| !p.removing_replicas.contains(r))
            .collect(),
    )
}

/// A partition of the image, or why it is not one.
type Found<'a> = Result<(&'a TopicImage, &'a PartitionImage), ApiError>;

/// The partitions a request names (`None`: every partition of every topic),
/// resolved against the image; unknown ones get UNKNOWN_TOPIC_OR_PARTITION.
fn resolve<'a>(
    image: &'a MetadataImage,
    partitions: Option<&[TopicPartition]>,
) -> Vec<(TopicPartition, Found<'a>)> {
    match partitions {
        None => image
            .topics_by_name()
            .flat_map(|t| {
                t.partitions.iter().enumerate().map(move |(i, p)| {
                    let tp = TopicPartition {
                        topic: t.name.clone(),
                        partition: index(i),
                    };
                    (tp, Ok((t.as_ref(), p)))
                })
            })
            .collect(),
        Some(list) => list
            .iter()
            .map(|tp| {
                let found = image
                    .topic(&tp.topic)
                    .and_then(|t| t.partition(tp.partition).map(|p| (t.as_ref(), p)))
                    .ok_or(ApiError::from_code(ErrorCode::UnknownTopicOrPartition));
                (tp.clone(), found)
            })
            .collect(),
    }
}

/// ElectLeaders: records and a result per partition. With `None` (every
/// partition), partitions that need no election are left out of the results.
pub(crate) fn elect_leaders(
    image: &MetadataImage,
    kind: ElectionType,
    partitions: Option<&[TopicPartition]>,
    min_isr_default: i32,
) -> (Vec<MetadataRecord>, Vec<PartitionResult>) {
    let all = partitions.is_none();
    let eligible = |n: NodeId| image.is_usable(n);
    let mut records = Vec::new();
    let mut results = Vec::new();
    for (tp, found) in resolve(image, partitions) {
        let outcome = found.and_then(|(t, p)| {
            let min_isr = effective_min_isr(t, min_isr_default);
            elect_one(t, &tp, p, kind, &eligible, min_isr).map(|r| records.push(r.into()))
        });
        let error = outcome.err().unwrap_or(ApiError::NONE);
        if all && error.code == ErrorCode::ElectionNotNeeded {
            continue;
        }
        results.push(PartitionResult {
            partition: tp,
            error,
        });
    }
    (records, results)
}

impl From<PartitionChangeRecord> for MetadataRecord {
    fn from(r: PartitionChangeRecord) -> Self {
        MetadataRecord::PartitionChange(r)
    }
}

fn elect_one(
    topic: &TopicImage,
    tp: &TopicPartition,
    p: &PartitionImage,
    kind: ElectionType,
    eligible: &dyn Fn(NodeId) -> bool,
    min_isr: usize,
) -> Result<PartitionChangeRecord, ApiError> {
    let change = PartitionChange::new(topic.id, tp.partition, p, eligible, min_isr);
    match kind {
        ElectionType::Preferred => {
            let preferred = p.replicas.first().copied();
            if p.leader.is_some() && p.leader == preferred {
                return Err(ApiError::from_code(ErrorCode::ElectionNotNeeded));
            }
            let record = preferred
                .filter(|r| p.isr.contains(r) && eligible(*r))
                .and_then(|_| change.election(Election::Preferred).build());
            record.ok_or_else(|| {
                ApiError::new(
                    ErrorCode::PreferredLeaderNotAvailable,
                    format!(
                        "Failed to elect leader for partition {}-{} under strategy PREFERRED",
                        tp.topic, tp.partition
                    ),
                )
            })
        }
        ElectionType::Unclean => {
            if p.leader.is_some() {
                return Err(ApiError::from_code(ErrorCode::ElectionNotNeeded));
            }
            // ElectLeaders(UNCLEAN) is the operator's explicit consent, as in Kafka.
            change
                .election(Election::Unclean)
                .build()
                .filter(|r| r.leader >= 0)
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::EligibleLeadersNotAvailable,
                        format!(
                            "Failed to elect leader for partition {}-{} under strategy UNCLEAN",
                            tp.topic, tp.partition
                        ),
                    )
                })
        }
    }
}

/// The periodic rebalance (`auto.leader.rebalance.enable`): for every broker that
/// leads fewer of the partitions it is preferred for than it should by more than
/// `imbalance_percentage` (`leader.imbalance.per.broker.percentage`), a preferred
/// election for those of its partitions where it is in the ISR and may lead. The
/// threshold keeps a single moved leader among many from causing a round of
/// leader changes (every one makes clients refresh metadata); Kafka's KRaft
/// controller parses the setting but ignores it, Weir applies it per broker as
/// the setting describes (0 rebalances any imbalance).
pub(crate) fn rebalance(
    image: &MetadataImage,
    imbalance_percentage: u32,
    min_isr_default: i32,
) -> Vec<MetadataRecord> {
    // Per preferred broker: its partitions, and those led by someone else.
    let mut preferred: BTreeMap<NodeId, (usize, Vec<TopicPartition>)> = BTreeMap::new();
    for t in image.topics() {
        for (i, p) in t.partitions.iter().enumerate() {
            let Some(first) = p.replicas.first().copied() else {
                continue;
            };
            let entry = preferred.entry(first).or_default();
            entry.0 += 1;
            if p.leader != Some(first) {
                entry.1.push(TopicPartition {
                    topic: t.name.clone(),
                    partition: index(i),
                });
            }
        }
    }
    let over: Vec<TopicPartition> = preferred
        .into_values()
        .filter(|(total, led_elsewhere)| {
            // More than the percentage, in integers: led_elsewhere / total > pct / 100.
            led_elsewhere.len() * 100 > *total * imbalance_percentage as usize
        })
        .flat_map(|(_, led_elsewhere)| led_elsewhere)
        .collect();
    if over.is_empty() {
        return Vec::new();
    }
    let (records, _) = elect_leaders(image, ElectionType::Preferred, Some(&over), min_isr_default);
    records
}

/// The unclean elections a topic allows for its leaderless partitions (run on the
/// tick, as Kafka does for topics with `unclean.leader.election.enable`).
pub(crate) fn unclean_elections(
    image: &MetadataImage,
    min_isr_default: i32,
) -> Vec<MetadataRecord> {
    let eligible = |n: NodeId| image.is_usable(n);
    let mut out = Vec::new();
    for t in image.topics().filter(|t| unclean_allowed(t)) {
        let min_isr = effective_min_isr(t, min_isr_default);
        for (i, p) in t.partitions.iter().enumerate() {
            if p.leader.is_none() {
                let change = PartitionChange::new(t.id, index(i), p, &eligible, min_isr)
                    .election(default_election(t));
                out.extend(change.build().filter(|r| r.leader >= 0).map(Into::into));
            }
        }
    }
    out
}

/// AlterPartitionReassignments: records and a result per partition.
pub(crate) fn alter_reassignments(
    image: &MetadataImage,
    reqs: &[Reassignment],
    min_isr_default: i32,
) -> (Vec<MetadataRecord>, Vec<PartitionResult>) {
    let eligible = |n: NodeId| image.is_usable(n);
    let mut records = Vec::new();
    let mut results = Vec::new();
    let mut seen = BTreeSet::new();
    for req in reqs {
        let tp = &req.partition;
        let outcome = if !seen.insert(tp.clone()) {
            Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "Duplicate partition.",
            ))
        } else {
            image
                .topic(&tp.topic)
                .and_then(|t| t.partition(tp.partition).map(|p| (t, p)))
                .ok_or(ApiError::from_code(ErrorCode::UnknownTopicOrPartition))
                .and_then(|(t, p)| {
                    let min_isr = effective_min_isr(t, min_isr_default);
                    let change = PartitionChange::new(t.id, tp.partition, p, &eligible, min_isr)
                        .election(default_election(t));
                    match &req.replicas {
                        Some(target) => reassign(image, p, target, change),
                        None => cancel(p, change),
                    }
                })
        };
        let error = match outcome {
            Ok(record) => {
                records.extend(record.map(Into::into));
                ApiError::NONE
            }
            Err(e) => e,
        };
        results.push(PartitionResult {
            partition: tp.clone(),
            error,
        });
    }
    (records, results)
}

fn reassign(
    image: &MetadataImage,
    p: &PartitionImage,
    target: &[i32],
    change: PartitionChange<'_>,
) -> Result<Option<PartitionChangeRecord>, ApiError> {
    let bad = |m: String| ApiError::new(ErrorCode::InvalidReplicaAssignment, m);
    let target = nodes(target);
    if target.is_empty() {
        return Err(bad("The replica list is empty.".into()));
    }
    let distinct: BTreeSet<NodeId> = target.iter().copied().collect();
    if distinct.len() != target.len() {
        return Err(bad("The replica list contains duplicates.".into()));
    }
    if let Some(unknown) = target.iter().find(|r| image.broker(**r).is_none()) {
        return Err(bad(format!("Broker {unknown} is not registered.")));
    }
    // A new reassignment starts from the replicas of the original assignment.
    let original: Vec<NodeId> = p
        .replicas
        .iter()
        .copied()
        .filter(|r| !p.adding_replicas.contains(r))
        .collect();
    let adding: Vec<NodeId> = target
        .iter()
        .copied()
        .filter(|r| !original.contains(r))
        .collect();
    let removing: Vec<NodeId> = original
        .iter()
        .copied()
        .filter(|r| !target.contains(r))
        .collect();
    let done = target.iter().all(|r| p.isr.contains(r));
    let change = if done {
        // Every target replica is in sync already: complete at once.
        change.replicas(target, Vec::new(), Vec::new())
    } else {
        let mut replicas = target.clone();
        replicas.extend(removing.iter().copied());
        change.replicas(replicas, adding, removing)
    };
    Ok(change.build())
}

fn cancel(
    p: &PartitionImage,
    change: PartitionChange<'_>,
) -> Result<Option<PartitionChangeRecord>, ApiError> {
    if p.adding_replicas.is_empty() && p.removing_replicas.is_empty() {
        return Err(ApiError::from_code(ErrorCode::NoReassignmentInProgress));
    }
    let original: Vec<NodeId> = p
        .replicas
        .iter()
        .copied()
        .filter(|r| !p.adding_replicas.contains(r))
        .collect();
    Ok(change.replicas(original, Vec::new(), Vec::new()).build())
}

/// ListPartitionReassignments.
pub(crate) fn list_reassignments(
    image: &MetadataImage,
    partitions: Option<&[TopicPartition]>,
) -> Vec<OngoingReassignment> {
    resolve(image, partitions)
        .into_iter()
        .filter_map(|(tp, found)| {
            let (_, p) = found.ok()?;
            (!p.adding_replicas.is_empty() || !p.removing_replicas.is_empty()).then(|| {
                OngoingReassignment {
                    partition: tp,
                    replicas: ids(&p.replicas),
                    adding_replicas: ids(&p.adding_replicas),
                    removing_replicas: ids(&p.removing_replicas),
                }
            })
        })
        .collect()
}

/// AllocateProducerIds: the next block, and the record that hands it out.
pub(crate) fn allocate_producer_ids(
    image: &MetadataImage,
    broker_id: i32,
    broker_epoch: i64,
) -> Result<(MetadataRecord, ProducerIdBlock), ApiError> {
    check_epoch(image, NodeId(broker_id), broker_epoch)?;
    let first_id = image.next_producer_id();
    let next = first_id
        .checked_add(i64::from(PRODUCER_ID_BLOCK_SIZE))
        .ok_or(ApiError::new(
            ErrorCode::UnknownServerError,
            "Exhausted all producerIds.",
        ))?;
    let record = MetadataRecord::ProducerIds(ProducerIdsRecord {
        broker_id,
        broker_epoch,
        next_producer_id: next,
    });
    Ok((
        record,
        ProducerIdBlock {
            first_id,
            size: PRODUCER_ID_BLOCK_SIZE,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::tests::{broker, partition, replay_all, topic};

    /// Brokers 1 and 2; topic `many` with ten partitions preferring broker 1, the
    /// first `moved` of them led by broker 2.
    fn image_with_moved(moved: i32) -> MetadataImage {
        let mut records = vec![broker(1, 9092), broker(2, 9093), topic("many", 1)];
        records.extend((0..10).map(|p| partition(1, p, &[1, 2], if p < moved { 2 } else { 1 })));
        replay_all(MetadataImage::empty("c"), &records).expect("replay")
    }

    fn leaders_elected(records: &[MetadataRecord]) -> Vec<(i32, i32)> {
        records
            .iter()
            .filter_map(|r| match r {
                MetadataRecord::PartitionChange(c) => Some((c.partition_id, c.leader)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn rebalance_waits_until_a_broker_is_imbalanced_past_the_percentage() {
        // One of ten led elsewhere is 10%: not more than 10%.
        assert!(rebalance(&image_with_moved(1), 10, 1).is_empty());
        // Two of ten is: both go back to broker 1.
        assert_eq!(
            leaders_elected(&rebalance(&image_with_moved(2), 10, 1)),
            vec![(0, 1), (1, 1)]
        );
        // 0% rebalances any imbalance; none means nothing to do.
        assert_eq!(
            leaders_elected(&rebalance(&image_with_moved(1), 0, 1)),
            vec![(0, 1)]
        );
        assert!(rebalance(&image_with_moved(0), 0, 1).is_empty());
    }
}
