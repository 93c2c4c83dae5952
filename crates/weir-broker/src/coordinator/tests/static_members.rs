//! Static membership (KIP-345): a restarted instance takes its old place without a
//! rebalance; an old instance is fenced.

use weir_protocol::messages::leave_group::MemberIdentity;

use super::*;

/// A static JoinGroup of `instance`.
fn static_join(group: &str, member: &str, instance: &str, protocol: &[u8]) -> JoinGroupRequest {
    JoinGroupRequest {
        group_instance_id: Some(instance.into()),
        ..join_request(group, member, &[("range", protocol)])
    }
}

/// A stable group of two static members i-a (leader) and i-b; their member ids.
async fn stable_static_pair(h: &Harness) -> (String, String) {
    // Static members skip MEMBER_ID_REQUIRED even at v5+.
    let mut a = h.join(5, static_join("g", "", "i-a", b"m")).await;
    let mut b = h.join(5, static_join("g", "", "i-b", b"m")).await;
    // The delay is extended once for the second member.
    h.advance(3_000).await;
    h.advance(3_000).await;
    let (a, b) = (answered(&mut a), answered(&mut b));
    assert!(a.member_id.starts_with("i-a-"), "{}", a.member_id);
    let mut s = h
        .sync(
            "g",
            &a.member_id,
            1,
            &[(&a.member_id, b"A"), (&b.member_id, b"B")],
        )
        .await;
    answered(&mut s);
    (a.member_id, b.member_id)
}

#[tokio::test]
async fn a_restarted_static_follower_rejoins_without_a_rebalance() {
    let h = Harness::new().await;
    let (a_id, b_id) = stable_static_pair(&h).await;
    let before = h.written("g").len();
    let mut b2 = h.join(5, static_join("g", "", "i-b", b"m")).await;
    let b2 = answered(&mut b2);
    assert_eq!(code(&b2), ErrorCode::None);
    assert_ne!(b2.member_id, b_id, "a new member id");
    assert_eq!(b2.generation_id, 1, "no new generation");
    assert_eq!(b2.leader, a_id);
    assert_eq!(h.state("g").await, "Stable");
    // The new id was persisted with the old assignment.
    let written = h.written("g");
    assert_eq!(written.len(), before + 1);
    let Some(Record::GroupMetadata { value: Some(v), .. }) = written.last() else {
        panic!("no group record");
    };
    assert!(v
        .members
        .iter()
        .any(|m| m.member_id == b2.member_id && m.assignment.as_ref() == b"B"));
    // Its SyncGroup returns the old assignment.
    let mut s = h.sync("g", &b2.member_id, 1, &[]).await;
    assert_eq!(answered(&mut s).assignment.as_ref(), b"B");
    // The old incarnation is fenced.
    assert_eq!(
        h.heartbeat_as("g", &b_id, Some("i-b"), 1).await,
        ErrorCode::FencedInstanceId
    );
    let mut s = h
        .groups
        .sync_group(SyncGroupRequest {
            group_id: "g".into(),
            generation_id: 1,
            member_id: b_id.clone(),
            group_instance_id: Some("i-b".into()),
            ..SyncGroupRequest::default()
        })
        .await;
    assert_eq!(
        answered(&mut s).error_code,
        ErrorCode::FencedInstanceId.code()
    );
    let mut j = h.join(5, static_join("g", &b_id, "i-b", b"m")).await;
    assert_eq!(code(&answered(&mut j)), ErrorCode::FencedInstanceId);
    assert_eq!(
        h.heartbeat_as("g", &b2.member_id, Some("i-b"), 1).await,
        ErrorCode::None
    );
}

#[tokio::test]
async fn a_restarted_static_leader_is_not_told_it_leads_before_v9_and_skips_assignment_from_v9() {
    let h = Harness::new().await;
    let (a_id, _) = stable_static_pair(&h).await;
    let mut a2 = h.join(8, static_join("g", "", "i-a", b"m")).await;
    let a2 = answered(&mut a2);
    assert_eq!(
        a2.leader, a_id,
        "the old id, so the client does not reassign"
    );
    assert!(a2.members.is_empty() && !a2.skip_assignment);
    let mut a3 = h.join(9, static_join("g", "", "i-a", b"m")).await;
    let a3 = answered(&mut a3);
    assert_eq!(a3.leader, a3.member_id, "v9: told it leads");
    assert!(a3.skip_assignment, "but must not reassign");
    assert_eq!(a3.members.len(), 2);
    assert_eq!(h.state("g").await, "Stable");
}

#[tokio::test]
async fn a_static_member_whose_protocols_change_the_vote_triggers_a_rebalance() {
    let h = Harness::new().await;
    let both: &[(&str, &[u8])] = &[("range", b"m"), ("roundrobin", b"m")];
    let mut a = h
        .join(
            5,
            JoinGroupRequest {
                group_instance_id: Some("i-a".into()),
                ..join_request("g", "", both)
            },
        )
        .await;
    let mut b = h
        .join(
            5,
            JoinGroupRequest {
                group_instance_id: Some("i-b".into()),
                ..join_request("g", "", both)
            },
        )
        .await;
    // The delay is extended once for the second member.
    h.advance(3_000).await;
    h.advance(3_000).await;
    let (a, _) = (answered(&mut a), answered(&mut b));
    assert_eq!(a.protocol_name.as_deref(), Some("range"));
    let mut s = h.sync("g", &a.member_id, 1, &[]).await;
    answered(&mut s);
    // i-b restarts preferring roundrobin, still supporting range: the vote keeps
    // range (a tie goes to the first name), so no rebalance.
    let prefers: &[(&str, &[u8])] = &[("roundrobin", b"m"), ("range", b"m")];
    let mut b2 = h
        .join(
            5,
            JoinGroupRequest {
                group_instance_id: Some("i-b".into()),
                ..join_request("g", "", prefers)
            },
        )
        .await;
    assert_eq!(code(&answered(&mut b2)), ErrorCode::None);
    assert_eq!(h.state("g").await, "Stable");
    // i-b restarts with roundrobin only: the protocol must change, so rebalance.
    let only: &[(&str, &[u8])] = &[("roundrobin", b"m")];
    let mut b3 = h
        .join(
            5,
            JoinGroupRequest {
                group_instance_id: Some("i-b".into()),
                ..join_request("g", "", only)
            },
        )
        .await;
    assert!(now(&mut b3).is_none());
    assert_eq!(h.state("g").await, "PreparingRebalance");
}

#[tokio::test]
async fn a_static_member_rejoining_during_completing_rebalance_forces_a_new_rebalance() {
    let h = Harness::new().await;
    let mut a = h.join(5, static_join("g", "", "i-a", b"m")).await;
    h.advance(3_000).await;
    let a = answered(&mut a);
    assert_eq!(h.state("g").await, "CompletingRebalance");
    let mut a2 = h.join(5, static_join("g", "", "i-a", b"m")).await;
    // The old id may already be in the leader's assignment: rebalance again.
    let a2 = answered(&mut a2);
    assert_eq!(a2.generation_id, 2);
    assert_ne!(a2.member_id, a.member_id);
}

#[tokio::test]
async fn static_members_are_kept_through_a_rebalance_they_miss_and_removed_by_instance_id() {
    let h = Harness::new().await;
    let (a_id, b_id) = stable_static_pair(&h).await;
    // a rejoins (leader: rebalance); b does not, but is static: kept at the timeout.
    let mut a = h.join(5, static_join("g", &a_id, "i-a", b"m")).await;
    for _ in 0..3 {
        h.advance(9_000).await;
        assert_eq!(
            h.heartbeat_as("g", &b_id, Some("i-b"), 1).await,
            ErrorCode::RebalanceInProgress
        );
    }
    h.advance(3_000).await;
    let a = answered(&mut a);
    assert_eq!((a.generation_id, a.members.len()), (2, 2), "b stays");
    // An admin removes i-b by instance id alone.
    let mut r = h
        .groups
        .leave_group(
            "g".into(),
            vec![MemberIdentity {
                member_id: String::new(),
                group_instance_id: Some("i-b".into()),
                ..MemberIdentity::default()
            }],
        )
        .await;
    assert_eq!(answered(&mut r).members[0].error_code, 0);
    assert_eq!(
        h.heartbeat_as("g", &b_id, Some("i-b"), 2).await,
        ErrorCode::UnknownMemberId
    );
}
