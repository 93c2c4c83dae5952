//! A rough consumer throughput check (the real tool is `weir perf consume`):
//!
//! ```text
//! cargo run --release -p weir-client --example consume_perf -- 127.0.0.1:9092 perf 1000000
//! ```
//! Arguments: bootstrap, topic, records to read (from the beginning of every partition).

use std::time::{Duration, Instant};

use weir_client::consumer::{Consumer, ConsumerConfig, OffsetReset};
use weir_client::TopicPartition;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> weir_client::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_owned());
    let bootstrap = arg(1, "127.0.0.1:9092");
    let topic = arg(2, "perf");
    let records: usize = arg(3, "1000000").parse().unwrap_or(1_000_000);
    let mut config = ConsumerConfig::new(&bootstrap);
    config.auto_offset_reset = OffsetReset::Earliest;
    let mut consumer = Consumer::new(config).await?;
    let partitions = consumer
        .cluster()
        .wait_for_topic(&topic, Duration::from_secs(10))
        .await?;
    consumer.assign(
        (0..partitions.partitions.len() as i32).map(|p| TopicPartition::new(topic.as_str(), p)),
    );
    let start = Instant::now();
    let (mut n, mut bytes) = (0usize, 0usize);
    while n < records {
        let got = consumer.poll(Duration::from_secs(5)).await?;
        if got.is_empty() {
            break;
        }
        n += got.len();
        bytes += got
            .iter()
            .map(|r| r.value.as_ref().map_or(0, |v| v.len()))
            .sum::<usize>();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{n} records, {bytes} value bytes in {secs:.2} s: {:.0} records/s, {:.1} MB/s",
        n as f64 / secs,
        bytes as f64 / secs / 1e6
    );
    Ok(())
}
