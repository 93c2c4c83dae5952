//! The local metadata store: a [`MetadataLog`] and the image its records make.
//!
//! On open the whole log is replayed into an image (Kafka's `MetadataLoader`, with
//! no snapshots yet). [`MetadataStore::append`] is the write path of every change:
//! the records are first replayed onto a delta of the current image — a change that
//! does not apply is refused before anything reaches the disk, so the log never holds
//! a batch that would stop the next startup — then written as one batch and fsynced,
//! and only then does the new image become current. One batch per change makes each
//! change atomic: after a crash it is either wholly in the log or wholly truncated
//! away by recovery.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::watch;
use weir_protocol::records::{BatchBuilder, BatchView};
use weir_types::{Clock, NodeId, Offset, SystemClock};

use crate::delta::MetadataDelta;
use crate::error::{MetadataError, Result};
use crate::image::MetadataImage;
use crate::journal::MetadataJournal;
use crate::log::{MetadataLog, PartitionMetadataLog};
use crate::meta_properties::MetaProperties;
use crate::record::MetadataRecord;
use crate::uuid::UuidGenerator;

/// The leader epoch written into batches by the single-node controller (KRaft's
/// first elected epoch). The Raft controller will write its own term here.
pub const SINGLE_NODE_EPOCH: i32 = 1;

/// The most a compressed metadata batch may inflate to when read (we write them
/// uncompressed; a Raft leader might not).
const MAX_BATCH_DECOMPRESSED: usize = 64 << 20;

/// The most records one change may hold (Kafka's `MAX_RECORDS_PER_USER_OP`).
pub const MAX_RECORDS_PER_BATCH: usize = 10_000;

/// The metadata log and its current image; see the module docs.
pub struct MetadataStore {
    /// Where the records live.
    log: Box<dyn MetadataLog>,
    /// The image of every record in `log`.
    image: Arc<MetadataImage>,
    /// Leader epoch stamped on appended batches.
    epoch: i32,
    /// Timestamps of appended batches.
    clock: Arc<dyn Clock>,
    /// Publishes every new image to [`MetadataJournal::subscribe`]rs.
    images: watch::Sender<Arc<MetadataImage>>,
    /// The active controller: always this node (a single node is its own quorum).
    active: watch::Sender<Option<NodeId>>,
}

impl std::fmt::Debug for MetadataStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataStore")
            .field("offset", &self.image.offset())
            .field("next_offset", &self.log.next_offset())
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl MetadataStore {
    /// Opens the store of node `node_id` in `data_dir` on a weir-log partition log
    /// (see [`open_with_log`](Self::open_with_log)).
    pub fn open(data_dir: &Path, node_id: NodeId) -> Result<MetadataStore> {
        MetadataStore::open_in_cluster(data_dir, node_id, None)
    }

    /// As [`open`](Self::open), for a node that must belong to cluster
    /// `cluster_id` when given (`cluster.id`): a new directory is formatted with
    /// it, one formatted for another cluster is refused.
    pub fn open_in_cluster(
        data_dir: &Path,
        node_id: NodeId,
        cluster_id: Option<&str>,
    ) -> Result<MetadataStore> {
        std::fs::create_dir_all(data_dir).map_err(|e| MetadataError::io("create", data_dir, e))?;
        let log = PartitionMetadataLog::open(data_dir, Arc::new(SystemClock))?;
        MetadataStore::open_with_log(data_dir, node_id, cluster_id, Box::new(log))
    }

    /// Opens the store of node `node_id` on `log` (already opened, and so
    /// recovered, in `data_dir`): reads (or, for a new directory, writes)
    /// `meta.properties`, then replays the log into the image.
    pub fn open_with_log(
        data_dir: &Path,
        node_id: NodeId,
        cluster_id: Option<&str>,
        log: Box<dyn MetadataLog>,
    ) -> Result<MetadataStore> {
        let empty = log.next_offset() == Offset(0);
        let props = MetaProperties::load_or_format(
            data_dir,
            node_id,
            cluster_id,
            empty,
            &mut UuidGenerator::from_entropy(),
        )?;
        MetadataStore::load(log, props.cluster_id, node_id)
    }

    /// Replays every record of `log` into the image of cluster `cluster_id`, for
    /// node `node_id` (the active controller this store reports).
    pub fn load(
        mut log: Box<dyn MetadataLog>,
        cluster_id: String,
        node_id: NodeId,
    ) -> Result<MetadataStore> {
        let base = Arc::new(MetadataImage::empty(cluster_id));
        let mut delta = MetadataDelta::new(base);
        let batches = log.read_all()?;
        let mut records = 0usize;
        for batch in &batches {
            records += replay_batch(&mut delta, batch)?;
        }
        let image = delta.apply();
        if let Err(e) = image.check_invariants() {
            return Err(MetadataError::Replay {
                offset: image.offset().get(),
                reason: format!("image invariant after load: {e}"),
            });
        }
        tracing::info!(
            batches = batches.len(),
            records,
            offset = image.offset().get(),
            topics = image.topic_count(),
            brokers = image.brokers().len(),
            "metadata log replayed"
        );
        let image = Arc::new(image);
        Ok(MetadataStore {
            log,
            images: watch::Sender::new(Arc::clone(&image)),
            image,
            epoch: SINGLE_NODE_EPOCH,
            clock: Arc::new(SystemClock),
            active: watch::Sender::new(Some(node_id)),
        })
    }

    /// Uses `clock` for batch timestamps.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The image of every record in the log.
    pub fn image(&self) -> &Arc<MetadataImage> {
        &self.image
    }

    /// The offset the next record will get.
    pub fn next_offset(&self) -> Offset {
        self.log.next_offset()
    }

    /// Makes `records` one durable change: replayed onto the current image (refused
    /// if they do not apply), appended as one batch and fsynced, then made current.
    /// Returns the new image. An empty change is a no-op.
    pub fn append(&mut self, records: &[MetadataRecord]) -> Result<Arc<MetadataImage>> {
        if records.is_empty() {
            return Ok(Arc::clone(&self.image));
        }
        if records.len() > MAX_RECORDS_PER_BATCH {
            return Err(MetadataError::TooManyRecords(records.len()));
        }
        let base_offset = self.log.next_offset();
        let now_ms = self.clock.now_ms();
        let mut delta = MetadataDelta::new(Arc::clone(&self.image));
        let mut builder = BatchBuilder::new()
            .base_offset(base_offset.get())
            .partition_leader_epoch(self.epoch);
        for (i, record) in records.iter().enumerate() {
            let offset = base_offset.plus(i as i64);
            delta
                .replay(offset, self.epoch, now_ms, record)
                .map_err(|e| e.at_offset(offset.get()))?;
            builder.append(now_ms, None, Some(&record.encode()?), &[])?;
        }
        let image = delta.apply();
        // Release builds too: an image that breaks its invariants must never be
        // written, let alone served.
        if let Err(e) = image.check_invariants() {
            panic!("metadata change breaks an image invariant: {e}");
        }
        self.log.append(builder.build()?)?;
        self.image = Arc::new(image);
        self.images.send_replace(Arc::clone(&self.image));
        Ok(Arc::clone(&self.image))
    }
}

/// The single-node journal: every append is committed by its fsync, and this node
/// is always the active controller.
impl MetadataJournal for MetadataStore {
    fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.image)
    }

    fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.images.subscribe()
    }

    fn next_offset(&self) -> Offset {
        self.log.next_offset()
    }

    fn active_controller(&self) -> watch::Receiver<Option<NodeId>> {
        self.active.subscribe()
    }

    fn append(&mut self, records: &[MetadataRecord]) -> Result<Arc<MetadataImage>> {
        MetadataStore::append(self, records)
    }
}

/// Replays the records of one batch; returns how many there were. Control batches
/// (Raft's leader-change and snapshot markers) carry no metadata and are skipped.
fn replay_batch(delta: &mut MetadataDelta, batch: &BatchView) -> Result<usize> {
    if batch.is_control() {
        return Ok(0);
    }
    let epoch = batch.partition_leader_epoch();
    let time = batch.max_timestamp();
    let mut n = 0;
    for record in batch.records(MAX_BATCH_DECOMPRESSED)? {
        let record = record?;
        let at = record.offset;
        let value: Bytes = record.value.ok_or(MetadataError::Frame {
            offset: at,
            reason: "null record value".into(),
        })?;
        let decoded = MetadataRecord::decode(value).map_err(|e| e.at_offset(at))?;
        delta
            .replay(Offset(at), epoch, time, &decoded)
            .map_err(|e| e.at_offset(at))?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
