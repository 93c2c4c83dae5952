//! JoinGroup: KIP-394, the initial rebalance delay, protocol selection, rebalance
//! timeouts, and the errors a join can get.

use super::*;

#[tokio::test]
async fn first_join_without_member_id_is_member_id_required_from_v4() {
    let h = Harness::new().await;
    let mut r = h.join(4, join_request("g", "", &[("range", b"m")])).await;
    let r = answered(&mut r);
    assert_eq!(code(&r), ErrorCode::MemberIdRequired);
    assert!(r.member_id.starts_with("c-"), "{}", r.member_id);
    // The group exists (Empty) and was written as an empty group.
    assert_eq!(h.state("g").await, "Empty");
    assert!(matches!(
        h.written("g").as_slice(),
        [Record::GroupMetadata { value: Some(v), .. }] if v.members.is_empty() && v.generation == 0
    ));
    // A pending member id that never comes back expires with its session; the
    // group then still has no members.
    h.advance(10_000).await;
    let mut late = h
        .join(4, join_request("g", &r.member_id, &[("range", b"m")]))
        .await;
    assert_eq!(code(&answered(&mut late)), ErrorCode::UnknownMemberId);
}

#[tokio::test]
async fn before_v4_a_new_member_joins_at_once() {
    let h = Harness::new().await;
    let mut r = h.join(3, join_request("g", "", &[("range", b"m")])).await;
    assert!(
        now(&mut r).is_none(),
        "parked for the initial rebalance delay"
    );
    assert_eq!(h.state("g").await, "PreparingRebalance");
    h.advance(3_000).await;
    let r = answered(&mut r);
    assert_eq!(code(&r), ErrorCode::None);
    assert_eq!(r.generation_id, 1);
    assert_eq!(r.leader, r.member_id);
    assert_eq!(r.members.len(), 1);
}

#[tokio::test]
async fn the_initial_rebalance_waits_the_delay_and_extends_for_new_members() {
    let h = Harness::new().await;
    let (mut a, a_id) = h.join_new("g").await;
    assert!(now(&mut a).is_none());
    h.advance(2_999).await;
    assert!(now(&mut a).is_none(), "the delay is 3000 ms");
    // A second member arrives during the delay: the delay is extended once more.
    let (mut b, b_id) = h.join_new("g").await;
    h.advance(1).await;
    assert!(now(&mut a).is_none(), "extended because a member joined");
    h.advance(2_999).await;
    assert!(now(&mut a).is_none());
    h.advance(1).await;
    let (a, b) = (answered(&mut a), answered(&mut b));
    assert_eq!((code(&a), code(&b)), (ErrorCode::None, ErrorCode::None));
    assert_eq!((a.generation_id, b.generation_id), (1, 1));
    assert_eq!(a.leader, a_id, "the first member leads");
    assert_eq!(a.members.len(), 2, "the leader gets every member");
    assert!(b.members.is_empty(), "followers get none");
    assert_eq!(b.member_id, b_id);
    assert_eq!(a.protocol_name.as_deref(), Some("range"));
    assert_eq!(a.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(h.state("g").await, "CompletingRebalance");
}

#[tokio::test]
async fn the_protocol_is_chosen_by_vote_among_those_all_support() {
    let h = Harness::new().await;
    let protocols: [&[(&str, &[u8])]; 3] = [
        &[("roundrobin", b"1"), ("range", b"1"), ("sticky", b"1")],
        &[("range", b"2"), ("roundrobin", b"2")],
        &[("range", b"3"), ("roundrobin", b"3")],
    ];
    let mut replies = Vec::new();
    for p in protocols {
        replies.push(h.join(3, join_request("g", "", p)).await);
    }
    // Members joined during the delay: it is extended once.
    h.advance(3_000).await;
    assert!(replies.iter_mut().all(|r| now(r).is_none()));
    h.advance(3_000).await;
    let answers: Vec<_> = replies.iter_mut().map(answered).collect();
    // "sticky" is not supported by all; "range" has two first votes.
    assert!(answers
        .iter()
        .all(|a| a.protocol_name.as_deref() == Some("range")));
    let leader = answers
        .iter()
        .find(|a| !a.members.is_empty())
        .expect("a leader");
    // The leader gets each member's metadata for the chosen protocol.
    let mut metadata: Vec<_> = leader.members.iter().map(|m| m.metadata.to_vec()).collect();
    metadata.sort();
    assert_eq!(metadata, [b"1".to_vec(), b"2".to_vec(), b"3".to_vec()]);
}

#[tokio::test]
async fn inconsistent_protocols_are_refused() {
    let h = Harness::new().await;
    let (mut a, _) = h.join_new("g").await;
    h.advance(3_000).await;
    assert_eq!(code(&answered(&mut a)), ErrorCode::None);
    // Another protocol type.
    let mut other_type = join_request("g", "", &[("range", b"m")]);
    other_type.protocol_type = "connect".into();
    let mut r = h.join(5, other_type).await;
    let r = answered(&mut r);
    assert_eq!(code(&r), ErrorCode::InconsistentGroupProtocol);
    assert_eq!(r.member_id, "");
    // No protocol in common with the members.
    let mut r = h
        .join(5, join_request("g", "", &[("roundrobin", b"m")]))
        .await;
    assert_eq!(
        code(&answered(&mut r)),
        ErrorCode::InconsistentGroupProtocol
    );
    // An empty protocol type or list is refused even by an empty group.
    let mut empty = join_request("h", "", &[]);
    empty.protocol_type = "consumer".into();
    let mut r = h.join(5, empty).await;
    assert_eq!(
        code(&answered(&mut r)),
        ErrorCode::InconsistentGroupProtocol
    );
}

#[tokio::test]
async fn bad_group_ids_session_timeouts_and_unknown_members() {
    let h = Harness::new().await;
    let mut r = h.join(5, join_request("", "", &[("range", b"m")])).await;
    assert_eq!(code(&answered(&mut r)), ErrorCode::InvalidGroupId);
    for session in [5_999, 1_800_001] {
        let mut request = join_request("g", "", &[("range", b"m")]);
        request.session_timeout_ms = session;
        let mut r = h.join(5, request).await;
        assert_eq!(
            code(&answered(&mut r)),
            ErrorCode::InvalidSessionTimeout,
            "{session}"
        );
    }
    // A member id for a group that does not exist.
    let mut r = h
        .join(5, join_request("nowhere", "c-1", &[("range", b"m")]))
        .await;
    let r = answered(&mut r);
    assert_eq!(
        (code(&r), r.member_id.as_str()),
        (ErrorCode::UnknownMemberId, "c-1")
    );
    // A member id the group does not know.
    let (mut a, _) = h.join_new("g").await;
    h.advance(3_000).await;
    answered(&mut a);
    let mut r = h
        .join(5, join_request("g", "c-unknown", &[("range", b"m")]))
        .await;
    assert_eq!(code(&answered(&mut r)), ErrorCode::UnknownMemberId);
}

#[tokio::test]
async fn a_rebalance_completes_when_everyone_rejoined_and_drops_who_did_not() {
    let h = Harness::new().await;
    let (mut a, a_id) = h.join_new("g").await;
    let (mut b, b_id) = h.join_new("g").await;
    // The delay is extended once for the second member.
    h.advance(3_000).await;
    h.advance(3_000).await;
    let (a1, _) = (answered(&mut a), answered(&mut b));
    let mut s = h.sync("g", &a_id, 1, &[(&a_id, b"A"), (&b_id, b"B")]).await;
    assert_eq!(answered(&mut s).assignment.as_ref(), b"A");
    assert_eq!(h.state("g").await, "Stable");
    assert_eq!(a1.generation_id, 1);

    // A third member joins: a rebalance; the existing members learn it from their
    // heartbeats and rejoin; the join phase ends when all three are in.
    let (mut c, c_id) = h.join_new("g").await;
    assert!(now(&mut c).is_none());
    assert_eq!(
        h.heartbeat("g", &a_id, 1).await,
        ErrorCode::RebalanceInProgress
    );
    let mut a = h
        .join(5, join_request("g", &a_id, &[("range", b"m")]))
        .await;
    assert!(now(&mut a).is_none(), "b has not rejoined");
    let mut b = h
        .join(5, join_request("g", &b_id, &[("range", b"m")]))
        .await;
    let (a2, b2, c2) = (answered(&mut a), answered(&mut b), answered(&mut c));
    assert_eq!(
        (a2.generation_id, b2.generation_id, c2.generation_id),
        (2, 2, 2)
    );
    assert_eq!(a2.members.len(), 3);
    assert_eq!(c2.member_id, c_id);

    // Next rebalance: b never rejoins; after the rebalance timeout it is dropped.
    let mut s = h.sync("g", &a_id, 2, &[]).await;
    answered(&mut s);
    let mut a = h
        .join(5, join_request("g", &a_id, &[("range", b"m2")]))
        .await;
    let mut c = h
        .join(5, join_request("g", &c_id, &[("range", b"m")]))
        .await;
    // Keep b's session alive meanwhile: only the rebalance timeout may drop it.
    h.advance(9_000).await;
    assert_eq!(
        h.heartbeat("g", &b_id, 2).await,
        ErrorCode::RebalanceInProgress
    );
    h.advance(9_000).await;
    assert_eq!(
        h.heartbeat("g", &b_id, 2).await,
        ErrorCode::RebalanceInProgress
    );
    h.advance(9_000).await;
    assert_eq!(
        h.heartbeat("g", &b_id, 2).await,
        ErrorCode::RebalanceInProgress
    );
    assert!(now(&mut a).is_none());
    h.advance(3_000).await;
    let (a3, c3) = (answered(&mut a), answered(&mut c));
    assert_eq!((a3.generation_id, c3.generation_id), (3, 3));
    assert_eq!(a3.members.len(), 2, "b was removed");
    assert_eq!(h.heartbeat("g", &b_id, 3).await, ErrorCode::UnknownMemberId);
}

#[tokio::test]
async fn a_follower_rejoining_a_stable_group_unchanged_gets_the_generation_and_the_leader_rebalances(
) {
    let h = Harness::new().await;
    let (mut a, a_id) = h.join_new("g").await;
    let (mut b, b_id) = h.join_new("g").await;
    // The delay is extended once for the second member.
    h.advance(3_000).await;
    h.advance(3_000).await;
    answered(&mut a);
    answered(&mut b);
    let mut s = h.sync("g", &a_id, 1, &[]).await;
    answered(&mut s);
    let mut b = h
        .join(5, join_request("g", &b_id, &[("range", b"m")]))
        .await;
    let b = answered(&mut b);
    assert_eq!(
        (code(&b), b.generation_id, b.leader.as_str()),
        (ErrorCode::None, 1, a_id.as_str())
    );
    assert_eq!(h.state("g").await, "Stable");
    // The leader's JoinGroup starts a rebalance even with unchanged metadata.
    let mut a = h
        .join(5, join_request("g", &a_id, &[("range", b"m")]))
        .await;
    assert!(now(&mut a).is_none());
    assert_eq!(h.state("g").await, "PreparingRebalance");
}

#[tokio::test]
async fn a_new_member_parked_too_long_is_dropped_after_five_minutes() {
    let h = Harness::new().await;
    // a's rebalance timeout (10 min) is longer than the new-member join timeout.
    let mut request = join_request("g", "", &[("range", b"m")]);
    request.rebalance_timeout_ms = 600_000;
    let mut a = h.join(3, request).await;
    h.advance(3_000).await;
    let a_id = answered(&mut a).member_id;
    let mut s = h.sync("g", &a_id, 1, &[]).await;
    answered(&mut s);
    // b joins; a never rejoins but stays alive, so the join phase would wait 10
    // minutes; b's parked JoinGroup is dropped after 5.
    let (mut b, _) = h.join_new("g").await;
    for _ in 0..33 {
        h.advance(9_000).await;
        assert_eq!(
            h.heartbeat("g", &a_id, 1).await,
            ErrorCode::RebalanceInProgress
        );
        assert!(now(&mut b).is_none());
    }
    h.advance(3_000).await;
    let b = answered(&mut b);
    assert_eq!(
        (code(&b), b.member_id.as_str()),
        (ErrorCode::UnknownMemberId, "")
    );
}
