//! ElectLeaders and the partition reassignment APIs over a real socket against a
//! single node: per-partition errors as Kafka gives them (ELECTION_NOT_NEEDED where
//! the only replica leads, UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT
//! for targets that cannot be, NO_REASSIGNMENT_IN_PROGRESS for a cancel), and no
//! reassignment ever listed where none can run; v1's refusal of replication factor
//! changes (KIP-860). Moves between brokers are in
//! `weir-cli/tests/cluster_admin.rs`.

mod common;

use common::client::{Client, TestBroker};
use common::TEST_TIMEOUT;
use tokio::time::timeout;
use weir_protocol::messages::alter_partition_reassignments::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ReassignablePartition,
    ReassignableTopic,
};
use weir_protocol::messages::elect_leaders::{
    ElectLeadersRequest, ElectLeadersResponse, TopicPartitions,
};
use weir_protocol::messages::list_partition_reassignments::{
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
    ListPartitionReassignmentsTopics,
};
use weir_protocol::{Request, Response};
use weir_types::ErrorCode;

fn code(e: ErrorCode) -> i16 {
    e.code()
}

async fn elect(
    client: &mut Client,
    version: i16,
    election_type: i8,
    partitions: Option<&[(&str, &[i32])]>,
) -> ElectLeadersResponse {
    let request = ElectLeadersRequest {
        election_type,
        topic_partitions: partitions.map(|ps| {
            ps.iter()
                .map(|(topic, partitions)| TopicPartitions {
                    topic: (*topic).into(),
                    partitions: partitions.to_vec(),
                })
                .collect()
        }),
        timeout_ms: 10_000,
    };
    let Response::ElectLeaders(r) = client.call(version, Request::ElectLeaders(request)).await
    else {
        panic!("not an ElectLeaders response")
    };
    r
}

/// (topic, partition, error code) per result, in response order.
fn election_codes(r: &ElectLeadersResponse) -> Vec<(String, i32, i16)> {
    r.replica_election_results
        .iter()
        .flat_map(|t| {
            t.partition_result
                .iter()
                .map(|p| (t.topic.clone(), p.partition_id, p.error_code))
        })
        .collect()
}

async fn reassign(
    client: &mut Client,
    targets: &[(&str, i32, Option<&[i32]>)],
) -> AlterPartitionReassignmentsResponse {
    let mut topics: Vec<ReassignableTopic> = Vec::new();
    for (topic, partition, replicas) in targets {
        let p = ReassignablePartition {
            partition_index: *partition,
            replicas: replicas.map(<[i32]>::to_vec),
        };
        match topics.iter_mut().find(|t| t.name == *topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(ReassignableTopic {
                name: (*topic).into(),
                partitions: vec![p],
            }),
        }
    }
    let request = AlterPartitionReassignmentsRequest {
        timeout_ms: 10_000,
        topics,
        ..AlterPartitionReassignmentsRequest::default()
    };
    let Response::AlterPartitionReassignments(r) = client
        .call(0, Request::AlterPartitionReassignments(request))
        .await
    else {
        panic!("not an AlterPartitionReassignments response")
    };
    r
}

/// (topic, partition, error code, message) per result, in response order.
fn reassign_codes(r: &AlterPartitionReassignmentsResponse) -> Vec<(String, i32, i16, String)> {
    r.responses
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.clone(),
                    p.partition_index,
                    p.error_code,
                    p.error_message.clone().unwrap_or_default(),
                )
            })
        })
        .collect()
}

async fn list(
    client: &mut Client,
    partitions: Option<&[(&str, &[i32])]>,
) -> ListPartitionReassignmentsResponse {
    let request = ListPartitionReassignmentsRequest {
        timeout_ms: 10_000,
        topics: partitions.map(|ps| {
            ps.iter()
                .map(|(name, indexes)| ListPartitionReassignmentsTopics {
                    name: (*name).into(),
                    partition_indexes: indexes.to_vec(),
                })
                .collect()
        }),
    };
    let Response::ListPartitionReassignments(r) = client
        .call(0, Request::ListPartitionReassignments(request))
        .await
    else {
        panic!("not a ListPartitionReassignments response")
    };
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elections_on_a_single_node_are_not_needed() {
    timeout(TEST_TIMEOUT, async {
        let broker = TestBroker::start(|_| {}).await;
        let mut client = broker.client().await;
        assert_eq!(client.create_topic("t", 2, &[]).await.error_code, 0);
        let none = code(ErrorCode::None);
        let not_needed = code(ErrorCode::ElectionNotNeeded);
        let unknown = code(ErrorCode::UnknownTopicOrPartition);

        // The only replica leads each partition; unknown topics and partitions are
        // named per partition; a partition named twice is answered once.
        let r = elect(
            &mut client,
            2,
            0,
            Some(&[("t", &[0, 1, 0]), ("nope", &[0]), ("t", &[9])]),
        )
        .await;
        assert_eq!(r.error_code, none);
        assert_eq!(
            election_codes(&r),
            [
                ("t".into(), 0, not_needed),
                ("t".into(), 1, not_needed),
                ("t".into(), 9, unknown),
                ("nope".into(), 0, unknown),
            ]
        );
        let message = &r.replica_election_results[0].partition_result[0].error_message;
        assert!(
            message.as_deref().is_some_and(|m| !m.is_empty()),
            "{message:?}"
        );

        // Null partitions: every partition, listing only where an election ran.
        let r = elect(&mut client, 2, 0, None).await;
        assert_eq!(r.error_code, none);
        assert!(r.replica_election_results.is_empty(), "{r:?}");

        // v0 carries no election type and is PREFERRED; v1 UNCLEAN with a leader
        // in place is not needed either.
        let r = elect(&mut client, 0, 0, Some(&[("t", &[1])])).await;
        assert_eq!(election_codes(&r), [("t".into(), 1, not_needed)]);
        let r = elect(&mut client, 1, 1, Some(&[("t", &[0])])).await;
        assert_eq!(election_codes(&r), [("t".into(), 0, not_needed)]);

        // An election type that is not one fails the whole request.
        let r = elect(&mut client, 2, 7, Some(&[("t", &[0])])).await;
        assert_eq!(r.error_code, code(ErrorCode::InvalidRequest));
        assert_eq!(
            election_codes(&r),
            [("t".into(), 0, code(ErrorCode::InvalidRequest))]
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reassignments_on_a_single_node_are_checked_and_none_is_listed() {
    timeout(TEST_TIMEOUT, async {
        let broker = TestBroker::start(|_| {}).await;
        let mut client = broker.client().await;
        assert_eq!(client.create_topic("t", 2, &[]).await.error_code, 0);

        let r = list(&mut client, None).await;
        assert_eq!(r.error_code, 0);
        assert!(r.topics.is_empty(), "{r:?}");

        let bad = code(ErrorCode::InvalidReplicaAssignment);
        let r = reassign(
            &mut client,
            &[
                ("t", 0, Some(&[2])),
                ("t", 1, Some(&[1, 1])),
                ("nope", 0, Some(&[1])),
            ],
        )
        .await;
        assert_eq!((r.error_code, r.error_message.as_deref()), (0, None));
        let got = reassign_codes(&r);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!((got[0].1, got[0].2), (0, bad));
        assert!(got[0].3.contains("Broker 2 is not registered"), "{got:?}");
        assert_eq!((got[1].1, got[1].2), (1, bad));
        assert!(got[1].3.contains("duplicates"), "{got:?}");
        assert_eq!(
            (got[2].0.as_str(), got[2].2),
            ("nope", code(ErrorCode::UnknownTopicOrPartition))
        );

        let r = reassign(&mut client, &[("t", 0, Some(&[])), ("t", 1, None)]).await;
        let got = reassign_codes(&r);
        assert_eq!(got[0].2, bad, "{got:?}");
        assert_eq!(
            got[1].2,
            code(ErrorCode::NoReassignmentInProgress),
            "{got:?}"
        );

        // Onto the replicas it has: accepted, and nothing is left in progress.
        let r = reassign(&mut client, &[("t", 0, Some(&[1]))]).await;
        assert_eq!(reassign_codes(&r), [("t".into(), 0, 0, String::new())]);
        let r = list(&mut client, Some(&[("t", &[0, 1]), ("nope", &[0])])).await;
        assert_eq!(r.error_code, 0);
        assert!(r.topics.is_empty(), "{r:?}");
        let p = &client.metadata(Some(&["t"])).await.topics[0].partitions[0];
        assert_eq!((p.leader_id, p.replica_nodes.as_slice()), (1, &[1][..]));
    })
    .await
    .expect("test timed out");
}

/// AlterPartitionReassignments v1: t-0 to [1, 2], t-1 to [1].
async fn reassign_v1(client: &mut Client, allow: bool) -> AlterPartitionReassignmentsResponse {
    let partition = |partition_index, replicas: &[i32]| ReassignablePartition {
        partition_index,
        replicas: Some(replicas.to_vec()),
    };
    let request = AlterPartitionReassignmentsRequest {
        timeout_ms: 10_000,
        allow_replication_factor_change: allow,
        topics: vec![ReassignableTopic {
            name: "t".into(),
            partitions: vec![partition(0, &[1, 2]), partition(1, &[1])],
        }],
    };
    let Response::AlterPartitionReassignments(r) = client
        .call(1, Request::AlterPartitionReassignments(request))
        .await
    else {
        panic!("not an AlterPartitionReassignments response")
    };
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reassignments_v1_refuse_replication_factor_changes_when_asked() {
    timeout(TEST_TIMEOUT, async {
        let broker = TestBroker::start(|_| {}).await;
        let mut client = broker.client().await;
        assert_eq!(client.create_topic("t", 2, &[]).await.error_code, 0);
        // Refused: the factor would go from 1 to 2 (checked before the brokers).
        let r = reassign_v1(&mut client, false).await;
        assert!(!r.allow_replication_factor_change);
        let got = reassign_codes(&r);
        assert_eq!(
            (got[0].1, got[0].2),
            (0, code(ErrorCode::InvalidReplicationFactor)),
            "{got:?}"
        );
        assert!(got[0].3.contains("from 1 to 2"), "{got:?}");
        assert_eq!((got[1].1, got[1].2), (1, 0), "{got:?}");

        // Allowed: the controller's own check finds broker 2 unknown.
        let r = reassign_v1(&mut client, true).await;
        assert!(r.allow_replication_factor_change);
        let got = reassign_codes(&r);
        assert_eq!(
            (got[0].1, got[0].2),
            (0, code(ErrorCode::InvalidReplicaAssignment)),
            "{got:?}"
        );
    })
    .await
    .expect("test timed out");
}
