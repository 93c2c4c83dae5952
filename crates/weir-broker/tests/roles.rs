//! Nodes with one role: a `Broker` refuses a controller-only config and a
//! `ControllerNode` any config with the broker role; a controller-only node runs
//! the quorum alone, registers no broker, keeps no partition data, and stops.

use std::time::{Duration, Instant};

use weir_broker::net::CancellationToken;
use weir_broker::{Broker, BrokerConfig, BrokerError, ControllerNode};
use weir_types::NodeId;

/// A config from properties text, over `dir`.
fn config(text: &str, dir: &std::path::Path) -> BrokerConfig {
    let mut config = BrokerConfig::default();
    config
        .apply_properties(text, "test.properties")
        .expect("properties");
    config.log_dirs = vec![dir.to_path_buf()];
    config
}

/// A port that was free a moment ago (a voter's port must be known in advance).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_node_refuses_the_other_kinds_roles() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let controller_only = config(
        &format!(
            "node.id=1\nprocess.roles=controller\nlisteners=CONTROLLER://127.0.0.1:{port}\n\
             controller.quorum.voters=1@127.0.0.1:{port}\n"
        ),
        dir.path(),
    );
    let error = Broker::bind(controller_only).await.unwrap_err();
    assert!(matches!(error, BrokerError::Unsupported(_)), "{error}");
    assert!(error.to_string().contains("ControllerNode"), "{error}");

    let combined = config(
        &format!(
            "node.id=1\nlisteners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:{port}\n\
             controller.quorum.voters=1@127.0.0.1:{port}\n"
        ),
        dir.path(),
    );
    let error = ControllerNode::start(combined).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("not process.roles=broker,controller"),
        "{error}"
    );
    let error = ControllerNode::start(config("", dir.path()))
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("without controller.quorum.voters"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_node_leads_registers_no_broker_and_stops() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let node = ControllerNode::start(config(
        &format!(
            "node.id=1\nprocess.roles=controller\nlisteners=CONTROLLER://127.0.0.1:{port}\n\
             controller.quorum.voters=1@127.0.0.1:{port}\n"
        ),
        dir.path(),
    ))
    .await
    .expect("start");
    assert_eq!(node.local_addr().port(), port);
    let controller = node.controller().clone();
    let deadline = Instant::now() + Duration::from_secs(15);
    while controller.active_controller() != Some(NodeId(1)) {
        assert!(Instant::now() < deadline, "never became active");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Active, bootstrapped, and still no broker: it never registers itself.
    let image = controller.image();
    assert!(image.offset().get() >= 0);
    assert!(image.brokers().is_empty(), "{:?}", image.brokers());

    let shutdown = CancellationToken::new();
    let running = tokio::spawn(node.run(shutdown.clone()));
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), running)
        .await
        .expect("stops in time")
        .expect("join")
        .expect("clean stop");
    // Only the metadata log (and the node's identity) in the data directory.
    let mut entries: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, ["__cluster_metadata-0", "meta.properties"]);
}
