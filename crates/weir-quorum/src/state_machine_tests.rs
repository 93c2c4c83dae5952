//! Applying changes, skipping broken ones the same way everywhere, and snapshots
//! that rebuild the same image.

use openraft::storage::RaftStateMachine;
use openraft::RaftSnapshotBuilder;
use weir_protocol::messages::TopicRecord;
use weir_protocol::Uuid;

use super::*;

fn id(term: u64, index: u64) -> LogId {
    LogId::new(openraft::CommittedLeaderId::new(term, 1), index)
}

fn topic(name: &str, n: u8) -> Vec<u8> {
    MetadataRecord::Topic(TopicRecord {
        name: name.into(),
        topic_id: Uuid([n; 16]),
    })
    .encode()
    .unwrap()
    .to_vec()
}

fn change(term: u64, index: u64, records: Vec<Vec<u8>>) -> Entry {
    Entry {
        log_id: id(term, index),
        payload: EntryPayload::Normal(ControllerChange {
            records,
            time_ms: 5000 + index as i64,
        }),
    }
}

fn history() -> Vec<Entry> {
    let nodes: std::collections::BTreeMap<u64, openraft::BasicNode> =
        [(1, openraft::BasicNode::new("a:1"))].into_iter().collect();
    vec![
        Entry {
            log_id: id(1, 0),
            payload: EntryPayload::Membership(openraft::Membership::new(
                vec![[1u64].into_iter().collect()],
                nodes,
            )),
        },
        Entry {
            log_id: id(2, 1),
            payload: EntryPayload::Blank,
        },
        change(2, 2, vec![topic("a", 1), b"not a record".to_vec()]),
        change(2, 3, vec![topic("b", 2), topic("c", 3)]),
        // Topic "b" exists: the whole change is skipped, "d" included.
        change(2, 4, vec![topic("d", 4), topic("b", 5)]),
        Entry {
            log_id: id(3, 5),
            payload: EntryPayload::Blank,
        },
    ]
}

fn open(dir: &std::path::Path) -> StateMachine {
    StateMachine::open(dir.to_path_buf(), "c1".into())
        .unwrap()
        .0
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_changes_are_skipped_whole_and_the_same_way_on_every_node() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut a, mut images) = StateMachine::open(d1.path().to_path_buf(), "c1".into()).unwrap();
    let mut b = open(d2.path());
    let out = a.apply(history()).await.unwrap();
    let errors: Vec<bool> = out.iter().map(|o| o.error.is_some()).collect();
    assert_eq!(errors, [false, false, true, false, true, false]);
    assert!(
        out[4].error.as_deref().unwrap().contains("already exists"),
        "{out:?}"
    );
    let image = images.borrow_and_update().clone();
    let names: Vec<&str> = image.topics_by_name().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["b", "c"]);
    // The offset is the last applied index; the time is the last change's.
    assert_eq!(image.offset().get(), 5);
    assert_eq!(image.provenance().last_epoch, 3);
    assert_eq!(image.provenance().last_log_time_ms, 5003);
    // Another node applying the same entries (in other batches) ends up equal.
    let h = history();
    b.apply(h[..3].to_vec()).await.unwrap();
    b.apply(h[3..].to_vec()).await.unwrap();
    assert_eq!(*b.image, *image);
    let (applied, membership) = a.applied_state().await.unwrap();
    assert_eq!(applied, Some(id(3, 5)));
    assert_eq!(membership.log_id(), &Some(id(1, 0)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_rebuilds_the_image_when_installed_and_after_a_restart() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = open(d1.path());
    a.apply(history()).await.unwrap();
    let snap = a
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    assert_eq!(snap.meta.last_log_id, Some(id(3, 5)));

    let (mut b, images) = StateMachine::open(d2.path().to_path_buf(), "c1".into()).unwrap();
    b.install_snapshot(&snap.meta, snap.snapshot).await.unwrap();
    assert_eq!(*images.borrow().clone(), *a.image);
    assert_eq!(b.applied_state().await.unwrap().0, Some(id(3, 5)));

    // Restarted from its directory, each node loads the snapshot it holds.
    for dir in [d1.path(), d2.path()] {
        let mut c = open(dir);
        assert_eq!(*c.image, *a.image);
        let current = c.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta.last_log_id, Some(id(3, 5)));
    }
    // Another cluster's directory is refused.
    assert!(matches!(
        StateMachine::open(d1.path().to_path_buf(), "other".into()),
        Err(QuorumError::Identity { .. })
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn damaged_snapshot_bytes_are_refused() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = open(d1.path());
    a.apply(history()).await.unwrap();
    let snap = a
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let mut bytes = snap.snapshot.into_inner();
    let n = bytes.len();
    bytes[n - 1] ^= 0x40;
    let mut b = open(d2.path());
    assert!(b
        .install_snapshot(&snap.meta, Box::new(Cursor::new(bytes)))
        .await
        .is_err());
    assert_eq!(b.image.offset().get(), -1);
}
