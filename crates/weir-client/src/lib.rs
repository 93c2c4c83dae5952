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
//! - [`group`]: consumer groups: membership, assignors, committed offsets, and
//!   group admin calls.
//! - [`admin`]: create/delete/describe topics, partitions, configs, offsets, cluster.
//!
//! Every fallible call returns [`Error`], a `thiserror` enum whose messages say
//! what to fix; errors a broker sends back keep their Kafka [`ErrorCode`].
//!
//! # Not here yet
//!
//! Transactions, SASL/TLS, and incremental fetch sessions.

pub mod admin;
pub mod api;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod consumer;
pub mod error;
pub mod group;
pub mod offsets;
pub mod producer;
mod util;

pub use admin::Admin;
pub use cluster::{Cluster, TopicPartition};
pub use config::{ClientConfig, ConnectionConfig};
pub use connection::Connection;
pub use consumer::{Consumer, ConsumerConfig, ConsumerRecord};
pub use error::{Error, Result};
pub use group::{GroupConfig, GroupConsumer, GroupProtocol};
pub use offsets::{ListedOffset, OffsetSpec};
pub use producer::{Producer, ProducerConfig, ProducerRecord, RecordMetadata};
pub use weir_types::ErrorCode;

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}

    /// The handles can be shared across tasks, and their futures spawned.
    #[test]
    fn handles_and_futures_are_thread_safe() {
        send_sync::<Producer>();
        send_sync::<Consumer>();
        send_sync::<Admin>();
        send_sync::<Cluster>();
        send_sync::<Connection>();
        send_sync::<Error>();
        send_sync::<producer::DeliveryFuture>();
        // Building the futures is enough for the compiler to check them.
        send(&Producer::new(ProducerConfig::new("127.0.0.1:1")));
        send(&Consumer::new(ConsumerConfig::new("127.0.0.1:1")));
        send(&Admin::new(ClientConfig::new("127.0.0.1:1")));
    }

    /// Never called: type-checking it is the test.
    #[allow(dead_code)]
    async fn futures_of_methods_are_send(p: Producer, mut c: Consumer) {
        send(&p.send(ProducerRecord::new("t", "v")));
        send(&p.flush());
        send(&c.poll(std::time::Duration::ZERO));
    }
}
