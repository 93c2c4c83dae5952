//! `weir`: the Weir broker and its command-line tools, in one binary.
//!
//! This is the composition root: it turns command-line arguments, config files and
//! signals into calls on the library crates, and is the only crate that names them
//! all. Each subcommand lives in its own file under `cmd/`; logging goes to stderr
//! through `tracing`, filtered by `RUST_LOG` (default `info`).

mod cmd;
mod data_dir;
mod shutdown;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::filter::{EnvFilter, LevelFilter};

/// Weir: a Kafka-compatible streaming broker.
#[derive(Debug, Parser)]
#[command(name = "weir", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a broker (a single-node cluster with no arguments).
    Server(cmd::server::ServerArgs),
    /// Create, list, describe, alter and delete topics.
    Topic(cmd::topic::TopicArgs),
    /// Write lines from stdin or a file to a topic, one record per line.
    Produce(cmd::produce::ProduceArgs),
    /// Print a topic's records, following it for new ones.
    Consume(cmd::consume::ConsumeArgs),
    /// Measure produce and consume throughput and latency.
    Perf(cmd::perf::PerfArgs),
    /// List, describe and delete consumer groups; reset their offsets.
    Group(cmd::group::GroupArgs),
    /// Show the cluster's brokers, controller and partitions needing attention.
    Cluster(cmd::cluster::ClusterCmdArgs),
    /// Run a local cluster: one `weir server` child process per node.
    DevCluster(cmd::dev_cluster::DevClusterArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match runtime_builder(cli.command.client_threads()).build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Server(args) => cmd::server::run(args).await,
            Command::Topic(args) => cmd::topic::run(args).await,
            Command::Produce(args) => cmd::produce::run(args).await,
            Command::Consume(args) => cmd::consume::run(args).await,
            Command::Perf(args) => cmd::perf::run(args).await,
            Command::Group(args) => cmd::group::run(args).await,
            Command::Cluster(args) => cmd::cluster::run(args).await,
            Command::DevCluster(args) => cmd::dev_cluster::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` prints the whole cause chain on one line.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

impl Command {
    /// Worker threads for a client command; `None`: one per core.
    ///
    /// One producer or consumer is a pipeline of tasks that hand batches to each
    /// other: on one thread those hand-offs are plain function calls, on several
    /// they are cross-thread wake-ups. Measured with `weir perf produce` (100 B
    /// records, acks=1) against a broker on the same 2-core machine, one thread
    /// used 25% less CPU per record than tokio's default of one per core.
    ///
    /// `weir consume` keeps several: it writes records to stdout with blocking
    /// writes, and a reader that stops reading (a paused pager) must not stop its
    /// group's heartbeats with them, or the group would expel it.
    fn client_threads(&self) -> Option<usize> {
        match self {
            Command::Server(_) | Command::DevCluster(_) | Command::Consume(_) => None,
            Command::Perf(args) => Some(args.pipelines()),
            Command::Topic(_) | Command::Produce(_) | Command::Group(_) | Command::Cluster(_) => {
                Some(1)
            }
        }
    }
}

/// Brokers get a worker per core; a client command gets `threads` of them (one
/// means everything runs on this thread).
fn runtime_builder(threads: Option<usize>) -> tokio::runtime::Builder {
    let mut builder = match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all();
    builder
}

/// Logs to stderr, so stdout stays free for tools that print data (consume, ...).
/// Colours only on a terminal, so logs piped to files or tests stay plain text.
/// Without `RUST_LOG`, openraft's own info lines (every vote, every shutdown step)
/// are left out: Weir logs what the quorum does in its own words.
fn init_tracing() {
    let builder = EnvFilter::builder().with_default_directive(LevelFilter::INFO.into());
    let filter = match std::env::var("RUST_LOG") {
        Ok(_) => builder.from_env_lossy(),
        Err(_) => builder.parse_lossy("info,openraft=warn"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
