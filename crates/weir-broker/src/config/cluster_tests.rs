//! Tests of the cluster settings: every key by its Kafka name, and the checks of
//! roles, voters and the controller listener as a whole.

use weir_types::NodeId;

use super::{BrokerConfig, ListenerConfig, ProcessRoles, Setting, VoterAddress};

/// A config built from properties text, or the error text.
fn from(text: &str) -> Result<BrokerConfig, String> {
    let mut config = BrokerConfig::default();
    config
        .apply_properties(text, "test.properties")
        .map_err(|e| e.to_string())?;
    Ok(config)
}

/// The validation error of properties text, or "valid".
fn check(text: &str) -> String {
    match from(text).and_then(|c| c.validate().map_err(|e| e.to_string())) {
        Ok(()) => "valid".to_owned(),
        Err(e) => e,
    }
}

/// A three-voter cluster node 1, with its controller listener.
const NODE_1: &str = "node.id=1\n\
    listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093\n\
    controller.quorum.voters=1@127.0.0.1:9093,2@127.0.0.1:9094,3@127.0.0.1:9095\n";

#[test]
fn every_cluster_key_is_applied_under_its_kafka_name() {
    let text = "process.roles=broker,controller\n\
        controller.quorum.voters=1@a:1,2@b:2\n\
        controller.listener.names=ctl\n\
        broker.rack=rack-a\n\
        broker.session.timeout.ms=6000\n\
        broker.heartbeat.interval.ms=1000\n\
        controlled.shutdown.enable=false\n\
        controller.quorum.election.timeout.ms=700\n\
        controller.quorum.fetch.timeout.ms=1500\n\
        metadata.log.max.snapshot.interval.ms=60000\n\
        metadata.log.max.record.bytes.between.snapshots=1024\n\
        replica.lag.time.max.ms=10000\n\
        replica.fetch.max.bytes=2048\n\
        replica.fetch.response.max.bytes=4096\n\
        replica.fetch.min.bytes=8\n\
        replica.fetch.wait.max.ms=100\n\
        replica.fetch.backoff.ms=50\n\
        replica.socket.timeout.ms=5000\n\
        num.replica.fetchers=2\n\
        min.insync.replicas=2\n\
        unclean.leader.election.enable=true\n\
        auto.leader.rebalance.enable=false\n\
        leader.imbalance.check.interval.seconds=30\n\
        leader.imbalance.per.broker.percentage=20\n";
    let mut config = BrokerConfig::default();
    let warnings = config.apply_properties(text, "test.properties");
    assert_eq!(warnings.map(|w| w.len()).ok(), Some(0), "all keys are used");
    assert_eq!(config.process_roles, Some(ProcessRoles::BOTH));
    assert_eq!(config.controller_quorum_voters.len(), 2);
    assert_eq!(
        config.controller_quorum_voters.get(&NodeId(2)),
        Some(&VoterAddress {
            host: "b".into(),
            port: 2
        })
    );
    assert_eq!(config.controller_listener_names, ["CTL"]);
    assert_eq!(config.broker_rack.as_deref(), Some("rack-a"));
    assert_eq!(config.broker_session_timeout_ms, 6000);
    assert_eq!(config.broker_heartbeat_interval_ms, 1000);
    assert!(!config.controlled_shutdown_enable);
    assert_eq!(config.controller_quorum_election_timeout_ms, 700);
    assert_eq!(config.controller_quorum_fetch_timeout_ms, 1500);
    assert_eq!(config.metadata_log_max_snapshot_interval_ms, 60_000);
    assert_eq!(config.metadata_log_max_record_bytes_between_snapshots, 1024);
    assert_eq!(config.replica_lag_time_max_ms, 10_000);
    assert_eq!(config.replica_fetch_max_bytes, 2048);
    assert_eq!(config.replica_fetch_response_max_bytes, 4096);
    assert_eq!(config.replica_fetch_min_bytes, 8);
    assert_eq!(config.replica_fetch_wait_max_ms, 100);
    assert_eq!(config.replica_fetch_backoff_ms, 50);
    assert_eq!(config.replica_socket_timeout_ms, 5000);
    assert_eq!(config.num_replica_fetchers, 2);
    assert_eq!(config.min_insync_replicas, 2);
    assert!(config.unclean_leader_election_enable);
    assert!(!config.auto_leader_rebalance_enable);
    assert_eq!(config.leader_imbalance_check_interval_seconds, 30);
    assert_eq!(config.leader_imbalance_per_broker_percentage, 20);
}

#[test]
fn defaults_are_kafkas_and_single_node() {
    let c = BrokerConfig::default();
    assert!(c.is_single_node());
    assert_eq!(c.process_roles, None);
    assert_eq!(c.roles(), ProcessRoles::BOTH);
    assert_eq!(c.controller_listener_names, ["CONTROLLER"]);
    assert_eq!(c.controller_listener(), None);
    assert_eq!(c.client_listeners().count(), 1);
    assert_eq!(c.broker_rack, None);
    assert_eq!(
        (c.broker_session_timeout_ms, c.broker_heartbeat_interval_ms),
        (9000, 2000)
    );
    assert_eq!(c.replica_lag_time_max_ms, 30_000);
    assert_eq!(c.replica_fetch_max_bytes, 1_048_576);
    assert_eq!(c.replica_fetch_wait_max_ms, 500);
    assert_eq!(c.replica_fetch_min_bytes, 1);
    assert_eq!(c.replica_fetch_backoff_ms, 1000);
    assert_eq!(c.num_replica_fetchers, 1);
    assert_eq!(c.min_insync_replicas, 1);
    assert!(!c.unclean_leader_election_enable);
    assert!(c.auto_leader_rebalance_enable);
    assert_eq!(c.leader_imbalance_check_interval_seconds, 300);
    assert!(c.controlled_shutdown_enable);
    assert_eq!(
        (
            c.controller_quorum_election_timeout_ms,
            c.controller_quorum_fetch_timeout_ms
        ),
        (1000, 2000)
    );
}

#[test]
fn bad_values_name_the_key() {
    let cases = [
        ("process.roles", "zookeeper"),
        ("controller.quorum.voters", "1@a:1,1@b:2"),
        ("controller.quorum.voters", "one@a:1"),
        ("controller.listener.names", "BAD NAME"),
        ("broker.session.timeout.ms", "-1"),
        ("broker.heartbeat.interval.ms", "soon"),
        ("controlled.shutdown.enable", "maybe"),
        ("controller.quorum.election.timeout.ms", "1s"),
        ("controller.quorum.fetch.timeout.ms", "-5"),
        ("metadata.log.max.snapshot.interval.ms", "x"),
        ("metadata.log.max.record.bytes.between.snapshots", "-1"),
        ("replica.lag.time.max.ms", "x"),
        ("replica.fetch.max.bytes", "1MB"),
        ("replica.fetch.response.max.bytes", "-1"),
        ("replica.fetch.min.bytes", "x"),
        ("replica.fetch.wait.max.ms", "x"),
        ("replica.fetch.backoff.ms", "x"),
        ("replica.socket.timeout.ms", "x"),
        ("num.replica.fetchers", "-1"),
        ("unclean.leader.election.enable", "1"),
        ("auto.leader.rebalance.enable", "yes"),
        ("leader.imbalance.check.interval.seconds", "-1"),
        ("leader.imbalance.per.broker.percentage", "x"),
    ];
    for (key, value) in cases {
        let mut config = BrokerConfig::default();
        let error = config.set(key, value).map(|_| ()).unwrap_err().to_string();
        assert!(
            error.contains(key) && error.contains(value),
            "{key}={value}: {error}"
        );
    }
}

#[test]
fn out_of_range_values_fail_validation_naming_the_key() {
    let cases = [
        ("broker.session.timeout.ms=0", "broker.session.timeout.ms"),
        (
            "broker.heartbeat.interval.ms=9000",
            "broker.heartbeat.interval.ms: 9000 is not below broker.session.timeout.ms",
        ),
        (
            "controller.quorum.election.timeout.ms=0",
            "controller.quorum.election.timeout.ms",
        ),
        (
            "controller.quorum.fetch.timeout.ms=0",
            "controller.quorum.fetch.timeout.ms",
        ),
        (
            "replica.fetch.wait.max.ms=40000",
            "replica.fetch.wait.max.ms: 40000 exceeds replica.lag.time.max.ms",
        ),
        (
            "replica.socket.timeout.ms=100",
            "replica.socket.timeout.ms: 100 is below replica.fetch.wait.max.ms",
        ),
        ("replica.fetch.max.bytes=0", "replica.fetch.max.bytes"),
        (
            "replica.fetch.response.max.bytes=3000000000",
            "replica.fetch.response.max.bytes",
        ),
        ("num.replica.fetchers=0", "num.replica.fetchers"),
        (
            "leader.imbalance.check.interval.seconds=0",
            "leader.imbalance.check.interval.seconds",
        ),
        (
            "leader.imbalance.per.broker.percentage=101",
            "leader.imbalance.per.broker.percentage",
        ),
        ("controller.listener.names=", "controller.listener.names"),
    ];
    for (text, expected) in cases {
        let error = check(text);
        assert!(error.starts_with(expected), "{text}: {error}");
    }
    let blank_rack = BrokerConfig {
        broker_rack: Some(" ".into()),
        ..BrokerConfig::default()
    };
    let error = blank_rack
        .validate()
        .map_err(|e| e.to_string())
        .unwrap_err();
    assert!(error.starts_with("broker.rack"), "{error}");
}

#[test]
fn a_cluster_node_separates_client_and_controller_listeners() {
    let config = from(NODE_1).unwrap_or_default();
    assert_eq!(check(NODE_1), "valid");
    assert!(!config.is_single_node());
    assert_eq!(config.roles(), ProcessRoles::BOTH);
    let controller = config.controller_listener().map(ToString::to_string);
    assert_eq!(controller.as_deref(), Some("CONTROLLER://127.0.0.1:9093"));
    let clients: Vec<String> = config.client_listeners().map(|l| l.to_string()).collect();
    assert_eq!(clients, ["PLAINTEXT://127.0.0.1:9092"]);
    assert!(config.is_controller_listener("controller"));
    assert!(!config.is_controller_listener("PLAINTEXT"));

    // Advertised controller listeners are never handed to clients.
    let text = format!("{NODE_1}advertised.listeners=PLAINTEXT://h:1,CONTROLLER://h:2\n");
    let config = from(&text).unwrap_or_default();
    let advertised: Option<Vec<String>> = config
        .client_advertised_listeners()
        .map(|a| a.iter().map(|l| l.to_string()).collect());
    assert_eq!(advertised, Some(vec!["PLAINTEXT://h:1".to_owned()]));

    // A renamed controller listener.
    let text = "node.id=2\nlisteners=PLAINTEXT://127.0.0.1:0,RAFT://127.0.0.1:9094\n\
                controller.listener.names=RAFT\ncontroller.quorum.voters=2@127.0.0.1:9094\n";
    assert_eq!(check(text), "valid");
}

#[test]
fn cluster_checks_name_the_key_and_the_fix() {
    let cases: [(String, &str); 8] = [
        (
            NODE_1.replace("node.id=1", "node.id=4"),
            "controller.quorum.voters: node.id 4 has the controller role, so it must be one of \
             the voters",
        ),
        (
            NODE_1.replace(",CONTROLLER://127.0.0.1:9093", ""),
            "listeners: the controller role needs a listener named CONTROLLER",
        ),
        (
            NODE_1.replace("CONTROLLER://127.0.0.1:9093", "CONTROLLER://127.0.0.1:0"),
            "listeners: controller listener CONTROLLER://127.0.0.1:0",
        ),
        (
            format!("{NODE_1}process.roles=broker\n"),
            "controller.quorum.voters: node.id 1 is a voter",
        ),
        (
            format!("{NODE_1}process.roles=broker\nnode.id=7\n"),
            "listeners: CONTROLLER://127.0.0.1:9093 is a controller listener, but \
             process.roles=broker",
        ),
        (
            format!("{NODE_1}process.roles=controller\n"),
            "listeners: PLAINTEXT://127.0.0.1:9092 would serve clients",
        ),
        (
            "process.roles=broker\n".to_owned(),
            "controller.quorum.voters: process.roles=broker needs the controller quorum",
        ),
        (
            "listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093\n".to_owned(),
            "controller.quorum.voters: CONTROLLER://127.0.0.1:9093 is a controller listener, \
             but no voters are set",
        ),
    ];
    for (text, expected) in cases {
        let error = check(&text);
        assert!(error.starts_with(expected), "{text}\n-> {error}");
    }
    // Broker-only and controller-only nodes that are set up right.
    let broker = "node.id=7\nprocess.roles=broker\nlisteners=PLAINTEXT://127.0.0.1:9092\n\
                  controller.quorum.voters=1@127.0.0.1:9093\n";
    assert_eq!(check(broker), "valid");
    let controller = "node.id=1\nprocess.roles=controller\nlisteners=CONTROLLER://127.0.0.1:9093\n\
                      controller.quorum.voters=1@127.0.0.1:9093\n";
    assert_eq!(check(controller), "valid");
    // Both roles named explicitly without voters: still the single node.
    assert_eq!(check("process.roles=controller,broker\n"), "valid");
}

#[test]
fn flags_replace_client_and_controller_listeners_separately() {
    let mut config = from(NODE_1).unwrap_or_default();
    let listen = ListenerConfig::parse_list("127.0.0.1:0").unwrap_or_default();
    config.set_client_listeners(listen);
    let names: Vec<String> = config.listeners.iter().map(|l| l.to_string()).collect();
    assert_eq!(
        names,
        ["PLAINTEXT://127.0.0.1:0", "CONTROLLER://127.0.0.1:9093"]
    );
    let controller = ListenerConfig::parse("127.0.0.1:9999");
    config.set_controller_listener(controller.unwrap_or_else(|_| ListenerConfig {
        name: String::new(),
        host: String::new(),
        port: 0,
    }));
    let names: Vec<String> = config.listeners.iter().map(|l| l.to_string()).collect();
    assert_eq!(
        names,
        ["PLAINTEXT://127.0.0.1:0", "CONTROLLER://127.0.0.1:9999"]
    );
    assert_eq!(config.set("broker.rack", "").ok(), Some(Setting::Applied));
    assert_eq!(config.broker_rack, None);
}

#[test]
fn inter_broker_listener_defaults_to_the_first_client_listener() {
    let config = from(NODE_1).unwrap_or_default();
    assert_eq!(config.inter_broker_listener_name(), "PLAINTEXT");
    let text = "listeners=PLAINTEXT://127.0.0.1:9092,LINK2://127.0.0.1:9095\n\
                inter.broker.listener.name=link2\n";
    let config = from(text).unwrap_or_default();
    assert_eq!(config.inter_broker_listener_name(), "LINK2");
    assert_eq!(check(text), "valid");
    let error = check(&format!("{NODE_1}inter.broker.listener.name=CONTROLLER\n"));
    assert!(
        error.starts_with("inter.broker.listener.name: CONTROLLER must name"),
        "{error}"
    );
    let error = check("inter.broker.listener.name=NOPE\n");
    assert!(error.starts_with("inter.broker.listener.name"), "{error}");
}

#[test]
fn cluster_id_takes_kafka_ids_and_refuses_anything_else() {
    for id in ["MkU3OEVBNTcwNTJENDM2Qk", "wL_HrlhMTH-rvnvcAjsA5w"] {
        let config = from(&format!("cluster.id={id}\n")).expect(id);
        assert_eq!(config.cluster_id.as_deref(), Some(id));
    }
    for bad in [
        "short",
        "MkU3OEVBNTcwNTJENDM2QkXX",
        "MkU3OEVBNTcwNTJENDM2Q+",
        "AAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let error = from(&format!("cluster.id={bad}\n")).unwrap_err();
        assert!(error.contains("cluster.id"), "{bad}: {error}");
    }
}
