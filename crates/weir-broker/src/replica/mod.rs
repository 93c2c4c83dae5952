//! The replica layer: the partitions this broker hosts, between the api handlers
//! and `weir-log`.
//!
//! On the request path, a handler names a partition by topic and index; the
//! [`ReplicaManager`] finds the hosted partition, checks that this broker leads it in
//! the leader epoch the client expects, and runs the operation on its log: append
//! (Produce), read (Fetch), offset lookups (ListOffsets), log start moves
//! (DeleteRecords). On the control path, [`ReplicaManager::apply`] makes the hosted
//! partitions follow the cluster metadata: each hosted partition is leader,
//! follower or leaderless in the leader epoch of the latest image.
//!
//! Replication is Kafka's: followers pull from the leader with Fetch (replica id
//! set), the leader tracks each follower's log end, the ISR and the high watermark
//! (the smallest log end over the ISR; `leader.rs`), proposes ISR changes to the
//! controller through an [`IsrChannel`] (`isr.rs`), and answers acks=all once the
//! high watermark passed the batch. A follower truncates to its leader's epoch
//! boundary before fetching in a new epoch (OffsetForLeaderEpoch; `follower.rs`)
//! and appends the leader's batches verbatim; one fetcher task per leader
//! (`replica_fetcher.rs`) talks to it through a [`LeaderClient`] (TCP:
//! [`TcpLeaderClient`]; tests: [`InMemoryLeaders`]). With one replica the ISR is
//! this broker and the high watermark rule is [`single_replica_high_watermark`].
//!
//! # Usage (for the api layer and the composition root)
//!
//! ```text
//! // start: before serving requests
//! let replicas = ReplicaManager::open(ReplicaConfig::from_broker(&config), clock, &shutdown).await?;
//! // cluster mode only: ISR changes to the controller, fetches to leaders
//! replicas.start_replication(isr_channel, Arc::new(TcpLeaderClient::new(images, "PLAINTEXT", timeout)));
//! replicas.apply_image(&controller.image()).await?;   // or apply(Vec<TopicAssignment>)
//! replicas.spawn_image_listener(controller.subscribe());  // follows every new image
//! replicas.wait_applied(image.offset(), deadline).await;   // e.g. after CreateTopics
//!
//! // Produce: append every partition of the request, then wait for all
//! let acks = Acks::from_wire(request.acks).ok_or(INVALID_REQUIRED_ACKS)?;
//! let pending = replicas.start_append(topic, partition, records, acks);   // Result<PendingAppend>
//! let result = pending?.wait_until(deadline).await;                       // Result<AppendResult>
//! // error code: e.error_code(); message: e.to_string()
//!
//! // Fetch: one call for the whole request (long poll inside)
//! let results = replicas.fetch(FetchParams { .. }, vec![FetchPartition { .. }]).await;
//!
//! // ListOffsets / DeleteRecords / Metadata / DescribeLogDirs
//! replicas.list_offsets(topic, partition, timestamp, isolation, epoch, replica_id)?;
//! replicas.delete_records(topic, partition, offset).await?;
//! replicas.end_offset_for_epoch(topic, partition, current_epoch, epoch)?;  // OffsetForLeaderEpoch
//! replicas.is_online(topic, partition); replicas.partition_status(topic, partition);
//! replicas.log_dirs(); replicas.topic_name(topic_id);
//!
//! // stop: after the network layer has drained
//! replicas.shutdown().await?;
//! ```
//!
//! Every error is a [`ReplicaError`]; [`ReplicaError::error_code`] is the one
//! mapping to Kafka error codes.
//!
//! # Durability and the high watermark
//!
//! Weir's default `log.flush.interval.messages=1` makes every topic fsync-before-ack:
//! an acks=all produce is answered once its data is fsynced (on the leader; and, in
//! a cluster, once every ISR member has it), by a per-partition
//! flusher that commits in groups (`flusher.rs`); consumers read only fsynced data.
//! A topic that raises `flush.messages` above 1 trades that for page-cache speed,
//! as in Kafka: acks=all is answered after the write, consumers read up to the log
//! end, and the flusher fsyncs after that many messages or once unflushed data is
//! `flush.ms` old.
//!
//! # Files
//!
//! `manager.rs` (startup, shutdown), `apply.rs` (following the metadata),
//! `partition.rs` (state, locking, high watermark), `produce.rs`, `flusher.rs`
//! (group commit), `fetch.rs`, `delayed.rs` (long-poll wakeups), `leader.rs`
//! (followers' progress, ISR decisions), `isr.rs` (ISR changes to the
//! controller), `follower.rs` (truncation, fetched data), `replica_fetcher.rs`,
//! `leader_client.rs`, `tcp_leader_client.rs`, `offsets.rs`
//! (ListOffsets, DeleteRecords), `background.rs` (retention, checkpoints),
//! `dirs.rs` (directory layout), `log_dir.rs` (a failed log directory goes
//! offline: what that means), `info.rs` (status views), `config.rs`,
//! `assignment.rs`, `error.rs`. Each opens with the why of its part.

mod apply;
mod assignment;
mod background;
mod config;
mod delayed;
mod dirs;
mod error;
mod fetch;
mod flusher;
mod follower;
mod info;
mod isr;
mod leader;
mod leader_client;
mod log_dir;
mod manager;
mod offsets;
mod partition;
mod produce;
mod replica_fetcher;
mod tcp_leader_client;

pub use assignment::{assignments_from_image, PartitionAssignment, TopicAssignment};
pub use config::{
    fsync_before_ack, log_defaults, topic_log_config, ReplicaConfig,
    DEFAULT_CHECKPOINT_INTERVAL_MS, DEFAULT_PRODUCER_ID_EXPIRATION_MS,
    DEFAULT_REPLICA_FETCH_BACKOFF_MS, DEFAULT_REPLICA_FETCH_MAX_BYTES,
    DEFAULT_REPLICA_FETCH_MIN_BYTES, DEFAULT_REPLICA_FETCH_RESPONSE_MAX_BYTES,
    DEFAULT_REPLICA_FETCH_WAIT_MAX_MS, DEFAULT_REPLICA_LAG_TIME_MAX_MS,
};
pub use dirs::{DELETE_SUFFIX, PARTITION_METADATA_FILE, STRAY_SUFFIX};
pub use error::ReplicaError;
pub use fetch::{FetchParams, FetchPartition, FetchedPartition, IsolationLevel, MAX_FETCH_WAIT};
pub use info::{LogDirInfo, LogDirPartition, PartitionStatus};
pub use isr::{AlterIsr, BoxFuture, IsrChannel, IsrUpdate};
pub use leader::replicated_high_watermark;
pub use leader_client::{EpochEnd, EpochQuery, InMemoryLeaders, LeaderClient, ReplicaFetch};
pub use manager::ReplicaManager;
pub use offsets::ListedOffset;
pub use partition::{single_replica_high_watermark, Role};
pub use produce::{Acks, AppendResult, PendingAppend};
pub use tcp_leader_client::TcpLeaderClient;
