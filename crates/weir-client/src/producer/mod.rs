//! The producer: records in, acknowledged offsets out.
//!
//! [`Producer::send`] picks the partition ([`partitioner`]), appends the record to
//! that partition's open batch (`accumulator.rs`) and returns a [`DeliveryFuture`]
//! at once; a background task (`sender/`) drains ready batches into Produce
//! requests, one per broker, with up to `max.in.flight.requests.per.connection`
//! outstanding, and resolves each record's future with its partition and offset, or
//! with the error that ended its retries.
//!
//! ```no_run
//! # async fn demo() -> weir_client::Result<()> {
//! use weir_client::producer::{Producer, ProducerConfig, ProducerRecord};
//! let producer = Producer::new(ProducerConfig::new("127.0.0.1:9092")).await?;
//! let delivery = producer.send(ProducerRecord::new("events", "hello").key("k")).await?;
//! let meta = delivery.await?;
//! println!("partition {} offset {}", meta.partition, meta.offset);
//! producer.close().await?;
//! # Ok(()) }
//! ```
//!
//! Idempotence is on by default (`idempotence.rs`): retries never duplicate or
//! reorder records of a partition. Awaiting `send` only waits for metadata or
//! buffer space (`max.block.ms`); keep many [`DeliveryFuture`]s outstanding for
//! throughput.

pub(crate) mod accumulator;
pub(crate) mod batch;
mod config;
mod delivery;
pub(crate) mod idempotence;
pub mod partitioner;
mod sender;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{watch, Notify, Semaphore, TryAcquireError};
use tokio::time::Instant;

pub use batch::RecordMetadata;
pub use config::{parse_compression, Acks, Compression, ProducerConfig};
pub use delivery::DeliveryFuture;

use crate::cluster::Cluster;
use crate::error::{Error, Result};
use accumulator::{Accumulator, RecordRef};
use partitioner::{partition_for_key, StickyPartitioner};

/// A record to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerRecord {
    /// The topic; shared, so a record per topic costs a reference count, not a
    /// copy of the name (`Arc<str>` from `&str` or `String` with `.into()`).
    pub topic: Arc<str>,
    /// A fixed partition; `None` lets the partitioner choose.
    pub partition: Option<i32>,
    /// The key (`None` is a null key).
    pub key: Option<Bytes>,
    /// The value (`None` is a tombstone).
    pub value: Option<Bytes>,
    /// Headers, in order; header values may be null.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// The create time in ms since the epoch; `None` is "now".
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record with a value and no key.
    pub fn new(topic: impl Into<Arc<str>>, value: impl Into<Bytes>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            value: Some(value.into()),
            ..ProducerRecord::default()
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the partition.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Adds a header.
    pub fn header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push((key.into(), Some(value.into())));
        self
    }

    /// Sets the timestamp.
    pub fn timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp = Some(timestamp_ms);
        self
    }
}

/// State shared by the producer handles and the sender task.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: ProducerConfig,
    pub(crate) cluster: Cluster,
    pub(crate) state: Mutex<State>,
    /// Wakes the sender (new or full batch, flush, close).
    pub(crate) wake: Notify,
    /// Signalled whenever batches finish (flush waits on it).
    pub(crate) progress: Notify,
    /// `buffer.memory`, one permit per byte.
    pub(crate) memory: Arc<Semaphore>,
    /// Set by the sender when it has stopped.
    pub(crate) stopped: watch::Sender<bool>,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) acc: Accumulator,
    partitioner: StickyPartitioner,
    /// Batches with an id below this skip their linger (flush).
    pub(crate) flush_below: u64,
    pub(crate) closing: bool,
    /// An error that ended the producer (no producer id could be had).
    pub(crate) fatal: Option<Error>,
    /// Topics already registered with the cluster for refreshes.
    topics: std::collections::HashSet<String>,
}

impl State {
    /// Whether records may still be sent: not after a fatal error or `close`.
    fn usable(&self) -> Result<()> {
        if let Some(e) = &self.fatal {
            return Err(e.clone());
        }
        if self.closing {
            return Err(Error::Closed("producer"));
        }
        Ok(())
    }
}

impl Shared {
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn begin_close(&self) {
        self.state().closing = true;
        self.wake.notify_one();
    }
}

/// An async producer; clones share one sender task and buffer.
#[derive(Debug, Clone)]
pub struct Producer {
    handle: Arc<Handle>,
}

#[derive(Debug)]
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    /// The last handle gone: send what is queued, then stop.
    fn drop(&mut self) {
        self.shared.begin_close();
    }
}

impl Producer {
    /// Connects to the cluster and starts the sender.
    pub async fn new(config: ProducerConfig) -> Result<Producer> {
        config.validate()?;
        let mut client = config.client.clone();
        client.connection.max_in_flight = client.connection.max_in_flight.max(config.max_in_flight);
        let cluster = Cluster::connect(client).await?;
        Producer::with_cluster(cluster, config)
    }

    /// A producer over an existing cluster handle (sharing its connections). Must be
    /// called inside a tokio runtime.
    pub fn with_cluster(cluster: Cluster, config: ProducerConfig) -> Result<Producer> {
        config.validate()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                acc: Accumulator::new(
                    config.batch_size,
                    config.linger,
                    config.compression,
                    config.compression_level,
                ),
                partitioner: StickyPartitioner::default(),
                flush_below: 0,
                closing: false,
                fatal: None,
                topics: Default::default(),
            }),
            memory: Arc::new(Semaphore::new(config.buffer_memory)),
            config,
            cluster,
            wake: Notify::new(),
            progress: Notify::new(),
            stopped: watch::Sender::new(false),
        });
        tokio::spawn(sender::Sender::new(shared.clone()).run());
        Ok(Producer {
            handle: Arc::new(Handle { shared }),
        })
    }

    /// The cluster handle the producer uses.
    pub fn cluster(&self) -> &Cluster {
        &self.handle.shared.cluster
    }

    /// Queues a record. Waits only for the topic's metadata and for buffer space,
    /// each up to `max.block.ms` (and yields to other tasks now and then); the
    /// returned future resolves when the record is acknowledged. Dropped before it
    /// resolves, it has queued nothing: the record is appended after the last wait.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let shared = &self.handle.shared;
        let config = &shared.config;
        // Clock reads are a visible share of a small record's cost, so the fast
        // path (metadata known, buffer space free) takes exactly one: the record's
        // timestamp. `started` is read only when something has to wait.
        let mut started = None;
        // A send that never waits would let a loop of sends keep the thread to
        // itself (until buffer.memory runs out) while the sender task and the
        // connections, which must run for the records to leave, sit idle: on a
        // current-thread runtime responses went unread for tens of milliseconds.
        // Like tokio's own channels, `send` spends cooperative budget, so such a
        // loop yields every so often. First thing, so that a send cancelled while
        // it yields has queued nothing.
        tokio::task::coop::consume_budget().await;
        let headers: Vec<(&str, Option<&[u8]>)> = record
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        let rec = RecordRef {
            timestamp: record.timestamp.unwrap_or_else(crate::util::now_ms),
            key: record.key.as_deref(),
            value: record.value.as_deref(),
            headers: &headers,
        };
        let size = rec.batch_size_estimate();
        for (limit, limit_name) in [
            (config.max_request_size, "max.request.size"),
            (config.buffer_memory, "buffer.memory"),
        ] {
            if size > limit {
                return Err(Error::RecordTooLarge {
                    size,
                    limit,
                    limit_name,
                });
            }
        }
        let metadata = shared.cluster.metadata();
        let waited;
        let topic = match metadata
            .topic(&record.topic)
            .filter(|t| !t.partitions.is_empty())
        {
            Some(t) => t,
            None => {
                shared.state().usable()?;
                started = Some(Instant::now());
                waited = shared
                    .cluster
                    .wait_for_topic(&record.topic, config.max_block)
                    .await?;
                &waited
            }
        };
        let count = topic.partitions.len();
        let fixed = match (record.partition, rec.key) {
            (Some(p), _) => {
                if usize::try_from(p).map_or(true, |i| i >= count) {
                    return Err(Error::UnknownPartition {
                        topic: record.topic.to_string(),
                        partition: p,
                        partitions: count,
                    });
                }
                Some(p)
            }
            (None, Some(key)) => Some(partition_for_key(key, count)),
            (None, None) => None,
        };
        let permits = u32::try_from(size).unwrap_or(u32::MAX);
        let memory = match shared.memory.clone().try_acquire_many_owned(permits) {
            Ok(p) => p,
            Err(TryAcquireError::Closed) => return Err(Error::Closed("producer")),
            Err(TryAcquireError::NoPermits) => {
                shared.state().usable()?;
                let budget = config
                    .max_block
                    .saturating_sub(started.map_or(Duration::ZERO, |s| s.elapsed()));
                let acquire = shared.memory.clone().acquire_many_owned(permits);
                match tokio::time::timeout(budget, acquire).await {
                    Ok(Ok(p)) => p,
                    Ok(Err(_)) => return Err(Error::Closed("producer")),
                    Err(_) => {
                        return Err(Error::OperationTimeout {
                            operation: "waiting for buffer.memory".into(),
                            after: config.max_block,
                            last_error: None,
                        })
                    }
                }
            }
        };
        let (appended, delivery) = {
            let mut s = shared.state();
            s.usable()?;
            let partition = match fixed {
                Some(p) => p,
                None => s.partitioner.partition(topic, size, config.batch_size),
            };
            let appended = s
                .acc
                .append(&record.topic, partition, rec, memory, Instant::now)?;
            // A topic's first record always starts a batch, so registering it for
            // metadata refreshes here costs nothing on the other records.
            if appended.0.new_batch && !s.topics.contains(&*record.topic) {
                s.topics.insert(record.topic.to_string());
                shared.cluster.add_topics([&*record.topic]);
            }
            appended
        };
        if appended.new_batch || appended.full {
            shared.wake.notify_one();
        }
        Ok(delivery)
    }

    /// Sends a record and waits for its acknowledgement.
    pub async fn send_and_wait(&self, record: ProducerRecord) -> Result<RecordMetadata> {
        self.send(record).await?.await
    }

    /// Sends every record queued so far without waiting for `linger.ms`, and waits
    /// until each is acknowledged or has failed (failures are reported through the
    /// records' own futures).
    pub async fn flush(&self) -> Result<()> {
        let shared = &self.handle.shared;
        let mark = {
            let mut s = shared.state();
            let mark = s.acc.next_id();
            s.flush_below = s.flush_below.max(mark);
            mark
        };
        shared.wake.notify_one();
        loop {
            let notified = shared.progress.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let s = shared.state();
                if s.acc.all_done_below(mark) {
                    return Ok(());
                }
                if *shared.stopped.borrow() {
                    return Err(s.fatal.clone().unwrap_or(Error::Closed("producer")));
                }
            }
            notified.await;
        }
    }

    /// Sends everything queued, waits for the outcome of every record, and stops the
    /// sender. Other clones of this producer can no longer send.
    pub async fn close(&self) -> Result<()> {
        let shared = &self.handle.shared;
        shared.begin_close();
        let mut stopped = shared.stopped.subscribe();
        let _ = stopped.wait_for(|s| *s).await;
        match shared.state().fatal.clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
