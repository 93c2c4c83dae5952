//! OffsetCommit, OffsetFetch, OffsetDelete and retention.

use weir_protocol::messages::offset_commit::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use weir_protocol::messages::offset_delete::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};

use super::*;

/// A commit of `(topic, partition, offset, metadata)` entries.
pub(super) fn commit_request(
    group: &str,
    generation: i32,
    member: &str,
    entries: &[(&str, i32, i64, Option<&str>)],
) -> OffsetCommitRequest {
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for (topic, partition, offset, metadata) in entries {
        let p = OffsetCommitRequestPartition {
            partition_index: *partition,
            committed_offset: *offset,
            committed_leader_epoch: 3,
            commit_timestamp: -1,
            committed_metadata: metadata.map(Into::into),
        };
        match topics.iter_mut().find(|t| t.name == *topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(OffsetCommitRequestTopic {
                name: (*topic).into(),
                partitions: vec![p],
            }),
        }
    }
    OffsetCommitRequest {
        group_id: group.into(),
        generation_id_or_member_epoch: generation,
        member_id: member.into(),
        group_instance_id: None,
        retention_time_ms: -1,
        topics,
    }
}

/// Commits and returns every partition's code.
pub(super) async fn commit(
    h: &Harness,
    request: OffsetCommitRequest,
    version: i16,
) -> Vec<ErrorCode> {
    let mut r = h.groups.commit_offsets(request, version).await;
    answered(&mut r)
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| ErrorCode::from_code(p.error_code))
        })
        .collect()
}

/// The committed (offset, epoch, metadata) of one partition.
pub(super) async fn fetch_one(
    h: &Harness,
    group: &str,
    topic: &str,
    partition: i32,
) -> (i64, i32, String) {
    let topics = Some(vec![(topic.to_owned(), vec![partition])]);
    let r = h
        .groups
        .fetch_offsets(group, &topics, (None, -1))
        .await
        .expect("served");
    let p = &r.topics[0].partitions[0];
    (
        p.committed_offset,
        p.committed_leader_epoch,
        p.metadata.clone().unwrap_or_default(),
    )
}

#[tokio::test]
async fn a_standalone_consumer_commits_and_fetches_with_metadata() {
    let h = Harness::new().await;
    let codes = commit(
        &h,
        commit_request(
            "solo",
            -1,
            "",
            &[
                ("t", 0, 42, Some("m0")),
                ("t", 1, 7, None),
                ("u", 0, 1, Some("")),
            ],
        ),
        8,
    )
    .await;
    assert_eq!(codes, [ErrorCode::None; 3]);
    assert_eq!(fetch_one(&h, "solo", "t", 0).await, (42, 3, "m0".into()));
    assert_eq!(
        fetch_one(&h, "solo", "t", 1).await,
        (7, 3, String::new()),
        "null metadata is stored as empty"
    );
    assert_eq!(
        fetch_one(&h, "solo", "t", 9).await,
        (-1, -1, String::new()),
        "never committed"
    );
    assert_eq!(
        fetch_one(&h, "nowhere", "t", 0).await,
        (-1, -1, String::new()),
        "no such group"
    );
    // All partitions (topics null).
    let all = h
        .groups
        .fetch_offsets("solo", &None, (None, -1))
        .await
        .expect("served");
    let names: Vec<_> = all
        .topics
        .iter()
        .map(|t| (t.name.as_str(), t.partitions.len()))
        .collect();
    assert_eq!(names, [("t", 2), ("u", 1)]);
    // The group exists, empty, without a protocol type.
    let listed = h
        .groups
        .list_groups(&Default::default(), &Default::default())
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].group_state.as_str(),
            listed[0].protocol_type.as_str()
        ),
        ("Empty", "")
    );
    // The commit records are Kafka's, with the commit time.
    let written = h.written("solo");
    let Some(Record::OffsetCommit {
        key,
        value: Some(v),
    }) = written.first()
    else {
        panic!("no commit record: {written:?}");
    };
    assert_eq!(
        (key.group.as_str(), key.topic.as_str(), key.partition),
        ("solo", "t", 0)
    );
    assert_eq!(
        (v.offset, v.leader_epoch, v.metadata.as_str()),
        (42, 3, "m0")
    );
    assert_eq!(
        (v.commit_timestamp, v.expire_timestamp),
        (h.clock.wall_ms(), -1)
    );
}

#[tokio::test]
async fn metadata_over_the_limit_is_refused_per_partition() {
    let h = Harness::new().await;
    let long = "x".repeat(4097);
    let fits = "y".repeat(4096);
    let codes = commit(
        &h,
        commit_request(
            "g",
            -1,
            "",
            &[("t", 0, 1, Some(&long)), ("t", 1, 2, Some(&fits))],
        ),
        8,
    )
    .await;
    assert_eq!(codes, [ErrorCode::OffsetMetadataTooLarge, ErrorCode::None]);
    assert_eq!(fetch_one(&h, "g", "t", 0).await.0, -1);
    assert_eq!(fetch_one(&h, "g", "t", 1).await.0, 2);
}

#[tokio::test]
async fn group_commits_are_checked_against_membership_and_generation() {
    let h = Harness::new().await;
    // No such group, with a generation: ILLEGAL_GENERATION before v9,
    // GROUP_ID_NOT_FOUND from v9.
    let r = commit(&h, commit_request("g", 1, "m", &[("t", 0, 1, None)]), 8).await;
    assert_eq!(r, [ErrorCode::IllegalGeneration]);
    let r = commit(&h, commit_request("g", 1, "m", &[("t", 0, 1, None)]), 9).await;
    assert_eq!(r, [ErrorCode::GroupIdNotFound]);

    let (mut a, a_id) = h.join_new("g").await;
    h.advance(3_000).await;
    answered(&mut a);
    // Between JoinGroup and SyncGroup: REBALANCE_IN_PROGRESS.
    let r = commit(&h, commit_request("g", 1, &a_id, &[("t", 0, 1, None)]), 8).await;
    assert_eq!(r, [ErrorCode::RebalanceInProgress]);
    let mut s = h.sync("g", &a_id, 1, &[]).await;
    answered(&mut s);
    let r = commit(
        &h,
        commit_request("g", 1, &a_id, &[("t", 0, 5, Some("ok"))]),
        8,
    )
    .await;
    assert_eq!(r, [ErrorCode::None]);
    let r = commit(&h, commit_request("g", 0, &a_id, &[("t", 0, 6, None)]), 8).await;
    assert_eq!(r, [ErrorCode::IllegalGeneration]);
    let r = commit(
        &h,
        commit_request("g", 1, "stranger", &[("t", 0, 6, None)]),
        8,
    )
    .await;
    assert_eq!(r, [ErrorCode::UnknownMemberId]);
    // A standalone-style commit to a group with members.
    let r = commit(&h, commit_request("g", -1, "", &[("t", 0, 6, None)]), 8).await;
    assert_eq!(r, [ErrorCode::UnknownMemberId]);
    assert_eq!(fetch_one(&h, "g", "t", 0).await, (5, 3, "ok".into()));
    // A commit counts as a heartbeat: the session is pushed back.
    h.advance(9_000).await;
    let r = commit(&h, commit_request("g", 1, &a_id, &[("t", 0, 7, None)]), 8).await;
    assert_eq!(r, [ErrorCode::None]);
    h.advance(9_000).await;
    assert_eq!(h.state("g").await, "Stable");
}

#[tokio::test]
async fn explicit_retention_writes_a_v1_value_with_an_expiry() {
    let h = Harness::new().await;
    let mut request = commit_request("g", -1, "", &[("t", 0, 1, None)]);
    request.retention_time_ms = 60_000;
    assert_eq!(commit(&h, request, 2).await, [ErrorCode::None]);
    let written = h.written("g");
    let Some(Record::OffsetCommit { value: Some(v), .. }) = written.last() else {
        panic!("no commit");
    };
    assert_eq!(v.expire_timestamp, h.clock.wall_ms() + 60_000);
    assert_eq!(v.leader_epoch, -1, "v1 values have no leader epoch");
}

#[tokio::test]
async fn offsets_of_subscribed_topics_cannot_be_deleted() {
    let h = Harness::new().await;
    let sub = subscription(&["t"]);
    let mut a = h.join(3, join_request("g", "", &[("range", &sub)])).await;
    h.advance(3_000).await;
    let a_id = answered(&mut a).member_id;
    let mut s = h.sync("g", &a_id, 1, &[]).await;
    answered(&mut s);
    commit(
        &h,
        commit_request("g", 1, &a_id, &[("t", 0, 1, None), ("old", 0, 2, None)]),
        8,
    )
    .await;
    let topics = vec![
        OffsetDeleteRequestTopic {
            name: "t".into(),
            partitions: vec![OffsetDeleteRequestPartition { partition_index: 0 }],
        },
        OffsetDeleteRequestTopic {
            name: "old".into(),
            partitions: vec![OffsetDeleteRequestPartition { partition_index: 0 }],
        },
    ];
    let mut r = h.groups.delete_offsets("g".into(), topics.clone()).await;
    let r = answered(&mut r);
    assert_eq!(r.error_code, 0);
    let codes: Vec<_> = r
        .topics
        .iter()
        .map(|t| ErrorCode::from_code(t.partitions[0].error_code))
        .collect();
    assert_eq!(codes, [ErrorCode::GroupSubscribedToTopic, ErrorCode::None]);
    assert_eq!(fetch_one(&h, "g", "old", 0).await.0, -1, "deleted");
    assert_eq!(fetch_one(&h, "g", "t", 0).await.0, 1, "kept");
    let mut r = h.groups.delete_offsets("nowhere".into(), topics).await;
    assert_eq!(
        answered(&mut r).error_code,
        ErrorCode::GroupIdNotFound.code()
    );
}

#[tokio::test]
async fn a_non_consumer_group_with_members_refuses_offset_deletes() {
    let h = Harness::new().await;
    let mut request = join_request("g", "", &[("p", b"m")]);
    request.protocol_type = "connect".into();
    let mut a = h.join(3, request).await;
    h.advance(3_000).await;
    answered(&mut a);
    let topics = vec![OffsetDeleteRequestTopic {
        name: "t".into(),
        partitions: vec![OffsetDeleteRequestPartition { partition_index: 0 }],
    }];
    let mut r = h.groups.delete_offsets("g".into(), topics).await;
    assert_eq!(answered(&mut r).error_code, ErrorCode::NonEmptyGroup.code());
}

#[tokio::test]
async fn retention_expires_standalone_offsets_and_then_the_group() {
    let h = Harness::new().await;
    commit(&h, commit_request("solo", -1, "", &[("t", 0, 1, None)]), 8).await;
    let day = 24 * 60 * 60 * 1000;
    h.advance(6 * day).await;
    commit(&h, commit_request("solo", -1, "", &[("t", 1, 1, None)]), 8).await;
    h.advance(day).await;
    // The sweep runs every 10 minutes; the first commit is 7 days old now.
    h.advance(600_000).await;
    assert_eq!(fetch_one(&h, "solo", "t", 0).await.0, -1, "expired");
    assert_eq!(fetch_one(&h, "solo", "t", 1).await.0, 1, "one day old");
    assert_eq!(h.state("solo").await, "Empty");
    h.advance(6 * day).await;
    assert_eq!(fetch_one(&h, "solo", "t", 1).await.0, -1);
    assert_eq!(
        h.state("solo").await,
        "Dead",
        "a group with nothing left is deleted"
    );
    assert!(matches!(
        h.written("solo").last(),
        Some(Record::GroupMetadata { value: None, .. })
    ));
}

#[tokio::test]
async fn consumer_group_offsets_expire_by_subscription_and_from_when_the_group_emptied() {
    let h = Harness::new().await;
    let mut a = h
        .join(
            3,
            join_request("g", "", &[("range", &subscription(&["t"]))]),
        )
        .await;
    h.advance(3_000).await;
    let a_id = answered(&mut a).member_id;
    let mut s = h.sync("g", &a_id, 1, &[]).await;
    answered(&mut s);
    // v1 carries the commit time: both commits claim to be 8 days old.
    let day = 24 * 60 * 60 * 1000;
    let mut request = commit_request("g", 1, &a_id, &[("t", 0, 1, None), ("old", 0, 2, None)]);
    for t in &mut request.topics {
        t.partitions[0].commit_timestamp = h.clock.wall_ms() - 8 * day;
    }
    assert_eq!(commit(&h, request, 1).await, [ErrorCode::None; 2]);
    // The sweep: the stable group subscribes to t, so only "old" expires.
    for _ in 0..67 {
        h.advance(9_000).await;
        assert_eq!(h.heartbeat("g", &a_id, 1).await, ErrorCode::None);
    }
    assert_eq!(
        fetch_one(&h, "g", "old", 0).await.0,
        -1,
        "unsubscribed and old"
    );
    assert_eq!(fetch_one(&h, "g", "t", 0).await.0, 1, "subscribed");
    // The member leaves: the group is empty from now, and its offsets expire 7 days
    // from now, not from their commit time.
    let leave = vec![weir_protocol::messages::leave_group::MemberIdentity {
        member_id: a_id.clone(),
        ..Default::default()
    }];
    let mut r = h.groups.leave_group("g".into(), leave).await;
    answered(&mut r);
    assert_eq!(h.state("g").await, "Empty");
    h.advance(u64::try_from(7 * day - 600_000).expect("positive"))
        .await;
    assert_eq!(fetch_one(&h, "g", "t", 0).await.0, 1);
    h.advance(600_000).await;
    assert_eq!(fetch_one(&h, "g", "t", 0).await.0, -1);
    assert_eq!(h.state("g").await, "Dead");
}
