//! SyncGroup, Heartbeat, LeaveGroup and session expiry, with every error code.

use weir_protocol::messages::leave_group::MemberIdentity;

use super::*;

/// A stable group of two members: (leader, follower) ids, generation 1.
async fn stable_pair(h: &Harness) -> (String, String) {
    let (mut a, a_id) = h.join_new("g").await;
    let (mut b, b_id) = h.join_new("g").await;
    // The delay is extended once for the second member.
    h.advance(3_000).await;
    h.advance(3_000).await;
    answered(&mut a);
    answered(&mut b);
    let mut s = h.sync("g", &a_id, 1, &[(&a_id, b"A"), (&b_id, b"B")]).await;
    answered(&mut s);
    (a_id, b_id)
}

#[tokio::test]
async fn the_leaders_assignment_reaches_parked_followers_after_it_is_written() {
    let h = Harness::new().await;
    let (mut a, a_id) = h.join_new("g").await;
    let (mut b, b_id) = h.join_new("g").await;
    // The delay is extended once for the second member.
    h.advance(3_000).await;
    h.advance(3_000).await;
    let (a1, _) = (answered(&mut a), answered(&mut b));
    let written_before = h.written("g").len();
    let mut follower = h.sync("g", &b_id, 1, &[]).await;
    assert!(
        now(&mut follower).is_none(),
        "parked until the leader syncs"
    );
    assert_eq!(h.state("g").await, "CompletingRebalance");
    let mut leader = h.sync("g", &a_id, 1, &[(&a_id, b"A"), (&b_id, b"B")]).await;
    let (l, f) = (answered(&mut leader), answered(&mut follower));
    assert_eq!(
        (l.assignment.as_ref(), f.assignment.as_ref()),
        (&b"A"[..], &b"B"[..])
    );
    assert_eq!(f.protocol_name.as_deref(), Some("range"));
    assert_eq!(f.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(h.state("g").await, "Stable");
    // The generation was written with both members and their assignments.
    let written = h.written("g");
    assert_eq!(written.len(), written_before + 1);
    let Some(Record::GroupMetadata { value: Some(v), .. }) = written.last() else {
        panic!("no group record: {written:?}");
    };
    assert_eq!(
        (v.generation, v.leader.as_deref()),
        (1, Some(a_id.as_str()))
    );
    assert_eq!(v.protocol.as_deref(), Some("range"));
    assert_eq!(v.members.len(), 2);
    assert!(v
        .members
        .iter()
        .any(|m| m.member_id == b_id && m.assignment.as_ref() == b"B"));
    assert_eq!(a1.generation_id, 1);
    // A SyncGroup in a stable group returns the member's assignment at once.
    let mut again = h.sync("g", &b_id, 1, &[]).await;
    assert_eq!(answered(&mut again).assignment.as_ref(), b"B");
}

#[tokio::test]
async fn sync_errors() {
    let h = Harness::new().await;
    let mut r = h.sync("nowhere", "m", 1, &[]).await;
    assert_eq!(
        answered(&mut r).error_code,
        ErrorCode::UnknownMemberId.code()
    );
    let mut r = h.sync("", "m", 1, &[]).await;
    assert_eq!(
        answered(&mut r).error_code,
        ErrorCode::InvalidGroupId.code()
    );
    let (a_id, b_id) = stable_pair(&h).await;
    let mut r = h.sync("g", "stranger", 1, &[]).await;
    assert_eq!(
        answered(&mut r).error_code,
        ErrorCode::UnknownMemberId.code()
    );
    let mut r = h.sync("g", &b_id, 0, &[]).await;
    assert_eq!(
        answered(&mut r).error_code,
        ErrorCode::IllegalGeneration.code()
    );
    let mut r = h
        .groups
        .sync_group(SyncGroupRequest {
            group_id: "g".into(),
            generation_id: 1,
            member_id: b_id.clone(),
            protocol_type: Some("consumer".into()),
            protocol_name: Some("roundrobin".into()),
            ..SyncGroupRequest::default()
        })
        .await;
    assert_eq!(
        answered(&mut r).error_code,
        ErrorCode::InconsistentGroupProtocol.code()
    );
    // During a rebalance.
    let mut rejoin = h
        .join(5, join_request("g", &a_id, &[("range", b"m")]))
        .await;
    assert!(now(&mut rejoin).is_none());
    let mut r = h.sync("g", &b_id, 1, &[]).await;
    assert_eq!(
        answered(&mut r).error_code,
        ErrorCode::RebalanceInProgress.code()
    );
}

#[tokio::test]
async fn heartbeat_errors_are_kafkas() {
    let h = Harness::new().await;
    assert_eq!(
        h.heartbeat("nowhere", "m", 1).await,
        ErrorCode::UnknownMemberId
    );
    assert_eq!(h.heartbeat("", "m", 1).await, ErrorCode::InvalidGroupId);
    let (mut a, a_id) = h.join_new("g").await;
    let (mut b, b_id) = h.join_new("g").await;
    // While the initial join phase runs: a rebalance is in progress (generation 0).
    assert_eq!(
        h.heartbeat("g", &a_id, 0).await,
        ErrorCode::RebalanceInProgress
    );
    // The delay is extended once for the second member.
    h.advance(3_000).await;
    h.advance(3_000).await;
    answered(&mut a);
    answered(&mut b);
    // Between JoinGroup and SyncGroup: heartbeats are fine.
    assert_eq!(h.heartbeat("g", &b_id, 1).await, ErrorCode::None);
    let mut s = h.sync("g", &a_id, 1, &[]).await;
    answered(&mut s);
    assert_eq!(h.heartbeat("g", &b_id, 1).await, ErrorCode::None);
    assert_eq!(
        h.heartbeat("g", &b_id, 2).await,
        ErrorCode::IllegalGeneration
    );
    assert_eq!(
        h.heartbeat("g", &b_id, 0).await,
        ErrorCode::IllegalGeneration
    );
    assert_eq!(
        h.heartbeat("g", "stranger", 1).await,
        ErrorCode::UnknownMemberId
    );
    // A dynamic member named with an instance id the group does not know.
    assert_eq!(
        h.heartbeat_as("g", &b_id, Some("i-1"), 1).await,
        ErrorCode::UnknownMemberId
    );
    // Everyone leaves: the group is empty and heartbeats are UNKNOWN_MEMBER_ID.
    let members = [&a_id, &b_id]
        .iter()
        .map(|id| MemberIdentity {
            member_id: (*id).clone(),
            ..MemberIdentity::default()
        })
        .collect();
    let mut r = h.groups.leave_group("g".into(), members).await;
    answered(&mut r);
    assert_eq!(h.state("g").await, "Empty");
    assert_eq!(h.heartbeat("g", &b_id, 2).await, ErrorCode::UnknownMemberId);
}

#[tokio::test]
async fn a_silent_member_is_expired_and_the_rest_rebalances() {
    let h = Harness::new().await;
    let (a_id, b_id) = stable_pair(&h).await;
    // a heartbeats, b goes silent.
    // The delay is extended once for the second member.
    h.advance(3_000).await;
    h.advance(3_000).await;
    assert_eq!(h.heartbeat("g", &a_id, 1).await, ErrorCode::None);
    h.advance(4_000).await;
    assert_eq!(
        h.state("g").await,
        "PreparingRebalance",
        "b's session ran out"
    );
    assert_eq!(h.heartbeat("g", &b_id, 1).await, ErrorCode::UnknownMemberId);
    assert_eq!(
        h.heartbeat("g", &a_id, 1).await,
        ErrorCode::RebalanceInProgress
    );
    // a rejoins alone: the join phase completes at once.
    let mut a = h
        .join(5, join_request("g", &a_id, &[("range", b"m")]))
        .await;
    let a = answered(&mut a);
    assert_eq!((a.generation_id, a.members.len()), (2, 1));
}

#[tokio::test]
async fn a_member_waiting_on_the_coordinator_is_not_expired() {
    let h = Harness::new().await;
    let (a_id, b_id) = stable_pair(&h).await;
    // b rejoins and waits; a does not rejoin for a while but heartbeats.
    let mut b = h
        .join(5, join_request("g", &b_id, &[("range", b"x")]))
        .await;
    for _ in 0..3 {
        h.advance(9_000).await;
        assert_eq!(
            h.heartbeat("g", &a_id, 1).await,
            ErrorCode::RebalanceInProgress
        );
    }
    assert!(
        now(&mut b).is_none(),
        "b's session is not held against it while parked"
    );
    let mut a = h
        .join(5, join_request("g", &a_id, &[("range", b"m")]))
        .await;
    assert_eq!(answered(&mut b).generation_id, 2);
    assert_eq!(answered(&mut a).members.len(), 2);
}

#[tokio::test]
async fn members_that_never_sync_are_removed_after_the_rebalance_timeout() {
    let h = Harness::new().await;
    let (mut a, a_id) = h.join_new("g").await;
    let (mut b, b_id) = h.join_new("g").await;
    // The delay is extended once for the second member.
    h.advance(3_000).await;
    h.advance(3_000).await;
    answered(&mut a);
    answered(&mut b);
    // Only b syncs (and is parked, since a leads and never sends the assignment);
    // a keeps heartbeating but never syncs.
    let mut bs = h.sync("g", &b_id, 1, &[]).await;
    for _ in 0..3 {
        h.advance(9_000).await;
        assert_eq!(h.heartbeat("g", &a_id, 1).await, ErrorCode::None);
    }
    h.advance(3_000).await;
    // a is removed; b's parked sync is told to rejoin.
    assert_eq!(
        answered(&mut bs).error_code,
        ErrorCode::RebalanceInProgress.code()
    );
    assert_eq!(h.heartbeat("g", &a_id, 1).await, ErrorCode::UnknownMemberId);
    assert_eq!(h.state("g").await, "PreparingRebalance");
}

#[tokio::test]
async fn batch_leave_answers_each_member_and_rebalances_once() {
    let h = Harness::new().await;
    let (mut a, a_id) = h.join_new("g").await;
    let (mut b, b_id) = h.join_new("g").await;
    let (mut c, c_id) = h.join_new("g").await;
    // The delay is extended once for the second member.
    h.advance(3_000).await;
    h.advance(3_000).await;
    for r in [&mut a, &mut b, &mut c] {
        answered(r);
    }
    let mut s = h.sync("g", &a_id, 1, &[]).await;
    answered(&mut s);
    let identities = vec![
        MemberIdentity {
            member_id: a_id.clone(),
            ..MemberIdentity::default()
        },
        MemberIdentity {
            member_id: "stranger".into(),
            ..MemberIdentity::default()
        },
        MemberIdentity {
            member_id: String::new(),
            group_instance_id: Some("no-such-instance".into()),
            ..MemberIdentity::default()
        },
        MemberIdentity {
            member_id: c_id.clone(),
            ..MemberIdentity::default()
        },
    ];
    let mut r = h.groups.leave_group("g".into(), identities).await;
    let r = answered(&mut r);
    let codes: Vec<_> = r
        .members
        .iter()
        .map(|m| ErrorCode::from_code(m.error_code))
        .collect();
    assert_eq!(
        codes,
        [
            ErrorCode::None,
            ErrorCode::UnknownMemberId,
            ErrorCode::UnknownMemberId,
            ErrorCode::None
        ]
    );
    assert_eq!(r.error_code, 0);
    assert_eq!(h.state("g").await, "PreparingRebalance");
    // The leader left: b leads the next generation alone.
    let mut b = h
        .join(5, join_request("g", &b_id, &[("range", b"m")]))
        .await;
    let b = answered(&mut b);
    assert_eq!((b.generation_id, b.leader.as_str()), (2, b_id.as_str()));
    // Leaving a group that does not exist: UNKNOWN_MEMBER_ID per member.
    let mut r = h
        .groups
        .leave_group(
            "nowhere".into(),
            vec![MemberIdentity {
                member_id: "m".into(),
                ..MemberIdentity::default()
            }],
        )
        .await;
    let r = answered(&mut r);
    assert_eq!(r.members[0].error_code, ErrorCode::UnknownMemberId.code());
}

#[tokio::test]
async fn a_parked_join_of_a_leaving_member_is_answered_unknown_member() {
    let h = Harness::new().await;
    let (a_id, b_id) = stable_pair(&h).await;
    let mut a = h
        .join(5, join_request("g", &a_id, &[("range", b"m")]))
        .await;
    assert!(now(&mut a).is_none());
    let mut r = h
        .groups
        .leave_group(
            "g".into(),
            vec![MemberIdentity {
                member_id: a_id.clone(),
                ..MemberIdentity::default()
            }],
        )
        .await;
    answered(&mut r);
    let a = answered(&mut a);
    assert_eq!(
        (code(&a), a.member_id.as_str()),
        (ErrorCode::UnknownMemberId, "")
    );
    // b is now the only member; its rejoin completes the phase.
    let mut b = h
        .join(5, join_request("g", &b_id, &[("range", b"m")]))
        .await;
    assert_eq!(answered(&mut b).members.len(), 1);
}
