//! Three voters elect one leader; changes go through it and reach every image.

mod common;

use common::{topic_change, Cluster};
use weir_metadata::{MetadataError, MetadataJournal};
use weir_types::NodeId;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_elect_one_leader_and_every_image_gets_the_change() {
    let c = Cluster::start(3, 1000).await;
    let leader = c.leader().await;
    let leaders: Vec<NodeId> = c
        .nodes
        .values()
        .filter(|q| q.leader() == Some(q.node_id()))
        .map(|q| q.node_id())
        .collect();
    assert_eq!(leaders, vec![leader], "exactly one node thinks it leads");
    for q in c.nodes.values() {
        assert_eq!(*q.journal().active_controller().borrow(), Some(leader));
    }

    let journal = c.nodes[&leader].journal();
    let next = journal.next_offset();
    let image = c.create_topic("orders", 1).await;
    assert!(image.topic("orders").is_some());
    assert_eq!(
        image.offset(),
        next,
        "the change's records take its log index"
    );
    assert_eq!(journal.next_offset().get(), next.get() + 1);

    let converged = c.converged(image.offset().get()).await;
    for q in c.nodes.values() {
        assert_eq!(*q.image(), *image, "node {}", q.node_id());
    }
    assert_eq!(
        converged.topic("orders").unwrap().configs["retention.ms"],
        "1"
    );

    // A follower refuses, names the leader, and writes nothing.
    let follower = c.nodes.keys().copied().find(|id| *id != leader).unwrap();
    let mut fj = c.nodes[&follower].journal();
    let before = fj.next_offset();
    let err = tokio::task::spawn_blocking(move || fj.append(&topic_change("nope", 2)))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, MetadataError::NotController { leader: Some(l) } if l == leader),
        "{err}"
    );
    assert_eq!(c.nodes[&follower].journal().next_offset(), before);
    assert!(c.nodes[&leader].image().topic("nope").is_none());

    // The blocking append works from a plain OS thread (the controller's) on the
    // leader, and from tokio's blocking pool.
    let mut lj = c.nodes[&leader].journal();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(lj.append(&topic_change("blocking", 3)));
    });
    let image = rx.await.unwrap().unwrap();
    assert!(image.topic("blocking").is_some());
    let mut lj = c.nodes[&leader].journal();
    let image = tokio::task::spawn_blocking(move || lj.append(&topic_change("pooled", 4)))
        .await
        .unwrap()
        .unwrap();
    assert!(image.topic("pooled").is_some());

    // A change that does not apply is refused before it is written.
    let before = c.nodes[&leader].journal().next_offset();
    let err = c.nodes[&leader]
        .journal()
        .append_async(topic_change("orders", 9))
        .await
        .unwrap_err();
    assert!(matches!(err, MetadataError::Replay { .. }), "{err}");
    assert_eq!(c.nodes[&leader].journal().next_offset(), before);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_directory_of_another_cluster_or_node_is_refused() {
    let mut c = Cluster::start(3, 1000).await;
    c.create_topic("t", 1).await;
    c.stop(NodeId(1)).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut other = c.config(NodeId(1));
    other.cluster_id = Some("another-cluster".into());
    let err = weir_quorum::Quorum::start(other, listener)
        .await
        .unwrap_err();
    assert!(
        matches!(err, weir_quorum::QuorumError::Identity { .. }),
        "{err}"
    );
    // Node 2's directory under node 1's id.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut swapped = c.config(NodeId(1));
    swapped.data_dir = c.dir(NodeId(2));
    let err = weir_quorum::Quorum::start(swapped, listener)
        .await
        .unwrap_err();
    assert!(
        matches!(err, weir_quorum::QuorumError::Identity { .. }),
        "{err}"
    );
    // The right directory still starts, and the node catches up.
    c.restart(NodeId(1)).await;
    let image = c.create_topic("u", 2).await;
    c.converged(image.offset().get()).await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_single_voter_quorum_works_and_refuses_changes_too_large_to_replicate() {
    let c = Cluster::start_with(1, 1000, 64 << 10).await;
    let leader = c.leader().await;
    assert_eq!(leader, NodeId(1));
    let journal = c.nodes[&leader].journal();
    let image = c.create_topic("small", 1).await;
    assert!(image.topic("small").is_some());
    let before = journal.next_offset();
    let mut big = Vec::new();
    for i in 0..400u32 {
        big.extend(topic_change(
            &format!("topic-with-a-long-name-{i:05}"),
            1000 + i,
        ));
    }
    let err = journal.append_async(big).await.unwrap_err();
    assert!(matches!(err, MetadataError::TooManyRecords(800)), "{err}");
    assert_eq!(journal.next_offset(), before, "nothing was written");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dropped_node_stops_and_its_directory_and_address_can_be_reused() {
    let mut c = Cluster::start(3, 1000).await;
    c.create_topic("t", 1).await;
    let victim = NodeId(1);
    drop(c.nodes.remove(&victim));
    // Restarting on the same address and directory works once the old node is gone.
    c.restart(victim).await;
    let image = c.create_topic("u", 2).await;
    c.converged(image.offset().get()).await;
    c.shutdown().await;
}
