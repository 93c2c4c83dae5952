//! The api layer: turns a request frame into a response (placeholder).
//!
//! This is where the request path goes after the net layer: decode the request
//! header and body with `weir-protocol`, dispatch on the api key to one handler per
//! Kafka API (`produce.rs`, `fetch.rs`, `metadata.rs`, ... beside this file), map
//! internal errors to Kafka error codes, and encode the response as chunks. [`Api`]
//! is the [`Service`] the broker plugs into its listeners.
//!
//! Until the handlers exist, [`Api`] answers nothing: it closes every connection
//! with the log line "no api layer yet". That is a temporary stand-in, not a
//! behaviour to keep.

use std::sync::Arc;

use bytes::Bytes;

use crate::config::BrokerConfig;
use crate::net::{CloseConnection, ConnectionContext, Reply, Service};
use crate::Endpoint;

/// The broker's [`Service`]: every request of every connection comes through here.
#[derive(Debug)]
pub struct Api {
    /// Broker settings the handlers read (`auto.create.topics.enable`, ...).
    config: Arc<BrokerConfig>,
    /// The addresses Metadata hands to clients, one per advertised listener.
    endpoints: Vec<Endpoint>,
}

impl Api {
    /// Builds the api layer once the listeners are bound, so the advertised
    /// `endpoints` carry real ports.
    pub fn new(config: Arc<BrokerConfig>, endpoints: Vec<Endpoint>) -> Self {
        Self { config, endpoints }
    }

    /// The broker settings.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// The advertised endpoints.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }
}

impl Service for Api {
    async fn call(
        &self,
        _ctx: &ConnectionContext,
        _frame: Bytes,
    ) -> Result<Reply, CloseConnection> {
        // Placeholder until the handlers land: the net layer logs this reason with
        // the peer's address and closes the connection.
        Err(CloseConnection::new("no api layer yet"))
    }
}
