//! Test support: a fake broker ([`server`]) and a miniature in-memory Kafka cluster
//! on top of it ([`mini`]), built on weir-protocol only.
#![allow(dead_code, unreachable_pub)]

pub mod mini;
pub mod mini_data;
pub mod server;
pub mod weir;

use std::time::Duration;

use weir_client::config::ClientConfig;

/// Client settings for tests: fast retries, short timeouts.
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new(bootstrap);
    c.retry_backoff = Duration::from_millis(10);
    c.retry_backoff_max = Duration::from_millis(50);
    c.api_timeout = Duration::from_secs(10);
    c.connection.request_timeout = Duration::from_secs(5);
    c
}
