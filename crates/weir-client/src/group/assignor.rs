//! Client-side partition assignors: the group leader runs one over every member's
//! subscription and sends each member its share in SyncGroup.
//!
//! - `range` (Kafka's `RangeAssignor`): per topic, the members subscribed to it in
//!   order each take a consecutive range; the first `partitions % members` take one
//!   more. Eager: every member gives up everything before each rebalance.
//! - `cooperative-sticky` (KIP-429): a balanced assignment that keeps as many
//!   partitions where they are as balance allows. Cooperative: a partition that
//!   moves is first only *revoked* from its owner (it is in nobody's assignment
//!   this round); the owner rejoins at once and the next round gives it to its new
//!   member. So partitions that do not move are never paused.
//!
//! Both are deterministic: the same input gives the same output on any leader.

use std::collections::{BTreeMap, BTreeSet};

use crate::cluster::TopicPartition;
use crate::group::protocol::Subscription;

/// A partition assignment strategy (`partition.assignment.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignor {
    /// `range`: consecutive ranges per topic; eager rebalancing.
    Range,
    /// `cooperative-sticky`: balanced and sticky; incremental cooperative
    /// rebalancing.
    CooperativeSticky,
}

/// One member as the leader sees it in the JoinGroup response.
#[derive(Debug, Clone)]
pub struct MemberSubscription {
    /// The member id.
    pub member_id: String,
    /// `group.instance.id`, for static members.
    pub instance_id: Option<String>,
    /// What it asked for and what it owns.
    pub subscription: Subscription,
}

impl Assignor {
    /// The protocol name in JoinGroup (what other clients call it too).
    pub fn name(self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::CooperativeSticky => "cooperative-sticky",
        }
    }

    /// The assignor with this protocol name.
    pub fn from_name(name: &str) -> Option<Assignor> {
        match name.trim() {
            "range" => Some(Assignor::Range),
            "cooperative-sticky" => Some(Assignor::CooperativeSticky),
            _ => None,
        }
    }

    /// Whether it rebalances cooperatively (members keep their partitions while the
    /// group rebalances, and only give up those that move).
    pub fn is_cooperative(self) -> bool {
        matches!(self, Assignor::CooperativeSticky)
    }

    /// Assigns the partitions of the subscribed topics (`partitions` has the
    /// partition count of each topic the cluster knows) to `members`. Every member
    /// gets an entry, empty if it gets nothing.
    pub fn assign(
        self,
        members: &[MemberSubscription],
        partitions: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Vec<TopicPartition>> {
        let mut out = match self {
            Assignor::Range => range(members, partitions),
            Assignor::CooperativeSticky => cooperative_sticky(members, partitions),
        };
        for m in members {
            out.entry(m.member_id.clone()).or_default().sort();
        }
        out
    }
}

/// The order members take partitions in: static members by instance id first
/// (stable across restarts), then by member id.
fn member_order(members: &[MemberSubscription]) -> Vec<&MemberSubscription> {
    let mut sorted: Vec<&MemberSubscription> = members.iter().collect();
    sorted.sort_by(|a, b| {
        (a.instance_id.is_none(), &a.instance_id, &a.member_id).cmp(&(
            b.instance_id.is_none(),
            &b.instance_id,
            &b.member_id,
        ))
    });
    sorted
}

fn range(
    members: &[MemberSubscription],
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let ordered = member_order(members);
    let mut out: BTreeMap<String, Vec<TopicPartition>> = BTreeMap::new();
    let topics: BTreeSet<&String> = members
        .iter()
        .flat_map(|m| m.subscription.topics.iter())
        .collect();
    for topic in topics {
        let Some(&count) = partitions.get(topic.as_str()) else {
            continue;
        };
        let subscribers: Vec<&&MemberSubscription> = ordered
            .iter()
            .filter(|m| m.subscription.topics.contains(topic))
            .collect();
        if subscribers.is_empty() || count <= 0 {
            continue;
        }
        let n = subscribers.len() as i32;
        let (each, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, m) in subscribers.into_iter().enumerate() {
            let take = each + i32::from((i as i32) < extra);
            let slot = out.entry(m.member_id.clone()).or_default();
            slot.extend((next..next + take).map(|p| TopicPartition::new(topic.clone(), p)));
            next += take;
        }
    }
    out
}

fn cooperative_sticky(
    members: &[MemberSubscription],
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let ordered = member_order(members);
    let subscribed = |m: &str, topic: &str| {
        members
            .iter()
            .any(|x| x.member_id == m && x.subscription.topics.iter().any(|t| t == topic))
    };
    let exists = |tp: &TopicPartition| {
        partitions
            .get(&tp.topic)
            .is_some_and(|&n| tp.partition >= 0 && tp.partition < n)
    };
    // Current owners: a partition claimed twice goes to the higher generation (the
    // other claim is stale), then to the member first in order.
    let mut owner: BTreeMap<TopicPartition, (i32, String)> = BTreeMap::new();
    for m in &ordered {
        for tp in &m.subscription.owned {
            if !exists(tp) || !subscribed(&m.member_id, &tp.topic) {
                continue;
            }
            let generation = m.subscription.generation;
            match owner.get(tp) {
                Some((g, _)) if *g >= generation => {}
                _ => {
                    owner.insert(tp.clone(), (generation, m.member_id.clone()));
                }
            }
        }
    }
    // Every partition somebody subscribes to.
    let mut all: Vec<TopicPartition> = Vec::new();
    let topics: BTreeSet<&String> = members
        .iter()
        .flat_map(|m| m.subscription.topics.iter())
        .collect();
    for topic in topics {
        if let Some(&n) = partitions.get(topic.as_str()) {
            all.extend((0..n).map(|p| TopicPartition::new(topic.clone(), p)));
        }
    }
    // Sticky start: everyone keeps what they validly own.
    let mut target: BTreeMap<String, BTreeSet<TopicPartition>> = ordered
        .iter()
        .map(|m| (m.member_id.clone(), BTreeSet::new()))
        .collect();
    for (tp, (_, m)) in &owner {
        if let Some(set) = target.get_mut(m) {
            set.insert(tp.clone());
        }
    }
    // Unowned partitions go to the least loaded eligible member.
    for tp in &all {
        if owner.contains_key(tp) {
            continue;
        }
        let best = ordered
            .iter()
            .filter(|m| subscribed(&m.member_id, &tp.topic))
            .min_by_key(|m| target.get(&m.member_id).map_or(0, BTreeSet::len));
        if let Some(m) = best {
            if let Some(set) = target.get_mut(&m.member_id) {
                set.insert(tp.clone());
            }
        }
    }
    // Balance: move from the most to the least loaded member while they differ by
    // more than one. Each move lowers the sum of squared loads, so this ends; the
    // bound is a backstop.
    let limit = all.len() * members.len() + 1;
    for _ in 0..limit {
        let mut moved = false;
        let mut by_load: Vec<&MemberSubscription> = ordered.clone();
        by_load
            .sort_by_key(|m| std::cmp::Reverse(target.get(&m.member_id).map_or(0, BTreeSet::len)));
        'outer: for from in &by_load {
            let from_len = target.get(&from.member_id).map_or(0, BTreeSet::len);
            for to in by_load.iter().rev() {
                let to_len = target.get(&to.member_id).map_or(0, BTreeSet::len);
                if from_len <= to_len + 1 {
                    break;
                }
                // Prefer moving a partition the giver did not own before.
                let candidates: Vec<TopicPartition> = target
                    .get(&from.member_id)
                    .map(|s| {
                        s.iter()
                            .filter(|tp| subscribed(&to.member_id, &tp.topic))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                let pick = candidates
                    .iter()
                    .rev()
                    .find(|tp| owner.get(*tp).is_none_or(|(_, o)| *o != from.member_id))
                    .or_else(|| candidates.last())
                    .cloned();
                if let Some(tp) = pick {
                    if let Some(s) = target.get_mut(&from.member_id) {
                        s.remove(&tp);
                    }
                    if let Some(s) = target.get_mut(&to.member_id) {
                        s.insert(tp);
                    }
                    moved = true;
                    break 'outer;
                }
            }
        }
        if !moved {
            break;
        }
    }
    // Cooperative: a partition changing hands is only revoked this round.
    target
        .into_iter()
        .map(|(m, set)| {
            let kept = set
                .into_iter()
                .filter(|tp| owner.get(tp).is_none_or(|(_, o)| *o == m))
                .collect();
            (m, kept)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(
        id: &str,
        topics: &[&str],
        owned: &[(&str, i32)],
        generation: i32,
    ) -> MemberSubscription {
        MemberSubscription {
            member_id: id.into(),
            instance_id: None,
            subscription: Subscription {
                topics: topics.iter().map(|t| (*t).to_owned()).collect(),
                owned: owned
                    .iter()
                    .map(|(t, p)| TopicPartition::new(*t, *p))
                    .collect(),
                generation,
                user_data: None,
            },
        }
    }

    fn counts(p: &[(&str, i32)]) -> BTreeMap<String, i32> {
        p.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect()
    }

    fn parts(a: &BTreeMap<String, Vec<TopicPartition>>, m: &str) -> Vec<i32> {
        a[m].iter().map(|tp| tp.partition).collect()
    }

    #[test]
    fn range_gives_consecutive_ranges_with_the_extra_to_the_first() {
        let ms = [
            member("b", &["t"], &[], -1),
            member("a", &["t"], &[], -1),
            member("c", &["t"], &[], -1),
        ];
        let a = Assignor::Range.assign(&ms, &counts(&[("t", 7)]));
        assert_eq!(parts(&a, "a"), vec![0, 1, 2]);
        assert_eq!(parts(&a, "b"), vec![3, 4]);
        assert_eq!(parts(&a, "c"), vec![5, 6]);
    }

    #[test]
    fn range_is_per_topic_and_only_for_subscribers() {
        let ms = [
            member("a", &["x", "y"], &[], -1),
            member("b", &["x"], &[], -1),
        ];
        let a = Assignor::Range.assign(&ms, &counts(&[("x", 2), ("y", 2)]));
        assert_eq!(
            a["a"],
            vec![
                TopicPartition::new("x", 0),
                TopicPartition::new("y", 0),
                TopicPartition::new("y", 1)
            ]
        );
        assert_eq!(a["b"], vec![TopicPartition::new("x", 1)]);
        // A member whose topic does not exist gets an empty entry.
        let a = Assignor::Range.assign(&[member("z", &["nope"], &[], -1)], &counts(&[]));
        assert!(a["z"].is_empty());
    }

    #[test]
    fn static_members_order_by_instance_id() {
        let mut x = member("m-9", &["t"], &[], -1);
        x.instance_id = Some("a".into());
        let y = member("m-1", &["t"], &[], -1);
        let a = Assignor::Range.assign(&[y, x], &counts(&[("t", 2)]));
        assert_eq!(parts(&a, "m-9"), vec![0]);
        assert_eq!(parts(&a, "m-1"), vec![1]);
    }

    #[test]
    fn cooperative_sticky_balances_a_fresh_group() {
        let ms = [
            member("a", &["t"], &[], -1),
            member("b", &["t"], &[], -1),
            member("c", &["t"], &[], -1),
        ];
        let a = Assignor::CooperativeSticky.assign(&ms, &counts(&[("t", 6)]));
        assert!(a.values().all(|v| v.len() == 2), "{a:?}");
        let all: BTreeSet<_> = a.values().flatten().collect();
        assert_eq!(all.len(), 6);
    }

    #[test]
    fn cooperative_sticky_keeps_owners_when_a_member_leaves() {
        // c left; a and b keep theirs and share c's.
        let ms = [
            member("a", &["t"], &[("t", 0), ("t", 1)], 3),
            member("b", &["t"], &[("t", 2), ("t", 3)], 3),
        ];
        let a = Assignor::CooperativeSticky.assign(&ms, &counts(&[("t", 6)]));
        assert_eq!(a["a"].len() + a["b"].len(), 6);
        assert!(parts(&a, "a").starts_with(&[0, 1]) && a["a"].len() == 3);
        assert!(parts(&a, "b").starts_with(&[2, 3]) && a["b"].len() == 3);
    }

    #[test]
    fn cooperative_sticky_joins_in_two_rounds_and_moves_only_what_must_move() {
        let full = counts(&[("t", 6)]);
        let ms = [
            member("a", &["t"], &[("t", 0), ("t", 1)], 1),
            member("b", &["t"], &[("t", 2), ("t", 3)], 1),
            member("c", &["t"], &[("t", 4), ("t", 5)], 1),
            member("d", &["t"], &[], -1),
        ];
        let round1 = Assignor::CooperativeSticky.assign(&ms, &full);
        // Nothing is handed over yet: d gets nothing, one owner gives up one (the
        // balanced target is 2-2-1-1).
        assert!(round1["d"].is_empty());
        let kept: usize = ["a", "b", "c"].iter().map(|m| round1[*m].len()).sum();
        assert_eq!(kept, 5);
        for m in ["a", "b", "c"] {
            let before: BTreeSet<_> = ms
                .iter()
                .find(|x| x.member_id == m)
                .unwrap()
                .subscription
                .owned
                .iter()
                .collect();
            assert!(
                round1[m].iter().all(|tp| before.contains(tp)),
                "{m} only keeps what it had"
            );
        }
        // Round two: everyone reports what it owns now; d gets the freed one.
        let ms2: Vec<MemberSubscription> = ["a", "b", "c", "d"]
            .iter()
            .map(|m| {
                let owned: Vec<(&str, i32)> =
                    round1[*m].iter().map(|tp| ("t", tp.partition)).collect();
                member(m, &["t"], &owned, 2)
            })
            .collect();
        let round2 = Assignor::CooperativeSticky.assign(&ms2, &full);
        for m in ["a", "b", "c"] {
            assert_eq!(round2[m], round1[m], "{m} keeps everything");
        }
        assert_eq!(round2["d"].len(), 1);
    }

    #[test]
    fn stale_claims_lose_to_the_newer_generation() {
        let ms = [
            member("a", &["t"], &[("t", 0)], 5),
            member("b", &["t"], &[("t", 0), ("t", 1)], 4),
        ];
        let a = Assignor::CooperativeSticky.assign(&ms, &counts(&[("t", 2)]));
        assert_eq!(parts(&a, "a"), vec![0]);
        assert_eq!(parts(&a, "b"), vec![1]);
        // Claims on partitions that no longer exist are ignored.
        let ms = [member("a", &["t"], &[("t", 9)], 1)];
        let a = Assignor::CooperativeSticky.assign(&ms, &counts(&[("t", 1)]));
        assert_eq!(parts(&a, "a"), vec![0]);
    }

    #[test]
    fn names_round_trip() {
        for a in [Assignor::Range, Assignor::CooperativeSticky] {
            assert_eq!(Assignor::from_name(a.name()), Some(a));
        }
        assert_eq!(Assignor::from_name("roundrobin"), None);
    }
}
