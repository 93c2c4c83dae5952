//! Building a batch, the client side of the format (and the broker's, for control
//! batches and recompression).
//!
//! Records are encoded into one growing buffer as they are appended, behind room
//! kept for the 61-byte header; `build` compresses the records if asked, writes the
//! header into that room and fills in the lengths and the CRC. Offsets are deltas
//! 0, 1, 2, ... from `base_offset` (the leader reassigns baseOffset anyway); the
//! first record's timestamp becomes baseTimestamp, as in Kafka's
//! `MemoryRecordsBuilder`.

use bytes::{BufMut, Bytes, BytesMut};

use super::attributes::{Attributes, TimestampType};
use super::batch::{
    field, HEADER_LEN, LOG_OVERHEAD, MAGIC_V2, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID, NO_SEQUENCE,
};
use super::compression::{self, Compression};
use super::error::RecordsError;
use crate::wire::varint;

/// Accumulates records and produces one finished batch.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    compression: Compression,
    /// Codec level (KIP-390); `None` is Kafka's default for the codec.
    compression_level: Option<i32>,
    base_offset: i64,
    partition_leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
    control: bool,
    /// `HEADER_LEN` bytes kept for the header, then the encoded records,
    /// uncompressed: an uncompressed `build` fills the header in place instead of
    /// copying every record into a second buffer.
    records: BytesMut,
    /// Records appended so far.
    count: i32,
    /// The first record's timestamp, the base for every timestampDelta.
    base_timestamp: Option<i64>,
    max_timestamp: i64,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchBuilder {
    /// An empty, uncompressed, non-idempotent batch at offset 0.
    pub fn new() -> Self {
        BatchBuilder {
            compression: Compression::None,
            compression_level: None,
            base_offset: 0,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
            transactional: false,
            control: false,
            records: BytesMut::zeroed(HEADER_LEN),
            count: 0,
            base_timestamp: None,
            max_timestamp: i64::MIN,
        }
    }

    /// Reserves room for `bytes` of encoded records up front (a producer knows its
    /// `batch.size`), so appends do not grow the buffer step by step.
    pub fn reserve(mut self, bytes: usize) -> Self {
        self.records.reserve(bytes);
        self
    }

    /// Compress the records with `codec` at its default level.
    pub fn compression(mut self, codec: Compression) -> Self {
        self.compression = codec;
        self
    }

    /// Compress at `level` (gzip 1-9, zstd -131072..=22; ignored by lz4 and snappy).
    pub fn compression_level(mut self, level: i32) -> Self {
        self.compression_level = Some(level);
        self
    }

    /// The baseOffset to write (a producer writes 0; the leader overwrites it).
    pub fn base_offset(mut self, base_offset: i64) -> Self {
        self.base_offset = base_offset;
        self
    }

    /// The partitionLeaderEpoch to write.
    pub fn partition_leader_epoch(mut self, epoch: i32) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    /// An idempotent producer's id, epoch and first sequence.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Mark the batch part of a transaction.
    pub fn transactional(mut self, transactional: bool) -> Self {
        self.transactional = transactional;
        self
    }

    /// Mark the batch as holding control records (see [`super::control`]).
    pub fn control(mut self, control: bool) -> Self {
        self.control = control;
        self
    }

    /// Records appended so far.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether no record was appended.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size of the batch if built uncompressed: a bound to keep batches under
    /// `max.message.bytes` before compression.
    pub fn uncompressed_len(&self) -> usize {
        self.records.len()
    }

    /// Appends a record with the next offset delta. `None` key or value is null
    /// (distinct from empty); header values may be null, header keys may not.
    pub fn append(
        &mut self,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> Result<(), RecordsError> {
        let offset_delta = self.count;
        if offset_delta == i32::MAX {
            return Err(RecordsError::Build("more than i32::MAX records"));
        }
        let base_timestamp = *self.base_timestamp.get_or_insert(timestamp_ms);
        let timestamp_delta = timestamp_ms
            .checked_sub(base_timestamp)
            .ok_or(RecordsError::Build("timestamp delta overflows"))?;

        let header_count =
            i32::try_from(headers.len()).map_err(|_| RecordsError::Build("too many headers"))?;
        let mut body_len = 1 // attributes
            + varint::varlong_len(timestamp_delta)
            + varint::varint_len(offset_delta)
            + bytes_field_len(key)?
            + bytes_field_len(value)?
            + varint::varint_len(header_count);
        for (k, v) in headers {
            body_len += bytes_field_len(Some(k.as_bytes()))? + bytes_field_len(*v)?;
        }
        let body_len_i32 =
            i32::try_from(body_len).map_err(|_| RecordsError::Build("record over 2 GiB"))?;

        let out = &mut self.records;
        out.reserve(varint::varint_len(body_len_i32) + body_len);
        varint::put_varint(out, body_len_i32);
        out.put_i8(0);
        varint::put_varlong(out, timestamp_delta);
        varint::put_varint(out, offset_delta);
        put_bytes_field(out, key);
        put_bytes_field(out, value);
        varint::put_varint(out, header_count);
        for (k, v) in headers {
            put_bytes_field(out, Some(k.as_bytes()));
            put_bytes_field(out, *v);
        }
        self.count += 1;
        self.max_timestamp = self.max_timestamp.max(timestamp_ms);
        Ok(())
    }

    /// The finished batch: header, lengths and CRC filled in, records compressed
    /// if a codec was chosen. A batch needs at least one record.
    pub fn build(self) -> Result<Bytes, RecordsError> {
        let (Some(base_timestamp), Some(last_offset_delta)) =
            (self.base_timestamp, self.count.checked_sub(1))
        else {
            return Err(RecordsError::Build("a batch needs at least one record"));
        };
        let attributes = Attributes::new(
            self.compression,
            TimestampType::CreateTime,
            self.transactional,
            self.control,
        );
        let mut out = match self.compression {
            Compression::None => self.records,
            codec => {
                let section = self.records.get(HEADER_LEN..).unwrap_or_default();
                let compressed = compression::compress(codec, section, self.compression_level)?;
                let mut out = BytesMut::with_capacity(HEADER_LEN + compressed.len());
                out.put_bytes(0, HEADER_LEN);
                out.put_slice(&compressed);
                out
            }
        };
        let batch_length = i32::try_from(out.len() - LOG_OVERHEAD)
            .map_err(|_| RecordsError::Build("batch over 2 GiB"))?;
        let mut header = [0u8; HEADER_LEN];
        let mut h = &mut header[..];
        h.put_i64(self.base_offset);
        h.put_i32(batch_length);
        h.put_i32(self.partition_leader_epoch);
        h.put_i8(MAGIC_V2);
        h.put_u32(0); // CRC, filled in below
        h.put_i16(attributes.0);
        h.put_i32(last_offset_delta);
        h.put_i64(base_timestamp);
        h.put_i64(self.max_timestamp);
        h.put_i64(self.producer_id);
        h.put_i16(self.producer_epoch);
        h.put_i32(self.base_sequence);
        h.put_i32(self.count);
        debug_assert!(h.is_empty(), "the header fields fill HEADER_LEN exactly");
        if let Some(dst) = out.get_mut(..HEADER_LEN) {
            dst.copy_from_slice(&header);
        }
        let crc = crc32c::crc32c(out.get(field::ATTRIBUTES..).unwrap_or_default());
        if let Some(dst) = out.get_mut(field::CRC..field::CRC + 4) {
            dst.copy_from_slice(&crc.to_be_bytes());
        }
        Ok(out.freeze())
    }
}

/// Wire size of a nullable bytes field: varint length (-1 for null) plus the bytes.
fn bytes_field_len(b: Option<&[u8]>) -> Result<usize, RecordsError> {
    match b {
        None => Ok(varint::varint_len(-1)),
        Some(b) => {
            let n = i32::try_from(b.len()).map_err(|_| RecordsError::Build("field over 2 GiB"))?;
            Ok(varint::varint_len(n) + b.len())
        }
    }
}

/// Writes a nullable bytes field; lengths were checked by [`bytes_field_len`].
fn put_bytes_field(out: &mut BytesMut, b: Option<&[u8]>) {
    match b {
        None => varint::put_varint(out, -1),
        Some(b) => {
            varint::put_varint(out, i32::try_from(b.len()).unwrap_or(i32::MAX));
            out.put_slice(b);
        }
    }
}
