//! Cluster metadata: the records that describe topics, partitions, brokers and
//! configs, the image they add up to, and the controller that writes them.
//!
//! This crate is the control path of Weir, shaped like Kafka's KRaft. The controller
//! validates admin requests (CreateTopics, DeleteTopics, CreatePartitions, the
//! config APIs, auto-creation from Metadata) and turns each into metadata records
//! ([`MetadataRecord`]: TopicRecord, PartitionRecord, ConfigRecord, ... framed as in
//! KRaft and stored as RecordBatches in `__cluster_metadata-0`). Records are replayed
//! onto a [`MetadataDelta`] to make the next immutable [`MetadataImage`], which is
//! published to the broker's subscribers — the replica manager (which partitions to
//! lead or follow, see [`LocalChanges`]) and the Metadata handler. Today one node
//! runs a [`controller::Controller`] over a local [`MetadataStore`]; with a Raft
//! quorum (the replicated cluster) the controller runs over the quorum's
//! [`MetadataJournal`] instead, and the image, delta and publishing stay the same. The crate sits below the broker
//! and above the codec: it knows records and images, never requests or sockets.
//!
//! # Pieces
//!
//! - [`record`]: the record types and their frame inside a log record value.
//! - [`image`] / [`delta`]: the state as of an offset, and how records change it.
//! - [`changes`]: what an image change means for one broker.
//! - [`log`] / [`store`]: the durable metadata log and replay at startup.
//! - [`meta_properties`]: the data directory's cluster and node id.
//! - [`journal`]: where the controller's changes are committed (the local store, or
//!   a Raft quorum), and how requests reach the active controller.
//! - [`controller`]: the single writer; requests in, per-topic results out; broker
//!   registration, fencing, leader election, placement.
//! - [`lifecycle`]: a broker's registration and heartbeats.

pub mod changes;
pub mod controller;
pub mod delta;
mod error;
pub mod image;
mod image_records;
pub mod journal;
pub mod lifecycle;
pub mod log;
pub mod meta_properties;
pub mod record;
pub mod store;
pub mod uuid;

pub use changes::{LocalChanges, LocalPartition, RemovedPartition};
pub use controller::{Controller, ControllerConfig};
pub use delta::MetadataDelta;
pub use error::{MetadataError, Result};
pub use image::{
    BrokerImage, ConfigResource, Endpoint, MetadataImage, MetadataProvenance, PartitionImage,
    TopicImage,
};
pub use journal::{BoxFuture, ControllerTransport, ForwardedRequestHandler, MetadataJournal};
pub use lifecycle::{BrokerLifecycle, BrokerStatus, LifecycleConfig};
pub use log::{FileMetadataLog, MetadataLog, PartitionMetadataLog};
pub use meta_properties::MetaProperties;
pub use record::MetadataRecord;
pub use store::MetadataStore;
pub use weir_protocol::Uuid;
