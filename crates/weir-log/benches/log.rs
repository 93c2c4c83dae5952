//! Log benchmarks: the produce path (append 16 KiB batches of 1 KiB records, with and
//! without fsync) and the fetch path (read a batch, read 1 MiB, timestamp lookup).
//!
//! Run: `cargo bench -p weir-log --bench log`. Figures depend on the disk: fsync
//! numbers measure the machine's storage, not the code.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use weir_log::{Log, LogConfig, OpenHints};
use weir_protocol::records::BatchBuilder;
use weir_types::{Clock, LeaderEpoch, Offset, SystemClock};

const RECORD_BYTES: usize = 1024;
const RECORDS_PER_BATCH: usize = 16;

fn batch(ts: i64) -> Bytes {
    let value = vec![0x5a; RECORD_BYTES];
    let mut b = BatchBuilder::new();
    for i in 0..RECORDS_PER_BATCH {
        b.append(ts + i as i64, Some(b"key-0001"), Some(&value), &[])
            .unwrap();
    }
    b.build().unwrap()
}

fn open(dir: &std::path::Path) -> Log {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let config = LogConfig {
        segment_bytes: 256 << 20,
        ..LogConfig::default()
    };
    Log::open(dir, config, clock, OpenHints::default()).unwrap()
}

fn append(c: &mut Criterion) {
    let now = SystemClock.now_ms();
    let one = batch(now);
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Bytes(one.len() as u64));
    group.measurement_time(Duration::from_secs(3));
    group.sample_size(20);

    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    group.bench_function("16KiB_batch_page_cache", |b| {
        b.iter_custom(|iters| {
            log.truncate_fully_and_start_at(Offset(0)).unwrap();
            let start = Instant::now();
            for _ in 0..iters {
                log.append_as_leader(one.clone(), LeaderEpoch(0)).unwrap();
            }
            start.elapsed()
        })
    });
    group.bench_function("16KiB_batch_fsync_each", |b| {
        b.iter_custom(|iters| {
            log.truncate_fully_and_start_at(Offset(0)).unwrap();
            let start = Instant::now();
            for _ in 0..iters {
                log.append_as_leader(one.clone(), LeaderEpoch(0)).unwrap();
                log.flush().unwrap();
            }
            start.elapsed()
        })
    });
    group.bench_function("16KiB_batch_group_commit_of_32", |b| {
        b.iter_custom(|iters| {
            log.truncate_fully_and_start_at(Offset(0)).unwrap();
            let start = Instant::now();
            for i in 0..iters {
                log.append_as_leader(one.clone(), LeaderEpoch(0)).unwrap();
                if i % 32 == 31 {
                    let handle = log.flush_handle().unwrap();
                    handle.sync().unwrap();
                    log.mark_flushed(&handle);
                }
            }
            start.elapsed()
        })
    });
    group.finish();
}

fn read(c: &mut Criterion) {
    let now = SystemClock.now_ms();
    let one = batch(now);
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    let batches = (64 << 20) / one.len();
    for i in 0..batches {
        log.append_as_leader(batch(now + i as i64 * 16), LeaderEpoch(0))
            .unwrap();
    }
    let end = log.log_end_offset().get();
    let mut group = c.benchmark_group("read");
    group.measurement_time(Duration::from_secs(3));
    group.sample_size(20);
    let mut seed = 0x1234_5678_u64;
    let mut next_offset = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        Offset((seed % end as u64) as i64)
    };

    group.throughput(Throughput::Bytes(one.len() as u64));
    group.bench_function("one_batch_random_offset", |b| {
        b.iter_batched(
            &mut next_offset,
            |o| log.read(o, one.len(), None, true).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.throughput(Throughput::Bytes(1 << 20));
    group.bench_function("1MiB_random_offset", |b| {
        b.iter_batched(
            &mut next_offset,
            |o| log.read(o, 1 << 20, None, true).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("offset_for_timestamp", |b| {
        b.iter_batched(
            &mut next_offset,
            |o| log.offset_for_timestamp(now + o.get()).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, append, read);
criterion_main!(benches);
