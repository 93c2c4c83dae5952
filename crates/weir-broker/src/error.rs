//! The crate's error type.

use std::io;
use std::path::PathBuf;

use crate::config::ConfigError;
use crate::replica::ReplicaError;

/// Why a broker could not start or keep running.
///
/// Messages name what failed; the underlying cause is the error's `source`, so
/// `{:#}` (anyhow) prints the whole chain once.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listener's address could not be bound.
    #[error("cannot listen on {listener}")]
    Bind {
        /// The listener, as configured.
        listener: String,
        /// Why (address in use, permission denied, unknown host).
        source: io::Error,
    },
    /// A listener's accept loop panicked: a bug; the broker shut down its other
    /// listeners.
    #[error("a listener failed")]
    Listener(#[source] tokio::task::JoinError),
    /// The metadata log or the controller could not be opened.
    #[error("cannot start the controller")]
    Metadata(#[source] weir_metadata::MetadataError),
    /// The partition logs could not be opened, or not closed cleanly.
    #[error("partition storage failed")]
    Replica(#[source] ReplicaError),
    /// The producer id block file could not be read.
    #[error("cannot read the producer id block in {}", dir.display())]
    ProducerIds {
        /// The data directory.
        dir: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The controller quorum could not start (its log, its listener, its config).
    #[error("cannot start the controller quorum")]
    Quorum(#[source] weir_quorum::QuorumError),
    /// A node role this build cannot run.
    #[error("{0}")]
    Unsupported(String),
    /// A blocking startup task panicked or was cancelled.
    #[error("a startup task failed")]
    Startup(#[source] tokio::task::JoinError),
}
