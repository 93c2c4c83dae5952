//! KIP-848 consumer groups: joining, reconciliation with revocation before
//! assignment, fencing errors, leaving, timeouts, static members, topic changes,
//! reload, and how they meet offsets and classic groups.

use std::collections::BTreeSet;

use weir_protocol::messages::consumer_group_heartbeat::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, TopicPartitions,
};
use weir_protocol::Uuid;

use super::offsets::{commit, commit_request, fetch_one};
use super::*;

pub(super) const T: Uuid = Uuid([7; 16]);
pub(super) const U: Uuid = Uuid([8; 16]);

/// The cluster: topic t (4 partitions), u (2).
pub(super) fn topics(t_partitions: i32) -> TopicCatalog {
    TopicCatalog::new([("t".to_owned(), T, t_partitions), ("u".to_owned(), U, 2)])
}

pub(super) async fn consumer_harness() -> Harness {
    let h = Harness::new().await;
    h.groups.set_topics(topics(4));
    h
}

/// A heartbeat; `subscribe` and `owned` are sent when given.
pub(super) fn request(
    member: &str,
    epoch: i32,
    subscribe: Option<&[&str]>,
    owned: Option<&[i32]>,
) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        group_id: "cg".into(),
        member_id: member.into(),
        member_epoch: epoch,
        rebalance_timeout_ms: if epoch == 0 { 30_000 } else { -1 },
        subscribed_topic_names: subscribe.map(|ts| ts.iter().map(|t| (*t).to_owned()).collect()),
        topic_partitions: owned.map(|ps| {
            if ps.is_empty() {
                Vec::new()
            } else {
                vec![TopicPartitions {
                    topic_id: T,
                    partitions: ps.to_vec(),
                }]
            }
        }),
        ..ConsumerGroupHeartbeatRequest::default()
    }
}

pub(super) async fn beat(
    h: &Harness,
    r: ConsumerGroupHeartbeatRequest,
) -> Result<ConsumerGroupHeartbeatResponse, (ErrorCode, String)> {
    let mut reply = h.groups.consumer_group_heartbeat(ctx(0), r).await;
    answered(&mut reply)
}

pub(super) async fn ok(
    h: &Harness,
    r: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    beat(h, r).await.expect("heartbeat accepted")
}

pub(super) async fn err(h: &Harness, r: ConsumerGroupHeartbeatRequest) -> ErrorCode {
    beat(h, r).await.expect_err("heartbeat refused").0
}

/// Partitions of t in an answer's assignment (None: no assignment sent).
pub(super) fn parts(r: &ConsumerGroupHeartbeatResponse) -> Option<Vec<i32>> {
    r.assignment.as_ref().map(|a| {
        let mut ps: Vec<i32> = a
            .topic_partitions
            .iter()
            .filter(|tp| tp.topic_id == T)
            .flat_map(|tp| tp.partitions.clone())
            .collect();
        ps.sort_unstable();
        ps
    })
}

/// Joins a dynamic member subscribed to t: (member id, epoch, t partitions).
pub(super) async fn join(h: &Harness) -> (String, i32, Vec<i32>) {
    let r = ok(h, request("", 0, Some(&["t"]), Some(&[]))).await;
    let id = r.member_id.clone().expect("a member id");
    (
        id,
        r.member_epoch,
        parts(&r).expect("a first answer carries the assignment"),
    )
}

pub(super) async fn state(h: &Harness) -> String {
    let d = h.groups.consumer_group_describe(&["cg".to_owned()]).await;
    d[0].group_state.clone()
}

#[tokio::test]
async fn a_second_member_gets_partitions_only_after_the_first_releases_them() {
    let h = consumer_harness().await;
    let (a, epoch, ps) = join(&h).await;
    assert_eq!((epoch, ps), (1, vec![0, 1, 2, 3]));
    assert_eq!(a.len(), 22, "Kafka's base64 member ids");
    assert_eq!(state(&h).await, "Stable");

    let (b, b_epoch, b_ps) = join(&h).await;
    assert_eq!(b_epoch, 2);
    assert!(
        b_ps.is_empty(),
        "a still owns everything: nothing is handed out twice"
    );
    assert_eq!(state(&h).await, "Reconciling");

    // a learns what to give up; its epoch moves only once it has.
    let r = ok(&h, request(&a, 1, None, Some(&[0, 1, 2, 3]))).await;
    assert_eq!(r.member_epoch, 1);
    let keep = parts(&r).expect("a smaller assignment");
    assert_eq!(keep.len(), 2);
    let r = ok(&h, request(&a, 1, None, Some(&keep))).await;
    assert_eq!((r.member_epoch, r.assignment.is_none()), (2, true));

    // Now b gets the released partitions.
    let r = ok(&h, request(&b, 2, None, Some(&[]))).await;
    let got = parts(&r).expect("b's assignment");
    assert_eq!(got.len(), 2);
    let all: BTreeSet<i32> = keep.iter().chain(&got).copied().collect();
    assert_eq!(all.len(), 4, "disjoint and complete");
    assert_eq!(state(&h).await, "Stable");
}

#[tokio::test]
async fn fencing_and_request_errors_are_kafkas() {
    let h = consumer_harness().await;
    let (a, _, _) = join(&h).await;
    assert_eq!(
        err(&h, request(&a, 5, None, None)).await,
        ErrorCode::FencedMemberEpoch
    );
    assert_eq!(
        err(&h, request("nobody", 1, None, None)).await,
        ErrorCode::UnknownMemberId
    );
    assert_eq!(
        err(&h, request("", 1, None, None)).await,
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        err(&h, request("", 0, None, Some(&[]))).await,
        ErrorCode::InvalidRequest,
        "no subscription"
    );
    assert_eq!(
        err(&h, request("", 0, Some(&["t"]), Some(&[1]))).await,
        ErrorCode::InvalidRequest,
        "owns partitions"
    );
    assert_eq!(
        err(&h, request(&a, -3, None, None)).await,
        ErrorCode::InvalidRequest
    );
    let mut r = request("", 0, Some(&["t"]), Some(&[]));
    r.server_assignor = Some("sticky".into());
    assert_eq!(err(&h, r).await, ErrorCode::UnsupportedAssignor);
    let mut r = request("", 1, None, None);
    r.group_id = "nowhere".into();
    r.member_id = "m".into();
    assert_eq!(err(&h, r).await, ErrorCode::GroupIdNotFound);
    // The previous epoch is accepted with a subset of the partitions (a lost
    // answer): b's join bumps a to epoch 2 once a releases, then a retries epoch 1.
    let (b, _, _) = join(&h).await;
    let r = ok(&h, request(&a, 1, None, Some(&[0, 1, 2, 3]))).await;
    let keep = parts(&r).expect("revocation");
    let r = ok(&h, request(&a, 1, None, Some(&keep))).await;
    assert_eq!(r.member_epoch, 2);
    let r = ok(&h, request(&a, 1, None, Some(&keep))).await;
    assert_eq!(
        r.member_epoch, 2,
        "previous epoch with owned partitions is fine"
    );
    assert_eq!(
        err(&h, request(&a, 1, None, Some(&[0, 1, 2, 3]))).await,
        ErrorCode::FencedMemberEpoch
    );
    let _ = b;
}

#[tokio::test]
async fn leaving_and_silent_members_give_their_partitions_back() {
    let h = consumer_harness().await;
    let (a, _, _) = join(&h).await;
    let (b, _, _) = join(&h).await;
    let r = ok(&h, request(&a, 1, None, Some(&[0, 1, 2, 3]))).await;
    let keep = parts(&r).expect("revocation");
    ok(&h, request(&a, 1, None, Some(&keep))).await;
    ok(&h, request(&b, 2, None, Some(&[]))).await;
    // b leaves: a gets everything back at the next epoch.
    let r = ok(&h, request(&b, -1, None, None)).await;
    assert_eq!(r.member_epoch, -1);
    let r = ok(&h, request(&a, 2, None, Some(&keep))).await;
    assert_eq!((r.member_epoch, parts(&r)), (3, Some(vec![0, 1, 2, 3])));
    assert_eq!(
        err(&h, request(&b, 2, None, None)).await,
        ErrorCode::UnknownMemberId
    );
    // a goes silent: fenced after the 45 s session timeout; the group is empty.
    h.advance(44_999).await;
    assert_eq!(state(&h).await, "Stable");
    h.advance(1).await;
    assert_eq!(state(&h).await, "Empty");
    assert_eq!(
        err(&h, request(&a, 3, None, None)).await,
        ErrorCode::UnknownMemberId
    );
}

#[tokio::test]
async fn a_member_that_keeps_revoked_partitions_is_fenced_after_its_rebalance_timeout() {
    let h = consumer_harness().await;
    let (a, _, _) = join(&h).await;
    join(&h).await;
    let r = ok(&h, request(&a, 1, None, Some(&[0, 1, 2, 3]))).await;
    assert_eq!(r.member_epoch, 1);
    // a keeps heartbeating but never releases: the 30 s rebalance timeout fences it.
    for _ in 0..3 {
        h.advance(9_000).await;
        ok(&h, request(&a, 1, None, Some(&[0, 1, 2, 3]))).await;
    }
    h.advance(3_000).await;
    assert_eq!(
        err(&h, request(&a, 1, None, Some(&[0, 1, 2, 3]))).await,
        ErrorCode::UnknownMemberId
    );
}

#[tokio::test]
async fn a_static_member_restarts_into_its_old_assignment() {
    let h = consumer_harness().await;
    let mut r = request("", 0, Some(&["t"]), Some(&[]));
    r.instance_id = Some("i-1".into());
    let first = ok(&h, r.clone()).await;
    let old = first.member_id.clone().expect("id");
    assert_eq!(parts(&first), Some(vec![0, 1, 2, 3]));
    // The same instance again while the old one is there: refused.
    assert_eq!(err(&h, r.clone()).await, ErrorCode::UnreleasedInstanceId);
    // It leaves for now (-2), then restarts under a new id: same partitions, no
    // rebalance of the others.
    let mut leave = request(&old, -2, None, None);
    leave.instance_id = Some("i-1".into());
    assert_eq!(ok(&h, leave).await.member_epoch, -2);
    let again = ok(&h, r.clone()).await;
    let new = again.member_id.clone().expect("id");
    assert_ne!(new, old);
    assert_eq!(parts(&again), Some(vec![0, 1, 2, 3]));
    // The old incarnation is fenced.
    let mut stale = request(&old, 1, None, None);
    stale.instance_id = Some("i-1".into());
    assert_eq!(err(&h, stale).await, ErrorCode::FencedInstanceId);
    let d = h.groups.consumer_group_describe(&["cg".to_owned()]).await;
    assert_eq!(d[0].members.len(), 1);
    assert_eq!(d[0].members[0].instance_id.as_deref(), Some("i-1"));
}

#[tokio::test]
async fn new_partitions_and_subscription_changes_bump_the_epoch() {
    let h = consumer_harness().await;
    let (a, _, _) = join(&h).await;
    h.groups.set_topics(topics(6));
    let r = ok(&h, request(&a, 1, None, Some(&[0, 1, 2, 3]))).await;
    assert_eq!(
        (r.member_epoch, parts(&r)),
        (2, Some(vec![0, 1, 2, 3, 4, 5]))
    );
    // Subscribing to u as well.
    let r = ok(
        &h,
        request(&a, 2, Some(&["t", "u"]), Some(&[0, 1, 2, 3, 4, 5])),
    )
    .await;
    assert_eq!(r.member_epoch, 3);
    let u: Vec<i32> = r
        .assignment
        .expect("assignment")
        .topic_partitions
        .iter()
        .filter(|tp| tp.topic_id == U)
        .flat_map(|tp| tp.partitions.clone())
        .collect();
    assert_eq!(u, [0, 1]);
}

#[tokio::test]
async fn the_range_assignor_can_be_chosen() {
    let h = consumer_harness().await;
    let mut r = request("", 0, Some(&["t"]), Some(&[]));
    r.server_assignor = Some("range".into());
    let a = ok(&h, r.clone()).await;
    let a_id = a.member_id.clone().expect("id");
    let b = ok(&h, r).await;
    let r = ok(&h, request(&a_id, 1, None, Some(&[0, 1, 2, 3]))).await;
    let keep = parts(&r).expect("revocation");
    let b_id = b.member_id.expect("id");
    // Range: the member first in id order gets 0-1, the other 2-3.
    let expected = if a_id < b_id { vec![0, 1] } else { vec![2, 3] };
    assert_eq!(keep, expected);
    let d = h.groups.consumer_group_describe(&["cg".to_owned()]).await;
    assert_eq!(d[0].assignor_name, "range");
}

#[tokio::test]
async fn consumer_groups_survive_a_reload() {
    let h = consumer_harness().await;
    let (a, _, _) = join(&h).await;
    let (b, _, _) = join(&h).await;
    let r = ok(&h, request(&a, 1, None, Some(&[0, 1, 2, 3]))).await;
    let keep = parts(&r).expect("revocation");
    ok(&h, request(&a, 1, None, Some(&keep))).await;
    let before = h.groups.consumer_group_describe(&["cg".to_owned()]).await;
    let (log, clock) = (h.log.clone(), h.clock.clone());
    drop(h);
    let h = Harness::with(test_config(), log, clock).await;
    h.groups.set_topics(topics(4));
    let after = h.groups.consumer_group_describe(&["cg".to_owned()]).await;
    assert_eq!(
        before, after,
        "the same group, members, epochs and assignments"
    );
    // And the members carry on where they were.
    let r = ok(&h, request(&b, 2, None, Some(&[]))).await;
    assert_eq!(parts(&r).map(|p| p.len()), Some(2));
}

#[tokio::test]
async fn offsets_lists_and_deletes_of_consumer_groups() {
    let h = consumer_harness().await;
    let (a, epoch, _) = join(&h).await;
    // Members commit with OffsetCommit v9 and their epoch.
    assert_eq!(
        commit(
            &h,
            commit_request("cg", epoch, &a, &[("t", 0, 5, Some("m"))]),
            9
        )
        .await,
        [ErrorCode::None]
    );
    assert_eq!(
        commit(
            &h,
            commit_request("cg", epoch + 1, &a, &[("t", 0, 6, None)]),
            9
        )
        .await,
        [ErrorCode::StaleMemberEpoch]
    );
    assert_eq!(
        commit(&h, commit_request("cg", epoch, &a, &[("t", 0, 6, None)]), 8).await,
        [ErrorCode::UnsupportedVersion]
    );
    assert_eq!(
        commit(
            &h,
            commit_request("cg", epoch, "x", &[("t", 0, 6, None)]),
            9
        )
        .await,
        [ErrorCode::UnknownMemberId]
    );
    assert_eq!(fetch_one(&h, "cg", "t", 0).await, (5, 3, "m".into()));
    let listed = h
        .groups
        .list_groups(&Default::default(), &["consumer".to_owned()].into())
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].group_state.as_str(),
            listed[0].group_type.as_str()
        ),
        ("Stable", "consumer")
    );
    // The classic API does not see it as a classic group.
    assert_eq!(h.state("cg").await, "Dead");
    let mut j = h
        .join(
            5,
            JoinGroupRequest {
                group_id: "cg".into(),
                ..join_request("cg", "", &[("range", b"m")])
            },
        )
        .await;
    assert_eq!(
        code(&answered(&mut j)),
        ErrorCode::InconsistentGroupProtocol
    );
    let deleted = h.groups.delete_groups(vec!["cg".into()]).await.await;
    assert_eq!(deleted[0].1, ErrorCode::NonEmptyGroup);
    ok(&h, request(&a, -1, None, None)).await;
    let deleted = h.groups.delete_groups(vec!["cg".into()]).await.await;
    assert_eq!(deleted[0].1, ErrorCode::None);
    assert_eq!(fetch_one(&h, "cg", "t", 0).await.0, -1);
    let d = h.groups.consumer_group_describe(&["cg".to_owned()]).await;
    assert_eq!(d[0].error_code, ErrorCode::GroupIdNotFound.code());
}

#[tokio::test]
async fn an_empty_classic_group_becomes_a_consumer_group_keeping_its_offsets() {
    let h = consumer_harness().await;
    commit(
        &h,
        commit_request("cg", -1, "", &[("t", 1, 9, Some("kept"))]),
        8,
    )
    .await;
    assert_eq!(h.state("cg").await, "Empty");
    join(&h).await;
    assert_eq!(state(&h).await, "Stable");
    assert_eq!(fetch_one(&h, "cg", "t", 1).await, (9, 3, "kept".into()));
    // A classic group with members is not taken over.
    let (mut m, _) = h.join_new("classic").await;
    h.advance(3_000).await;
    answered(&mut m);
    let mut r = request("", 0, Some(&["t"]), Some(&[]));
    r.group_id = "classic".into();
    assert_eq!(err(&h, r).await, ErrorCode::GroupIdNotFound);
}

/// v1 (what librdkafka speaks): a client-chosen member id joins, and an empty regex
/// is "no regex" (librdkafka sends one with every name subscription).
#[tokio::test]
async fn v1_joins_with_a_client_member_id_and_an_empty_regex() {
    let h = consumer_harness().await;
    let mut first = request("client-chosen-id", 0, Some(&["t"]), Some(&[]));
    first.subscribed_topic_regex = Some(String::new());
    let r = ok(&h, first).await;
    assert_eq!(r.member_id.as_deref(), Some("client-chosen-id"));
    assert_eq!(parts(&r), Some(vec![0, 1, 2, 3]));
    let d = h.groups.consumer_group_describe(&["cg".to_owned()]).await;
    assert_eq!(d[0].members[0].subscribed_topic_regex, None);
}
