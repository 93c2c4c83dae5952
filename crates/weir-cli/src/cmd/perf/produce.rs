//! `weir perf produce`: K producers, each with its own connections, send their
//! share of the records; each producer has a second task that awaits deliveries in
//! send order and records the latency from `send` to acknowledgement.
//!
//! Deliveries are awaited in order, which is exact for one partition (the broker
//! acknowledges a partition's batches in order) and close for several (records of
//! one request complete together). Every record carries the same random payload,
//! as in Kafka's `kafka-producer-perf-test`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use anyhow::anyhow;
use bytes::Bytes;
use hdrhistogram::Histogram;
use tokio::sync::mpsc;
use tokio::time::Instant;
use weir_client::producer::DeliveryFuture;
use weir_client::{Producer, ProducerConfig, ProducerRecord};

use super::report::{histogram, Counters, Progress, Summary};
use super::{check_limits, ProduceArgs};
use crate::cmd::common::ClusterArgs;

/// Deliveries a producer may have outstanding before it waits (buffer.memory
/// usually binds first).
const MAX_PENDING: usize = 1 << 20;

/// Deliveries handed to the delivery task together. A channel message per record
/// was a twentieth of the tool's CPU; a chunk is also handed over whenever the
/// sender is about to wait, so the delivery task never lags behind by more than
/// the few microseconds it takes to send this many.
const DELIVERIES_PER_MESSAGE: usize = 256;

/// Deliveries with their send times.
type Chunk = Vec<(Instant, DeliveryFuture)>;

/// Records sent back to back that share one reading of the clock as their send
/// time (unless a rate limit or a wait intervenes). A clock read per record was
/// several percent of the tool's CPU; sending this many takes a few microseconds,
/// which is all the error it adds to latencies measured in milliseconds.
const SENDS_PER_CLOCK_READ: u64 = 16;

/// Most acknowledgements timed with one clock reading, when they were all
/// already complete (one batch's records complete together).
const ACKS_PER_CLOCK_READ: u32 = 256;

/// What one producer's delivery task saw.
struct Outcome {
    latency_us: Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
}

/// Runs `weir perf produce`.
pub(crate) async fn run(cluster: &ClusterArgs, args: ProduceArgs) -> anyhow::Result<()> {
    check_limits(args.records, args.duration)?;
    if args.producers == 0 {
        anyhow::bail!("--producers must be at least 1");
    }
    if args.record_size == 0 {
        anyhow::bail!("--record-size must be at least 1");
    }
    if !(args.throughput == -1.0 || args.throughput > 0.0 && args.throughput.is_finite()) {
        anyhow::bail!("--throughput must be a positive number of records/s, or -1 for unlimited");
    }
    let mut config = ProducerConfig::new(&cluster.bootstrap_server);
    config.acks = args.acks;
    config.compression = args.compression;
    config.batch_size = args.batch_size;
    config.linger = Duration::from_millis(args.linger_ms);
    config.max_in_flight = args.max_in_flight;
    // A record larger than the default limit is a choice of the benchmark.
    config.max_request_size = config
        .max_request_size
        .max(args.record_size.saturating_add(1024));
    config.buffer_memory = config.buffer_memory.max(config.max_request_size);
    config.validate()?;

    let k = u64::from(args.producers);
    let mut producers = Vec::new();
    for _ in 0..k {
        producers.push(Producer::new(config.clone()).await?);
    }
    // Metadata first, so the run does not time the topic's creation.
    producers[0]
        .cluster()
        .wait_for_topic(&args.topic, config.max_block)
        .await?;

    let counters = Arc::new(Counters::default());
    let progress = Progress::start(args.records, counters.clone());
    let deadline = args
        .duration
        .map(|d| Instant::now() + Duration::from_secs_f64(d));
    let rate = (args.throughput > 0.0).then(|| args.throughput / k as f64);
    let start = Instant::now();
    let mut senders = Vec::new();
    let mut waiters = Vec::new();
    for (i, producer) in producers.into_iter().enumerate() {
        let i = i as u64;
        // Split the records evenly; the first producers take the remainder.
        let quota = args
            .records
            .map_or(u64::MAX, |n| n / k + u64::from(i < n % k));
        let (tx, rx) = mpsc::channel(MAX_PENDING / DELIVERIES_PER_MESSAGE);
        waiters.push(tokio::spawn(await_deliveries(
            rx,
            counters.clone(),
            args.record_size as u64,
        )));
        let worker = Worker {
            producer,
            topic: args.topic.as_str().into(),
            payload: payload(args.record_size, i),
            quota,
            deadline,
            rate,
        };
        senders.push(tokio::spawn(worker.run(tx)));
    }

    let mut send_error = None;
    for s in senders {
        match s.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                send_error.get_or_insert(e);
            }
            Err(e) => {
                send_error.get_or_insert(anyhow!("a producer task failed: {e}"));
            }
        }
    }
    let mut latency_us = histogram();
    let (mut errors, mut first_error) = (0, None);
    for w in waiters {
        let outcome = w
            .await
            .map_err(|e| anyhow!("a delivery task failed: {e}"))?;
        latency_us.add(&outcome.latency_us).ok();
        errors += outcome.errors;
        if first_error.is_none() {
            first_error = outcome.first_error;
        }
    }
    let elapsed = start.elapsed();
    progress.finish();
    let summary = Summary {
        verb: "sent",
        latency_label: "latency from send to ack",
        records: latency_us.len(),
        bytes: latency_us.len() * args.record_size as u64,
        errors,
        elapsed,
        latency_us,
    };
    summary.print(args.json);
    if let Some(e) = send_error {
        return Err(e);
    }
    if let Some(e) = first_error {
        return Err(anyhow!("{errors} records failed; first: {e}"));
    }
    Ok(())
}

/// One producer's sending loop.
struct Worker {
    producer: Producer,
    topic: Arc<str>,
    payload: Bytes,
    /// Records this producer sends (`u64::MAX` when the duration decides).
    quota: u64,
    deadline: Option<Instant>,
    /// This producer's share of `--throughput`, in records/s.
    rate: Option<f64>,
}

impl Worker {
    async fn run(self, tx: mpsc::Sender<Chunk>) -> anyhow::Result<()> {
        let start = Instant::now();
        let mut sent: u64 = 0;
        let mut chunk = Chunk::with_capacity(DELIVERIES_PER_MESSAGE);
        let sender = &tx;
        // Hands the chunk over; false when the delivery task has gone.
        let hand_over = |chunk: &mut Chunk| {
            let full = std::mem::replace(chunk, Chunk::with_capacity(DELIVERIES_PER_MESSAGE));
            async move { full.is_empty() || sender.send(full).await.is_ok() }
        };
        let result = async {
            let mut now = start;
            // Whether `now` may serve the next record too.
            let mut clock_fresh = false;
            while sent < self.quota {
                // One clock read serves the deadline, the rate and the latency start
                // of up to SENDS_PER_CLOCK_READ records sent back to back.
                if !clock_fresh || sent.is_multiple_of(SENDS_PER_CLOCK_READ) || self.rate.is_some()
                {
                    now = Instant::now();
                }
                if self.deadline.is_some_and(|d| now >= d) {
                    break;
                }
                if let Some(rate) = self.rate {
                    let due = start + Duration::from_secs_f64(sent as f64 / rate);
                    if due > now {
                        if !hand_over(&mut chunk).await {
                            break;
                        }
                        tokio::time::sleep_until(due).await;
                        now = Instant::now();
                    }
                }
                let record = ProducerRecord {
                    topic: self.topic.clone(),
                    value: Some(self.payload.clone()),
                    ..ProducerRecord::default()
                };
                // A send that had to wait (metadata, buffer.memory) makes the next
                // record read the clock again.
                let mut send = std::pin::pin!(self.producer.send(record));
                let delivery = match poll_once(send.as_mut()) {
                    Poll::Ready(result) => {
                        clock_fresh = true;
                        result?
                    }
                    Poll::Pending => {
                        clock_fresh = false;
                        if !hand_over(&mut chunk).await {
                            break;
                        }
                        send.await?
                    }
                };
                chunk.push((now, delivery));
                sent += 1;
                if chunk.len() == DELIVERIES_PER_MESSAGE && !hand_over(&mut chunk).await {
                    break;
                }
            }
            hand_over(&mut chunk).await;
            Ok(())
        }
        .await;
        // Hand over everything queued, and wait for its acknowledgements.
        drop(tx);
        let closed = self.producer.close().await;
        result.and(closed.map_err(anyhow::Error::from))
    }
}

/// Awaits deliveries in send order, recording latency and progress.
async fn await_deliveries(
    mut rx: mpsc::Receiver<Chunk>,
    counters: Arc<Counters>,
    record_bytes: u64,
) -> Outcome {
    let mut out = Outcome {
        latency_us: histogram(),
        errors: 0,
        first_error: None,
    };
    // The clock is read again only after a wait: acknowledgements that were
    // already complete when reached (a batch's records complete together) share
    // one reading, up to ACKS_PER_CLOCK_READ of them.
    let mut clock: Option<(Instant, u32)> = None;
    loop {
        let chunk = match rx.try_recv() {
            Ok(chunk) => chunk,
            Err(mpsc::error::TryRecvError::Empty) => {
                clock = None;
                match rx.recv().await {
                    Some(chunk) => chunk,
                    None => break,
                }
            }
            Err(mpsc::error::TryRecvError::Disconnected) => break,
        };
        for (sent_at, mut delivery) in chunk {
            let result = match poll_once(Pin::new(&mut delivery)) {
                Poll::Ready(r) => r,
                Poll::Pending => {
                    clock = None;
                    delivery.await
                }
            };
            let now = match clock {
                Some((at, n)) if n < ACKS_PER_CLOCK_READ => {
                    clock = Some((at, n + 1));
                    at
                }
                _ => {
                    let at = Instant::now();
                    clock = Some((at, 1));
                    at
                }
            };
            match result {
                Ok(_) => {
                    let us = u64::try_from(now.saturating_duration_since(sent_at).as_micros())
                        .unwrap_or(u64::MAX);
                    out.latency_us.saturating_record(us.max(1));
                    counters.add(1, record_bytes);
                }
                Err(e) => {
                    out.errors += 1;
                    out.first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
    out
}

/// Polls `fut` once without a real waker, to learn whether it completes without
/// waiting (awaiting it afterwards registers the task's waker as usual).
fn poll_once<F: Future + ?Sized>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// `size` random uppercase letters (xorshift, seeded per producer).
fn payload(size: usize, seed: u64) -> Bytes {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ seed.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let bytes: Vec<u8> = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'A' + (x % 26) as u8
        })
        .collect();
    Bytes::from(bytes)
}
