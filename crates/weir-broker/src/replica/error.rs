//! The replica layer's errors, and the one function that turns them into Kafka codes.
//!
//! Handlers never match on variants to build a response: they call
//! [`ReplicaError::error_code`] for the code and `to_string()` for the optional error
//! message (Produce v8+, DeleteRecords). Log errors keep their own mapping
//! ([`LogError::error_code`]); this enum adds what only the replica layer knows:
//! which partitions this broker hosts, who leads them, in which leader epoch, and
//! whether a produce waited too long for its fsync.

use std::io;
use std::path::PathBuf;

use weir_log::LogError;
use weir_types::{ErrorCode, LeaderEpoch};

/// Why a replica-layer operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicaError {
    /// This broker hosts no such topic partition (never created, deleted, or not
    /// assigned here).
    #[error("this broker does not host partition {partition} of topic {topic:?}")]
    UnknownTopicOrPartition {
        /// The topic name as requested.
        topic: String,
        /// The partition as requested.
        partition: i32,
    },
    /// The partition is hosted here but led elsewhere (or by no one right now).
    #[error("this broker is not the leader of {topic}-{partition}")]
    NotLeader {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// The client's leader epoch is older than ours: its metadata is stale.
    #[error("leader epoch {requested} is older than the current leader epoch {current}")]
    FencedLeaderEpoch {
        /// The epoch the client sent.
        requested: LeaderEpoch,
        /// This broker's epoch for the partition.
        current: LeaderEpoch,
    },
    /// The client's leader epoch is newer than ours: our metadata is behind.
    #[error("leader epoch {requested} is newer than the current leader epoch {current}")]
    UnknownLeaderEpoch {
        /// The epoch the client sent.
        requested: LeaderEpoch,
        /// This broker's epoch for the partition.
        current: LeaderEpoch,
    },
    /// acks=all while the ISR is smaller than `min.insync.replicas`.
    #[error("the in-sync replica set has {isr} members, fewer than min.insync.replicas {min}")]
    NotEnoughReplicas {
        /// In-sync replicas now.
        isr: usize,
        /// The topic's `min.insync.replicas`.
        min: i32,
    },
    /// An acks=all produce was written and reached the high watermark, but the ISR
    /// shrank below `min.insync.replicas` while it waited.
    #[error(
        "the append is replicated to {isr} in-sync replicas, fewer than min.insync.replicas {min}"
    )]
    NotEnoughReplicasAfterAppend {
        /// In-sync replicas now.
        isr: usize,
        /// The topic's `min.insync.replicas`.
        min: i32,
    },
    /// KIP-207: this broker became leader recently and its high watermark has not
    /// reached the start of its epoch yet, so the offset a consumer would be told
    /// could be lower than one an earlier leader already gave out.
    #[error(
        "the high watermark {high_watermark} of {topic}-{partition} is still behind the \
         start {epoch_start} of this leader's epoch; retry shortly"
    )]
    OffsetNotAvailable {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The high watermark now.
        high_watermark: weir_types::Offset,
        /// Where this leader's epoch starts.
        epoch_start: weir_types::Offset,
    },
    /// A follower could not reach its leader (the replica fetcher backs off).
    #[error("cannot reach leader {leader}: {reason}")]
    LeaderUnreachable {
        /// The leader.
        leader: weir_types::NodeId,
        /// What failed.
        reason: String,
    },
    /// An acks=all produce was written but not made durable within its timeout.
    #[error("the append was written but not fsynced before the request's timeout")]
    RequestTimedOut,
    /// The partition's log is offline after a storage error (or failed to open).
    #[error("the log of {topic}-{partition} is offline after a storage error")]
    Offline {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// The log directory holding the partition went offline after a storage error
    /// (see `log_dir.rs`); it stays offline until the broker restarts.
    #[error("{topic}-{partition} is offline: log directory {} failed ({cause}); free space or fix the disk, then restart the broker", dir.display())]
    LogDirOffline {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The `log.dirs` entry.
        dir: PathBuf,
        /// The first error in that directory.
        cause: String,
    },
    /// The partition stopped being served (topic deleted, broker shutting down) while
    /// the request waited on it.
    #[error("{topic}-{partition} stopped being served while the request waited")]
    Stopped {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// A log operation failed; the log's own mapping gives the code.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A data-directory operation outside a log failed (scanning, renaming,
    /// `partition.metadata`).
    #[error("I/O error while trying to {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A blocking disk task could not finish (it panicked, or the runtime is
    /// shutting down).
    #[error("a disk task did not complete: {0}")]
    TaskFailed(String),
}

impl ReplicaError {
    /// The Kafka error code a client should see. The one mapping handlers use.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            ReplicaError::UnknownTopicOrPartition { .. } => ErrorCode::UnknownTopicOrPartition,
            ReplicaError::NotLeader { .. } | ReplicaError::Stopped { .. } => {
                ErrorCode::NotLeaderOrFollower
            }
            ReplicaError::FencedLeaderEpoch { .. } => ErrorCode::FencedLeaderEpoch,
            ReplicaError::UnknownLeaderEpoch { .. } => ErrorCode::UnknownLeaderEpoch,
            ReplicaError::NotEnoughReplicas { .. } => ErrorCode::NotEnoughReplicas,
            ReplicaError::NotEnoughReplicasAfterAppend { .. } => {
                ErrorCode::NotEnoughReplicasAfterAppend
            }
            ReplicaError::OffsetNotAvailable { .. } => ErrorCode::OffsetNotAvailable,
            ReplicaError::LeaderUnreachable { .. } => ErrorCode::NetworkException,
            ReplicaError::RequestTimedOut => ErrorCode::RequestTimedOut,
            ReplicaError::Offline { .. }
            | ReplicaError::LogDirOffline { .. }
            | ReplicaError::Io { .. }
            | ReplicaError::TaskFailed(_) => ErrorCode::KafkaStorageError,
            ReplicaError::Log(e) => e.error_code(),
        }
    }

    /// Whether this is a failure of the storage (which takes the log directory
    /// offline) rather than of the request.
    pub fn is_storage_error(&self) -> bool {
        match self {
            ReplicaError::Log(e) => e.is_storage_error(),
            ReplicaError::Io { .. }
            | ReplicaError::Offline { .. }
            | ReplicaError::LogDirOffline { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        ReplicaError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// `Result` with [`ReplicaError`].
pub(crate) type Result<T, E = ReplicaError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_kafkas() {
        let cases = [
            (
                ReplicaError::UnknownTopicOrPartition {
                    topic: "t".into(),
                    partition: 0,
                },
                ErrorCode::UnknownTopicOrPartition,
            ),
            (
                ReplicaError::NotLeader {
                    topic: "t".into(),
                    partition: 0,
                },
                ErrorCode::NotLeaderOrFollower,
            ),
            (
                ReplicaError::FencedLeaderEpoch {
                    requested: LeaderEpoch(1),
                    current: LeaderEpoch(2),
                },
                ErrorCode::FencedLeaderEpoch,
            ),
            (
                ReplicaError::UnknownLeaderEpoch {
                    requested: LeaderEpoch(3),
                    current: LeaderEpoch(2),
                },
                ErrorCode::UnknownLeaderEpoch,
            ),
            (ReplicaError::RequestTimedOut, ErrorCode::RequestTimedOut),
            (
                ReplicaError::Offline {
                    topic: "t".into(),
                    partition: 0,
                },
                ErrorCode::KafkaStorageError,
            ),
            (
                ReplicaError::LogDirOffline {
                    topic: "t".into(),
                    partition: 0,
                    dir: "/data".into(),
                    cause: "No space left on device".into(),
                },
                ErrorCode::KafkaStorageError,
            ),
            (
                ReplicaError::Log(LogError::MessageTooLarge { size: 2, max: 1 }),
                ErrorCode::MessageTooLarge,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.error_code(), code, "{error}");
        }
    }
}
