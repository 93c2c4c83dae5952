//! Errors of the RecordBatch codec.
//!
//! Every malformed batch, record or compressed payload becomes one of these values;
//! nothing in `records` panics on input. The api layer maps them to Kafka error codes
//! (most become `CORRUPT_MESSAGE` or `INVALID_RECORD`), the log treats them as a torn
//! or corrupt tail. They are kept apart from [`crate::DecodeError`] because a batch is
//! opaque payload to the request decoder: a bad batch fails one partition, not the
//! whole request.

use thiserror::Error;

use super::compression::Compression;
use crate::error::DecodeError;

/// Why a batch, a record or a compressed payload was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordsError {
    /// The input ended inside a batch (a torn write, or a fetch cut at its size limit).
    #[error("batch at byte {position} is truncated: it needs {needed} bytes, {available} remain")]
    TruncatedBatch {
        /// Byte position of the batch in the buffer being split (0 for a lone batch).
        position: usize,
        /// Bytes the batch needs (its header, or its full declared size).
        needed: usize,
        /// Bytes that remain from `position`.
        available: usize,
    },
    /// A batchLength that no valid batch can have (below the 49-byte header rest).
    #[error("invalid batchLength {length} (the header alone needs 49)")]
    InvalidBatchLength {
        /// The batchLength as read.
        length: i32,
    },
    /// Bytes after a batch that was meant to fill its buffer exactly.
    #[error("{0} bytes follow the batch")]
    TrailingBytes(usize),
    /// A magic byte other than 2: v0/v1 message sets are not served (Kafka 4 dropped them).
    #[error("unsupported record batch magic {0} (only v2 is supported)")]
    UnsupportedMagic(i8),
    /// The stored CRC32C does not match the bytes: corruption in flight or on disk.
    #[error("batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// CRC in the header.
        stored: u32,
        /// CRC of attributes..end as received.
        computed: u32,
    },
    /// Compression bits 5-7, which no Kafka version defines.
    #[error("unknown compression codec id {0}")]
    UnknownCompression(u8),
    /// recordCount or lastOffsetDelta contradict each other or the batch size.
    #[error(
        "invalid record count {record_count} with lastOffsetDelta {last_offset_delta}: {reason}"
    )]
    InvalidRecordCount {
        /// recordCount as read.
        record_count: i32,
        /// lastOffsetDelta as read.
        last_offset_delta: i32,
        /// Which rule was broken.
        reason: &'static str,
    },
    /// A batch that is well-formed but not acceptable from a producer (Kafka's
    /// LogValidator rules: control batches, missing sequence, bad offset range).
    #[error("batch rejected for client append: {0}")]
    InvalidClientBatch(&'static str),
    /// A record whose fields do not parse.
    #[error("record {index}: {what}")]
    MalformedRecord {
        /// Position of the record in its batch (0-based).
        index: u32,
        /// What was wrong.
        what: &'static str,
    },
    /// A varint inside a record that is truncated or overlong.
    #[error("record {index}: {source}")]
    RecordVarint {
        /// Position of the record in its batch (0-based).
        index: u32,
        /// The varint error.
        #[source]
        source: DecodeError,
    },
    /// Bytes left after the last record the batch declares (Kafka: "Incorrect declared
    /// batch size, records still remaining").
    #[error("{0} bytes remain after the declared records")]
    TrailingRecordBytes(usize),
    /// Fewer records than recordCount before the data ended.
    #[error("batch declares {declared} records but only {found} fit")]
    MissingRecords {
        /// recordCount.
        declared: u32,
        /// Records parsed before the data ran out.
        found: u32,
    },
    /// Decompressed data would exceed the caller's cap: likely a decompression bomb.
    #[error("{codec:?} payload decompresses past the cap of {cap} bytes")]
    DecompressedTooLarge {
        /// The codec.
        codec: Compression,
        /// The cap that was hit.
        cap: usize,
    },
    /// A compressed payload the codec could not decode.
    #[error("corrupt {codec:?} payload: {reason}")]
    Decompress {
        /// The codec.
        codec: Compression,
        /// The codec's own message.
        reason: String,
    },
    /// Compression failed (only resource errors are possible; inputs are in memory).
    #[error("{codec:?} compression failed: {reason}")]
    Compress {
        /// The codec.
        codec: Compression,
        /// The codec's own message.
        reason: String,
    },
    /// A control record whose key or value does not parse.
    #[error("invalid control record: {0}")]
    InvalidControlRecord(&'static str),
    /// A batch being built would not fit the format (over i32::MAX bytes or records,
    /// or a timestamp/offset delta out of range).
    #[error("cannot build batch: {0}")]
    Build(&'static str),
}
