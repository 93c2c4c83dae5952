//! Recovery fuzzing: write a log, damage its files at random points (seeded), reopen
//! it as after a crash, and check that recovery keeps exactly the valid prefix of
//! batches — no fewer (nothing valid is lost before the damage) and no more (nothing
//! damaged, and nothing after the damage, survives) — and that the log then works.
//!
//! Damage: truncating a segment file anywhere, flipping a byte anywhere a validator
//! can see it, appending garbage, deleting a segment file, and scribbling over index
//! files. The one blind spot is by design: partitionLeaderEpoch (bytes 12..16 of a
//! batch) is outside the CRC so leaders can patch it, and a flip there is not
//! detectable; those bytes are not flipped here.
//!
//! Set `WEIR_FUZZ_SEED` to replay one seed, `WEIR_FUZZ_ITERATIONS` to run more.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use weir_log::{Log, LogConfig, OpenHints};
use weir_protocol::records::{BatchBuilder, BatchView, Batches};
use weir_types::{Clock, LeaderEpoch, Offset, SystemClock};

/// xorshift64*: small, seeded, good enough to pick damage.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
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

fn clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

fn random_batch(rng: &mut Rng, now: i64) -> Bytes {
    let n = 1 + rng.below(5) as usize;
    let mut b = BatchBuilder::new();
    for _ in 0..n {
        let value: Vec<u8> = (0..rng.below(120)).map(|_| rng.next() as u8).collect();
        let ts = now - rng.below(1000) as i64;
        b.append(ts, Some(b"k"), Some(&value), &[]).unwrap();
    }
    b.build().unwrap()
}

/// Every stored batch, from the log start, through the public read path.
fn read_all(log: &Log) -> Vec<BatchView> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let info = log.read(offset, 1 << 20, None, true).unwrap();
        let got: Vec<BatchView> = Batches::new(info.records).map(|b| b.unwrap()).collect();
        assert!(!got.is_empty(), "no progress at {offset}");
        offset = Offset(got.last().unwrap().next_offset());
        out.extend(got);
    }
    out
}

/// Where each batch sits: (segment index, byte position in the segment).
fn layout(batches: &[BatchView], bases: &[Offset]) -> Vec<(usize, u64)> {
    let mut out = Vec::new();
    let mut pos = 0u64;
    let mut seg = 0usize;
    for b in batches {
        let s = bases
            .iter()
            .rposition(|base| base.get() <= b.base_offset())
            .unwrap();
        if s != seg {
            seg = s;
            pos = 0;
        }
        out.push((s, pos));
        pos += b.total_len() as u64;
    }
    out
}

fn seg_path(dir: &Path, base: Offset, suffix: &str) -> PathBuf {
    weir_log::segment_file(dir, base, suffix)
}

/// One iteration; returns a description of the damage for failure messages.
fn run_one(seed: u64) {
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 1000 + rng.below(2000),
        index_interval_bytes: rng.below(400) as u32,
        ..LogConfig::default()
    };
    let now = SystemClock.now_ms();
    let mut log = Log::open(dir.path(), config.clone(), clock(), OpenHints::default()).unwrap();
    let mut epoch = 0;
    for _ in 0..1 + rng.below(40) {
        if rng.below(10) == 0 {
            epoch += 1;
        }
        log.append_as_leader(random_batch(&mut rng, now), LeaderEpoch(epoch))
            .unwrap();
    }
    if rng.below(2) == 0 {
        log.flush().unwrap();
    }
    let batches = read_all(&log);
    let bases = log.segment_base_offsets();
    drop(log); // a crash: no close, no clean-shutdown marker

    let places = layout(&batches, &bases);
    // With a recovery point, segments wholly below it are trusted: damage only the
    // segment holding it and later ones (as a crash can only tear unflushed data).
    let (first_damageable, hints) = if rng.below(2) == 0 {
        let j = rng.below(bases.len() as u64) as usize;
        (
            j,
            OpenHints {
                recovery_point: Some(bases[j]),
                ..OpenHints::default()
            },
        )
    } else {
        (0, OpenHints::default())
    };
    let k = first_damageable + rng.below((bases.len() - first_damageable) as u64) as usize;
    let log_file = seg_path(dir.path(), bases[k], ".log");
    let size = fs::metadata(&log_file).unwrap().len();
    let in_seg: Vec<usize> = (0..batches.len()).filter(|&i| places[i].0 == k).collect();
    let before_seg = (0..batches.len()).filter(|&i| places[i].0 < k).count();
    let batch_at = |p: u64| {
        in_seg
            .iter()
            .copied()
            .find(|&i| places[i].1 <= p && p < places[i].1 + batches[i].total_len() as u64)
    };

    // How many batches (in log order) must survive.
    let kind = rng.below(5);
    let (damage, keep) = match kind {
        0 => {
            let p = rng.below(size + 1);
            let f = fs::OpenOptions::new().write(true).open(&log_file).unwrap();
            f.set_len(p).unwrap();
            let whole = in_seg
                .iter()
                .filter(|&&i| places[i].1 + batches[i].total_len() as u64 <= p)
                .count();
            (
                format!("truncate segment {k} at {p}/{size}"),
                before_seg + whole,
            )
        }
        1 if size > 0 => {
            let mut bytes = fs::read(&log_file).unwrap();
            let mut p;
            loop {
                p = rng.below(size);
                let i = batch_at(p).unwrap();
                let rel = p - places[i].1;
                if !(12..16).contains(&rel) {
                    break;
                }
            }
            let mask = 1 + rng.below(255) as u8;
            bytes[p as usize] ^= mask;
            fs::write(&log_file, bytes).unwrap();
            let i = batch_at(p).unwrap();
            (
                format!("flip byte {p} of segment {k} (batch {i}) with {mask:#x}"),
                i,
            )
        }
        2 => {
            let garbage: Vec<u8> = (0..1 + rng.below(100)).map(|_| rng.next() as u8).collect();
            let mut bytes = fs::read(&log_file).unwrap();
            bytes.extend_from_slice(&garbage);
            fs::write(&log_file, bytes).unwrap();
            (
                format!("append {} garbage bytes to segment {k}", garbage.len()),
                before_seg + in_seg.len(),
            )
        }
        3 if k > 0 => {
            fs::remove_file(&log_file).unwrap();
            (format!("delete segment {k}"), before_seg)
        }
        _ => {
            // Indexes are derived data: scribbling on them loses nothing.
            let suffix = if rng.below(2) == 0 {
                ".index"
            } else {
                ".timeindex"
            };
            let path = seg_path(dir.path(), bases[k], suffix);
            let junk: Vec<u8> = (0..rng.below(40)).map(|_| rng.next() as u8).collect();
            fs::write(&path, junk).unwrap();
            (
                format!("scribble on {suffix} of segment {k}"),
                batches.len(),
            )
        }
    };
    let context = format!(
        "seed {seed}: {damage}; {} batches in {} segments",
        batches.len(),
        bases.len()
    );

    let mut log = Log::open(dir.path(), config.clone(), clock(), hints)
        .unwrap_or_else(|e| panic!("{context}: open failed: {e}"));
    let got = read_all(&log);
    let want = &batches[..keep];
    assert_eq!(got.len(), want.len(), "{context}");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.as_bytes(), w.as_bytes(), "{context}");
    }
    let want_end = want.last().map_or_else(
        || {
            if k == 0 {
                bases[0]
            } else {
                log.log_end_offset()
            }
        },
        |b| Offset(b.next_offset()),
    );
    assert_eq!(log.log_end_offset(), want_end, "{context}");

    // The recovered log takes appends at its end and survives another crash.
    let info = log
        .append_as_leader(random_batch(&mut rng, now), LeaderEpoch(epoch + 1))
        .unwrap_or_else(|e| panic!("{context}: append after recovery: {e}"));
    assert_eq!(info.first_offset, want_end, "{context}");
    let after = read_all(&log);
    drop(log);
    let log = Log::open(dir.path(), config, clock(), OpenHints::default())
        .unwrap_or_else(|e| panic!("{context}: second open failed: {e}"));
    assert_eq!(read_all(&log), after, "{context}");
    assert_eq!(
        log.latest_epoch(),
        Some(LeaderEpoch(epoch + 1)),
        "{context}"
    );
}

#[test]
fn recovery_keeps_exactly_the_valid_prefix() {
    if let Ok(seed) = std::env::var("WEIR_FUZZ_SEED") {
        run_one(seed.parse().expect("WEIR_FUZZ_SEED is a u64"));
        return;
    }
    let iterations: u64 = std::env::var("WEIR_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    for i in 0..iterations {
        run_one(0x5EED_0000 + i);
    }
}
