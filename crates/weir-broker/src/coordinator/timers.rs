//! Keyed timers of one shard: session expiry, rebalance and sync deadlines, the
//! initial rebalance delay, and the periodic offset-retention sweep.
//!
//! Kafka's coordinator schedules each of these under a key (`heartbeat-<group>-
//! <member>`, `join-<group>`, `sync-<group>`); scheduling a key again replaces its
//! deadline, which is how a heartbeat pushes a session expiry back. This is the same
//! structure as plain data: the state machine schedules and cancels, and whoever
//! drives time (the coordinator's timer task, or a unit test with a fake clock) pops
//! the expired entries and runs them as operations. Nothing here sleeps.
//!
//! Time is milliseconds on the coordinator's monotonic clock.

use std::collections::{BTreeSet, HashMap};

/// What a timer is for: the key that scheduling again replaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum TimerKey {
    /// A member's session (or a pending member's wait for its second JoinGroup).
    Heartbeat {
        /// The group.
        group: String,
        /// The member.
        member: String,
    },
    /// The end of a group's join phase (initial delay or rebalance timeout).
    Join {
        /// The group.
        group: String,
    },
    /// The deadline for every member of a new generation to SyncGroup.
    Sync {
        /// The group.
        group: String,
    },
    /// A KIP-848 member's session.
    ConsumerSession {
        /// The group.
        group: String,
        /// The member.
        member: String,
    },
    /// A KIP-848 member's deadline to release revoked partitions.
    ConsumerRebalance {
        /// The group.
        group: String,
        /// The member.
        member: String,
    },
    /// The periodic sweep for expired offsets and empty groups.
    Retention,
}

/// What to do when a timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerAction {
    /// Expire the member's session unless it heartbeated (the key names it).
    ExpireHeartbeat,
    /// Complete the join phase with whoever joined.
    CompleteJoin,
    /// The initial rebalance delay ran out: extend it if members kept arriving
    /// (by at most `delay_ms`, within `remaining_ms`), else complete the join.
    InitialRebalance {
        /// The delay just waited.
        delay_ms: i32,
        /// What is left of the rebalance timeout.
        remaining_ms: i32,
    },
    /// Members of `generation` that have not sent SyncGroup are removed.
    ExpireSync {
        /// The generation the deadline was set for.
        generation: i32,
    },
    /// Delete expired offsets and groups left with nothing.
    Retention,
    /// Fence a KIP-848 member that stopped heartbeating.
    ExpireConsumerSession,
    /// Fence a KIP-848 member still at `epoch` (it did not release its revoked
    /// partitions in time).
    ExpireConsumerRebalance {
        /// The member epoch the deadline was set at.
        epoch: i32,
    },
}

/// A shard's timers.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    /// Deadline, sequence number and action of each key.
    by_key: HashMap<TimerKey, (i64, u64, TimerAction)>,
    /// The same entries in firing order (sequence numbers break ties in scheduling
    /// order).
    queue: BTreeSet<(i64, u64, TimerKey)>,
    /// The next sequence number.
    next_seq: u64,
}

impl Timers {
    /// Schedules `action` under `key` at `deadline_ms`, replacing what the key had.
    pub(crate) fn schedule(&mut self, key: TimerKey, deadline_ms: i64, action: TimerAction) {
        self.cancel(&key);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.insert((deadline_ms, seq, key.clone()));
        self.by_key.insert(key, (deadline_ms, seq, action));
    }

    /// Cancels the timer under `key`, if any.
    pub(crate) fn cancel(&mut self, key: &TimerKey) {
        if let Some((deadline, seq, _)) = self.by_key.remove(key) {
            self.queue.remove(&(deadline, seq, key.clone()));
        }
    }

    /// Cancels every timer of `group`.
    pub(crate) fn cancel_group(&mut self, group: &str) {
        let keys: Vec<TimerKey> = self
            .by_key
            .keys()
            .filter(|k| match k {
                TimerKey::Heartbeat { group: g, .. }
                | TimerKey::Join { group: g }
                | TimerKey::Sync { group: g }
                | TimerKey::ConsumerSession { group: g, .. }
                | TimerKey::ConsumerRebalance { group: g, .. } => g == group,
                TimerKey::Retention => false,
            })
            .cloned()
            .collect();
        for key in keys {
            self.cancel(&key);
        }
    }

    /// Whether `key` is scheduled.
    #[cfg(test)]
    pub(crate) fn is_scheduled(&self, key: &TimerKey) -> bool {
        self.by_key.contains_key(key)
    }

    /// The deadline of `key`, if scheduled.
    #[cfg(test)]
    pub(crate) fn deadline(&self, key: &TimerKey) -> Option<i64> {
        self.by_key.get(key).map(|(d, _, _)| *d)
    }

    /// The earliest deadline.
    pub(crate) fn next_deadline(&self) -> Option<i64> {
        self.queue.first().map(|(d, _, _)| *d)
    }

    /// Removes and returns the earliest timer due at `now_ms`, if any. One at a time,
    /// because running one may schedule or cancel others.
    pub(crate) fn pop_expired(&mut self, now_ms: i64) -> Option<(TimerKey, TimerAction)> {
        let (deadline, _, key) = self.queue.first()?.clone();
        if deadline > now_ms {
            return None;
        }
        let (_, _, action) = self.by_key.remove(&key)?;
        self.queue.pop_first();
        Some((key, action))
    }

    /// Drops every timer (the shard is unloaded).
    pub(crate) fn clear(&mut self) {
        self.by_key.clear();
        self.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hb(member: &str) -> TimerKey {
        TimerKey::Heartbeat {
            group: "g".into(),
            member: member.into(),
        }
    }

    #[test]
    fn rescheduling_replaces_and_expiry_is_in_deadline_order() {
        let mut t = Timers::default();
        t.schedule(hb("a"), 100, TimerAction::ExpireHeartbeat);
        t.schedule(hb("b"), 50, TimerAction::ExpireHeartbeat);
        t.schedule(hb("a"), 200, TimerAction::ExpireHeartbeat);
        assert_eq!(t.next_deadline(), Some(50));
        assert_eq!(t.pop_expired(49), None);
        assert_eq!(
            t.pop_expired(150),
            Some((hb("b"), TimerAction::ExpireHeartbeat))
        );
        assert_eq!(t.pop_expired(150), None, "a was pushed back to 200");
        assert_eq!(t.deadline(&hb("a")), Some(200));
        t.cancel(&hb("a"));
        assert_eq!(t.pop_expired(1_000), None);
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn cancel_group_spares_other_groups_and_the_sweep() {
        let mut t = Timers::default();
        t.schedule(hb("a"), 1, TimerAction::ExpireHeartbeat);
        t.schedule(
            TimerKey::Join { group: "g".into() },
            1,
            TimerAction::CompleteJoin,
        );
        t.schedule(
            TimerKey::Join { group: "h".into() },
            1,
            TimerAction::CompleteJoin,
        );
        t.schedule(TimerKey::Retention, 1, TimerAction::Retention);
        t.cancel_group("g");
        assert!(t.is_scheduled(&TimerKey::Join { group: "h".into() }));
        assert!(t.is_scheduled(&TimerKey::Retention));
        assert!(!t.is_scheduled(&hb("a")));
    }
}
