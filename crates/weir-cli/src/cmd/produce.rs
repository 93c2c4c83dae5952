//! `weir produce`: one record per input line, from stdin or a file.
//!
//! Lines are read and handed to the producer as fast as it takes them (it batches
//! and pipelines); a second task awaits the deliveries in input order, so `-v`
//! prints each record's partition and offset as soon as it is acknowledged, also
//! when lines are typed by hand. Lines are bytes, not text: anything but the line
//! ending (`\n` or `\r\n`) is sent as it is.

use std::path::PathBuf;

use anyhow::{anyhow, Context};
use bytes::Bytes;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use weir_client::producer::{Acks, Compression, DeliveryFuture};
use weir_client::{Producer, ProducerConfig, ProducerRecord};

use super::common::{outln, parse_acks, parse_codec, parse_key_value, tidy_error, ClusterArgs};

const EXAMPLES: &str = "\
Examples:
  echo hello | weir produce events
  weir produce events --file lines.txt --acks 1 --compression zstd
  printf 'user1:clicked\\nuser2:viewed\\n' | weir produce events --key-separator : -v
  weir produce events --header source=cli --header v=2 --partition 0";

/// Deliveries that may be outstanding before reading waits for the oldest.
const MAX_PENDING: usize = 65_536;
/// Failed records reported one by one; the rest are only counted.
const MAX_REPORTED_ERRORS: u64 = 10;

/// Arguments of `weir produce`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct ProduceArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Topic to write to
    topic: String,
    /// Read lines from this file instead of stdin
    #[arg(short, long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// Split each line at the first SEP into key and value (a line without SEP is an
    /// error)
    #[arg(short = 'K', long, value_name = "SEP")]
    key_separator: Option<String>,
    /// A header added to every record; repeatable
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    headers: Vec<(String, String)>,
    /// Write every record to this partition [default: by key hash, or sticky for
    /// keyless records]
    #[arg(short, long, value_name = "N")]
    partition: Option<i32>,
    /// Compression codec: none, gzip, snappy, lz4 or zstd
    #[arg(long, value_name = "CODEC", default_value = "none", value_parser = parse_codec)]
    compression: Compression,
    /// Acknowledgements to wait for: 0, 1 or all
    #[arg(long, value_name = "ACKS", default_value = "all", value_parser = parse_acks)]
    acks: Acks,
    /// Print the partition and offset of every record as it is acknowledged
    #[arg(short, long)]
    verbose: bool,
}

/// Runs `weir produce`.
pub(crate) async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    run_inner(args).await.map_err(tidy_error)
}

async fn run_inner(args: ProduceArgs) -> anyhow::Result<()> {
    let mut config = ProducerConfig::new(&args.cluster.bootstrap_server);
    config.acks = args.acks;
    config.compression = args.compression;
    // Fail fast on a topic that does not exist (and is not auto-created).
    config.max_block = std::time::Duration::from_secs(15);
    let producer = Producer::new(config).await?;
    let mut input: Box<dyn AsyncBufRead + Unpin + Send> = match &args.file {
        Some(path) => Box::new(BufReader::new(
            tokio::fs::File::open(path)
                .await
                .with_context(|| format!("cannot open {}", path.display()))?,
        )),
        None => Box::new(BufReader::new(tokio::io::stdin())),
    };

    let (tx, rx) = mpsc::channel(MAX_PENDING);
    let reporter = tokio::spawn(report(rx, args.verbose));
    let read = read_and_send(&args, &producer, &mut input, tx).await;
    // Whatever stopped the reading, wait for what was sent.
    let (sent, failed, first_error) = reporter
        .await
        .map_err(|e| anyhow!("the delivery task failed: {e}"))?;
    let closed = producer.close().await;
    read?;
    if failed > 0 {
        let first = first_error.unwrap_or_default();
        return Err(anyhow!("{failed} of {sent} records failed; first: {first}"));
    }
    closed?;
    Ok(())
}

/// Reads lines and sends them until the input ends; each delivery goes to `tx`
/// with its line number.
async fn read_and_send(
    args: &ProduceArgs,
    producer: &Producer,
    input: &mut (dyn AsyncBufRead + Unpin + Send),
    tx: mpsc::Sender<(u64, DeliveryFuture)>,
) -> anyhow::Result<()> {
    let headers: Vec<(String, Option<Bytes>)> = args
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), Some(Bytes::copy_from_slice(v.as_bytes()))))
        .collect();
    let separator = args.key_separator.as_deref().map(str::as_bytes);
    if separator.is_some_and(<[u8]>::is_empty) {
        return Err(anyhow!("--key-separator must not be empty"));
    }
    let mut line = Vec::new();
    let mut line_no: u64 = 0;
    let topic: std::sync::Arc<str> = args.topic.as_str().into();
    loop {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .await
            .context("cannot read the input")?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        let (key, value) = match separator {
            None => (None, line.as_slice()),
            Some(sep) => match find(&line, sep) {
                Some(i) => (Some(&line[..i]), &line[i + sep.len()..]),
                None => {
                    return Err(anyhow!(
                        "line {line_no} has no key separator {:?}; every line must be KEY{}VALUE",
                        String::from_utf8_lossy(sep),
                        String::from_utf8_lossy(sep)
                    ))
                }
            },
        };
        let record = ProducerRecord {
            topic: topic.clone(),
            partition: args.partition,
            key: key.map(Bytes::copy_from_slice),
            value: Some(Bytes::copy_from_slice(value)),
            headers: headers.clone(),
            timestamp: None,
        };
        let delivery = producer
            .send(record)
            .await
            .with_context(|| format!("cannot send line {line_no} to {}", args.topic))?;
        if tx.send((line_no, delivery)).await.is_err() {
            return Err(anyhow!("the delivery task stopped early"));
        }
    }
}

/// The first index of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Awaits deliveries in order; returns (records, failures, first failure).
async fn report(
    mut rx: mpsc::Receiver<(u64, DeliveryFuture)>,
    verbose: bool,
) -> (u64, u64, Option<String>) {
    let (mut sent, mut failed, mut first_error) = (0u64, 0u64, None);
    while let Some((line_no, delivery)) = rx.recv().await {
        sent += 1;
        match delivery.await {
            Ok(meta) => {
                if verbose {
                    outln!("partition {} offset {}", meta.partition, meta.offset);
                }
            }
            Err(e) => {
                failed += 1;
                if failed <= MAX_REPORTED_ERRORS {
                    eprintln!("error: line {line_no}: {e}");
                }
                first_error.get_or_insert_with(|| format!("line {line_no}: {e}"));
            }
        }
    }
    (sent, failed, first_error)
}
