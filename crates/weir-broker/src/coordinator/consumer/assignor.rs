//! Server-side assignors and the target assignment (Kafka's
//! `TargetAssignmentBuilder`).
//!
//! - `uniform` (the default): every topic's partitions spread evenly over the
//!   members subscribed to it (counts differ by at most one per topic), keeping
//!   each partition where the previous target had it whenever the balance allows,
//!   so a rebalance moves as few partitions as it can.
//! - `range`: per topic, contiguous ranges over the subscribed members ordered by
//!   instance id (else member id), the first members getting one more; members
//!   subscribed to the same co-partitioned topics get the same partition numbers.
//!
//! The balance is Kafka's; the exact choice of which partition goes where is Weir's
//! (clients accept any valid assignment).

use std::collections::{BTreeMap, BTreeSet};

use weir_protocol::Uuid;

use super::records::ConsumerRecord;
use super::{Assignment, ConsumerGroup, ConsumerMember, TopicMeta};

/// The assignor a group uses when no member asks for one.
pub(crate) const DEFAULT_ASSIGNOR: &str = "uniform";

/// The assignors served (`group.consumer.assignors`).
pub(crate) const ASSIGNORS: [&str; 2] = ["uniform", "range"];

/// What the assignor knows of a member.
#[derive(Debug)]
struct Spec<'a> {
    /// Member id.
    id: &'a str,
    /// The order `range` uses: instance id, else member id.
    sort_key: &'a str,
    /// Subscribed topics that exist.
    topics: BTreeSet<Uuid>,
    /// Its previous target.
    current: Assignment,
}

/// The new target assignment of the group once `updated` replaces its previous
/// self (and `replaced`, a static member's previous incarnation, is gone), with the
/// records of every member whose target changes and of the new target epoch.
pub(crate) fn compute_target(
    group: &ConsumerGroup,
    updated: &ConsumerMember,
    replaced: Option<&str>,
    metadata: &BTreeMap<String, TopicMeta>,
    epoch: i32,
    assignor: &str,
) -> (BTreeMap<String, Assignment>, Vec<ConsumerRecord>) {
    let mut members: BTreeMap<&str, &ConsumerMember> = group
        .members
        .iter()
        .filter(|(id, _)| Some(id.as_str()) != replaced)
        .map(|(id, m)| (id.as_str(), m))
        .collect();
    members.insert(&updated.id, updated);
    let specs: Vec<Spec<'_>> = members
        .values()
        .map(|m| {
            let previous = if m.id == updated.id {
                group
                    .target
                    .get(replaced.unwrap_or(&updated.id))
                    .cloned()
                    .unwrap_or_default()
            } else {
                group.target_of(&m.id)
            };
            Spec {
                id: &m.id,
                sort_key: m.instance_id.as_deref().unwrap_or(&m.id),
                topics: metadata
                    .iter()
                    .filter(|(name, _)| m.subscribes_to(name))
                    .map(|(_, meta)| meta.id)
                    .collect(),
                current: previous,
            }
        })
        .collect();
    let partitions: BTreeMap<Uuid, i32> = metadata.values().map(|m| (m.id, m.partitions)).collect();
    let result = if assignor == "range" {
        range(&specs, &partitions)
    } else {
        uniform(&specs, &partitions)
    };
    let mut records = Vec::new();
    for spec in &specs {
        let new = result.get(spec.id).cloned().unwrap_or_default();
        if group.target.get(spec.id) != Some(&new) {
            records.push(ConsumerRecord::Target {
                group: group.id.clone(),
                member_id: spec.id.to_owned(),
                assignment: Some(new),
            });
        }
    }
    records.push(ConsumerRecord::TargetEpoch {
        group: group.id.clone(),
        epoch: Some(epoch),
    });
    (result, records)
}

/// Members (in `specs` order) subscribed to `topic`.
fn subscribers<'s, 'a>(specs: &'s [Spec<'a>], topic: Uuid) -> Vec<&'s Spec<'a>> {
    specs.iter().filter(|s| s.topics.contains(&topic)).collect()
}

/// The `uniform` assignor; see the module docs.
fn uniform(specs: &[Spec<'_>], partitions: &BTreeMap<Uuid, i32>) -> BTreeMap<String, Assignment> {
    let mut result: BTreeMap<String, Assignment> = specs
        .iter()
        .map(|s| (s.id.to_owned(), Assignment::new()))
        .collect();
    let mut totals: BTreeMap<&str, usize> = specs.iter().map(|s| (s.id, 0)).collect();
    for (&topic, &count) in partitions {
        let subs = subscribers(specs, topic);
        if subs.is_empty() || count <= 0 {
            continue;
        }
        let n = usize::try_from(count).unwrap_or(0);
        let (base, mut extra) = (n / subs.len(), n % subs.len());
        let mut taken: BTreeMap<&str, BTreeSet<i32>> = BTreeMap::new();
        let mut left_over: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        let mut free: BTreeSet<i32> = (0..count).collect();
        // Keep up to the base share of what each member had.
        for s in &subs {
            let had: Vec<i32> = s
                .current
                .get(&topic)
                .map(|ps| ps.iter().copied().filter(|p| free.contains(p)).collect())
                .unwrap_or_default();
            let (keep, rest) = had.split_at(had.len().min(base));
            for p in keep {
                free.remove(p);
            }
            taken.insert(s.id, keep.iter().copied().collect());
            left_over.insert(s.id, rest.to_vec());
        }
        // The extra slots go first to members that had more.
        let mut by_surplus: Vec<&Spec<'_>> = subs.clone();
        by_surplus.sort_by_key(|s| std::cmp::Reverse(left_over.get(s.id).map_or(0, Vec::len)));
        for s in by_surplus {
            if extra == 0 {
                break;
            }
            if let Some(p) = left_over
                .get(s.id)
                .and_then(|ps| ps.iter().copied().find(|p| free.contains(p)))
            {
                free.remove(&p);
                taken.entry(s.id).or_default().insert(p);
                extra -= 1;
            }
        }
        // The rest to whoever has least overall, first up to the base, then the
        // extra slots.
        for p in free {
            let load = |id: &str, taken: &BTreeMap<&str, BTreeSet<i32>>| {
                totals.get(id).copied().unwrap_or(0) + taken.get(id).map_or(0, BTreeSet::len)
            };
            let pick = |cap: usize, taken: &BTreeMap<&str, BTreeSet<i32>>| {
                subs.iter()
                    .filter(|s| taken.get(s.id).map_or(0, BTreeSet::len) < cap)
                    .min_by_key(|s| (load(s.id, taken), s.id))
                    .map(|s| s.id)
            };
            let chosen = match pick(base, &taken) {
                Some(id) => Some(id),
                None if extra > 0 => {
                    extra -= 1;
                    pick(base + 1, &taken)
                }
                None => None,
            };
            if let Some(id) = chosen {
                taken.entry(id).or_default().insert(p);
            }
        }
        for (id, ps) in taken {
            if ps.is_empty() {
                continue;
            }
            *totals.entry(id).or_default() += ps.len();
            if let Some(a) = result.get_mut(id) {
                a.insert(topic, ps);
            }
        }
    }
    result
}

/// The `range` assignor; see the module docs.
fn range(specs: &[Spec<'_>], partitions: &BTreeMap<Uuid, i32>) -> BTreeMap<String, Assignment> {
    let mut result: BTreeMap<String, Assignment> = specs
        .iter()
        .map(|s| (s.id.to_owned(), Assignment::new()))
        .collect();
    for (&topic, &count) in partitions {
        let mut subs = subscribers(specs, topic);
        if subs.is_empty() || count <= 0 {
            continue;
        }
        subs.sort_by_key(|s| (s.sort_key, s.id));
        let n = usize::try_from(count).unwrap_or(0);
        let (base, extra) = (n / subs.len(), n % subs.len());
        let mut next = 0i32;
        for (i, s) in subs.iter().enumerate() {
            let len = i32::try_from(base + usize::from(i < extra)).unwrap_or(0);
            if len > 0 {
                if let Some(a) = result.get_mut(s.id) {
                    a.insert(topic, (next..next + len).collect());
                }
            }
            next += len;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: u8) -> Uuid {
        Uuid([n; 16])
    }

    fn spec<'a>(id: &'a str, topics: &[u8], current: Assignment) -> Spec<'a> {
        Spec {
            id,
            sort_key: id,
            topics: topics.iter().map(|n| t(*n)).collect(),
            current,
        }
    }

    fn counts(r: &BTreeMap<String, Assignment>) -> Vec<usize> {
        r.values()
            .map(|a| a.values().map(BTreeSet::len).sum())
            .collect()
    }

    fn all_once(r: &BTreeMap<String, Assignment>, topic: Uuid, n: i32) {
        let mut seen: Vec<i32> = r
            .values()
            .flat_map(|a| a.get(&topic).into_iter().flatten().copied())
            .collect();
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..n).collect::<Vec<_>>(),
            "every partition exactly once"
        );
    }

    #[test]
    fn uniform_balances_and_sticks() {
        let parts: BTreeMap<Uuid, i32> = [(t(1), 6)].into_iter().collect();
        let first = uniform(
            &[
                spec("a", &[1], Assignment::new()),
                spec("b", &[1], Assignment::new()),
            ],
            &parts,
        );
        assert_eq!(counts(&first), [3, 3]);
        all_once(&first, t(1), 6);
        // A third member: each old member gives up one, keeping the rest.
        let specs = [
            spec("a", &[1], first["a"].clone()),
            spec("b", &[1], first["b"].clone()),
            spec("c", &[1], Assignment::new()),
        ];
        let second = uniform(&specs, &parts);
        assert_eq!(counts(&second), [2, 2, 2]);
        all_once(&second, t(1), 6);
        for id in ["a", "b"] {
            let kept = second[id][&t(1)].intersection(&first[id][&t(1)]).count();
            assert_eq!(kept, 2, "{id} keeps what it can");
        }
        // 4 partitions over 3 members: 2, 1, 1.
        let parts: BTreeMap<Uuid, i32> = [(t(1), 4)].into_iter().collect();
        let mut c = counts(&uniform(&specs, &parts));
        c.sort_unstable();
        assert_eq!(c, [1, 1, 2]);
    }

    #[test]
    fn uniform_handles_different_subscriptions() {
        let parts: BTreeMap<Uuid, i32> = [(t(1), 4), (t(2), 2)].into_iter().collect();
        let r = uniform(
            &[
                spec("a", &[1, 2], Assignment::new()),
                spec("b", &[1], Assignment::new()),
            ],
            &parts,
        );
        all_once(&r, t(1), 4);
        all_once(&r, t(2), 2);
        assert!(!r["b"].contains_key(&t(2)), "b does not subscribe to t2");
        assert_eq!(r["a"][&t(2)].len(), 2);
    }

    #[test]
    fn range_gives_contiguous_co_partitioned_ranges() {
        let parts: BTreeMap<Uuid, i32> = [(t(1), 3), (t(2), 3)].into_iter().collect();
        let r = range(
            &[
                spec("m0", &[1, 2], Assignment::new()),
                spec("m1", &[1, 2], Assignment::new()),
            ],
            &parts,
        );
        let expect = |ps: &[i32]| ps.iter().copied().collect::<BTreeSet<_>>();
        assert_eq!(r["m0"][&t(1)], expect(&[0, 1]));
        assert_eq!(r["m0"][&t(2)], expect(&[0, 1]));
        assert_eq!(r["m1"][&t(1)], expect(&[2]));
        assert_eq!(r["m1"][&t(2)], expect(&[2]));
    }
}
