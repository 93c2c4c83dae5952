//! What the leader changes in a client's batch before storing it, and the producer
//! rules it checks first.
//!
//! baseOffset and partitionLeaderEpoch sit before the CRC'd region, so assigning them
//! never touches the checksum; the bytes are patched in place when the view owns them
//! alone, and [`BatchView::patched_prefix`] lets a writer avoid even the one copy a
//! shared buffer would need. LogAppendTime changes CRC'd fields and recomputes it.

use bytes::{Bytes, BytesMut};

use super::attributes::TimestampType;
use super::batch::{field, BatchView};
use super::error::RecordsError;

impl BatchView {
    /// Kafka's LogValidator rules for a batch a producer sends (Produce, origin
    /// client): at least one record, recordCount == lastOffsetDelta + 1 (a producer
    /// never leaves gaps; only the cleaner does), no control batches (only the
    /// transaction coordinator writes markers), and a sequence when there is a
    /// producer id.
    pub fn validate_client_append(&self) -> Result<(), RecordsError> {
        let h = &self.header;
        if h.record_count() == 0 {
            return Err(RecordsError::InvalidClientBatch("batch has no records"));
        }
        if i64::from(h.record_count()) != i64::from(h.last_offset_delta()) + 1 {
            return Err(RecordsError::InvalidClientBatch(
                "recordCount is not lastOffsetDelta + 1",
            ));
        }
        if h.is_control() {
            return Err(RecordsError::InvalidClientBatch(
                "clients may not write control batches",
            ));
        }
        if h.has_producer_id() && h.base_sequence() < 0 {
            return Err(RecordsError::InvalidClientBatch(
                "producer id set without a base sequence",
            ));
        }
        Ok(())
    }

    /// Sets baseOffset and partitionLeaderEpoch, as the leader does on append. They
    /// are outside the CRC, so nothing else changes. The bytes are patched in place
    /// when this view is their only owner; otherwise (a batch still shared with its
    /// request frame) they are copied once. To avoid that copy when writing, use
    /// [`BatchView::patched_prefix`] with [`BatchView::after_prefix`] in a vectored
    /// write instead.
    pub fn assign(&mut self, base_offset: i64, partition_leader_epoch: i32) {
        let prefix = self.patched_prefix(base_offset, partition_leader_epoch);
        self.modify(|bytes| {
            if let Some(dst) = bytes.get_mut(..PATCH_PREFIX_LEN) {
                dst.copy_from_slice(&prefix);
            }
        });
        self.header.base_offset = base_offset;
        self.header.partition_leader_epoch = partition_leader_epoch;
    }

    /// Sets baseOffset only (see [`BatchView::assign`]).
    pub fn set_base_offset(&mut self, base_offset: i64) {
        self.assign(base_offset, self.header.partition_leader_epoch);
    }

    /// Sets partitionLeaderEpoch only (see [`BatchView::assign`]).
    pub fn set_partition_leader_epoch(&mut self, partition_leader_epoch: i32) {
        self.assign(self.header.base_offset, partition_leader_epoch);
    }

    /// The first [`PATCH_PREFIX_LEN`] bytes of the batch (baseOffset, batchLength,
    /// partitionLeaderEpoch) as they would be after [`BatchView::assign`]. Writing
    /// this followed by [`BatchView::after_prefix`] stores the patched batch without
    /// copying its body.
    pub fn patched_prefix(
        &self,
        base_offset: i64,
        partition_leader_epoch: i32,
    ) -> [u8; PATCH_PREFIX_LEN] {
        let mut out = [0u8; PATCH_PREFIX_LEN];
        let mut w = &mut out[..];
        bytes::BufMut::put_i64(&mut w, base_offset);
        bytes::BufMut::put_i32(&mut w, self.header.batch_length());
        bytes::BufMut::put_i32(&mut w, partition_leader_epoch);
        out
    }

    /// The batch after the first [`PATCH_PREFIX_LEN`] bytes (magic onwards).
    pub fn after_prefix(&self) -> Bytes {
        self.buf.slice(PATCH_PREFIX_LEN..)
    }

    /// Marks the batch LogAppendTime with `append_time_ms` as maxTimestamp and
    /// recomputes the CRC, as a leader does for a topic with
    /// `message.timestamp.type=LogAppendTime` (records then all read as that time).
    pub fn set_log_append_time(&mut self, append_time_ms: i64) {
        let attributes = self
            .header
            .attributes
            .with_timestamp_type(TimestampType::LogAppendTime);
        let mut crc = 0;
        self.modify(|bytes| {
            if let Some(dst) = bytes.get_mut(field::ATTRIBUTES..field::ATTRIBUTES + 2) {
                dst.copy_from_slice(&attributes.0.to_be_bytes());
            }
            if let Some(dst) = bytes.get_mut(field::MAX_TIMESTAMP..field::MAX_TIMESTAMP + 8) {
                dst.copy_from_slice(&append_time_ms.to_be_bytes());
            }
            crc = crc32c::crc32c(bytes.get(field::ATTRIBUTES..).unwrap_or_default());
            if let Some(dst) = bytes.get_mut(field::CRC..field::CRC + 4) {
                dst.copy_from_slice(&crc.to_be_bytes());
            }
        });
        self.header.attributes = attributes;
        self.header.max_timestamp = append_time_ms;
        self.header.crc = crc;
    }

    /// Applies `f` to the batch bytes, in place when this view owns them alone.
    fn modify(&mut self, f: impl FnOnce(&mut [u8])) {
        let buf = std::mem::take(&mut self.buf);
        let mut owned = match buf.try_into_mut() {
            Ok(unique) => unique,
            Err(shared) => BytesMut::from(&shared[..]),
        };
        f(&mut owned);
        self.buf = owned.freeze();
    }
}

/// Bytes at the start of a batch that [`BatchView::assign`] may change.
pub const PATCH_PREFIX_LEN: usize = 16;

/// Patches baseOffset and partitionLeaderEpoch of the batch at the start of `batch`
/// in place, for callers that hold the bytes mutably (a buffer read from disk).
/// Returns false, changing nothing, if `batch` is shorter than the header prefix.
pub fn patch_in_place(batch: &mut [u8], base_offset: i64, partition_leader_epoch: i32) -> bool {
    let Some(prefix) = batch.get_mut(..PATCH_PREFIX_LEN) else {
        return false;
    };
    let (offset, rest) = prefix.split_at_mut(8);
    offset.copy_from_slice(&base_offset.to_be_bytes());
    if let Some(epoch) = rest.get_mut(4..8) {
        epoch.copy_from_slice(&partition_leader_epoch.to_be_bytes());
    }
    true
}
