//! `weir server`: run a broker.
//!
//! Settings are layered: Weir's defaults, then `--config FILE` (a Kafka-style
//! `server.properties`), then `--data-dir`, `--listen` and `--advertise`, then each
//! `--override key=value` in order; the result is validated as a whole. The data
//! directories are locked before anything is bound, and SIGTERM/SIGINT stop the
//! broker cleanly.

use std::path::PathBuf;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use weir_broker::config::ConfigWarning;
use weir_broker::{Broker, BrokerConfig};

use crate::data_dir::DataDirLock;
use crate::shutdown;

/// Arguments of `weir server`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServerArgs {
    /// Directory for partition data (log.dirs) [default: ./weir-data]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address to accept clients on (listeners); port 0 picks a free port
    /// [default: 127.0.0.1:9092]
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
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
    let broker = Broker::bind(config).await?;
    broker.run(shutdown).await?;
    drop(locks);
    Ok(())
}

/// Builds the configuration from its layers and validates it.
fn load_config(args: &ServerArgs) -> anyhow::Result<BrokerConfig> {
    let mut config = BrokerConfig::default();
    let mut warnings: Vec<ConfigWarning> = Vec::new();
    if let Some(path) = &args.config {
        warnings.extend(config.apply_file(path)?);
    }
    if let Some(dir) = &args.data_dir {
        // Set directly: a path may contain the ',' that separates log.dirs entries.
        config.log_dirs = vec![dir.clone()];
    }
    if let Some(listen) = &args.listen {
        config.apply_overrides([("listeners", listen.as_str())], "--listen")?;
    }
    if let Some(advertise) = &args.advertise {
        config.apply_overrides(
            [("advertised.listeners", advertise.as_str())],
            "--advertise",
        )?;
    }
    let overrides = args.overrides.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    warnings.extend(config.apply_overrides(overrides, "--override")?);
    for warning in &warnings {
        warn!("{warning}");
    }
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

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
