//! The crate's error type.

use std::io;

use crate::config::ConfigError;

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
}
