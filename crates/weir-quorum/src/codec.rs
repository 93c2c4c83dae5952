//! How Raft entries are stored: one Kafka RecordBatch per entry, as KRaft stores its
//! log.
//!
//! An entry at index `i` of term `t` is a RecordBatch v2 with baseOffset `i`,
//! partitionLeaderEpoch `t` and exactly one record, whose value is a postcard
//! [`StoredEntry`] (the leader that created the entry, and the payload). One record
//! per entry keeps "Raft index = log offset" exact, so the weir-log partition log
//! under it does the offsets, recovery of a torn tail, truncation and purging.
//!
//! The stored types are this crate's own, not openraft's serde forms, so the bytes
//! on disk (and in snapshots) do not change when openraft does.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use weir_protocol::records::{BatchBuilder, BatchView};

use crate::types::{ControllerChange, Entry, LogId, TypeConfig};

/// Cap on a stored batch's decompressed size (we never compress them).
const MAX_DECOMPRESSED: usize = 64 << 20;

/// A log id as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredLogId {
    /// The term.
    pub(crate) term: u64,
    /// The leader that created the entry.
    pub(crate) node: u64,
    /// The index.
    pub(crate) index: u64,
}

impl From<&LogId> for StoredLogId {
    fn from(id: &LogId) -> Self {
        StoredLogId {
            term: id.leader_id.term,
            node: id.leader_id.node_id,
            index: id.index,
        }
    }
}

impl From<StoredLogId> for LogId {
    fn from(id: StoredLogId) -> Self {
        LogId::new(openraft::CommittedLeaderId::new(id.term, id.node), id.index)
    }
}

/// A membership as stored: the voter sets (two during a joint change) and each
/// node's address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredMembership {
    /// Voter id sets.
    pub(crate) configs: Vec<BTreeSet<u64>>,
    /// Node id -> controller listener address.
    pub(crate) nodes: BTreeMap<u64, String>,
}

impl From<&openraft::Membership<u64, openraft::BasicNode>> for StoredMembership {
    fn from(m: &openraft::Membership<u64, openraft::BasicNode>) -> Self {
        StoredMembership {
            configs: m.get_joint_config().clone(),
            nodes: m.nodes().map(|(id, n)| (*id, n.addr.clone())).collect(),
        }
    }
}

impl From<StoredMembership> for openraft::Membership<u64, openraft::BasicNode> {
    fn from(m: StoredMembership) -> Self {
        let nodes: BTreeMap<u64, openraft::BasicNode> = m
            .nodes
            .into_iter()
            .map(|(id, addr)| (id, openraft::BasicNode { addr }))
            .collect();
        openraft::Membership::new(m.configs, nodes)
    }
}

/// An entry's payload as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum StoredPayload {
    /// The empty entry a new leader commits.
    Blank,
    /// A controller change.
    Change(ControllerChange),
    /// A membership change.
    Membership(StoredMembership),
}

/// The value of the one record of an entry's batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredEntry {
    /// The leader that created the entry (the term is the batch's epoch).
    pub(crate) leader: u64,
    /// The payload.
    pub(crate) payload: StoredPayload,
}

/// The batch of `entry`, stamped `now_ms` unless it is a change with its own time.
pub(crate) fn encode_entry(entry: &Entry, now_ms: i64) -> Result<Bytes, String> {
    let term = entry.log_id.leader_id.term;
    let epoch = i32::try_from(term).map_err(|_| format!("term {term} does not fit an epoch"))?;
    let index = i64::try_from(entry.log_id.index)
        .map_err(|_| format!("index {} does not fit an offset", entry.log_id.index))?;
    let (payload, time_ms) = match &entry.payload {
        openraft::EntryPayload::Blank => (StoredPayload::Blank, now_ms),
        openraft::EntryPayload::Normal(c) => (StoredPayload::Change(c.clone()), c.time_ms),
        openraft::EntryPayload::Membership(m) => (StoredPayload::Membership(m.into()), now_ms),
    };
    let value = postcard::to_allocvec(&StoredEntry {
        leader: entry.log_id.leader_id.node_id,
        payload,
    })
    .map_err(|e| format!("encode entry {}: {e}", entry.log_id))?;
    let mut builder = BatchBuilder::new()
        .base_offset(index)
        .partition_leader_epoch(epoch);
    builder
        .append(time_ms, None, Some(&value), &[])
        .map_err(|e| e.to_string())?;
    builder.build().map_err(|e| e.to_string())
}

/// The entry stored in `batch` (validated by the log: framing and CRC).
pub(crate) fn decode_entry(batch: &BatchView) -> Result<Entry, String> {
    let at = batch.base_offset();
    if batch.record_count() != 1 || batch.is_control() {
        return Err(format!(
            "batch at {at} is not a quorum entry ({} records, control {})",
            batch.record_count(),
            batch.is_control()
        ));
    }
    let index = u64::try_from(at).map_err(|_| format!("negative offset {at}"))?;
    let term = u64::try_from(batch.partition_leader_epoch())
        .map_err(|_| format!("entry {at} has a negative epoch"))?;
    let mut records = batch
        .records(MAX_DECOMPRESSED)
        .map_err(|e| format!("entry {at}: {e}"))?;
    let record = records
        .next()
        .ok_or_else(|| format!("entry {at} has no record"))?
        .map_err(|e| format!("entry {at}: {e}"))?;
    let value = record
        .value
        .ok_or_else(|| format!("entry {at} has a null value"))?;
    let stored: StoredEntry =
        postcard::from_bytes(&value).map_err(|e| format!("entry {at}: {e}"))?;
    let payload = match stored.payload {
        StoredPayload::Blank => openraft::EntryPayload::<TypeConfig>::Blank,
        StoredPayload::Change(c) => openraft::EntryPayload::Normal(c),
        StoredPayload::Membership(m) => openraft::EntryPayload::Membership(m.into()),
    };
    Ok(Entry {
        log_id: StoredLogId {
            term,
            node: stored.leader,
            index,
        }
        .into(),
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(term: u64, index: u64, payload: openraft::EntryPayload<TypeConfig>) -> Entry {
        Entry {
            log_id: StoredLogId {
                term,
                node: 2,
                index,
            }
            .into(),
            payload,
        }
    }

    #[test]
    fn every_payload_round_trips_through_a_batch() {
        let nodes: BTreeMap<u64, openraft::BasicNode> = [(1, "a:1"), (2, "b:2")]
            .into_iter()
            .map(|(id, a)| (id, openraft::BasicNode::new(a)))
            .collect();
        let membership = openraft::Membership::new(vec![[1u64, 2].into_iter().collect()], nodes);
        for e in [
            entry(1, 0, openraft::EntryPayload::Membership(membership)),
            entry(3, 7, openraft::EntryPayload::Blank),
            entry(
                4,
                8,
                openraft::EntryPayload::Normal(ControllerChange {
                    records: vec![vec![1, 2, 3], vec![]],
                    time_ms: 1234,
                }),
            ),
        ] {
            let bytes = encode_entry(&e, 99).unwrap();
            let view = BatchView::parse(bytes).unwrap();
            assert_eq!(view.base_offset() as u64, e.log_id.index);
            assert_eq!(
                view.partition_leader_epoch() as u64,
                e.log_id.leader_id.term
            );
            let back = decode_entry(&view).unwrap();
            assert_eq!(back.log_id, e.log_id);
            assert_eq!(back.payload, e.payload);
        }
    }

    #[test]
    fn a_batch_that_is_not_an_entry_is_an_error() {
        let mut b = BatchBuilder::new().base_offset(3).partition_leader_epoch(1);
        b.append(0, None, Some(b"garbage"), &[]).unwrap();
        let view = BatchView::parse(b.build().unwrap()).unwrap();
        assert!(decode_entry(&view).is_err());
        let mut b = BatchBuilder::new().base_offset(3).partition_leader_epoch(1);
        b.append(0, None, Some(b"x"), &[]).unwrap();
        b.append(0, None, Some(b"y"), &[]).unwrap();
        let view = BatchView::parse(b.build().unwrap()).unwrap();
        assert!(decode_entry(&view).unwrap_err().contains("2 records"));
    }
}
