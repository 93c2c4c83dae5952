//! Learners (broker-only nodes): they join by themselves, apply every committed
//! change, never vote nor count towards a commit, come back at a new address, and
//! leave the membership when their broker is unregistered.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, DEADLINE};
use weir_metadata::{MetadataError, MetadataRecord};
use weir_protocol::messages::{RegisterBrokerRecord, UnregisterBrokerRecord};
use weir_types::NodeId;

/// Every node, learners included, names a leader among the voters and never a
/// learner.
fn assert_voter_leads(c: &Cluster, voters: &[i32]) {
    for (id, q) in &c.nodes {
        if let Some(l) = q.leader() {
            assert!(voters.contains(&l.get()), "node {id} names {l} as leader");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_learner_applies_committed_changes_and_never_votes() {
    let mut c = Cluster::start(3, 1000).await;
    c.create_topic("before", 1).await;
    c.start_learner(NodeId(4)).await;
    let leader = c.leader().await;
    c.wait_learner(leader, NodeId(4)).await;
    let image = c.create_topic("after-join", 2).await;
    // The learner holds what was committed before it joined and after.
    c.converged(image.offset().get()).await;
    let learner = c.nodes[&NodeId(4)].image();
    assert!(learner.topic("before").is_some() && learner.topic("after-join").is_some());
    assert_eq!(*learner, *c.nodes[&leader].image());
    let (voters, learners) = c.nodes[&leader].membership();
    assert_eq!(voters, [NodeId(1), NodeId(2), NodeId(3)]);
    assert_eq!(learners, [NodeId(4)]);

    // Losing the leader elects another voter; the learner follows it.
    c.stop(leader).await;
    let new = c.leader().await;
    assert_ne!(new, leader);
    assert_ne!(new, NodeId(4));
    assert_voter_leads(&c, &[1, 2, 3]);
    let image = c.create_topic("after-failover", 3).await;
    c.converged(image.offset().get()).await;
    assert!(c.nodes[&NodeId(4)]
        .image()
        .topic("after-failover")
        .is_some());
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commits_need_a_majority_of_voters_whatever_the_learners() {
    let mut c = Cluster::start(3, 1000).await;
    c.start_learner(NodeId(4)).await;
    c.start_learner(NodeId(5)).await;
    let leader = c.leader().await;
    c.wait_learner(leader, NodeId(4)).await;
    c.wait_learner(leader, NodeId(5)).await;

    // One voter down: two of three voters still commit.
    let down = if leader == NodeId(1) {
        NodeId(2)
    } else {
        NodeId(1)
    };
    c.stop(down).await;
    let image = c.create_topic("two-voters", 1).await;
    c.converged(image.offset().get()).await;

    // Two voters down: one voter and two learners are a majority of the nodes but
    // not of the voters, so nothing commits and no learner takes over.
    let rest: Vec<NodeId> = [NodeId(1), NodeId(2), NodeId(3)]
        .into_iter()
        .filter(|id| *id != down)
        .collect();
    let (other, last) = (rest[0], rest[1]);
    c.stop(other).await;
    let started = Instant::now();
    let attempt = tokio::time::timeout(
        Duration::from_secs(3),
        c.nodes[&last]
            .journal()
            .append_async(common::topic_change("one-voter", 2)),
    )
    .await;
    match attempt {
        Err(_) | Ok(Err(MetadataError::NotController { .. } | MetadataError::Transport { .. })) => {
        }
        Ok(other) => panic!("a lone voter committed: {other:?}"),
    }
    assert!(started.elapsed() < DEADLINE);
    for learner in [NodeId(4), NodeId(5)] {
        assert!(c.nodes[&learner].image().topic("one-voter").is_none());
        assert_ne!(c.nodes[&learner].leader(), Some(learner));
    }

    // A voter back: a majority of voters again, and the learners follow.
    c.restart(down).await;
    let image = c.create_topic("voters-back", 3).await;
    c.converged(image.offset().get()).await;
    assert!(c.nodes[&NodeId(5)].image().topic("voters-back").is_some());
    assert_voter_leads(&c, &[1, 2, 3]);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_learner_rejoins_at_its_new_address() {
    let mut c = Cluster::start(3, 1000).await;
    let first = c.start_learner(NodeId(4)).await;
    let leader = c.leader().await;
    c.wait_learner(leader, NodeId(4)).await;
    c.create_topic("one", 1).await;
    c.stop(NodeId(4)).await;
    let image = c.create_topic("while-down", 2).await;

    let second = c.start_learner(NodeId(4)).await;
    assert_ne!(first, second);
    c.converged(image.offset().get()).await;
    let image = c.create_topic("after-restart", 3).await;
    c.converged(image.offset().get()).await;
    let learner = c.nodes[&NodeId(4)].image();
    assert!(learner.topic("while-down").is_some() && learner.topic("after-restart").is_some());
    let (_, learners) = c.nodes[&c.leader().await].membership();
    assert_eq!(learners, [NodeId(4)], "one entry for the learner, not two");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unregistered_broker_leaves_the_learners() {
    let mut c = Cluster::start(3, 1000).await;
    c.start_learner(NodeId(4)).await;
    let leader = c.leader().await;
    c.wait_learner(leader, NodeId(4)).await;
    c.append(vec![MetadataRecord::RegisterBroker(RegisterBrokerRecord {
        broker_id: 4,
        broker_epoch: 7,
        fenced: true,
        ..RegisterBrokerRecord::default()
    })])
    .await;
    // Stopped first: a running learner would ask to join again.
    c.stop(NodeId(4)).await;
    c.append(vec![MetadataRecord::UnregisterBroker(
        UnregisterBrokerRecord {
            broker_id: 4,
            broker_epoch: 7,
        },
    )])
    .await;
    let started = Instant::now();
    loop {
        let leader = c.leader().await;
        let (voters, learners) = c.nodes[&leader].membership();
        if learners.is_empty() {
            assert_eq!(voters.len(), 3);
            break;
        }
        assert!(started.elapsed() < DEADLINE, "learner 4 never removed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The quorum carries on.
    c.create_topic("after-removal", 1).await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_learner_that_joins_after_a_purge_catches_up_by_snapshot() {
    let mut c = Cluster::start(3, 5).await;
    let mut last = None;
    for i in 0..20 {
        last = Some(c.create_topic(&format!("t{i}"), 100 + i).await);
    }
    let last = last.expect("created");
    c.start_learner(NodeId(4)).await;
    let image = c.converged(last.offset().get()).await;
    assert_eq!(image.topic_count(), 20);
    assert_eq!(
        *c.nodes[&NodeId(4)].image(),
        *c.nodes[&c.leader().await].image()
    );
    c.shutdown().await;
}
