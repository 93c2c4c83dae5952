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

/// Counts the leader epoch cache's warnings of non-monotonic entries while `f` runs
/// on this thread.
fn epoch_conflicts_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tracing::subscriber::Interest;

    struct Counter(Arc<AtomicUsize>);
    impl tracing::Subscriber for Counter {
        fn register_callsite(&self, _: &'static tracing::Metadata<'static>) -> Interest {
            Interest::sometimes()
        }
        fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
            m.target() == "weir_log::epoch_cache" && *m.level() == tracing::Level::WARN
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, e: &tracing::Event<'_>) {
            if self.enabled(e.metadata()) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    let n = Arc::new(AtomicUsize::new(0));
    let out = tracing::subscriber::with_default(Counter(Arc::clone(&n)), f);
    (out, n.load(Ordering::SeqCst))
}

/// A log of 40 one-record batches over several segments, epoch `i / 8` for batch
/// `i` (so epochs start inside segments, not at their bases); closed uncleanly.
fn log_with_epochs_across_segments(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Vec<Offset> {
    let mut log = open(dir, small_config(), clock);
    for i in 0..40 {
        log.append_as_leader(batch(1, NOW, 60), LeaderEpoch(i / 8))
            .unwrap();
    }
    let bases = log.segment_base_offsets();
    assert!(bases.len() >= 4, "{bases:?}");
    assert!(
        bases.iter().all(|b| b.get() % 8 != 0 || b.get() == 0),
        "an epoch starts at a segment base: {bases:?}"
    );
    bases
}

#[test]
fn full_recovery_leaves_the_epoch_cache_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    log_with_epochs_across_segments(dir.path(), &clock);
    let want: Vec<(i32, i64)> = (0..5).map(|e| (e, i64::from(e) * 8)).collect();
    for _ in 0..2 {
        let ((log, report), conflicts) = epoch_conflicts_during(|| {
            reopen(dir.path(), small_config(), &clock, OpenHints::default())
        });
        assert!(report.segments_recovered >= 4, "{report:?}");
        assert_eq!(conflicts, 0, "recovery assigned epochs over later ones");
        let got: Vec<(i32, i64)> = log
            .leader_epoch_cache()
            .entries()
            .iter()
            .map(|e| (e.epoch.get(), e.start_offset.get()))
            .collect();
        assert_eq!(got, want);
    }
}

#[test]
fn recovery_from_a_later_segment_keeps_where_its_epochs_started() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let bases = log_with_epochs_across_segments(dir.path(), &clock);
    let epochs = |log: &Log| log.leader_epoch_cache().entries().to_vec();
    let want = epochs(&open(dir.path(), small_config(), &clock));
    // Validate from a segment whose first batch is of an epoch that started earlier.
    let hints = OpenHints {
        recovery_point: Some(bases[2].plus(1)),
        ..OpenHints::default()
    };
    let ((log, report), conflicts) =
        epoch_conflicts_during(|| reopen(dir.path(), small_config(), &clock, hints));
    assert_eq!(report.segments_recovered, bases.len() - 2, "{report:?}");
    assert_eq!(conflicts, 0);
    assert_eq!(epochs(&log), want);
    assert_eq!(
        log.end_offset_for_epoch(LeaderEpoch(0)),
        (LeaderEpoch(0), Offset(8))
    );
}

#[test]
fn a_trusted_segment_recovered_for_a_bad_index_keeps_later_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let bases = log_with_epochs_across_segments(dir.path(), &clock);
    let want = open(dir.path(), small_config(), &clock)
        .leader_epoch_cache()
        .entries()
        .to_vec();
    let idx = crate::segment_file(dir.path(), bases[1], ".index");
    let mut bytes = std::fs::read(&idx).unwrap();
    assert!(bytes.len() >= 8, "the segment should be indexed");
    bytes.truncate(bytes.len() - 3);
    std::fs::write(&idx, bytes).unwrap();
    let hints = OpenHints {
        clean_shutdown: true,
        ..OpenHints::default()
    };
    let ((log, report), conflicts) =
        epoch_conflicts_during(|| reopen(dir.path(), small_config(), &clock, hints));
    assert_eq!(report.segments_recovered, 1, "{report:?}");
    assert_eq!(conflicts, 0);
    assert_eq!(log.leader_epoch_cache().entries(), &want[..]);
}

#[test]
fn recovery_drops_epochs_of_a_cut_tail_and_rebuilds_a_stale_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let bases = log_with_epochs_across_segments(dir.path(), &clock);
    // A checkpoint that missed the last epoch (epoch 4 from 32) and claims one that
    // never reached the log.
    std::fs::write(
        dir.path().join(LEADER_EPOCH_CHECKPOINT),
        "0\n5\n0 0\n1 8\n2 16\n3 24\n9 45\n",
    )
    .unwrap();
    // Validated from the segment holding offset 30 (below the start of epoch 4).
    let hints = OpenHints {
        recovery_point: Some(Offset(30)),
        ..OpenHints::default()
    };
    assert!(bases.iter().any(|b| b.get() <= 30) && bases.iter().any(|b| b.get() > 32));
    let (log, _) = reopen(dir.path(), small_config(), &clock, hints);
    let got: Vec<(i32, i64)> = log
        .leader_epoch_cache()
        .entries()
        .iter()
        .map(|e| (e.epoch.get(), e.start_offset.get()))
        .collect();
    assert_eq!(got, vec![(0, 0), (1, 8), (2, 16), (3, 24), (4, 32)]);
}
