//! `weir consume --group`: print records as a member of a consumer group.
//!
//! The member subscribes to TOPIC (or every topic matching `--topic-pattern`),
//! starts each partition from the group's committed offset, or per `--from`
//! (beginning or end) where the group has none, and commits what it printed
//! (auto commit, and on exit). Exactly what was printed: when `--count` stops it in
//! the middle of a fetched batch, the partitions are moved back to the first record
//! not printed before the final commit, so the next run starts right there. Ctrl-C
//! commits and leaves the group cleanly (LeaveGroup, or a KIP-848 leave heartbeat),
//! so the other members take its partitions over at once.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{anyhow, bail, Context};
use tokio_util::sync::CancellationToken;
use weir_client::consumer::{IsolationLevel, OffsetReset};
use weir_client::group::{GroupConfig, GroupConsumer, GroupProtocol};
use weir_client::TopicPartition;

use super::format::Format;
use super::{is_broken_pipe, ConsumeArgs, Start, POLL_WAIT};
use crate::shutdown;

/// Runs `weir consume --group`.
pub(super) async fn run(args: ConsumeArgs, format: Format) -> anyhow::Result<()> {
    let group = args.group.clone().unwrap_or_default();
    let mut config = GroupConfig::new(&args.cluster.bootstrap_server, group.as_str());
    config.consumer.client.allow_auto_create_topics = false;
    if args.read_committed {
        config.consumer.isolation_level = IsolationLevel::ReadCommitted;
    }
    config.consumer.auto_offset_reset = match args.from {
        Start::Beginning => OffsetReset::Earliest,
        Start::End => OffsetReset::Latest,
        Start::Offset(_) | Start::Time(_) => bail!(
            "with --group, --from is beginning or end (where to start partitions the group \
             has no committed offset for); use `weir group reset-offsets` to move the group"
        ),
    };
    config.group_protocol = GroupProtocol::from_name(&args.group_protocol)
        .ok_or_else(|| anyhow!("--group-protocol is classic or consumer"))?;
    let mut consumer = GroupConsumer::new(config).await?;
    match (&args.topic_pattern, &args.topic) {
        (Some(pattern), _) => consumer.subscribe_regex(pattern)?,
        (None, Some(topic)) => {
            consumer
                .consumer()
                .cluster()
                .wait_for_topic(topic, super::TOPIC_WAIT)
                .await
                .map_err(|e| anyhow!("{e}; does it exist? `weir topic list` shows the topics"))?;
            consumer.subscribe([topic.as_str()]);
        }
        (None, None) => bail!("give a TOPIC or --topic-pattern"),
    }

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
            let records = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                records = consumer.poll(POLL_WAIT) => records?,
            };
            // The first record of each partition that was fetched but not printed.
            let mut rewind: BTreeMap<TopicPartition, i64> = BTreeMap::new();
            for record in &records {
                if args.count.is_some_and(|n| printed >= n) {
                    let tp = TopicPartition::new(&*record.topic, record.partition);
                    rewind.entry(tp).or_insert(record.offset);
                    continue;
                }
                line.clear();
                format.write(record, &mut line);
                out.write_all(&line)?;
                printed += 1;
            }
            out.flush()?;
            for (tp, offset) in &rewind {
                consumer.seek(tp, *offset)?;
            }
        }
    }
    .await;
    let result = result.and_then(|()| Ok(out.flush()?));
    // Commits the positions (what was printed) and leaves the group.
    let closed = consumer
        .close()
        .await
        .with_context(|| format!("leaving group {group}"));
    match result {
        Err(e) if is_broken_pipe(&e) => closed,
        Err(e) => Err(e),
        Ok(()) => closed,
    }
}
