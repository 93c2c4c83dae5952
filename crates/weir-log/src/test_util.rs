//! Helpers for the unit tests: a settable clock and batch builders.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use weir_protocol::records::{BatchBuilder, Compression};
use weir_types::Clock;

use crate::config::LogConfig;
use crate::log::Log;
use crate::recovery::OpenHints;

/// A clock that moves only when told to.
#[derive(Debug)]
pub(crate) struct ManualClock {
    ms: AtomicI64,
    start_ms: i64,
    base: Instant,
}

impl ManualClock {
    pub(crate) fn new(ms: i64) -> Arc<ManualClock> {
        Arc::new(ManualClock {
            ms: AtomicI64::new(ms),
            start_ms: ms,
            base: Instant::now(),
        })
    }

    pub(crate) fn advance(&self, ms: i64) {
        self.ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.ms.load(Ordering::SeqCst)
    }

    fn monotonic(&self) -> Instant {
        let elapsed = (self.now_ms() - self.start_ms).max(0) as u64;
        self.base + Duration::from_millis(elapsed)
    }
}

/// Test "now": 2024-01-01.
pub(crate) const NOW: i64 = 1_704_067_200_000;

/// A batch of `n` records with timestamps `ts, ts+1, ...` and `value_len`-byte values.
pub(crate) fn batch(n: usize, ts: i64, value_len: usize) -> Bytes {
    let value = vec![b'v'; value_len];
    let mut b = BatchBuilder::new();
    for i in 0..n {
        b.append(ts + i as i64, Some(b"key"), Some(&value), &[])
            .unwrap();
    }
    b.build().unwrap()
}

/// A batch with the given record timestamps.
pub(crate) fn batch_with_timestamps(timestamps: &[i64], codec: Compression) -> Bytes {
    let mut b = BatchBuilder::new().compression(codec);
    for ts in timestamps {
        b.append(*ts, None, Some(b"value"), &[]).unwrap();
    }
    b.build().unwrap()
}

/// An idempotent producer's batch of `n` records.
pub(crate) fn producer_batch(pid: i64, epoch: i16, seq: i32, n: usize) -> Bytes {
    let mut b = BatchBuilder::new().producer(pid, epoch, seq);
    for _ in 0..n {
        b.append(NOW, None, Some(b"value"), &[]).unwrap();
    }
    b.build().unwrap()
}

/// Small segments and dense indexes, to exercise rolls and lookups.
pub(crate) fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 100,
        ..LogConfig::default()
    }
}

pub(crate) fn open(dir: &std::path::Path, config: LogConfig, clock: &Arc<ManualClock>) -> Log {
    let clock: Arc<dyn Clock> = clock.clone();
    Log::open(dir, config, clock, OpenHints::default()).unwrap()
}

/// Concatenates byte strings (several batches in one produce).
pub(crate) fn concat(parts: &[&Bytes]) -> Bytes {
    let mut v = Vec::new();
    for p in parts {
        v.extend_from_slice(p);
    }
    Bytes::from(v)
}
