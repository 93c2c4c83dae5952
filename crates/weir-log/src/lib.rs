//! A partition's durable log, in Kafka's on-disk layout.
//!
//! A log is a directory `<topic>-<partition>` of segments: `<base offset>.log` holds
//! RecordBatch v2 bytes exactly as produced (with baseOffset and partitionLeaderEpoch
//! assigned), `.index` maps offsets to file positions and `.timeindex` timestamps to
//! offsets. This crate knows batch bytes (parsed by `weir_protocol::records`) and
//! never request types: the replica layer above turns requests into calls on [`Log`].
//!
//! # Pieces
//!
//! - [`LogConfig`]: topic configs under Kafka's names and defaults.
//! - [`Log`]: open with recovery ([`Log::open`]), append as leader or follower, read,
//!   offsets by timestamp, truncation, DeleteRecords, retention, and the group-commit
//!   flush contract ([`FlushHandle`], see [`flush`]).
//! - [`LeaderEpochCache`]: epoch -> start offset, for OffsetForLeaderEpoch.
//! - [`ProducerStateManager`]: idempotent producers' sequences.
//! - [`checkpoint`]: the data dir's text checkpoint files and clean-shutdown marker.
//! - [`LogError`]: every failure, with [`LogError::error_code`] for the api layer.
//!
//! # Invariants
//!
//! Asserted in release builds (a violation is a bug): offsets only grow within and
//! across segments, `log start <= high watermark <= log end`, the recovery point is
//! at most the log end, and leader epochs in the cache strictly increase. Bad bytes on
//! disk are never asserted on: they are errors, or recovery truncates them.

pub mod checkpoint;
pub mod config;
pub mod epoch_cache;
pub mod error;
mod failure;
#[cfg(test)]
mod failure_tests;
pub mod flush;
mod index;
mod log;
#[cfg(test)]
mod log_tests;
pub mod producer_state;
mod read;
mod recovery;
#[cfg(test)]
mod recovery_tests;
mod retention;
mod scan;
mod segment;
#[cfg(test)]
mod test_util;
mod validate;

pub use checkpoint::TopicPartition;
pub use config::{CleanupPolicy, CompressionType, LogConfig, TimestampType};
pub use epoch_cache::{EpochEntry, LeaderEpochCache};
pub use error::LogError;
pub use flush::FlushHandle;
pub use log::{AppendInfo, Log};
pub use producer_state::{ProducerStateManager, SequenceCheck};
pub use read::{special_timestamps, ReadInfo, TimestampOffset};
pub use recovery::{OpenHints, RecoveryReport};
pub use segment::{segment_file, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
