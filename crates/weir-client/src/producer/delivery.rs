//! Delivery futures: one shared outcome per batch, not a channel per record.
//!
//! Every record of a batch is acknowledged (or fails) together, so the batch holds
//! one [`Completer`] and each record's [`DeliveryFuture`] holds a reference to the
//! same outcome plus its own index and timestamp. Sending a record then costs a
//! reference-count bump instead of a channel allocation, and settling a batch of
//! hundreds of records is one store and one wake per waiting task.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

use super::batch::RecordMetadata;
use crate::error::{Error, Result};

/// What the broker said about a whole batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settled {
    /// Offset of the batch's first record; -1 when unknown (acks=0).
    pub(crate) base_offset: i64,
    /// The broker's append time for LogAppendTime topics, else -1.
    pub(crate) log_append_time: i64,
}

/// The outcome shared by a batch and its records' futures.
#[derive(Debug, Default)]
struct Outcome {
    result: OnceLock<Result<Settled>>,
    /// Tasks waiting for `result`, one entry per distinct waker.
    wakers: Mutex<Vec<Waker>>,
}

impl Outcome {
    fn wakers(&self) -> std::sync::MutexGuard<'_, Vec<Waker>> {
        self.wakers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The batch's end of its records' futures. Dropped without being settled (the
/// producer went away), it fails them with `Closed`, as a dropped channel did.
#[derive(Debug)]
pub(crate) struct Completer {
    outcome: Arc<Outcome>,
    partition: i32,
}

impl Completer {
    pub(crate) fn new(partition: i32) -> Self {
        Completer {
            outcome: Arc::default(),
            partition,
        }
    }

    /// The future of the batch's record number `index`.
    pub(crate) fn future(&self, index: i32, timestamp: i64) -> DeliveryFuture {
        DeliveryFuture {
            outcome: self.outcome.clone(),
            partition: self.partition,
            index,
            timestamp,
        }
    }

    /// Settles every record; only the first call counts.
    pub(crate) fn settle(&self, result: Result<Settled>) {
        if self.outcome.result.set(result).is_ok() {
            // Set before the wakers are taken: a poll that registered after this
            // point finds the result when it re-checks under the lock.
            let wakers = std::mem::take(&mut *self.outcome.wakers());
            for w in wakers {
                w.wake();
            }
        }
    }
}

impl Drop for Completer {
    fn drop(&mut self) {
        self.settle(Err(Error::Closed("producer")));
    }
}

/// Resolves when the record is acknowledged (or has failed for good).
#[derive(Debug)]
pub struct DeliveryFuture {
    outcome: Arc<Outcome>,
    partition: i32,
    /// The record's place in its batch (its offset delta).
    index: i32,
    /// The record's create time.
    timestamp: i64,
}

impl DeliveryFuture {
    fn resolve(&self, result: &Result<Settled>) -> Result<RecordMetadata> {
        let settled = result.as_ref().map_err(Clone::clone)?;
        Ok(RecordMetadata {
            partition: self.partition,
            offset: if settled.base_offset >= 0 {
                settled.base_offset + i64::from(self.index)
            } else {
                -1
            },
            timestamp: if settled.log_append_time >= 0 {
                settled.log_append_time
            } else {
                self.timestamp
            },
        })
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(r) = self.outcome.result.get() {
            return Poll::Ready(self.resolve(r));
        }
        let mut wakers = self.outcome.wakers();
        if let Some(r) = self.outcome.result.get() {
            drop(wakers);
            return Poll::Ready(self.resolve(r));
        }
        // Records of one batch awaited by one task share its waker: keep one.
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_resolve_together_with_their_own_offsets() {
        let c = Completer::new(3);
        let (a, b) = (c.future(0, 10), c.future(1, 11));
        let waiting = tokio::spawn(b);
        tokio::task::yield_now().await;
        c.settle(Ok(Settled {
            base_offset: 100,
            log_append_time: -1,
        }));
        let b = waiting.await.unwrap().unwrap();
        assert_eq!((b.partition, b.offset, b.timestamp), (3, 101, 11));
        assert_eq!(a.await.unwrap().offset, 100);
    }

    #[tokio::test]
    async fn a_dropped_batch_fails_its_records_and_only_the_first_outcome_counts() {
        let c = Completer::new(0);
        let f = c.future(0, 1);
        c.settle(Err(Error::Closed("test")));
        c.settle(Ok(Settled {
            base_offset: 5,
            log_append_time: 7,
        }));
        assert!(matches!(f.await, Err(Error::Closed("test"))));
        let c = Completer::new(0);
        let f = c.future(0, 1);
        drop(c);
        assert!(matches!(f.await, Err(Error::Closed("producer"))));
    }
}
