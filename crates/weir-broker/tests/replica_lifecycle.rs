//! The replica layer across restarts and metadata changes: what survives a clean
//! shutdown, topic deletion and re-creation, stray logs, retention.

mod replica_support;

use replica_support::*;
use weir_broker::replica::{Acks, TopicAssignment, PARTITION_METADATA_FILE};
use weir_protocol::Uuid;
use weir_types::{ErrorCode, Offset};

#[tokio::test]
async fn producer_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path(), vec![topic("t", 1)]).await;
    b.replicas
        .append("t", 0, producer_batch(9, 2, 0, 2), Acks::All, LONG)
        .await
        .unwrap();
    b.stop().await;

    let b = start(dir.path(), vec![topic("t", 1)]).await;
    let r = &b.replicas;
    let retry = r
        .append("t", 0, producer_batch(9, 2, 0, 2), Acks::All, LONG)
        .await
        .unwrap();
    assert!(
        retry.duplicate,
        "the retry after a restart is still a duplicate"
    );
    assert_eq!(retry.base_offset, Offset(0));
    let gap = r
        .append("t", 0, producer_batch(9, 2, 7, 1), Acks::All, LONG)
        .await
        .unwrap_err();
    assert_eq!(gap.error_code(), ErrorCode::OutOfOrderSequenceNumber);
    let next = r
        .append("t", 0, producer_batch(9, 2, 2, 1), Acks::All, LONG)
        .await
        .unwrap();
    assert_eq!(next.base_offset, Offset(2));
    b.stop().await;
}

#[tokio::test]
async fn a_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path(), vec![topic("t", 2)]).await;
    for p in 0..2 {
        for _ in 0..3 {
            b.replicas
                .append("t", p, batch(2, now_ms(), 30), Acks::All, LONG)
                .await
                .unwrap();
        }
    }
    b.replicas.delete_records("t", 1, 2).await.unwrap();
    let before = fetch_one(&b, consumer(LONG, 1), at("t", 0, 0)).await;
    b.stop().await;
    assert!(dir.path().join(".kafka_cleanshutdown").exists());
    let cp = std::fs::read_to_string(dir.path().join("replication-offset-checkpoint")).unwrap();
    assert!(cp.contains("t 0 6") && cp.contains("t 1 6"), "{cp}");

    let b = start(dir.path(), vec![topic("t", 2)]).await;
    assert!(!dir.path().join(".kafka_cleanshutdown").exists());
    let after = fetch_one(&b, consumer(LONG, 1), at("t", 0, 0)).await;
    assert_eq!(after.records, before.records);
    assert_eq!(after.high_watermark, Offset(6));
    let s = status(&b, "t", 1);
    assert_eq!(
        (s.log_start_offset, s.high_watermark, s.log_end_offset),
        (Offset(2), Offset(6), Offset(6))
    );
    let next = b
        .replicas
        .append("t", 0, batch(1, now_ms(), 1), Acks::All, LONG)
        .await
        .unwrap();
    assert_eq!(next.base_offset, Offset(6));
    b.stop().await;
}

#[tokio::test]
async fn topic_deletion_removes_the_directories() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path(), vec![topic("doomed", 2), topic("kept", 1)]).await;
    b.replicas
        .append("doomed", 0, batch(1, now_ms(), 1), Acks::All, LONG)
        .await
        .unwrap();
    let p0 = dir.path().join("doomed-0");
    assert!(p0.join(PARTITION_METADATA_FILE).exists());
    b.replicas.apply(vec![topic("kept", 1)]).await.unwrap();
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("doomed"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let e = b
        .replicas
        .append("doomed", 0, batch(1, now_ms(), 1), Acks::All, LONG)
        .await
        .unwrap_err();
    assert_eq!(e.error_code(), ErrorCode::UnknownTopicOrPartition);
    assert_eq!(
        b.replicas.hosted_partitions(),
        vec![("kept".to_string(), 0)]
    );
    b.stop().await;
}

#[tokio::test]
async fn a_recreated_topic_starts_empty_and_strays_are_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path(), vec![topic("t", 1), topic("old", 1)]).await;
    b.replicas
        .append("t", 0, batch(1, now_ms(), 1), Acks::All, LONG)
        .await
        .unwrap();
    // Same name, new id, while running: the old log goes, the new one is empty.
    let recreated = TopicAssignment::single_node("t", Uuid([2; 16]), 1, NODE);
    b.replicas
        .apply(vec![recreated.clone(), topic("old", 1)])
        .await
        .unwrap();
    assert_eq!(status(&b, "t", 0).log_end_offset, Offset(0));
    assert_eq!(b.replicas.topic_name(Uuid([2; 16])).as_deref(), Some("t"));
    b.stop().await;
    // After a restart the metadata no longer has "old": its log is set aside.
    let b = start(dir.path(), vec![recreated]).await;
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.contains(&"old-0".to_string()), "{names:?}");
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("old-0.") && n.ends_with("-stray")),
        "{names:?}"
    );
    b.stop().await;
}

#[tokio::test]
async fn retention_deletes_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    let b = open_with(dir.path(), |c| c.log_defaults.segment_bytes = 300).await;
    let t = topic("t", 1).with_config("retention.bytes", "1");
    b.replicas.apply(vec![t]).await.unwrap();
    for _ in 0..6 {
        b.replicas
            .append("t", 0, batch(1, now_ms(), 200), Acks::All, LONG)
            .await
            .unwrap();
    }
    b.replicas.retention_pass();
    let s = status(&b, "t", 0);
    assert_eq!(
        s.log_start_offset,
        Offset(5),
        "all but the active segment go"
    );
    b.stop().await;
}

#[tokio::test]
async fn a_log_that_cannot_open_is_served_offline_not_recreated() {
    let dir = tempfile::tempdir().unwrap();
    // A segment "file" that is a directory: opening the log fails.
    let bad = dir.path().join("t-0").join("00000000000000000000.log");
    std::fs::create_dir_all(&bad).unwrap();
    let b = start(dir.path(), vec![topic("t", 2)]).await;
    assert!(!b.replicas.is_online("t", 0));
    assert!(b.replicas.is_online("t", 1));
    let e = b
        .replicas
        .append("t", 0, batch(1, now_ms(), 1), Acks::All, LONG)
        .await
        .unwrap_err();
    assert_eq!(e.error_code(), ErrorCode::KafkaStorageError);
    let f = fetch_one(&b, consumer(LONG, 1), at("t", 0, 0)).await;
    assert_eq!(f.error, ErrorCode::KafkaStorageError);
    b.stop().await;
    // The damaged directory is left for an operator, and the next start recovers.
    assert!(bad.is_dir());
    assert!(!dir.path().join(".kafka_cleanshutdown").exists());
}

#[tokio::test]
async fn flush_ms_flushes_page_cache_topics_on_a_timer() {
    let dir = tempfile::tempdir().unwrap();
    let t = topic("t", 1)
        .with_config("flush.messages", "1000000")
        .with_config("flush.ms", "5");
    let b = start(dir.path(), vec![t]).await;
    b.replicas
        .append("t", 0, batch(3, now_ms(), 1), Acks::Leader, LONG)
        .await
        .unwrap();
    // Page-cache mode: readable at once, fsynced by the timer soon after.
    assert_eq!(status(&b, "t", 0).high_watermark, Offset(3));
    until("the flush.ms flush", || {
        let s = status(&b, "t", 0);
        s.fsyncs == 1 && s.flushed_offset == Offset(3)
    })
    .await;
    b.stop().await;
}

#[tokio::test]
async fn checkpoints_are_written_periodically_and_an_unclean_stop_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let b = open_with(dir.path(), |c| {
        c.checkpoint_interval = std::time::Duration::from_millis(5)
    })
    .await;
    b.replicas.apply(vec![topic("t", 1)]).await.unwrap();
    for _ in 0..4 {
        b.replicas
            .append("t", 0, batch(1, now_ms(), 10), Acks::All, LONG)
            .await
            .unwrap();
    }
    let hw_file = dir.path().join("replication-offset-checkpoint");
    until("a periodic checkpoint with the high watermark", || {
        std::fs::read_to_string(&hw_file).is_ok_and(|t| t.contains("t 0 4"))
    })
    .await;
    // Stop without closing: no clean-shutdown marker, as after a crash.
    b.shutdown.cancel();
    drop(b);
    assert!(!dir.path().join(".kafka_cleanshutdown").exists());

    let b = start(dir.path(), vec![topic("t", 1)]).await;
    let s = status(&b, "t", 0);
    assert_eq!((s.log_end_offset, s.high_watermark), (Offset(4), Offset(4)));
    let got = fetch_one(&b, consumer(LONG, 1), at("t", 0, 0)).await;
    assert_eq!(batches(&got.records).len(), 4);
    b.stop().await;
}
