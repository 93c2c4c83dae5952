//! Waking long-poll fetches when a partition gets new data.
//!
//! A Fetch with `min.bytes` not yet met waits until one of its partitions advances
//! (Kafka's `DelayedFetch`). Each waiting fetch owns one `Notify`; it registers a weak
//! reference to it with every partition it reads, reads, and then waits. A partition
//! whose visible end moves drains its [`WakeList`] and notifies each live waiter once.
//! Registering before reading closes the race with an append that lands between the
//! read and the wait: `Notify::notify_one` stores a permit when nobody waits yet.
//!
//! The list is bounded by the live waiters: a fetch that times out leaves a dead weak
//! reference behind, and [`WakeList::register`] prunes dead and duplicate entries
//! whenever the list has doubled since the last pruning.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::sync::Notify;

/// Below this many entries a list is never pruned.
const PRUNE_FLOOR: usize = 16;

/// Waiters on one partition's visible end; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct WakeList {
    inner: Mutex<List>,
}

#[derive(Debug, Default)]
struct List {
    waiters: Vec<Weak<Notify>>,
    /// Prune when `waiters` reaches this length.
    prune_at: usize,
}

impl WakeList {
    /// Adds `waiter`; it is notified at the next [`WakeList::wake_all`].
    pub(crate) fn register(&self, waiter: &Arc<Notify>) {
        // The list only holds wakers: a panic elsewhere cannot leave it inconsistent.
        let mut list = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if list.waiters.len() >= list.prune_at.max(PRUNE_FLOOR) {
            let mut seen = HashSet::new();
            list.waiters
                .retain(|w| w.strong_count() > 0 && seen.insert(w.as_ptr() as usize));
            list.prune_at = list.waiters.len() * 2;
        }
        list.waiters.push(Arc::downgrade(waiter));
    }

    /// Notifies every live waiter and empties the list (waiters re-register when
    /// they wait again).
    pub(crate) fn wake_all(&self) {
        let waiters = {
            let mut list = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            if list.waiters.is_empty() {
                return;
            }
            list.prune_at = 0;
            std::mem::take(&mut list.waiters)
        };
        for w in waiters {
            if let Some(n) = w.upgrade() {
                n.notify_one();
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .waiters
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wake_before_the_wait_is_not_lost() {
        let list = WakeList::default();
        let waiter = Arc::new(Notify::new());
        list.register(&waiter);
        list.wake_all();
        // The permit was stored: this returns at once.
        waiter.notified().await;
        assert_eq!(list.len(), 0);
    }

    #[test]
    fn dead_and_duplicate_waiters_are_pruned() {
        let list = WakeList::default();
        let live = Arc::new(Notify::new());
        for _ in 0..1000 {
            let dead = Arc::new(Notify::new());
            list.register(&dead);
            list.register(&live);
        }
        // Bounded by twice the live set (plus the floor), never by the history.
        assert!(list.len() <= 2 * PRUNE_FLOOR + 2, "{}", list.len());
    }
}
