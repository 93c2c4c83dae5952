//! Partition administration in a three-node cluster of `weir server` processes:
//! a preferred leader election that hands leadership back to the first replica
//! after it restarts, and a reassignment that moves a partition's replicas to other
//! brokers while every record written before the move stays readable.
//!
//! `cargo test -p weir-cli --test cluster_admin`.

mod common;

use common::cluster::{TestCluster, SETTLE_TIMEOUT};
use weir_client::admin::{ElectionType, NewTopic, PartitionDescription};
use weir_client::consumer::IsolationLevel;
use weir_client::producer::Acks;
use weir_client::{ErrorCode, Producer, ProducerConfig, ProducerRecord, TopicPartition};

/// Failover in seconds, and no automatic rebalance: the election under test must
/// be the one that moves leadership back.
const SETTINGS: &[&str] = &[
    "broker.session.timeout.ms=3000",
    "broker.heartbeat.interval.ms=500",
    "replica.lag.time.max.ms=5000",
    "replica.fetch.wait.max.ms=200",
    "replica.fetch.backoff.ms=200",
    "auto.leader.rebalance.enable=false",
];

/// Creates `name` with one partition on `replicas` (the first preferred) and
/// waits until they are all in sync.
fn create_assigned(cluster: &TestCluster, name: &str, replicas: &[i32]) {
    let admin = cluster.admin_of(&[]).expect("admin client");
    let mut topic = NewTopic::new(name, -1, -1);
    topic.assignments = vec![(0, replicas.to_vec())];
    let results = cluster
        .block_on(admin.create_topics(vec![topic], false))
        .expect("create topics");
    for (name, result) in results {
        result.unwrap_or_else(|e| panic!("create {name}: {e}"));
    }
    cluster.wait_until(
        &format!("{name}-0 in sync on {replicas:?}"),
        SETTLE_TIMEOUT,
        |c| (sorted(c.isr_of(name, 0)) == sorted(replicas.to_vec())).then_some(()),
    );
}

fn sorted(mut ids: Vec<i32>) -> Vec<i32> {
    ids.sort_unstable();
    ids
}

fn ids(nodes: &[weir_types::NodeId]) -> Vec<i32> {
    nodes.iter().map(|n| n.get()).collect()
}

/// Partition 0 of `topic` as the nodes in `ask` (all running when empty) see it.
fn partition_0(cluster: &TestCluster, topic: &str, ask: &[i32]) -> Option<PartitionDescription> {
    cluster
        .describe(topic, ask)?
        .partitions
        .into_iter()
        .find(|p| p.partition == 0)
}

#[test]
fn preferred_election_hands_leadership_back_to_the_restarted_first_replica() {
    const TOPIC: &str = "preferred";
    let mut cluster = TestCluster::start(3, SETTINGS);
    create_assigned(&cluster, TOPIC, &[1, 2, 3]);
    assert_eq!(cluster.wait_for_leader(TOPIC, 0, None), 1);
    let tp = TopicPartition::new(TOPIC, 0);

    cluster.stop(1);
    let interim = cluster.wait_for_leader(TOPIC, 0, Some(1));
    assert!([2, 3].contains(&interim), "leader {interim}");
    cluster.restart(1);
    cluster.wait_until("node 1 back in the ISR", SETTLE_TIMEOUT, |c| {
        let p = partition_0(c, TOPIC, &[2, 3])?;
        ids(&p.isr).contains(&1).then_some(())
    });
    // Without the election, node 1 stays a follower (no automatic rebalance).
    assert_eq!(cluster.leader_of(TOPIC, 0), Some(interim));

    let admin = cluster.admin_of(&[]).expect("admin client");
    let result = cluster.wait_until("a preferred election", SETTLE_TIMEOUT, |c| {
        let results = c
            .block_on(admin.elect_leaders(ElectionType::Preferred, Some(vec![tp.clone()])))
            .expect("ElectLeaders");
        assert_eq!(results.len(), 1, "{results:?}");
        let (got, result) = results.into_iter().next().expect("one result");
        assert_eq!(got, tp);
        // The controller may not see node 1 as usable for a moment more.
        match result {
            Err(e) if e.code() == Some(ErrorCode::PreferredLeaderNotAvailable) => None,
            other => Some(other),
        }
    });
    result.unwrap_or_else(|e| panic!("preferred election: {e}"));
    cluster.wait_until("node 1 leads again", SETTLE_TIMEOUT, |c| {
        let p = partition_0(c, TOPIC, &[])?;
        (p.leader.map(|l| l.get()) == Some(1)).then_some(())
    });

    // Done: asked again it is not needed, and an election over every partition
    // tries none.
    let again = cluster
        .block_on(admin.elect_leaders(ElectionType::Preferred, Some(vec![tp.clone()])))
        .expect("ElectLeaders");
    let code = again[0].1.as_ref().err().and_then(weir_client::Error::code);
    assert_eq!(code, Some(ErrorCode::ElectionNotNeeded), "{again:?}");
    let all = cluster
        .block_on(admin.elect_leaders(ElectionType::Preferred, None))
        .expect("ElectLeaders for all");
    assert!(all.iter().all(|(p, _)| p.topic != TOPIC), "{all:?}");
}

#[test]
fn reassignment_moves_replicas_and_keeps_every_record() {
    const TOPIC: &str = "moving";
    const RECORDS: usize = 300;
    let cluster = TestCluster::start(3, SETTINGS);
    create_assigned(&cluster, TOPIC, &[1, 2]);
    let tp = TopicPartition::new(TOPIC, 0);

    let mut config = ProducerConfig::new(&cluster.bootstrap());
    config.acks = Acks::All;
    let written: Vec<(String, i64)> = cluster.block_on(async {
        let producer = Producer::new(config).await.expect("producer");
        let mut deliveries = Vec::with_capacity(RECORDS);
        for i in 0..RECORDS {
            let value = format!("before-{i}");
            let record = ProducerRecord::new(TOPIC, value.clone().into_bytes()).partition(0);
            deliveries.push((value, producer.send(record).await.expect("send")));
        }
        let mut out = Vec::with_capacity(RECORDS);
        for (value, delivery) in deliveries {
            out.push((value, delivery.await.expect("acknowledged").offset));
        }
        producer.close().await.expect("close");
        out
    });

    let admin = cluster.admin_of(&[]).expect("admin client");
    let results = cluster
        .block_on(admin.alter_partition_reassignments(vec![(tp.clone(), Some(vec![2, 3]))], false))
        .expect("AlterPartitionReassignments");
    assert_eq!(results.len(), 1);
    results[0]
        .1
        .as_ref()
        .unwrap_or_else(|e| panic!("reassign: {e}"));

    // In progress (3 being added, 1 removed) or done already.
    let listed = cluster
        .block_on(admin.list_partition_reassignments(None))
        .expect("ListPartitionReassignments");
    for (p, r) in &listed {
        assert_eq!(p, &tp);
        assert_eq!(ids(&r.adding_replicas), [3], "{r:?}");
        assert_eq!(ids(&r.removing_replicas), [1], "{r:?}");
        assert_eq!(sorted(ids(&r.replicas)), [1, 2, 3], "{r:?}");
    }

    let done = cluster.wait_until("replicas [2, 3]", SETTLE_TIMEOUT, |c| {
        let p = partition_0(c, TOPIC, &[])?;
        let isr = ids(&p.isr);
        let in_target = !isr.is_empty() && isr.iter().all(|r| [2, 3].contains(r));
        (ids(&p.replicas) == [2, 3] && in_target && p.leader.is_some()).then_some(p)
    });
    assert!(
        [2, 3].contains(&done.leader.map_or(-1, |l| l.get())),
        "{done:?}"
    );
    cluster.wait_until("no reassignment listed", SETTLE_TIMEOUT, |c| {
        let listed = c
            .block_on(admin.list_partition_reassignments(Some(vec![tp.clone()])))
            .ok()?;
        listed.is_empty().then_some(())
    });

    // A new leader learns the high watermark from its followers' fetches, so it
    // may report less than was acknowledged for a moment: wait for all of it.
    let log = read_all(&cluster, &tp, written.len());
    for (value, offset) in &written {
        assert_eq!(
            log.get(usize::try_from(*offset).expect("offset")),
            Some(&(*offset, value.clone())),
            "record {value} at {offset}"
        );
    }
    assert_eq!(log.len(), RECORDS);
}

/// Every record of `tp` up to its end offset, once that is at least `at_least`:
/// `(offset, value)`.
fn read_all(cluster: &TestCluster, tp: &TopicPartition, at_least: usize) -> Vec<(i64, String)> {
    let at_least = i64::try_from(at_least).expect("count");
    cluster
        .read_partition(tp, at_least, IsolationLevel::ReadCommitted)
        .into_iter()
        .map(|(offset, value, _)| (offset, value))
        .collect()
}
