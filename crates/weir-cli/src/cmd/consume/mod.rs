//! `weir consume`: print a topic's records, one line each, and keep following it.
//!
//! The consumer is assigned every partition of the topic (or the one given) and
//! positioned by `--from`; it then polls until `--count` records are printed, the
//! end is reached with `--exit-at-end`, or Ctrl-C (SIGINT/SIGTERM) stops it, which
//! is a clean exit: what was printed is flushed and the exit code is 0. A closed
//! stdout (`weir consume ... | head`) also ends it quietly.
//!
//! With `--group` it is a member of a consumer group instead (`group.rs`): the group
//! shares the partitions and its committed offsets say where to resume.

mod format;
mod group;

use std::io::{ErrorKind, Write};
use std::time::Duration;

use anyhow::{anyhow, Context};
use tokio_util::sync::CancellationToken;
use weir_client::consumer::{IsolationLevel, OffsetReset};
use weir_client::{Admin, Consumer, ConsumerConfig, OffsetSpec, TopicPartition};

use self::format::{Format, TEMPLATE_HELP};
use super::common::{now_ms, parse_rfc3339_ms, tidy_error, ClusterArgs};
use crate::shutdown;

const EXAMPLES: &str = "\
Examples:
  weir consume events                                  # new records, until Ctrl-C
  weir consume events --from beginning --count 10
  weir consume events --from 2026-01-01T00:00:00Z --exit-at-end
  weir consume events --from @1767225600000 --partition 0
  weir consume events --from 42 --partition 0 --format key-value
  weir consume events --from beginning --format json | jq .value
  weir consume events --from beginning --format '%p %o %k %v'
  weir consume events --group billing                  # resumes where billing stopped
  weir consume --group audit --topic-pattern 'events-.*' --from beginning";

/// How long the topic may take to show up in the metadata.
pub(super) const TOPIC_WAIT: Duration = Duration::from_secs(5);
/// One poll's wait; bounds how long a stop condition goes unchecked.
pub(super) const POLL_WAIT: Duration = Duration::from_millis(500);

/// Arguments of `weir consume`.
#[derive(Debug, clap::Args)]
#[command(after_help = format!("{EXAMPLES}\n\n{TEMPLATE_HELP}"))]
pub(crate) struct ConsumeArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Topic to read
    #[arg(required_unless_present = "topic_pattern")]
    topic: Option<String>,
    /// Read as a member of this consumer group: the group's members share the
    /// partitions, offsets are committed as records are printed, and the next run
    /// resumes where this one stopped (--from applies only where the group has no
    /// committed offset)
    #[arg(short, long, value_name = "GROUP", conflicts_with_all = ["partition", "exit_at_end"])]
    group: Option<String>,
    /// With --group: every topic whose whole name matches this regular expression,
    /// including topics created later, instead of TOPIC
    #[arg(
        long,
        value_name = "REGEX",
        requires = "group",
        conflicts_with = "topic"
    )]
    topic_pattern: Option<String>,
    /// With --group: classic (JoinGroup) or consumer (KIP-848)
    #[arg(
        long,
        value_name = "PROTOCOL",
        requires = "group",
        default_value = "classic"
    )]
    group_protocol: String,
    /// Where to start: beginning, end, an offset (with --partition, or for every
    /// partition), or a time: RFC 3339 (2026-01-01T00:00:00Z) or ms since the epoch
    /// after an @ (@1767225600000)
    #[arg(long, value_name = "WHERE", default_value = "end", value_parser = parse_start)]
    from: Start,
    /// Read only this partition [default: all]
    #[arg(short, long, value_name = "N")]
    partition: Option<i32>,
    /// Stop after this many records
    #[arg(short = 'n', long, value_name = "N")]
    count: Option<u64>,
    /// Stop at the end of the partitions as they were at start instead of following
    #[arg(short, long)]
    exit_at_end: bool,
    /// Output: value, key-value, json, or a template such as '%p %o %k %v'
    #[arg(short, long, value_name = "FORMAT", default_value = "value")]
    format: String,
    /// Between key and value in --format key-value
    #[arg(short = 'K', long, value_name = "SEP", default_value = "\t")]
    key_separator: String,
    /// Only records of committed transactions (isolation.level=read_committed)
    #[arg(long)]
    read_committed: bool,
}

/// Where `--from` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Start {
    Beginning,
    End,
    Offset(i64),
    Time(i64),
}

fn parse_start(text: &str) -> Result<Start, String> {
    let text = text.trim();
    match text {
        "beginning" | "earliest" => return Ok(Start::Beginning),
        "end" | "latest" => return Ok(Start::End),
        _ => {}
    }
    if let Some(ms) = text.strip_prefix('@') {
        return ms
            .parse::<i64>()
            .ok()
            .filter(|ms| *ms >= 0)
            .map(Start::Time)
            .ok_or_else(|| format!("expected ms since the epoch after @ (got {text:?})"));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) && !text.is_empty() {
        return text
            .parse()
            .map(Start::Offset)
            .map_err(|e| format!("bad offset {text:?}: {e}"));
    }
    parse_rfc3339_ms(text).map(Start::Time).ok_or_else(|| {
        format!(
            "expected beginning, end, an offset, an RFC 3339 time such as \
             2026-01-01T00:00:00Z, or @MS (got {text:?})"
        )
    })
}

/// Runs `weir consume`.
pub(crate) async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    run_inner(args).await.map_err(tidy_error)
}

async fn run_inner(args: ConsumeArgs) -> anyhow::Result<()> {
    let format = Format::parse(&args.format, &args.key_separator).map_err(|e| anyhow!(e))?;
    if args.group.is_some() {
        return group::run(args, format).await;
    }
    let topic_name = args.topic.clone().unwrap_or_default();
    let mut config = ConsumerConfig::new(&args.cluster.bootstrap_server);
    config.client.allow_auto_create_topics = false;
    if args.read_committed {
        config.isolation_level = IsolationLevel::ReadCommitted;
    }
    // An explicit offset that is out of range is an error to report, not something
    // to silently replace with another position.
    config.auto_offset_reset = match args.from {
        Start::Offset(_) => OffsetReset::None,
        _ => OffsetReset::Earliest,
    };
    let isolation = config.isolation_level;
    let mut consumer = Consumer::new(config).await?;
    let topic = consumer
        .cluster()
        .wait_for_topic(&topic_name, TOPIC_WAIT)
        .await
        .map_err(|e| anyhow!("{e}; does it exist? `weir topic list` shows the topics"))?;
    let partitions: Vec<TopicPartition> = match args.partition {
        Some(p) => {
            if topic.partition(p).is_none() {
                return Err(anyhow!(
                    "topic {topic_name} has no partition {p} (it has {})",
                    topic.partitions.len()
                ));
            }
            vec![TopicPartition::new(topic_name.as_str(), p)]
        }
        None => (0..topic.partitions.len())
            .filter_map(|i| i32::try_from(i).ok())
            .map(|p| TopicPartition::new(topic_name.as_str(), p))
            .collect(),
    };
    consumer.assign(partitions.iter().cloned());
    match args.from {
        Start::Beginning => consumer.seek_to_beginning(&partitions)?,
        Start::End => consumer.seek_to_end(&partitions)?,
        Start::Time(ms) => consumer.seek_to_timestamp(&partitions, ms)?,
        Start::Offset(offset) => {
            for tp in &partitions {
                consumer.seek(tp, offset)?;
            }
        }
    }
    if matches!(args.from, Start::Time(ms) if ms > now_ms()) {
        eprintln!("note: --from is in the future; only records with a later timestamp will show");
    }
    let ends = if args.exit_at_end {
        Some(end_offsets(&consumer, &partitions, isolation).await?)
    } else {
        None
    };

    let stop = CancellationToken::new();
    shutdown::cancel_on_signal(stop.clone()).context("cannot watch for Ctrl-C")?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout());
    let mut line = Vec::new();
    let mut printed: u64 = 0;
    let result: anyhow::Result<()> = async {
        loop {
            if args.count.is_some_and(|n| printed >= n) || stop.is_cancelled() {
                return Ok(());
            }
            if let Some(ends) = &ends {
                let done = ends
                    .iter()
                    .all(|(tp, end)| consumer.position(tp).is_some_and(|p| p >= *end));
                if done {
                    return Ok(());
                }
            }
            let records = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                records = consumer.poll(POLL_WAIT) => records?,
            };
            for record in &records {
                if args.count.is_some_and(|n| printed >= n) {
                    break;
                }
                line.clear();
                format.write(record, &mut line);
                out.write_all(&line)?;
                printed += 1;
            }
            out.flush()?;
        }
    }
    .await;
    let result = result.and_then(|()| Ok(out.flush()?));
    match result {
        Err(e) if is_broken_pipe(&e) => Ok(()),
        Err(e) => Err(e),
        Ok(()) => {
            if args.count.is_some_and(|n| printed < n) && !stop.is_cancelled() {
                eprintln!("reached the end after {printed} records");
            }
            Ok(())
        }
    }
}

/// Whether the error is stdout closing under us (`| head`).
pub(super) fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == ErrorKind::BrokenPipe)
}

/// The log end of each partition now (the high watermark, or the last stable offset
/// with read_committed).
async fn end_offsets(
    consumer: &Consumer,
    partitions: &[TopicPartition],
    isolation: IsolationLevel,
) -> anyhow::Result<Vec<(TopicPartition, i64)>> {
    let admin = Admin::with_cluster(consumer.cluster().clone());
    let query: Vec<(TopicPartition, OffsetSpec)> = partitions
        .iter()
        .map(|tp| (tp.clone(), OffsetSpec::Latest))
        .collect();
    let mut ends = Vec::new();
    for (tp, result) in admin.list_offsets(&query, isolation).await? {
        let listed = result.with_context(|| format!("cannot find the end of {tp}"))?;
        ends.push((tp, listed.offset));
    }
    Ok(ends)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_positions_parse() {
        assert_eq!(parse_start("beginning"), Ok(Start::Beginning));
        assert_eq!(parse_start("end"), Ok(Start::End));
        assert_eq!(parse_start("42"), Ok(Start::Offset(42)));
        assert_eq!(
            parse_start("@1767225600000"),
            Ok(Start::Time(1_767_225_600_000))
        );
        assert_eq!(
            parse_start("2026-01-01T00:00:00Z"),
            Ok(Start::Time(1_767_225_600_000))
        );
        assert!(parse_start("yesterday").is_err());
        assert!(parse_start("@-5").is_err());
    }
}
