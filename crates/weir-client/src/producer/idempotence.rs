//! Idempotent producer bookkeeping: the producer id and epoch, and per partition the
//! next sequence to assign and the last one acknowledged.
//!
//! The broker keeps, per producer id and partition, the sequences of the last five
//! batches it appended. A retried batch carries its original sequence, so the broker
//! recognises a duplicate and answers with the original offset instead of appending
//! twice; a batch whose sequence skips ahead is refused with
//! OUT_OF_ORDER_SEQUENCE_NUMBER, which is what keeps retries in order.
//!
//! Two errors mean the broker and the producer no longer agree, and are handled as
//! the Java client does (KIP-360): the producer asks for an *epoch bump*
//! (InitProducerId with its current id and epoch), after which every partition's
//! sequences restart at 0 and unacknowledged batches are stamped again in their
//! original order.
//!
//! - UNKNOWN_PRODUCER_ID: the broker lost the producer's state (its log start moved
//!   past the producer's last write). Retry after a bump, unless the response carried
//!   no log start offset (-1): then the partition is moving, retry as is.
//! - OUT_OF_ORDER_SEQUENCE_NUMBER: if an earlier batch of the partition is still
//!   unresolved (this batch is not the one right after the last acknowledged), the gap
//!   will close when that batch is retried: retry as is. If this batch *is* the next
//!   one, the broker really lost data it had acknowledged: bump and retry.
//!
//! A batch that fails for good or expires after it was sent leaves a gap in the
//! sequence the broker can never see filled, so that too asks for a bump.

use std::collections::HashMap;

use weir_types::ErrorCode;

use super::batch::Stamp;
use crate::cluster::TopicPartition;

/// The producer id and epoch from InitProducerId.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProducerIdentity {
    pub(crate) id: i64,
    pub(crate) epoch: i16,
}

/// What to do with a batch the broker refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Send it again as it is (same sequence).
    Retry,
    /// Bump the epoch first; the batch is re-stamped when it is next sent.
    RetryAfterBump,
    /// Fail the batch.
    Fail,
}

#[derive(Debug, Clone, Copy)]
struct PartitionSequence {
    /// The base sequence the next new batch gets.
    next: i32,
    /// The last sequence acknowledged (-1: none yet under this epoch).
    last_acked: i32,
}

impl Default for PartitionSequence {
    fn default() -> Self {
        PartitionSequence {
            next: 0,
            last_acked: -1,
        }
    }
}

/// The idempotent producer's state; owned by the sender task.
#[derive(Debug, Default)]
pub(crate) struct Idempotence {
    identity: Option<ProducerIdentity>,
    /// An epoch bump (or a first id) is needed before anything else is sent.
    bump_requested: bool,
    partitions: HashMap<TopicPartition, PartitionSequence>,
}

/// `seq + n` with Kafka's wrap-around from `i32::MAX` to 0.
pub(crate) fn increment_sequence(seq: i32, n: i32) -> i32 {
    if seq > i32::MAX - n {
        n - (i32::MAX - seq) - 1
    } else {
        seq + n
    }
}

impl Idempotence {
    /// The current identity, if the producer has one and no bump is pending.
    pub(crate) fn identity(&self) -> Option<ProducerIdentity> {
        self.identity.filter(|_| !self.bump_requested)
    }

    /// The identity to bump from (InitProducerId v3+), if any.
    pub(crate) fn current(&self) -> Option<ProducerIdentity> {
        self.identity
    }

    /// Whether sending must wait for InitProducerId.
    pub(crate) fn needs_producer_id(&self) -> bool {
        self.identity.is_none() || self.bump_requested
    }

    /// Asks for an epoch bump before the next send.
    pub(crate) fn request_bump(&mut self) {
        if !self.bump_requested {
            tracing::debug!(identity = ?self.identity, "idempotent producer: epoch bump requested");
        }
        self.bump_requested = true;
    }

    /// Installs a new id/epoch (first or bumped): every sequence restarts at 0.
    pub(crate) fn reset(&mut self, identity: ProducerIdentity) {
        self.identity = Some(identity);
        self.bump_requested = false;
        self.partitions.clear();
    }

    /// The stamp for a new batch of `count` records to `tp`; `None` without an id.
    pub(crate) fn assign(&mut self, tp: &TopicPartition, count: i32) -> Option<Stamp> {
        let identity = self.identity()?;
        let p = self.partitions.entry(tp.clone()).or_default();
        let base_sequence = p.next;
        p.next = increment_sequence(p.next, count);
        Some(Stamp {
            producer_id: identity.id,
            producer_epoch: identity.epoch,
            base_sequence,
        })
    }

    /// Whether `stamp` was made under the current identity.
    pub(crate) fn is_current(&self, stamp: &Stamp) -> bool {
        self.identity()
            .is_some_and(|i| i.id == stamp.producer_id && i.epoch == stamp.producer_epoch)
    }

    /// Records an acknowledged batch.
    pub(crate) fn acked(&mut self, tp: &TopicPartition, stamp: &Stamp, count: i32) {
        if !self.is_current(stamp) {
            return;
        }
        let p = self.partitions.entry(tp.clone()).or_default();
        p.last_acked = increment_sequence(stamp.base_sequence, count - 1);
    }

    /// Decides what to do about a refused batch of `tp` stamped `stamp`.
    pub(crate) fn on_error(
        &mut self,
        tp: &TopicPartition,
        stamp: Option<&Stamp>,
        code: ErrorCode,
        log_start_offset: i64,
    ) -> Decision {
        let Some(stamp) = stamp else {
            return retriable(code);
        };
        if !self.is_current(stamp) {
            // Stamped under an epoch that was bumped since: it is re-stamped on resend.
            return if code.is_retriable()
                || matches!(
                    code,
                    ErrorCode::OutOfOrderSequenceNumber | ErrorCode::UnknownProducerId
                ) {
                Decision::Retry
            } else {
                Decision::Fail
            };
        }
        let decision = match code {
            ErrorCode::UnknownProducerId if log_start_offset < 0 => Decision::Retry,
            ErrorCode::UnknownProducerId => Decision::RetryAfterBump,
            ErrorCode::OutOfOrderSequenceNumber => {
                let last = self.partitions.get(tp).map_or(-1, |p| p.last_acked);
                if stamp.base_sequence == increment_sequence(last, 1) {
                    Decision::RetryAfterBump
                } else {
                    Decision::Retry
                }
            }
            ErrorCode::InvalidProducerEpoch | ErrorCode::ProducerFenced => Decision::RetryAfterBump,
            other => retriable(other),
        };
        if decision == Decision::RetryAfterBump {
            self.request_bump();
        }
        decision
    }

    /// A batch stamped `stamp` failed for good or expired after being sent: its
    /// sequence can never be filled, so later batches need a new epoch.
    pub(crate) fn on_abandoned(&mut self, stamp: Option<&Stamp>) {
        if stamp.is_some_and(|s| self.is_current(s)) {
            self.request_bump();
        }
    }
}

fn retriable(code: ErrorCode) -> Decision {
    if code.is_retriable() {
        Decision::Retry
    } else {
        Decision::Fail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idem() -> Idempotence {
        let mut i = Idempotence::default();
        assert!(i.needs_producer_id());
        i.reset(ProducerIdentity { id: 42, epoch: 0 });
        i
    }

    #[test]
    fn sequences_advance_per_partition_and_wrap() {
        let (a, b) = (TopicPartition::new("t", 0), TopicPartition::new("t", 1));
        let mut i = idem();
        assert_eq!(i.assign(&a, 5).unwrap().base_sequence, 0);
        assert_eq!(i.assign(&a, 3).unwrap().base_sequence, 5);
        assert_eq!(i.assign(&b, 1).unwrap().base_sequence, 0);
        assert_eq!(i.assign(&a, 1).unwrap().base_sequence, 8);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 5), 3);
        assert_eq!(increment_sequence(-1, 1), 0);
    }

    #[test]
    fn out_of_order_retries_unless_it_is_the_next_batch() {
        let tp = TopicPartition::new("t", 0);
        let mut i = idem();
        let s0 = i.assign(&tp, 10).unwrap();
        let s1 = i.assign(&tp, 10).unwrap();
        // batch 1 refused while batch 0 is unresolved: the gap may close, retry as is
        assert_eq!(
            i.on_error(&tp, Some(&s1), ErrorCode::OutOfOrderSequenceNumber, 0),
            Decision::Retry
        );
        assert!(!i.needs_producer_id());
        i.acked(&tp, &s0, 10);
        // now batch 1 is the next one and still refused: the broker lost data
        assert_eq!(
            i.on_error(&tp, Some(&s1), ErrorCode::OutOfOrderSequenceNumber, 0),
            Decision::RetryAfterBump
        );
        assert!(i.needs_producer_id() && i.identity().is_none());
        assert!(
            i.assign(&tp, 1).is_none(),
            "no sequences while a bump is pending"
        );
        i.reset(ProducerIdentity { id: 42, epoch: 1 });
        let s = i.assign(&tp, 1).unwrap();
        assert_eq!((s.producer_epoch, s.base_sequence), (1, 0));
        assert!(!i.is_current(&s1));
    }

    #[test]
    fn unknown_producer_id_bumps_only_with_a_log_start_offset() {
        let tp = TopicPartition::new("t", 0);
        let mut i = idem();
        let s = i.assign(&tp, 1).unwrap();
        assert_eq!(
            i.on_error(&tp, Some(&s), ErrorCode::UnknownProducerId, -1),
            Decision::Retry
        );
        assert!(!i.needs_producer_id());
        assert_eq!(
            i.on_error(&tp, Some(&s), ErrorCode::UnknownProducerId, 100),
            Decision::RetryAfterBump
        );
        assert!(i.needs_producer_id());
    }

    #[test]
    fn other_errors_follow_retriability_and_abandoned_batches_bump() {
        let tp = TopicPartition::new("t", 0);
        let mut i = idem();
        let s = i.assign(&tp, 1).unwrap();
        assert_eq!(
            i.on_error(&tp, Some(&s), ErrorCode::NotLeaderOrFollower, 0),
            Decision::Retry
        );
        assert_eq!(
            i.on_error(&tp, Some(&s), ErrorCode::MessageTooLarge, 0),
            Decision::Fail
        );
        assert_eq!(
            i.on_error(&tp, None, ErrorCode::NotEnoughReplicas, 0),
            Decision::Retry
        );
        assert!(!i.needs_producer_id());
        i.on_abandoned(Some(&s));
        assert!(i.needs_producer_id());
    }
}
