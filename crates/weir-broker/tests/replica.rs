//! The replica layer over real data directories (no sockets): produce, fetch,
//! group commit, idempotence, errors, ListOffsets and DeleteRecords.

mod replica_support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use replica_support::*;
use tokio::sync::Semaphore;
use tokio::time::timeout;
use weir_broker::replica::{Acks, IsolationLevel, ListedOffset, PartitionAssignment};
use weir_protocol::records::{BatchBuilder, Batches};
use weir_types::{ErrorCode, LeaderEpoch, NodeId, Offset};

#[tokio::test]
async fn produce_then_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path(), vec![topic("t", 2)]).await;
    let r = &b.replicas;
    let first = r
        .append("t", 0, batch(3, now_ms(), 10), Acks::All, LONG)
        .await
        .unwrap();
    assert_eq!(
        (first.base_offset, first.last_offset),
        (Offset(0), Offset(2))
    );
    assert_eq!(first.log_append_time_ms, -1);
    let second = r
        .append("t", 0, batch(2, now_ms(), 10), Acks::Leader, LONG)
        .await
        .unwrap();
    assert_eq!(second.base_offset, Offset(3));
    // acks=1 is answered before the fsync; a long poll sees it once flushed.
    let got = fetch_one(&b, consumer(LONG, 1), at("t", 0, 3)).await;
    assert_eq!(got.error, ErrorCode::None);
    assert_eq!(batches(&got.records), vec![(3, 2)]);
    let got = fetch_one(&b, consumer(Duration::ZERO, 1), at("t", 0, 0)).await;
    assert_eq!(batches(&got.records), vec![(0, 3), (3, 2)]);
    assert_eq!(got.high_watermark, Offset(5));
    assert_eq!(got.last_stable_offset, Offset(5));
    assert_eq!(got.log_start_offset, Offset(0));
    // The other partition is independent and empty.
    let empty = fetch_one(&b, consumer(Duration::ZERO, 1), at("t", 1, 0)).await;
    assert_eq!((empty.error, empty.records.len()), (ErrorCode::None, 0));
    let unknown = fetch_one(&b, consumer(Duration::ZERO, 1), at("nope", 0, 0)).await;
    assert_eq!(unknown.error, ErrorCode::UnknownTopicOrPartition);
    let err = r
        .append("nope", 0, batch(1, now_ms(), 1), Acks::Leader, LONG)
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::UnknownTopicOrPartition);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_waits_for_fsync_and_one_fsync_serves_many() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let g = Arc::clone(&gate);
    let b = open_with(dir.path(), move |c| c.flush_gate = Some(g)).await;
    b.replicas.apply(vec![topic("t", 1)]).await.unwrap();
    const N: usize = 20;
    let mut waiting = Vec::new();
    for _ in 0..N {
        let r = b.replicas.clone();
        waiting.push(tokio::spawn(async move {
            r.append("t", 0, batch(1, now_ms(), 100), Acks::All, LONG)
                .await
        }));
    }
    until("all appends written", || {
        status(&b, "t", 0).log_end_offset == Offset(N as i64)
    })
    .await;
    // Written, not fsynced: nobody is acknowledged, consumers see nothing.
    assert!(waiting.iter().all(|h| !h.is_finished()));
    let s = status(&b, "t", 0);
    assert_eq!(
        (s.flushed_offset, s.high_watermark, s.fsyncs),
        (Offset(0), Offset(0), 0)
    );
    let nothing = fetch_one(&b, consumer(Duration::ZERO, 1), at("t", 0, 0)).await;
    assert!(nothing.records.is_empty());
    let latest = b
        .replicas
        .list_offsets(
            "t",
            0,
            -1,
            IsolationLevel::ReadUncommitted,
            LeaderEpoch(-1),
            -1,
        )
        .unwrap();
    assert_eq!(latest.offset, Offset(0), "latest is the high watermark");

    // One fsync releases them all.
    gate.add_permits(1);
    let mut offsets = Vec::new();
    for h in waiting {
        let r = timeout(STEP, h).await.expect("acked").unwrap().unwrap();
        offsets.push(r.base_offset.get());
    }
    offsets.sort();
    assert_eq!(offsets, (0..N as i64).collect::<Vec<_>>());
    let s = status(&b, "t", 0);
    assert_eq!(
        s.fsyncs, 1,
        "group commit: one fsync for {N} acks=all appends"
    );
    assert_eq!(
        (s.flushed_offset, s.high_watermark),
        (Offset(20), Offset(20))
    );
    gate.close();
    b.stop().await;
}

#[tokio::test]
async fn acks_all_times_out_when_not_fsynced_but_acks_1_does_not_wait() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let g = Arc::clone(&gate);
    let b = open_with(dir.path(), move |c| c.flush_gate = Some(g)).await;
    b.replicas.apply(vec![topic("t", 1)]).await.unwrap();
    let r = &b.replicas;
    let err = r
        .append(
            "t",
            0,
            batch(1, now_ms(), 1),
            Acks::All,
            Duration::from_millis(20),
        )
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::RequestTimedOut);
    // acks=0 and acks=1 are answered after the write.
    r.append("t", 0, batch(1, now_ms(), 1), Acks::Leader, LONG)
        .await
        .unwrap();
    r.append("t", 0, batch(1, now_ms(), 1), Acks::None, LONG)
        .await
        .unwrap();
    assert_eq!(status(&b, "t", 0).log_end_offset, Offset(3));
    gate.add_permits(1);
    until("the flush", || {
        status(&b, "t", 0).high_watermark == Offset(3)
    })
    .await;
    gate.close();
    b.stop().await;
}

#[tokio::test]
async fn page_cache_topics_ack_after_the_write_and_expose_the_log_end() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let g = Arc::clone(&gate);
    let b = open_with(dir.path(), move |c| c.flush_gate = Some(g)).await;
    let t = topic("t", 1).with_config("flush.messages", "1000");
    b.replicas.apply(vec![t]).await.unwrap();
    let r = b
        .replicas
        .append("t", 0, batch(2, now_ms(), 1), Acks::All, LONG)
        .await
        .expect("acks=all does not wait for fsync when the topic opted out");
    assert_eq!(r.base_offset, Offset(0));
    let s = status(&b, "t", 0);
    assert_eq!((s.high_watermark, s.fsyncs), (Offset(2), 0));
    gate.close();
    b.stop().await;
}

#[tokio::test]
async fn idempotent_producer_duplicates_gaps_and_fencing() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path(), vec![topic("t", 1)]).await;
    let r = &b.replicas;
    let first = r
        .append("t", 0, producer_batch(7, 0, 0, 3), Acks::All, LONG)
        .await
        .unwrap();
    assert_eq!((first.base_offset, first.duplicate), (Offset(0), false));
    // The retry gets the original offsets and writes nothing.
    let retry = r
        .append("t", 0, producer_batch(7, 0, 0, 3), Acks::All, LONG)
        .await
        .unwrap();
    assert_eq!(
        (retry.base_offset, retry.last_offset),
        (Offset(0), Offset(2))
    );
    assert!(retry.duplicate);
    assert_eq!(status(&b, "t", 0).log_end_offset, Offset(3));
    // A gap.
    let gap = r
        .append("t", 0, producer_batch(7, 0, 5, 1), Acks::All, LONG)
        .await
        .unwrap_err();
    assert_eq!(gap.error_code(), ErrorCode::OutOfOrderSequenceNumber);
    // A new epoch fences the old one.
    r.append("t", 0, producer_batch(7, 1, 0, 1), Acks::All, LONG)
        .await
        .unwrap();
    let fenced = r
        .append("t", 0, producer_batch(7, 0, 3, 1), Acks::All, LONG)
        .await
        .unwrap_err();
    assert_eq!(fenced.error_code(), ErrorCode::InvalidProducerEpoch);
    assert_eq!(status(&b, "t", 0).log_end_offset, Offset(4));
    b.stop().await;
}

#[tokio::test]
async fn bad_batches_are_rejected_with_kafkas_codes() {
    let dir = tempfile::tempdir().unwrap();
    let t = topic("t", 1).with_config("max.message.bytes", "200");
    let b = start(dir.path(), vec![t]).await;
    let r = &b.replicas;
    let mut corrupt = batch(2, now_ms(), 10).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let e = r
        .append("t", 0, Bytes::from(corrupt), Acks::Leader, LONG)
        .await
        .unwrap_err();
    assert_eq!(e.error_code(), ErrorCode::CorruptMessage, "{e}");
    let e = r
        .append("t", 0, batch(1, now_ms(), 500), Acks::Leader, LONG)
        .await
        .unwrap_err();
    assert_eq!(e.error_code(), ErrorCode::MessageTooLarge, "{e}");
    let e = r
        .append("t", 0, Bytes::from_static(b"garbage"), Acks::Leader, LONG)
        .await
        .unwrap_err();
    assert_eq!(e.error_code(), ErrorCode::CorruptMessage, "{e}");
    assert_eq!(status(&b, "t", 0).log_end_offset, Offset(0));
    b.stop().await;
}

#[tokio::test]
async fn long_poll_waits_for_min_bytes_and_wakes_on_append() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path(), vec![topic("t", 1)]).await;
    let r = b.replicas.clone();
    let poll =
        tokio::spawn(async move { r.fetch(consumer(LONG, 1000), vec![at("t", 0, 0)]).await });
    // Current-thread runtime: one yield lets the fetch run until it parks.
    tokio::task::yield_now().await;
    assert!(!poll.is_finished());
    // Not enough bytes yet: the fetch keeps waiting.
    b.replicas
        .append("t", 0, batch(1, now_ms(), 10), Acks::All, LONG)
        .await
        .unwrap();
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(!poll.is_finished(), "woken, but below min_bytes");
    b.replicas
        .append("t", 0, batch(1, now_ms(), 2000), Acks::All, LONG)
        .await
        .unwrap();
    let got = timeout(STEP, poll).await.expect("woken").unwrap();
    assert_eq!(batches(&got[0].records), vec![(0, 1), (1, 1)]);
    b.stop().await;
}

#[tokio::test]
async fn kip74_returns_an_oversized_first_batch() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path(), vec![topic("t", 2)]).await;
    let r = &b.replicas;
    for p in 0..2 {
        r.append("t", p, batch(1, now_ms(), 5000), Acks::All, LONG)
            .await
            .unwrap();
    }
    let mut params = consumer(Duration::ZERO, 1);
    params.max_bytes = 100;
    let mut small = at("t", 0, 0);
    small.partition_max_bytes = 100;
    let mut second = at("t", 1, 0);
    second.partition_max_bytes = 100;
    let got = r.fetch(params, vec![small, second]).await;
    assert_eq!(batches(&got[0].records), vec![(0, 1)]);
    assert!(got[0].records.len() > 5000);
    // Only the first partition with data may exceed the limits.
    assert!(got[1].records.is_empty());
    b.stop().await;
}

#[tokio::test]
async fn offset_out_of_range_and_leader_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = topic("t", 1);
    t.partitions[0].leader_epoch = LeaderEpoch(5);
    let b = start(dir.path(), vec![t]).await;
    b.replicas
        .append("t", 0, batch(3, now_ms(), 1), Acks::All, LONG)
        .await
        .unwrap();
    let oor = fetch_one(&b, consumer(LONG, 1), at("t", 0, 100)).await;
    assert_eq!(oor.error, ErrorCode::OffsetOutOfRange);
    let mut fenced = at("t", 0, 0);
    fenced.current_leader_epoch = LeaderEpoch(4);
    assert_eq!(
        fetch_one(&b, consumer(LONG, 1), fenced).await.error,
        ErrorCode::FencedLeaderEpoch
    );
    let mut ahead = at("t", 0, 0);
    ahead.current_leader_epoch = LeaderEpoch(6);
    assert_eq!(
        fetch_one(&b, consumer(LONG, 1), ahead).await.error,
        ErrorCode::UnknownLeaderEpoch
    );
    let mut current = at("t", 0, 0);
    current.current_leader_epoch = LeaderEpoch(5);
    let got = fetch_one(&b, consumer(LONG, 1), current).await;
    assert_eq!(got.error, ErrorCode::None);
    // The batch carries the leader epoch it was written in.
    let view = Batches::new(got.records).next().unwrap().unwrap();
    assert_eq!(view.partition_leader_epoch(), 5);
    b.stop().await;
}

#[tokio::test]
async fn followers_and_leaderless_partitions_refuse_clients() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = topic("t", 2);
    t.partitions[0] = PartitionAssignment {
        replicas: vec![NodeId(2), NODE],
        isr: vec![NodeId(2), NODE],
        leader: Some(NodeId(2)),
        ..t.partitions[0].clone()
    };
    t.partitions[1].leader = None;
    let b = start(dir.path(), vec![t]).await;
    for p in 0..2 {
        let e = b
            .replicas
            .append("t", p, batch(1, now_ms(), 1), Acks::Leader, LONG)
            .await
            .unwrap_err();
        assert_eq!(e.error_code(), ErrorCode::NotLeaderOrFollower);
        let f = fetch_one(&b, consumer(LONG, 1), at("t", p, 0)).await;
        assert_eq!(f.error, ErrorCode::NotLeaderOrFollower);
    }
    b.stop().await;
}

#[tokio::test]
async fn min_insync_replicas_guards_acks_all() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(
        dir.path(),
        vec![topic("t", 1).with_config("min.insync.replicas", "2")],
    )
    .await;
    let e = b
        .replicas
        .append("t", 0, batch(1, now_ms(), 1), Acks::All, LONG)
        .await
        .unwrap_err();
    assert_eq!(e.error_code(), ErrorCode::NotEnoughReplicas);
    b.replicas
        .append("t", 0, batch(1, now_ms(), 1), Acks::Leader, LONG)
        .await
        .expect("acks=1 does not need the ISR");
    b.stop().await;
}

#[tokio::test]
async fn list_offsets_earliest_latest_and_by_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path(), vec![topic("t", 1)]).await;
    let r = &b.replicas;
    let mut builder = BatchBuilder::new();
    for ts in [1000, 2000, 3000] {
        builder.append(ts, None, Some(b"v"), &[]).unwrap();
    }
    r.append("t", 0, builder.build().unwrap(), Acks::All, LONG)
        .await
        .unwrap();
    r.append("t", 0, batch(1, 500, 1), Acks::All, LONG)
        .await
        .unwrap();
    let list = |ts: i64| {
        r.list_offsets(
            "t",
            0,
            ts,
            IsolationLevel::ReadCommitted,
            LeaderEpoch(-1),
            -1,
        )
        .unwrap()
    };
    assert_eq!(list(-2).offset, Offset(0));
    assert_eq!(list(-1).offset, Offset(4));
    assert_eq!(list(-1).leader_epoch, LeaderEpoch(0));
    // Record precision inside the first batch.
    assert_eq!((list(1500).offset, list(1500).timestamp), (Offset(1), 2000));
    assert_eq!((list(2000).offset, list(2000).timestamp), (Offset(1), 2000));
    assert_eq!((list(2500).offset, list(2500).timestamp), (Offset(2), 3000));
    assert_eq!(list(0).offset, Offset(0));
    assert_eq!(list(4000), ListedOffset::NOT_FOUND);
    assert_eq!((list(-3).offset, list(-3).timestamp), (Offset(2), 3000));
    let e = r
        .list_offsets(
            "t",
            0,
            -1,
            IsolationLevel::ReadUncommitted,
            LeaderEpoch(3),
            -1,
        )
        .unwrap_err();
    assert_eq!(e.error_code(), ErrorCode::UnknownLeaderEpoch);
    b.stop().await;
}

#[tokio::test]
async fn delete_records_moves_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path(), vec![topic("t", 1)]).await;
    let r = &b.replicas;
    for _ in 0..5 {
        r.append("t", 0, batch(1, now_ms(), 1), Acks::All, LONG)
            .await
            .unwrap();
    }
    assert_eq!(r.delete_records("t", 0, 3).await.unwrap(), Offset(3));
    let e = r.delete_records("t", 0, 6).await.unwrap_err();
    assert_eq!(e.error_code(), ErrorCode::OffsetOutOfRange);
    let gone = fetch_one(&b, consumer(LONG, 1), at("t", 0, 2)).await;
    assert_eq!(gone.error, ErrorCode::OffsetOutOfRange);
    let kept = fetch_one(&b, consumer(LONG, 1), at("t", 0, 3)).await;
    assert_eq!(kept.log_start_offset, Offset(3));
    let earliest = r
        .list_offsets(
            "t",
            0,
            -2,
            IsolationLevel::ReadUncommitted,
            LeaderEpoch(-1),
            -1,
        )
        .unwrap();
    assert_eq!(earliest.offset, Offset(3));
    // -1: everything below the high watermark.
    assert_eq!(r.delete_records("t", 0, -1).await.unwrap(), Offset(5));
    b.stop().await;
}

#[tokio::test]
async fn a_leader_change_ends_a_waiting_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path(), vec![topic("t", 1)]).await;
    let r = b.replicas.clone();
    let poll = tokio::spawn(async move { r.fetch(consumer(LONG, 1), vec![at("t", 0, 0)]).await });
    tokio::task::yield_now().await;
    assert!(!poll.is_finished());
    let mut moved = topic("t", 1);
    moved.partitions[0] = PartitionAssignment {
        replicas: vec![NODE, NodeId(2)],
        isr: vec![NodeId(2)],
        leader: Some(NodeId(2)),
        leader_epoch: LeaderEpoch(1),
        ..moved.partitions[0].clone()
    };
    b.replicas.apply(vec![moved]).await.unwrap();
    let got = timeout(STEP, poll).await.expect("woken").unwrap();
    assert_eq!(got[0].error, ErrorCode::NotLeaderOrFollower);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_fails_acks_all_with_a_storage_error_and_loses_nothing_acked() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path(), vec![topic("t", 1)]).await;
    let acked = timeout(
        STEP,
        b.replicas
            .append("t", 0, batch(2, now_ms(), 100), Acks::All, LONG),
    )
    .await
    .expect("in time")
    .expect("acked");
    assert_eq!(acked.base_offset, Offset(0));
    b.stop().await;

    // The next segment is /dev/null: the write succeeds, the fsync fails (EINVAL),
    // as on a failing device.
    let segment = dir.path().join("t-0").join("00000000000000000002.log");
    std::os::unix::fs::symlink("/dev/null", &segment).unwrap();
    let b = start(dir.path(), vec![topic("t", 1)]).await;
    let err = timeout(
        STEP,
        b.replicas
            .append("t", 0, batch(1, now_ms(), 100), Acks::All, LONG),
    )
    .await
    .expect("answered at once, not at the timeout")
    .unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::KafkaStorageError, "{err}");
    // The directory is offline: the partition takes nothing more.
    let again = b
        .replicas
        .append("t", 0, batch(1, now_ms(), 100), Acks::Leader, LONG)
        .await
        .unwrap_err();
    assert_eq!(again.error_code(), ErrorCode::KafkaStorageError);
    let _ = b.replicas.shutdown().await;
    b.shutdown.cancel();

    // Device replaced: what was acknowledged is all there.
    for suffix in ["log", "index", "timeindex"] {
        let _ = std::fs::remove_file(segment.with_extension(suffix));
    }
    let b = start(dir.path(), vec![topic("t", 1)]).await;
    let got = fetch_one(&b, consumer(Duration::ZERO, 0), at("t", 0, 0)).await;
    assert_eq!(got.error, ErrorCode::None);
    assert_eq!(batches(&got.records), vec![(0, 2)]);
    assert_eq!(status(&b, "t", 0).high_watermark, Offset(2));
    b.stop().await;
}
