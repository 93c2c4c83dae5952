//! Turning one partition's fetched bytes into records for the application.
//!
//! A [`CompletedFetch`] walks the batches of a fetch response lazily, a batch at a
//! time (decompressing each as it is reached), and applies the consumer's rules:
//!
//! - records before the position are skipped (a fetch returns whole batches, so the
//!   first batch often starts before the offset asked for);
//! - control batches (transaction markers) are never returned, but move the position
//!   past them;
//! - with read_committed, batches of aborted transactions are skipped, using the
//!   response's aborted-transaction list exactly as the Java client does: a producer
//!   is "aborted" from the first offset of its aborted transaction until its abort
//!   marker;
//! - a final partial batch (the response was cut at its size limit) is ignored; the
//!   next fetch starts at it.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use weir_protocol::messages::fetch::AbortedTransaction;
use weir_protocol::records::control::{ControlKey, ControlRecordType};
use weir_protocol::records::{BatchView, Batches, Records, TimestampType};

use super::config::IsolationLevel;
use crate::cluster::TopicPartition;
use crate::error::Result;

/// A record as the application sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// The timestamp (ms since the epoch).
    pub timestamp: i64,
    /// Whether `timestamp` is the producer's create time or the broker's append time.
    pub timestamp_type: TimestampType,
    /// The key; `None` is a null key.
    pub key: Option<Bytes>,
    /// The value; `None` is a tombstone.
    pub value: Option<Bytes>,
    /// The headers, in order (keys decoded as UTF-8, lossily).
    pub headers: Vec<(String, Option<Bytes>)>,
    /// The leader epoch of the batch, if the broker set one.
    pub leader_epoch: Option<i32>,
}

/// The batch being walked.
#[derive(Debug)]
struct Current {
    records: Records,
    next_offset: i64,
    timestamp_type: TimestampType,
    leader_epoch: Option<i32>,
}

/// One partition's share of a fetch response, consumed record by record.
#[derive(Debug)]
pub(crate) struct CompletedFetch {
    pub(crate) tp: TopicPartition,
    topic: Arc<str>,
    /// The partition's seek generation when the fetch was sent; a seek since makes
    /// this data stale.
    pub(crate) generation: u64,
    batches: Batches,
    current: Option<Current>,
    /// Aborted transactions not yet reached, by first offset.
    aborted: VecDeque<AbortedTransaction>,
    aborted_producers: HashSet<i64>,
    isolation: IsolationLevel,
    /// The next offset to return: the partition's position once this is drained.
    pub(crate) next_offset: i64,
    max_decompressed: usize,
    done: bool,
}

impl CompletedFetch {
    pub(crate) fn new(
        tp: TopicPartition,
        generation: u64,
        records: Bytes,
        aborted: Option<Vec<AbortedTransaction>>,
        isolation: IsolationLevel,
        fetch_offset: i64,
        max_decompressed: usize,
    ) -> Self {
        let mut aborted = aborted.unwrap_or_default();
        aborted.sort_by_key(|a| a.first_offset);
        CompletedFetch {
            topic: Arc::from(tp.topic.as_str()),
            tp,
            generation,
            batches: Batches::allowing_partial_tail(records),
            current: None,
            aborted: aborted.into(),
            aborted_producers: HashSet::new(),
            isolation,
            next_offset: fetch_offset,
            max_decompressed,
            done: false,
        }
    }

    /// Whether every record was returned.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// Appends up to `max` records to `out`. An error (a corrupt batch) leaves the
    /// position at the batch that failed.
    pub(crate) fn take(&mut self, max: usize, out: &mut Vec<ConsumerRecord>) -> Result<()> {
        let mut taken = 0;
        while taken < max && !self.done {
            if let Some(cur) = self.current.as_mut() {
                match cur.records.next() {
                    Some(record) => {
                        let r = record?;
                        if r.offset < self.next_offset {
                            continue;
                        }
                        self.next_offset = r.offset + 1;
                        out.push(ConsumerRecord {
                            topic: self.topic.clone(),
                            partition: self.tp.partition,
                            offset: r.offset,
                            timestamp: r.timestamp,
                            timestamp_type: cur.timestamp_type,
                            key: r.key,
                            value: r.value,
                            headers: r
                                .headers
                                .iter()
                                .map(|h| (String::from_utf8_lossy(&h.key).into_owned(), h.value))
                                .collect(),
                            leader_epoch: cur.leader_epoch,
                        });
                        taken += 1;
                    }
                    None => {
                        // Compaction may leave a batch's last offsets empty.
                        self.next_offset = self.next_offset.max(cur.next_offset);
                        self.current = None;
                    }
                }
                continue;
            }
            let Some(batch) = self.batches.next() else {
                self.done = true;
                break;
            };
            let batch = batch?;
            self.enter(batch)?;
        }
        Ok(())
    }

    /// Decides what to do with the next batch: skip it or start walking it.
    fn enter(&mut self, batch: BatchView) -> Result<()> {
        if batch.next_offset() <= self.next_offset {
            return Ok(());
        }
        if self.isolation == IsolationLevel::ReadCommitted && batch.has_producer_id() {
            while self
                .aborted
                .front()
                .is_some_and(|a| a.first_offset <= batch.last_offset())
            {
                if let Some(a) = self.aborted.pop_front() {
                    self.aborted_producers.insert(a.producer_id);
                }
            }
            if batch.is_control() {
                if is_abort_marker(&batch, self.max_decompressed) {
                    self.aborted_producers.remove(&batch.producer_id());
                }
            } else if batch.is_transactional()
                && self.aborted_producers.contains(&batch.producer_id())
            {
                self.next_offset = batch.next_offset();
                return Ok(());
            }
        }
        if batch.is_control() {
            self.next_offset = batch.next_offset();
            return Ok(());
        }
        let epoch = batch.partition_leader_epoch();
        self.current = Some(Current {
            records: batch.records(self.max_decompressed)?,
            next_offset: batch.next_offset(),
            timestamp_type: batch.timestamp_type(),
            leader_epoch: (epoch >= 0).then_some(epoch),
        });
        Ok(())
    }
}

/// Whether a control batch holds an abort marker.
fn is_abort_marker(batch: &BatchView, cap: usize) -> bool {
    let Ok(mut records) = batch.records(cap) else {
        return false;
    };
    let Some(Ok(record)) = records.next() else {
        return false;
    };
    record
        .key
        .as_deref()
        .and_then(|k| ControlKey::parse(k).ok())
        .is_some_and(|k| k.record_type == ControlRecordType::Abort)
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_protocol::records::control::EndTxnMarker;
    use weir_protocol::records::{patch_in_place, BatchBuilder};

    fn batch(base: i64, pid: i64, txn: bool, values: &[&str]) -> Bytes {
        let mut b = BatchBuilder::new()
            .base_offset(base)
            .producer(pid, 0, 0)
            .transactional(txn);
        for v in values {
            b.append(1000, None, Some(v.as_bytes()), &[]).unwrap();
        }
        b.build().unwrap()
    }

    fn marker(base: i64, pid: i64, kind: ControlRecordType) -> Bytes {
        let m = EndTxnMarker {
            commit: kind == ControlRecordType::Commit,
            coordinator_epoch: 0,
        };
        let mut b = m.build_batch(pid, 0, 1000).unwrap().to_vec();
        assert!(patch_in_place(&mut b, base, -1));
        Bytes::from(b)
    }

    fn walk(
        bytes: Vec<Bytes>,
        fetch_offset: i64,
        iso: IsolationLevel,
        aborted: Vec<(i64, i64)>,
    ) -> (Vec<String>, i64) {
        let buf: Vec<u8> = bytes.concat();
        let aborted = aborted
            .into_iter()
            .map(|(producer_id, first_offset)| AbortedTransaction {
                producer_id,
                first_offset,
            })
            .collect();
        let mut f = CompletedFetch::new(
            TopicPartition::new("t", 0),
            0,
            Bytes::from(buf),
            Some(aborted),
            iso,
            fetch_offset,
            1 << 20,
        );
        let mut out = Vec::new();
        while !f.is_done() {
            f.take(2, &mut out).unwrap();
        }
        let values = out
            .iter()
            .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
            .collect();
        (values, f.next_offset)
    }

    #[test]
    fn records_before_the_fetch_offset_are_skipped() {
        let (values, next) = walk(
            vec![
                batch(0, -1, false, &["a", "b", "c"]),
                batch(3, -1, false, &["d"]),
            ],
            1,
            IsolationLevel::ReadUncommitted,
            vec![],
        );
        assert_eq!(values, ["b", "c", "d"]);
        assert_eq!(next, 4);
    }

    #[test]
    fn control_batches_are_skipped_but_advance_the_position() {
        let (values, next) = walk(
            vec![
                batch(0, 7, true, &["a"]),
                marker(1, 7, ControlRecordType::Commit),
            ],
            0,
            IsolationLevel::ReadCommitted,
            vec![],
        );
        assert_eq!(values, ["a"]);
        assert_eq!(next, 2);
    }

    #[test]
    fn aborted_transactions_are_skipped_only_with_read_committed() {
        let log = || {
            vec![
                batch(0, 7, true, &["aborted1"]),
                batch(1, 8, true, &["committed"]),
                batch(2, 7, true, &["aborted2"]),
                marker(3, 7, ControlRecordType::Abort),
                marker(4, 8, ControlRecordType::Commit),
                batch(5, 7, true, &["later"]),
            ]
        };
        let (values, next) = walk(log(), 0, IsolationLevel::ReadCommitted, vec![(7, 0)]);
        assert_eq!(values, ["committed", "later"]);
        assert_eq!(next, 6);
        let (values, _) = walk(log(), 0, IsolationLevel::ReadUncommitted, vec![(7, 0)]);
        assert_eq!(values, ["aborted1", "committed", "aborted2", "later"]);
    }

    #[test]
    fn a_partial_final_batch_is_left_for_the_next_fetch() {
        let whole = batch(0, -1, false, &["a"]);
        let cut = batch(1, -1, false, &["b"]);
        let (values, next) = walk(
            vec![whole, cut.slice(..cut.len() - 3)],
            0,
            IsolationLevel::ReadUncommitted,
            vec![],
        );
        assert_eq!(values, ["a"]);
        assert_eq!(next, 1);
    }
}
