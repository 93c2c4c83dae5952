//! Operation fuzzing (Redpanda's opfuzz idea): random sequences of appends (plain and
//! idempotent, with retries), truncations, DeleteRecords, high-watermark moves,
//! retention passes, flushes and reopens (clean and crash), checked after every step
//! against a model of what the log must hold.
//!
//! Set `WEIR_OPFUZZ_SEED` to replay one seed, `WEIR_OPFUZZ_ITERATIONS` to run more.

use std::sync::Arc;

use bytes::Bytes;
use weir_log::{Log, LogConfig, OpenHints};
use weir_protocol::records::{BatchBuilder, Batches};
use weir_types::{Clock, LeaderEpoch, Offset, SystemClock};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

#[derive(Debug, Clone)]
struct ModelBatch {
    base: i64,
    last: i64,
    /// The batch after baseOffset/batchLength/partitionLeaderEpoch: stored verbatim.
    payload: Bytes,
    /// (first seq, last seq) for the idempotent producer's batches.
    seq: Option<(i32, i32)>,
}

struct Model {
    batches: Vec<ModelBatch>,
    leo: i64,
    start: i64,
    hw: i64,
}

const PID: i64 = 42;

fn make_batch(rng: &mut Rng, now: i64, seq: Option<i32>) -> (Bytes, usize) {
    let n = 1 + rng.below(4) as usize;
    let mut b = BatchBuilder::new();
    if let Some(seq) = seq {
        b = b.producer(PID, 0, seq);
    }
    for _ in 0..n {
        let value: Vec<u8> = (0..rng.below(200)).map(|_| rng.next() as u8).collect();
        b.append(now, None, Some(&value), &[]).unwrap();
    }
    (b.build().unwrap(), n)
}

fn check(log: &Log, model: &Model, ctx: &str) {
    assert_eq!(log.log_end_offset().get(), model.leo, "{ctx}: log end");
    assert_eq!(
        log.log_start_offset().get(),
        model.start,
        "{ctx}: log start"
    );
    assert_eq!(
        log.high_watermark().get(),
        model.hw,
        "{ctx}: high watermark"
    );
    let want: Vec<&ModelBatch> = model
        .batches
        .iter()
        .filter(|b| b.last >= model.start)
        .collect();
    let mut got = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let info = log.read(offset, 1 << 16, None, true).unwrap();
        let views: Vec<_> = Batches::new(info.records).map(|b| b.unwrap()).collect();
        assert!(!views.is_empty(), "{ctx}: no progress at {offset}");
        offset = Offset(views.last().unwrap().next_offset());
        got.extend(views);
    }
    assert_eq!(got.len(), want.len(), "{ctx}: batch count");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(
            (g.base_offset(), g.last_offset()),
            (w.base, w.last),
            "{ctx}"
        );
        assert_eq!(
            &g.as_bytes()[16..],
            &w.payload[..],
            "{ctx}: payload at {}",
            w.base
        );
    }
}

fn run(seed: u64, ops: usize) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now_ms();
    let mut config = LogConfig {
        segment_bytes: 1500 + rng.below(3000),
        index_interval_bytes: rng.below(600) as u32,
        ..LogConfig::default()
    };
    let mut log = Log::open(
        dir.path(),
        config.clone(),
        clock.clone(),
        OpenHints::default(),
    )
    .unwrap();
    let mut model = Model {
        batches: Vec::new(),
        leo: 0,
        start: 0,
        hw: 0,
    };
    let mut epoch = 0;
    for step in 0..ops {
        let op = rng.below(100);
        let ctx = format!("seed {seed} step {step} op {op}");
        match op {
            0..=44 => {
                // Append, idempotent or not.
                let idempotent = rng.below(2) == 0;
                let next_seq = model
                    .batches
                    .iter()
                    .rev()
                    .find_map(|b| b.seq)
                    .map_or(0, |(_, last)| last + 1);
                let (bytes, n) = make_batch(&mut rng, now, idempotent.then_some(next_seq));
                if rng.below(8) == 0 {
                    epoch += 1;
                }
                let info = log
                    .append_as_leader(bytes.clone(), LeaderEpoch(epoch))
                    .unwrap();
                assert!(!info.duplicate, "{ctx}");
                assert_eq!(info.first_offset.get(), model.leo, "{ctx}");
                let last = model.leo + n as i64 - 1;
                model.batches.push(ModelBatch {
                    base: model.leo,
                    last,
                    payload: bytes.slice(16..),
                    seq: idempotent.then(|| (next_seq, next_seq + n as i32 - 1)),
                });
                model.leo = last + 1;
            }
            45..=51 => {
                // A producer retry of its last batch is a duplicate if still stored.
                let last = model
                    .batches
                    .iter()
                    .rev()
                    .find(|b| b.seq.is_some())
                    .cloned();
                if let Some(b) = last.filter(|b| b.last >= model.start) {
                    let (first_seq, _) = b.seq.unwrap();
                    let mut raw = vec![0u8; 16];
                    raw.extend_from_slice(&b.payload);
                    let len = (raw.len() - 12) as i32;
                    raw[8..12].copy_from_slice(&len.to_be_bytes());
                    let info = log
                        .append_as_leader(Bytes::from(raw), LeaderEpoch(epoch))
                        .unwrap();
                    assert!(info.duplicate, "{ctx}: retry of seq {first_seq}");
                    assert_eq!(
                        (info.first_offset.get(), info.last_offset.get()),
                        (b.base, b.last),
                        "{ctx}"
                    );
                }
            }
            52..=61 => {
                let hw = model.start + rng.below((model.leo - model.start + 1) as u64) as i64;
                log.set_high_watermark(Offset(hw));
                model.hw = hw;
            }
            62..=67 => {
                // Truncate to a batch boundary at or after the log start.
                let candidates: Vec<i64> = model
                    .batches
                    .iter()
                    .map(|b| b.base)
                    .filter(|&b| b >= model.start)
                    .chain([model.leo])
                    .collect();
                let target = candidates[rng.below(candidates.len() as u64) as usize];
                log.truncate_to(Offset(target)).unwrap();
                model.batches.retain(|b| b.last < target);
                model.leo = target;
                model.hw = model.hw.min(target);
            }
            68..=73 => {
                let to = model.start + rng.below((model.hw - model.start + 1) as u64) as i64;
                let start = log.delete_records_before(Offset(to)).unwrap().get();
                assert_eq!(start, to.max(model.start), "{ctx}");
                model.start = start;
            }
            74..=79 => {
                config.retention_bytes = if rng.below(2) == 0 {
                    -1
                } else {
                    rng.below(8000) as i64
                };
                log.set_config(config.clone()).unwrap();
                log.delete_old_segments().unwrap();
                let start = log.log_start_offset().get();
                assert!(
                    start >= model.start && start <= model.hw,
                    "{ctx}: start {start}"
                );
                model.start = start;
            }
            80..=87 => log.flush().unwrap(),
            88..=93 => {
                // Crash and reopen with what the broker's checkpoints would say.
                let hints = OpenHints {
                    recovery_point: Some(log.recovery_point()),
                    log_start_offset: Some(log.log_start_offset()),
                    high_watermark: Some(log.high_watermark()),
                    clean_shutdown: false,
                };
                drop(log);
                log = Log::open(dir.path(), config.clone(), clock.clone(), hints).unwrap();
            }
            _ => {
                let hints = OpenHints {
                    recovery_point: Some(log.log_end_offset()),
                    log_start_offset: Some(log.log_start_offset()),
                    high_watermark: Some(log.high_watermark()),
                    clean_shutdown: true,
                };
                log.close().unwrap();
                log = Log::open(dir.path(), config.clone(), clock.clone(), hints).unwrap();
            }
        }
        check(&log, &model, &ctx);
    }
}

#[test]
fn random_operations_match_the_model() {
    if let Ok(seed) = std::env::var("WEIR_OPFUZZ_SEED") {
        run(seed.parse().expect("WEIR_OPFUZZ_SEED is a u64"), 300);
        return;
    }
    let iterations: u64 = std::env::var("WEIR_OPFUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    for i in 0..iterations {
        run(0x0F_0000 + i, 300);
    }
}
