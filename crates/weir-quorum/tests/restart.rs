//! A voter restarted from its directory keeps its Raft log as it was: no entry it
//! had is rewritten (index 0 included: a restart never initializes again), its
//! vote does not go back, and opening the log does not churn its leader epoch cache
//! (one epoch per term, the first index of that term).
//!
//! The tests here install their own tracing subscriber, which records warnings of
//! the log under the cluster's directory, so this file holds only tests that need it.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use common::Cluster;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;
use weir_protocol::records::Batches;
use weir_quorum::METADATA_LOG_DIR;

/// Warnings of `weir_log` and `weir_quorum`, as `target: message fields`.
static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Records every warning it sees into [`WARNINGS`].
struct Capture;

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                use std::fmt::Write;
                let _ = write!(self.0, " {}={value:?}", field.name());
            }
        }
        let mut fields = Fields(format!("{}:", event.metadata().target()));
        event.record(&mut fields);
        WARNINGS.lock().unwrap().push(fields.0);
    }
}

/// The fmt output of the other tests, plus the capture of warnings.
fn init_tracing_with_capture() {
    let filter = tracing_subscriber::EnvFilter::new(
        std::env::var("RUST_LOG").unwrap_or_else(|_| "weir_quorum=info,openraft=warn".into()),
    );
    let capture = Capture.with_filter(tracing_subscriber::filter::filter_fn(|m| {
        *m.level() == tracing::Level::WARN
            && (m.target().starts_with("weir_log") || m.target().starts_with("weir_quorum"))
    }));
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_filter(filter),
        )
        .with(capture)
        .try_init();
}

/// Warnings that mention `dir`.
fn warnings_about(dir: &Path) -> Vec<String> {
    let dir = dir.display().to_string();
    WARNINGS
        .lock()
        .unwrap()
        .iter()
        .filter(|w| w.contains(&dir))
        .cloned()
        .collect()
}

/// One stored entry: its index (base offset), term (epoch) and exact bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoredBatch {
    index: i64,
    term: i32,
    bytes: Bytes,
}

/// The batches of the Raft log in `dir`, read from its segment files.
fn batches(dir: &Path) -> Vec<StoredBatch> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    segments.sort();
    let mut out = Vec::new();
    for s in segments {
        let bytes = Bytes::from(std::fs::read(&s).unwrap());
        for b in Batches::new(bytes) {
            let b = b.unwrap_or_else(|e| panic!("{}: {e}", s.display()));
            out.push(StoredBatch {
                index: b.base_offset(),
                term: b.partition_leader_epoch(),
                bytes: b.as_bytes().clone(),
            });
        }
    }
    out
}

/// The `(epoch, start offset)` lines of the leader epoch checkpoint in `dir`.
fn epoch_checkpoint(dir: &Path) -> Vec<(i32, i64)> {
    let text = std::fs::read_to_string(dir.join("leader-epoch-checkpoint")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("0"), "checkpoint version");
    let n: usize = lines.next().unwrap().parse().unwrap();
    let entries: Vec<(i32, i64)> = lines
        .map(|l| {
            let (e, o) = l.split_once(' ').unwrap();
            (e.parse().unwrap(), o.parse().unwrap())
        })
        .collect();
    assert_eq!(entries.len(), n, "checkpoint count");
    entries
}

/// The epochs the batches imply: each term and the first index written in it.
fn epochs_of(batches: &[StoredBatch]) -> Vec<(i32, i64)> {
    let mut out: Vec<(i32, i64)> = Vec::new();
    for b in batches {
        if out.last().is_none_or(|(t, _)| *t != b.term) {
            out.push((b.term, b.index));
        }
    }
    out
}

/// The term of the vote stored in `dir` (`quorum-state`: magic, crc, then the
/// postcard vote, whose first field is the term as a varint).
fn vote_term(dir: &Path) -> u64 {
    let bytes = std::fs::read(dir.join("quorum-state")).unwrap();
    let mut term = 0u64;
    for (i, b) in bytes[8..].iter().enumerate() {
        term |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return term;
        }
    }
    panic!("truncated vote");
}

/// Checks what the log in `dir` holds against `before`, what it held when its node
/// stopped: every entry it had is still there, byte for byte (same index, same term),
/// the entries are one per index from 0 with terms that never go down, and the
/// epoch cache is exactly what the entries imply.
fn assert_log_kept(dir: &Path, before: &[StoredBatch]) -> Vec<StoredBatch> {
    let after = batches(dir);
    assert!(
        after.len() >= before.len(),
        "the log lost entries: {} before, {} after",
        before.len(),
        after.len()
    );
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(
            (b.index, b.term),
            (a.index, a.term),
            "entry {} was rewritten with another term",
            b.index
        );
        assert_eq!(b.bytes, a.bytes, "entry {} was rewritten", b.index);
    }
    for (i, a) in after.iter().enumerate() {
        assert_eq!(a.index, i as i64, "entries are not one per index from 0");
    }
    for w in after.windows(2) {
        assert!(w[0].term <= w[1].term, "terms go down at {}", w[1].index);
    }
    assert_eq!(
        epoch_checkpoint(dir),
        epochs_of(&after),
        "the epoch cache does not match the entries"
    );
    after
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_voter_keeps_its_log_and_its_epoch_cache() {
    init_tracing_with_capture();
    // No snapshots: the log keeps every entry from index 0.
    let mut c = Cluster::start(3, 1000).await;
    for i in 0..5 {
        c.create_topic(&format!("a{i}"), i).await;
    }
    // Stop the leader, so the others move to a new term while it is down and it
    // comes back to entries of more than one term.
    let victim = c.leader().await;
    let converged = c.converged(c.nodes[&victim].image().offset().get()).await;
    let dir = c.dir(victim).join(METADATA_LOG_DIR);
    c.stop(victim).await;
    let before = batches(&dir);
    assert!(before.len() >= 6, "{} entries", before.len());
    assert_eq!(before[0].index, 0);
    assert_eq!(before[0].term, 0, "index 0 is the initial membership entry");
    assert_eq!(epoch_checkpoint(&dir), epochs_of(&before));
    assert!(epochs_of(&before).len() >= 2, "one term only");
    let vote_before = vote_term(&dir);
    assert!(converged.topic("a4").is_some());

    let mut last = None;
    for i in 0..5 {
        last = Some(c.create_topic(&format!("b{i}"), 10 + i).await);
    }
    let last = last.unwrap();

    c.restart(victim).await;
    c.converged(last.offset().get()).await;
    assert!(c.nodes[&victim].image().topic("b4").is_some());

    // Checked with the node stopped, so no append races the reads; then it is opened
    // once more, onto a log that now holds entries of several terms.
    c.stop(victim).await;
    let mid = assert_log_kept(&dir, &before);
    assert!(
        epochs_of(&mid).len() > epochs_of(&before).len(),
        "no entry of a later term reached the restarted node"
    );
    let vote_mid = vote_term(&dir);
    assert!(vote_mid >= vote_before, "the vote went back");
    let last = c.create_topic("c", 20).await;
    c.restart(victim).await;
    c.converged(last.offset().get()).await;
    c.stop(victim).await;
    assert_log_kept(&dir, &mid);
    assert!(vote_term(&dir) >= vote_mid, "the vote went back");

    let warnings = warnings_about(&dir);
    assert!(warnings.is_empty(), "opening the log warned: {warnings:#?}");
    c.shutdown().await;
}
