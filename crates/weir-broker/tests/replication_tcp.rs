//! The real [`TcpLeaderClient`] against a broker over TCP: a follower's Fetch,
//! OffsetForLeaderEpoch and ListOffsets, with the leader found in the metadata.

mod common;
mod replication_support;

use std::time::Duration;

use common::client::{batch, TestBroker};
use common::TEST_TIMEOUT;
use replication_support::{register_broker, FakeController};
use tokio::time::timeout;
use weir_broker::replica::{
    EpochQuery, FetchPartition, LeaderClient, ReplicaFetch, TcpLeaderClient,
};
use weir_protocol::records::Compression;
use weir_types::{ErrorCode, LeaderEpoch, NodeId, Offset};

fn at(offset: i64, epoch: i32) -> FetchPartition {
    FetchPartition {
        topic: "t".into(),
        partition: 0,
        fetch_offset: Offset(offset),
        partition_max_bytes: 1 << 20,
        current_leader_epoch: LeaderEpoch(epoch),
        same_rack_replicas: Vec::new(),
    }
}

fn fetch_request(replica: i32, p: FetchPartition) -> ReplicaFetch {
    ReplicaFetch {
        replica_id: NodeId(replica),
        max_wait: Duration::from_millis(100),
        min_bytes: 1,
        max_bytes: 10 << 20,
        partitions: vec![p],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_leader_client_speaks_to_a_broker() {
    let broker = TestBroker::start(|_| {}).await;
    let mut client = broker.client().await;
    let created = client.create_topic("t", 1, &[]).await;
    assert_eq!(created.error_code, 0);
    let records = batch(&["a", "b", "c"], 1_700_000_000_000, Compression::None);
    let produced = client
        .produce("t", 0, records.clone(), -1)
        .await
        .expect("acks=all");
    assert_eq!(produced.error_code, 0);

    // The leader's address comes from its registration in the image.
    let controller = FakeController::new();
    controller.replay(&[register_broker(1, broker.addr.port())]);
    let leaders = TcpLeaderClient::new(controller.subscribe(), "PLAINTEXT", Duration::from_secs(5));
    let leader = NodeId(1);

    // Fetch, as a consumer would see it: the produced batch, byte for byte, with
    // the high watermark.
    let got = timeout(
        TEST_TIMEOUT,
        leaders.fetch(leader, fetch_request(-1, at(0, 0))),
    )
    .await
    .unwrap()
    .expect("fetch");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].error, ErrorCode::None);
    assert_eq!(got[0].high_watermark, Offset(3));
    assert_eq!(got[0].log_start_offset, Offset(0));
    assert_eq!(got[0].records.len(), records.len());
    // Verbatim but for baseOffset and partitionLeaderEpoch (bytes 0..8, 12..16).
    assert_eq!(got[0].records.slice(16..), records.slice(16..));
    // A replica id the leader's metadata does not list is refused per partition,
    // on the same connection.
    let got = leaders
        .fetch(leader, fetch_request(2, at(0, 0)))
        .await
        .expect("fetch");
    assert_eq!(got[0].error, ErrorCode::NotLeaderOrFollower);
    // A future leader epoch is not known to the leader.
    let got = leaders
        .fetch(leader, fetch_request(-1, at(0, 5)))
        .await
        .expect("fetch");
    assert_eq!(got[0].error, ErrorCode::UnknownLeaderEpoch);

    // OffsetForLeaderEpoch: epoch 0 ends at the log end.
    let query = EpochQuery {
        topic: "t".into(),
        partition: 0,
        current_leader_epoch: LeaderEpoch(0),
        leader_epoch: LeaderEpoch(0),
    };
    let ends = leaders
        .offset_for_leader_epoch(leader, NodeId(2), vec![query.clone()])
        .await
        .expect("offset for leader epoch");
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].error, ErrorCode::None);
    assert_eq!(
        (ends[0].leader_epoch, ends[0].end_offset),
        (LeaderEpoch(0), Offset(3))
    );
    // ListOffsets earliest: the log start.
    let start = leaders
        .log_start_offset(leader, NodeId(2), query.clone())
        .await
        .expect("log start");
    assert_eq!(start, Offset(0));

    // A leader missing from the metadata is unreachable (the fetcher backs off).
    let err = leaders
        .fetch(NodeId(9), fetch_request(-1, at(0, 0)))
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::NetworkException);
    // A stopped leader fails the call instead of hanging.
    broker.stop().await;
    let err = timeout(
        TEST_TIMEOUT,
        leaders.offset_for_leader_epoch(leader, NodeId(2), vec![query]),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::NetworkException);
}
