//! weir-metadata's `Controller` on the quorum, end to end: every node runs a
//! controller handle over its own journal; requests made on any node are forwarded
//! to the active one and their changes reach every image.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, DEADLINE};
use weir_metadata::controller::{BrokerRegistration, CreateTopic, Heartbeat};
use weir_metadata::{Controller, ControllerConfig, Endpoint};
use weir_protocol::Uuid;
use weir_types::NodeId;

fn controller(c: &Cluster, id: NodeId) -> Controller {
    let q = &c.nodes[&id];
    let config = ControllerConfig {
        node_id: id,
        default_replication_factor: 3,
        num_partitions: 2,
        ..ControllerConfig::default()
    };
    let controller = Controller::start(Box::new(q.journal()), Some(q.transport()), config).unwrap();
    q.set_forwarded_handler(controller.forwarded_handler());
    controller
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_on_any_node_reach_the_active_controller_and_every_image() {
    let c = Cluster::start(3, 1000).await;
    c.leader().await;
    let controllers: Vec<Controller> = c.nodes.keys().map(|id| controller(&c, *id)).collect();

    // Every broker registers and heartbeats through its own node's handle.
    let mut epochs = Vec::new();
    for (i, ctl) in controllers.iter().enumerate() {
        let node = NodeId(i as i32 + 1);
        let epoch = ctl
            .register_broker(BrokerRegistration {
                node,
                incarnation_id: Uuid([node.get() as u8; 16]),
                listeners: vec![Endpoint {
                    name: "PLAINTEXT".into(),
                    host: "127.0.0.1".into(),
                    port: 9000 + node.get() as u16,
                    security_protocol: 0,
                }],
                rack: None,
                previous_broker_epoch: -1,
            })
            .await
            .unwrap();
        epochs.push((node, epoch));
    }
    let started = Instant::now();
    loop {
        let mut fenced = 0;
        for (ctl, (node, epoch)) in controllers.iter().zip(&epochs) {
            let reply = ctl
                .broker_heartbeat(Heartbeat {
                    node: *node,
                    broker_epoch: *epoch,
                    current_metadata_offset: ctl.image().offset().get(),
                    want_fence: false,
                    want_shut_down: false,
                })
                .await
                .unwrap();
            fenced += usize::from(reply.is_fenced);
        }
        if fenced == 0 {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "brokers stay fenced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A topic created through a follower's handle.
    let leader = c.leader().await;
    let follower = (leader.get() % 3) as usize; // index of a node that is not the leader
    assert_ne!(NodeId(follower as i32 + 1), leader);
    let results = controllers[follower]
        .create_topics(vec![CreateTopic::with_defaults("orders")], false)
        .await
        .unwrap();
    assert!(
        results[0].error.code == weir_types::ErrorCode::None,
        "{results:?}"
    );
    // Read-your-writes: the node that forwarded it has it as soon as the call
    // returns, like the leader.
    assert!(
        controllers[follower].image().topic("orders").is_some(),
        "the forwarding node's image lacks the topic it just created"
    );
    let image = c.nodes[&leader].image();
    let topic = image
        .topic("orders")
        .expect("the leader's image has the topic");
    assert_eq!(topic.partitions.len(), 2);
    assert!(topic.partitions.iter().all(|p| p.replicas.len() == 3));
    let image = c.converged(image.offset().get()).await;
    for q in c.nodes.values() {
        assert_eq!(*q.image(), *image);
    }
    // Broker epochs are offsets of the Raft log: distinct and below the image's.
    let mut seen: Vec<i64> = epochs.iter().map(|(_, e)| *e).collect();
    seen.dedup();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|e| *e > 0 && *e <= image.offset().get()));
    for (node, epoch) in &epochs {
        assert_eq!(image.broker(*node).unwrap().epoch, *epoch);
    }
    for ctl in &controllers {
        ctl.shutdown().await;
    }
    c.shutdown().await;
}
