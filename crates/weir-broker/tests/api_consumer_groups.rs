//! KIP-848 consumer groups over a real socket: two members join with
//! ConsumerGroupHeartbeat, the first releases half its partitions before the second
//! gets them, offsets are committed with the member epoch (OffsetCommit v9),
//! ConsumerGroupDescribe and ListGroups show the group, a member leaves, and the
//! group comes back after a restart.

mod common;

use std::collections::BTreeSet;

use common::client::{Client, TestBroker};
use common::TEST_TIMEOUT;
use tokio::time::timeout;
use weir_protocol::messages::consumer_group_describe::{
    ConsumerGroupDescribeRequest, DescribedGroup,
};
use weir_protocol::messages::consumer_group_heartbeat::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, TopicPartitions,
};
use weir_protocol::messages::find_coordinator::FindCoordinatorRequest;
use weir_protocol::messages::list_groups::ListGroupsRequest;
use weir_protocol::messages::offset_commit::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use weir_protocol::{Request, Response, Uuid};
use weir_types::ErrorCode;

async fn heartbeat(
    client: &mut Client,
    r: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let Response::ConsumerGroupHeartbeat(r) =
        client.call(0, Request::ConsumerGroupHeartbeat(r)).await
    else {
        panic!("not ConsumerGroupHeartbeat")
    };
    r
}

fn join(topic: &str) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        group_id: "cg".into(),
        member_id: String::new(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(vec![topic.into()]),
        topic_partitions: Some(Vec::new()),
        ..ConsumerGroupHeartbeatRequest::default()
    }
}

fn beat(member: &str, epoch: i32, topic: Uuid, owned: &[i32]) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        group_id: "cg".into(),
        member_id: member.into(),
        member_epoch: epoch,
        topic_partitions: Some(vec![TopicPartitions {
            topic_id: topic,
            partitions: owned.to_vec(),
        }]),
        ..ConsumerGroupHeartbeatRequest::default()
    }
}

fn owned(r: &ConsumerGroupHeartbeatResponse) -> Option<Vec<i32>> {
    r.assignment.as_ref().map(|a| {
        let mut ps: Vec<i32> = a
            .topic_partitions
            .iter()
            .flat_map(|tp| tp.partitions.clone())
            .collect();
        ps.sort_unstable();
        ps
    })
}

async fn describe(client: &mut Client) -> DescribedGroup {
    let request = ConsumerGroupDescribeRequest {
        group_ids: vec!["cg".into()],
        include_authorized_operations: false,
    };
    let Response::ConsumerGroupDescribe(mut r) = client
        .call(0, Request::ConsumerGroupDescribe(request))
        .await
    else {
        panic!("not ConsumerGroupDescribe")
    };
    r.groups.pop().expect("one group")
}

async fn find(client: &mut Client) {
    let request = FindCoordinatorRequest {
        key: "cg".into(),
        ..FindCoordinatorRequest::default()
    };
    let Response::FindCoordinator(r) = client.call(3, Request::FindCoordinator(request)).await
    else {
        panic!("not FindCoordinator")
    };
    assert_eq!(r.error_code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumer_protocol_members_share_a_topic_and_the_group_survives_a_restart() {
    timeout(TEST_TIMEOUT, async {
        let tweak = |c: &mut weir_broker::BrokerConfig| c.offsets_topic_num_partitions = 3;
        let broker = TestBroker::start(tweak).await;
        let mut client = broker.client().await;
        assert_eq!(client.create_topic("t", 4, &[]).await.error_code, 0);
        let topic = client.metadata(Some(&["t"])).await.topics[0].topic_id;
        find(&mut client).await;

        let a = heartbeat(&mut client, join("t")).await;
        assert_eq!(a.error_code, 0, "{:?}", a.error_message);
        let a_id = a.member_id.clone().expect("member id");
        assert_eq!((a.member_epoch, owned(&a)), (1, Some(vec![0, 1, 2, 3])));
        assert_eq!(a.heartbeat_interval_ms, 5_000);

        let b = heartbeat(&mut client, join("t")).await;
        let b_id = b.member_id.clone().expect("member id");
        assert_eq!(
            (b.member_epoch, owned(&b)),
            (2, Some(Vec::new())),
            "nothing until a releases"
        );
        let r = heartbeat(&mut client, beat(&a_id, 1, topic, &[0, 1, 2, 3])).await;
        let keep = owned(&r).expect("a's reduced assignment");
        assert_eq!((r.member_epoch, keep.len()), (1, 2));
        let r = heartbeat(&mut client, beat(&a_id, 1, topic, &keep)).await;
        assert_eq!(r.member_epoch, 2);
        let r = heartbeat(&mut client, beat(&b_id, 2, topic, &[])).await;
        let got = owned(&r).expect("b's partitions");
        let all: BTreeSet<i32> = keep.iter().chain(&got).copied().collect();
        assert_eq!(all.len(), 4);

        // Errors reach the client with Kafka's codes and messages.
        let r = heartbeat(&mut client, beat(&a_id, 9, topic, &keep)).await;
        assert_eq!(
            ErrorCode::from_code(r.error_code),
            ErrorCode::FencedMemberEpoch
        );
        assert!(r.error_message.is_some());

        // Commits carry the member epoch (v9).
        let commit = OffsetCommitRequest {
            group_id: "cg".into(),
            generation_id_or_member_epoch: 2,
            member_id: a_id.clone(),
            group_instance_id: None,
            retention_time_ms: -1,
            topics: vec![OffsetCommitRequestTopic {
                name: "t".into(),
                partitions: vec![OffsetCommitRequestPartition {
                    partition_index: keep[0],
                    committed_offset: 17,
                    committed_leader_epoch: -1,
                    commit_timestamp: -1,
                    committed_metadata: Some("kip-848".into()),
                }],
            }],
        };
        let Response::OffsetCommit(r) = client.call(9, Request::OffsetCommit(commit)).await else {
            panic!("not OffsetCommit")
        };
        assert_eq!(r.topics[0].partitions[0].error_code, 0);

        let d = describe(&mut client).await;
        assert_eq!(
            (
                d.error_code,
                d.group_state.as_str(),
                d.group_epoch,
                d.assignment_epoch
            ),
            (0, "Stable", 2, 2)
        );
        assert_eq!(d.assignor_name, "uniform");
        assert_eq!(d.members.len(), 2);
        assert!(d
            .members
            .iter()
            .all(|m| m.assignment.topic_partitions[0].topic_name == "t"));
        let list = ListGroupsRequest {
            states_filter: Vec::new(),
            types_filter: vec!["Consumer".into()],
        };
        let Response::ListGroups(l) = client.call(5, Request::ListGroups(list)).await else {
            panic!("not ListGroups")
        };
        assert_eq!(l.groups.len(), 1);
        assert_eq!(
            (
                l.groups[0].group_type.as_str(),
                l.groups[0].protocol_type.as_str()
            ),
            ("consumer", "consumer")
        );

        // b leaves.
        let mut leave = beat(&b_id, -1, topic, &[]);
        leave.topic_partitions = None;
        assert_eq!(heartbeat(&mut client, leave).await.member_epoch, -1);
        drop(client);

        // After a restart: a is still a member at its epoch; it gets b's partitions.
        let dir = broker.stop().await;
        let broker = TestBroker::start_in(dir, tweak).await;
        let mut client = broker.client().await;
        find(&mut client).await;
        let r = heartbeat(&mut client, beat(&a_id, 2, topic, &keep)).await;
        assert_eq!(r.error_code, 0, "{:?}", r.error_message);
        assert_eq!((r.member_epoch, owned(&r)), (3, Some(vec![0, 1, 2, 3])));
    })
    .await
    .expect("test timed out");
}
