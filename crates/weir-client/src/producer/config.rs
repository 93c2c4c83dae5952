//! Producer settings, named and defaulted as in the Java client except where noted.

use std::time::Duration;

pub use weir_protocol::records::Compression;

use crate::config::ClientConfig;
use crate::error::{Error, Result};

/// How many replicas must have a batch before the broker acknowledges it (`acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// `acks=0`: no response; records complete as soon as they are written to the
    /// socket, with offset -1.
    None,
    /// `acks=1`: the leader has appended the batch.
    Leader,
    /// `acks=all` (-1): every in-sync replica has it.
    #[default]
    All,
}

impl Acks {
    /// The wire value.
    pub fn as_i16(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }

    /// Parses `0`, `1`, `all` or `-1`.
    pub fn parse(s: &str) -> Result<Acks> {
        match s.trim() {
            "0" => Ok(Acks::None),
            "1" => Ok(Acks::Leader),
            "all" | "-1" => Ok(Acks::All),
            other => Err(Error::Config(format!(
                "acks must be 0, 1 or all, not {other:?}"
            ))),
        }
    }
}

/// Parses a codec name as `compression.type` spells it.
pub fn parse_compression(s: &str) -> Result<Compression> {
    match s.trim() {
        "none" => Ok(Compression::None),
        "gzip" => Ok(Compression::Gzip),
        "snappy" => Ok(Compression::Snappy),
        "lz4" => Ok(Compression::Lz4),
        "zstd" => Ok(Compression::Zstd),
        other => Err(Error::Config(format!(
            "compression must be none, gzip, snappy, lz4 or zstd, not {other:?}"
        ))),
    }
}

/// Producer settings.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// Cluster settings (bootstrap servers, client id, timeouts, retry backoff).
    pub client: ClientConfig,
    /// `acks`. Default: all.
    pub acks: Acks,
    /// `batch.size`: the target size of one partition's batch, in bytes, measured
    /// before compression. A record larger than this gets a batch of its own.
    /// Default: 16384.
    pub batch_size: usize,
    /// `linger.ms`: how long a batch that is not full waits for more records.
    /// Default: **5 ms** (the Java client's is 5 ms since Kafka 4.0, 0 before): a
    /// little latency buys much larger batches under load.
    pub linger: Duration,
    /// `compression.type`. Default: none.
    pub compression: Compression,
    /// `compression.<codec>.level` (gzip 1-9, zstd up to 22). Default: the codec's.
    pub compression_level: Option<i32>,
    /// `max.in.flight.requests.per.connection`: Produce requests awaiting a response
    /// per broker. Default: 5. Idempotence keeps order with up to 5.
    pub max_in_flight: usize,
    /// `retries`: how often a batch is retried on a retriable error. Default:
    /// `u32::MAX` (`delivery.timeout.ms` is the real bound).
    pub retries: u32,
    /// `delivery.timeout.ms`: the upper bound from `send` to success or failure,
    /// retries included. Must be at least `linger.ms` + `request.timeout.ms`.
    /// Default: 120 s.
    pub delivery_timeout: Duration,
    /// `enable.idempotence`: `Some(true)` requires `acks=all` and at most 5 in flight;
    /// `None` (the default) turns it on unless `acks` or `max_in_flight` conflict, as
    /// the Java client does when the setting is not given explicitly.
    pub enable_idempotence: Option<bool>,
    /// `max.request.size`: the largest Produce request, and so the largest record.
    /// Default: 1 MiB.
    pub max_request_size: usize,
    /// `buffer.memory`: bytes of records that may wait in the producer; `send` waits
    /// when it is full. Default: 32 MiB.
    pub buffer_memory: usize,
    /// `max.block.ms`: how long `send` may wait for metadata or buffer space.
    /// Default: 60 s.
    pub max_block: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            client: ClientConfig::default(),
            acks: Acks::All,
            batch_size: 16384,
            linger: Duration::from_millis(5),
            compression: Compression::None,
            compression_level: None,
            max_in_flight: 5,
            retries: u32::MAX,
            delivery_timeout: Duration::from_secs(120),
            enable_idempotence: None,
            max_request_size: 1 << 20,
            buffer_memory: 32 << 20,
            max_block: Duration::from_secs(60),
        }
    }
}

impl ProducerConfig {
    /// The defaults with these bootstrap servers.
    pub fn new(bootstrap: &str) -> Self {
        ProducerConfig {
            client: ClientConfig::new(bootstrap),
            ..ProducerConfig::default()
        }
    }

    /// Whether the producer will be idempotent with these settings.
    pub fn idempotent(&self) -> bool {
        self.enable_idempotence
            .unwrap_or(self.acks == Acks::All && self.max_in_flight <= 5 && self.retries > 0)
    }

    /// Checks the values and says what is wrong.
    pub fn validate(&self) -> Result<()> {
        self.client.validate()?;
        if self.enable_idempotence == Some(true) {
            if self.acks != Acks::All {
                return Err(Error::Config("enable.idempotence requires acks=all".into()));
            }
            if self.max_in_flight > 5 {
                return Err(Error::Config(
                    "enable.idempotence requires max.in.flight.requests.per.connection <= 5".into(),
                ));
            }
            if self.retries == 0 {
                return Err(Error::Config(
                    "enable.idempotence requires retries > 0".into(),
                ));
            }
        }
        if self.max_in_flight == 0 {
            return Err(Error::Config(
                "max.in.flight.requests.per.connection must be at least 1".into(),
            ));
        }
        let floor = self.linger + self.client.connection.request_timeout;
        if self.delivery_timeout < floor {
            return Err(Error::Config(format!(
                "delivery.timeout.ms ({} ms) must be at least linger.ms + request.timeout.ms ({} ms)",
                self.delivery_timeout.as_millis(),
                floor.as_millis()
            )));
        }
        if self.max_request_size < 1024 || self.buffer_memory < self.max_request_size {
            return Err(Error::Config(
                "max.request.size must be at least 1024 and at most buffer.memory".into(),
            ));
        }
        if u32::try_from(self.buffer_memory).is_err() {
            return Err(Error::Config("buffer.memory must be below 4 GiB".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotence_defaults_follow_acks() {
        let mut c = ProducerConfig::default();
        assert!(c.idempotent() && c.validate().is_ok());
        c.acks = Acks::Leader;
        assert!(!c.idempotent() && c.validate().is_ok());
        c.enable_idempotence = Some(true);
        assert!(c.validate().is_err());
        assert_eq!(Acks::parse("all").unwrap().as_i16(), -1);
        assert!(parse_compression("brotli").is_err());
    }
}
