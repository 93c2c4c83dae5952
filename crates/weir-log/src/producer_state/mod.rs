//! Idempotent producer state: what makes a retried produce a no-op instead of a
//! duplicate.
//!
//! For each producer id the log keeps the producer's epoch and the metadata of its
//! last [`BATCHES_TO_RETAIN`] batches (sequence range, offset range). A leader append
//! checks each idempotent batch, in Kafka's order (`UnifiedLog.analyzeAndValidate-
//! ProducerState`, `ProducerAppendInfo`):
//!
//! 1. a batch with the same epoch and exactly the same first and last sequence as a
//!    retained batch is a **duplicate**: the client retried; it gets the original
//!    offsets back and nothing is written;
//! 2. an epoch older than the stored one is **fenced** (INVALID_PRODUCER_EPOCH);
//! 3. with a new epoch the first sequence must be 0, unless the producer is unknown:
//!    since KIP-360 an unknown producer (never seen, or expired) is accepted at any
//!    sequence;
//! 4. with the same epoch the first sequence must follow the last stored one, wrapping
//!    from `i32::MAX` to 0; otherwise **out of order**.
//!
//! Followers and recovery apply batches without checks ([`ProducerStateManager::
//! apply`]). The state is rebuilt on open from the latest `<offset>.snapshot` file
//! (taken at segment roll and at close) plus the batches after it.

mod snapshot;

use std::collections::{HashMap, VecDeque};

use weir_types::{Offset, ProducerEpoch, ProducerId, Sequence};

pub use snapshot::{
    delete_snapshots, list_snapshots, load_latest_snapshot, snapshot_path, write_snapshot,
    SNAPSHOT_SUFFIX,
};

/// How many recent batches per producer are kept for duplicate detection (Kafka's
/// `NUM_BATCHES_TO_RETAIN`, matching `max.in.flight.requests.per.connection <= 5`).
pub const BATCHES_TO_RETAIN: usize = 5;

/// What the log knows of one stored batch of a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    /// First sequence in the batch.
    pub first_seq: Sequence,
    /// Last sequence in the batch (wrapped past `i32::MAX`).
    pub last_seq: Sequence,
    /// Offset of the first record.
    pub first_offset: Offset,
    /// Offset of the last record.
    pub last_offset: Offset,
    /// The batch's max timestamp.
    pub max_timestamp: i64,
}

/// An idempotent batch about to be appended (or being replayed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    /// The producer.
    pub producer_id: ProducerId,
    /// The producer's epoch in the batch header.
    pub producer_epoch: ProducerEpoch,
    /// The batch's sequence range and offsets.
    pub meta: BatchMetadata,
}

impl ProducerBatch {
    /// A batch from its header fields: `base_sequence` plus `last_offset_delta`,
    /// wrapping at `i32::MAX` as Kafka's `incrementSequence` does.
    pub fn new(
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        base_sequence: Sequence,
        first_offset: Offset,
        last_offset: Offset,
        max_timestamp: i64,
    ) -> ProducerBatch {
        let delta = (last_offset.get() - first_offset.get()).clamp(0, i64::from(i32::MAX)) as i32;
        ProducerBatch {
            producer_id,
            producer_epoch,
            meta: BatchMetadata {
                first_seq: base_sequence,
                last_seq: increment_sequence(base_sequence, delta),
                first_offset,
                last_offset,
                max_timestamp,
            },
        }
    }
}

/// `seq + delta`, wrapping past `i32::MAX` to 0.
pub fn increment_sequence(seq: Sequence, delta: i32) -> Sequence {
    let s = seq.get();
    if s > i32::MAX - delta {
        Sequence(delta - (i32::MAX - s) - 1)
    } else {
        Sequence(s + delta)
    }
}

fn in_sequence(last: Sequence, next: Sequence) -> bool {
    i64::from(next.get()) == i64::from(last.get()) + 1
        || (next.get() == 0 && last.get() == i32::MAX)
}

/// One producer's stored state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    /// The newest epoch seen.
    pub epoch: ProducerEpoch,
    /// The last batches of that epoch, oldest first, at most [`BATCHES_TO_RETAIN`].
    pub batches: VecDeque<BatchMetadata>,
    /// Max timestamp of the last batch (for expiration).
    pub last_timestamp: i64,
}

impl ProducerEntry {
    fn last_seq(&self) -> Sequence {
        self.batches.back().map_or(Sequence(-1), |b| b.last_seq)
    }

    fn find_duplicate(&self, batch: &ProducerBatch) -> Option<BatchMetadata> {
        if batch.producer_epoch != self.epoch {
            return None;
        }
        self.batches
            .iter()
            .find(|b| b.first_seq == batch.meta.first_seq && b.last_seq == batch.meta.last_seq)
            .copied()
    }

    fn record(&mut self, batch: &ProducerBatch) {
        if batch.producer_epoch != self.epoch {
            self.epoch = batch.producer_epoch;
            self.batches.clear();
        }
        if self.batches.len() == BATCHES_TO_RETAIN {
            self.batches.pop_front();
        }
        self.batches.push_back(batch.meta);
        self.last_timestamp = batch.meta.max_timestamp;
    }
}

/// The outcome of checking a leader append against the producer's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// The batch is new and in sequence; it has been recorded (in the staging area).
    Ok,
    /// The batch was written before; these are its original offsets.
    Duplicate(BatchMetadata),
    /// The sequence does not follow; `last` is the last stored sequence (-1 if none).
    OutOfOrder {
        /// Last stored sequence for this producer and epoch.
        last: Sequence,
    },
    /// The epoch is older than `current`.
    Fenced {
        /// The producer's current epoch.
        current: ProducerEpoch,
    },
}

/// Producer state of one partition.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProducerStateManager {
    producers: HashMap<ProducerId, ProducerEntry>,
}

impl ProducerStateManager {
    /// Empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// The stored state of `producer_id`.
    pub fn entry(&self, producer_id: ProducerId) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Number of producers tracked.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Whether no producer is tracked.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Starts checking one leader append; nothing changes until [`ProducerAppend`]'s
    /// staged entries are applied with [`ProducerStateManager::commit`].
    pub fn begin_append(&self) -> ProducerAppend<'_> {
        ProducerAppend {
            manager: self,
            staged: HashMap::new(),
        }
    }

    /// Applies the staged entries of a successful append.
    pub fn commit(&mut self, staged: HashMap<ProducerId, ProducerEntry>) {
        self.producers.extend(staged);
    }

    /// Records a batch without checks (follower append, recovery replay).
    pub fn apply(&mut self, batch: &ProducerBatch) {
        if batch.producer_id == ProducerId::NONE {
            return;
        }
        self.producers
            .entry(batch.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: batch.producer_epoch,
                batches: VecDeque::new(),
                last_timestamp: batch.meta.max_timestamp,
            })
            .record(batch);
    }

    /// Forgets producers whose last batch is older than `expiration_ms` at `now_ms`
    /// (the broker's `producer.id.expiration.ms`).
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) {
        self.producers
            .retain(|_, e| now_ms.saturating_sub(e.last_timestamp) <= expiration_ms);
    }

    /// Drops all state.
    pub fn clear(&mut self) {
        self.producers.clear();
    }
}

/// The producer checks of one leader append, staged so that a failed or rejected
/// append leaves the manager unchanged.
#[derive(Debug)]
pub struct ProducerAppend<'a> {
    manager: &'a ProducerStateManager,
    staged: HashMap<ProducerId, ProducerEntry>,
}

impl ProducerAppend<'_> {
    /// Checks `batch` against the state including earlier batches of this append and,
    /// when it is [`SequenceCheck::Ok`], stages it.
    pub fn check_and_update(&mut self, batch: &ProducerBatch) -> SequenceCheck {
        if batch.producer_id == ProducerId::NONE {
            return SequenceCheck::Ok;
        }
        let current = self
            .staged
            .get(&batch.producer_id)
            .or_else(|| self.manager.producers.get(&batch.producer_id));
        if let Some(entry) = current {
            if let Some(dup) = entry.find_duplicate(batch) {
                return SequenceCheck::Duplicate(dup);
            }
            if batch.producer_epoch < entry.epoch {
                return SequenceCheck::Fenced {
                    current: entry.epoch,
                };
            }
            let ok = if batch.producer_epoch != entry.epoch {
                batch.meta.first_seq.get() == 0
            } else {
                in_sequence(entry.last_seq(), batch.meta.first_seq)
            };
            if !ok {
                let last = if batch.producer_epoch == entry.epoch {
                    entry.last_seq()
                } else {
                    Sequence(-1)
                };
                return SequenceCheck::OutOfOrder { last };
            }
        }
        // Unknown producers are accepted at any sequence (KIP-360).
        let mut entry = current.cloned().unwrap_or_else(|| ProducerEntry {
            epoch: batch.producer_epoch,
            batches: VecDeque::new(),
            last_timestamp: batch.meta.max_timestamp,
        });
        entry.record(batch);
        self.staged.insert(batch.producer_id, entry);
        SequenceCheck::Ok
    }

    /// The staged entries, for [`ProducerStateManager::commit`].
    pub fn into_staged(self) -> HashMap<ProducerId, ProducerEntry> {
        self.staged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn batch(pid: i64, epoch: i16, seq: i32, first: i64, count: i64) -> ProducerBatch {
        ProducerBatch::new(
            ProducerId(pid),
            ProducerEpoch(epoch),
            Sequence(seq),
            Offset(first),
            Offset(first + count - 1),
            1000 + first,
        )
    }

    fn check(m: &mut ProducerStateManager, b: &ProducerBatch) -> SequenceCheck {
        let mut append = m.begin_append();
        let r = append.check_and_update(b);
        let staged = append.into_staged();
        m.commit(staged);
        r
    }

    #[test]
    fn in_sequence_batches_are_accepted_and_retries_are_duplicates() {
        let mut m = ProducerStateManager::new();
        assert_eq!(check(&mut m, &batch(7, 0, 0, 0, 3)), SequenceCheck::Ok);
        assert_eq!(check(&mut m, &batch(7, 0, 3, 3, 2)), SequenceCheck::Ok);
        // A retry of the first batch, now arriving at a different offset.
        match check(&mut m, &batch(7, 0, 0, 99, 3)) {
            SequenceCheck::Duplicate(meta) => {
                assert_eq!(
                    (meta.first_offset, meta.last_offset),
                    (Offset(0), Offset(2))
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            check(&mut m, &batch(7, 0, 9, 5, 1)),
            SequenceCheck::OutOfOrder { last: Sequence(4) }
        );
        // Same first seq but different length is not a duplicate: it is out of order.
        assert!(matches!(
            check(&mut m, &batch(7, 0, 0, 5, 2)),
            SequenceCheck::OutOfOrder { .. }
        ));
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut m = ProducerStateManager::new();
        for i in 0..6 {
            assert_eq!(
                check(&mut m, &batch(1, 0, i, i64::from(i), 1)),
                SequenceCheck::Ok
            );
        }
        assert_eq!(
            m.entry(ProducerId(1)).unwrap().batches.len(),
            BATCHES_TO_RETAIN
        );
        assert!(matches!(
            check(&mut m, &batch(1, 0, 1, 50, 1)),
            SequenceCheck::Duplicate(_)
        ));
        assert!(matches!(
            check(&mut m, &batch(1, 0, 0, 50, 1)),
            SequenceCheck::OutOfOrder { .. }
        ));
    }

    #[test]
    fn epochs_fence_and_reset_sequences() {
        let mut m = ProducerStateManager::new();
        assert_eq!(check(&mut m, &batch(1, 3, 0, 0, 5)), SequenceCheck::Ok);
        assert_eq!(
            check(&mut m, &batch(1, 2, 5, 5, 1)),
            SequenceCheck::Fenced {
                current: ProducerEpoch(3)
            }
        );
        // A bumped epoch must restart at 0.
        assert!(matches!(
            check(&mut m, &batch(1, 4, 5, 5, 1)),
            SequenceCheck::OutOfOrder { .. }
        ));
        assert_eq!(check(&mut m, &batch(1, 4, 0, 5, 1)), SequenceCheck::Ok);
        assert_eq!(m.entry(ProducerId(1)).unwrap().batches.len(), 1);
    }

    #[test]
    fn unknown_producers_start_anywhere_and_sequences_wrap() {
        let mut m = ProducerStateManager::new();
        let max = i32::MAX;
        assert_eq!(
            check(&mut m, &batch(5, 0, max - 1, 0, 2)),
            SequenceCheck::Ok
        );
        assert_eq!(m.entry(ProducerId(5)).unwrap().last_seq(), Sequence(max));
        assert_eq!(check(&mut m, &batch(5, 0, 0, 2, 1)), SequenceCheck::Ok);
        // A batch spanning the wrap.
        assert_eq!(increment_sequence(Sequence(max - 1), 3), Sequence(1));
        assert_eq!(
            check(
                &mut ProducerStateManager::new(),
                &batch(6, 0, max - 1, 0, 4)
            ),
            SequenceCheck::Ok
        );
    }

    #[test]
    fn rejected_appends_leave_no_trace() {
        let m = ProducerStateManager::new();
        let mut append = m.begin_append();
        assert_eq!(
            append.check_and_update(&batch(1, 0, 0, 0, 1)),
            SequenceCheck::Ok
        );
        // The second batch of the same append sees the first.
        assert_eq!(
            append.check_and_update(&batch(1, 0, 1, 1, 1)),
            SequenceCheck::Ok
        );
        drop(append);
        assert!(m.is_empty());
    }

    #[test]
    fn snapshots_round_trip_and_bad_ones_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = ProducerStateManager::new();
        for i in 0..7 {
            m.apply(&batch(1, 0, i, i64::from(i), 1));
        }
        m.apply(&batch(2, 9, 0, 7, 4));
        write_snapshot(dir.path(), Offset(11), &m).unwrap();
        write_snapshot(dir.path(), Offset(20), &ProducerStateManager::new()).unwrap();
        assert_eq!(
            list_snapshots(dir.path()).unwrap(),
            vec![Offset(11), Offset(20)]
        );
        let (at, loaded) = load_latest_snapshot(dir.path(), Offset(15))
            .unwrap()
            .unwrap();
        assert_eq!((at, &loaded), (Offset(11), &m));

        let path = snapshot_path(dir.path(), Offset(20));
        let mut bytes = fs::read(&path).unwrap();
        bytes.push(0);
        fs::write(&path, bytes).unwrap();
        let (at, _) = load_latest_snapshot(dir.path(), Offset(100))
            .unwrap()
            .unwrap();
        assert_eq!(at, Offset(11));
        assert!(!path.exists(), "an unreadable snapshot is deleted");
        delete_snapshots(dir.path(), |o| o >= Offset(5)).unwrap();
        assert!(list_snapshots(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn expiration_forgets_idle_producers() {
        let mut m = ProducerStateManager::new();
        m.apply(&batch(1, 0, 0, 0, 1)); // timestamp 1000
        m.apply(&batch(2, 0, 0, 5000, 1)); // timestamp 6000
        m.remove_expired(7000, 2000);
        assert!(m.entry(ProducerId(1)).is_none());
        assert!(m.entry(ProducerId(2)).is_some());
    }
}
