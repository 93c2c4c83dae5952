use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use weir_protocol::records::Batches;

use super::*;
use crate::delta::tests::{history, partition, replay_all};
use crate::log::{FileMetadataLog, METADATA_LOG_DIR, SEGMENT_FILE};

fn segment(dir: &Path) -> PathBuf {
    dir.join(METADATA_LOG_DIR).join(SEGMENT_FILE)
}

/// The two local [`MetadataLog`]s; every disk test runs on both.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Partition,
    File,
}

const KINDS: [Kind; 2] = [Kind::Partition, Kind::File];

fn open(dir: &Path, kind: Kind) -> Result<MetadataStore> {
    match kind {
        Kind::Partition => MetadataStore::open(dir, NodeId(1)),
        Kind::File => {
            let log = FileMetadataLog::open(dir)?;
            MetadataStore::open_with_log(dir, NodeId(1), None, Box::new(log))
        }
    }
}

/// Opens a store in `dir` and appends `history()` as three changes.
fn store_with_history(dir: &Path, kind: Kind) -> MetadataStore {
    let mut store = open(dir, kind).unwrap();
    let h = history();
    for chunk in [&h[..7], &h[7..13], &h[13..]] {
        store.append(chunk).unwrap();
    }
    store
}

#[test]
fn restart_replays_to_the_same_image() {
    for kind in KINDS {
        restart(kind);
    }
    // Either log reads what the other wrote: the same segment format.
    let dir = tempfile::tempdir().unwrap();
    let image = Arc::clone(store_with_history(dir.path(), Kind::File).image());
    assert_eq!(**open(dir.path(), Kind::Partition).unwrap().image(), *image);
}

fn restart(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_history(dir.path(), kind);
    let image = Arc::clone(store.image());
    assert_eq!(image.offset(), Offset(15));
    assert_eq!(store.next_offset(), Offset(16));
    drop(store);

    let reopened = open(dir.path(), kind).unwrap();
    assert_eq!(**reopened.image(), *image);
    assert_eq!(reopened.next_offset(), Offset(16));
    // The image equals a direct replay of the same records, apart from log times.
    let direct = replay_all(MetadataImage::empty(image.cluster_id()), &history()).unwrap();
    assert_eq!(direct.topic("orders"), image.topic("orders"));
    assert_eq!(direct.brokers(), image.brokers());
}

#[test]
fn batches_are_kafka_segments_with_one_batch_per_change() {
    for kind in KINDS {
        segment_format(kind);
    }
}

fn segment_format(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with_history(dir.path(), kind));
    let bytes = Bytes::from(fs::read(segment(dir.path())).unwrap());
    let batches: Vec<BatchView> = Batches::new(bytes).map(|b| b.unwrap()).collect();
    let bases: Vec<i64> = batches.iter().map(|b| b.base_offset()).collect();
    assert_eq!(bases, [0, 7, 13]);
    for b in &batches {
        assert_eq!(b.partition_leader_epoch(), SINGLE_NODE_EPOCH);
        for r in b.records(1 << 20).unwrap() {
            let r = r.unwrap();
            assert!(r.key.is_none());
            MetadataRecord::decode(r.value.unwrap()).unwrap();
        }
    }
}

/// Reopens after `damage` to the segment; the valid prefix is the first two changes.
fn recovers_after(damage: impl Fn(&Path, u64)) {
    for kind in KINDS {
        recovers_after_on(kind, &damage);
    }
}

fn recovers_after_on(kind: Kind, damage: &dyn Fn(&Path, u64)) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), kind).unwrap();
    let h = history();
    store.append(&h[..7]).unwrap();
    store.append(&h[7..13]).unwrap();
    let after_two = Arc::clone(store.image());
    let prefix_len = fs::metadata(segment(dir.path())).unwrap().len();
    store.append(&h[13..]).unwrap();
    drop(store);

    damage(&segment(dir.path()), prefix_len);

    let mut store = open(dir.path(), kind).unwrap();
    assert_eq!(
        **store.image(),
        *after_two,
        "{kind:?}: the valid prefix is kept"
    );
    assert_eq!(store.next_offset(), Offset(13));
    assert_eq!(fs::metadata(segment(dir.path())).unwrap().len(), prefix_len);
    // The log takes new changes after recovery, and they survive another restart.
    store.append(&h[13..]).unwrap();
    let image = Arc::clone(store.image());
    drop(store);
    let store = MetadataStore::open(dir.path(), NodeId(1)).unwrap();
    assert_eq!(**store.image(), *image);
    assert_eq!(
        image.topic("tmp").map(|t| t.id),
        Some(crate::delta::tests::id(3))
    );
}

#[test]
fn a_torn_tail_is_truncated_and_the_valid_prefix_kept() {
    recovers_after(|path, _| {
        let len = fs::metadata(path).unwrap().len();
        let f = fs::OpenOptions::new().write(true).open(path).unwrap();
        f.set_len(len - 5).unwrap();
    });
}

#[test]
fn a_corrupt_tail_is_truncated_and_the_valid_prefix_kept() {
    recovers_after(|path, prefix_len| {
        let mut bytes = fs::read(path).unwrap();
        let i = prefix_len as usize + 70; // inside the last batch's records
        bytes[i] ^= 0xff;
        fs::write(path, bytes).unwrap();
    });
}

#[test]
fn garbage_after_the_last_batch_is_truncated() {
    recovers_after(|path, prefix_len| {
        let mut bytes = fs::read(path).unwrap();
        bytes.truncate(prefix_len as usize);
        bytes.extend_from_slice(&[0xde; 40]);
        fs::write(path, bytes).unwrap();
    });
}

#[test]
fn a_change_that_does_not_apply_is_refused_before_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_with_history(dir.path(), Kind::Partition);
    let before = Arc::clone(store.image());
    let len = fs::metadata(segment(dir.path())).unwrap().len();
    let err = store.append(&[partition(99, 0, &[1], 1)]).unwrap_err();
    assert!(
        matches!(err, MetadataError::Replay { offset: 16, .. }),
        "{err}"
    );
    assert_eq!(*store.image(), before);
    assert_eq!(store.next_offset(), Offset(16));
    assert_eq!(fs::metadata(segment(dir.path())).unwrap().len(), len);
    assert!(Arc::ptr_eq(&store.append(&[]).unwrap(), &before));
    let too_many = vec![partition(99, 0, &[1], 1); MAX_RECORDS_PER_BATCH + 1];
    let err = store.append(&too_many).unwrap_err();
    assert!(
        matches!(err, MetadataError::TooManyRecords(10_001)),
        "{err}"
    );
}

#[test]
fn a_non_empty_log_without_meta_properties_does_not_start() {
    for kind in KINDS {
        let dir = tempfile::tempdir().unwrap();
        drop(store_with_history(dir.path(), kind));
        fs::remove_file(dir.path().join("meta.properties")).unwrap();
        // Refused every time: a failed start must not format the directory anew.
        for _ in 0..2 {
            let err = open(dir.path(), kind).unwrap_err();
            assert!(matches!(err, MetadataError::MetaProperties { .. }), "{err}");
        }
    }
}

/// A log in memory whose appends fail once `fail` is set, to test the store above
/// the seam.
struct MemLog {
    batches: Vec<Bytes>,
    next: Offset,
    fail: Arc<AtomicBool>,
}

impl MetadataLog for MemLog {
    fn next_offset(&self) -> Offset {
        self.next
    }
    fn append(&mut self, batch: Bytes) -> Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(MetadataError::LogFailed);
        }
        let view = BatchView::parse(batch.clone())?;
        self.next = Offset(view.next_offset());
        self.batches.push(batch);
        Ok(())
    }
    fn read_all(&mut self) -> Result<Vec<BatchView>> {
        self.batches
            .iter()
            .map(|b| BatchView::parse(b.clone()).map_err(Into::into))
            .collect()
    }
}

#[test]
fn a_failed_append_leaves_the_image_unchanged() {
    let fail = Arc::new(AtomicBool::new(false));
    let log = MemLog {
        batches: vec![],
        next: Offset(0),
        fail: Arc::clone(&fail),
    };
    let mut store = MetadataStore::load(Box::new(log), "c".into(), NodeId(1)).unwrap();
    let h = history();
    store.append(&h[..7]).unwrap();
    let before = Arc::clone(store.image());
    fail.store(true, Ordering::SeqCst);
    assert!(matches!(
        store.append(&h[7..13]),
        Err(MetadataError::LogFailed)
    ));
    assert!(Arc::ptr_eq(store.image(), &before));
    assert_eq!(store.next_offset(), Offset(7));
}
