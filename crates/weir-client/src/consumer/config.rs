//! Consumer settings, named and defaulted as in the Java client.

use std::time::Duration;

use crate::config::ClientConfig;
use crate::error::{Error, Result};

/// Which records a fetch may return (`isolation.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// Everything up to the high watermark, aborted transactions included.
    #[default]
    ReadUncommitted,
    /// Only up to the last stable offset, and no records of aborted transactions.
    ReadCommitted,
}

impl IsolationLevel {
    /// The wire value.
    pub fn as_i8(self) -> i8 {
        match self {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }
}

/// Where to start when a partition has no valid position (`auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// The log start.
    Earliest,
    /// The log end: only records produced from now on.
    #[default]
    Latest,
    /// Fail `poll` with an error instead.
    None,
}

impl OffsetReset {
    /// Parses `earliest`, `latest` or `none`.
    pub fn parse(s: &str) -> Result<OffsetReset> {
        match s.trim() {
            "earliest" => Ok(OffsetReset::Earliest),
            "latest" => Ok(OffsetReset::Latest),
            "none" => Ok(OffsetReset::None),
            other => Err(Error::Config(format!(
                "auto.offset.reset must be earliest, latest or none, not {other:?}"
            ))),
        }
    }
}

/// Consumer settings.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Cluster settings (bootstrap servers, client id, timeouts, retry backoff).
    pub client: ClientConfig,
    /// `fetch.min.bytes`: the broker waits for this much data (or `fetch.max.wait.ms`).
    /// Default: 1.
    pub fetch_min_bytes: i32,
    /// `fetch.max.wait.ms`: how long the broker may hold a fetch that has less than
    /// `fetch.min.bytes`. Default: 500 ms.
    pub fetch_max_wait: Duration,
    /// `max.partition.fetch.bytes`: data per partition per fetch (a larger first batch
    /// is still returned whole). Default: 1 MiB.
    pub max_partition_fetch_bytes: i32,
    /// `fetch.max.bytes`: data per fetch response. Default: 50 MiB.
    pub fetch_max_bytes: i32,
    /// `isolation.level`. Default: read_uncommitted.
    pub isolation_level: IsolationLevel,
    /// `auto.offset.reset`. Default: latest.
    pub auto_offset_reset: OffsetReset,
    /// `max.poll.records`: the most records one `poll` returns. Default: 500.
    pub max_poll_records: usize,
    /// `client.rack`, for fetching from the closest replica (KIP-392). Default: empty.
    pub client_rack: String,
    /// The most bytes one batch may decompress to; a larger one is treated as
    /// corrupt (a decompression bomb). Default: 256 MiB.
    pub max_decompressed_batch_bytes: usize,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            client: ClientConfig::default(),
            fetch_min_bytes: 1,
            fetch_max_wait: Duration::from_millis(500),
            max_partition_fetch_bytes: 1 << 20,
            fetch_max_bytes: 50 << 20,
            isolation_level: IsolationLevel::ReadUncommitted,
            auto_offset_reset: OffsetReset::Latest,
            max_poll_records: 500,
            client_rack: String::new(),
            max_decompressed_batch_bytes: 256 << 20,
        }
    }
}

impl ConsumerConfig {
    /// The defaults with these bootstrap servers.
    pub fn new(bootstrap: &str) -> Self {
        ConsumerConfig {
            client: ClientConfig::new(bootstrap),
            ..ConsumerConfig::default()
        }
    }

    /// Checks the values and says what is wrong.
    pub fn validate(&self) -> Result<()> {
        self.client.validate()?;
        if self.fetch_min_bytes < 0 {
            return Err(Error::Config("fetch.min.bytes must not be negative".into()));
        }
        if self.max_partition_fetch_bytes <= 0 || self.fetch_max_bytes <= 0 {
            return Err(Error::Config(
                "max.partition.fetch.bytes and fetch.max.bytes must be positive".into(),
            ));
        }
        if self.max_poll_records == 0 {
            return Err(Error::Config("max.poll.records must be at least 1".into()));
        }
        if i32::try_from(self.fetch_max_wait.as_millis()).is_err() {
            return Err(Error::Config("fetch.max.wait.ms is too large".into()));
        }
        Ok(())
    }
}
