//! An async Kafka-protocol client: the other end of the wire from the broker.
//!
//! `weir-client` talks to any Kafka-compatible cluster (Weir, Apache Kafka,
//! Redpanda) over the codec in `weir-protocol`, on tokio. It is what the `weir`
//! command-line tools (`topic`, `produce`, `consume`) are built on, what
//! `weir perf` measures throughput and latency with, and what the broker will use
//! to replicate (followers fetch from leaders with the same [`Connection`] and
//! Fetch code). So it aims to be correct first (Java-compatible partitioning,
//! idempotent retries that never duplicate or reorder) and fast second (pipelined
//! requests, batching, zero-copy record bytes from the socket to the application).
//!
//! # Layers
//!
//! - [`connection`]: one TCP connection to one broker: framing, correlation ids,
//!   pipelining with a bounded in-flight window, ApiVersions negotiation, timeouts.
//! - [`cluster`]: bootstrap, the metadata cache (topics, partitions, leaders, topic
//!   ids), one connection per broker, refresh on stale-metadata errors.
//! - [`producer`]: partitioner, per-partition batching (`batch.size`, `linger.ms`),
//!   compression, acks, retries, idempotence; `send` returns a future per record.
//! - [`consumer`]: assignment, seeks, a prefetching fetch loop, `poll`.
//! - [`admin`]: create/delete/describe topics, partitions, configs, offsets, cluster.
//!
//! Every fallible call returns [`Error`], a `thiserror` enum whose messages say
//! what to fix; errors a broker sends back keep their Kafka [`ErrorCode`].
//!
//! # Not here yet
//!
//! Consumer groups (membership, committed offsets), transactions, SASL/TLS, and
//! incremental fetch sessions.

pub mod admin;
pub mod api;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod consumer;
pub mod error;
pub mod offsets;
pub mod producer;
mod util;

pub use admin::Admin;
pub use cluster::{Cluster, TopicPartition};
pub use config::{ClientConfig, ConnectionConfig};
pub use connection::Connection;
pub use consumer::{Consumer, ConsumerConfig, ConsumerRecord};
pub use error::{Error, Result};
pub use offsets::{ListedOffset, OffsetSpec};
pub use producer::{Producer, ProducerConfig, ProducerRecord, RecordMetadata};
pub use weir_types::ErrorCode;
