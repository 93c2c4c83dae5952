//! Losing the leader, restarting nodes, catching up by snapshot.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, DEADLINE};
use weir_metadata::MetadataJournal;
use weir_quorum::METADATA_LOG_DIR;
use weir_types::NodeId;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_leader_takes_over_and_the_old_one_catches_up_after_restart() {
    let mut c = Cluster::start(3, 1000).await;
    c.create_topic("before", 1).await;
    let old = c.leader().await;
    c.stop(old).await;

    let started = Instant::now();
    let new = c.leader().await;
    assert_ne!(new, old);
    assert!(started.elapsed() < DEADLINE);
    let image = c.create_topic("after", 2).await;
    assert!(image.topic("before").is_some() && image.topic("after").is_some());

    c.restart(old).await;
    let image = c.converged(image.offset().get()).await;
    // Every node, the restarted one included, holds the same image.
    let images: Vec<_> = c.nodes.values().map(|q| q.image()).collect();
    for i in &images {
        assert_eq!(**i, *images[0]);
    }
    assert!(c.nodes[&old].image().topic("after").is_some());
    assert!(image.topic("after").is_some());
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_that_missed_purged_entries_is_brought_up_by_a_snapshot() {
    let mut c = Cluster::start(3, 5).await;
    let leader = c.leader().await;
    let down = c.nodes.keys().copied().find(|id| *id != leader).unwrap();
    c.stop(down).await;

    let mut last = None;
    for i in 0..30 {
        last = Some(c.create_topic(&format!("t{i}"), 100 + i).await);
    }
    let last = last.unwrap();
    // The running nodes snapshot and purge below the snapshot.
    let started = Instant::now();
    loop {
        let purged: Vec<bool> = c.nodes.keys().map(|id| has_purge(&c, *id)).collect();
        if purged.iter().all(|p| *p) {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "no purge: {purged:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    c.restart(down).await;
    let image = c.converged(last.offset().get()).await;
    assert_eq!(*c.nodes[&down].image(), *c.nodes[&leader].image());
    assert_eq!(image.topic_count(), 30);
    // It got there by a snapshot, and its log now starts past what it missed.
    let dir = c.dir(down).join(METADATA_LOG_DIR);
    assert!(snapshot_files(&dir) >= 1, "no snapshot installed");
    assert!(
        has_purge(&c, down),
        "the log below the snapshot was not purged"
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_restart_keeps_every_committed_change() {
    let mut c = Cluster::start(3, 7).await;
    let mut last = None;
    for i in 0..12 {
        last = Some(c.create_topic(&format!("k{i}"), 200 + i).await);
    }
    let before = c.converged(last.unwrap().offset().get()).await;
    let ids: Vec<NodeId> = c.nodes.keys().copied().collect();
    for id in &ids {
        c.stop(*id).await;
    }
    for id in &ids {
        c.restart(*id).await;
    }
    let after = c.converged(before.offset().get()).await;
    for i in 0..12 {
        assert!(after.topic(&format!("k{i}")).is_some(), "k{i} lost");
    }
    // Equal content; a new leader's blank entry may have moved the offset on.
    assert_eq!(after.to_records(), before.to_records());
    let image = c.create_topic("later", 300).await;
    assert!(image.topic("later").is_some());
    c.shutdown().await;
}

fn has_purge(c: &Cluster, id: NodeId) -> bool {
    c.dir(id)
        .join(METADATA_LOG_DIR)
        .join("quorum-purged")
        .exists()
}

fn snapshot_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".checkpoint")
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_without_a_majority_stops_being_the_active_controller() {
    let mut c = Cluster::start(3, 1000).await;
    c.create_topic("t", 1).await;
    let leader = c.leader().await;
    // Idle, with its followers up, it stays active: heartbeats renew the majority.
    let idle = Instant::now();
    while idle.elapsed() < Duration::from_millis(1500) {
        assert_eq!(
            c.nodes[&leader].leader(),
            Some(leader),
            "active flapped while idle"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let followers: Vec<NodeId> = c.nodes.keys().copied().filter(|id| *id != leader).collect();
    for f in followers {
        c.stop(f).await;
    }
    // A change started now cannot commit: it fails once the leader knows it is cut
    // off, long before the append timeout.
    let journal = c.nodes[&leader].journal();
    let pending =
        tokio::time::timeout(DEADLINE, journal.append_async(common::topic_change("x", 3)))
            .await
            .expect("an append without a majority hangs");
    assert!(
        matches!(
            pending,
            Err(weir_metadata::MetadataError::Transport { .. }
                | weir_metadata::MetadataError::NotController { .. })
        ),
        "{pending:?}"
    );
    let started = Instant::now();
    while c.nodes[&leader].leader() == Some(leader) {
        assert!(
            started.elapsed() < DEADLINE,
            "an isolated leader stays active"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Its journal refuses at once rather than waiting for a commit that cannot come.
    let journal = c.nodes[&leader].journal();
    let before = journal.next_offset();
    let err = journal
        .append_async(common::topic_change("u", 2))
        .await
        .unwrap_err();
    assert!(
        matches!(err, weir_metadata::MetadataError::NotController { .. }),
        "{err}"
    );
    assert_eq!(journal.next_offset(), before);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_voter_that_starts_late_joins_and_catches_up() {
    let (mut c, mut pending) = Cluster::bind(3, 5, 32 << 20).await;
    for id in [NodeId(1), NodeId(2)] {
        let l = pending.remove(&id).unwrap();
        c.start_node(id, l).await;
    }
    // Two of three voters are a majority: they elect and commit on their own.
    let mut last = None;
    for i in 0..12 {
        last = Some(c.create_topic(&format!("early{i}"), 400 + i).await);
    }
    let late = NodeId(3);
    let l = pending.remove(&late).unwrap();
    c.start_node(late, l).await;
    let image = c.converged(last.unwrap().offset().get()).await;
    assert_eq!(*c.nodes[&late].image(), *image);
    assert_eq!(image.topic_count(), 12);
    c.shutdown().await;
}
