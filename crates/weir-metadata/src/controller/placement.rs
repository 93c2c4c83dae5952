//! Replica placement for new partitions: Kafka's `StripedReplicaPlacer` in spirit.
//!
//! Replicas go to registered, unfenced brokers that are not shutting down. When
//! brokers have racks, the broker list is first interleaved by rack (one broker of
//! each rack in turn), so consecutive brokers — and so the replicas of one
//! partition — are on different racks whenever there are enough racks. Partitions
//! are striped over that list from a start that varies with `seed` (the topic's
//! position), so the first replicas (the preferred leaders) of different topics do
//! not all land on the same broker.

use std::collections::BTreeMap;

use weir_types::{ErrorCode, NodeId};

use super::types::ApiError;
use crate::image::MetadataImage;

/// (replicas, isr) per partition.
pub(crate) type Placement = Vec<(Vec<NodeId>, Vec<NodeId>)>;

/// The usable brokers, interleaved by rack (brokers without a rack form one group).
fn rack_alternated(image: &MetadataImage) -> Vec<NodeId> {
    let mut by_rack: BTreeMap<Option<&str>, Vec<NodeId>> = BTreeMap::new();
    for b in image.usable_brokers() {
        by_rack.entry(b.rack.as_deref()).or_default().push(b.id);
    }
    let longest = by_rack.values().map(Vec::len).max().unwrap_or(0);
    let mut out = Vec::new();
    for i in 0..longest {
        for brokers in by_rack.values() {
            if let Some(b) = brokers.get(i) {
                out.push(*b);
            }
        }
    }
    out
}

/// Replicas for partitions `start..start + count` with `rf` replicas each; see the
/// module docs.
pub(crate) fn place(
    image: &MetadataImage,
    seed: usize,
    start: i32,
    count: i32,
    rf: i16,
) -> Result<Placement, ApiError> {
    let brokers = rack_alternated(image);
    let unable = |why: String| {
        ApiError::new(
            ErrorCode::InvalidReplicationFactor,
            format!("Unable to replicate the partition {rf} time(s): {why}"),
        )
    };
    if brokers.is_empty() {
        return Err(unable("All brokers are currently fenced.".into()));
    }
    let rf = usize::try_from(rf).unwrap_or(0);
    if rf > brokers.len() {
        return Err(unable(format!(
            "The target replication factor of {rf} cannot be reached because only {} broker(s) are registered.",
            brokers.len()
        )));
    }
    let n = brokers.len();
    Ok((start..start.saturating_add(count))
        .map(|p| {
            let first = (seed + usize::try_from(p).unwrap_or(0)) % n;
            let replicas: Vec<NodeId> = (0..rf).map(|i| brokers[(first + i) % n]).collect();
            (replicas.clone(), replicas)
        })
        .collect())
}
