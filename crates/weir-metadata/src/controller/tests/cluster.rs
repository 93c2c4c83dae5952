//! Cluster controller tests: registration, heartbeats and fencing (driven by a fake
//! clock and explicit ticks), elections, AlterPartition, placement, reassignment,
//! ElectLeaders and producer ids — all on a single metadata store, with brokers
//! registered through the broker-facing API.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use weir_protocol::Uuid;
use weir_types::Clock;

use super::*;
use crate::image::PartitionImage;

/// A clock that moves only when told to.
pub(crate) struct FakeClock {
    base: Instant,
    elapsed_ms: AtomicU64,
}

impl FakeClock {
    pub(crate) fn new() -> Arc<FakeClock> {
        Arc::new(FakeClock {
            base: Instant::now(),
            elapsed_ms: AtomicU64::new(0),
        })
    }

    pub(crate) fn advance(&self, ms: u64) {
        self.elapsed_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now_ms(&self) -> i64 {
        1_700_000_000_000 + self.elapsed_ms.load(Ordering::SeqCst) as i64
    }
    fn monotonic(&self) -> Instant {
        self.base + Duration::from_millis(self.elapsed_ms.load(Ordering::SeqCst))
    }
}

/// A controller without a local broker, on `clock`, that ticks only when told.
pub(crate) fn cluster_config(clock: Arc<FakeClock>) -> ControllerConfig {
    ControllerConfig {
        listeners: vec![],
        validator: Arc::new(AcceptAllConfigs),
        tick_interval: Duration::from_secs(3600),
        clock,
        ..config()
    }
}

pub(crate) fn reg(node: i32, rack: Option<&str>) -> BrokerRegistration {
    BrokerRegistration {
        node: NodeId(node),
        incarnation_id: Uuid([node as u8; 16]),
        listeners: listener(9000 + node as u16),
        rack: rack.map(String::from),
        previous_broker_epoch: -1,
    }
}

pub(crate) fn hb(node: i32, epoch: i64, offset: i64) -> Heartbeat {
    Heartbeat {
        node: NodeId(node),
        broker_epoch: epoch,
        current_metadata_offset: offset,
        want_fence: false,
        want_shut_down: false,
    }
}

/// Registers `node` and heartbeats it caught up; returns its epoch.
pub(crate) async fn join(c: &Controller, node: i32, rack: Option<&str>) -> i64 {
    let epoch = c.register_broker(reg(node, rack)).await.unwrap();
    let reply = c
        .broker_heartbeat(hb(node, epoch, c.image().offset().get()))
        .await
        .unwrap();
    assert!(!reply.is_fenced && reply.is_caught_up, "{node}: {reply:?}");
    epoch
}

/// A heartbeat of a caught-up broker.
pub(crate) async fn beat(c: &Controller, node: i32, epoch: i64) -> HeartbeatReply {
    c.broker_heartbeat(hb(node, epoch, c.image().offset().get()))
        .await
        .unwrap()
}

pub(crate) async fn want_fence(c: &Controller, node: i32, epoch: i64) {
    let h = Heartbeat {
        want_fence: true,
        ..hb(node, epoch, c.image().offset().get())
    };
    assert!(c.broker_heartbeat(h).await.unwrap().is_fenced);
}

pub(crate) fn part(c: &Controller, topic: &str, p: i32) -> PartitionImage {
    c.image().partition(topic, p).unwrap().clone()
}

pub(crate) fn ids(v: &[NodeId]) -> Vec<i32> {
    v.iter().map(|n| n.get()).collect()
}

pub(crate) fn manual(name: &str, lists: &[&[i32]]) -> CreateTopic {
    CreateTopic {
        assignments: lists
            .iter()
            .enumerate()
            .map(|(i, l)| ReplicaAssignment {
                partition_index: i as i32,
                broker_ids: l.to_vec(),
            })
            .collect(),
        ..topic(name, -1, -1)
    }
}

pub(crate) fn alter(
    c: &Controller,
    node: i32,
    epoch: i64,
    topic: &str,
    isr: &[i32],
) -> AlterPartition {
    let image = c.image();
    let p = image.partition(topic, 0).unwrap();
    AlterPartition {
        broker_id: NodeId(node),
        broker_epoch: epoch,
        topic_id: image.topic(topic).unwrap().id,
        partition: 0,
        leader_epoch: p.leader_epoch.get(),
        partition_epoch: p.partition_epoch,
        new_isr: isr.to_vec(),
    }
}

async fn start(dir: &Path, clock: &Arc<FakeClock>) -> Controller {
    Controller::open(dir, cluster_config(Arc::clone(clock))).unwrap()
}

#[tokio::test]
async fn registration_starts_fenced_until_caught_up() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path(), &FakeClock::new()).await;
    let epoch = c.register_broker(reg(1, None)).await.unwrap();
    let b = c.image().broker(NodeId(1)).unwrap().clone();
    assert!(b.fenced);
    assert_eq!(b.epoch, epoch, "the epoch is the registration's offset");
    assert_eq!(c.image().offset().get(), epoch);

    let behind = c.broker_heartbeat(hb(1, epoch, epoch - 1)).await.unwrap();
    assert_eq!(
        behind,
        HeartbeatReply {
            is_caught_up: false,
            is_fenced: true,
            should_shut_down: false
        }
    );
    let fenced_wish = Heartbeat {
        want_fence: true,
        ..hb(1, epoch, epoch)
    };
    assert!(c.broker_heartbeat(fenced_wish).await.unwrap().is_fenced);
    let reply = c.broker_heartbeat(hb(1, epoch, epoch)).await.unwrap();
    assert!(reply.is_caught_up && !reply.is_fenced);
    assert!(!c.image().broker(NodeId(1)).unwrap().fenced);
    // A heartbeat writes nothing once the broker is unfenced.
    let offset = c.image().offset();
    beat(&c, 1, epoch).await;
    assert_eq!(c.image().offset(), offset);
}

#[tokio::test]
async fn registration_epochs_and_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new();
    let c = start(dir.path(), &clock).await;
    let epoch = join(&c, 1, None).await;
    let e2 = join(&c, 2, None).await;
    create_ok(&c, vec![manual("t", &[&[1, 2]])]).await;
    // The same incarnation again (a retry) gets its epoch back and writes nothing.
    let offset = c.image().offset();
    assert_eq!(c.register_broker(reg(1, None)).await.unwrap(), epoch);
    assert_eq!(c.image().offset(), offset);

    // Another incarnation while the old one's session lives is refused.
    let other = BrokerRegistration {
        incarnation_id: Uuid([99; 16]),
        ..reg(1, None)
    };
    let err = c.register_broker(other.clone()).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::DuplicateBrokerRegistration);

    // Once the session expired, the restart registers with a new, fenced epoch.
    clock.advance(9_001);
    beat(&c, 2, e2).await;
    let new_epoch = c.register_broker(other).await.unwrap();
    assert!(new_epoch > epoch);
    assert!(c.image().broker(NodeId(1)).unwrap().fenced);
    // The old incarnation's leadership moved in the same batch, after the
    // registration record, whose offset is the epoch.
    let p = part(&c, "t", 0);
    assert_eq!((p.leader, ids(&p.isr)), (Some(NodeId(2)), vec![2]));
    assert_eq!(c.image().offset().get(), new_epoch + 1);
    // The old epoch is stale now.
    let err = c.broker_heartbeat(hb(1, epoch, 100)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::StaleBrokerEpoch);
    let err = c.broker_heartbeat(hb(7, 1, 100)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::BrokerIdNotRegistered);
}

#[tokio::test]
async fn a_restart_after_a_controlled_shutdown_registers_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new();
    let c = start(dir.path(), &clock).await;
    let epoch = join(&c, 1, None).await;
    join(&c, 2, None).await;
    create_ok(&c, vec![manual("t", &[&[1, 2]])]).await;
    let shutting_down = Heartbeat {
        want_shut_down: true,
        ..hb(1, epoch, 1_000)
    };
    c.broker_heartbeat(shutting_down).await.unwrap();
    assert!(c.image().broker(NodeId(1)).unwrap().in_controlled_shutdown);
    // The new process comes up within the old one's session timeout.
    let restarted = BrokerRegistration {
        incarnation_id: Uuid([42; 16]),
        ..reg(1, None)
    };
    let new_epoch = c.register_broker(restarted).await.unwrap();
    assert!(new_epoch > epoch);
    let broker = c.image().broker(NodeId(1)).unwrap().clone();
    assert!(broker.fenced && !broker.in_controlled_shutdown);
}

#[tokio::test]
async fn session_timeout_fences_and_moves_leadership() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new();
    let c = start(dir.path(), &clock).await;
    let e1 = join(&c, 1, None).await;
    let e2 = join(&c, 2, None).await;
    let e3 = join(&c, 3, None).await;
    create_ok(&c, vec![manual("t", &[&[1, 2, 3]])]).await;
    assert_eq!(part(&c, "t", 0).leader, Some(NodeId(1)));

    clock.advance(5_000);
    beat(&c, 2, e2).await;
    beat(&c, 3, e3).await;
    c.tick().await.unwrap();
    assert!(!c.image().broker(NodeId(1)).unwrap().fenced, "within 9 s");
    clock.advance(4_500);
    c.tick().await.unwrap();
    let image = c.image();
    assert!(image.broker(NodeId(1)).unwrap().fenced);
    assert!(!image.broker(NodeId(2)).unwrap().fenced);
    let p = part(&c, "t", 0);
    assert_eq!(p.leader, Some(NodeId(2)));
    assert_eq!(ids(&p.isr), vec![2, 3]);
    assert_eq!(p.leader_epoch.get(), 1);
    // The fenced broker's heartbeat is still answered, as fenced, and it is
    // unfenced once it heartbeats caught up.
    assert!(!beat(&c, 1, e1).await.is_fenced);
}

#[tokio::test]
async fn only_isr_member_fenced_leaves_partition_leaderless_until_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path(), &FakeClock::new()).await;
    join(&c, 1, None).await;
    let e2 = join(&c, 2, None).await;
    create_ok(
        &c,
        vec![manual("solo", &[&[2]]), manual("pair", &[&[2, 1]])],
    )
    .await;
    let leader_epoch = part(&c, "solo", 0).leader_epoch.get();

    want_fence(&c, 2, e2).await;
    let solo = part(&c, "solo", 0);
    assert_eq!(solo.leader, None, "no eligible ISR member");
    assert!(
        solo.isr.is_empty(),
        "the last ISR member leaves too (ELR on)"
    );
    assert_eq!(ids(&solo.elr), vec![2], "and becomes an eligible leader");
    assert_eq!(ids(&solo.last_known_elr), vec![2], "the last leader");
    assert_eq!(solo.leader_epoch.get(), leader_epoch + 1);
    let pair = part(&c, "pair", 0);
    assert_eq!((pair.leader, ids(&pair.isr)), (Some(NodeId(1)), vec![1]));

    // Back and caught up: it leads the leaderless partition of its ISR again, but
    // takes nothing from a live leader.
    assert!(!beat(&c, 2, e2).await.is_fenced);
    let solo = part(&c, "solo", 0);
    assert_eq!(solo.leader, Some(NodeId(2)));
    assert_eq!(ids(&solo.isr), vec![2]);
    assert!(solo.elr.is_empty() && solo.last_known_elr.is_empty());
    assert_eq!(solo.leader_epoch.get(), leader_epoch + 2);
    assert_eq!(part(&c, "pair", 0).leader, Some(NodeId(1)));
}

#[tokio::test]
async fn never_elects_outside_the_isr_unless_the_topic_allows_it() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path(), &FakeClock::new()).await;
    let e1 = join(&c, 1, None).await;
    let e2 = join(&c, 2, None).await;
    create_ok(&c, vec![manual("t", &[&[1, 2]])]).await;
    c.alter_partition(alter(&c, 1, e1, "t", &[1]))
        .await
        .unwrap();
    want_fence(&c, 1, e1).await;
    let p = part(&c, "t", 0);
    assert_eq!((p.leader, ids(&p.isr)), (None, vec![]), "2 is out of sync");
    assert_eq!(ids(&p.elr), vec![1], "only 1 has every committed record");
    c.tick().await.unwrap();
    assert_eq!(part(&c, "t", 0).leader, None);

    let allow = AlterTopicConfigs {
        topic: "t".into(),
        configs: cfg(&[("unclean.leader.election.enable", "true")]),
    };
    let r = c.alter_configs(vec![allow], false).await.unwrap();
    assert!(r[0].error.is_success());
    c.tick().await.unwrap();
    let p = part(&c, "t", 0);
    assert_eq!((p.leader, ids(&p.isr)), (Some(NodeId(2)), vec![2]));
    assert_eq!(
        p.leader_recovery_state, 1,
        "recovering from an unclean election"
    );
    let _ = e2;
}

#[tokio::test]
async fn controlled_shutdown_moves_leadership_then_allows_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path(), &FakeClock::new()).await;
    let e1 = join(&c, 1, None).await;
    join(&c, 2, None).await;
    create_ok(&c, vec![manual("t", &[&[1, 2]]), manual("only", &[&[1]])]).await;
    let stale = c.image().offset().get();
    let shut = |offset| Heartbeat {
        want_shut_down: true,
        ..hb(1, e1, offset)
    };
    let reply = c.broker_heartbeat(shut(stale)).await.unwrap();
    assert!(!reply.should_shut_down, "it has not seen the change yet");
    let image = c.image();
    assert!(image.broker(NodeId(1)).unwrap().in_controlled_shutdown);
    let t = part(&c, "t", 0);
    assert_eq!((t.leader, ids(&t.isr)), (Some(NodeId(2)), vec![2]));
    let only = part(&c, "only", 0);
    assert_eq!((only.leader, ids(&only.isr)), (None, vec![]));
    assert_eq!(
        ids(&only.elr),
        vec![1],
        "its log is intact: an eligible leader"
    );

    let reply = c
        .broker_heartbeat(shut(c.image().offset().get()))
        .await
        .unwrap();
    assert!(reply.should_shut_down);
    // A broker shutting down is not placed on, and cannot join an ISR.
    let (code, _) = create_code(&c, topic("new", 1, 2)).await;
    assert_eq!(code, ErrorCode::InvalidReplicationFactor);
}

#[tokio::test]
async fn alter_partition_checks_like_kafka() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path(), &FakeClock::new()).await;
    let e1 = join(&c, 1, None).await;
    let e2 = join(&c, 2, None).await;
    let e3 = join(&c, 3, None).await;
    create_ok(&c, vec![manual("t", &[&[1, 2, 3]])]).await;
    let code = |r: std::result::Result<PartitionState, ApiError>| r.unwrap_err().code;

    let shrink = alter(&c, 1, e1, "t", &[1, 2]);
    let state = c.alter_partition(shrink.clone()).await.unwrap();
    assert_eq!(
        state,
        PartitionState {
            leader: 1,
            leader_epoch: 0,
            isr: vec![1, 2],
            partition_epoch: 1
        }
    );
    // Stale partition epoch; one from the future; the same ISR again is a no-op.
    assert_eq!(
        code(c.alter_partition(shrink.clone()).await),
        ErrorCode::InvalidUpdateVersion
    );
    let ahead = AlterPartition {
        partition_epoch: 5,
        ..shrink.clone()
    };
    assert_eq!(
        code(c.alter_partition(ahead).await),
        ErrorCode::NotController
    );
    let same = alter(&c, 1, e1, "t", &[1, 2]);
    assert_eq!(c.alter_partition(same).await.unwrap().partition_epoch, 1);

    let wrong_epoch = alter(&c, 1, e1 + 100, "t", &[1]);
    assert_eq!(
        code(c.alter_partition(wrong_epoch).await),
        ErrorCode::StaleBrokerEpoch
    );
    let unknown_topic = AlterPartition {
        topic_id: Uuid([77; 16]),
        ..alter(&c, 1, e1, "t", &[1])
    };
    assert_eq!(
        code(c.alter_partition(unknown_topic).await),
        ErrorCode::UnknownTopicId
    );
    let unknown_partition = AlterPartition {
        partition: 3,
        ..alter(&c, 1, e1, "t", &[1])
    };
    assert_eq!(
        code(c.alter_partition(unknown_partition).await),
        ErrorCode::UnknownTopicOrPartition
    );
    let not_leader = alter(&c, 2, e2, "t", &[2]);
    assert_eq!(
        code(c.alter_partition(not_leader).await),
        ErrorCode::NotLeaderOrFollower
    );
    let without_leader = alter(&c, 1, e1, "t", &[2]);
    assert_eq!(
        code(c.alter_partition(without_leader).await),
        ErrorCode::InvalidRequest
    );

    want_fence(&c, 3, e3).await;
    let grow = alter(&c, 1, e1, "t", &[1, 2, 3]);
    assert_eq!(
        code(c.alter_partition(grow).await),
        ErrorCode::IneligibleReplica
    );
    // A leader that lost leadership is fenced by its old leader epoch.
    let old = alter(&c, 1, e1, "t", &[1]);
    want_fence(&c, 1, e1).await;
    assert_eq!(part(&c, "t", 0).leader, Some(NodeId(2)));
    assert_eq!(
        code(c.alter_partition(old).await),
        ErrorCode::FencedLeaderEpoch
    );
}

#[tokio::test]
async fn placement_spreads_leaders_over_live_brokers_and_racks() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path(), &FakeClock::new()).await;
    join(&c, 1, Some("a")).await;
    join(&c, 2, Some("a")).await;
    join(&c, 3, Some("b")).await;
    let e4 = join(&c, 4, Some("b")).await;
    create_ok(&c, vec![topic("p", 4, 2)]).await;
    let image = c.image();
    let rack = |n: &NodeId| image.broker(*n).unwrap().rack.clone();
    let t = image.topic("p").unwrap();
    let mut leaders = BTreeSet::new();
    for p in &t.partitions {
        assert_ne!(rack(&p.replicas[0]), rack(&p.replicas[1]), "{p:?}");
        leaders.insert(p.leader.unwrap());
    }
    assert_eq!(leaders.len(), 4, "every broker leads one partition");

    // Successive topics start on different brokers.
    let mut firsts = BTreeSet::new();
    for name in ["x", "y", "z"] {
        create_ok(&c, vec![topic(name, 1, 1)]).await;
        firsts.insert(part(&c, name, 0).leader.unwrap());
    }
    assert_eq!(firsts.len(), 3);

    let (code, _) = create_code(&c, topic("big", 1, 5)).await;
    assert_eq!(code, ErrorCode::InvalidReplicationFactor);
    want_fence(&c, 4, e4).await;
    let (code, _) = create_code(&c, topic("big", 1, 4)).await;
    assert_eq!(code, ErrorCode::InvalidReplicationFactor, "4 is fenced");
    let r = c
        .create_partitions(
            vec![CreatePartitions {
                name: "x".into(),
                count: 4,
                assignments: None,
            }],
            false,
        )
        .await
        .unwrap();
    assert!(r[0].error.is_success());
    assert!(c
        .image()
        .topic("x")
        .unwrap()
        .partitions
        .iter()
        .all(|p| p.replicas[0] != NodeId(4)));
    let (code, _) = create_code(&c, manual("m", &[&[1, 9]])).await;
    assert_eq!(
        code,
        ErrorCode::InvalidReplicaAssignment,
        "9 is not registered"
    );
}

#[tokio::test]
async fn reassignment_completes_when_targets_are_in_sync() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path(), &FakeClock::new()).await;
    let e1 = join(&c, 1, None).await;
    join(&c, 2, None).await;
    join(&c, 3, None).await;
    create_ok(&c, vec![manual("t", &[&[1, 2]])]).await;
    let tp = TopicPartition {
        topic: "t".into(),
        partition: 0,
    };
    let move_to = |r: Option<Vec<i32>>| Reassignment {
        partition: tp.clone(),
        replicas: r,
    };
    let r = c
        .alter_partition_reassignments(vec![move_to(Some(vec![2, 3]))])
        .await
        .unwrap();
    assert!(r[0].error.is_success(), "{r:?}");
    let p = part(&c, "t", 0);
    assert_eq!(ids(&p.replicas), vec![2, 3, 1]);
    assert_eq!(
        (ids(&p.adding_replicas), ids(&p.removing_replicas)),
        (vec![3], vec![1])
    );
    let listed = c.list_partition_reassignments(None).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].adding_replicas, vec![3]);

    // The new replica catches up and the leader adds it to the ISR: done.
    let state = c
        .alter_partition(alter(&c, 1, e1, "t", &[1, 2, 3]))
        .await
        .unwrap();
    assert_eq!((state.leader, state.isr.clone()), (2, vec![2, 3]));
    let p = part(&c, "t", 0);
    assert_eq!(ids(&p.replicas), vec![2, 3]);
    assert!(p.adding_replicas.is_empty() && p.removing_replicas.is_empty());
    assert!(c
        .list_partition_reassignments(None)
        .await
        .unwrap()
        .is_empty());

    // Cancelling goes back to the original replicas.
    let r = c
        .alter_partition_reassignments(vec![move_to(None)])
        .await
        .unwrap();
    assert_eq!(r[0].error.code, ErrorCode::NoReassignmentInProgress);
    c.alter_partition_reassignments(vec![move_to(Some(vec![1, 3]))])
        .await
        .unwrap();
    assert_eq!(ids(&part(&c, "t", 0).replicas), vec![1, 3, 2]);
    c.alter_partition_reassignments(vec![move_to(None)])
        .await
        .unwrap();
    let p = part(&c, "t", 0);
    assert_eq!(
        ids(&p.replicas),
        vec![3, 2],
        "the original set, as Kafka reverts"
    );
    assert_eq!(p.leader, Some(NodeId(2)));
    assert!(p.adding_replicas.is_empty());
    let r = c
        .alter_partition_reassignments(vec![move_to(Some(vec![2, 9]))])
        .await
        .unwrap();
    assert_eq!(r[0].error.code, ErrorCode::InvalidReplicaAssignment);
}

#[tokio::test]
async fn elect_leaders_and_rebalance() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new();
    let config = ControllerConfig {
        leader_imbalance_check_interval: Duration::from_secs(1),
        ..cluster_config(Arc::clone(&clock))
    };
    let c = Controller::open(dir.path(), config).unwrap();
    let e1 = join(&c, 1, None).await;
    let e2 = join(&c, 2, None).await;
    create_ok(&c, vec![manual("t", &[&[1, 2]]), manual("solo", &[&[1]])]).await;
    let tp = |t: &str| TopicPartition {
        topic: t.into(),
        partition: 0,
    };
    let elect = |kind, t: &str| c.elect_leaders(kind, Some(vec![tp(t)]));

    let r = elect(ElectionType::Preferred, "t").await.unwrap();
    assert_eq!(r[0].error.code, ErrorCode::ElectionNotNeeded);
    want_fence(&c, 1, e1).await;
    let r = elect(ElectionType::Preferred, "t").await.unwrap();
    assert_eq!(r[0].error.code, ErrorCode::PreferredLeaderNotAvailable);
    let r = elect(ElectionType::Unclean, "solo").await.unwrap();
    assert_eq!(r[0].error.code, ErrorCode::EligibleLeadersNotAvailable);
    let r = elect(ElectionType::Unclean, "t").await.unwrap();
    assert_eq!(r[0].error.code, ErrorCode::ElectionNotNeeded);
    let r = elect(ElectionType::Preferred, "nope").await.unwrap();
    assert_eq!(r[0].error.code, ErrorCode::UnknownTopicOrPartition);

    // 1 returns; 2 keeps leading until 1 is back in the ISR and an election runs.
    beat(&c, 1, e1).await;
    assert_eq!(part(&c, "t", 0).leader, Some(NodeId(2)));
    c.alter_partition(alter(&c, 2, e2, "t", &[2, 1]))
        .await
        .unwrap();
    let r = elect(ElectionType::Preferred, "t").await.unwrap();
    assert!(r[0].error.is_success());
    assert_eq!(part(&c, "t", 0).leader, Some(NodeId(1)));

    // The periodic rebalance does the same on its own.
    want_fence(&c, 1, e1).await;
    beat(&c, 1, e1).await;
    c.alter_partition(alter(&c, 2, e2, "t", &[2, 1]))
        .await
        .unwrap();
    assert_eq!(part(&c, "t", 0).leader, Some(NodeId(2)));
    c.tick().await.unwrap();
    assert_eq!(part(&c, "t", 0).leader, Some(NodeId(2)), "not due yet");
    clock.advance(1_500);
    beat(&c, 1, e1).await;
    beat(&c, 2, e2).await;
    c.tick().await.unwrap();
    assert_eq!(part(&c, "t", 0).leader, Some(NodeId(1)));
    // Elect for all: the partitions that needed none are left out.
    assert!(c
        .elect_leaders(ElectionType::Preferred, None)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn producer_id_blocks_are_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new();
    let c = start(dir.path(), &clock).await;
    let e1 = join(&c, 1, None).await;
    let a = c.allocate_producer_ids(NodeId(1), e1).await.unwrap();
    let b = c.allocate_producer_ids(NodeId(1), e1).await.unwrap();
    assert_eq!((a.first_id, a.size), (0, PRODUCER_ID_BLOCK_SIZE));
    assert_eq!(b.first_id, 1000);
    let err = c
        .allocate_producer_ids(NodeId(1), e1 + 1)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::StaleBrokerEpoch);
    c.shutdown().await;
    // After a restart (as after a failover) the next block follows the last one.
    let c = start(dir.path(), &clock).await;
    let next = c.allocate_producer_ids(NodeId(1), e1).await.unwrap();
    assert_eq!(next.first_id, 2000);
}

#[tokio::test]
async fn the_local_broker_of_a_single_node_is_never_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new();
    let config = ControllerConfig {
        listeners: listener(9092),
        ..cluster_config(Arc::clone(&clock))
    };
    let c = Controller::open(dir.path(), config).unwrap();
    let e2 = join(&c, 2, None).await;
    clock.advance(60_000);
    c.tick().await.unwrap();
    let image = c.image();
    assert!(
        !image.broker(NodeId(1)).unwrap().fenced,
        "kept alive by its controller"
    );
    assert!(
        image.broker(NodeId(2)).unwrap().fenced,
        "no heartbeat for 60 s"
    );
    let _ = e2;
}

#[tokio::test]
async fn unregistering_a_broker_moves_its_leadership_first() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path(), &FakeClock::new()).await;
    join(&c, 1, None).await;
    join(&c, 2, None).await;
    create_ok(&c, vec![manual("t", &[&[1, 2]])]).await;
    c.unregister_broker(NodeId(1)).await.unwrap();
    assert!(c.image().broker(NodeId(1)).is_none());
    let p = part(&c, "t", 0);
    assert_eq!((p.leader, ids(&p.isr)), (Some(NodeId(2)), vec![2]));
    let err = c.unregister_broker(NodeId(1)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::BrokerIdNotRegistered);
}
