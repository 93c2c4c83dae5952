//! `weir dev-cluster` as a user runs it: N child `weir server` processes, the
//! bootstrap servers on stdout, Ctrl-C stopping them all, a dying child reported.
//!
//! Until the controller quorum is wired into the broker, each child may still run
//! as a single-node cluster of its own; these tests assert only the process
//! lifecycle, which holds either way.

mod common;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;

use common::{lines_of, next_line, run, wait, weir, PROCESS_TIMEOUT};

/// A running `weir dev-cluster` with its output streams.
struct DevCluster {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    /// `(node id, pid)` from the summary lines.
    pids: Vec<(u32, u32)>,
    /// The client addresses from the bootstrap line.
    bootstrap: Vec<String>,
}

impl DevCluster {
    /// Starts `weir dev-cluster --brokers N --base-port 0 --data-dir DIR` and waits
    /// for its bootstrap line.
    fn start(n: u32, dir: &Path) -> DevCluster {
        DevCluster::start_with(n, &[], dir)
    }

    /// [`DevCluster::start`] with more arguments.
    fn start_with(n: u32, extra: &[&str], dir: &Path) -> DevCluster {
        let mut child = weir()
            .args([
                "dev-cluster",
                "--brokers",
                &n.to_string(),
                "--base-port",
                "0",
            ])
            .args(extra)
            .arg("--data-dir")
            .arg(dir)
            .env("RUST_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn weir dev-cluster");
        let stdout = lines_of(child.stdout.take().expect("stdout"));
        let stderr = lines_of(child.stderr.take().expect("stderr"));
        let mut cluster = DevCluster {
            child,
            stdout,
            stderr,
            pids: Vec::new(),
            bootstrap: Vec::new(),
        };
        loop {
            let line = next_line(&cluster.stdout, PROCESS_TIMEOUT);
            if let Some(list) = line.strip_prefix("bootstrap servers: ") {
                cluster.bootstrap = list.split(',').map(str::to_owned).collect();
                break;
            }
            // `node N: pid P, clients ..., controller ..., log ...`
            let fields: Vec<&str> = line.split([' ', ':', ',']).collect();
            if let ["node", id, "", "pid", pid, ..] = fields.as_slice() {
                let id = id.parse().expect("node id");
                cluster.pids.push((id, pid.parse().expect("pid")));
            }
        }
        cluster
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits for the exit and returns (success, all of stderr).
    fn wait_exit(&mut self) -> (bool, String) {
        let status = wait(&mut self.child, PROCESS_TIMEOUT).expect("dev-cluster exits");
        let mut text = Vec::new();
        while let Ok(line) = self.stderr.recv_timeout(PROCESS_TIMEOUT) {
            text.push(line);
        }
        (status.success(), text.join("\n"))
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Children live in their own process groups; kill them by PID.
        for (_, pid) in &self.pids {
            if alive(*pid) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
}

/// True while a process with this PID exists.
fn alive(pid: u32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn starts_n_nodes_prints_bootstrap_and_ctrl_c_stops_them_all() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cluster = DevCluster::start(3, dir.path());
    assert_eq!(cluster.bootstrap.len(), 3, "{:?}", cluster.bootstrap);
    assert_eq!(
        cluster.pids.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    for (i, addr) in cluster.bootstrap.iter().enumerate() {
        TcpStream::connect(addr).expect("a node accepts clients");
        let log = dir
            .path()
            .join(format!("node-{}", i + 1))
            .join("server.log");
        let text = std::fs::read_to_string(&log).expect("server.log");
        assert!(text.contains("weir broker ready on"), "{text}");
        // Every node answers the admin tools.
        run(&["topic", "list", "--bootstrap-server", addr], "").ok();
    }
    for (_, pid) in &cluster.pids {
        assert!(alive(*pid), "child {pid} runs");
    }

    cluster.signal("INT");
    let (ok, stderr) = cluster.wait_exit();
    assert!(ok, "dev-cluster failed:\n{stderr}");
    assert!(stderr.contains("every node stopped cleanly"), "{stderr}");
    for (id, pid) in &cluster.pids {
        assert!(!alive(*pid), "node {id} (pid {pid}) still runs");
    }
    for addr in &cluster.bootstrap {
        assert!(TcpStream::connect(addr).is_err(), "{addr} still listens");
    }
    for id in 1..=3 {
        let log = dir.path().join(format!("node-{id}")).join("server.log");
        let text = std::fs::read_to_string(&log).expect("server.log");
        assert!(text.contains("weir broker stopped"), "node {id}:\n{text}");
    }
}

#[test]
fn dedicated_controllers_serve_broker_only_nodes_and_stop_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cluster = DevCluster::start_with(2, &["--controllers", "3"], dir.path());
    assert_eq!(cluster.bootstrap.len(), 2, "{:?}", cluster.bootstrap);
    assert_eq!(
        cluster.pids.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    let status = run(
        &["cluster", "status", "--json", "-b", &cluster.bootstrap[0]],
        "",
    )
    .ok()
    .stdout;
    let status: serde_json::Value = serde_json::from_str(status.trim()).expect("JSON");
    let ids: Vec<i64> = status["brokers"]
        .as_array()
        .expect("brokers")
        .iter()
        .filter_map(|b| b["id"].as_i64())
        .collect();
    assert_eq!(
        ids,
        [1, 2],
        "only the broker-only nodes are brokers: {status}"
    );
    run(
        &[
            "topic",
            "create",
            "t",
            "--replication-factor",
            "2",
            "-b",
            &cluster.bootstrap[1],
        ],
        "",
    )
    .ok();

    cluster.signal("INT");
    let (ok, stderr) = cluster.wait_exit();
    assert!(ok, "dev-cluster failed:\n{stderr}");
    assert!(stderr.contains("every node stopped cleanly"), "{stderr}");
    // The brokers stopped first, so a controller confirmed their controlled
    // shutdown.
    for id in 1..=2 {
        let log = dir.path().join(format!("node-{id}")).join("server.log");
        let text = std::fs::read_to_string(&log).expect("server.log");
        assert!(text.contains("weir broker stopped"), "node {id}:\n{text}");
        assert!(!text.contains("not confirmed"), "node {id}:\n{text}");
    }
    for id in 3..=5 {
        let log = dir.path().join(format!("node-{id}")).join("server.log");
        let text = std::fs::read_to_string(&log).expect("server.log");
        assert!(
            text.contains("weir controller ready on"),
            "node {id}:\n{text}"
        );
        assert!(
            text.contains("weir controller stopped"),
            "node {id}:\n{text}"
        );
    }
}

#[test]
fn a_child_that_dies_is_reported_and_the_others_are_stopped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cluster = DevCluster::start(2, dir.path());
    let (_, victim) = cluster.pids[1];
    let status = Command::new("kill")
        .args(["-9", &victim.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let (ok, stderr) = cluster.wait_exit();
    assert!(!ok, "dev-cluster must fail when a node dies:\n{stderr}");
    assert!(stderr.contains("node 2 exited unexpectedly"), "{stderr}");
    assert!(
        stderr.contains("weir broker ready on"),
        "last log lines: {stderr}"
    );
    for (id, pid) in &cluster.pids {
        assert!(!alive(*pid), "node {id} (pid {pid}) still runs");
    }
}

#[test]
fn the_nodes_form_one_cluster_with_replicated_topics() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cluster = DevCluster::start(3, dir.path());
    let status = run(
        &["cluster", "status", "--json", "-b", &cluster.bootstrap[1]],
        "",
    )
    .ok()
    .stdout;
    let status: serde_json::Value = serde_json::from_str(status.trim()).expect("JSON");
    let ids: Vec<i64> = status["brokers"]
        .as_array()
        .expect("brokers")
        .iter()
        .filter_map(|b| b["id"].as_i64())
        .collect();
    assert_eq!(ids, [1, 2, 3], "{status}");
    let controller = status["controller_id"].as_i64().unwrap_or(0);
    assert!((1..=3).contains(&controller), "{status}");

    // Created through one node, replicated on all three, seen from another.
    run(
        &[
            "topic",
            "create",
            "t",
            "--replication-factor",
            "3",
            "-b",
            &cluster.bootstrap[0],
        ],
        "",
    )
    .ok();
    let described = run(
        &[
            "topic",
            "describe",
            "t",
            "--json",
            "-b",
            &cluster.bootstrap[2],
        ],
        "",
    )
    .ok()
    .stdout;
    let described: serde_json::Value = serde_json::from_str(described.trim()).expect("JSON");
    assert_eq!(
        described["partitions"][0]["replicas"]
            .as_array()
            .map(Vec::len),
        Some(3),
        "{described}"
    );

    cluster.signal("INT");
    let (ok, stderr) = cluster.wait_exit();
    assert!(ok, "{stderr}");
}

#[test]
fn a_node_that_cannot_start_fails_the_command_with_its_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    // --override reaches every node; this value makes each refuse to start.
    let out = run(
        &[
            "dev-cluster",
            "--brokers",
            "2",
            "--base-port",
            "0",
            "--data-dir",
            dir.path().to_str().expect("utf-8 temp path"),
            "--override",
            "num.partitions=0",
        ],
        "",
    );
    assert!(!out.status.success(), "{}", out.stderr);
    assert!(out.stderr.contains("exited unexpectedly"), "{}", out.stderr);
    assert!(
        out.stderr.contains("num.partitions: must be at least 1"),
        "the node's last log lines: {}",
        out.stderr
    );
    assert!(!out.stdout.contains("bootstrap servers"), "{}", out.stdout);
}

#[test]
fn sighup_stops_the_nodes_like_ctrl_c() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cluster = DevCluster::start(1, dir.path());
    cluster.signal("HUP");
    let (ok, stderr) = cluster.wait_exit();
    assert!(ok, "{stderr}");
    assert!(stderr.contains("SIGHUP received"), "{stderr}");
    for (id, pid) in &cluster.pids {
        assert!(!alive(*pid), "node {id} (pid {pid}) still runs");
    }
}
