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

    // The blocking append works from a plain thread on the leader.
    let mut lj = c.nodes[&leader].journal();
    let image = tokio::task::spawn_blocking(move || lj.append(&topic_change("blocking", 3)))
        .await
        .unwrap()
        .unwrap();
    assert!(image.topic("blocking").is_some());

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
