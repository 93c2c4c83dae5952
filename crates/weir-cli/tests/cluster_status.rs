//! `weir cluster status` against a single `weir server`: one broker, which is the
//! controller, and nothing under-replicated or offline.

mod common;

use common::Server;
use serde_json::Value;

fn json(text: &str) -> Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("bad JSON ({e}): {text}"))
}

#[test]
fn single_node_status_shows_one_broker_that_is_the_controller() {
    let server = Server::start();
    server.weir("topic create orders --partitions 3", "").ok();

    let status = json(&server.weir("cluster status --json", "").ok().stdout);
    let brokers = status["brokers"].as_array().expect("brokers");
    assert_eq!(brokers.len(), 1, "{status}");
    assert_eq!(brokers[0]["id"], 1);
    let (host, port) = server.addr.rsplit_once(':').expect("host:port");
    assert_eq!(brokers[0]["host"], host);
    assert_eq!(brokers[0]["port"].to_string(), port);
    assert_eq!(brokers[0]["rack"], Value::Null);
    assert_eq!(status["controller_id"], 1);
    assert!(status["cluster_id"].is_string(), "{status}");
    assert!(status["partitions"].as_i64().unwrap_or(0) >= 3, "{status}");
    assert_eq!(status["under_replicated_count"], 0);
    assert_eq!(status["under_replicated"], serde_json::json!([]));
    assert_eq!(status["offline_count"], 0);
    assert_eq!(status["offline"], serde_json::json!([]));

    let text = server.weir("cluster status", "").ok().stdout;
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains("Controller: 1"), "{text}");
    assert!(lines[0].contains("Brokers: 1"), "{text}");
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["BROKER", "ADDRESS", "RACK", "CONTROLLER"]
    );
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["1", server.addr.as_str(), "-", "yes"]
    );
    assert!(text.contains("Under-replicated partitions: 0"), "{text}");
    assert!(text.contains("Offline partitions: 0"), "{text}");
}

#[test]
fn rack_flag_shows_in_status() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = Server::spawn(dir.path(), &["--rack", "rack-a"]);
    server.wait_ready();
    let status = json(&server.weir("cluster status --json", "").ok().stdout);
    assert_eq!(status["brokers"][0]["rack"], "rack-a", "{status}");
}

#[test]
fn status_of_an_unreachable_cluster_fails_with_a_message() {
    let port = common::cluster::free_ports(1)[0];
    let addr = format!("127.0.0.1:{port}");
    let out = common::run(&["cluster", "status", "--bootstrap-server", &addr], "");
    assert!(!out.status.success());
    assert!(out.stderr.contains(&addr), "{}", out.stderr);
}
