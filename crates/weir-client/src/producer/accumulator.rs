//! The record accumulator: per-partition queues of batches between `send` and the
//! sender task.
//!
//! `send` appends to the last batch of its partition's queue while that batch has
//! room (`batch.size`, measured uncompressed); otherwise it closes it and starts a
//! new one. A record bigger than `batch.size` gets a batch of its own. The sender
//! asks which partitions have a batch ready to go ([`Accumulator::ready`]): one that
//! is full, has another batch behind it, has waited `linger.ms`, finished its retry
//! backoff, or is covered by a `flush`/`close`. Failed batches come back with
//! [`Accumulator::reenqueue`] at the front, in sequence order, so retries never
//! overtake each other. Batches that pass `delivery.timeout.ms` while queued are
//! taken out by [`Accumulator::expire`].
//!
//! No I/O and no clock of its own: every time-dependent call takes `now`, which is
//! what the unit tests below drive.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use weir_protocol::records::{Compression, HEADER_LEN};

use super::batch::ProducerBatch;
use super::delivery::DeliveryFuture;
use crate::cluster::TopicPartition;
use crate::error::Result;

/// A record's fields as `append` takes them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordRef<'a> {
    pub(crate) timestamp: i64,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) headers: &'a [(&'a str, Option<&'a [u8]>)],
}

impl RecordRef<'_> {
    /// An upper bound on the record's encoded size (varints at their widest).
    pub(crate) fn size_estimate(&self) -> usize {
        let field = |b: Option<&[u8]>| 5 + b.map_or(0, <[u8]>::len);
        let mut n = 5 + 1 + 10 + 5 + field(self.key) + field(self.value) + 5;
        for (k, v) in self.headers {
            n += 5 + k.len() + field(*v);
        }
        n
    }

    /// The bound for a batch holding only this record.
    pub(crate) fn batch_size_estimate(&self) -> usize {
        HEADER_LEN + self.size_estimate()
    }
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Appended {
    /// A new batch was started (the sender must schedule its linger).
    pub(crate) new_batch: bool,
    /// The batch is now full and ready.
    pub(crate) full: bool,
}

/// Batch queues by topic, then partition. Two levels so that `append` finds a
/// queue from the record's `&str` topic with one string comparison per tree level
/// and no `TopicPartition` built (a `String` allocation per record); a single map
/// keyed by a borrowed `(topic, partition)` needed dynamic dispatch per comparison,
/// which was a tenth of the producer's CPU on small records. Iteration order is
/// `TopicPartition`'s: topic, then partition.
type Queues = BTreeMap<String, BTreeMap<i32, VecDeque<ProducerBatch>>>;

/// Partitions with a batch ready, and when to look again for the others.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Ready {
    pub(crate) partitions: Vec<TopicPartition>,
    pub(crate) next_check: Option<Instant>,
}

/// The longest a batch past `delivery.timeout.ms` waits to be noticed.
const EXPIRY_SCAN_INTERVAL_MAX: Duration = Duration::from_millis(100);

/// The per-partition batch queues.
#[derive(Debug)]
pub(crate) struct Accumulator {
    batch_size: usize,
    linger: Duration,
    compression: Compression,
    compression_level: Option<i32>,
    queues: Queues,
    next_id: u64,
    /// Ids of batches created and not yet completed or failed.
    incomplete: BTreeSet<u64>,
    /// When `expire` last scanned the queues: scanning thousands of queued batches on
    /// every sender loop cost a sixth of the producer's CPU, and a delivery timeout
    /// only needs checking a few times per timeout period.
    last_expiry_scan: Option<Instant>,
}

impl Accumulator {
    pub(crate) fn new(
        batch_size: usize,
        linger: Duration,
        compression: Compression,
        compression_level: Option<i32>,
    ) -> Self {
        Accumulator {
            batch_size,
            linger,
            compression,
            compression_level,
            queues: BTreeMap::new(),
            next_id: 0,
            incomplete: BTreeSet::new(),
            last_expiry_scan: None,
        }
    }

    /// Appends a record to the open batch of `topic`'s `partition`, or to a new
    /// one; returns what happened and the record's future. `now` is asked only
    /// when a batch is created (its linger starts): a clock read per record was a
    /// measurable part of the producer's CPU.
    pub(crate) fn append(
        &mut self,
        topic: &str,
        partition: i32,
        record: RecordRef<'_>,
        memory: OwnedSemaphorePermit,
        now: impl FnOnce() -> Instant,
    ) -> Result<(Appended, DeliveryFuture)> {
        let size = record.size_estimate();
        let batch_size = self.batch_size;
        if !self.queues.contains_key(topic) {
            self.queues.insert(topic.to_owned(), BTreeMap::new());
        }
        let Some(partitions) = self.queues.get_mut(topic) else {
            return Err(crate::error::Error::Closed("batch"));
        };
        let queue = partitions.entry(partition).or_default();
        let fits = queue
            .back()
            .is_some_and(|b| b.is_open() && (b.record_count == 0 || b.size + size <= batch_size));
        let new_batch = !fits;
        if new_batch {
            if let Some(last) = queue.back_mut() {
                last.full = true;
            }
            let id = self.next_id;
            self.next_id += 1;
            self.incomplete.insert(id);
            queue.push_back(ProducerBatch::new(
                id,
                TopicPartition::new(topic, partition),
                self.compression,
                self.compression_level,
                now(),
                batch_size,
            ));
        }
        let Some(batch) = queue.back_mut() else {
            return Err(crate::error::Error::Closed("batch"));
        };
        let delivery = batch.append(
            record.timestamp,
            record.key,
            record.value,
            record.headers,
            memory,
        )?;
        if batch.size >= batch_size {
            batch.full = true;
        }
        let appended = Appended {
            new_batch,
            full: batch.full,
        };
        Ok((appended, delivery))
    }

    /// Which partitions have a batch to send now. Batches with an id below
    /// `flush_below`, and all batches when `closing`, skip their linger.
    pub(crate) fn ready(&self, now: Instant, flush_below: u64, closing: bool) -> Ready {
        let mut ready = Ready::default();
        let mut wake = |at: Instant| {
            ready.next_check = Some(ready.next_check.map_or(at, |n| n.min(at)));
        };
        let mut partitions = Vec::new();
        for (topic, partition, queue) in self.iter() {
            let Some(head) = queue.front() else { continue };
            if let Some(at) = head.retry_at.filter(|&at| at > now) {
                wake(at);
                continue;
            }
            let linger_end = head.created + self.linger;
            let sendable = head.full
                || queue.len() > 1
                || head.attempts > 0
                || head.id < flush_below
                || closing
                || now >= linger_end;
            if sendable {
                partitions.push(TopicPartition::new(topic, partition));
            } else {
                wake(linger_end);
            }
        }
        ready.partitions = partitions;
        ready
    }

    /// The batch `tp` would send next.
    pub(crate) fn head(&self, tp: &TopicPartition) -> Option<&ProducerBatch> {
        self.queues.get(&tp.topic)?.get(&tp.partition)?.front()
    }

    /// Takes the next batch of `tp` to send; it takes no more records.
    pub(crate) fn pop(&mut self, tp: &TopicPartition) -> Option<ProducerBatch> {
        let partitions = self.queues.get_mut(&tp.topic)?;
        let queue = partitions.get_mut(&tp.partition)?;
        let mut batch = queue.pop_front()?;
        if queue.is_empty() {
            partitions.remove(&tp.partition);
            if partitions.is_empty() {
                self.queues.remove(&tp.topic);
            }
        }
        batch.full = true;
        Some(batch)
    }

    /// Puts a batch back for a retry: before every batch with a higher sequence or
    /// none, so retries go out in their original order.
    pub(crate) fn reenqueue(&mut self, batch: ProducerBatch) {
        let queue = self
            .queues
            .entry(batch.tp.topic.clone())
            .or_default()
            .entry(batch.tp.partition)
            .or_default();
        let pos = match batch.stamp {
            Some(s) => queue
                .iter()
                .position(|b| b.stamp.is_none_or(|o| o.base_sequence > s.base_sequence))
                .unwrap_or(queue.len()),
            None => queue
                .iter()
                .position(|b| b.attempts == 0 || b.id > batch.id)
                .unwrap_or(queue.len()),
        };
        queue.insert(pos, batch);
    }

    /// Takes out every queued batch older than `timeout`.
    pub(crate) fn expire(&mut self, now: Instant, timeout: Duration) -> Vec<ProducerBatch> {
        let mut expired = Vec::new();
        let scan_interval = (timeout / 20).min(EXPIRY_SCAN_INTERVAL_MAX);
        if self
            .last_expiry_scan
            .is_some_and(|last| now.saturating_duration_since(last) < scan_interval)
        {
            return expired;
        }
        self.last_expiry_scan = Some(now);
        let is_expired = |b: &ProducerBatch| now.saturating_duration_since(b.created) >= timeout;
        for queue in self.queues.values_mut().flat_map(BTreeMap::values_mut) {
            // The sender calls this on every loop; rebuilding queues that hold nothing
            // expired moved every queued batch and was a third of the client's CPU.
            if !queue.iter().any(is_expired) {
                continue;
            }
            let mut keep = VecDeque::with_capacity(queue.len());
            for b in queue.drain(..) {
                if is_expired(&b) {
                    expired.push(b);
                } else {
                    keep.push_back(b);
                }
            }
            *queue = keep;
        }
        for partitions in self.queues.values_mut() {
            partitions.retain(|_, q| !q.is_empty());
        }
        self.queues.retain(|_, partitions| !partitions.is_empty());
        expired
    }

    /// Takes out every queued batch (a fatal error or an aborted close).
    pub(crate) fn drain_all(&mut self) -> Vec<ProducerBatch> {
        std::mem::take(&mut self.queues)
            .into_values()
            .flat_map(BTreeMap::into_values)
            .flatten()
            .collect()
    }

    /// Forgets every assigned sequence (after an epoch bump they restart at 0, and
    /// are given again, in queue order, when the batches are next drained).
    pub(crate) fn clear_sequences(&mut self) {
        for b in self
            .queues
            .values_mut()
            .flat_map(BTreeMap::values_mut)
            .flatten()
        {
            b.stamp = None;
        }
    }

    /// Every queue with its partition, in `TopicPartition` order.
    fn iter(&self) -> impl Iterator<Item = (&str, i32, &VecDeque<ProducerBatch>)> {
        self.queues.iter().flat_map(|(topic, partitions)| {
            partitions
                .iter()
                .map(move |(&p, queue)| (topic.as_str(), p, queue))
        })
    }

    /// Records that a batch is finished (sent, failed or expired).
    pub(crate) fn done(&mut self, id: u64) {
        self.incomplete.remove(&id);
    }

    /// The id the next batch will get: `flush` waits for every id below it.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Whether every batch below `id` is finished.
    pub(crate) fn all_done_below(&self, id: u64) -> bool {
        self.incomplete.first().is_none_or(|&first| first >= id)
    }

    /// Whether no batch is unfinished.
    pub(crate) fn is_idle(&self) -> bool {
        self.incomplete.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::batch::Stamp;
    use std::sync::Arc;
    use tokio::sync::Semaphore;

    fn acc(batch_size: usize) -> Accumulator {
        Accumulator::new(
            batch_size,
            Duration::from_millis(5),
            Compression::None,
            None,
        )
    }

    fn push(a: &mut Accumulator, tp: &TopicPartition, value_len: usize, now: Instant) -> Appended {
        static SEM: std::sync::OnceLock<Arc<Semaphore>> = std::sync::OnceLock::new();
        let sem = SEM
            .get_or_init(|| Arc::new(Semaphore::new(1 << 30)))
            .clone();
        let value = vec![0u8; value_len];
        let rec = RecordRef {
            timestamp: 1,
            key: None,
            value: Some(&value),
            headers: &[],
        };
        let permit = sem.try_acquire_many_owned(1).unwrap();
        a.append(&tp.topic, tp.partition, rec, permit, || now)
            .unwrap()
            .0
    }

    #[test]
    fn batches_fill_to_batch_size_then_roll() {
        let tp = TopicPartition::new("t", 0);
        let now = Instant::now();
        let mut a = acc(1000);
        assert_eq!(
            push(&mut a, &tp, 300, now),
            Appended {
                new_batch: true,
                full: false
            }
        );
        assert_eq!(
            push(&mut a, &tp, 300, now),
            Appended {
                new_batch: false,
                full: false
            }
        );
        // a third 300-byte value would pass 1000 bytes: new batch, the old one is full
        assert_eq!(
            push(&mut a, &tp, 300, now),
            Appended {
                new_batch: true,
                full: false
            }
        );
        assert_eq!(a.queues[&tp.topic][&tp.partition].len(), 2);
        assert!(a.queues[&tp.topic][&tp.partition][0].full);
        // a record larger than batch.size gets a batch of its own, full at once
        assert_eq!(
            push(&mut a, &tp, 5000, now),
            Appended {
                new_batch: true,
                full: true
            }
        );
        assert_eq!(a.queues[&tp.topic][&tp.partition][2].record_count, 1);
    }

    #[test]
    fn linger_decides_when_a_partial_batch_is_ready() {
        let (t0, t1) = (TopicPartition::new("t", 0), TopicPartition::new("t", 1));
        let start = Instant::now();
        let mut a = acc(1000);
        push(&mut a, &t0, 10, start);
        push(&mut a, &t1, 10, start + Duration::from_millis(3));
        let r = a.ready(start + Duration::from_millis(1), 0, false);
        assert!(r.partitions.is_empty());
        assert_eq!(r.next_check, Some(start + Duration::from_millis(5)));
        let r = a.ready(start + Duration::from_millis(5), 0, false);
        assert_eq!(r.partitions, vec![t0.clone()]);
        assert_eq!(r.next_check, Some(start + Duration::from_millis(8)));
        // flush makes every existing batch ready at once; close does too
        let r = a.ready(start + Duration::from_millis(1), a.next_id(), false);
        assert_eq!(r.partitions.len(), 2);
        assert_eq!(a.ready(start, 0, true).partitions.len(), 2);
    }

    #[test]
    fn full_batches_are_ready_without_waiting() {
        let tp = TopicPartition::new("t", 0);
        let now = Instant::now();
        let mut a = acc(100);
        push(&mut a, &tp, 500, now);
        assert_eq!(a.ready(now, 0, false).partitions, vec![tp]);
    }

    #[test]
    fn retries_wait_for_backoff_and_keep_sequence_order() {
        let tp = TopicPartition::new("t", 0);
        let now = Instant::now();
        let mut a = acc(10);
        for _ in 0..3 {
            push(&mut a, &tp, 50, now);
        }
        let mut b0 = a.pop(&tp).unwrap();
        let mut b1 = a.pop(&tp).unwrap();
        let stamp = |s| {
            Some(Stamp {
                producer_id: 1,
                producer_epoch: 0,
                base_sequence: s,
            })
        };
        b0.stamp = stamp(0);
        b1.stamp = stamp(1);
        // the later batch fails first; the earlier one must still go first
        b1.attempts = 1;
        a.reenqueue(b1);
        b0.attempts = 1;
        b0.retry_at = Some(now + Duration::from_millis(100));
        a.reenqueue(b0);
        let ids: Vec<u64> = a.queues[&tp.topic][&tp.partition]
            .iter()
            .map(|b| b.id)
            .collect();
        assert_eq!(ids, vec![0, 1, 2]);
        let r = a.ready(now, 0, false);
        assert!(r.partitions.is_empty());
        assert_eq!(r.next_check, Some(now + Duration::from_millis(100)));
        assert_eq!(
            a.ready(now + Duration::from_millis(100), 0, false)
                .partitions,
            vec![tp]
        );
        a.clear_sequences();
        assert!(a.iter().flat_map(|(_, _, q)| q).all(|b| b.stamp.is_none()));
    }

    #[test]
    fn expiry_scans_are_rate_limited_but_never_miss_a_batch() {
        let tp = TopicPartition::new("t", 0);
        let now = Instant::now();
        let timeout = Duration::from_secs(5);
        let mut a = acc(10);
        push(&mut a, &tp, 50, now);
        assert!(a
            .expire(now + Duration::from_millis(4990), timeout)
            .is_empty());
        // Expired, but scanned 20 ms ago: left for the next scan.
        assert!(a
            .expire(now + Duration::from_millis(5010), timeout)
            .is_empty());
        let expired = a.expire(now + Duration::from_millis(5090), timeout);
        assert_eq!(expired.len(), 1);
    }

    #[test]
    fn expiry_and_flush_bookkeeping() {
        let tp = TopicPartition::new("t", 0);
        let now = Instant::now();
        let mut a = acc(10);
        push(&mut a, &tp, 50, now);
        push(&mut a, &tp, 50, now + Duration::from_secs(10));
        let mark = a.next_id();
        assert!(!a.all_done_below(mark));
        let expired = a.expire(now + Duration::from_secs(12), Duration::from_secs(5));
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].id, 0);
        a.done(0);
        assert!(a.all_done_below(1) && !a.all_done_below(mark));
        let b = a.pop(&tp).unwrap();
        a.done(b.id);
        assert!(a.all_done_below(mark) && a.is_idle());
    }
}
