//! The coordinator's errors, and the one mapping from them to Kafka error codes.
//!
//! Group protocol errors a client caused (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, ...)
//! are not errors of this type: the state machine answers them as Kafka does, inside
//! the response. This type is for the coordinator itself failing to serve: the
//! partition is not ours or not loaded yet, or the offsets topic refused a write.

use weir_protocol::records::RecordsError;
use weir_types::ErrorCode;

use crate::replica::ReplicaError;

/// Why a write to, or a read of, the offsets topic failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The replica layer refused or failed the operation.
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    /// A batch could not be built (a record too large for a batch).
    #[error("cannot build a record batch: {0}")]
    Records(#[from] RecordsError),
    /// The log is not available (test logs; a stopped broker).
    #[error("the offsets log is unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// The code the replica layer would answer a producer with.
    fn raw_code(&self) -> ErrorCode {
        match self {
            StoreError::Replica(e) => e.error_code(),
            StoreError::Records(_) => ErrorCode::UnknownServerError,
            StoreError::Unavailable(_) => ErrorCode::NotLeaderOrFollower,
        }
    }

    /// The code a group client sees for a failed write, as Kafka maps append errors
    /// of the coordinator: retriable storage trouble becomes COORDINATOR_NOT_AVAILABLE
    /// or NOT_COORDINATOR (the client rediscovers the coordinator and retries), a
    /// record that does not fit is UNKNOWN_SERVER_ERROR.
    pub fn error_code(&self) -> ErrorCode {
        match self.raw_code() {
            ErrorCode::UnknownTopicOrPartition
            | ErrorCode::NotEnoughReplicas
            | ErrorCode::RequestTimedOut => ErrorCode::CoordinatorNotAvailable,
            ErrorCode::NotLeaderOrFollower | ErrorCode::KafkaStorageError => {
                ErrorCode::NotCoordinator
            }
            ErrorCode::MessageTooLarge
            | ErrorCode::RecordListTooLarge
            | ErrorCode::InvalidFetchSize => ErrorCode::UnknownServerError,
            other => other,
        }
    }
}

/// Why the coordinator could not run an operation.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    /// The group's partition of the offsets topic is not led here (or not hosted at
    /// all yet): the client looks the coordinator up again.
    #[error("this broker is not the coordinator for partition {partition} of __consumer_offsets")]
    NotCoordinator {
        /// The offsets topic partition.
        partition: i32,
    },
    /// The partition is led here but its groups are still being read back.
    #[error("partition {partition} of __consumer_offsets is still loading")]
    LoadInProgress {
        /// The offsets topic partition.
        partition: i32,
    },
    /// Writing the operation's records failed; nothing the client asked for may be
    /// assumed done.
    #[error("writing to partition {partition} of __consumer_offsets failed")]
    Write {
        /// The offsets topic partition.
        partition: i32,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// The offsets topic does not exist and could not be created.
    #[error("cannot create __consumer_offsets: {0}")]
    TopicCreation(String),
    /// The broker is shutting down.
    #[error("the group coordinator is shutting down")]
    ShuttingDown,
}

impl CoordinatorError {
    /// The Kafka error code for this failure: the one mapping the handlers use.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            CoordinatorError::NotCoordinator { .. } | CoordinatorError::ShuttingDown => {
                ErrorCode::NotCoordinator
            }
            CoordinatorError::LoadInProgress { .. } => ErrorCode::CoordinatorLoadInProgress,
            CoordinatorError::Write { source, .. } => source.error_code(),
            CoordinatorError::TopicCreation(_) => ErrorCode::CoordinatorNotAvailable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_errors_map_as_kafka_maps_them() {
        let timed_out = StoreError::Replica(ReplicaError::RequestTimedOut);
        assert_eq!(timed_out.error_code(), ErrorCode::CoordinatorNotAvailable);
        let not_leader = StoreError::Replica(ReplicaError::NotLeader {
            topic: "__consumer_offsets".into(),
            partition: 1,
        });
        assert_eq!(not_leader.error_code(), ErrorCode::NotCoordinator);
        let load = CoordinatorError::LoadInProgress { partition: 3 };
        assert_eq!(load.error_code(), ErrorCode::CoordinatorLoadInProgress);
    }
}
