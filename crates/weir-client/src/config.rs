//! Settings shared by every client: where the cluster is, how connections behave,
//! how often metadata is refreshed. Names follow the Java client's (`client.id`,
//! `request.timeout.ms`, ...) so a Kafka user finds the knob they know; the producer,
//! consumer and admin settings live beside those clients.

use std::time::Duration;

use crate::error::{Error, Result};

/// Settings for one TCP connection to a broker.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// `client.id`, sent in every request header. Default: `"weir"`.
    pub client_id: String,
    /// How long to wait for the TCP handshake (`socket.connection.setup.timeout.ms`).
    /// Default: 10 s.
    pub connect_timeout: Duration,
    /// How long to wait for a response (`request.timeout.ms`). A request that passes
    /// it closes the connection. Default: 30 s. Fetch adds its `fetch.max.wait.ms`.
    pub request_timeout: Duration,
    /// Requests that may wait for a response at once on the connection. Default: 100
    /// (the producer keeps its own, lower `max.in.flight.requests.per.connection`).
    /// Minimum: 1.
    pub max_in_flight: usize,
    /// The largest response frame accepted, in bytes; a larger size prefix is treated
    /// as a broken stream. Default: 256 MiB. Minimum: 1 KiB.
    pub max_response_bytes: usize,
    /// The software name and version sent in ApiVersions v3+ (KIP-511).
    pub software_name: String,
    /// See `software_name`.
    pub software_version: String,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            client_id: "weir".to_owned(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_in_flight: 100,
            max_response_bytes: 256 << 20,
            software_name: "weir-client".to_owned(),
            software_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

impl ConnectionConfig {
    /// Checks the values and says what is wrong.
    pub fn validate(&self) -> Result<()> {
        if self.max_in_flight == 0 {
            return Err(Error::Config(
                "max in-flight requests must be at least 1".into(),
            ));
        }
        if self.max_response_bytes < 1024 {
            return Err(Error::Config(
                "max_response_bytes must be at least 1024".into(),
            ));
        }
        if self.request_timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(Error::Config("timeouts must be greater than zero".into()));
        }
        Ok(())
    }
}

/// Settings for a client of a whole cluster: bootstrap, metadata, retries.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `bootstrap.servers`: `host:port` pairs; any one of them is enough to learn the
    /// cluster. Default: `["127.0.0.1:9092"]`.
    pub bootstrap_servers: Vec<String>,
    /// Per-connection settings (client id, timeouts, limits).
    pub connection: ConnectionConfig,
    /// `metadata.max.age.ms`: metadata older than this is refreshed even without an
    /// error. Default: 5 minutes.
    pub metadata_max_age: Duration,
    /// `retry.backoff.ms`: the first wait before a retry. Default: 100 ms.
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms`: the longest wait between retries (the wait doubles from
    /// `retry_backoff` up to this, with ±20% jitter, KIP-580). Default: 1 s.
    pub retry_backoff_max: Duration,
    /// `default.api.timeout.ms`: how long an operation that retries (an admin call,
    /// a metadata wait) keeps trying. Default: 60 s.
    pub api_timeout: Duration,
    /// `allow.auto.create.topics`: whether Metadata requests let the broker create a
    /// topic they name (the broker decides, with its `auto.create.topics.enable`).
    /// Default: true. The admin client never asks for it.
    pub allow_auto_create_topics: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            bootstrap_servers: vec!["127.0.0.1:9092".to_owned()],
            connection: ConnectionConfig::default(),
            metadata_max_age: Duration::from_secs(300),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
            api_timeout: Duration::from_secs(60),
            allow_auto_create_topics: true,
        }
    }
}

impl ClientConfig {
    /// The defaults with these bootstrap servers (a comma-separated list is split).
    pub fn new(bootstrap: &str) -> Self {
        ClientConfig {
            bootstrap_servers: bootstrap
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            ..ClientConfig::default()
        }
    }

    /// Sets `client.id`.
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.connection.client_id = id.into();
        self
    }

    /// Checks the values and says what is wrong.
    pub fn validate(&self) -> Result<()> {
        if self.bootstrap_servers.is_empty() {
            return Err(Error::Config("bootstrap.servers is empty".into()));
        }
        for s in &self.bootstrap_servers {
            if !s.contains(':') {
                return Err(Error::Config(format!(
                    "bootstrap server {s:?} is not host:port"
                )));
            }
        }
        if self.retry_backoff > self.retry_backoff_max {
            return Err(Error::Config(
                "retry.backoff.ms must not exceed retry.backoff.max.ms".into(),
            ));
        }
        self.connection.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_list_is_split_and_validated() {
        let c = ClientConfig::new("a:1, b:2,,");
        assert_eq!(c.bootstrap_servers, vec!["a:1", "b:2"]);
        assert!(c.validate().is_ok());
        assert!(ClientConfig::new("nohost").validate().is_err());
        assert!(ClientConfig::new("").validate().is_err());
    }
}
