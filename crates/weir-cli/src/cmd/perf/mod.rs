//! `weir perf`: throughput and latency of a cluster, measured with weir-client.
//!
//! `perf produce` writes fixed-size records as fast as allowed (or at a target
//! rate) from one or more producers and measures each record's latency from
//! `send` to acknowledgement; `perf consume` reads a topic from the beginning and
//! measures end-to-end latency (now minus the record's timestamp), which is
//! meaningful when a `perf produce` runs at the same time. Both show a live
//! progress bar on stderr and end with a summary on stdout, or one JSON object
//! with `--json`.

mod consume;
mod produce;
mod report;

use weir_client::producer::{Acks, Compression};

use super::common::{parse_acks, parse_codec, tidy_error, ClusterArgs};

const EXAMPLES: &str = "\
Examples:
  weir perf produce --topic perf --records 1000000 --record-size 100
  weir perf produce --topic perf --records 200000 --record-size 1024 --acks 1 --json
  weir perf produce --topic perf --duration 30 --throughput 50000 --producers 4
  weir perf consume --topic perf --records 1000000";

/// Arguments of `weir perf`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct PerfArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(subcommand)]
    command: PerfCommand,
}

impl PerfArgs {
    /// Independent pipelines the run drives: its producers, one per core at most.
    pub(crate) fn pipelines(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        match &self.command {
            PerfCommand::Produce(p) => {
                usize::try_from(p.producers).map_or(cores, |k| k.clamp(1, cores))
            }
            PerfCommand::Consume(_) => 1,
        }
    }
}

#[derive(Debug, clap::Subcommand)]
enum PerfCommand {
    /// Produce fixed-size records and measure throughput and ack latency
    #[command(after_help = EXAMPLES)]
    Produce(ProduceArgs),
    /// Consume a topic and measure throughput and end-to-end latency
    #[command(after_help = EXAMPLES)]
    Consume(ConsumeArgs),
}

/// Arguments of `weir perf produce`.
#[derive(Debug, clap::Args)]
pub(crate) struct ProduceArgs {
    /// Topic to write to (auto-created by brokers that allow it)
    #[arg(short, long)]
    topic: String,
    /// Records to send in all [default: unlimited with --duration]
    #[arg(short = 'n', long, value_name = "N")]
    records: Option<u64>,
    /// Stop after this many seconds
    #[arg(short, long, value_name = "SECS")]
    duration: Option<f64>,
    /// Bytes of each record's value
    #[arg(short = 's', long, value_name = "BYTES", default_value_t = 100)]
    record_size: usize,
    /// Target records per second over all producers; -1 is unlimited
    #[arg(
        long,
        value_name = "RECORDS_PER_SEC",
        default_value_t = -1.0,
        allow_negative_numbers = true
    )]
    throughput: f64,
    /// Acknowledgements to wait for: 0, 1 or all
    #[arg(long, value_name = "ACKS", default_value = "all", value_parser = parse_acks)]
    acks: Acks,
    /// Compression codec: none, gzip, snappy, lz4 or zstd
    #[arg(long, value_name = "CODEC", default_value = "none", value_parser = parse_codec)]
    compression: Compression,
    /// batch.size in bytes
    #[arg(long, value_name = "BYTES", default_value_t = 16384)]
    batch_size: usize,
    /// linger.ms
    #[arg(long, value_name = "MS", default_value_t = 5)]
    linger_ms: u64,
    /// max.in.flight.requests.per.connection (idempotence, the default with
    /// acks=all, needs 5 or fewer)
    #[arg(long, value_name = "N", default_value_t = 5)]
    max_in_flight: usize,
    /// Producers (each with its own connections) sharing the records
    #[arg(long, value_name = "K", default_value_t = 1)]
    producers: u32,
    /// Print one JSON object instead of the text summary
    #[arg(long)]
    json: bool,
}

/// Arguments of `weir perf consume`.
#[derive(Debug, clap::Args)]
pub(crate) struct ConsumeArgs {
    /// Topic to read (every partition, from the beginning)
    #[arg(short, long)]
    topic: String,
    /// Records to read [default: unlimited with --duration]
    #[arg(short = 'n', long, value_name = "N")]
    records: Option<u64>,
    /// Stop after this many seconds
    #[arg(short, long, value_name = "SECS")]
    duration: Option<f64>,
    /// Give up when no record arrives for this many seconds
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    timeout: f64,
    /// max.partition.fetch.bytes
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    fetch_size: i32,
    /// Print one JSON object instead of the text summary
    #[arg(long)]
    json: bool,
}

/// Runs `weir perf ...`.
pub(crate) async fn run(args: PerfArgs) -> anyhow::Result<()> {
    run_inner(args).await.map_err(tidy_error)
}

async fn run_inner(args: PerfArgs) -> anyhow::Result<()> {
    match args.command {
        PerfCommand::Produce(p) => produce::run(&args.cluster, p).await,
        PerfCommand::Consume(c) => consume::run(&args.cluster, c).await,
    }
}

/// Checks `--records` / `--duration`: at least one, and sensible values.
fn check_limits(records: Option<u64>, duration: Option<f64>) -> anyhow::Result<()> {
    if records.is_none() && duration.is_none() {
        anyhow::bail!("give --records N, --duration SECS, or both");
    }
    if records == Some(0) {
        anyhow::bail!("--records must be at least 1");
    }
    if duration.is_some_and(|d| !(d.is_finite() && d > 0.0 && d < 1e9)) {
        anyhow::bail!("--duration must be a positive number of seconds");
    }
    Ok(())
}
