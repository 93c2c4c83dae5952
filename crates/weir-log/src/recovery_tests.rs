//! Tests of opening logs whose side files (epoch checkpoint, indexes) are damaged, and
//! of follower appends on compacted topics.

use std::sync::Arc;

use weir_types::{Clock, LeaderEpoch, Offset};

use crate::config::{CleanupPolicy, LogConfig};
use crate::epoch_cache::LEADER_EPOCH_CHECKPOINT;
use crate::log::Log;
use crate::recovery::OpenHints;
use crate::test_util::*;

fn reopen(
    dir: &std::path::Path,
    config: LogConfig,
    clock: &Arc<ManualClock>,
    hints: OpenHints,
) -> (Log, crate::RecoveryReport) {
    let clock: Arc<dyn Clock> = clock.clone();
    Log::open_with_report(dir, config, clock, hints).unwrap()
}

#[test]
fn a_corrupt_epoch_checkpoint_is_rebuilt_from_the_batches() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let mut log = open(dir.path(), small_config(), &clock);
    for i in 0..30 {
        log.append_as_leader(batch(1, NOW, 50), LeaderEpoch(i / 10))
            .unwrap();
    }
    let entries = log.leader_epoch_cache().entries().to_vec();
    assert_eq!(entries.len(), 3);
    log.close().unwrap();
    std::fs::write(dir.path().join(LEADER_EPOCH_CHECKPOINT), "0\n7\ngarbage\n").unwrap();
    let hints = OpenHints {
        clean_shutdown: true,
        ..OpenHints::default()
    };
    let (log, _) = reopen(dir.path(), small_config(), &clock, hints);
    assert_eq!(log.leader_epoch_cache().entries(), &entries[..]);
}

#[test]
fn trusted_segments_with_bad_indexes_are_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let mut log = open(dir.path(), small_config(), &clock);
    for i in 0..40 {
        log.append_as_leader(batch(2, NOW + i, 40), LeaderEpoch(0))
            .unwrap();
    }
    let bases = log.segment_base_offsets();
    let before: Vec<_> = (0..80)
        .map(|o| log.read(Offset(o), 100_000, None, true).unwrap().records)
        .collect();
    log.close().unwrap();
    // A torn last entry in one index, an index pointing past the data in another.
    let idx = crate::segment_file(dir.path(), bases[1], ".index");
    let mut bytes = std::fs::read(&idx).unwrap();
    assert!(bytes.len() >= 8, "the segment should be indexed");
    bytes.truncate(bytes.len() - 3);
    std::fs::write(&idx, bytes).unwrap();
    let idx = crate::segment_file(dir.path(), bases[2], ".index");
    let mut bytes = std::fs::read(&idx).unwrap();
    let n = bytes.len();
    bytes[n - 4..].copy_from_slice(&u32::MAX.to_be_bytes());
    std::fs::write(&idx, bytes).unwrap();

    let hints = OpenHints {
        clean_shutdown: true,
        ..OpenHints::default()
    };
    let (log, report) = reopen(dir.path(), small_config(), &clock, hints);
    assert_eq!(report.segments_recovered, 2, "{report:?}");
    assert!(!report.truncated);
    for (o, want) in before.iter().enumerate() {
        let got = log
            .read(Offset(o as i64), 100_000, None, true)
            .unwrap()
            .records;
        assert_eq!(&got, want, "offset {o}");
    }
}

#[test]
fn recovery_point_limits_what_is_validated() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let mut log = open(dir.path(), small_config(), &clock);
    for _ in 0..40 {
        log.append_as_leader(batch(1, NOW, 60), LeaderEpoch(0))
            .unwrap();
    }
    let bases = log.segment_base_offsets();
    assert!(bases.len() >= 4);
    drop(log);
    let hints = OpenHints {
        recovery_point: Some(bases[2].plus(1)),
        ..OpenHints::default()
    };
    let (log, report) = reopen(dir.path(), small_config(), &clock, hints);
    assert_eq!(report.segments_recovered, bases.len() - 2, "{report:?}");
    assert_eq!(log.log_end_offset(), Offset(40));
    assert_eq!(
        log.recovery_point(),
        Offset(40),
        "recovered data is fsynced"
    );
}

#[test]
fn compacted_topics_accept_follower_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let config = LogConfig {
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        ..small_config()
    };
    let leader_dir = tempfile::tempdir().unwrap();
    let mut leader = open(leader_dir.path(), config.clone(), &clock);
    for _ in 0..6 {
        leader
            .append_as_leader(batch(2, NOW, 10), LeaderEpoch(1))
            .unwrap();
    }
    let part = |from: i64, bytes: usize| {
        leader
            .read(Offset(from), bytes, None, false)
            .unwrap()
            .records
    };
    let first = part(0, 200);
    let later = part(6, 10_000);
    let mut follower = open(dir.path(), config.clone(), &clock);
    follower.append_as_follower(first.clone()).unwrap();
    let end = follower.log_end_offset();
    assert!(end < Offset(6));
    // The batches in between were "compacted away" on the leader.
    let info = follower.append_as_follower(later).unwrap();
    assert_eq!(info.first_offset, Offset(6));
    assert_eq!(follower.log_end_offset(), Offset(12));
    drop(follower);
    let (follower, report) = reopen(dir.path(), config, &clock, OpenHints::default());
    assert!(!report.truncated, "{report:?}");
    assert_eq!(follower.log_end_offset(), Offset(12));
}
