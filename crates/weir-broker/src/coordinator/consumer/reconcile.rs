//! A member's next current assignment, given the target assignment (Kafka's
//! `CurrentAssignmentBuilder`).
//!
//! A member first gives up what the target takes away (UNREVOKED_PARTITIONS, same
//! epoch), and only once it no longer reports owning those partitions does it move
//! to the target epoch. There it gets the new partitions nobody else still holds;
//! partitions another member has not released yet come later
//! (UNRELEASED_PARTITIONS). No partition is ever owned by two members.

use std::collections::HashMap;

use weir_protocol::Uuid;
use weir_types::ErrorCode;

use super::{Assignment, ConsumerMember, MemberState};

/// The partitions a member reports owning (`None`: not reported in this heartbeat).
pub(crate) type Owned<'a> = Option<&'a [(Uuid, Vec<i32>)]>;

/// The member's next state toward `target` at `target_epoch`; `owner_epochs` says at
/// which epoch each partition is currently owned by anyone. FENCED_MEMBER_EPOCH for
/// a member in an unknown state that still reports partitions.
pub(crate) fn next_assignment(
    member: &ConsumerMember,
    target_epoch: i32,
    target: &Assignment,
    owner_epochs: &HashMap<(Uuid, i32), i32>,
    owned: Owned<'_>,
) -> Result<ConsumerMember, ErrorCode> {
    match member.state {
        MemberState::Stable => {
            if member.member_epoch != target_epoch {
                Ok(compute(
                    member,
                    member.member_epoch,
                    target_epoch,
                    target,
                    owner_epochs,
                    owned,
                ))
            } else {
                Ok(member.clone())
            }
        }
        MemberState::UnrevokedPartitions => {
            if owns_any(owned, &member.pending_revocation) {
                return Ok(member.clone());
            }
            Ok(compute(
                member,
                member.member_epoch + 1,
                target_epoch,
                target,
                owner_epochs,
                owned,
            ))
        }
        MemberState::UnreleasedPartitions => Ok(compute(
            member,
            member.member_epoch,
            target_epoch,
            target,
            owner_epochs,
            owned,
        )),
        MemberState::Unknown => {
            if owned.is_none_or(|o| !o.is_empty()) {
                return Err(ErrorCode::FencedMemberEpoch);
            }
            Ok(compute(
                member,
                target_epoch,
                target_epoch,
                target,
                owner_epochs,
                owned,
            ))
        }
    }
}

/// Whether the member reports owning any of `partitions` (not reporting counts as
/// owning: the coordinator cannot assume a release it has not heard of).
fn owns_any(owned: Owned<'_>, partitions: &Assignment) -> bool {
    let Some(owned) = owned else {
        return true;
    };
    owned.iter().any(|(topic, ps)| {
        partitions
            .get(topic)
            .is_some_and(|pending| ps.iter().any(|p| pending.contains(p)))
    })
}

/// Kafka's `computeNextAssignment`.
fn compute(
    member: &ConsumerMember,
    member_epoch: i32,
    target_epoch: i32,
    target: &Assignment,
    owner_epochs: &HashMap<(Uuid, i32), i32>,
    owned: Owned<'_>,
) -> ConsumerMember {
    let mut unreleased = false;
    let mut assigned = Assignment::new();
    let mut revoke = Assignment::new();
    let mut pending = Assignment::new();
    let topics: std::collections::BTreeSet<Uuid> = target
        .keys()
        .chain(member.assigned.keys())
        .copied()
        .collect();
    for topic in topics {
        let wanted = target.get(&topic).cloned().unwrap_or_default();
        let current = member.assigned.get(&topic).cloned().unwrap_or_default();
        let keep: std::collections::BTreeSet<i32> =
            current.intersection(&wanted).copied().collect();
        let give_up: std::collections::BTreeSet<i32> = current.difference(&keep).copied().collect();
        let mut add: std::collections::BTreeSet<i32> = wanted.difference(&keep).copied().collect();
        let before = add.len();
        // A partition still owned by someone (at any epoch) is not handed out yet.
        add.retain(|p| !owner_epochs.contains_key(&(topic, *p)));
        unreleased |= add.len() != before;
        if !keep.is_empty() {
            assigned.insert(topic, keep);
        }
        if !give_up.is_empty() {
            revoke.insert(topic, give_up);
        }
        if !add.is_empty() {
            pending.insert(topic, add);
        }
    }
    let mut next = member.clone();
    if !revoke.is_empty() && owns_any(owned, &revoke) {
        next.state = MemberState::UnrevokedPartitions;
        next.bump_epoch(member_epoch);
        next.assigned = assigned;
        next.pending_revocation = revoke;
        return next;
    }
    for (topic, partitions) in pending {
        assigned.entry(topic).or_default().extend(partitions);
    }
    next.state = if unreleased {
        MemberState::UnreleasedPartitions
    } else {
        MemberState::Stable
    };
    next.bump_epoch(target_epoch);
    next.assigned = assigned;
    next.pending_revocation = Assignment::new();
    next
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn t(n: u8) -> Uuid {
        Uuid([n; 16])
    }

    fn a(entries: &[(u8, &[i32])]) -> Assignment {
        entries
            .iter()
            .map(|(topic, ps)| (t(*topic), ps.iter().copied().collect::<BTreeSet<_>>()))
            .collect()
    }

    fn member(epoch: i32, assigned: Assignment) -> ConsumerMember {
        ConsumerMember {
            member_epoch: epoch,
            assigned,
            ..ConsumerMember::new("m")
        }
    }

    #[test]
    fn a_new_member_gets_free_partitions_and_waits_for_held_ones() {
        let m = member(0, Assignment::new());
        let target = a(&[(1, &[0, 1, 2])]);
        let held: HashMap<(Uuid, i32), i32> = [((t(1), 2), 3)].into_iter().collect();
        let next = next_assignment(&m, 4, &target, &held, Some(&[])).expect("ok");
        assert_eq!((next.member_epoch, next.previous_member_epoch), (4, 0));
        assert_eq!(next.state, MemberState::UnreleasedPartitions);
        assert_eq!(next.assigned, a(&[(1, &[0, 1])]));
        // Once released, the next heartbeat gets the rest and is stable.
        let next = next_assignment(&next, 4, &target, &HashMap::new(), Some(&[])).expect("ok");
        assert_eq!((next.state, next.assigned), (MemberState::Stable, target));
    }

    #[test]
    fn revocation_comes_first_and_waits_for_the_member() {
        let m = member(3, a(&[(1, &[0, 1, 2, 3])]));
        let target = a(&[(1, &[0, 1])]);
        let owns_all = [(t(1), vec![0, 1, 2, 3])];
        let next = next_assignment(&m, 5, &target, &HashMap::new(), Some(&owns_all)).expect("ok");
        assert_eq!(next.state, MemberState::UnrevokedPartitions);
        assert_eq!(
            next.member_epoch, 3,
            "the epoch moves only after the release"
        );
        assert_eq!(next.assigned, a(&[(1, &[0, 1])]));
        assert_eq!(next.pending_revocation, a(&[(1, &[2, 3])]));
        // Still reporting 2 and 3: no change.
        let same =
            next_assignment(&next, 5, &target, &HashMap::new(), Some(&owns_all)).expect("ok");
        assert_eq!(same, next);
        // Released: the new epoch.
        let released = [(t(1), vec![0, 1])];
        let done =
            next_assignment(&next, 5, &target, &HashMap::new(), Some(&released)).expect("ok");
        assert_eq!(
            (done.state, done.member_epoch, done.previous_member_epoch),
            (MemberState::Stable, 5, 3)
        );
        assert!(done.pending_revocation.is_empty());
    }

    #[test]
    fn an_unknown_state_with_partitions_is_fenced() {
        let m = ConsumerMember {
            state: MemberState::Unknown,
            ..member(2, Assignment::new())
        };
        let err = next_assignment(
            &m,
            2,
            &Assignment::new(),
            &HashMap::new(),
            Some(&[(t(1), vec![0])]),
        );
        assert_eq!(err, Err(ErrorCode::FencedMemberEpoch));
    }
}
