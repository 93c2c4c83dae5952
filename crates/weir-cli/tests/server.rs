//! `weir server` as a user runs it: the built binary, a temp data dir, port 0,
//! signals.

mod common;

use std::net::TcpStream;

use common::{Server, CONTROLLER_READY, READY};

#[test]
fn starts_serves_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut weir = Server::spawn(&data, &[]);
    let addr = weir.wait_ready();
    assert_ne!(addr.port(), 0);
    TcpStream::connect(addr).expect("the broker accepts connections");
    let lock = std::fs::read_to_string(data.join(".lock")).expect("lock file");
    assert_eq!(lock.trim(), weir.id().to_string());

    weir.signal("TERM");
    let status = weir.wait_exit();
    assert!(
        status.success(),
        "exit {status}; stderr:\n{}",
        weir.stderr()
    );
    assert!(
        weir.stderr().contains("weir broker stopped"),
        "{}",
        weir.stderr()
    );
    assert!(
        TcpStream::connect(addr).is_err(),
        "still listening after exit"
    );
}

#[test]
fn second_server_on_the_same_data_dir_refuses_to_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut first = Server::spawn(&data, &[]);
    first.wait_ready();

    let mut second = Server::spawn(&data, &[]);
    let status = second.wait_exit();
    assert!(!status.success());
    let message = second.stderr();
    assert!(
        message.contains("is locked by another weir process"),
        "{message}"
    );
    assert!(message.contains(&data.display().to_string()), "{message}");
    assert!(!message.contains(READY), "{message}");

    // Ctrl-C stops the first cleanly, and the directory is free again.
    first.signal("INT");
    let status = first.wait_exit();
    assert!(
        status.success(),
        "exit {status}; stderr:\n{}",
        first.stderr()
    );
    let mut third = Server::spawn(&data, &[]);
    third.wait_ready();
    third.signal("TERM");
    assert!(third.wait_exit().success());
}

#[test]
fn config_file_and_overrides_apply_and_unknown_keys_only_warn() {
    let dir = tempfile::tempdir().expect("temp dir");
    let properties = dir.path().join("server.properties");
    std::fs::write(
        &properties,
        "# a Kafka server.properties\nnum.network.threads=3\nnum.partitions=4\nno.such.setting=1\n",
    )
    .expect("write properties");
    let config = properties.to_str().expect("utf-8 temp path");
    let mut weir = Server::spawn(
        &dir.path().join("data"),
        &["--config", config, "--override", "log.retention.hours=1"],
    );
    weir.wait_ready();
    let stderr = weir.stderr();
    assert!(
        stderr.contains("num.network.threads is a Kafka setting Weir does not use"),
        "{stderr}"
    );
    assert!(
        stderr.contains("unknown setting no.such.setting"),
        "{stderr}"
    );
    weir.signal("TERM");
    assert!(weir.wait_exit().success());
}

#[test]
fn invalid_settings_fail_with_a_message_that_says_what_to_fix() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let cases = [
        (
            vec!["--override", "num.partitions=many"],
            "invalid value \"many\" for num.partitions",
        ),
        (
            vec!["--override", "num.partitions=0"],
            "num.partitions: must be at least 1",
        ),
        (vec!["--advertise", "0.0.0.0:9092"], "advertised.listeners"),
        (
            vec!["--config", "/no/such/server.properties"],
            "cannot read config file",
        ),
        (
            vec!["--cluster-id", "not-an-id"],
            "invalid value \"not-an-id\" for cluster.id",
        ),
    ];
    for (args, expected) in cases {
        let mut weir = Server::spawn(&data, &args);
        let status = weir.wait_exit();
        assert_eq!(status.code(), Some(1), "{args:?}: {}", weir.stderr());
        assert!(
            weir.stderr().contains(expected),
            "{args:?}: {}",
            weir.stderr()
        );
    }
}

#[test]
fn a_data_dir_formatted_for_another_cluster_id_is_refused() {
    let new_id = || {
        let out = common::run(&["cluster", "new-id"], "").ok();
        out.stdout.trim().to_owned()
    };
    let (first, second) = (new_id(), new_id());
    assert_eq!(first.len(), 22, "{first}");
    assert_ne!(first, second, "new ids are random");
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut weir = Server::spawn(&data, &["--cluster-id", &first]);
    let addr = weir.wait_ready().to_string();
    let status = common::run(
        &["cluster", "status", "--json", "--bootstrap-server", &addr],
        "",
    )
    .ok();
    assert!(status.stdout.contains(&first), "{}", status.stdout);
    weir.signal("TERM");
    assert!(weir.wait_exit().success());

    let mut other = Server::spawn(&data, &["--cluster-id", &second]);
    let exit = other.wait_exit();
    assert!(!exit.success());
    let message = other.stderr();
    assert!(
        message.contains(&first) && message.contains(&second),
        "{message}"
    );
    assert!(!message.contains(READY), "{message}");
    // Without a cluster id the directory's own is used.
    let mut again = Server::spawn(&data, &[]);
    again.wait_ready();
    again.signal("TERM");
    assert!(again.wait_exit().success());
}

#[test]
fn a_quorum_node_formats_with_its_cluster_id_and_keeps_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let port = common::cluster::free_ports(1)[0].to_string();
    let quorum = |id: &str| {
        vec![
            "--node-id".to_owned(),
            "1".to_owned(),
            "--controller-listen".to_owned(),
            format!("127.0.0.1:{port}"),
            "--voters".to_owned(),
            format!("1@127.0.0.1:{port}"),
            "--cluster-id".to_owned(),
            id.to_owned(),
        ]
    };
    let id = "MkU3OEVBNTcwNTJENDM2Qk";
    let mut weir = Server::spawn(
        &data,
        &quorum(id).iter().map(String::as_str).collect::<Vec<_>>(),
    );
    weir.wait_ready();
    weir.signal("TERM");
    assert!(weir.wait_exit().success(), "{}", weir.stderr());
    let props = std::fs::read_to_string(data.join("meta.properties")).expect("meta.properties");
    assert!(props.contains(&format!("cluster.id={id}")), "{props}");

    let other = "AAAAAAAAAAAAAAAAAAAAAQ";
    let mut wrong = Server::spawn(
        &data,
        &quorum(other).iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(!wrong.wait_exit().success());
    let message = wrong.stderr();
    assert!(message.contains(id) && message.contains(other), "{message}");
}

#[test]
fn a_controller_only_node_serves_the_quorum_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = common::cluster::free_ports(1)[0];
    let config = dir.path().join("controller.properties");
    std::fs::write(
        &config,
        format!(
            "process.roles=controller\nnode.id=1\n\
             controller.quorum.voters=1@127.0.0.1:{port}\n\
             listeners=CONTROLLER://127.0.0.1:{port}\n"
        ),
    )
    .expect("write the config");
    let data = dir.path().join("data");
    let mut node = Server::spawn_args(&[
        "--data-dir".to_owned(),
        data.display().to_string(),
        "--config".to_owned(),
        config.display().to_string(),
    ]);
    let ready = node.wait_for(CONTROLLER_READY);
    assert!(ready.contains(&format!("127.0.0.1:{port}")), "{ready}");
    // It becomes the active controller of its one-voter quorum.
    node.wait_for("active_controller=Some(NodeId(1))");
    node.signal("TERM");
    let status = node.wait_exit();
    let message = node.stderr();
    assert!(status.success(), "{message}");
    assert!(message.contains("weir controller stopped"), "{message}");
    assert!(!message.contains(READY), "no broker ran: {message}");
    // No client listener, no partitions: only the metadata log and the lock.
    let mut entries: Vec<String> = std::fs::read_dir(&data)
        .expect("data dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        [".lock", "__cluster_metadata-0", "meta.properties"],
        "{message}"
    );
}
