//! Where metadata records are stored: the [`MetadataLog`] seam and its local
//! implementations.
//!
//! The controller appends each change as one RecordBatch v2 (records with a null key
//! and a framed metadata record as the value, at offsets the store assigns) and
//! treats the change as made once the batch is durable. Recovery is a log's usual
//! one: batches are read from the start and the first torn or corrupt one is cut,
//! with everything after it, so a crash loses at most the change being written —
//! never one that was acknowledged.
//!
//! Two implementations, same directory layout (`<data-dir>/__cluster_metadata-0`,
//! Kafka's segment files):
//!
//! - [`PartitionMetadataLog`]: a weir-log [`Log`](weir_log::Log), the same code as
//!   every topic partition (segments, indexes, recovery). The default.
//! - [`FileMetadataLog`]: one segment file and nothing else, without weir-log.
//!
//! With a controller quorum the Raft log goes behind the same trait, and nothing
//! above it changes.

mod file;
mod partition;

use bytes::Bytes;
use weir_protocol::records::BatchView;
use weir_types::Offset;

pub use file::FileMetadataLog;
pub use partition::PartitionMetadataLog;

use crate::error::Result;

/// The metadata topic's name; its single partition's directory is
/// `__cluster_metadata-0`.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// The directory of the metadata log inside a data directory. The broker's log
/// manager must leave it alone: it is not a topic partition clients can see.
pub const METADATA_LOG_DIR: &str = "__cluster_metadata-0";

/// The first segment's file name (base offset 0, Kafka's 20-digit form).
pub const SEGMENT_FILE: &str = "00000000000000000000.log";

/// The most metadata log bytes this build replays (there are no snapshots yet, so
/// the log is read whole at startup).
pub const MAX_LOG_BYTES: u64 = 1 << 30;

/// An append-only log of metadata record batches; see the module docs.
pub trait MetadataLog: Send + 'static {
    /// The offset the next appended record gets (the log end offset).
    fn next_offset(&self) -> Offset;

    /// Appends one complete batch whose baseOffset is [`next_offset`]. Returns only
    /// once the batch is durable (fsynced); after an error the log accepts nothing
    /// more, because what reached the disk is unknown until recovery.
    ///
    /// [`next_offset`]: MetadataLog::next_offset
    fn append(&mut self, batch: Bytes) -> Result<()>;

    /// Every batch from the start of the log, in order, validated.
    fn read_all(&mut self) -> Result<Vec<BatchView>>;
}
