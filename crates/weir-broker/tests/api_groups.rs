//! Consumer groups over a real socket: FindCoordinator (and the offsets topic it
//! creates), two members joining and syncing with a client-side assignment,
//! heartbeat errors, a member leaving and the rebalance after it, committed
//! offsets with metadata, the admin APIs, and offsets surviving a restart.

mod common;

use bytes::Bytes;
use common::client::{Client, TestBroker};
use common::TEST_TIMEOUT;
use tokio::time::timeout;
use weir_protocol::messages::consumer_protocol_assignment::{
    ConsumerProtocolAssignment, TopicPartition,
};
use weir_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
use weir_protocol::messages::delete_groups::DeleteGroupsRequest;
use weir_protocol::messages::describe_groups::{DescribeGroupsRequest, DescribedGroup};
use weir_protocol::messages::find_coordinator::FindCoordinatorRequest;
use weir_protocol::messages::heartbeat::HeartbeatRequest;
use weir_protocol::messages::join_group::{
    JoinGroupRequest, JoinGroupRequestProtocol, JoinGroupResponse,
};
use weir_protocol::messages::leave_group::{LeaveGroupRequest, MemberIdentity};
use weir_protocol::messages::list_groups::ListGroupsRequest;
use weir_protocol::messages::offset_commit::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use weir_protocol::messages::offset_fetch::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use weir_protocol::messages::sync_group::{
    SyncGroupRequest, SyncGroupRequestAssignment, SyncGroupResponse,
};
use weir_protocol::{Message, Request, Response};
use weir_types::ErrorCode;

fn code(c: i16) -> ErrorCode {
    ErrorCode::from_code(c)
}

/// Member metadata of a consumer subscribed to `topics` (consumer protocol v0).
fn subscription(topics: &[&str]) -> Bytes {
    let body = ConsumerProtocolSubscription {
        topics: topics.iter().map(|t| (*t).into()).collect(),
        ..ConsumerProtocolSubscription::default()
    }
    .to_bytes(0)
    .expect("encode");
    [&[0u8, 0][..], &body].concat().into()
}

/// An assignment of `partitions` of `topic` (consumer protocol v0).
fn assignment(topic: &str, partitions: &[i32]) -> Bytes {
    let body = ConsumerProtocolAssignment {
        assigned_partitions: vec![TopicPartition {
            topic: topic.into(),
            partitions: partitions.to_vec(),
        }],
        user_data: None,
    }
    .to_bytes(0)
    .expect("encode");
    [&[0u8, 0][..], &body].concat().into()
}

async fn join(client: &mut Client, group: &str, member: &str) -> JoinGroupResponse {
    let request = JoinGroupRequest {
        group_id: group.into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        member_id: member.into(),
        group_instance_id: None,
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupRequestProtocol {
            name: "range".into(),
            metadata: subscription(&["t"]),
        }],
        reason: None,
    };
    let Response::JoinGroup(r) = client.call(9, Request::JoinGroup(request)).await else {
        panic!("not JoinGroup")
    };
    r
}

/// The KIP-394 two-step join: the member id, then the (parked) real join.
async fn join_new(client: &mut Client, group: &str) -> JoinGroupResponse {
    let first = join(client, group, "").await;
    assert_eq!(code(first.error_code), ErrorCode::MemberIdRequired);
    assert!(
        first.member_id.starts_with("weir-api-test-"),
        "{}",
        first.member_id
    );
    join(client, group, &first.member_id).await
}

async fn sync(
    client: &mut Client,
    group: &str,
    member: &str,
    generation: i32,
    assignments: Vec<(String, Bytes)>,
) -> SyncGroupResponse {
    let request = SyncGroupRequest {
        group_id: group.into(),
        generation_id: generation,
        member_id: member.into(),
        group_instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments: assignments
            .into_iter()
            .map(|(member_id, assignment)| SyncGroupRequestAssignment {
                member_id,
                assignment,
            })
            .collect(),
    };
    let Response::SyncGroup(r) = client.call(5, Request::SyncGroup(request)).await else {
        panic!("not SyncGroup")
    };
    r
}

async fn heartbeat(client: &mut Client, group: &str, member: &str, generation: i32) -> ErrorCode {
    let request = HeartbeatRequest {
        group_id: group.into(),
        generation_id: generation,
        member_id: member.into(),
        group_instance_id: None,
    };
    let Response::Heartbeat(r) = client.call(4, Request::Heartbeat(request)).await else {
        panic!("not Heartbeat")
    };
    code(r.error_code)
}

async fn describe(client: &mut Client, group: &str) -> DescribedGroup {
    let request = DescribeGroupsRequest {
        groups: vec![group.into()],
        include_authorized_operations: false,
    };
    let Response::DescribeGroups(mut r) = client.call(5, Request::DescribeGroups(request)).await
    else {
        panic!("not DescribeGroups")
    };
    r.groups.pop().expect("one group")
}

async fn commit(
    client: &mut Client,
    group: &str,
    generation: i32,
    member: &str,
    entries: &[(i32, i64, &str)],
) -> Vec<ErrorCode> {
    let request = OffsetCommitRequest {
        group_id: group.into(),
        generation_id_or_member_epoch: generation,
        member_id: member.into(),
        group_instance_id: None,
        retention_time_ms: -1,
        topics: vec![OffsetCommitRequestTopic {
            name: "t".into(),
            partitions: entries
                .iter()
                .map(|(p, o, m)| OffsetCommitRequestPartition {
                    partition_index: *p,
                    committed_offset: *o,
                    committed_leader_epoch: -1,
                    commit_timestamp: -1,
                    committed_metadata: Some((*m).into()),
                })
                .collect(),
        }],
    };
    let Response::OffsetCommit(r) = client.call(8, Request::OffsetCommit(request)).await else {
        panic!("not OffsetCommit")
    };
    r.topics[0]
        .partitions
        .iter()
        .map(|p| code(p.error_code))
        .collect()
}

/// Committed (offset, metadata) of partitions of "t", with OffsetFetch v8.
async fn fetch(client: &mut Client, group: &str, partitions: &[i32]) -> Vec<(i64, String)> {
    let request = OffsetFetchRequest {
        groups: vec![OffsetFetchRequestGroup {
            group_id: group.into(),
            member_id: None,
            member_epoch: -1,
            topics: Some(vec![OffsetFetchRequestTopics {
                name: "t".into(),
                partition_indexes: partitions.to_vec(),
            }]),
        }],
        require_stable: true,
        ..OffsetFetchRequest::default()
    };
    let Response::OffsetFetch(r) = client.call(8, Request::OffsetFetch(request)).await else {
        panic!("not OffsetFetch")
    };
    assert_eq!(r.groups[0].error_code, 0);
    r.groups[0].topics[0]
        .partitions
        .iter()
        .map(|p| (p.committed_offset, p.metadata.clone().unwrap_or_default()))
        .collect()
}

/// FindCoordinator v3 for a group: the node id and port.
async fn find(client: &mut Client, group: &str) -> (i32, i32) {
    let request = FindCoordinatorRequest {
        key: group.into(),
        key_type: 0,
        coordinator_keys: Vec::new(),
    };
    let Response::FindCoordinator(r) = client.call(3, Request::FindCoordinator(request)).await
    else {
        panic!("not FindCoordinator")
    };
    assert_eq!(code(r.error_code), ErrorCode::None, "{:?}", r.error_message);
    (r.node_id, r.port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_join_sync_one_leaves_and_the_group_rebalances() {
    timeout(TEST_TIMEOUT, async {
        let broker = TestBroker::start(|c| c.group_initial_rebalance_delay_ms = 200).await;
        let mut admin = broker.client().await;
        assert_eq!(admin.create_topic("t", 4, &[]).await.error_code, 0);

        // The first lookup creates __consumer_offsets and names this broker.
        let (node, port) = find(&mut admin, "g").await;
        assert_eq!((node, port), (1, i32::from(broker.addr.port())));
        let metadata = admin.metadata(Some(&["__consumer_offsets"])).await;
        assert_eq!(metadata.topics[0].partitions.len(), 50);
        assert!(metadata.topics[0].is_internal);
        // v4: several keys; a transactional id is refused honestly.
        let request = FindCoordinatorRequest {
            key_type: 0,
            coordinator_keys: vec!["g".into(), "h".into()],
            ..FindCoordinatorRequest::default()
        };
        let Response::FindCoordinator(r) = admin.call(4, Request::FindCoordinator(request)).await
        else {
            panic!("not FindCoordinator")
        };
        assert!(r
            .coordinators
            .iter()
            .all(|c| c.error_code == 0 && c.node_id == 1));
        let request = FindCoordinatorRequest {
            key_type: 1,
            coordinator_keys: vec!["txn".into()],
            ..FindCoordinatorRequest::default()
        };
        let Response::FindCoordinator(r) = admin.call(4, Request::FindCoordinator(request)).await
        else {
            panic!("not FindCoordinator")
        };
        assert_eq!(
            code(r.coordinators[0].error_code),
            ErrorCode::UnsupportedVersion
        );

        // Two members join, each on its own connection (the join answer waits).
        let mut a = broker.client().await;
        let mut b = broker.client().await;
        let a_join = tokio::spawn(async move {
            let r = join_new(&mut a, "g").await;
            (a, r)
        });
        let b_join = tokio::spawn(async move {
            let r = join_new(&mut b, "g").await;
            (b, r)
        });
        let (a, ja) = a_join.await.expect("a joins");
        let (b, jb) = b_join.await.expect("b joins");
        assert_eq!(
            (code(ja.error_code), code(jb.error_code)),
            (ErrorCode::None, ErrorCode::None)
        );
        assert_eq!((ja.generation_id, jb.generation_id), (1, 1));
        assert_eq!(ja.leader, jb.leader);
        assert_eq!(ja.protocol_name.as_deref(), Some("range"));
        let (mut leader, lj, mut follower, fj) = if ja.leader == ja.member_id {
            (a, ja, b, jb)
        } else {
            (b, jb, a, ja)
        };
        assert_eq!(lj.members.len(), 2, "the leader gets both subscriptions");
        assert!(lj
            .members
            .iter()
            .all(|m| m.metadata == subscription(&["t"])));
        assert!(fj.members.is_empty());

        // The follower's SyncGroup waits for the leader's assignment.
        let (f_id, l_id) = (fj.member_id.clone(), lj.member_id.clone());
        let follower_sync = tokio::spawn(async move {
            let r = sync(&mut follower, "g", &f_id, 1, Vec::new()).await;
            (follower, r)
        });
        let plan = vec![
            (l_id.clone(), assignment("t", &[0, 1])),
            (fj.member_id.clone(), assignment("t", &[2, 3])),
        ];
        let ls = sync(&mut leader, "g", &l_id, 1, plan).await;
        let (mut follower, fs) = follower_sync.await.expect("follower syncs");
        assert_eq!(
            (code(ls.error_code), code(fs.error_code)),
            (ErrorCode::None, ErrorCode::None)
        );
        assert_eq!(ls.assignment, assignment("t", &[0, 1]));
        assert_eq!(fs.assignment, assignment("t", &[2, 3]));
        assert_eq!(fs.protocol_name.as_deref(), Some("range"));

        // Heartbeats and their errors.
        assert_eq!(
            heartbeat(&mut follower, "g", &fj.member_id, 1).await,
            ErrorCode::None
        );
        assert_eq!(
            heartbeat(&mut follower, "g", &fj.member_id, 7).await,
            ErrorCode::IllegalGeneration
        );
        assert_eq!(
            heartbeat(&mut follower, "g", "nobody", 1).await,
            ErrorCode::UnknownMemberId
        );
        assert_eq!(
            heartbeat(&mut follower, "nowhere", "nobody", 1).await,
            ErrorCode::UnknownMemberId
        );

        // Offsets with metadata; an unknown partition is refused by the broker.
        let codes = commit(
            &mut leader,
            "g",
            1,
            &l_id,
            &[(0, 10, "from-leader"), (1, 11, ""), (9, 1, "")],
        )
        .await;
        assert_eq!(
            codes,
            [
                ErrorCode::None,
                ErrorCode::None,
                ErrorCode::UnknownTopicOrPartition
            ]
        );
        assert_eq!(
            commit(&mut follower, "g", 0, &fj.member_id, &[(2, 5, "")]).await,
            [ErrorCode::IllegalGeneration]
        );
        assert_eq!(
            fetch(&mut admin, "g", &[0, 1, 2]).await,
            [
                (10, "from-leader".into()),
                (11, String::new()),
                (-1, String::new())
            ]
        );

        let d = describe(&mut admin, "g").await;
        assert_eq!(
            (
                d.group_state.as_str(),
                d.protocol_data.as_str(),
                d.members.len()
            ),
            ("Stable", "range", 2)
        );
        let Response::ListGroups(lg) = admin
            .call(
                4,
                Request::ListGroups(ListGroupsRequest {
                    states_filter: vec!["Stable".into()],
                    types_filter: Vec::new(),
                }),
            )
            .await
        else {
            panic!("not ListGroups")
        };
        assert_eq!(lg.groups.len(), 1);
        assert_eq!(
            (
                lg.groups[0].group_id.as_str(),
                lg.groups[0].protocol_type.as_str()
            ),
            ("g", "consumer")
        );

        // The follower leaves (v4: a batch of one); the leader learns of the
        // rebalance from its heartbeat, rejoins alone and gets everything.
        let request = LeaveGroupRequest {
            group_id: "g".into(),
            members: vec![MemberIdentity {
                member_id: fj.member_id.clone(),
                group_instance_id: None,
                reason: None,
            }],
            ..LeaveGroupRequest::default()
        };
        let Response::LeaveGroup(r) = follower.call(4, Request::LeaveGroup(request)).await else {
            panic!("not LeaveGroup")
        };
        assert_eq!((r.error_code, r.members[0].error_code), (0, 0));
        assert_eq!(
            heartbeat(&mut leader, "g", &l_id, 1).await,
            ErrorCode::RebalanceInProgress
        );
        let rejoined = join(&mut leader, "g", &l_id).await;
        assert_eq!(
            (
                code(rejoined.error_code),
                rejoined.generation_id,
                rejoined.members.len()
            ),
            (ErrorCode::None, 2, 1)
        );
        let s = sync(
            &mut leader,
            "g",
            &l_id,
            2,
            vec![(l_id.clone(), assignment("t", &[0, 1, 2, 3]))],
        )
        .await;
        assert_eq!(s.assignment, assignment("t", &[0, 1, 2, 3]));
        assert_eq!(heartbeat(&mut leader, "g", &l_id, 2).await, ErrorCode::None);
        assert_eq!(
            heartbeat(&mut follower, "g", &fj.member_id, 2).await,
            ErrorCode::UnknownMemberId
        );

        // Only an empty group can be deleted.
        let delete = |name: &str| {
            Request::DeleteGroups(DeleteGroupsRequest {
                groups_names: vec![name.into()],
            })
        };
        let Response::DeleteGroups(r) = admin.call(2, delete("g")).await else {
            panic!("not DeleteGroups")
        };
        assert_eq!(code(r.results[0].error_code), ErrorCode::NonEmptyGroup);
        let Response::DeleteGroups(r) = admin.call(2, delete("nowhere")).await else {
            panic!("not DeleteGroups")
        };
        assert_eq!(code(r.results[0].error_code), ErrorCode::GroupIdNotFound);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_and_their_metadata_survive_a_restart() {
    timeout(TEST_TIMEOUT, async {
        let tweak = |c: &mut weir_broker::BrokerConfig| {
            c.offsets_topic_num_partitions = 5;
            c.group_initial_rebalance_delay_ms = 0;
        };
        let broker = TestBroker::start(tweak).await;
        let mut client = broker.client().await;
        assert_eq!(client.create_topic("t", 3, &[]).await.error_code, 0);
        find(&mut client, "solo").await;
        // A standalone consumer (generation -1), at v2 and at v8.
        let request = OffsetCommitRequest {
            group_id: "solo".into(),
            generation_id_or_member_epoch: -1,
            member_id: String::new(),
            group_instance_id: None,
            retention_time_ms: -1,
            topics: vec![OffsetCommitRequestTopic {
                name: "t".into(),
                partitions: vec![OffsetCommitRequestPartition {
                    partition_index: 0,
                    committed_offset: 100,
                    committed_leader_epoch: -1,
                    commit_timestamp: -1,
                    committed_metadata: Some("old-client".into()),
                }],
            }],
        };
        let Response::OffsetCommit(r) = client.call(2, Request::OffsetCommit(request)).await else {
            panic!("not OffsetCommit")
        };
        assert_eq!(r.topics[0].partitions[0].error_code, 0);
        assert_eq!(
            commit(
                &mut client,
                "solo",
                -1,
                "",
                &[(1, 200, "{\"app\":\"x\"}"), (2, 300, "")]
            )
            .await,
            [ErrorCode::None; 3][..2]
        );
        assert_eq!(
            commit(&mut client, "solo", -1, "", &[(2, 301, "last")]).await,
            [ErrorCode::None]
        );
        // A group with a member and a generation.
        find(&mut client, "g").await;
        let j = join_new(&mut client, "g").await;
        let s = sync(
            &mut client,
            "g",
            &j.member_id,
            1,
            vec![(j.member_id.clone(), assignment("t", &[0]))],
        )
        .await;
        assert_eq!(s.error_code, 0);
        assert_eq!(
            commit(&mut client, "g", 1, &j.member_id, &[(0, 7, "g-meta")]).await,
            [ErrorCode::None]
        );
        drop(client);

        let dir = broker.stop().await;
        let broker = TestBroker::start_in(dir, tweak).await;
        let mut client = broker.client().await;
        find(&mut client, "solo").await;
        assert_eq!(
            fetch(&mut client, "solo", &[0, 1, 2]).await,
            [
                (100, "old-client".into()),
                (200, "{\"app\":\"x\"}".into()),
                (301, "last".into())
            ]
        );
        // v1 (single group, partition errors only) reads the same.
        let request = OffsetFetchRequest {
            group_id: "solo".into(),
            topics: Some(vec![OffsetFetchRequestTopic {
                name: "t".into(),
                partition_indexes: vec![2],
            }]),
            ..OffsetFetchRequest::default()
        };
        let Response::OffsetFetch(r) = client.call(1, Request::OffsetFetch(request)).await else {
            panic!("not OffsetFetch")
        };
        let p = &r.topics[0].partitions[0];
        assert_eq!(
            (p.committed_offset, p.metadata.as_deref(), p.error_code),
            (301, Some("last"), 0)
        );
        assert_eq!(fetch(&mut client, "g", &[0]).await, [(7, "g-meta".into())]);
        // The group came back with its member and assignment.
        let d = describe(&mut client, "g").await;
        assert_eq!(d.group_state, "Stable");
        assert_eq!(d.members[0].member_id, j.member_id);
        assert_eq!(d.members[0].member_assignment, assignment("t", &[0]));
        assert_eq!(
            heartbeat(&mut client, "g", &j.member_id, 1).await,
            ErrorCode::None
        );
    })
    .await
    .expect("test timed out");
}
