//! `weir perf consume`: one consumer reads every partition of a topic from the
//! beginning until it has `--records`, `--duration` passes, or nothing arrives for
//! `--timeout`. Bytes are key plus value bytes; latency is end to end: the time of
//! receipt minus the record's timestamp (ms precision), which measures the
//! pipeline when a `perf produce` runs alongside, and only the age of the data
//! otherwise.

use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use tokio::time::Instant;
use weir_client::consumer::OffsetReset;
use weir_client::{Consumer, ConsumerConfig, TopicPartition};

use super::report::{histogram, Counters, Progress, Summary};
use super::{check_limits, ConsumeArgs};
use crate::cmd::common::{now_ms, ClusterArgs};

/// How long the topic may take to show up in the metadata.
const TOPIC_WAIT: Duration = Duration::from_secs(5);
/// One poll's wait; bounds how late a stop condition is noticed.
const POLL_WAIT: Duration = Duration::from_millis(100);

/// Runs `weir perf consume`.
pub(crate) async fn run(cluster: &ClusterArgs, args: ConsumeArgs) -> anyhow::Result<()> {
    check_limits(args.records, args.duration)?;
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout < 1e9) {
        anyhow::bail!("--timeout must be a positive number of seconds");
    }
    let mut config = ConsumerConfig::new(&cluster.bootstrap_server);
    config.client.allow_auto_create_topics = false;
    config.auto_offset_reset = OffsetReset::Earliest;
    config.max_partition_fetch_bytes = args.fetch_size;
    config.max_poll_records = 10_000;
    let mut consumer = Consumer::new(config).await?;
    let topic = consumer
        .cluster()
        .wait_for_topic(&args.topic, TOPIC_WAIT)
        .await
        .map_err(|e| anyhow!("{e}; does it exist? `weir topic list` shows the topics"))?;
    let partitions: Vec<TopicPartition> = (0..topic.partitions.len())
        .filter_map(|i| i32::try_from(i).ok())
        .map(|p| TopicPartition::new(args.topic.as_str(), p))
        .collect();
    consumer.assign(partitions.iter().cloned());
    consumer.seek_to_beginning(&partitions)?;

    let counters = Arc::new(Counters::default());
    let progress = Progress::start(args.records, counters.clone());
    let wanted = args.records.unwrap_or(u64::MAX);
    let timeout = Duration::from_secs_f64(args.timeout);
    let start = Instant::now();
    let deadline = args.duration.map(|d| start + Duration::from_secs_f64(d));
    let mut latency_us = histogram();
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut last_record = start;
    let mut timed_out = false;
    while records < wanted {
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            break;
        }
        if now.duration_since(last_record) >= timeout {
            timed_out = true;
            break;
        }
        let batch = consumer.poll(POLL_WAIT).await?;
        if batch.is_empty() {
            continue;
        }
        last_record = Instant::now();
        let received_ms = now_ms();
        let (mut n, mut b) = (0u64, 0u64);
        for r in batch
            .iter()
            .take(usize::try_from(wanted - records).unwrap_or(usize::MAX))
        {
            n += 1;
            b += (r.key.as_ref().map_or(0, |k| k.len()) + r.value.as_ref().map_or(0, |v| v.len()))
                as u64;
            let age_ms = received_ms.saturating_sub(r.timestamp).max(0);
            let age_us = u64::try_from(age_ms).unwrap_or(0).saturating_mul(1000);
            latency_us.saturating_record(age_us.max(1));
        }
        records += n;
        bytes += b;
        counters.add(n, b);
    }
    // The clock stops at the last record, so a timeout does not dilute the rate.
    let elapsed = if timed_out {
        last_record.duration_since(start)
    } else {
        start.elapsed()
    };
    progress.finish();
    Summary {
        verb: "received",
        latency_label: "end-to-end latency (receipt - record timestamp)",
        records,
        bytes,
        errors: 0,
        elapsed,
        latency_us,
    }
    .print(args.json);
    if timed_out && args.records.is_some() {
        return Err(anyhow!(
            "no record for {:.1} s; stopped after {records} of {wanted} records",
            args.timeout
        ));
    }
    Ok(())
}
