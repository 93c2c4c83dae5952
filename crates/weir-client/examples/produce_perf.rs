//! A rough producer throughput check (the real tool is `weir perf produce`):
//!
//! ```text
//! cargo run --release -p weir-client --example produce_perf -- 127.0.0.1:9092 perf 1000000 100 all none
//! ```
//! Arguments: bootstrap, topic, records, record size, acks (0|1|all), compression.

use std::time::Instant;

use bytes::Bytes;
use weir_client::producer::{parse_compression, Acks, Producer, ProducerConfig, ProducerRecord};

#[tokio::main(flavor = "multi_thread")]
async fn main() -> weir_client::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_owned());
    let bootstrap = arg(1, "127.0.0.1:9092");
    let topic = arg(2, "perf");
    let records: usize = arg(3, "1000000").parse().unwrap_or(1_000_000);
    let size: usize = arg(4, "100").parse().unwrap_or(100);
    let mut config = ProducerConfig::new(&bootstrap);
    config.acks = Acks::parse(&arg(5, "all"))?;
    config.compression = parse_compression(&arg(6, "none"))?;
    let producer = Producer::new(config).await?;
    let value = Bytes::from(vec![b'x'; size]);
    let start = Instant::now();
    let mut window = std::collections::VecDeque::new();
    for _ in 0..records {
        window.push_back(
            producer
                .send(ProducerRecord::new(topic.as_str(), value.clone()))
                .await?,
        );
        if window.len() >= 100_000 {
            if let Some(f) = window.pop_front() {
                f.await?;
            }
        }
    }
    for f in window {
        f.await?;
    }
    producer.close().await?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{records} records of {size} B in {secs:.2} s: {:.0} records/s, {:.1} MB/s",
        records as f64 / secs,
        (records * size) as f64 / secs / 1e6
    );
    Ok(())
}
