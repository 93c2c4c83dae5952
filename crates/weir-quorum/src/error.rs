//! Errors of the quorum crate.
//!
//! [`QuorumError`] is what starting or running a quorum node can fail with. Once the
//! node runs, the controller sees failures through the weir-metadata traits instead
//! ([`MetadataError`](weir_metadata::MetadataError): `NotController`, `Transport`,
//! `ControllerStopped`), so this enum stays about the node itself.

use std::path::PathBuf;

use thiserror::Error;

/// Why a quorum operation failed.
#[derive(Debug, Error)]
pub enum QuorumError {
    /// The configuration is invalid; the message says what to fix.
    #[error("quorum config: {0}")]
    Config(String),
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
    /// The Raft log on disk (a weir-log partition log) failed.
    #[error("raft log: {0}")]
    Log(#[from] weir_log::LogError),
    /// A state file, snapshot or log entry on disk is not one this build wrote.
    #[error("{}: {reason}", path.display())]
    Corrupt {
        /// The file or directory.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The data directory belongs to another node or cluster.
    #[error("{}: {reason}", path.display())]
    Identity {
        /// The data directory.
        path: PathBuf,
        /// What does not match.
        reason: String,
    },
    /// Weir-metadata failed (a snapshot's records, `meta.properties`).
    #[error(transparent)]
    Metadata(#[from] weir_metadata::MetadataError),
    /// openraft refused to start or failed.
    #[error("raft: {0}")]
    Raft(String),
}

impl QuorumError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        QuorumError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        QuorumError::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
