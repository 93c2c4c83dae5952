//! RecordBatch v2: the unit clients produce, the log stores and fetch returns.
//!
//! A pure codec over `bytes::Bytes`: no I/O, no async. The hot path (Produce) only
//! needs [`BatchView::parse`] (61-byte header, structure, CRC32C) and
//! [`BatchView::assign`] (baseOffset and partitionLeaderEpoch, outside the CRC), so a
//! client's batch is stored verbatim without touching its records.
//!
//! # Pieces
//!
//! - [`BatchHeader`] / [`BatchView`]: the header fields and a validated whole batch.
//! - [`Batches`]: splits batches back to back (a Produce `records` field, a log
//!   region, a fetch response that may end in a partial batch).
//! - [`Records`]: a lazy, allocation-free walk over the records of a batch.
//! - [`BatchBuilder`]: the client side, records in, finished batch bytes out.
//! - [`compression`]: gzip, snappy (xerial framing or raw), lz4 frames, zstd, each
//!   with a hard cap on decompressed size.
//! - [`control`]: transaction markers (control records).
//! - [`RecordsError`]: every way a batch can be malformed, as a value.

mod attributes;
mod batch;
mod batches;
mod builder;
pub mod compression;
pub mod control;
mod error;
mod patch;
mod record;

pub use attributes::{Attributes, TimestampType};
pub use batch::{
    field, BatchHeader, BatchView, HEADER_LEN, LOG_OVERHEAD, MAGIC_V2, MIN_BATCH_LENGTH,
    NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, NO_TIMESTAMP,
};
pub use batches::Batches;
pub use builder::BatchBuilder;
pub use compression::Compression;
pub use error::RecordsError;
pub use patch::{patch_in_place, PATCH_PREFIX_LEN};
pub use record::{
    Header, Headers, HeadersIter, Record, RecordBase, RecordStamp, RecordStamps, Records,
    MIN_RECORD_LEN,
};

#[cfg(test)]
mod tests;
