//! Clusters whose nodes have one role each: dedicated controllers
//! (`process.roles=controller`) and broker-only nodes (`process.roles=broker`),
//! alone or next to combined nodes. The brokers must get the metadata log without
//! voting, the controllers must never be brokers, and failover of either kind must
//! keep every acknowledged record.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::cluster::{Role, TestCluster, FAST, SETTLE_TIMEOUT};
use weir_client::admin::NewTopic;
use weir_client::consumer::IsolationLevel;
use weir_client::producer::Acks;
use weir_client::{Producer, ProducerConfig, ProducerRecord, TopicPartition};
use weir_types::NodeId;

/// Three dedicated controllers (1-3) and two broker-only nodes (4, 5).
const SPLIT: &[Role] = &[
    Role::Controller,
    Role::Controller,
    Role::Controller,
    Role::Broker,
    Role::Broker,
];

/// Creates `topic` (one partition, `rf` replicas, `configs`), retrying while the
/// controller is unavailable (after a failover), and waits for a full ISR.
fn create_topic(cluster: &TestCluster, topic: &str, rf: i16, configs: &[(&str, &str)]) {
    cluster.wait_until(&format!("topic {topic} created"), SETTLE_TIMEOUT, |c| {
        let admin = c.admin_of(&[]).ok()?;
        let mut new = NewTopic::new(topic, 1, rf);
        for (k, v) in configs {
            new = new.config(*k, *v);
        }
        let results = c.block_on(admin.create_topics(vec![new], false)).ok()?;
        results.into_iter().all(|(_, r)| r.is_ok()).then_some(())
    });
    cluster.wait_until(&format!("a full ISR of {topic}"), SETTLE_TIMEOUT, |c| {
        (c.isr_of(topic, 0).len() == rf as usize).then_some(())
    });
}

/// Produces `prefix-0..n` to `topic`-0 with acks=all and returns each value with
/// the offset it was acknowledged at. A send that fails is sent again (it was not
/// acknowledged, so it may or may not be in the log) until [`SETTLE_TIMEOUT`].
fn produce(cluster: &TestCluster, topic: &str, prefix: &str, n: usize) -> Vec<(String, i64)> {
    let mut config = ProducerConfig::new(&cluster.bootstrap());
    config.acks = Acks::All;
    config.enable_idempotence = Some(true);
    let topic = topic.to_owned();
    let prefix = prefix.to_owned();
    cluster.block_on(async move {
        let producer = Producer::new(config).await.expect("producer");
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        let mut acked = Vec::with_capacity(n);
        let mut todo: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
        while !todo.is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} records never acknowledged",
                todo.len()
            );
            let mut pending = Vec::with_capacity(todo.len());
            for value in std::mem::take(&mut todo) {
                let record =
                    ProducerRecord::new(topic.as_str(), value.clone().into_bytes()).partition(0);
                match producer.send(record).await {
                    Ok(delivery) => pending.push((value, delivery)),
                    Err(_) => todo.push(value),
                }
            }
            for (value, delivery) in pending {
                match delivery.await {
                    Ok(meta) => acked.push((value, meta.offset)),
                    Err(_) => todo.push(value),
                }
            }
            if !todo.is_empty() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let _ = producer.close().await;
        acked
    })
}

/// Reads `topic`-0 up to its end offset: offset -> value.
fn read_all(cluster: &TestCluster, topic: &str) -> BTreeMap<i64, String> {
    let tp = TopicPartition::new(topic, 0);
    cluster
        .read_partition(&tp, 0, IsolationLevel::ReadUncommitted)
        .into_iter()
        .map(|(offset, value, _)| (offset, value))
        .collect()
}

/// Every acknowledged record is in the log at the offset it was acknowledged with.
fn verify(cluster: &TestCluster, topic: &str, acked: &[(String, i64)]) {
    let log = read_all(cluster, topic);
    for (value, offset) in acked {
        assert_eq!(
            log.get(offset),
            Some(value),
            "acknowledged {value} at offset {offset} is not there"
        );
    }
}

/// The broker ids DescribeCluster lists, and its controller id.
fn described(cluster: &TestCluster) -> (Vec<i32>, Option<i32>) {
    let admin = cluster.admin_of(&[]).expect("admin");
    let d = cluster
        .block_on(admin.describe_cluster())
        .expect("describe cluster");
    let brokers = d.brokers.iter().map(|b| b.node_id.get()).collect();
    (brokers, d.controller_id.map(NodeId::get))
}

/// The active controller per the controller nodes' logs, once they agree.
fn active_controller(cluster: &mut TestCluster) -> i32 {
    let deadline = std::time::Instant::now() + SETTLE_TIMEOUT;
    loop {
        if let Some(id) = cluster.active_controller_from_logs() {
            return id;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the controllers never agreed on an active controller"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn dedicated_controllers_serve_broker_only_nodes_through_a_controller_failover() {
    let mut cluster = TestCluster::start_roles(SPLIT, FAST);
    // Only the broker-only nodes are brokers, and the controller clients are told
    // of is one they can reach.
    let (mut brokers, controller) = described(&cluster);
    brokers.sort_unstable();
    assert_eq!(brokers, [4, 5]);
    assert!(
        controller.is_some_and(|c| brokers.contains(&c)),
        "{controller:?}"
    );

    create_topic(&cluster, "split", 2, &[("min.insync.replicas", "2")]);
    let replicas = cluster
        .describe("split", &[])
        .and_then(|d| d.partitions.into_iter().next())
        .map(|p| p.replicas)
        .expect("partition 0");
    assert_eq!(replicas.len(), 2);
    assert!(replicas.iter().all(|r| r.get() >= 4), "{replicas:?}");
    let acked = produce(&cluster, "split", "a", 200);
    verify(&cluster, "split", &acked);

    // The active controller dies; another dedicated controller takes over and
    // admin requests forwarded by the brokers work again.
    let active = active_controller(&mut cluster);
    assert!((1..=3).contains(&active), "active controller {active}");
    cluster.kill_9(active);
    create_topic(&cluster, "after-failover", 2, &[]);
    let mut acked_after = produce(&cluster, "split", "b", 100);
    let new = active_controller(&mut cluster);
    assert_ne!(new, active);

    // A controller-only node stops cleanly on SIGTERM.
    let idle = (1..=3)
        .find(|id| *id != active && *id != new)
        .expect("a third controller");
    cluster.stop(idle);
    let (mut brokers, _) = described(&cluster);
    brokers.sort_unstable();
    assert_eq!(brokers, [4, 5]);
    acked_after.extend(acked);
    verify(&cluster, "split", &acked_after);
}

#[test]
fn a_killed_broker_only_leader_fails_over_to_the_other_without_loss() {
    let mut cluster = TestCluster::start_roles(SPLIT, FAST);
    create_topic(&cluster, "fail", 2, &[]);
    let mut acked = produce(&cluster, "fail", "before", 300);
    let leader = cluster.wait_for_leader("fail", 0, None);
    assert!(leader >= 4, "leader {leader}");
    cluster.kill_9(leader);
    let new = cluster.wait_for_leader("fail", 0, Some(leader));
    assert!(new >= 4 && new != leader, "new leader {new}");
    acked.extend(produce(&cluster, "fail", "after", 100));
    verify(&cluster, "fail", &acked);

    // The killed broker comes back (at a new learner port), catches up and
    // rejoins the ISR.
    cluster.restart(leader);
    cluster.wait_until(
        "the restarted broker back in the ISR",
        SETTLE_TIMEOUT,
        |c| c.isr_of("fail", 0).contains(&leader).then_some(()),
    );
    cluster.wait_converged("fail", 0, leader);
    verify(&cluster, "fail", &acked);
}

#[test]
fn a_broker_only_node_joins_combined_nodes_and_hosts_replicas() {
    let roles = [Role::Combined, Role::Combined, Role::Combined, Role::Broker];
    let cluster = TestCluster::start_roles(&roles, FAST);
    let (mut brokers, _) = described(&cluster);
    brokers.sort_unstable();
    assert_eq!(brokers, [1, 2, 3, 4]);
    create_topic(&cluster, "mixed", 4, &[("min.insync.replicas", "4")]);
    let acked = produce(&cluster, "mixed", "m", 100);
    verify(&cluster, "mixed", &acked);
    // The broker-only node answers Metadata from its own image.
    let seen = cluster
        .describe_on(4, "mixed")
        .expect("node 4 knows the topic");
    assert_eq!(seen.partitions[0].replicas.len(), 4);
}
