//! One partition's batch on its way through the producer.
//!
//! A batch is open while records are appended (a [`BatchBuilder`] underneath), then
//! built into RecordBatch v2 bytes when the sender first drains it; a retry resends
//! exactly those bytes, so the broker can recognise a duplicate by its sequence. Only
//! when the producer's epoch was bumped (after the broker lost its producer state)
//! are the producer id, epoch and base sequence rewritten, with the CRC recomputed
//! ([`restamp`]): the records themselves are never re-encoded or recompressed.

use bytes::{Bytes, BytesMut};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use weir_protocol::records::{field, BatchBuilder, Compression};

use super::delivery::{Completer, DeliveryFuture, Settled};

use crate::cluster::TopicPartition;
use crate::error::{Error, Result};

/// Where a record ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The partition.
    pub partition: i32,
    /// The record's offset; -1 with `acks=0` (nobody said).
    pub offset: i64,
    /// The record's timestamp: the broker's append time for LogAppendTime topics,
    /// the producer's create time otherwise.
    pub timestamp: i64,
}

/// The producer id, epoch and base sequence stamped into a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) base_sequence: i32,
}

/// A batch and everything the producer tracks about it.
#[derive(Debug)]
pub(crate) struct ProducerBatch {
    /// Increasing per producer; `flush` waits for every id below its mark.
    pub(crate) id: u64,
    pub(crate) tp: TopicPartition,
    /// Set while the batch takes records.
    builder: Option<BatchBuilder>,
    /// The wire bytes, once built.
    bytes: Option<Bytes>,
    /// What `bytes` carries (None for a non-idempotent batch).
    stamped: Option<Stamp>,
    pub(crate) record_count: i32,
    /// Uncompressed size so far (the `batch.size` measure).
    pub(crate) size: usize,
    /// Full: takes no more records and is ready to send at once.
    pub(crate) full: bool,
    pub(crate) created: Instant,
    /// Settles every record's [`DeliveryFuture`] at once.
    completer: Completer,
    /// Sends so far.
    pub(crate) attempts: u32,
    /// Not before this instant (retry backoff).
    pub(crate) retry_at: Option<Instant>,
    /// The sequence assigned at first drain (idempotence); cleared by an epoch bump.
    pub(crate) stamp: Option<Stamp>,
    /// The error of the last failed attempt, for the delivery-timeout message.
    pub(crate) last_error: Option<Error>,
    /// `buffer.memory` held by the records, released when the batch is done.
    pub(crate) memory: Option<OwnedSemaphorePermit>,
}

impl ProducerBatch {
    pub(crate) fn new(
        id: u64,
        tp: TopicPartition,
        compression: Compression,
        level: Option<i32>,
        now: Instant,
        batch_size: usize,
    ) -> Self {
        // Sized for `batch.size` from the start, as Kafka's producer takes a
        // `batch.size` buffer from its pool: growing it by doubling copied every
        // batch several times over.
        let mut builder = BatchBuilder::new()
            .reserve(batch_size)
            .compression(compression);
        if let Some(l) = level {
            builder = builder.compression_level(l);
        }
        let partition = tp.partition;
        ProducerBatch {
            id,
            tp,
            builder: Some(builder),
            bytes: None,
            stamped: None,
            record_count: 0,
            size: 0,
            full: false,
            created: now,
            completer: Completer::new(partition),
            attempts: 0,
            retry_at: None,
            stamp: None,
            last_error: None,
            memory: None,
        }
    }

    /// Whether it still takes records.
    pub(crate) fn is_open(&self) -> bool {
        self.builder.is_some() && !self.full
    }

    /// Appends a record; the caller checked [`ProducerBatch::is_open`]. Returns
    /// the record's future.
    pub(crate) fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
        memory: OwnedSemaphorePermit,
    ) -> Result<DeliveryFuture> {
        let Some(builder) = self.builder.as_mut() else {
            return Err(Error::Closed("batch"));
        };
        builder.append(timestamp, key, value, headers)?;
        self.size = builder.uncompressed_len();
        let delivery = self.completer.future(self.record_count, timestamp);
        self.record_count += 1;
        match self.memory.as_mut() {
            Some(m) => m.merge(memory),
            None => self.memory = Some(memory),
        }
        Ok(delivery)
    }

    /// The wire bytes carrying `stamp`: built on the first call, then reused, and
    /// restamped only if the stamp changed (an epoch bump).
    pub(crate) fn wire_bytes(&mut self, stamp: Option<Stamp>) -> Result<Bytes> {
        if let Some(builder) = self.builder.take() {
            let builder = match stamp {
                Some(s) => builder.producer(s.producer_id, s.producer_epoch, s.base_sequence),
                None => builder,
            };
            let bytes = builder.build()?;
            self.bytes = Some(bytes);
            self.stamped = stamp;
        }
        let Some(bytes) = self.bytes.as_ref() else {
            return Err(Error::Closed("batch"));
        };
        if self.stamped != stamp {
            let s = stamp.unwrap_or(Stamp {
                producer_id: -1,
                producer_epoch: -1,
                base_sequence: -1,
            });
            let restamped = restamp(bytes, s);
            self.bytes = Some(restamped);
            self.stamped = stamp;
        }
        self.bytes.clone().ok_or(Error::Closed("batch"))
    }

    /// Completes every record: offsets from `base_offset` (-1 stays -1), timestamps
    /// from the broker's `log_append_time` when it set one.
    pub(crate) fn complete(self, base_offset: i64, log_append_time: i64) {
        self.completer.settle(Ok(Settled {
            base_offset,
            log_append_time,
        }));
    }

    /// Fails every record with `error`.
    pub(crate) fn fail(self, error: Error) {
        self.completer.settle(Err(error));
    }
}

/// A copy of `batch` with producer id, epoch and base sequence replaced and the
/// CRC32C recomputed (they lie inside the CRC).
pub(crate) fn restamp(batch: &Bytes, s: Stamp) -> Bytes {
    let mut b = BytesMut::from(&batch[..]);
    let mut put = |at: usize, v: &[u8]| {
        if let Some(dst) = b.get_mut(at..at + v.len()) {
            dst.copy_from_slice(v);
        }
    };
    put(field::PRODUCER_ID, &s.producer_id.to_be_bytes());
    put(field::PRODUCER_EPOCH, &s.producer_epoch.to_be_bytes());
    put(field::BASE_SEQUENCE, &s.base_sequence.to_be_bytes());
    let crc = crc32c::crc32c(b.get(field::ATTRIBUTES..).unwrap_or_default());
    if let Some(dst) = b.get_mut(field::CRC..field::CRC + 4) {
        dst.copy_from_slice(&crc.to_be_bytes());
    }
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::sync::Semaphore;
    use weir_protocol::records::BatchView;

    #[test]
    fn restamped_batch_keeps_records_and_a_valid_crc() {
        let sem = Arc::new(Semaphore::new(1000));
        let mut b = ProducerBatch::new(
            0,
            TopicPartition::new("t", 0),
            Compression::Lz4,
            None,
            Instant::now(),
            1024,
        );
        for i in 0..3u8 {
            let permit = sem.clone().try_acquire_many_owned(10).unwrap();
            b.append(1000, Some(&[i]), Some(b"v"), &[], permit).unwrap();
        }
        assert_eq!(sem.available_permits(), 970);
        let first = Stamp {
            producer_id: 7,
            producer_epoch: 0,
            base_sequence: 10,
        };
        let bytes = b.wire_bytes(Some(first)).unwrap();
        assert_eq!(
            b.wire_bytes(Some(first)).unwrap(),
            bytes,
            "a retry resends the same bytes"
        );
        let v = BatchView::parse(bytes).unwrap();
        assert_eq!(
            (v.producer_id(), v.base_sequence(), v.record_count()),
            (7, 10, 3)
        );
        let bumped = Stamp {
            producer_id: 7,
            producer_epoch: 1,
            base_sequence: 0,
        };
        let v2 = BatchView::parse(b.wire_bytes(Some(bumped)).unwrap()).unwrap();
        assert_eq!((v2.producer_epoch(), v2.base_sequence()), (1, 0));
        assert_eq!(v2.records_bytes(), v.records_bytes());
        let keys: Vec<_> = v2
            .records(1 << 20)
            .unwrap()
            .map(|r| r.unwrap().key)
            .collect();
        assert_eq!(keys.len(), 3);
        drop(b);
        assert_eq!(
            sem.available_permits(),
            1000,
            "memory is released with the batch"
        );
    }
}
