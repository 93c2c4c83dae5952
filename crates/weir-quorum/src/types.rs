//! The openraft type configuration and what an entry carries.
//!
//! Everything openraft-specific about the data is here: the application data of a
//! log entry is one controller change ([`ControllerChange`]: the encoded metadata
//! records of one `MetadataJournal::append`), and the response of applying it is
//! [`ApplyOutcome`]. Node ids are openraft's `u64`; Weir's [`NodeId`] is an `i32`,
//! converted at the edge by [`raft_id`] / [`weir_id`].

use std::io::Cursor;

use serde::{Deserialize, Serialize};
use weir_types::NodeId;

openraft::declare_raft_types!(
    /// The quorum's openraft types.
    pub(crate) TypeConfig:
        D = ControllerChange,
        R = ApplyOutcome,
        NodeId = u64,
        Node = openraft::BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
);

/// The openraft node handle of this crate.
pub(crate) type Raft = openraft::Raft<TypeConfig>;
/// A log entry.
pub(crate) type Entry = openraft::Entry<TypeConfig>;
/// A log id (term, leader, index).
pub(crate) type LogId = openraft::LogId<u64>;
/// A vote.
pub(crate) type Vote = openraft::Vote<u64>;
/// A storage error as openraft wants it.
pub(crate) type StorageError = openraft::StorageError<u64>;
/// A stored membership.
pub(crate) type StoredMembership = openraft::StoredMembership<u64, openraft::BasicNode>;
/// Snapshot metadata.
pub(crate) type SnapshotMeta = openraft::SnapshotMeta<u64, openraft::BasicNode>;

/// One controller change: the records of one `MetadataJournal::append`, each encoded
/// with `MetadataRecord::encode`, applied atomically at the entry's log index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ControllerChange {
    /// The encoded records, in order.
    pub(crate) records: Vec<Vec<u8>>,
    /// The leader's wall clock when it appended the change, in ms since the epoch;
    /// becomes the image's `last_log_time_ms`.
    pub(crate) time_ms: i64,
}

/// What applying an entry did, returned to the writer by `client_write`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ApplyOutcome {
    /// `None` when the change was applied; otherwise why it was skipped (a record
    /// that does not decode or replay: a bug in the writer, logged loudly on every
    /// node).
    pub(crate) error: Option<String>,
}

/// Weir's node id as openraft's.
pub(crate) fn raft_id(id: NodeId) -> u64 {
    // Config validation rejects negative ids, so this never clamps.
    u64::try_from(id.get()).unwrap_or(0)
}

/// openraft's node id as Weir's (ids come from the validated voter set).
pub(crate) fn weir_id(id: u64) -> NodeId {
    NodeId(i32::try_from(id).unwrap_or(i32::MAX))
}

/// A storage error for openraft from any error value, reading or writing `subject`.
pub(crate) fn storage_error(
    subject: openraft::ErrorSubject<u64>,
    verb: openraft::ErrorVerb,
    e: impl std::fmt::Display,
) -> StorageError {
    let source = openraft::AnyError::error(e.to_string());
    openraft::StorageIOError::new(subject, verb, source).into()
}
