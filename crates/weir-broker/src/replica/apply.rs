//! Following the metadata: create, update and delete hosted partitions.
//!
//! [`ReplicaManager::apply`] is given every topic of the cluster and makes the
//! hosted set match (see [`super::assignment`] for why full state, not deltas):
//!
//! - a hosted topic that is gone, or now has another topic id (deleted and
//!   re-created), stops being served and its partition directories are deleted
//!   (renamed `-delete`, then removed); so is a partition no longer assigned here;
//! - a partition assigned here and not hosted is created: it claims the log found at
//!   startup if its `partition.metadata` names the same topic id (or none), and
//!   otherwise gets a new log in the data directory with the fewest partitions, with
//!   `partition.metadata` written before it is served;
//! - a hosted partition takes its new leader, epoch and ISR, and its topic's config.
//!
//! The first call also sets aside (`-stray`) every log found at startup that the
//! metadata did not claim. Removals happen before creations, so a topic re-created
//! under the same name gets a fresh directory.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::Instant;
use weir_log::{Log, LogConfig, OpenHints, TopicPartition};
use weir_metadata::MetadataImage;
use weir_protocol::Uuid;
use weir_types::{NodeId, Offset};

use super::assignment::{assignments_from_image, PartitionAssignment, TopicAssignment};
use super::config::topic_log_config;
use super::dirs;
use super::error::{ReplicaError, Result};
use super::manager::{HostedTopic, Loaded, ReplicaManager};
use super::partition::Partition;

/// A partition to create, decided before any disk work.
#[derive(Debug)]
struct NewPartition {
    topic: String,
    topic_id: Uuid,
    assignment: PartitionAssignment,
    config: LogConfig,
}

impl ReplicaManager {
    /// Applies a metadata image: [`ReplicaManager::apply`] of all its topics, then
    /// records the image's offset for [`ReplicaManager::wait_applied`].
    pub async fn apply_image(&self, image: &MetadataImage) -> Result<()> {
        let result = self.apply(assignments_from_image(image)).await;
        let ineligible: Arc<BTreeSet<NodeId>> = Arc::new(
            image
                .brokers()
                .values()
                .filter(|b| b.fenced || b.in_controlled_shutdown)
                .map(|b| b.id)
                .collect(),
        );
        for p in self.all_partitions() {
            p.set_ineligible(&ineligible);
        }
        let offset = image.offset();
        self.shared.applied.send_modify(|o| *o = (*o).max(offset));
        result
    }

    /// Follows `images` (the controller's `subscribe()`): applies the current image
    /// and every later one, until the channel closes or the broker shuts down. A
    /// slow apply skips intermediate images, which full-state reconciliation makes
    /// harmless. Errors are logged; the next image retries.
    pub fn spawn_image_listener(&self, mut images: watch::Receiver<Arc<MetadataImage>>) {
        let m = self.clone();
        self.shared.tasks.spawn(async move {
            loop {
                let image = Arc::clone(&images.borrow_and_update());
                if let Err(e) = m.apply_image(&image).await {
                    tracing::error!(error = %e, offset = image.offset().get(), "applying metadata image failed");
                }
                tokio::select! {
                    _ = m.shared.cancel.cancelled() => return,
                    changed = images.changed() => if changed.is_err() { return },
                }
            }
        });
    }

    /// Waits until an image at `offset` or later was applied (a CreateTopics
    /// handler waits for its topic's partitions to be served), until `deadline`.
    /// Returns whether it was.
    pub async fn wait_applied(&self, offset: Offset, deadline: Instant) -> bool {
        let mut rx = self.shared.applied.subscribe();
        let reached = tokio::time::timeout_at(deadline, rx.wait_for(|a| *a >= offset)).await;
        matches!(reached, Ok(Ok(_)))
    }

    /// Offset of the last metadata image applied (-1 before the first).
    pub fn applied_offset(&self) -> Offset {
        *self.shared.applied.borrow()
    }

    /// Reconciles the hosted partitions with `topics`, every topic of the cluster;
    /// see the module docs. Idempotent. Disk work runs on the blocking pool. Fails
    /// with the first error met (after trying everything; each error is logged); a
    /// partition whose log cannot be created is hosted offline.
    pub async fn apply(&self, topics: Vec<TopicAssignment>) -> Result<()> {
        let _serial = self.shared.apply_lock.lock().await;
        if self.is_shutting_down() {
            return Ok(());
        }
        let node = self.shared.config.node_id;
        let desired: HashMap<&str, &TopicAssignment> =
            topics.iter().map(|t| (t.name.as_str(), t)).collect();
        let removed = self.unhost_removed(&desired);

        let mut to_create = Vec::new();
        for topic in &topics {
            let config =
                topic_log_config(&self.shared.config.log_defaults, &topic.configs).unwrap_or_else(|e| {
                    tracing::warn!(topic = %topic.name, error = %e, "invalid topic config in the metadata; using the broker defaults");
                    self.shared.config.log_defaults.clone()
                });
            for pa in topic
                .partitions
                .iter()
                .filter(|p| p.replicas.contains(&node))
            {
                match self.hosted(&topic.name, pa.partition) {
                    Some(p) => {
                        p.update_assignment(pa, node);
                        match p.set_config(config.clone()) {
                            // An offline partition takes its config when it reopens.
                            Err(e) if !e.is_storage_error() => {
                                tracing::warn!(partition = %p.name(), error = %e, "cannot apply the topic config");
                            }
                            _ => {}
                        }
                    }
                    None => to_create.push(NewPartition {
                        topic: topic.name.clone(),
                        topic_id: topic.topic_id,
                        assignment: pa.clone(),
                        config: config.clone(),
                    }),
                }
            }
        }

        let m = self.clone();
        let (created, first_error) = self
            .blocking(move || {
                let mut first_error = None;
                for p in removed {
                    if let Err(e) = m.delete_partition(&p) {
                        tracing::error!(partition = %p.name(), error = %e, "cannot delete partition");
                        first_error.get_or_insert(e);
                    }
                }
                let created = m.create_partitions(to_create, &mut first_error);
                m.set_aside_unclaimed(&mut first_error);
                (created, first_error)
            })
            .await?;

        let mut hosted = self.topics_mut();
        for p in &created {
            hosted.names_by_id.insert(p.topic_id, p.topic.clone());
            hosted
                .by_name
                .entry(p.topic.clone())
                .or_insert_with(|| HostedTopic {
                    id: p.topic_id,
                    partitions: BTreeMap::new(),
                })
                .partitions
                .insert(p.index, Arc::clone(p));
        }
        drop(hosted);
        for p in &created {
            self.spawn_flusher(p);
            tracing::info!(partition = %p.name(), "serving partition");
        }
        self.reconcile_fetchers();
        first_error.map_or(Ok(()), Err)
    }

    /// Takes out of the hosted maps every partition that must go; they are stopped
    /// here (no request reaches them any more) and deleted by the caller.
    fn unhost_removed(&self, desired: &HashMap<&str, &TopicAssignment>) -> Vec<Arc<Partition>> {
        let node = self.shared.config.node_id;
        let mut removed = Vec::new();
        let mut topics = self.topics_mut();
        let gone: Vec<String> = topics
            .by_name
            .iter()
            .filter(|(name, t)| {
                desired
                    .get(name.as_str())
                    .is_none_or(|d| d.topic_id != t.id)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            if let Some(t) = topics.by_name.remove(&name) {
                topics.names_by_id.remove(&t.id);
                removed.extend(t.partitions.into_values());
            }
        }
        for (name, t) in topics.by_name.iter_mut() {
            let Some(d) = desired.get(name.as_str()) else {
                continue;
            };
            let keep: HashSet<i32> = d
                .partitions
                .iter()
                .filter(|p| p.replicas.contains(&node))
                .map(|p| p.partition)
                .collect();
            let doomed: Vec<i32> = t
                .partitions
                .keys()
                .filter(|i| !keep.contains(i))
                .copied()
                .collect();
            for i in doomed {
                removed.extend(t.partitions.remove(&i));
            }
        }
        topics.by_name.retain(|_, t| !t.partitions.is_empty());
        let live: HashSet<Uuid> = topics.by_name.values().map(|t| t.id).collect();
        topics.names_by_id.retain(|id, _| live.contains(id));
        drop(topics);
        removed
    }

    /// Stops `p` and deletes its directory (blocking).
    fn delete_partition(&self, p: &Arc<Partition>) -> Result<()> {
        drop(p.stop());
        let dir = p
            .data_dir
            .join(TopicPartition::new(p.topic.clone(), p.index).dir_name());
        tracing::info!(partition = %p.name(), dir = %dir.display(), "deleting partition");
        dirs::delete_partition_dir(&dir)
    }

    /// Opens or creates each new partition's log (blocking).
    fn create_partitions(
        &self,
        to_create: Vec<NewPartition>,
        first_error: &mut Option<ReplicaError>,
    ) -> Vec<Arc<Partition>> {
        let node = self.shared.config.node_id;
        let mut counts = self.partition_counts();
        let mut created = Vec::with_capacity(to_create.len());
        for new in to_create {
            let tp = TopicPartition::new(new.topic.clone(), new.assignment.partition);
            let claimed = self.claim_loaded(&tp, new.topic_id, first_error);
            let (log, data_dir) = match claimed {
                Some(loaded) => {
                    let log = loaded.log.and_then(|mut log| match log.set_config(new.config.clone()) {
                        Ok(()) => Some(log),
                        Err(e) => {
                            tracing::error!(partition = %tp.dir_name(), error = %e, "cannot apply the topic config");
                            first_error.get_or_insert(e.into());
                            None
                        }
                    });
                    (log, loaded.data_dir)
                }
                None => {
                    let online: Vec<PathBuf> = self
                        .shared
                        .dirs
                        .iter()
                        .filter(|d| !d.is_offline())
                        .map(|d| d.path.clone())
                        .collect();
                    let candidates = if online.is_empty() {
                        &self.shared.config.log_dirs
                    } else {
                        &online
                    };
                    let data_dir = least_loaded(candidates, &counts);
                    let dir = self.log_dir(&data_dir);
                    if dir.is_offline() {
                        // Every directory failed: host the partition offline rather
                        // than write to a failed device.
                        tracing::error!(partition = %tp.dir_name(), "every log directory is offline; the partition stays offline");
                        (None, data_dir)
                    } else {
                        match self.create_log(&data_dir, &tp, new.topic_id, new.config) {
                            Ok(log) => (Some(log), data_dir),
                            Err(e) => {
                                tracing::error!(partition = %tp.dir_name(), error = %e, "cannot create log; the partition stays offline");
                                if e.is_storage_error() {
                                    dir.fail(&format!("creating {}: {e}", tp.dir_name()));
                                }
                                first_error.get_or_insert(e);
                                (None, data_dir)
                            }
                        }
                    }
                }
            };
            *counts.entry(data_dir.clone()).or_default() += 1;
            created.push(Arc::new(
                Partition::new(
                    new.topic,
                    new.assignment.partition,
                    new.topic_id,
                    self.log_dir(&data_dir),
                    log,
                    &new.assignment,
                    node,
                )
                .with_lag_time_max(self.shared.config.replica_lag_time_max),
            ));
        }
        created
    }

    /// The log found at startup for `tp`, if it belongs to topic `topic_id`. A log
    /// of another topic id is set aside as stray, and `None` returned.
    fn claim_loaded(
        &self,
        tp: &TopicPartition,
        topic_id: Uuid,
        first_error: &mut Option<ReplicaError>,
    ) -> Option<Loaded> {
        let loaded = self.loaded().as_mut()?.remove(tp)?;
        let dir = loaded.data_dir.join(tp.dir_name());
        match loaded.topic_id {
            Some(id) if id != topic_id => {
                tracing::warn!(partition = %tp.dir_name(), "log belongs to an older topic of the same name; setting it aside");
                drop(loaded.log);
                if let Err(e) = dirs::rename_aside(&dir, dirs::STRAY_SUFFIX) {
                    first_error.get_or_insert(e);
                }
                None
            }
            Some(_) => Some(loaded),
            None => {
                if let Err(e) = dirs::write_partition_metadata(&dir, topic_id) {
                    tracing::warn!(error = %e, "cannot write partition.metadata");
                }
                Some(loaded)
            }
        }
    }

    /// A new, empty log with its `partition.metadata`.
    fn create_log(
        &self,
        data_dir: &std::path::Path,
        tp: &TopicPartition,
        topic_id: Uuid,
        config: LogConfig,
    ) -> Result<Log> {
        let dir = data_dir.join(tp.dir_name());
        let log = Log::open(
            &dir,
            config,
            self.shared.clock.clone(),
            OpenHints::default(),
        )?;
        dirs::write_partition_metadata(&dir, topic_id)?;
        Ok(log)
    }

    /// After the first apply: sets aside every startup log nobody claimed.
    fn set_aside_unclaimed(&self, first_error: &mut Option<ReplicaError>) {
        let leftovers = self.loaded().take().unwrap_or_default();
        for (tp, loaded) in leftovers {
            let dir = loaded.data_dir.join(tp.dir_name());
            tracing::warn!(dir = %dir.display(), "log not in the metadata; setting it aside as stray");
            if let Some(log) = loaded.log {
                if let Err(e) = log.close() {
                    tracing::warn!(error = %e, "cannot close stray log");
                }
            }
            if let Err(e) = dirs::rename_aside(&dir, dirs::STRAY_SUFFIX) {
                first_error.get_or_insert(e);
            }
        }
    }

    /// Partitions per data directory (hosted and found at startup).
    fn partition_counts(&self) -> HashMap<PathBuf, usize> {
        let mut counts: HashMap<PathBuf, usize> = HashMap::new();
        for p in self.all_partitions() {
            *counts.entry(p.data_dir.clone()).or_default() += 1;
        }
        if let Some(loaded) = self.loaded().as_ref() {
            for l in loaded.values() {
                *counts.entry(l.data_dir.clone()).or_default() += 1;
            }
        }
        counts
    }
}

/// The data directory with the fewest partitions (the first on a tie), as Kafka
/// places new partitions.
fn least_loaded(dirs: &[PathBuf], counts: &HashMap<PathBuf, usize>) -> PathBuf {
    dirs.iter()
        .min_by_key(|d| counts.get(*d).copied().unwrap_or(0))
        .cloned()
        .unwrap_or_default()
}
