//! Errors of the metadata crate.
//!
//! These are failures of the machinery (disk, a corrupt log, a record that cannot be
//! replayed, a stopped controller). Outcomes a client caused — a bad topic name, an
//! existing topic — are not errors here: the controller reports them per topic as an
//! [`ApiError`](crate::controller::ApiError) carrying a Kafka error code.

use std::path::PathBuf;

use thiserror::Error;
use weir_protocol::{records::RecordsError, DecodeError, EncodeError};

/// Shorthand for results of this crate.
pub type Result<T, E = MetadataError> = std::result::Result<T, E>;

/// Why a metadata operation failed.
#[derive(Debug, Error)]
pub enum MetadataError {
    /// A file or directory operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done ("open", "fsync", ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A metadata record frame could not be decoded.
    #[error("metadata record at offset {offset}: {source}")]
    Decode {
        /// Offset of the record in the metadata log (-1 when not from the log).
        offset: i64,
        /// What was wrong.
        #[source]
        source: DecodeError,
    },
    /// A metadata record frame is not one this build reads.
    #[error("metadata record at offset {offset}: {reason}")]
    Frame {
        /// Offset of the record in the metadata log (-1 when not from the log).
        offset: i64,
        /// What was wrong (unknown frame version, record type or version).
        reason: String,
    },
    /// A record could not be encoded (a bug: a value outside what the format holds).
    #[error("encoding a metadata record: {0}")]
    Encode(#[from] EncodeError),
    /// The partition log under the metadata log failed.
    #[error("metadata log: {0}")]
    Log(#[from] weir_log::LogError),
    /// A record batch could not be built or read.
    #[error("metadata record batch: {0}")]
    Records(#[from] RecordsError),
    /// A record does not apply to the image it follows (a bug in whoever wrote it,
    /// or a log that was edited).
    #[error("cannot replay metadata record at offset {offset}: {reason}")]
    Replay {
        /// Offset of the record.
        offset: i64,
        /// What did not fit.
        reason: String,
    },
    /// The metadata log holds something recovery cannot repair by truncating a tail.
    #[error("metadata log {}: {reason}", path.display())]
    Corrupt {
        /// The log file.
        path: PathBuf,
        /// What was found.
        reason: String,
    },
    /// `meta.properties` is missing, unreadable, or names another node or cluster.
    #[error("{}: {reason}", path.display())]
    MetaProperties {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A previous write failed, so the log's state on disk is unknown; nothing more
    /// is appended until the process restarts and recovers the log.
    #[error("the metadata log failed earlier and accepts no more writes")]
    LogFailed,
    /// One change held more records than one batch may
    /// ([`MAX_RECORDS_PER_BATCH`](crate::store::MAX_RECORDS_PER_BATCH)).
    #[error("a metadata change of {0} records is larger than one batch may be")]
    TooManyRecords(usize),
    /// The controller's configuration is invalid.
    #[error("controller config: {0}")]
    Config(String),
    /// The controller thread has stopped (shut down, or failed).
    #[error("the controller is not running")]
    ControllerStopped,
    /// This node is not the active controller (Kafka's NOT_CONTROLLER); `leader` is
    /// the active one when known, for the caller to forward to.
    #[error("this node is not the active controller (active: {leader:?})")]
    NotController {
        /// The active controller, if known.
        leader: Option<weir_types::NodeId>,
    },
    /// A request to another node's controller failed in transit (connection, timeout,
    /// a reply that could not be decoded).
    #[error("controller request to node {node}: {reason}")]
    Transport {
        /// The node called.
        node: weir_types::NodeId,
        /// What went wrong.
        reason: String,
    },
    /// The active controller on another node failed the forwarded request (its
    /// disk, say); not retried.
    #[error("controller on node {node} failed the request: {reason}")]
    Remote {
        /// The node that failed it.
        node: weir_types::NodeId,
        /// Its error, as text.
        reason: String,
    },
}

impl MetadataError {
    /// The Kafka error code a request that failed this way answers: NOT_CONTROLLER
    /// when no active controller could take it (retriable: clients look for the
    /// controller again), REQUEST_TIMED_OUT when forwarding to it failed in transit,
    /// UNKNOWN_SERVER_ERROR for anything else.
    pub fn error_code(&self) -> weir_types::ErrorCode {
        use weir_types::ErrorCode;
        match self {
            MetadataError::NotController { .. } | MetadataError::ControllerStopped => {
                ErrorCode::NotController
            }
            MetadataError::Transport { .. } => ErrorCode::RequestTimedOut,
            _ => ErrorCode::UnknownServerError,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        MetadataError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
