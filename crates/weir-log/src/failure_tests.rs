//! Storage failures with real kernel errors, no mocks: a segment whose file is
//! `/dev/full` (every write fails with ENOSPC), and, when the test may mount, a real
//! full tmpfs. Each checks that the log goes offline with KAFKA_STORAGE_ERROR, leaves
//! no partial batch behind, and that reopening keeps exactly the written prefix.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use weir_protocol::records::Batches;
use weir_types::{Clock, ErrorCode, LeaderEpoch, Offset};

use crate::config::LogConfig;
use crate::error::LogError;
use crate::log::Log;
use crate::recovery::OpenHints;
use crate::segment::{segment_file, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use crate::test_util::*;

/// `(base offset, max timestamp)` of every batch from the log start.
fn stored(log: &Log) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let info = log.read(offset, 1 << 20, None, true).unwrap();
        let before = out.len();
        for b in Batches::new(info.records) {
            let b = b.unwrap();
            offset = Offset(b.next_offset());
            out.push((b.base_offset(), b.max_timestamp()));
        }
        assert!(out.len() > before, "no progress at {offset}");
    }
    out
}

fn open_with(dir: &Path, clock: &Arc<ManualClock>, clean: bool) -> Log {
    let clock: Arc<dyn Clock> = clock.clone();
    let hints = OpenHints {
        clean_shutdown: clean,
        ..OpenHints::default()
    };
    Log::open(dir, LogConfig::default(), clock, hints).unwrap()
}

fn assert_offline_storage_error(log: &mut Log, e: &LogError) {
    assert_eq!(e.error_code(), ErrorCode::KafkaStorageError, "{e}");
    assert!(log.is_offline(), "a failed write must take the log offline");
    let again = log
        .append_as_leader(batch(1, NOW, 10), LeaderEpoch(0))
        .unwrap_err();
    assert!(matches!(again, LogError::Offline { .. }), "{again}");
    assert_eq!(again.error_code(), ErrorCode::KafkaStorageError);
    assert!(matches!(log.flush(), Err(LogError::Offline { .. })));
    assert!(log.read(Offset(0), 1024, None, true).is_err());
}

/// A log in `dir` with six records (offsets 0-5, three batches), reopened
/// cleanly with its next segment (base offset 6) a symlink to `device`.
fn six_records_then_segment_on(dir: &Path, clock: &Arc<ManualClock>, device: &str) -> Log {
    let mut log = open(dir, LogConfig::default(), clock);
    for i in 0..3 {
        log.append_as_leader(batch(2, NOW + i, 50), LeaderEpoch(0))
            .unwrap();
    }
    log.close().unwrap();
    std::os::unix::fs::symlink(device, segment_file(dir, Offset(6), LOG_SUFFIX)).unwrap();
    open_with(dir, clock, true)
}

#[test]
fn a_write_error_takes_the_log_offline_and_reopen_keeps_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    // The next segment, where the next append goes, is /dev/full: the kernel
    // answers every write with ENOSPC.
    let mut log = six_records_then_segment_on(dir.path(), &clock, "/dev/full");
    assert_eq!(log.log_end_offset(), Offset(6));
    let e = log
        .append_as_leader(batch(2, NOW + 10, 50), LeaderEpoch(0))
        .unwrap_err();
    assert!(e.is_disk_full(), "{e}");
    assert_offline_storage_error(&mut log, &e);
    drop(log);

    // "Free space": the device goes away; reopening (unclean) keeps the prefix.
    for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
        let _ = std::fs::remove_file(segment_file(dir.path(), Offset(6), suffix));
    }
    let mut log = open_with(dir.path(), &clock, false);
    assert!(!log.is_offline());
    assert_eq!(stored(&log), vec![(0, NOW + 1), (2, NOW + 2), (4, NOW + 3)]);
    let info = log
        .append_as_leader(batch(1, NOW + 20, 50), LeaderEpoch(0))
        .unwrap();
    assert_eq!(info.first_offset, Offset(6));
}

/// A tmpfs mounted for the test, unmounted on drop (even when the test panics).
struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (mount's syntax, e.g. `1m`), or says loudly why it
    /// cannot and returns `None`. Under CI (`CI=true`, where tests run as root) a
    /// failed mount fails the test: the disk-full path must not be skipped there.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        let why = match out {
            Ok(o) if o.status.success() => {
                return Some(Tmpfs {
                    path: dir.path().to_path_buf(),
                    _dir: dir,
                })
            }
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
            Err(e) => e.to_string(),
        };
        let msg = format!("SKIPPING the real full-disk test: cannot mount a tmpfs ({why}); run as root (CAP_SYS_ADMIN) to execute it");
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("{msg}");
        None
    }

    fn remount(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.path)
            .status()
            .unwrap();
        assert!(status.success(), "remount failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

#[test]
fn a_full_disk_fails_the_append_cleanly_and_reopen_recovers_every_write() {
    let Some(fs) = Tmpfs::mount("512k") else {
        return;
    };
    let dir = fs.path.join("t-0");
    let clock = ManualClock::new(NOW);
    let config = LogConfig {
        segment_bytes: 128 * 1024,
        index_interval_bytes: 1024,
        ..LogConfig::default()
    };
    let mut log = open(&dir, config.clone(), &clock);
    let mut written: Vec<(i64, i64)> = Vec::new();
    let mut bytes_written = 0u64;
    let error = loop {
        let i = written.len() as i64;
        let b: Bytes = batch(3, NOW + i * 10, 1000 + (i as usize % 7) * 100);
        let len = b.len() as u64;
        match log.append_as_leader(b, LeaderEpoch(0)) {
            Ok(info) => {
                written.push((info.first_offset.get(), NOW + i * 10 + 2));
                bytes_written += len;
            }
            Err(e) => break e,
        }
        assert!(written.len() < 10_000, "a 512 KiB tmpfs never filled up");
    };
    assert!(error.is_disk_full(), "{error}");
    assert!(written.len() > 10, "only {} batches fit", written.len());
    assert_offline_storage_error(&mut log, &error);
    // No partial batch on disk: the segments hold exactly the successful appends.
    assert_eq!(log.size_bytes(), bytes_written);
    let on_disk: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(on_disk, bytes_written, "a partial batch was left on disk");
    drop(log);

    fs.remount("4m");
    let mut log = open(&dir, config, &clock);
    assert!(!log.is_offline());
    assert_eq!(stored(&log), written, "reopen lost or changed a batch");
    let next = Offset(written.last().map_or(0, |(base, _)| base + 3));
    let info = log
        .append_as_leader(batch(3, NOW, 1000), LeaderEpoch(0))
        .unwrap();
    assert_eq!(info.first_offset, next);
    log.flush().unwrap();
}

#[test]
fn a_failed_fsync_takes_the_log_offline_and_the_recovery_point_stays() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    // The next segment is /dev/null: writes succeed (and vanish), but the
    // kernel refuses to fsync it (EINVAL), as a failing device would.
    let mut log = six_records_then_segment_on(dir.path(), &clock, "/dev/null");
    log.append_as_leader(batch(2, NOW + 10, 50), LeaderEpoch(0))
        .expect("the write itself succeeds");
    assert_eq!(log.log_end_offset(), Offset(8));
    let e = log.flush().unwrap_err();
    assert!(e.is_storage_error(), "{e}");
    assert_eq!(
        log.recovery_point(),
        Offset(6),
        "the recovery point never passes a failed fsync"
    );
    assert_offline_storage_error(&mut log, &e);
    drop(log);

    // Reopened without the failing device (unclean), the synced prefix is there.
    for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
        let _ = std::fs::remove_file(segment_file(dir.path(), Offset(6), suffix));
    }
    let log = open_with(dir.path(), &clock, false);
    assert!(!log.is_offline());
    assert_eq!(stored(&log), vec![(0, NOW + 1), (2, NOW + 2), (4, NOW + 3)]);
}
