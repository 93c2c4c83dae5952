//! Eligible leader replicas (KIP-966): the ISR shrinking below
//! `min.insync.replicas` keeps its leavers as eligible leaders, elections fall back
//! on them, unclean restarts and replica removals take them out, and the state
//! survives snapshots and restarts.

use weir_protocol::Uuid;
use weir_types::Offset;

use super::cluster::{
    alter, beat, cluster_config, ids, join, manual, part, reg, want_fence, FakeClock,
};
use super::*;
use crate::delta::MetadataDelta;
use crate::record::MetadataRecord;

/// A cluster controller whose brokers default to `min.insync.replicas` `min_isr`.
fn start(dir: &Path, clock: &Arc<FakeClock>, min_isr: i32) -> Controller {
    let config = ControllerConfig {
        min_insync_replicas: min_isr,
        ..cluster_config(Arc::clone(clock))
    };
    Controller::open(dir, config).unwrap()
}

/// Brokers 1, 2, 3 and topic `t` with one partition on [1, 2, 3] led by 1.
async fn three(c: &Controller) -> [i64; 3] {
    let epochs = [
        join(c, 1, None).await,
        join(c, 2, None).await,
        join(c, 3, None).await,
    ];
    create_ok(c, vec![manual("t", &[&[1, 2, 3]])]).await;
    assert_eq!(part(c, "t", 0).leader, Some(NodeId(1)));
    epochs
}

/// The partition's (leader, ISR, ELR, LastKnownElr) as plain ids.
fn state(c: &Controller, topic: &str) -> (i32, Vec<i32>, Vec<i32>, Vec<i32>) {
    let p = part(c, topic, 0);
    (
        p.leader_id(),
        ids(&p.isr),
        ids(&p.elr),
        ids(&p.last_known_elr),
    )
}

#[tokio::test]
async fn isr_shrink_below_min_isr_moves_leavers_to_elr_and_recovery_clears_it() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path(), &FakeClock::new(), 2);
    let [e1, ..] = three(&c).await;

    // Down to the minimum: no ELR.
    c.alter_partition(alter(&c, 1, e1, "t", &[1, 2]))
        .await
        .unwrap();
    assert_eq!(state(&c, "t"), (1, vec![1, 2], vec![], vec![]));
    // Below it: the leaver holds every committed record (the high watermark has
    // stopped), so it is an eligible leader.
    c.alter_partition(alter(&c, 1, e1, "t", &[1]))
        .await
        .unwrap();
    assert_eq!(state(&c, "t"), (1, vec![1], vec![2], vec![]));
    // A member coming back leaves the ELR even while the ISR is still short
    // (ISR members are never in the ELR)...
    let dir2 = tempfile::tempdir().unwrap();
    let c2 = start(dir2.path(), &FakeClock::new(), 3);
    let [f1, ..] = three(&c2).await;
    c2.alter_partition(alter(&c2, 1, f1, "t", &[1]))
        .await
        .unwrap();
    assert_eq!(state(&c2, "t"), (1, vec![1], vec![2, 3], vec![]));
    c2.alter_partition(alter(&c2, 1, f1, "t", &[1, 3]))
        .await
        .unwrap();
    assert_eq!(state(&c2, "t"), (1, vec![1, 3], vec![2], vec![]));
    // ...and back at the minimum the ELR is cleared.
    c.alter_partition(alter(&c, 1, e1, "t", &[1, 3]))
        .await
        .unwrap();
    assert_eq!(state(&c, "t"), (1, vec![1, 3], vec![], vec![]));
}

#[tokio::test]
async fn a_topic_override_of_min_isr_decides_the_elr() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path(), &FakeClock::new(), 1);
    let [e1, ..] = three(&c).await;
    c.alter_partition(alter(&c, 1, e1, "t", &[1]))
        .await
        .unwrap();
    assert_eq!(
        state(&c, "t"),
        (1, vec![1], vec![], vec![]),
        "broker default 1"
    );

    let mut t = manual("u", &[&[1, 2, 3]]);
    t.configs = vec![("min.insync.replicas".into(), Some("5".into()))];
    create_ok(&c, vec![t]).await;
    let image = c.image();
    let p = image.partition("u", 0).unwrap();
    let req = AlterPartition {
        topic_id: image.topic("u").unwrap().id,
        leader_epoch: p.leader_epoch.get(),
        partition_epoch: p.partition_epoch,
        new_isr: vec![1, 2],
        ..alter(&c, 1, e1, "t", &[])
    };
    c.alter_partition(req).await.unwrap();
    // 5 is capped by the replication factor, 3: two in-sync replicas are short.
    assert_eq!(state(&c, "u"), (1, vec![1, 2], vec![3], vec![]));
}

#[tokio::test]
async fn elects_from_the_elr_when_no_isr_member_may_lead() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path(), &FakeClock::new(), 2);
    let [e1, e2, e3] = three(&c).await;
    want_fence(&c, 3, e3).await;
    assert_eq!(state(&c, "t"), (1, vec![1, 2], vec![], vec![]));
    want_fence(&c, 2, e2).await;
    assert_eq!(state(&c, "t"), (1, vec![1], vec![2], vec![]));
    // 3 comes back, but it left the ISR while the ISR was at the minimum: it may
    // miss committed records and is no candidate.
    beat(&c, 3, e3).await;
    want_fence(&c, 1, e1).await;
    assert_eq!(
        state(&c, "t"),
        (-1, vec![], vec![2, 1], vec![1]),
        "the last leader leaves the ISR too and joins the ELR"
    );
    // Without KIP-966 the partition would wait for 1; 2 has every committed
    // record and leads as soon as it is back, alone in the ISR.
    beat(&c, 2, e2).await;
    assert_eq!(state(&c, "t"), (2, vec![2], vec![1], vec![]));
    // An ISR member is preferred to an ELR member once there is one again.
    c.alter_partition(alter(&c, 2, e2, "t", &[2, 3]))
        .await
        .unwrap();
    assert_eq!(state(&c, "t"), (2, vec![2, 3], vec![], vec![]));
}

#[tokio::test]
async fn an_elr_member_back_from_an_unclean_shutdown_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new();
    let c = start(dir.path(), &clock, 2);
    let [e1, e2, e3] = three(&c).await;
    want_fence(&c, 3, e3).await;
    want_fence(&c, 2, e2).await;
    assert_eq!(state(&c, "t"), (1, vec![1], vec![2], vec![]));

    // Its session over, 2 restarts after a clean shutdown at epoch e2: it stays.
    clock.advance(9_001);
    beat(&c, 1, e1).await;
    let clean = BrokerRegistration {
        incarnation_id: Uuid([20; 16]),
        previous_broker_epoch: e2,
        ..reg(2, None)
    };
    let e2b = c.register_broker(clean).await.unwrap();
    assert_eq!(state(&c, "t"), (1, vec![1], vec![2], vec![]));

    // The next restart comes without the marker (kill -9): out of the ELR.
    clock.advance(9_001);
    beat(&c, 1, e1).await;
    let unclean = BrokerRegistration {
        incarnation_id: Uuid([21; 16]),
        previous_broker_epoch: -1,
        ..reg(2, None)
    };
    let e2c = c.register_broker(unclean).await.unwrap();
    assert!(e2c > e2b);
    assert_eq!(state(&c, "t"), (1, vec![1], vec![], vec![]));
    // A stale epoch (the one before the last registration) is no proof either.
    want_fence(&c, 1, e1).await;
    assert_eq!(state(&c, "t"), (-1, vec![], vec![1], vec![1]));
    clock.advance(9_001);
    let stale = BrokerRegistration {
        incarnation_id: Uuid([10; 16]),
        previous_broker_epoch: e1 - 1,
        ..reg(1, None)
    };
    c.register_broker(stale).await.unwrap();
    assert_eq!(state(&c, "t"), (-1, vec![], vec![], vec![1]));
}

#[tokio::test]
async fn the_last_leader_of_an_emptied_partition_leads_again_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new();
    let c = start(dir.path(), &clock, 1);
    join(&c, 1, None).await;
    let e2 = join(&c, 2, None).await;
    create_ok(&c, vec![manual("solo", &[&[2]])]).await;
    want_fence(&c, 2, e2).await;
    assert_eq!(state(&c, "solo"), (-1, vec![], vec![2], vec![2]));
    // kill -9 and restart: out of the ELR, but still the last known leader...
    clock.advance(9_001);
    let e2b = c
        .register_broker(BrokerRegistration {
            incarnation_id: Uuid([22; 16]),
            ..reg(2, None)
        })
        .await
        .unwrap();
    assert_eq!(state(&c, "solo"), (-1, vec![], vec![], vec![2]));
    // ...so the partition is not offline for good: it leads again once unfenced.
    assert!(!beat(&c, 2, e2b).await.is_fenced);
    assert_eq!(state(&c, "solo"), (2, vec![2], vec![], vec![]));
    assert_eq!(part(&c, "solo", 0).leader_recovery_state, 0);
}

#[tokio::test]
async fn replicas_leaving_the_replica_set_or_the_cluster_leave_the_elr() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path(), &FakeClock::new(), 2);
    let [e1, ..] = three(&c).await;
    create_ok(&c, vec![manual("u", &[&[1, 2, 3]])]).await;
    c.alter_partition(alter(&c, 1, e1, "t", &[1]))
        .await
        .unwrap();
    assert_eq!(state(&c, "t"), (1, vec![1], vec![2, 3], vec![]));
    let r = c
        .alter_partition_reassignments(vec![Reassignment {
            partition: TopicPartition {
                topic: "t".into(),
                partition: 0,
            },
            replicas: Some(vec![1, 3]),
        }])
        .await
        .unwrap();
    assert!(r[0].error.is_success(), "{r:?}");
    // 2 is being removed, but still a replica with its data: still eligible.
    assert_eq!(ids(&part(&c, "t", 0).replicas), vec![1, 3, 2]);
    assert_eq!(state(&c, "t"), (1, vec![1], vec![2, 3], vec![]));
    // Cancelled, then moved to [1] alone, which completes at once: 2 and 3 are no
    // replicas any more.
    let move_to = |r: Option<Vec<i32>>| Reassignment {
        partition: TopicPartition {
            topic: "t".into(),
            partition: 0,
        },
        replicas: r,
    };
    c.alter_partition_reassignments(vec![move_to(None)])
        .await
        .unwrap();
    c.alter_partition_reassignments(vec![move_to(Some(vec![1]))])
        .await
        .unwrap();
    let p = part(&c, "t", 0);
    assert_eq!((ids(&p.replicas), ids(&p.elr)), (vec![1], vec![]));

    // Unregistering a broker takes it out of every ELR.
    let image = c.image();
    let u = image.partition("u", 0).unwrap();
    let req = AlterPartition {
        topic_id: image.topic("u").unwrap().id,
        leader_epoch: u.leader_epoch.get(),
        partition_epoch: u.partition_epoch,
        new_isr: vec![1],
        ..alter(&c, 1, e1, "t", &[])
    };
    c.alter_partition(req).await.unwrap();
    assert_eq!(state(&c, "u"), (1, vec![1], vec![2, 3], vec![]));
    c.unregister_broker(NodeId(3)).await.unwrap();
    assert_eq!(state(&c, "u"), (1, vec![1], vec![2], vec![]));
}

#[tokio::test]
async fn the_elr_survives_snapshot_records_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new();
    let c = start(dir.path(), &clock, 2);
    let [_, e2, e3] = three(&c).await;
    want_fence(&c, 3, e3).await;
    want_fence(&c, 2, e2).await;
    let e1 = c.image().broker(NodeId(1)).unwrap().epoch;
    want_fence(&c, 1, e1).await;
    let expected = (-1, vec![], vec![2, 1], vec![1]);
    assert_eq!(state(&c, "t"), expected);

    // Image -> snapshot records (through their encoding) -> image.
    let image = c.image();
    let mut delta = MetadataDelta::new(Arc::new(MetadataImage::empty(image.cluster_id())));
    for (i, r) in image.to_records().iter().enumerate() {
        let frame = r.encode().unwrap();
        let back = MetadataRecord::decode(frame).unwrap();
        assert_eq!(&back, r);
        delta.replay(Offset(i as i64), 1, 0, &back).unwrap();
    }
    let restored = delta.apply().with_provenance(image.provenance());
    assert_eq!(restored, *image);

    // And the metadata log replayed by a restarted controller.
    c.shutdown().await;
    drop(c);
    let c = start(dir.path(), &clock, 2);
    assert_eq!(state(&c, "t"), expected);
}
