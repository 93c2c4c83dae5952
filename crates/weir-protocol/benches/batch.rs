//! The Produce hot path: what validating a client's batch costs next to the CRC
//! alone, and what walking its records costs when a handler has to.
//!
//! The batch is 16 KiB of 1 KiB records, the shape of a typical producer batch
//! (`batch.size` defaults to 16 KiB); the `*_small` groups use 100-byte records,
//! where per-record costs dominate.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use weir_protocol::records::{BatchBuilder, BatchView, Batches, Compression};

/// A batch of 1 KiB records, about 16 KiB in all.
fn batch(codec: Compression) -> Bytes {
    let mut b = BatchBuilder::new().compression(codec).producer(1, 0, 0);
    let value: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
    for i in 0..16 {
        let key = format!("key-{i:04}");
        b.append(
            1_700_000_000_000 + i,
            Some(key.as_bytes()),
            Some(&value),
            &[],
        )
        .expect("append");
    }
    b.build().expect("build")
}

fn validate(c: &mut Criterion) {
    let buf = batch(Compression::None);
    let mut g = c.benchmark_group("validate_16k");
    g.throughput(Throughput::Bytes(buf.len() as u64));
    g.bench_function("batch_view_parse", |b| {
        b.iter(|| BatchView::parse(black_box(buf.clone())).expect("valid"))
    });
    g.bench_function("raw_crc32c", |b| {
        b.iter(|| crc32c::crc32c(black_box(&buf[21..])))
    });
    g.bench_function("parse_and_assign_shared", |b| {
        b.iter(|| {
            let mut v = BatchView::parse(black_box(buf.clone())).expect("valid");
            v.assign(1000, 3);
            v
        })
    });
    g.bench_function("parse_and_assign_unique", |b| {
        b.iter_batched(
            || Bytes::from(buf.to_vec()),
            |owned| {
                let mut v = BatchView::parse(owned).expect("valid");
                v.assign(1000, 3);
                v
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn walk(c: &mut Criterion) {
    let mut g = c.benchmark_group("walk_16k");
    for codec in [Compression::None, Compression::Lz4, Compression::Zstd] {
        let v = BatchView::parse(batch(codec)).expect("valid");
        g.throughput(Throughput::Bytes(
            v.uncompressed_records(1 << 20).expect("ok").len() as u64,
        ));
        g.bench_function(format!("{codec:?}").to_lowercase(), |b| {
            b.iter(|| {
                let mut n = 0usize;
                for r in black_box(&v).records(1 << 20).expect("records") {
                    n += r.expect("record").value.map_or(0, |v| v.len());
                }
                n
            })
        });
    }
    g.finish();
}

/// 100-byte values, keyless, as `weir perf produce --record-size 100` sends them:
/// about 150 fit a 16 KiB batch.
const SMALL_VALUE: [u8; 100] = [b'x'; 100];
const SMALL_RECORDS: i64 = 150;

fn small_batch() -> Bytes {
    let mut b = BatchBuilder::new().reserve(16 * 1024);
    for i in 0..SMALL_RECORDS {
        b.append(1_700_000_000_000 + i, None, Some(&SMALL_VALUE), &[])
            .expect("append");
    }
    b.build().expect("build")
}

/// The producer's side: encoding ~150 small records and finishing the batch.
fn build_small(c: &mut Criterion) {
    let mut g = c.benchmark_group("build_16k_small");
    g.throughput(Throughput::Elements(SMALL_RECORDS as u64));
    g.bench_function("append_and_build", |b| b.iter(small_batch));
    g.finish();
}

/// The leader's record-level check of a small-record batch: a full walk (keys
/// and values sliced out) next to the stamps-only walk that validation uses.
fn walk_small(c: &mut Criterion) {
    let v = BatchView::parse(small_batch()).expect("valid");
    let mut g = c.benchmark_group("walk_16k_small");
    g.throughput(Throughput::Elements(SMALL_RECORDS as u64));
    g.bench_function("records", |b| {
        b.iter(|| {
            let mut n = 0i64;
            for r in black_box(&v).records(1 << 20).expect("records") {
                n += r.expect("record").timestamp;
            }
            n
        })
    });
    g.bench_function("stamps", |b| {
        b.iter(|| {
            let mut n = 0i64;
            for r in black_box(&v).records(1 << 20).expect("records").stamps() {
                n += r.expect("record").timestamp;
            }
            n
        })
    });
    g.bench_function("validate_client_records", |b| {
        b.iter(|| {
            black_box(&v)
                .validate_client_records(1 << 20)
                .expect("valid")
        })
    });
    g.finish();
}

fn split(c: &mut Criterion) {
    let one = batch(Compression::None);
    let mut all = BytesMut::new();
    for _ in 0..64 {
        all.extend_from_slice(&one);
    }
    let all = all.freeze();
    let mut g = c.benchmark_group("split_1m");
    g.throughput(Throughput::Bytes(all.len() as u64));
    g.bench_function("batches_64x16k", |b| {
        b.iter(|| {
            Batches::new(black_box(all.clone()))
                .try_fold(0usize, |n, r| r.map(|_| n + 1))
                .expect("valid")
        })
    });
    g.finish();
}

criterion_group!(benches, validate, walk, build_small, walk_small, split);
criterion_main!(benches);
