//! The RecordBatch v2 header and a validated, zero-copy view of one whole batch.
//!
//! Layout (all big-endian; the CRC covers `attributes` to the end of the batch):
//!
//! ```text
//! offset  size  field
//!      0     8  baseOffset            \  outside the CRC: the broker assigns them,
//!      8     4  batchLength            | so it can patch them without re-checksumming
//!     12     4  partitionLeaderEpoch  /
//!     16     1  magic (2)
//!     17     4  crc (CRC32C of bytes 21..end)
//!     21     2  attributes
//!     23     4  lastOffsetDelta
//!     27     8  baseTimestamp
//!     35     8  maxTimestamp
//!     43     8  producerId
//!     51     2  producerEpoch
//!     53     4  baseSequence
//!     57     4  recordCount
//!     61     -  records (compressed as a whole when attributes say so)
//! ```
//!
//! [`BatchHeader::parse`] checks the structure of the first 61 bytes only, for callers
//! that index a file without reading whole batches. [`BatchView::parse`] checks a whole
//! batch, CRC included, and is what Produce and log recovery use.

use bytes::{Buf, Bytes};

use super::attributes::{Attributes, TimestampType};
use super::compression::Compression;
use super::error::RecordsError;
use super::record::MIN_RECORD_LEN;

/// Bytes in the batch header, up to the first record.
pub const HEADER_LEN: usize = 61;
/// Bytes before `batchLength` starts counting: baseOffset and batchLength themselves.
pub const LOG_OVERHEAD: usize = 12;
/// Smallest valid batchLength: the header after the LOG_OVERHEAD, with no records.
pub const MIN_BATCH_LENGTH: i32 = (HEADER_LEN - LOG_OVERHEAD) as i32;
/// The only magic this codec accepts.
pub const MAGIC_V2: i8 = 2;
/// producerId of a batch from a non-idempotent producer.
pub const NO_PRODUCER_ID: i64 = -1;
/// producerEpoch of a batch from a non-idempotent producer.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// baseSequence of a batch from a non-idempotent producer.
pub const NO_SEQUENCE: i32 = -1;
/// partitionLeaderEpoch a client writes; the leader overwrites it.
pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;
/// A timestamp that was not set.
pub const NO_TIMESTAMP: i64 = -1;

/// Byte positions of the header fields, for code that reads or patches raw bytes.
pub mod field {
    /// baseOffset (i64).
    pub const BASE_OFFSET: usize = 0;
    /// batchLength (i32).
    pub const BATCH_LENGTH: usize = 8;
    /// partitionLeaderEpoch (i32).
    pub const PARTITION_LEADER_EPOCH: usize = 12;
    /// magic (i8).
    pub const MAGIC: usize = 16;
    /// crc (u32).
    pub const CRC: usize = 17;
    /// attributes (i16); the CRC starts here.
    pub const ATTRIBUTES: usize = 21;
    /// lastOffsetDelta (i32).
    pub const LAST_OFFSET_DELTA: usize = 23;
    /// baseTimestamp (i64).
    pub const BASE_TIMESTAMP: usize = 27;
    /// maxTimestamp (i64).
    pub const MAX_TIMESTAMP: usize = 35;
    /// producerId (i64).
    pub const PRODUCER_ID: usize = 43;
    /// producerEpoch (i16).
    pub const PRODUCER_EPOCH: usize = 51;
    /// baseSequence (i32).
    pub const BASE_SEQUENCE: usize = 53;
    /// recordCount (i32).
    pub const RECORD_COUNT: usize = 57;
}

/// The 61-byte header of a batch, structurally checked.
///
/// Only [`BatchHeader::parse`] makes one, so a value always has magic 2, a known
/// codec, batchLength >= 49 and a record count its offset range can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub(super) base_offset: i64,
    batch_length: i32,
    pub(super) partition_leader_epoch: i32,
    magic: i8,
    pub(super) crc: u32,
    pub(super) attributes: Attributes,
    last_offset_delta: i32,
    base_timestamp: i64,
    pub(super) max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    record_count: i32,
    /// Decoded from `attributes` once, so the accessor cannot fail.
    compression: Compression,
}

impl BatchHeader {
    /// Parses and checks the header at the start of `buf` (which may hold more than
    /// the header, or only the header). Does not check the CRC or the records.
    pub fn parse(buf: &[u8]) -> Result<Self, RecordsError> {
        let Some(bytes) = buf.get(..HEADER_LEN) else {
            return Err(RecordsError::TruncatedBatch {
                position: 0,
                needed: HEADER_LEN,
                available: buf.len(),
            });
        };
        // `bytes` is exactly HEADER_LEN long and the reads below add up to HEADER_LEN,
        // so none of the Buf getters can run out.
        let mut r = bytes;
        let base_offset = r.get_i64();
        let batch_length = r.get_i32();
        let partition_leader_epoch = r.get_i32();
        let magic = r.get_i8();
        let crc = r.get_u32();
        let attributes = Attributes(r.get_i16());
        let last_offset_delta = r.get_i32();
        let base_timestamp = r.get_i64();
        let max_timestamp = r.get_i64();
        let producer_id = r.get_i64();
        let producer_epoch = r.get_i16();
        let base_sequence = r.get_i32();
        let record_count = r.get_i32();

        if batch_length < MIN_BATCH_LENGTH {
            return Err(RecordsError::InvalidBatchLength {
                length: batch_length,
            });
        }
        if magic != MAGIC_V2 {
            return Err(RecordsError::UnsupportedMagic(magic));
        }
        let compression = attributes.compression()?;
        let count_err = |reason| RecordsError::InvalidRecordCount {
            record_count,
            last_offset_delta,
            reason,
        };
        if record_count < 0 {
            return Err(count_err("negative record count"));
        }
        if last_offset_delta < 0 {
            return Err(count_err("negative lastOffsetDelta"));
        }
        // Offset deltas are distinct and within 0..=lastOffsetDelta, so a batch cannot
        // hold more records than that range. Fewer is legal: the cleaner removes
        // records from a batch (down to none) but keeps its offset range.
        if i64::from(record_count) > i64::from(last_offset_delta) + 1 {
            return Err(count_err("more records than the offset range holds"));
        }
        if base_offset
            .checked_add(i64::from(last_offset_delta))
            .is_none()
        {
            return Err(count_err("offset range overflows i64"));
        }
        if compression == Compression::None {
            // Every uncompressed record takes at least MIN_RECORD_LEN bytes.
            let records_len = (batch_length - MIN_BATCH_LENGTH) as usize;
            if (record_count as usize).saturating_mul(MIN_RECORD_LEN) > records_len {
                return Err(count_err("more records than the batch has bytes for"));
            }
        }
        Ok(BatchHeader {
            base_offset,
            batch_length,
            partition_leader_epoch,
            magic,
            crc,
            attributes,
            last_offset_delta,
            base_timestamp,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            record_count,
            compression,
        })
    }

    /// Bytes of the whole batch: LOG_OVERHEAD + batchLength.
    pub fn total_len(&self) -> usize {
        // batch_length >= 49 was checked, so the cast is lossless.
        LOG_OVERHEAD + self.batch_length as usize
    }

    /// baseOffset: the offset of the first record.
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }
    /// batchLength: bytes after the batchLength field.
    pub fn batch_length(&self) -> i32 {
        self.batch_length
    }
    /// partitionLeaderEpoch: the leader epoch that appended the batch.
    pub fn partition_leader_epoch(&self) -> i32 {
        self.partition_leader_epoch
    }
    /// magic (always 2).
    pub fn magic(&self) -> i8 {
        self.magic
    }
    /// The stored CRC32C.
    pub fn crc(&self) -> u32 {
        self.crc
    }
    /// The raw attributes.
    pub fn attributes(&self) -> Attributes {
        self.attributes
    }
    /// The codec of the records section.
    pub fn compression(&self) -> Compression {
        self.compression
    }
    /// What the timestamps mean.
    pub fn timestamp_type(&self) -> TimestampType {
        self.attributes.timestamp_type()
    }
    /// Part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes.is_transactional()
    }
    /// A control batch (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes.is_control()
    }
    /// baseTimestamp holds the delete horizon (KIP-534).
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes.has_delete_horizon()
    }
    /// lastOffsetDelta: last offset minus base offset.
    pub fn last_offset_delta(&self) -> i32 {
        self.last_offset_delta
    }
    /// baseTimestamp: the first record's timestamp (or the delete horizon).
    pub fn base_timestamp(&self) -> i64 {
        self.base_timestamp
    }
    /// maxTimestamp: the largest record timestamp (the append time for LogAppendTime).
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }
    /// producerId, or [`NO_PRODUCER_ID`].
    pub fn producer_id(&self) -> i64 {
        self.producer_id
    }
    /// producerEpoch, or [`NO_PRODUCER_EPOCH`].
    pub fn producer_epoch(&self) -> i16 {
        self.producer_epoch
    }
    /// baseSequence, or [`NO_SEQUENCE`].
    pub fn base_sequence(&self) -> i32 {
        self.base_sequence
    }
    /// recordCount.
    pub fn record_count(&self) -> i32 {
        self.record_count
    }
    /// Whether an idempotent or transactional producer wrote the batch.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
    /// The offset of the last record: baseOffset + lastOffsetDelta.
    pub fn last_offset(&self) -> i64 {
        // parse checks this cannot overflow; saturate after a patch to i64::MAX.
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }
    /// The offset after this batch: the next batch's baseOffset.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }
    /// The sequence of the last record, wrapping at i32::MAX like Kafka's.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return NO_SEQUENCE;
        }
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        if last > i64::from(i32::MAX) {
            (last - i64::from(i32::MAX) - 1) as i32
        } else {
            last as i32
        }
    }
}

/// One whole batch, validated (structure and CRC), over shared bytes.
///
/// Cloning is cheap (a reference count); the accessors read a parsed header, not the
/// bytes. The records are not parsed until [`BatchView::records`] walks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchView {
    pub(super) header: BatchHeader,
    /// Exactly `header.total_len()` bytes.
    pub(super) buf: Bytes,
}

macro_rules! forward {
    ($($(#[$m:meta])* $name:ident -> $t:ty;)*) => {
        $($(#[$m])* pub fn $name(&self) -> $t { self.header.$name() })*
    };
}

impl BatchView {
    /// Parses one batch that fills `buf` exactly, checking structure and CRC.
    pub fn parse(buf: Bytes) -> Result<Self, RecordsError> {
        let view = Self::parse_prefix(&buf, 0)?;
        if view.buf.len() != buf.len() {
            return Err(RecordsError::TrailingBytes(buf.len() - view.buf.len()));
        }
        Ok(view)
    }

    /// Parses the batch at `position` of `buf` (which may continue past it).
    pub(crate) fn parse_prefix(buf: &Bytes, position: usize) -> Result<Self, RecordsError> {
        let rest = buf.get(position..).unwrap_or_default();
        let header = BatchHeader::parse(rest).map_err(|e| at_position(e, position))?;
        let total = header.total_len();
        if rest.len() < total {
            return Err(RecordsError::TruncatedBatch {
                position,
                needed: total,
                available: rest.len(),
            });
        }
        let batch = buf.slice(position..position + total);
        let computed = crc32c::crc32c(batch.get(field::ATTRIBUTES..).unwrap_or_default());
        if computed != header.crc {
            return Err(RecordsError::CrcMismatch {
                stored: header.crc,
                computed,
            });
        }
        Ok(BatchView { header, buf: batch })
    }

    /// The parsed header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The whole batch, as stored and as sent on the wire.
    pub fn as_bytes(&self) -> &Bytes {
        &self.buf
    }

    /// The whole batch, consuming the view.
    pub fn into_bytes(self) -> Bytes {
        self.buf
    }

    /// The records section after the header (compressed if the batch is).
    pub fn records_bytes(&self) -> Bytes {
        self.buf.slice(HEADER_LEN..)
    }

    /// Bytes of the whole batch.
    pub fn total_len(&self) -> usize {
        self.buf.len()
    }

    forward! {
        /// baseOffset.
        base_offset -> i64;
        /// batchLength.
        batch_length -> i32;
        /// partitionLeaderEpoch.
        partition_leader_epoch -> i32;
        /// magic (2).
        magic -> i8;
        /// The stored CRC32C.
        crc -> u32;
        /// The raw attributes.
        attributes -> Attributes;
        /// The codec of the records section.
        compression -> Compression;
        /// What the timestamps mean.
        timestamp_type -> TimestampType;
        /// Part of a transaction.
        is_transactional -> bool;
        /// A control batch.
        is_control -> bool;
        /// baseTimestamp is a delete horizon.
        has_delete_horizon -> bool;
        /// lastOffsetDelta.
        last_offset_delta -> i32;
        /// baseTimestamp.
        base_timestamp -> i64;
        /// maxTimestamp.
        max_timestamp -> i64;
        /// producerId.
        producer_id -> i64;
        /// producerEpoch.
        producer_epoch -> i16;
        /// baseSequence.
        base_sequence -> i32;
        /// recordCount.
        record_count -> i32;
        /// Whether a producer id is set.
        has_producer_id -> bool;
        /// baseOffset + lastOffsetDelta.
        last_offset -> i64;
        /// The offset after the batch.
        next_offset -> i64;
        /// The sequence of the last record.
        last_sequence -> i32;
    }
}

/// Rebases a header-only error found at the start of a sub-slice to `position`.
fn at_position(e: RecordsError, position: usize) -> RecordsError {
    match e {
        RecordsError::TruncatedBatch {
            needed, available, ..
        } => RecordsError::TruncatedBatch {
            position,
            needed,
            available,
        },
        other => other,
    }
}
