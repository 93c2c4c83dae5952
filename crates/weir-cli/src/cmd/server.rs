//! `weir server`: run a broker, a controller, or both.
//!
//! Settings are layered: Weir's defaults, then `--config FILE` (a Kafka-style
//! `server.properties`), then the flags (`--node-id`, `--process-roles`,
//! `--data-dir`, `--listen`, `--controller-listen`, `--voters`, `--rack`,
//! `--advertise`), then each `--override key=value` in order; the result is
//! validated as a whole. With no `--voters` the broker is a single-node cluster;
//! `--node-id N --controller-listen HOST:PORT --voters 1@HOST:PORT,...` makes it one
//! node of a controller quorum. `--process-roles broker` (a node outside the
//! voters, no controller listener) makes a broker-only node, and
//! `--process-roles controller` (no client listener) a dedicated controller. The
//! data directories are locked before anything is bound, and SIGTERM/SIGINT stop
//! the node cleanly.

use std::path::PathBuf;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use weir_broker::config::{ConfigError, ConfigWarning, ListenerConfig};
use weir_broker::{Broker, BrokerConfig, ControllerNode};

use crate::data_dir::DataDirLock;
use crate::shutdown;

/// Arguments of `weir server`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServerArgs {
    /// This node's id in the cluster (node.id) [default: 1]
    #[arg(long, value_name = "N")]
    node_id: Option<i32>,
    /// What this node runs (process.roles): broker, controller, or
    /// broker,controller. A broker-only node is not one of --voters and has no
    /// --controller-listen; a controller-only node serves no clients
    /// [default: broker,controller]
    #[arg(long, value_name = "ROLES")]
    process_roles: Option<String>,
    /// Directory for partition data (log.dirs) [default: ./weir-data]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address to accept clients on (listeners); port 0 picks a free port
    /// [default: 127.0.0.1:9092]
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Address the controller quorum talks on (the CONTROLLER entry of listeners);
    /// never served to Kafka clients
    #[arg(long, value_name = "HOST:PORT")]
    controller_listen: Option<String>,
    /// The controller quorum's voters (controller.quorum.voters), e.g.
    /// 1@127.0.0.1:9093,2@127.0.0.1:9094,3@127.0.0.1:9095 [default: none, a
    /// single-node cluster]
    #[arg(long, value_name = "ID@HOST:PORT,...")]
    voters: Option<String>,
    /// The cluster this node belongs to (cluster.id), e.g. from `weir cluster
    /// new-id`; give every node the same. A data directory formatted for another
    /// cluster is refused [default: a random id for a single node, one derived
    /// from the voter ids for a quorum]
    #[arg(long, value_name = "ID")]
    cluster_id: Option<String>,
    /// This broker's rack, for rack-aware replica placement (broker.rack)
    #[arg(long, value_name = "RACK")]
    rack: Option<String>,
    /// Address clients are told to connect to (advertised.listeners)
    /// [default: the bound address]
    #[arg(long, value_name = "HOST:PORT")]
    advertise: Option<String>,
    /// Kafka-style properties file (server.properties); keys Weir does not use are
    /// warnings
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Set one broker setting by its Kafka name; repeatable, applied last
    #[arg(long = "override", value_name = "KEY=VALUE", value_parser = parse_override)]
    overrides: Vec<(String, String)>,
}

fn parse_override(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!(
            "expected KEY=VALUE, e.g. num.partitions=3 (got {text:?})"
        )),
    }
}

/// Runs the broker until a signal stops it.
pub(crate) async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let config = load_config(&args)?;
    let locks = config
        .log_dirs
        .iter()
        .map(|dir| DataDirLock::acquire(dir))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for lock in &locks {
        info!(lock = %lock.path().display(), "data directory locked");
    }
    let shutdown = CancellationToken::new();
    shutdown::cancel_on_signal(shutdown.clone()).context("cannot watch for SIGTERM/SIGINT")?;
    if config.roles().broker {
        let broker = Broker::bind(config).await?;
        broker.run(shutdown).await?;
    } else {
        let controller = ControllerNode::start(config).await?;
        controller.run(shutdown).await?;
    }
    drop(locks);
    Ok(())
}

/// Builds the configuration from its layers and validates it.
pub(crate) fn load_config(args: &ServerArgs) -> anyhow::Result<BrokerConfig> {
    let mut config = BrokerConfig::default();
    let mut warnings: Vec<ConfigWarning> = Vec::new();
    if let Some(path) = &args.config {
        warnings.extend(config.apply_file(path)?);
    }
    if let Some(id) = args.node_id {
        config.apply_overrides([("node.id", id.to_string().as_str())], "--node-id")?;
    }
    if let Some(roles) = &args.process_roles {
        config.apply_overrides([("process.roles", roles.as_str())], "--process-roles")?;
    }
    if let Some(dir) = &args.data_dir {
        // Set directly: a path may contain the ',' that separates log.dirs entries.
        config.log_dirs = vec![dir.clone()];
    }
    if let Some(listen) = &args.listen {
        let listeners = ListenerConfig::parse_list(listen)
            .map_err(|reason| flag_error("--listen", "listeners", listen, reason))?;
        // Only the client listeners: a controller listener from --config stays.
        config.set_client_listeners(listeners);
    }
    if let Some(listen) = &args.controller_listen {
        let listener = ListenerConfig::parse(listen)
            .map_err(|reason| flag_error("--controller-listen", "listeners", listen, reason))?;
        config.set_controller_listener(listener);
    }
    if let Some(voters) = &args.voters {
        config.apply_overrides([("controller.quorum.voters", voters.as_str())], "--voters")?;
    }
    if let Some(id) = &args.cluster_id {
        config.apply_overrides([("cluster.id", id.as_str())], "--cluster-id")?;
    }
    if let Some(rack) = &args.rack {
        config.apply_overrides([("broker.rack", rack.as_str())], "--rack")?;
    }
    if let Some(advertise) = &args.advertise {
        config.apply_overrides(
            [("advertised.listeners", advertise.as_str())],
            "--advertise",
        )?;
    }
    let overrides = args.overrides.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    warnings.extend(config.apply_overrides(overrides, "--override")?);
    if !config.roles().broker && args.listen.is_none() {
        // A controller-only node serves no clients: the default client listener
        // is not one it was asked for (one from --config still is, and is refused).
        let defaults = BrokerConfig::default().listeners;
        config.listeners.retain(|l| !defaults.contains(l));
    }
    for warning in &warnings {
        warn!("{warning}");
    }
    config.validate()?;
    Ok(config)
}

/// A flag value that does not parse, located like the config file's errors.
fn flag_error(flag: &str, key: &str, value: &str, reason: String) -> ConfigError {
    ConfigError::At {
        origin: flag.to_owned(),
        error: Box::new(ConfigError::InvalidValue {
            key: key.to_owned(),
            value: value.to_owned(),
            reason,
        }),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use weir_broker::config::{ProcessRoles, VoterAddress};
    use weir_types::NodeId;

    use super::*;

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(flatten)]
        args: ServerArgs,
    }

    /// The configuration `weir server ARGS` would run with, or its error.
    fn config_of(args: &[&str]) -> Result<BrokerConfig, String> {
        let argv = std::iter::once("server").chain(args.iter().copied());
        let wrap = Wrap::try_parse_from(argv).map_err(|e| e.to_string())?;
        load_config(&wrap.args).map_err(|e| format!("{e:#}"))
    }

    #[test]
    fn no_arguments_is_the_single_node_default() {
        assert_eq!(config_of(&[]), Ok(BrokerConfig::default()));
    }

    #[test]
    fn cluster_flags_map_onto_kafka_keys() {
        let config = config_of(&[
            "--node-id",
            "2",
            "--listen",
            "127.0.0.1:0",
            "--controller-listen",
            "127.0.0.1:9094",
            "--voters",
            "1@127.0.0.1:9093,2@127.0.0.1:9094,3@127.0.0.1:9095",
            "--rack",
            "r2",
        ]);
        let config = config.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.node_id, NodeId(2));
        assert!(!config.is_single_node());
        assert_eq!(config.roles(), ProcessRoles::BOTH);
        assert_eq!(config.controller_quorum_voters.len(), 3);
        assert_eq!(
            config.controller_quorum_voters.get(&NodeId(3)),
            Some(&VoterAddress {
                host: "127.0.0.1".into(),
                port: 9095
            })
        );
        assert_eq!(
            config.controller_listener().map(|l| l.to_string()),
            Some("CONTROLLER://127.0.0.1:9094".to_owned())
        );
        let clients: Vec<String> = config.client_listeners().map(|l| l.to_string()).collect();
        assert_eq!(clients, ["PLAINTEXT://127.0.0.1:0"]);
        assert_eq!(config.broker_rack.as_deref(), Some("r2"));
    }

    #[test]
    fn flags_override_the_file_and_listen_keeps_its_controller_listener() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("server.properties");
        std::fs::write(
            &file,
            "node.id=5
broker.rack=from-file
             listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093
             controller.quorum.voters=1@127.0.0.1:9093
",
        )
        .expect("write");
        let file = file.to_str().expect("utf-8 path");
        let config = config_of(&[
            "--config",
            file,
            "--node-id",
            "1",
            "--rack",
            "r1",
            "--listen",
            "127.0.0.1:0",
        ]);
        let config = config.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.node_id, NodeId(1));
        assert_eq!(config.broker_rack.as_deref(), Some("r1"));
        let all: Vec<String> = config.listeners.iter().map(|l| l.to_string()).collect();
        assert_eq!(
            all,
            ["PLAINTEXT://127.0.0.1:0", "CONTROLLER://127.0.0.1:9093"]
        );
        // --override comes last of all.
        let config = config_of(&[
            "--config",
            file,
            "--node-id",
            "1",
            "--override",
            "broker.rack=last",
        ]);
        assert_eq!(
            config.ok().and_then(|c| c.broker_rack),
            Some("last".to_owned())
        );
    }

    #[test]
    fn bad_cluster_flags_say_which_flag_and_what_to_fix() {
        let cases: [(&[&str], &str); 5] = [
            (
                &["--voters", "1@h:1,1@h:2"],
                "--voters: invalid value \"1@h:1,1@h:2\" for controller.quorum.voters",
            ),
            (&["--node-id", "x"], "invalid value 'x' for '--node-id <N>'"),
            (
                &["--controller-listen", "127.0.0.1:9093"],
                "controller.quorum.voters: CONTROLLER://127.0.0.1:9093 is a controller listener, but no voters are set",
            ),
            (
                &["--voters", "1@127.0.0.1:9093"],
                "listeners: the controller role needs a listener named CONTROLLER",
            ),
            (
                &[
                    "--node-id",
                    "4",
                    "--voters",
                    "1@127.0.0.1:9093",
                    "--controller-listen",
                    "127.0.0.1:9093",
                ],
                "controller.quorum.voters: node.id 4 has the controller role",
            ),
        ];
        for (args, expected) in cases {
            let error = config_of(args).map(|_| ()).unwrap_err();
            assert!(error.contains(expected), "{args:?}: {error}");
        }
        let error = config_of(&["--listen", "nope"]).map(|_| ()).unwrap_err();
        assert!(
            error.starts_with("--listen: invalid value \"nope\" for listeners"),
            "{error}"
        );
    }

    #[test]
    fn process_roles_make_broker_only_and_controller_only_nodes() {
        let voters = "1@127.0.0.1:9093,2@127.0.0.1:9094,3@127.0.0.1:9095";
        let broker = config_of(&[
            "--node-id",
            "4",
            "--process-roles",
            "broker",
            "--listen",
            "127.0.0.1:0",
            "--voters",
            voters,
        ]);
        let broker = broker.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (broker.roles().broker, broker.roles().controller),
            (true, false)
        );
        assert!(broker.controller_listener().is_none());

        // No --listen: the default client listener goes, the controller one stays.
        let controller = config_of(&[
            "--node-id",
            "2",
            "--process-roles",
            "controller",
            "--controller-listen",
            "127.0.0.1:9094",
            "--voters",
            voters,
        ]);
        let controller = controller.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (controller.roles().broker, controller.roles().controller),
            (false, true)
        );
        let all: Vec<String> = controller.listeners.iter().map(|l| l.to_string()).collect();
        assert_eq!(all, ["CONTROLLER://127.0.0.1:9094"]);

        // An explicit client listener on a controller is refused, not dropped.
        let error = config_of(&[
            "--node-id",
            "2",
            "--process-roles",
            "controller",
            "--listen",
            "127.0.0.1:0",
            "--controller-listen",
            "127.0.0.1:9094",
            "--voters",
            voters,
        ]);
        let error = error.map(|_| ()).unwrap_err();
        assert!(error.contains("process.roles=controller"), "{error}");
        let error = config_of(&["--process-roles", "zookeeper"])
            .map(|_| ())
            .unwrap_err();
        assert!(
            error.starts_with("--process-roles: invalid value"),
            "{error}"
        );
    }

    #[test]
    fn override_needs_a_key_and_an_equals_sign() {
        assert_eq!(
            parse_override("num.partitions=3"),
            Ok(("num.partitions".into(), "3".into()))
        );
        assert_eq!(
            parse_override("log.dirs=/a=b"),
            Ok(("log.dirs".into(), "/a=b".into()))
        );
        assert!(parse_override("num.partitions").is_err());
        assert!(parse_override("=3").is_err());
    }
}
