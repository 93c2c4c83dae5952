//! Replication between replica managers in one process: followers fetch from the
//! leader through the in-memory [`weir_broker::replica::InMemoryLeaders`], ISR
//! changes go to a fake controller, images come from metadata records.

mod replication_support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use replication_support::*;
use weir_broker::replica::{Acks, FetchParams, FetchPartition, IsolationLevel, Role};
use weir_protocol::records::BatchBuilder;
use weir_types::{ErrorCode, LeaderEpoch, NodeId, Offset};

fn batch(n: usize, tag: u8) -> Bytes {
    let mut b = BatchBuilder::new();
    for i in 0..n {
        b.append(
            1_700_000_000_000 + i as i64,
            Some(b"k"),
            Some(&[tag; 64]),
            &[],
        )
        .expect("record");
    }
    b.build().expect("batch")
}

fn nodes(ids: &[i32]) -> Vec<NodeId> {
    ids.iter().map(|i| NodeId(*i)).collect()
}

/// A three-node cluster serving topic `t` (one partition, replicas 1,2,3, led by
/// 1), with `extra` records (configs) in the same change.
async fn three_nodes(
    lag: Duration,
    isr: &[i32],
    extra: Vec<weir_metadata::MetadataRecord>,
) -> Cluster {
    let c = Cluster::start(3, lag).await;
    let mut records = vec![topic_record("t"), partition_record(&[1, 2, 3], isr, 1)];
    records.extend(extra);
    c.publish(&records).await;
    c
}

fn consumer_at(offset: i64, epoch: i32) -> (FetchParams, FetchPartition) {
    (
        FetchParams {
            max_wait: Duration::ZERO,
            min_bytes: 0,
            max_bytes: 1 << 20,
            isolation_level: IsolationLevel::ReadUncommitted,
            replica_id: -1,
            follower_reads: false,
        },
        FetchPartition {
            topic: "t".into(),
            partition: 0,
            fetch_offset: Offset(offset),
            partition_max_bytes: 1 << 20,
            current_leader_epoch: LeaderEpoch(epoch),
            same_rack_replicas: Vec::new(),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_reaches_every_follower_byte_identical() {
    let c = three_nodes(Duration::from_secs(30), &[1, 2, 3], vec![]).await;
    assert_eq!(c.status(1).role, Role::Leader);
    assert_eq!(c.status(2).role, Role::Follower);
    let leader = &c.node(1).replicas;
    for i in 0..5u8 {
        let r = in_time(leader.append("t", 0, batch(3, i), Acks::All, LONG))
            .await
            .expect("acks=all");
        assert_eq!(r.base_offset, Offset(i64::from(i) * 3));
        // Acknowledged: every ISR member has it. The high watermark is read first,
        // and log ends only grow here, so this holds at one instant.
        let hw = c.status(1).high_watermark;
        assert!(hw >= r.last_offset.plus(1), "hw {hw} covers the ack");
        for id in 1..=3 {
            let leo = c.status(id).log_end_offset;
            assert!(hw <= leo, "hw {hw} exceeds node {id}'s log end {leo}");
        }
    }
    until("followers hold everything", || {
        (2..=3).all(|id| {
            c.status(id).log_end_offset == Offset(15) && c.status(id).high_watermark == Offset(15)
        })
    })
    .await;
    let leader_bytes = c.segment_bytes(1);
    assert!(!leader_bytes.is_empty());
    assert_eq!(
        c.segment_bytes(2),
        leader_bytes,
        "follower 2 byte-identical"
    );
    assert_eq!(
        c.segment_bytes(3),
        leader_bytes,
        "follower 3 byte-identical"
    );
    // Followers refuse produce and consumer fetches.
    let err = c
        .node(2)
        .replicas
        .append("t", 0, batch(1, 9), Acks::Leader, LONG)
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::NotLeaderOrFollower);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_never_see_past_the_high_watermark() {
    // Node 3 is down from the start and stays in the ISR (long lag time): acks=1
    // data is on the leader but not committed, so consumers see none of it.
    let c = three_nodes(Duration::from_secs(60), &[1, 2, 3], vec![]).await;
    c.stop(3).await;
    let leader = &c.node(1).replicas;
    leader
        .append("t", 0, batch(2, 1), Acks::Leader, LONG)
        .await
        .expect("acks=1 answers after the local write");
    until("follower 2 has it", || {
        c.status(2).log_end_offset == Offset(2)
    })
    .await;
    assert_eq!(c.status(1).high_watermark, Offset(0));
    let (params, p) = consumer_at(0, -1);
    let got = leader.fetch(params, vec![p]).await.remove(0);
    assert_eq!(got.error, ErrorCode::None);
    assert!(got.records.is_empty(), "nothing above the high watermark");
    assert_eq!(got.high_watermark, Offset(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_follower_holds_acks_all_until_it_leaves_the_isr() {
    let lag = Duration::from_secs(3);
    let c = three_nodes(lag, &[1, 2, 3], vec![]).await;
    let leader = c.node(1).replicas.clone();
    in_time(leader.append("t", 0, batch(1, 0), Acks::All, LONG))
        .await
        .expect("all three up");
    c.stop(3).await;
    let waiting = tokio::spawn({
        let leader = leader.clone();
        async move { leader.append("t", 0, batch(2, 1), Acks::All, LONG).await }
    });
    until("follower 2 caught up", || {
        c.status(2).log_end_offset == Offset(3)
    })
    .await;
    // Node 3 is still in the ISR (its lag time has not passed): no ack, and the
    // high watermark stays at what node 3 has.
    assert!(
        !waiting.is_finished(),
        "acks=all waits for every ISR member"
    );
    assert_eq!(c.status(1).isr, nodes(&[1, 2, 3]));
    assert_eq!(c.status(1).high_watermark, Offset(1));
    let r = in_time(waiting)
        .await
        .unwrap()
        .expect("acked once node 3 left the ISR");
    assert_eq!(r.base_offset, Offset(1));
    assert_eq!(c.status(1).isr, nodes(&[1, 2]));
    let alters = c.controller.alters.lock().unwrap().clone();
    assert!(
        alters.iter().any(|a| a.new_isr == nodes(&[1, 2])),
        "the shrink went through the controller: {alters:?}"
    );
    until("the image confirms the ISR", || {
        c.controller.image().partition("t", 0).unwrap().isr == nodes(&[1, 2])
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_insync_replicas_is_enforced_before_and_after_the_append() {
    let lag = Duration::from_secs(2);
    let c = three_nodes(
        lag,
        &[1, 2, 3],
        vec![topic_config("t", "min.insync.replicas", "3")],
    )
    .await;
    let leader = c.node(1).replicas.clone();
    in_time(leader.append("t", 0, batch(1, 0), Acks::All, LONG))
        .await
        .expect("three in sync");
    c.stop(3).await;
    // Appended while the ISR still had three members; the shrink lets the high
    // watermark pass it, but below min.insync.replicas.
    let err = in_time(leader.append("t", 0, batch(1, 1), Acks::All, LONG))
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::NotEnoughReplicasAfterAppend);
    assert_eq!(c.status(1).isr, nodes(&[1, 2]));
    // Now refused before anything is written.
    let end = c.status(1).log_end_offset;
    let err = leader
        .append("t", 0, batch(1, 2), Acks::All, LONG)
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::NotEnoughReplicas);
    assert_eq!(c.status(1).log_end_offset, end, "nothing appended");
    // acks=1 does not care.
    leader
        .append("t", 0, batch(1, 3), Acks::Leader, LONG)
        .await
        .expect("acks=1");
    // But below min.insync.replicas nothing is committed (KIP-966): the high
    // watermark stays where all three had it, though node 2 has everything.
    let end = c.status(1).log_end_offset;
    until("node 2 caught up", || c.status(2).log_end_offset == end).await;
    assert_eq!(c.status(1).high_watermark, Offset(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_that_catch_up_join_the_isr_through_the_controller() {
    let c = three_nodes(Duration::from_secs(30), &[1], vec![]).await;
    let leader = &c.node(1).replicas;
    for i in 0..3 {
        leader
            .append("t", 0, batch(2, i), Acks::All, LONG)
            .await
            .expect("ISR is the leader alone");
    }
    until("both followers joined the ISR", || {
        let mut isr = c.status(1).isr;
        isr.sort();
        isr == nodes(&[1, 2, 3])
    })
    .await;
    let alters = c.controller.alters.lock().unwrap().clone();
    assert!(alters.iter().all(|a| a.leader_epoch == LeaderEpoch(0)));
    assert!(alters.iter().any(|a| a.new_isr.contains(&NodeId(2))));
    assert!(alters.iter().any(|a| a.new_isr.contains(&NodeId(3))));
    // Now acks=all needs all three.
    in_time(leader.append("t", 0, batch(1, 9), Acks::All, LONG))
        .await
        .expect("replicated to the grown ISR");
    let hw = c.status(1).high_watermark;
    for id in 1..=3 {
        assert!(hw <= c.status(id).log_end_offset);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_wins_and_the_old_leader_truncates_its_divergent_tail() {
    let c = three_nodes(Duration::from_secs(60), &[1, 2, 3], vec![]).await;
    let old = c.node(1).replicas.clone();
    in_time(old.append("t", 0, batch(2, 0), Acks::All, LONG))
        .await
        .expect("replicated");
    // Cut node 1 off from its followers: what it writes now stays on it alone.
    c.leaders.remove(NodeId(1));
    old.append("t", 0, batch(3, 1), Acks::Leader, LONG)
        .await
        .expect("acks=1 on the old leader");
    let stuck = tokio::spawn({
        let old = old.clone();
        async move { old.append("t", 0, batch(1, 2), Acks::All, LONG).await }
    });
    until("the unreplicated tail is written", || {
        c.status(1).log_end_offset == Offset(6)
    })
    .await;
    assert_eq!(c.status(2).log_end_offset, Offset(2));

    // The controller elects node 2 (epoch 1). Node 1 becomes a follower: its
    // pending acks=all fails at once and it takes no more produce.
    c.leaders.insert(NodeId(1), old.clone());
    c.publish(&[leader_change(2, &[2, 3])]).await;
    let err = in_time(stuck).await.unwrap().unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::NotLeaderOrFollower);
    let err = old
        .append("t", 0, batch(1, 3), Acks::Leader, LONG)
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::NotLeaderOrFollower);
    assert_eq!(c.status(2).leader_epoch, LeaderEpoch(1));

    let new = c.node(2).replicas.clone();
    let r = in_time(new.append("t", 0, batch(2, 4), Acks::All, LONG))
        .await
        .expect("the new leader's ISR is 2 and 3");
    assert_eq!(
        r.base_offset,
        Offset(2),
        "the new leader continues its own log"
    );
    until("the old leader truncated and caught up", || {
        c.status(1).log_end_offset == Offset(4) && c.status(3).log_end_offset == Offset(4)
    })
    .await;
    let bytes = c.segment_bytes(2);
    assert_eq!(
        c.segment_bytes(1),
        bytes,
        "old leader now holds the new leader's log"
    );
    assert_eq!(c.segment_bytes(3), bytes);
    // Stale and future leader epochs are fenced.
    let (params, mut p) = consumer_at(0, 0);
    let got = new.fetch(params, vec![p.clone()]).await.remove(0);
    assert_eq!(got.error, ErrorCode::FencedLeaderEpoch);
    p.current_leader_epoch = LeaderEpoch(7);
    let got = new.fetch(params, vec![p.clone()]).await.remove(0);
    assert_eq!(got.error, ErrorCode::UnknownLeaderEpoch);
    p.current_leader_epoch = LeaderEpoch(1);
    let got = old.fetch(params, vec![p]).await.remove(0);
    assert_eq!(got.error, ErrorCode::NotLeaderOrFollower);
    // The old leader rejoins the ISR once caught up.
    until("node 1 back in the ISR", || {
        c.status(2).isr.contains(&NodeId(1))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_with_an_epoch_the_leader_never_had_truncates_to_their_common_epoch() {
    let c = three_nodes(Duration::from_secs(60), &[1, 2, 3], vec![]).await;
    in_time(
        c.node(1)
            .replicas
            .append("t", 0, batch(2, 0), Acks::All, LONG),
    )
    .await
    .expect("replicated");
    until("all hold epoch 0's data", || {
        (1..=3).all(|id| c.status(id).log_end_offset == Offset(2))
    })
    .await;
    // Epoch 1: node 2 leads, cut off, and writes a tail nobody else gets.
    c.leaders.remove(NodeId(2));
    c.publish(&[leader_change(2, &[2, 3])]).await;
    let two = c.node(2).replicas.clone();
    two.append("t", 0, batch(3, 1), Acks::Leader, LONG)
        .await
        .expect("acks=1 in epoch 1");
    assert_eq!(c.status(2).log_end_offset, Offset(5));
    // Epoch 2: node 3 leads with node 1; node 2 comes back as a follower. Its
    // latest epoch (1) is unknown to the leader, which answers epoch 0 ending at 2.
    c.publish(&[leader_change(3, &[3, 1])]).await;
    c.leaders.insert(NodeId(2), two.clone());
    let r = in_time(
        c.node(3)
            .replicas
            .append("t", 0, batch(2, 2), Acks::All, LONG),
    )
    .await
    .expect("acks=all in epoch 2");
    assert_eq!(r.base_offset, Offset(2));
    until(
        "node 2 replaced its epoch 1 tail with epoch 2's data",
        || (1..=3).all(|id| c.status(id).log_end_offset == Offset(4)),
    )
    .await;
    let bytes = c.segment_bytes(3);
    assert_eq!(c.segment_bytes(1), bytes);
    assert_eq!(c.segment_bytes(2), bytes);
    assert_eq!(c.status(2).leader_epoch, LeaderEpoch(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_below_the_leaders_log_start_restarts_there() {
    // Node 3 is a replica outside the ISR, cut off from the start.
    let c = Cluster::start(3, Duration::from_secs(60)).await;
    c.node(3).gate.blocked.store(true, Ordering::SeqCst);
    c.publish(&[topic_record("t"), partition_record(&[1, 2, 3], &[1, 2], 1)])
        .await;
    let leader = c.node(1).replicas.clone();
    for i in 0..3 {
        in_time(leader.append("t", 0, batch(2, i), Acks::All, LONG))
            .await
            .expect("ISR 1 and 2");
    }
    let start = leader
        .delete_records("t", 0, 4)
        .await
        .expect("delete records");
    assert_eq!(start, Offset(4));
    // Node 2 follows the leader's log start.
    until("node 2 follows the log start", || {
        c.status(2).log_start_offset == Offset(4)
    })
    .await;
    // Node 3 comes back with an empty log at 0, below the leader's start: it
    // restarts its log at 4 and fetches from there, then joins the ISR.
    assert_eq!(c.status(3).log_end_offset, Offset(0));
    c.node(3).gate.blocked.store(false, Ordering::SeqCst);
    until("node 3 caught up from the leader's log start", || {
        let s = c.status(3);
        s.log_start_offset == Offset(4) && s.log_end_offset == Offset(6)
    })
    .await;
    until("node 3 in the ISR", || c.status(1).isr.contains(&NodeId(3))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_leader_gives_up_its_acks_all_waiters_and_refuses_writes() {
    // A long lag time: without fencing the waiter below would wait for it.
    let c = three_nodes(Duration::from_secs(60), &[1, 2, 3], vec![]).await;
    let leader = c.node(1).replicas.clone();
    in_time(leader.append("t", 0, batch(1, 0), Acks::All, LONG))
        .await
        .expect("all three up");
    c.stop(3).await;
    let waiting = tokio::spawn({
        let leader = leader.clone();
        async move { leader.append("t", 0, batch(1, 1), Acks::All, LONG).await }
    });
    until("the write reached the leader's log", || {
        c.status(1).log_end_offset == Offset(2)
    })
    .await;
    assert!(!waiting.is_finished(), "node 3 holds the acknowledgement");
    // Cut off from the controller: another leader may already take writes.
    leader.set_fenced(true);
    let err = in_time(waiting)
        .await
        .unwrap()
        .expect_err("a fenced leader does not acknowledge");
    assert_eq!(err.error_code(), ErrorCode::NotLeaderOrFollower);
    let refused = leader
        .append("t", 0, batch(1, 2), Acks::Leader, LONG)
        .await
        .expect_err("a fenced leader takes no writes");
    assert_eq!(refused.error_code(), ErrorCode::NotLeaderOrFollower);
    leader.set_fenced(false);
    in_time(leader.append("t", 0, batch(1, 3), Acks::Leader, LONG))
        .await
        .expect("unfenced again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_behind_its_epoch_start_answers_offset_not_available() {
    let c = three_nodes(Duration::from_secs(60), &[1, 2, 3], vec![]).await;
    let old = c.node(1).replicas.clone();
    in_time(old.append("t", 0, batch(1, 0), Acks::All, LONG))
        .await
        .expect("replicated");
    // Node 3 stops at offset 1, so the high watermark stays there while node 2
    // copies two more records.
    c.stop(3).await;
    old.append("t", 0, batch(2, 1), Acks::Leader, LONG)
        .await
        .expect("acks=1");
    until("node 2 has the tail", || {
        c.status(2).log_end_offset == Offset(3)
    })
    .await;
    assert_eq!(c.status(2).high_watermark, Offset(1));

    // Node 2 leads from offset 3 on, but its high watermark is 1 until node 3
    // (still in the ISR) catches up: node 1 may already have told a consumer 3.
    c.publish(&[leader_change(2, &[2, 3])]).await;
    let new = c.node(2).replicas.clone();
    let list = |timestamp: i64, replica_id: i32| {
        new.list_offsets(
            "t",
            0,
            timestamp,
            IsolationLevel::ReadUncommitted,
            LeaderEpoch(-1),
            replica_id,
        )
    };
    let code = |r: Result<_, weir_broker::replica::ReplicaError>| r.err().map(|e| e.error_code());
    assert_eq!(code(list(-1, -1)), Some(ErrorCode::OffsetNotAvailable));
    // A time search that lands past the visible end could also go backwards.
    assert_eq!(
        code(list(1_700_000_000_001, -1)),
        Some(ErrorCode::OffsetNotAvailable)
    );
    // Below it, earliest, and a replica's view are all safe.
    assert_eq!(
        list(1_700_000_000_000, -1).expect("found").offset,
        Offset(0)
    );
    assert_eq!(list(-2, -1).expect("earliest").offset, Offset(0));
    assert_eq!(list(-1, 1).expect("log end").offset, Offset(3));

    // With node 3 out of the ISR the high watermark reaches the epoch start
    // (node 1 keeps fetching), and latest is answered again.
    c.publish(&[leader_change(2, &[2])]).await;
    until("the high watermark reached the epoch start", || {
        c.status(2).high_watermark == Offset(3)
    })
    .await;
    assert_eq!(list(-1, -1).expect("latest").offset, Offset(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_isr_change_is_proposed_again_only_after_a_backoff() {
    let c = three_nodes(Duration::from_secs(60), &[1, 2], vec![]).await;
    *c.controller.refuse.lock().unwrap() = Some(ErrorCode::IneligibleReplica);
    until("the first proposal to add node 3", || {
        !c.controller.alters.lock().unwrap().is_empty()
    })
    .await;
    // Node 3 is caught up and keeps fetching: without a backoff each fetch
    // would propose it again.
    let fetches = c.node(3).gate.fetches.load(Ordering::SeqCst);
    until("twenty more fetches from node 3", || {
        c.node(3).gate.fetches.load(Ordering::SeqCst) >= fetches + 20
    })
    .await;
    let proposals = c.controller.alters.lock().unwrap().len();
    assert!(
        proposals <= 8,
        "{proposals} proposals during twenty fetches: no backoff"
    );
    // Once the controller accepts, a later proposal adds node 3.
    *c.controller.refuse.lock().unwrap() = None;
    until("node 3 in the ISR", || c.status(1).isr == nodes(&[1, 2, 3])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_read_from_followers_and_the_leader_points_them_to_their_rack() {
    let c = three_nodes(Duration::from_secs(60), &[1, 2, 3], vec![]).await;
    let leader = c.node(1).replicas.clone();
    in_time(leader.append("t", 0, batch(3, 0), Acks::All, LONG))
        .await
        .expect("replicated");
    until("the followers learnt the high watermark", || {
        c.status(2).high_watermark == Offset(3) && c.status(3).high_watermark == Offset(3)
    })
    .await;
    let (mut params, mut p) = consumer_at(0, 0);
    let follower = c.node(2).replicas.clone();
    // Before v11 (no client metadata) a follower refuses consumers, as in Kafka.
    let got = follower.fetch(params, vec![p.clone()]).await.remove(0);
    assert_eq!(got.error, ErrorCode::NotLeaderOrFollower);
    // From v11 on it serves them up to its high watermark.
    params.follower_reads = true;
    let got = follower.fetch(params, vec![p.clone()]).await.remove(0);
    assert_eq!(got.error, ErrorCode::None);
    assert_eq!(got.high_watermark, Offset(3));
    assert!(!got.records.is_empty(), "{got:?}");

    // The leader sends a consumer of follower 2's rack there, with no records
    // and without waiting for min_bytes.
    p.same_rack_replicas = vec![NodeId(2)];
    let waiting = FetchParams {
        max_wait: Duration::from_secs(30),
        min_bytes: 1 << 20,
        ..params
    };
    let got = tokio::time::timeout(
        Duration::from_secs(10),
        leader.fetch(waiting, vec![p.clone()]),
    )
    .await
    .expect("a redirect is answered at once")
    .remove(0);
    assert_eq!(got.preferred_read_replica, Some(NodeId(2)));
    assert!(got.records.is_empty());
    assert_eq!(got.high_watermark, Offset(3));
    // Of two candidates as far along, the lower id.
    p.same_rack_replicas = vec![NodeId(3), NodeId(2)];
    let got = leader.fetch(params, vec![p.clone()]).await.remove(0);
    assert_eq!(got.preferred_read_replica, Some(NodeId(2)));
    // Never one that lacks the fetch offset.
    c.stop(3).await;
    in_time(leader.append("t", 0, batch(1, 1), Acks::Leader, LONG))
        .await
        .expect("acks=1");
    until("node 2 has offset 3", || {
        c.status(2).log_end_offset == Offset(4)
    })
    .await;
    p.same_rack_replicas = vec![NodeId(3)];
    p.fetch_offset = Offset(4);
    let got = leader.fetch(params, vec![p.clone()]).await.remove(0);
    assert_eq!(
        got.preferred_read_replica, None,
        "node 3 never got offset 4: the leader serves the consumer itself"
    );
    // A follower outside the ISR is never chosen (cut off, so it cannot rejoin).
    c.node(2).gate.blocked.store(true, Ordering::SeqCst);
    c.publish(&[leader_change(1, &[1, 3])]).await;
    p.current_leader_epoch = LeaderEpoch(-1);
    p.same_rack_replicas = vec![NodeId(2)];
    p.fetch_offset = Offset(0);
    let got = leader.fetch(params, vec![p]).await.remove(0);
    assert_eq!(got.preferred_read_replica, None);
    assert_eq!(got.error, ErrorCode::None);
}
