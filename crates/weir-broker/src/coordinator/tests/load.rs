//! Durability: what is written is loaded back by replaying the same records, and
//! failed writes change nothing a client was told about.

use std::sync::atomic::Ordering;

use super::offsets::{commit, commit_request, fetch_one};
use super::*;

#[tokio::test]
async fn groups_and_offsets_survive_a_reload() {
    let h = Harness::new().await;
    let (mut a, a_id) = h.join_new("g").await;
    let (mut b, b_id) = h.join_new("g").await;
    // The delay is extended once for the second member.
    h.advance(3_000).await;
    h.advance(3_000).await;
    answered(&mut a);
    answered(&mut b);
    let mut s = h.sync("g", &a_id, 1, &[(&a_id, b"A"), (&b_id, b"B")]).await;
    answered(&mut s);
    commit(
        &h,
        commit_request("g", 1, &a_id, &[("t", 0, 10, Some("meta-a"))]),
        8,
    )
    .await;
    commit(
        &h,
        commit_request("g", 1, &b_id, &[("t", 1, 20, Some("meta-b"))]),
        8,
    )
    .await;
    commit(
        &h,
        commit_request("g", 1, &b_id, &[("t", 1, 21, Some("meta-b2"))]),
        8,
    )
    .await;
    commit(&h, commit_request("solo", -1, "", &[("u", 0, 5, None)]), 8).await;
    commit(&h, commit_request("gone", -1, "", &[("u", 0, 5, None)]), 8).await;
    let deleted = h.groups.delete_groups(vec!["gone".into()]).await.await;
    assert_eq!(deleted[0].1, ErrorCode::None);

    // A new coordinator over the same log: the state comes back by replay.
    let log = h.log.clone();
    let clock = h.clock.clone();
    drop(h);
    let h = Harness::with(test_config(), log, clock).await;
    assert_eq!(fetch_one(&h, "g", "t", 0).await, (10, 3, "meta-a".into()));
    assert_eq!(fetch_one(&h, "g", "t", 1).await, (21, 3, "meta-b2".into()));
    assert_eq!(fetch_one(&h, "solo", "u", 0).await.0, 5);
    assert_eq!(h.state("gone").await, "Dead");
    assert_eq!(fetch_one(&h, "gone", "u", 0).await.0, -1);
    let d = &h.groups.describe_groups(&["g".into()]).await[0];
    assert_eq!(
        (d.group_state.as_str(), d.protocol_data.as_str()),
        ("Stable", "range")
    );
    let assignments: Vec<_> = d
        .members
        .iter()
        .map(|m| (m.member_id.clone(), m.member_assignment.to_vec()))
        .collect();
    assert!(assignments.contains(&(a_id.clone(), b"A".to_vec())));
    assert!(assignments.contains(&(b_id.clone(), b"B".to_vec())));
    // The loaded members are in generation 1 and may go on heartbeating...
    h.advance(5_000).await;
    assert_eq!(h.heartbeat("g", &a_id, 1).await, ErrorCode::None);
    // ...and their sessions run from the load: b, silent, expires.
    h.advance(5_000).await;
    assert_eq!(h.heartbeat("g", &b_id, 1).await, ErrorCode::UnknownMemberId);
    assert_eq!(
        h.heartbeat("g", &a_id, 1).await,
        ErrorCode::RebalanceInProgress
    );
}

#[tokio::test]
async fn a_failed_write_is_reported_and_changes_nothing() {
    let h = Harness::new().await;
    commit(&h, commit_request("g", -1, "", &[("t", 0, 1, None)]), 8).await;
    h.log.fail.store(true, Ordering::SeqCst);
    let mut r = h
        .groups
        .commit_offsets(commit_request("g", -1, "", &[("t", 0, 2, None)]), 8)
        .await;
    let err = now(&mut r)
        .expect("answered")
        .expect_err("the write failed");
    // NOT_ENOUGH_REPLICAS from the log is COORDINATOR_NOT_AVAILABLE for a client.
    assert_eq!(err.error_code(), ErrorCode::CoordinatorNotAvailable);
    h.log.fail.store(false, Ordering::SeqCst);
    assert_eq!(fetch_one(&h, "g", "t", 0).await.0, 1);

    // A leader's SyncGroup whose write fails: everyone is told and must rejoin.
    let (mut a, a_id) = h.join_new("h").await;
    h.advance(3_000).await;
    answered(&mut a);
    h.log.fail.store(true, Ordering::SeqCst);
    let mut s = h.sync("h", &a_id, 1, &[(&a_id, b"A")]).await;
    let err = now(&mut s)
        .expect("answered")
        .expect_err("the write failed");
    assert_eq!(err.error_code(), ErrorCode::CoordinatorNotAvailable);
    h.log.fail.store(false, Ordering::SeqCst);
    assert_ne!(h.state("h").await, "Stable");
}

#[tokio::test]
async fn a_partition_not_led_here_is_not_coordinator_and_unloading_answers_parked_requests() {
    let log = Arc::new(MemoryLog::default());
    log.not_leader.store(true, Ordering::SeqCst);
    let cancel = CancellationToken::new();
    let groups = GroupCoordinator::start(test_config(), FakeClock::new(), log.clone(), &cancel);
    let r = groups.heartbeat(HeartbeatRequest {
        group_id: "g".into(),
        member_id: "m".into(),
        generation_id: 1,
        group_instance_id: None,
    });
    assert_eq!(
        r.await.expect_err("not ours").error_code(),
        ErrorCode::NotCoordinator
    );
    // Once led, a request starts the load and is told to retry (or waits for it).
    log.not_leader.store(false, Ordering::SeqCst);
    let p = groups.partition_for("g");
    groups.load(p);
    assert!(groups.wait_serving(p, Duration::from_secs(5)).await);
    let mut j = groups
        .join_group(ctx(3), join_request("g", "", &[("range", b"m")]))
        .await;
    assert!(now(&mut j).is_none());
    // Shutting down answers the parked JoinGroup.
    groups.shutdown().await;
    let j = answered(&mut j);
    assert_eq!(code(&j), ErrorCode::NotCoordinator);
}

#[tokio::test]
async fn requests_during_a_load_are_told_load_in_progress() {
    let log = Arc::new(MemoryLog::default());
    log.hold_reads.store(true, Ordering::SeqCst);
    let cancel = CancellationToken::new();
    let groups = GroupCoordinator::start(test_config(), FakeClock::new(), log.clone(), &cancel);
    let p = groups.partition_for("g");
    groups.load(p);
    // The runtime answers at once (the public methods first wait up to 5 s for
    // the load, then give the same answer).
    let read = groups.runtime.read(p, |shard| shard.groups.len());
    assert_eq!(
        read.expect_err("loading").error_code(),
        ErrorCode::CoordinatorLoadInProgress
    );
    let request = join_request("g", "", &[("range", b"m")]);
    let join = groups
        .runtime
        .begin(p, |shard, now| shard.join(&ctx(5), &request, now));
    assert_eq!(
        join.err().map(|e| e.error_code()),
        Some(ErrorCode::CoordinatorLoadInProgress)
    );
    log.hold_reads.store(false, Ordering::SeqCst);
    log.released.notify_waiters();
    assert!(groups.wait_serving(p, Duration::from_secs(5)).await);
    let mut j = groups
        .join_group(ctx(5), join_request("g", "", &[("range", b"m")]))
        .await;
    assert_eq!(code(&answered(&mut j)), ErrorCode::MemberIdRequired);
    cancel.cancel();
}
