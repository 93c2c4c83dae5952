//! `weir dev-cluster`: a local cluster in one command, one `weir server` child
//! process per node.
//!
//! Node N (1..=N) gets `node.id` N, a client listener on `BASE+N-1`, a controller
//! listener on `CONTROLLER_BASE+N-1` (default `BASE+100`), both roles, and its data
//! and `server.log` in `DIR/node-N`. The voters list names every node, so the
//! children form one controller quorum. With `--controllers C` the roles are split
//! as in a production KRaft cluster: nodes 1..=N are broker-only (client ports as
//! above, no controller listener) and nodes N+1..=N+C are dedicated controllers
//! (the voters, on `CONTROLLER_BASE`.., no client listener). The parent waits for
//! every ready line,
//! prints the bootstrap servers, and then supervises: a child that exits on its own
//! is reported (with its last log lines) and the cluster is stopped with a failure
//! exit; SIGINT/SIGTERM (or SIGHUP, a closed terminal) is forwarded once to every
//! child as SIGTERM (to dedicated controllers only after the brokers have stopped,
//! so the brokers' controlled shutdown has a controller to ask), and the parent
//! waits for all of them to stop cleanly. A second
//! signal kills the children at once. The children run in process groups of their
//! own, so a Ctrl-C at the terminal reaches them only through the parent. If the
//! parent itself is SIGKILLed, the children keep running: stop them by the PIDs the
//! parent printed.

mod node;

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use tracing::{info, warn};
use weir_client::{Admin, ClientConfig};

use self::node::{Node, NodeSpec};
use super::common::outln;
use crate::shutdown::Signals;

/// How long the nodes get to log their ready lines.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the nodes get to stop after SIGTERM before they are killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the children and their logs are looked at.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Default distance from the client ports to the controller ports.
const CONTROLLER_PORT_OFFSET: u16 = 100;
/// The most nodes one command starts; a typo like `--brokers 300` should not fork
/// hundreds of brokers.
const MAX_NODES: u32 = 32;

/// Arguments of `weir dev-cluster`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  weir dev-cluster --brokers 3
  weir dev-cluster --brokers 3 --base-port 0 --data-dir /tmp/weir3
  weir dev-cluster --brokers 2 --controllers 3    # dedicated controllers")]
pub(crate) struct DevClusterArgs {
    /// Number of brokers; without --controllers each is also a controller quorum
    /// voter
    #[arg(long, value_name = "N", default_value_t = 3)]
    brokers: u32,
    /// Run C dedicated controllers (process.roles=controller, the quorum's voters)
    /// and make the brokers broker-only; 0 gives every node both roles
    #[arg(long, value_name = "C", default_value_t = 0)]
    controllers: u32,
    /// Directory for the nodes' data and logs (DIR/node-N)
    #[arg(long, value_name = "DIR", default_value = "weir-dev-cluster")]
    data_dir: PathBuf,
    /// Client port of node 1; node N listens on P+N-1. 0 picks free ports
    #[arg(long, value_name = "P", default_value_t = 9092)]
    base_port: u16,
    /// Controller port of node 1 [default: base port + 100; free ports with
    /// --base-port 0]
    #[arg(long, value_name = "P")]
    controller_base_port: Option<u16>,
    /// Host the nodes listen on and advertise
    #[arg(long, value_name = "HOST", default_value = "127.0.0.1")]
    host: String,
    /// A broker setting for every node, by its Kafka name; repeatable
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

/// Runs the cluster until a signal stops it or a node dies.
pub(crate) async fn run(args: DevClusterArgs) -> anyhow::Result<()> {
    let specs = plan(&args)?;
    // Installed before any child exists: a Ctrl-C from now on is ours to forward.
    let mut signals =
        Signals::install_with_hangup().context("cannot watch for SIGTERM/SIGINT/SIGHUP")?;
    let exe = std::env::current_exe().context("cannot find the weir executable")?;
    let voters = specs
        .iter()
        .filter_map(|s| s.controller.as_ref().map(|c| format!("{}@{c}", s.id)))
        .collect::<Vec<_>>()
        .join(",");
    let mut nodes: Vec<Node> = Vec::with_capacity(specs.len());
    for spec in specs {
        let mut server_args = vec![
            "--node-id".to_owned(),
            spec.id.to_string(),
            "--data-dir".to_owned(),
            spec.dir.display().to_string(),
            "--voters".to_owned(),
            voters.clone(),
        ];
        if let Some(client) = &spec.client {
            server_args.extend(["--listen".to_owned(), client.clone()]);
        }
        if let Some(controller) = &spec.controller {
            server_args.extend(["--controller-listen".to_owned(), controller.clone()]);
        }
        if let Some(roles) = spec.roles() {
            server_args.extend(["--process-roles".to_owned(), roles.to_owned()]);
        }
        for o in &args.overrides {
            server_args.push("--override".to_owned());
            server_args.push(o.clone());
        }
        match Node::spawn(&exe, spec, &server_args) {
            Ok(node) => nodes.push(node),
            Err(error) => {
                stop(&mut nodes).await;
                return Err(error);
            }
        }
    }

    tokio::select! {
        started = wait_ready(&mut nodes) => {
            if let Err(error) = started {
                stop(&mut nodes).await;
                return Err(error);
            }
        }
        name = signals.next() => {
            info!("{name} received while starting; stopping the nodes");
            return finish(&mut nodes, &mut signals).await;
        }
    }
    for node in &nodes {
        outln!(
            "node {}: pid {}, clients {}, controller {}, log {}",
            node.spec.id,
            node.pid().map_or("-".to_owned(), |p| p.to_string()),
            node.spec.client.as_deref().unwrap_or("-"),
            node.spec.controller.as_deref().unwrap_or("-"),
            node.spec.log_path().display()
        );
    }
    let bootstrap: Vec<&str> = nodes
        .iter()
        .filter_map(|n| n.spec.client.as_deref())
        .collect();
    outln!("bootstrap servers: {}", bootstrap.join(","));
    info!("weir dev-cluster ready; Ctrl-C stops every node");

    let mut ticker = tokio::time::interval(POLL_INTERVAL);
    loop {
        tokio::select! {
            name = signals.next() => {
                info!("{name} received; stopping {} nodes", nodes.len());
                return finish(&mut nodes, &mut signals).await;
            }
            _ = ticker.tick() => {
                echo_logs(&mut nodes);
                if let Some(i) = nodes.iter_mut().position(|n| n.try_exit().is_some()) {
                    let error = died(&mut nodes[i]);
                    stop(&mut nodes).await;
                    return Err(error);
                }
            }
        }
    }
}

/// Works out every node's roles, ports and directory.
fn plan(args: &DevClusterArgs) -> anyhow::Result<Vec<NodeSpec>> {
    if args.brokers == 0 || args.brokers > MAX_NODES {
        bail!(
            "--brokers must be from 1 to {MAX_NODES} (got {})",
            args.brokers
        );
    }
    if args.controllers > MAX_NODES {
        bail!(
            "--controllers must be from 0 to {MAX_NODES} (got {})",
            args.controllers
        );
    }
    let brokers = args.brokers as usize;
    let dedicated = args.controllers as usize;
    // Every node votes unless there are dedicated controllers.
    let voters = if dedicated == 0 { brokers } else { dedicated };
    let (clients, controllers) = if args.base_port == 0 {
        let free = free_ports(&args.host, brokers + voters)?;
        let (clients, controllers) = free.split_at(brokers);
        let controllers = match args.controller_base_port {
            Some(base) => port_range("--controller-base-port", base, voters)?,
            None => controllers.to_vec(),
        };
        (clients.to_vec(), controllers)
    } else {
        let clients = port_range("--base-port", args.base_port, brokers)?;
        let base = match args.controller_base_port {
            Some(base) => base,
            None => args
                .base_port
                .checked_add(CONTROLLER_PORT_OFFSET)
                .ok_or_else(|| anyhow!("--base-port {} leaves no room for the controller ports (base + {CONTROLLER_PORT_OFFSET}); give --controller-base-port", args.base_port))?,
        };
        (clients, port_range("--controller-base-port", base, voters)?)
    };
    if let Some(port) = clients.iter().find(|p| controllers.contains(p)) {
        bail!(
            "port {port} would be both a client and a controller port; move --controller-base-port"
        );
    }
    let host = if args.host.contains(':') {
        format!("[{}]", args.host)
    } else {
        args.host.clone()
    };
    let at = |port: u16| format!("{host}:{port}");
    let dir = |id: u32| args.data_dir.join(format!("node-{id}"));
    let mut specs: Vec<NodeSpec> = (1..=args.brokers)
        .zip(&clients)
        .map(|(id, client)| NodeSpec {
            id,
            client: Some(at(*client)),
            controller: (dedicated == 0).then(|| at(controllers[id as usize - 1])),
            dir: dir(id),
        })
        .collect();
    if dedicated > 0 {
        specs.extend(
            (args.brokers + 1..=args.brokers + args.controllers)
                .zip(&controllers)
                .map(|(id, controller)| NodeSpec {
                    id,
                    client: None,
                    controller: Some(at(*controller)),
                    dir: dir(id),
                }),
        );
    }
    Ok(specs)
}

/// `n` consecutive ports from `base`.
fn port_range(flag: &str, base: u16, n: usize) -> anyhow::Result<Vec<u16>> {
    (0..n)
        .map(|i| {
            u16::try_from(i)
                .ok()
                .and_then(|i| base.checked_add(i))
                .ok_or_else(|| anyhow!("{flag} {base}: {n} ports from there pass 65535"))
        })
        .collect()
}

/// `n` distinct ports the OS reports free right now (bound together, then
/// released: another process could take one in between, which a restart fixes).
fn free_ports(host: &str, n: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind((host, 0)))
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(|| format!("cannot find free ports on {host}"))?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect::<std::io::Result<Vec<_>>>()
        .context("cannot read a bound port")
}

/// Waits until every node has logged its ready line; fails if one exits first or
/// the time runs out.
async fn wait_ready(nodes: &mut [Node]) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        echo_logs(nodes);
        if let Some(node) = nodes
            .iter_mut()
            .find_map(|n| n.try_exit().is_some().then_some(n))
        {
            return Err(died(node));
        }
        if nodes.iter().all(Node::is_ready) && all_registered(nodes).await {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let waiting: Vec<String> = nodes
                .iter()
                .filter(|n| !n.is_ready())
                .map(|n| format!("node {} ({})", n.spec.id, n.spec.log_path().display()))
                .collect();
            bail!("not ready after {READY_TIMEOUT:?}: {}", waiting.join(", "));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Whether every node is a live (registered, unfenced) broker of the cluster: a
/// listening node may still be registering, and a topic with one replica per
/// node created before then would be refused.
async fn all_registered(nodes: &[Node]) -> bool {
    let bootstrap: Vec<&str> = nodes
        .iter()
        .filter_map(|n| n.spec.client.as_deref())
        .collect();
    let mut config = ClientConfig::new(&bootstrap.join(","));
    config.connection.request_timeout = POLL_INTERVAL.max(Duration::from_secs(1));
    let Ok(admin) = Admin::new(config).await else {
        return false;
    };
    admin
        .describe_cluster()
        .await
        .is_ok_and(|c| c.brokers.len() == bootstrap.len())
}

/// Echoes the nodes' new warnings and errors on the console, prefixed by node;
/// everything else stays in the log files.
fn echo_logs(nodes: &mut [Node]) {
    for node in nodes {
        for line in node.read_log() {
            if line.contains(" WARN ") || line.contains(" ERROR ") {
                eprintln!("[node-{}] {line}", node.spec.id);
            }
        }
    }
}

/// The error for a node that exited on its own, with its last log lines.
fn died(node: &mut Node) -> anyhow::Error {
    let status = node
        .try_exit()
        .map_or("an unknown status".to_owned(), |s| s.to_string());
    let lines = node.last_lines();
    anyhow!(
        "node {} exited unexpectedly ({status}); last lines of {}:\n{lines}",
        node.spec.id,
        node.spec.log_path().display(),
    )
}

/// Stops every node after a signal: one SIGTERM each, then waits for all (a
/// second signal, or [`STOP_TIMEOUT`], kills the rest). Fails unless every node
/// stopped cleanly.
async fn finish(nodes: &mut [Node], signals: &mut Signals) -> anyhow::Result<()> {
    // Brokers first: their controlled shutdown needs a controller, so dedicated
    // controllers get SIGTERM only once every broker has stopped.
    for node in nodes.iter_mut().filter(|n| n.spec.client.is_some()) {
        node.terminate();
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    let mut ticker = tokio::time::interval(POLL_INTERVAL);
    let mut controllers_told = false;
    loop {
        tokio::select! {
            name = signals.next() => {
                warn!("{name} received again; killing the nodes");
                kill_all(nodes).await;
                bail!("stopped by a second {name}; nodes were killed");
            }
            _ = ticker.tick() => {
                echo_logs(nodes);
                if nodes.iter_mut().all(|n| n.try_exit().is_some()) {
                    break;
                }
                let brokers_gone = nodes
                    .iter_mut()
                    .filter(|n| n.spec.client.is_some())
                    .all(|n| n.try_exit().is_some());
                if brokers_gone && !controllers_told {
                    controllers_told = true;
                    for node in nodes.iter_mut() {
                        node.terminate();
                    }
                }
                if Instant::now() >= deadline {
                    kill_all(nodes).await;
                    bail!("nodes did not stop within {STOP_TIMEOUT:?}; they were killed");
                }
            }
        }
    }
    let failed: Vec<String> = nodes
        .iter_mut()
        .filter_map(|n| match n.try_exit() {
            Some(status) if status.success() => None,
            status => {
                let lines = n.last_lines();
                Some(format!(
                    "node {} ({}); last lines:\n{lines}",
                    n.spec.id,
                    status.map_or("unknown".to_owned(), |s| s.to_string()),
                ))
            }
        })
        .collect();
    if !failed.is_empty() {
        bail!("not every node stopped cleanly: {}", failed.join("\n"));
    }
    info!("every node stopped cleanly");
    Ok(())
}

/// Stops the nodes after a failure: SIGTERM, a bounded wait, then SIGKILL.
async fn stop(nodes: &mut [Node]) {
    for node in nodes.iter_mut() {
        node.terminate();
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline && !nodes.iter_mut().all(|n| n.try_exit().is_some()) {
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    kill_all(nodes).await;
}

/// SIGKILL to every node still running.
async fn kill_all(nodes: &mut [Node]) {
    for node in nodes {
        node.kill().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(brokers: u32, base_port: u16, controller: Option<u16>) -> DevClusterArgs {
        DevClusterArgs {
            brokers,
            controllers: 0,
            data_dir: PathBuf::from("d"),
            base_port,
            controller_base_port: controller,
            host: "127.0.0.1".to_owned(),
            overrides: Vec::new(),
        }
    }

    #[test]
    fn ports_and_dirs_follow_the_base_port() {
        let specs = plan(&args(3, 9092, None)).unwrap_or_default();
        let text: Vec<(u32, &str, &str)> = specs
            .iter()
            .map(|s| {
                (
                    s.id,
                    s.client.as_deref().unwrap_or("-"),
                    s.controller.as_deref().unwrap_or("-"),
                )
            })
            .collect();
        assert_eq!(
            text,
            [
                (1, "127.0.0.1:9092", "127.0.0.1:9192"),
                (2, "127.0.0.1:9093", "127.0.0.1:9193"),
                (3, "127.0.0.1:9094", "127.0.0.1:9194"),
            ]
        );
        assert_eq!(specs[2].dir, PathBuf::from("d/node-3"));
        assert_eq!(specs[2].log_path(), PathBuf::from("d/node-3/server.log"));
    }

    #[test]
    fn base_port_zero_picks_distinct_free_ports() {
        let specs = plan(&args(3, 0, None)).unwrap_or_default();
        let mut ports: Vec<&str> = specs
            .iter()
            .flat_map(|s| [s.client.as_deref(), s.controller.as_deref()])
            .flatten()
            .collect();
        assert_eq!(ports.len(), 6);
        assert!(ports.iter().all(|p| !p.ends_with(":0")), "{ports:?}");
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 6);
    }

    #[test]
    fn dedicated_controllers_follow_the_brokers() {
        let mut a = args(2, 9092, None);
        a.controllers = 3;
        let specs = plan(&a).unwrap_or_default();
        let text: Vec<String> = specs
            .iter()
            .map(|s| {
                let (client, controller) = (s.client.as_deref(), s.controller.as_deref());
                format!("{} {client:?} {controller:?} {:?}", s.id, s.roles())
            })
            .collect();
        assert_eq!(
            text,
            [
                r#"1 Some("127.0.0.1:9092") None Some("broker")"#,
                r#"2 Some("127.0.0.1:9093") None Some("broker")"#,
                r#"3 None Some("127.0.0.1:9192") Some("controller")"#,
                r#"4 None Some("127.0.0.1:9193") Some("controller")"#,
                r#"5 None Some("127.0.0.1:9194") Some("controller")"#,
            ]
        );
        assert_eq!(specs[4].dir, PathBuf::from("d/node-5"));
        // Without --controllers every node has both roles.
        let both = plan(&args(2, 9092, None)).unwrap_or_default();
        assert!(both
            .iter()
            .all(|s| s.roles().is_none() && s.client.is_some()));
        let mut a = args(2, 0, None);
        a.controllers = 3;
        let mut ports: Vec<String> = plan(&a)
            .unwrap_or_default()
            .iter()
            .flat_map(|s| [s.client.clone(), s.controller.clone()])
            .flatten()
            .collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 5);
        a.controllers = MAX_NODES + 1;
        assert!(plan(&a)
            .map(|_| ())
            .unwrap_err()
            .to_string()
            .contains("--controllers"));
    }

    #[test]
    fn impossible_plans_are_refused_with_the_flag_to_change() {
        let error = |a: DevClusterArgs| plan(&a).map(|_| ()).unwrap_err().to_string();
        assert!(error(args(0, 9092, None)).contains("--brokers"));
        assert!(error(args(3, 65534, Some(1000))).contains("--base-port 65534"));
        assert!(error(args(3, 65500, None)).contains("--controller-base-port"));
        assert!(error(args(3, 9092, Some(9093))).contains("port 9093"));
    }
}
