//! Tests of the append, read and lookup paths of [`Log`].

use bytes::Bytes;
use weir_protocol::records::{BatchView, Batches, Compression, TimestampType as WireTs};
use weir_types::{ErrorCode, LeaderEpoch, Offset};

use crate::config::{LogConfig, TimestampType};
use crate::error::LogError;
use crate::log::Log;
use crate::read::special_timestamps;
use crate::recovery::OpenHints;
use crate::test_util::*;

fn views(bytes: &Bytes) -> Vec<BatchView> {
    Batches::new(bytes.clone()).map(|b| b.unwrap()).collect()
}

/// Every batch from the log start, through `read`.
fn read_all(log: &Log) -> Vec<BatchView> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let info = log.read(offset, 1 << 20, None, true).unwrap();
        let got = views(&info.records);
        assert!(!got.is_empty(), "no progress at {offset}");
        offset = Offset(got.last().unwrap().next_offset());
        out.extend(got);
    }
    out
}

#[test]
fn leader_append_assigns_offsets_and_patches_headers() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let mut log = open(dir.path(), LogConfig::default(), &clock);
    let a = batch(3, NOW, 10);
    let b = batch(2, NOW + 5, 10);
    let info = log.append_as_leader(a.clone(), LeaderEpoch(4)).unwrap();
    assert_eq!(
        (info.first_offset, info.last_offset),
        (Offset(0), Offset(2))
    );
    assert_eq!(info.record_count, 3);
    let info = log
        .append_as_leader(concat(&[&b, &b]), LeaderEpoch(4))
        .unwrap();
    assert_eq!(
        (info.first_offset, info.last_offset),
        (Offset(3), Offset(6))
    );
    assert_eq!(info.batch_count, 2);
    assert_eq!(info.max_timestamp, NOW + 6);
    assert_eq!(log.log_end_offset(), Offset(7));

    let stored = read_all(&log);
    assert_eq!(stored.len(), 3);
    let bases: Vec<i64> = stored.iter().map(|v| v.base_offset()).collect();
    assert_eq!(bases, vec![0, 3, 5]);
    for v in &stored {
        // Parsed again above, so the CRC still holds; the epoch is the leader's.
        assert_eq!(v.partition_leader_epoch(), 4);
    }
    // Everything after the patched prefix is the producer's bytes.
    assert_eq!(&stored[0].as_bytes()[16..], &a[16..]);
    assert_eq!(
        log.leader_epoch_cache().latest_epoch(),
        Some(LeaderEpoch(4))
    );
}

#[test]
fn bad_appends_are_rejected_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let config = LogConfig {
        max_message_bytes: 200,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config, &clock);
    log.append_as_leader(batch(1, NOW, 10), LeaderEpoch(0))
        .unwrap();

    let big = log.append_as_leader(batch(1, NOW, 300), LeaderEpoch(0));
    assert!(
        matches!(big, Err(LogError::MessageTooLarge { .. })),
        "{big:?}"
    );
    assert_eq!(big.unwrap_err().error_code(), ErrorCode::MessageTooLarge);

    let mut corrupt = batch(2, NOW, 10).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let err = log
        .append_as_leader(Bytes::from(corrupt), LeaderEpoch(0))
        .unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::CorruptMessage, "{err}");

    let torn = batch(2, NOW, 10).slice(..40);
    let err = log.append_as_leader(torn, LeaderEpoch(0)).unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::CorruptMessage, "{err}");

    let err = log
        .append_as_leader(Bytes::new(), LeaderEpoch(0))
        .unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::InvalidRecord);

    let control = {
        let mut b = weir_protocol::records::BatchBuilder::new().control(true);
        b.append(NOW, Some(b"k"), Some(b"v"), &[]).unwrap();
        b.build().unwrap()
    };
    let err = log.append_as_leader(control, LeaderEpoch(0)).unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::InvalidRecord, "{err}");

    let future = batch(1, NOW + 2 * 3_600_000, 10);
    let err = log.append_as_leader(future, LeaderEpoch(0)).unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::InvalidTimestamp, "{err}");

    // A good batch followed by a bad one in the same append: nothing is written.
    let mixed = concat(&[&batch(1, NOW, 10), &batch(1, NOW, 300)]);
    assert!(log.append_as_leader(mixed, LeaderEpoch(0)).is_err());
    assert_eq!(log.log_end_offset(), Offset(1));
    assert_eq!(read_all(&log).len(), 1);
}

#[test]
fn log_append_time_overwrites_timestamps_and_keeps_the_crc_valid() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let config = LogConfig {
        message_timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config, &clock);
    // Old timestamps would fail CreateTime checks; LogAppendTime ignores them.
    let info = log
        .append_as_leader(batch(3, 5, 10), LeaderEpoch(0))
        .unwrap();
    assert_eq!(info.log_append_time_ms, Some(NOW));
    let stored = read_all(&log);
    assert_eq!(stored[0].timestamp_type(), WireTs::LogAppendTime);
    assert_eq!(stored[0].max_timestamp(), NOW);
    let found = log.offset_for_timestamp(NOW).unwrap().unwrap();
    assert_eq!(found.offset, Offset(0));
}

#[test]
fn reads_honour_max_bytes_max_offset_and_min_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let mut log = open(dir.path(), LogConfig::default(), &clock);
    let one = batch(5, NOW, 20);
    let len = one.len();
    for _ in 0..4 {
        log.append_as_leader(one.clone(), LeaderEpoch(0)).unwrap();
    }
    // Offsets 0..20 in batches of 5.
    let r = log.read(Offset(0), 2 * len, None, false).unwrap();
    assert_eq!(r.records.len(), 2 * len);
    assert_eq!(r.first_batch_offset, Some(Offset(0)));
    // From the middle of a batch: the whole batch comes back.
    let r = log.read(Offset(7), 1 << 20, None, false).unwrap();
    assert_eq!(views(&r.records)[0].base_offset(), 5);
    assert_eq!(views(&r.records).len(), 3);
    // max_offset (a high watermark) is exclusive, and cuts at whole batches.
    let r = log
        .read(Offset(0), 1 << 20, Some(Offset(10)), false)
        .unwrap();
    assert_eq!(views(&r.records).len(), 2);
    let r = log
        .read(Offset(0), 1 << 20, Some(Offset(12)), false)
        .unwrap();
    assert_eq!(views(&r.records).len(), 2, "batch 10..15 is not below 12");
    let r = log
        .read(Offset(10), 1 << 20, Some(Offset(10)), false)
        .unwrap();
    assert!(r.records.is_empty());
    // KIP-74: a first batch larger than max_bytes comes back whole only if asked.
    let r = log.read(Offset(0), 10, None, false).unwrap();
    assert!(r.records.is_empty());
    let r = log.read(Offset(0), 10, None, true).unwrap();
    assert_eq!(r.records.len(), len);
    // The end is readable (empty); past it is out of range.
    assert!(log
        .read(Offset(20), 100, None, true)
        .unwrap()
        .records
        .is_empty());
    let err = log.read(Offset(21), 100, None, true).unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::OffsetOutOfRange);
}

#[test]
fn segments_roll_by_size_and_reads_cross_them() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let mut log = open(dir.path(), small_config(), &clock);
    for i in 0..40 {
        log.append_as_leader(batch(1 + i % 3, NOW + i as i64, 30), LeaderEpoch(0))
            .unwrap();
    }
    assert!(log.segment_count() > 3, "{} segments", log.segment_count());
    let end = log.log_end_offset();
    // Every offset is readable and returns the batch holding it.
    for o in 0..end.get() {
        let r = log.read(Offset(o), 1 << 16, None, false).unwrap();
        let first = &views(&r.records)[0];
        assert!(
            first.base_offset() <= o && o <= first.last_offset(),
            "offset {o}"
        );
    }
    let all = read_all(&log);
    assert_eq!(all.len(), 40);
    for w in all.windows(2) {
        assert_eq!(w[0].next_offset(), w[1].base_offset());
    }
    // Segment files are named by base offset.
    for base in log.segment_base_offsets() {
        assert!(crate::segment_file(dir.path(), base, ".log").exists());
    }
}

#[test]
fn segments_roll_by_time_and_by_full_index() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let config = LogConfig {
        segment_ms: 1000,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config, &clock);
    log.append_as_leader(batch(1, NOW, 10), LeaderEpoch(0))
        .unwrap();
    log.append_as_leader(batch(1, NOW + 500, 10), LeaderEpoch(0))
        .unwrap();
    assert_eq!(log.segment_count(), 1);
    // segment.ms counts record time from the segment's first batch.
    log.append_as_leader(batch(1, NOW + 1001, 10), LeaderEpoch(0))
        .unwrap();
    assert_eq!(log.segment_count(), 2);
    assert_eq!(log.segment_base_offsets()[1], Offset(2));

    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_index_bytes: 24, // two time-index entries
        index_interval_bytes: 0,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config, &clock);
    for i in 0..10 {
        log.append_as_leader(batch(1, NOW + i, 10), LeaderEpoch(0))
            .unwrap();
    }
    assert!(log.segment_count() >= 3, "{}", log.segment_count());
}

#[test]
fn offset_for_timestamp_has_record_precision() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let mut log = open(dir.path(), small_config(), &clock);
    // Record timestamps out of order inside batches, as producers may send them.
    let batches = [
        vec![NOW + 100, NOW + 300, NOW + 200],
        vec![NOW + 250, NOW + 400],
        vec![NOW + 500, NOW + 450],
    ];
    for ts in &batches {
        log.append_as_leader(batch_with_timestamps(ts, Compression::None), LeaderEpoch(2))
            .unwrap();
    }
    for codec in [Compression::Gzip, Compression::Lz4] {
        log.append_as_leader(
            batch_with_timestamps(&[NOW + 600, NOW + 700], codec),
            LeaderEpoch(2),
        )
        .unwrap();
    }
    for _ in 0..20 {
        log.append_as_leader(
            batch_with_timestamps(&[NOW + 1000], Compression::None),
            LeaderEpoch(2),
        )
        .unwrap();
    }
    fn find_in(log: &Log, ts: i64) -> Option<(i64, i64)> {
        log.offset_for_timestamp(ts)
            .unwrap()
            .map(|t| (t.offset.get(), t.timestamp))
    }
    fn by_in(log: &Log, ts: i64) -> Option<i64> {
        log.fetch_offset_by_timestamp(ts)
            .unwrap()
            .map(|t| t.offset.get())
    }
    let find = |ts: i64| find_in(&log, ts);
    assert_eq!(find(NOW), Some((0, NOW + 100)));
    assert_eq!(find(NOW + 150), Some((1, NOW + 300)));
    assert_eq!(find(NOW + 300), Some((1, NOW + 300)));
    assert_eq!(find(NOW + 301), Some((4, NOW + 400)));
    assert_eq!(find(NOW + 460), Some((5, NOW + 500)));
    assert_eq!(find(NOW + 650), Some((8, NOW + 700)));
    assert_eq!(find(NOW + 1000), Some((11, NOW + 1000)));
    assert_eq!(find(NOW + 1001), None);
    let hit = log.offset_for_timestamp(NOW + 150).unwrap().unwrap();
    assert_eq!(hit.leader_epoch, Some(LeaderEpoch(2)));

    let by = |ts: i64| by_in(&log, ts);
    assert_eq!(by(special_timestamps::EARLIEST), Some(0));
    assert_eq!(
        by(special_timestamps::LATEST),
        Some(log.log_end_offset().get())
    );
    // The first record holding the largest timestamp.
    assert_eq!(by(special_timestamps::MAX_TIMESTAMP), Some(11));
    assert_eq!(by(special_timestamps::LATEST_TIERED), None);

    // After DeleteRecords, records below the log start do not count.
    log.set_high_watermark(log.log_end_offset());
    log.delete_records_before(Offset(2)).unwrap();
    assert_eq!(find_in(&log, NOW), Some((2, NOW + 200)));
    assert_eq!(by_in(&log, special_timestamps::EARLIEST), Some(2));

    // The same answers after a clean reopen (time indexes from disk).
    let config = log.config().clone();
    let hw = log.high_watermark();
    log.close().unwrap();
    let clock2: std::sync::Arc<dyn weir_types::Clock> = clock.clone();
    let log = Log::open(
        dir.path(),
        config,
        clock2,
        OpenHints {
            clean_shutdown: true,
            log_start_offset: Some(Offset(2)),
            high_watermark: Some(hw),
            ..OpenHints::default()
        },
    )
    .unwrap();
    assert_eq!(find_in(&log, NOW + 301), Some((4, NOW + 400)));
    assert_eq!(find_in(&log, NOW + 1000), Some((11, NOW + 1000)));
}

#[test]
fn idempotent_retries_are_deduplicated_even_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let mut log = open(dir.path(), small_config(), &clock);
    let first = producer_batch(7, 0, 0, 3);
    log.append_as_leader(first.clone(), LeaderEpoch(0)).unwrap();
    for i in 0..30 {
        log.append_as_leader(producer_batch(8, 0, i, 1), LeaderEpoch(0))
            .unwrap();
    }
    let second = producer_batch(7, 0, 3, 2);
    let info = log
        .append_as_leader(second.clone(), LeaderEpoch(0))
        .unwrap();
    assert_eq!(info.first_offset, Offset(33));

    let dup = log.append_as_leader(first.clone(), LeaderEpoch(0)).unwrap();
    assert!(dup.duplicate);
    assert_eq!((dup.first_offset, dup.last_offset), (Offset(0), Offset(2)));
    let end = log.log_end_offset();

    let err = log
        .append_as_leader(producer_batch(7, 0, 9, 1), LeaderEpoch(0))
        .unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::OutOfOrderSequenceNumber);
    log.append_as_leader(producer_batch(7, 1, 0, 1), LeaderEpoch(0))
        .unwrap();
    let err = log
        .append_as_leader(producer_batch(7, 0, 5, 1), LeaderEpoch(0))
        .unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::InvalidProducerEpoch);
    let end_after = log.log_end_offset();
    assert_eq!(end_after, end.plus(1));

    // Unclean reopen: state comes from the last roll's snapshot plus replay.
    drop(log);
    let mut log = open(dir.path(), small_config(), &clock);
    assert_eq!(log.log_end_offset(), end_after);
    let dup = log
        .append_as_leader(producer_batch(8, 0, 29, 1), LeaderEpoch(0))
        .unwrap();
    assert!(dup.duplicate);
    assert_eq!(dup.first_offset, Offset(32));
    let err = log
        .append_as_leader(producer_batch(7, 0, 5, 1), LeaderEpoch(0))
        .unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::InvalidProducerEpoch);
    log.append_as_leader(producer_batch(7, 1, 1, 1), LeaderEpoch(0))
        .unwrap();
}

#[test]
fn follower_append_keeps_offsets_and_learns_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let leader_dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let mut leader = open(leader_dir.path(), LogConfig::default(), &clock);
    leader
        .append_as_leader(batch(2, NOW, 10), LeaderEpoch(1))
        .unwrap();
    leader
        .append_as_leader(batch(3, NOW, 10), LeaderEpoch(3))
        .unwrap();
    let fetched = leader
        .read(Offset(0), 1 << 20, None, false)
        .unwrap()
        .records;

    let mut follower = open(dir.path(), LogConfig::default(), &clock);
    let info = follower.append_as_follower(fetched.clone()).unwrap();
    assert_eq!(
        (info.first_offset, info.last_offset),
        (Offset(0), Offset(4))
    );
    assert_eq!(
        follower.leader_epoch_cache().entries(),
        leader.leader_epoch_cache().entries()
    );
    assert_eq!(
        follower.end_offset_for_epoch(LeaderEpoch(1)),
        (LeaderEpoch(1), Offset(2))
    );
    assert_eq!(
        follower.end_offset_for_epoch(LeaderEpoch(2)),
        (LeaderEpoch(1), Offset(2))
    );

    let err = follower.append_as_follower(fetched.clone()).unwrap_err();
    assert!(
        matches!(err, LogError::UnexpectedAppendOffset { .. }),
        "{err}"
    );
    // A gap is refused unless the topic is compacted.
    let gap = leader
        .read(Offset(2), 1 << 20, None, false)
        .unwrap()
        .records;
    let dir2 = tempfile::tempdir().unwrap();
    let mut other = open(dir2.path(), LogConfig::default(), &clock);
    assert!(other.append_as_follower(gap).is_err());
    assert_eq!(other.log_end_offset(), Offset(0));
}

#[test]
fn truncation_removes_batches_epochs_and_producer_state() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let mut log = open(dir.path(), small_config(), &clock);
    for i in 0..20 {
        log.append_as_leader(producer_batch(1, 0, i, 1), LeaderEpoch(1))
            .unwrap();
    }
    for i in 20..40 {
        log.append_as_leader(producer_batch(1, 0, i, 1), LeaderEpoch(2))
            .unwrap();
    }
    log.set_high_watermark(Offset(30));
    assert!(log.truncate_to(Offset(15)).unwrap());
    assert_eq!(log.log_end_offset(), Offset(15));
    assert_eq!(log.high_watermark(), Offset(15));
    assert_eq!(log.latest_epoch(), Some(LeaderEpoch(1)));
    assert_eq!(read_all(&log).len(), 15);
    // The producer's sequence continues from what is left.
    let err = log
        .append_as_leader(producer_batch(1, 0, 20, 1), LeaderEpoch(3))
        .unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::OutOfOrderSequenceNumber);
    let info = log
        .append_as_leader(producer_batch(1, 0, 15, 1), LeaderEpoch(3))
        .unwrap();
    assert_eq!(info.first_offset, Offset(15));
    assert!(!log.truncate_to(Offset(100)).unwrap());

    // Survives reopen.
    drop(log);
    let log = open(dir.path(), small_config(), &clock);
    assert_eq!(log.log_end_offset(), Offset(16));
    assert_eq!(
        log.end_offset_for_epoch(LeaderEpoch(1)),
        (LeaderEpoch(1), Offset(15))
    );

    let mut log = log;
    log.truncate_fully_and_start_at(Offset(100)).unwrap();
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.segment_count()
        ),
        (Offset(100), Offset(100), 1)
    );
    let info = log
        .append_as_leader(batch(1, NOW, 1), LeaderEpoch(4))
        .unwrap();
    assert_eq!(info.first_offset, Offset(100));
}

#[test]
fn delete_records_and_retention_delete_whole_segments() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let mut log = open(dir.path(), small_config(), &clock);
    for i in 0..30 {
        log.append_as_leader(batch(1, NOW + i, 100), LeaderEpoch(0))
            .unwrap();
    }
    let segments = log.segment_count();
    assert!(segments >= 5);
    // Beyond the high watermark: refused.
    log.set_high_watermark(Offset(10));
    let err = log.delete_records_before(Offset(11)).unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::OffsetOutOfRange);
    assert_eq!(log.delete_records_before(Offset(9)).unwrap(), Offset(9));
    assert!(log.segment_count() < segments);
    assert_eq!(log.log_start_offset(), Offset(9));
    let err = log.read(Offset(8), 100, None, true).unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::OffsetOutOfRange);
    assert_eq!(read_all(&log)[0].base_offset(), 9);

    // retention.bytes: keeps the newest segments within the limit, only below the HW.
    let mut config = log.config().clone();
    config.retention_bytes = 1000;
    log.set_config(config.clone()).unwrap();
    let before = log.segment_count();
    log.delete_old_segments().unwrap();
    assert!(log.segment_count() <= before);
    log.set_high_watermark(log.log_end_offset());
    log.delete_old_segments().unwrap();
    assert!(
        log.size_bytes() <= 1000 + config.segment_bytes,
        "{}",
        log.size_bytes()
    );
    assert!(log.log_start_offset() > Offset(9));

    // retention.ms: everything is old after a week; the active segment goes too,
    // replaced by an empty one at the log end.
    config.retention_bytes = -1;
    config.retention_ms = 1000;
    log.set_config(config).unwrap();
    clock.advance(10_000);
    log.delete_old_segments().unwrap();
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_start_offset(), log.log_end_offset());
    assert_eq!(log.size_bytes(), 0);
    let info = log
        .append_as_leader(batch(1, NOW + 10_000, 1), LeaderEpoch(0))
        .unwrap();
    assert_eq!(info.first_offset, Offset(30));
}

#[test]
fn flush_handle_advances_the_recovery_point_unless_stale() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let config = LogConfig {
        flush_messages: 5,
        ..small_config()
    };
    let mut log = open(dir.path(), config, &clock);
    assert!(log.flush_handle().is_none() || log.recovery_point() == log.log_end_offset());
    for _ in 0..4 {
        log.append_as_leader(batch(1, NOW, 300), LeaderEpoch(0))
            .unwrap();
    }
    assert!(!log.needs_flush());
    let handle = log.flush_handle().unwrap();
    assert_eq!(handle.offset(), Offset(4));
    // Appends continue while the handle syncs outside the lock.
    log.append_as_leader(batch(1, NOW, 300), LeaderEpoch(0))
        .unwrap();
    assert!(log.needs_flush());
    handle.sync().unwrap();
    assert_eq!(log.mark_flushed(&handle), Offset(4));
    log.flush().unwrap();
    assert_eq!(log.recovery_point(), Offset(5));
    assert!(log.flush_handle().is_none());

    // A handle taken before a truncation must not mark later data as flushed.
    log.append_as_leader(batch(1, NOW, 300), LeaderEpoch(0))
        .unwrap();
    let stale = log.flush_handle().unwrap();
    log.truncate_to(Offset(5)).unwrap();
    log.append_as_leader(batch(2, NOW, 300), LeaderEpoch(0))
        .unwrap();
    stale.sync().unwrap();
    assert_eq!(log.mark_flushed(&stale), Offset(5));

    // flush.ms
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush_ms: 1000,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config, &clock);
    log.append_as_leader(batch(1, NOW, 1), LeaderEpoch(0))
        .unwrap();
    assert!(!log.needs_flush());
    clock.advance(1000);
    assert!(log.needs_flush());
}

#[test]
fn clean_reopen_restores_offsets_and_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let mut log = open(dir.path(), small_config(), &clock);
    for i in 0..50 {
        log.append_as_leader(batch(2, NOW + i, 20), LeaderEpoch(i as i32 / 10))
            .unwrap();
    }
    log.set_high_watermark(Offset(60));
    let before = read_all(&log);
    let epochs = log.leader_epoch_cache().entries().to_vec();
    log.close().unwrap();
    let clock2: std::sync::Arc<dyn weir_types::Clock> = clock.clone();
    let (log, report) = Log::open_with_report(
        dir.path(),
        small_config(),
        clock2,
        OpenHints {
            clean_shutdown: true,
            high_watermark: Some(Offset(60)),
            ..OpenHints::default()
        },
    )
    .unwrap();
    assert_eq!(report.segments_recovered, 0, "{report:?}");
    assert_eq!(log.log_end_offset(), Offset(100));
    assert_eq!(log.high_watermark(), Offset(60));
    assert_eq!(log.leader_epoch_cache().entries(), &epochs[..]);
    let after = read_all(&log);
    assert_eq!(before, after);
}
