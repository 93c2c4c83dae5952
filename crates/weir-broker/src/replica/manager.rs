//! The replica manager: the partitions this broker hosts, from startup to shutdown.
//!
//! # Lifecycle
//!
//! 1. [`ReplicaManager::open`] scans every data directory, removes what an
//!    interrupted topic deletion left, reads the checkpoints and opens every
//!    partition log (weir-log recovers it if the last shutdown was not clean). The
//!    logs wait, unserved, for the metadata.
//! 2. [`ReplicaManager::apply`] reconciles the hosted partitions with the metadata
//!    (see [`super::assignment`]); the first call claims the logs found at startup
//!    and sets aside as stray any log the metadata does not know.
//! 3. Background tasks run until the broker's cancellation token fires: a flusher
//!    per partition ([`super::flusher`]), retention, checkpoints.
//! 4. [`ReplicaManager::shutdown`] stops them, flushes and closes every log, writes
//!    the checkpoints and the clean-shutdown marker, so the next start skips
//!    recovery. A log directory that went offline (`log_dir.rs`) is left as it is:
//!    no close, no checkpoint, no marker; the next start recovers it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use weir_log::checkpoint::{
    self, LOG_START_OFFSET_CHECKPOINT, RECOVERY_POINT_CHECKPOINT, REPLICATION_OFFSET_CHECKPOINT,
};
use weir_log::{Log, OpenHints, TopicPartition};
use weir_protocol::Uuid;
use weir_types::{Clock, NodeId, Offset};

use super::config::ReplicaConfig;
use super::dirs;
use super::error::{ReplicaError, Result};
use super::isr::IsrChannel;
use super::leader_client::LeaderClient;
use super::log_dir::LogDir;
use super::partition::Partition;

/// The partitions of this broker and the machinery around them. Cheap to clone:
/// every clone is the same manager. See the module docs.
#[derive(Debug, Clone)]
pub struct ReplicaManager {
    pub(super) shared: Arc<Shared>,
}

/// State shared by every clone of the manager.
pub(super) struct Shared {
    /// Settings.
    pub(super) config: ReplicaConfig,
    /// Time for the logs (timestamps, retention, segment age).
    pub(super) clock: Arc<dyn Clock>,
    /// The health of each `log.dirs` entry, in config order.
    pub(super) dirs: Vec<Arc<LogDir>>,
    /// Hosted topics.
    topics: RwLock<Topics>,
    /// Logs found at startup and not yet claimed by the metadata; `None` after the
    /// first [`ReplicaManager::apply`].
    pub(super) loaded: Mutex<Option<BTreeMap<TopicPartition, Loaded>>>,
    /// Serialises [`ReplicaManager::apply`] and shutdown.
    pub(super) apply_lock: tokio::sync::Mutex<()>,
    /// Serialises checkpoint writes (periodic, DeleteRecords, shutdown).
    pub(super) checkpoint_lock: Mutex<()>,
    /// Fires on broker shutdown (a child of the broker's token).
    pub(super) cancel: CancellationToken,
    /// Every background task, so shutdown can wait for them.
    pub(super) tasks: TaskTracker,
    /// Set once shutdown began.
    pub(super) closed: AtomicBool,
    /// Offset of the last metadata image applied (-1 before the first).
    pub(super) applied: tokio::sync::watch::Sender<Offset>,
    /// The controller and leader seams, once replication started.
    pub(super) links: OnceLock<Links>,
    /// Leaders that have a running replica fetcher (`replica_fetcher.rs`).
    pub(super) fetchers: Mutex<BTreeSet<NodeId>>,
    /// Set while this broker is fenced by the controller or has lost contact with
    /// it for longer than the session timeout: it takes no writes as a leader.
    pub(super) fenced: AtomicBool,
    /// The broker epoch of the current registration (-1 without one): the
    /// clean-shutdown marker records it.
    broker_epoch: AtomicI64,
    /// The broker epoch the previous process shut down cleanly at, from the
    /// markers found at startup; -1 unless every data directory had one, all
    /// with the same epoch.
    previous_broker_epoch: AtomicI64,
}

/// What replication talks to; see [`ReplicaManager::start_replication`].
pub(super) struct Links {
    /// ISR changes to the controller.
    pub(super) isr: Arc<dyn IsrChannel>,
    /// Fetches from leaders.
    pub(super) leaders: Arc<dyn LeaderClient>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

/// Hosted topics, by name and by id.
#[derive(Debug, Default)]
pub(super) struct Topics {
    pub(super) by_name: HashMap<String, HostedTopic>,
    pub(super) names_by_id: HashMap<Uuid, String>,
}

/// A hosted topic: its id and the partitions hosted here.
#[derive(Debug)]
pub(super) struct HostedTopic {
    pub(super) id: Uuid,
    pub(super) partitions: BTreeMap<i32, Arc<Partition>>,
}

/// A log found at startup, waiting for the metadata to claim it.
#[derive(Debug)]
pub(super) struct Loaded {
    /// The log, or `None` if it failed to open (it then stays offline).
    pub(super) log: Option<Log>,
    /// The topic id from `partition.metadata`, if readable.
    pub(super) topic_id: Option<Uuid>,
    /// The `log.dirs` entry holding it.
    pub(super) data_dir: PathBuf,
}

impl ReplicaManager {
    /// Opens every log in `config.log_dirs` (step 1 of the module docs) and starts
    /// the background tasks, which stop when `shutdown` is cancelled. Disk work runs
    /// on the blocking pool. Fails only if a data directory cannot be created or
    /// listed; a log that fails to open is reported offline, not fatal.
    pub async fn open(
        config: ReplicaConfig,
        clock: Arc<dyn Clock>,
        shutdown: &CancellationToken,
    ) -> Result<ReplicaManager> {
        let dirs = config
            .log_dirs
            .iter()
            .map(|d| Arc::new(LogDir::new(d.clone())))
            .collect();
        let manager = ReplicaManager {
            shared: Arc::new(Shared {
                config,
                clock,
                dirs,
                topics: RwLock::new(Topics::default()),
                loaded: Mutex::new(None),
                apply_lock: tokio::sync::Mutex::new(()),
                checkpoint_lock: Mutex::new(()),
                cancel: shutdown.child_token(),
                tasks: TaskTracker::new(),
                closed: AtomicBool::new(false),
                applied: tokio::sync::watch::Sender::new(Offset(-1)),
                links: OnceLock::new(),
                fetchers: Mutex::new(BTreeSet::new()),
                fenced: AtomicBool::new(false),
                broker_epoch: AtomicI64::new(-1),
                previous_broker_epoch: AtomicI64::new(-1),
            }),
        };
        let m = manager.clone();
        let loaded = manager.blocking(move || m.load_all()).await??;
        *manager.loaded() = Some(loaded);
        manager.spawn_background_tasks();
        manager.spawn_dir_failure_handlers();
        Ok(manager)
    }

    /// The health of the `log.dirs` entry `path` (a path outside the config, which
    /// no partition has, gets a fresh detached entry).
    pub(super) fn log_dir(&self, path: &Path) -> Arc<LogDir> {
        self.shared
            .dirs
            .iter()
            .find(|d| d.path == path)
            .cloned()
            .unwrap_or_else(|| Arc::new(LogDir::new(path.to_path_buf())))
    }

    /// Whether the `log.dirs` entry `path` went offline after a storage error.
    pub fn is_log_dir_offline(&self, path: &Path) -> bool {
        self.log_dir(path).is_offline()
    }

    /// One task per log directory, waiting for it to fail: then every partition
    /// in it fails its waiters (acks=all produces, long polls) at once, as Kafka's
    /// log-dir failure handler stops serving the directory's replicas.
    fn spawn_dir_failure_handlers(&self) {
        for dir in &self.shared.dirs {
            let m = self.clone();
            let dir = Arc::clone(dir);
            self.shared.tasks.spawn(async move {
                tokio::select! {
                    _ = m.shared.cancel.cancelled() => return,
                    () = dir.failed() => {}
                }
                let mut n = 0;
                for p in m.all_partitions() {
                    if Arc::ptr_eq(&p.dir, &dir) {
                        p.fail_waiters();
                        n += 1;
                    }
                }
                tracing::error!(dir = %dir.path.display(), partitions = n, "stopped serving the partitions of an offline log directory");
            });
        }
    }

    /// Marks this broker fenced or not (a cluster node follows its registration
    /// status): while fenced, produce requests get NOT_LEADER_OR_FOLLOWER so
    /// clients look for the leader the controller elected in its place.
    pub fn set_fenced(&self, fenced: bool) {
        let was = self.shared.fenced.swap(fenced, Ordering::SeqCst);
        for p in self.all_partitions() {
            p.set_fenced(fenced);
        }
        if was != fenced {
            tracing::info!(
                fenced,
                "broker fencing changed; leaders take writes only when unfenced"
            );
        }
    }

    /// See [`ReplicaManager::set_fenced`].
    pub(crate) fn is_fenced(&self) -> bool {
        self.shared.fenced.load(Ordering::SeqCst)
    }

    /// Records the broker epoch of the current registration, for the
    /// clean-shutdown marker (a cluster node follows its registration).
    pub fn set_broker_epoch(&self, epoch: i64) {
        self.shared.broker_epoch.store(epoch, Ordering::SeqCst);
    }

    /// The broker epoch the previous process shut down cleanly at, or -1 after an
    /// unclean shutdown (in any data directory): what the broker registers with
    /// as its previous broker epoch, so the controller can tell (KIP-966).
    pub fn previous_broker_epoch(&self) -> i64 {
        self.shared.previous_broker_epoch.load(Ordering::SeqCst)
    }

    /// Starts replication: ISR changes go to the controller through `isr`, and
    /// partitions this broker follows are fetched from their leaders through
    /// `leaders` (one fetcher per leader, `replica_fetcher.rs`); lagging followers
    /// are checked every `replica.lag.time.max.ms / 2`. Call once, after
    /// [`ReplicaManager::open`] (before or after the first image); later calls do
    /// nothing. Without it the broker serves as a single node: leaders take
    /// appends, nothing is fetched, and the ISR never changes.
    pub fn start_replication(&self, isr: Arc<dyn IsrChannel>, leaders: Arc<dyn LeaderClient>) {
        if self.shared.links.set(Links { isr, leaders }).is_err() {
            tracing::warn!("replication already started");
            return;
        }
        self.spawn_isr_shrinker();
        self.reconcile_fetchers();
    }

    /// The replication seams, once started.
    pub(super) fn links(&self) -> Option<&Links> {
        self.shared.links.get()
    }

    /// The settings.
    pub fn config(&self) -> &ReplicaConfig {
        &self.shared.config
    }

    /// Runs disk work on the blocking pool.
    pub(super) async fn blocking<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| ReplicaError::TaskFailed(e.to_string()))
    }

    pub(super) fn topics(&self) -> RwLockReadGuard<'_, Topics> {
        // Topic maps are updated by whole inserts and removes: consistent even if a
        // panic poisoned the lock.
        self.shared
            .topics
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn topics_mut(&self) -> RwLockWriteGuard<'_, Topics> {
        self.shared
            .topics
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn loaded(
        &self,
    ) -> std::sync::MutexGuard<'_, Option<BTreeMap<TopicPartition, Loaded>>> {
        self.shared
            .loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The hosted partition, if any.
    pub(crate) fn hosted(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.topics()
            .by_name
            .get(topic)?
            .partitions
            .get(&partition)
            .cloned()
    }

    /// The hosted partition, or UNKNOWN_TOPIC_OR_PARTITION.
    pub(crate) fn partition(&self, topic: &str, partition: i32) -> Result<Arc<Partition>> {
        self.hosted(topic, partition)
            .ok_or_else(|| ReplicaError::UnknownTopicOrPartition {
                topic: topic.to_owned(),
                partition,
            })
    }

    /// Every hosted partition.
    pub(crate) fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.topics()
            .by_name
            .values()
            .flat_map(|t| t.partitions.values().cloned())
            .collect()
    }

    /// Whether shutdown has begun (long polls return early).
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shared.cancel.is_cancelled() || self.shared.closed.load(Ordering::Acquire)
    }

    /// The token that fires at shutdown.
    pub(crate) fn shutdown_token(&self) -> &CancellationToken {
        &self.shared.cancel
    }

    /// Starts a partition's flusher.
    pub(super) fn spawn_flusher(&self, p: &Arc<Partition>) {
        let gate = self.shared.config.flush_gate.clone();
        let cancel = self.shared.cancel.clone();
        self.shared
            .tasks
            .spawn(Arc::clone(p).run_flusher(gate, cancel));
    }

    /// Step 1 of the module docs, on the blocking pool.
    fn load_all(&self) -> Result<BTreeMap<TopicPartition, Loaded>> {
        let mut loaded = BTreeMap::new();
        let mut epochs = Vec::new();
        for data_dir in &self.shared.config.log_dirs {
            std::fs::create_dir_all(data_dir)
                .map_err(|e| ReplicaError::io("create directory", data_dir, e))?;
            let scan = dirs::scan(data_dir)?;
            for doomed in &scan.deleting {
                tracing::info!(dir = %doomed.display(), "removing a partition deleted before the restart");
                if let Err(e) = dirs::remove_dir(doomed) {
                    tracing::warn!(error = %e, "could not remove a deleted partition directory");
                }
            }
            let marker = checkpoint::take_clean_shutdown_marker(data_dir)?;
            epochs.push(marker.map(|m| m.broker_epoch));
            let clean = marker.is_some();
            let recovery_points = read_checkpoint(data_dir, RECOVERY_POINT_CHECKPOINT);
            let start_offsets = read_checkpoint(data_dir, LOG_START_OFFSET_CHECKPOINT);
            let high_watermarks = read_checkpoint(data_dir, REPLICATION_OFFSET_CHECKPOINT);
            for (tp, path) in scan.partitions {
                let hints = OpenHints {
                    recovery_point: recovery_points.get(&tp).copied(),
                    log_start_offset: start_offsets.get(&tp).copied(),
                    high_watermark: high_watermarks.get(&tp).copied(),
                    clean_shutdown: clean,
                };
                let defaults = self.shared.config.log_defaults.clone();
                let log = match Log::open_with_report(
                    &path,
                    defaults,
                    self.shared.clock.clone(),
                    hints,
                ) {
                    Ok((log, report)) => {
                        tracing::info!(dir = %path.display(), log_end_offset = log.log_end_offset().get(), recovered = report.segments_recovered, truncated = report.truncated, "opened log");
                        Some(log)
                    }
                    Err(e) => {
                        tracing::error!(dir = %path.display(), error = %e, "cannot open log; the partition stays offline");
                        None
                    }
                };
                let topic_id = dirs::read_partition_metadata(&path).unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "cannot read partition.metadata");
                    None
                });
                loaded.insert(
                    tp,
                    Loaded {
                        log,
                        topic_id,
                        data_dir: data_dir.clone(),
                    },
                );
            }
        }
        let previous = match epochs.split_first() {
            Some((Some(first), rest)) if rest.iter().all(|e| *e == Some(*first)) => *first,
            _ => -1,
        };
        self.shared
            .previous_broker_epoch
            .store(previous, Ordering::SeqCst);
        Ok(loaded)
    }

    /// Stops the background tasks, flushes and closes every log, writes the
    /// checkpoints and, for each data directory where all of that succeeded, the
    /// clean-shutdown marker. Call after the network layer has stopped taking
    /// requests; requests still arriving get NOT_LEADER_OR_FOLLOWER. Later calls do
    /// nothing.
    pub async fn shutdown(&self) -> Result<()> {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let _apply = self.shared.apply_lock.lock().await;
        self.shared.cancel.cancel();
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
        let m = self.clone();
        self.blocking(move || m.close_all()).await?
    }

    /// The disk half of [`ReplicaManager::shutdown`].
    fn close_all(&self) -> Result<()> {
        let mut entries: HashMap<PathBuf, Vec<CheckpointEntry>> = HashMap::new();
        let mut unclean: Vec<PathBuf> = Vec::new();
        let mut first_error = None;
        let mut fail = |dir: &Path, e: ReplicaError, unclean: &mut Vec<PathBuf>| {
            tracing::error!(dir = %dir.display(), error = %e, "clean shutdown failed");
            unclean.push(dir.to_path_buf());
            first_error.get_or_insert(e);
        };
        for p in self.all_partitions() {
            if p.dir.is_offline() {
                // Leave a failed directory as it is; recovery runs at the next start.
                drop(p.stop());
                unclean.push(p.data_dir.clone());
                continue;
            }
            if let Err(e) = p.flush_blocking() {
                fail(&p.data_dir, e.into(), &mut unclean);
            }
            let log = p.stop();
            let Some(log) = log else {
                unclean.push(p.data_dir.clone());
                continue;
            };
            let tp = TopicPartition::new(p.topic.clone(), p.index);
            entries
                .entry(p.data_dir.clone())
                .or_default()
                .push(CheckpointEntry::of(tp, &log));
            if let Err(e) = log.close() {
                fail(&p.data_dir, e.into(), &mut unclean);
            }
        }
        let leftovers = self.loaded().take().unwrap_or_default();
        for (tp, loaded) in leftovers {
            let Some(log) = loaded.log else {
                unclean.push(loaded.data_dir);
                continue;
            };
            entries
                .entry(loaded.data_dir.clone())
                .or_default()
                .push(CheckpointEntry::of(tp, &log));
            if let Err(e) = log.close() {
                fail(&loaded.data_dir, e.into(), &mut unclean);
            }
        }
        let _guard = self
            .shared
            .checkpoint_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for data_dir in &self.shared.config.log_dirs {
            if self.log_dir(data_dir).is_offline() {
                tracing::warn!(dir = %data_dir.display(), "log directory offline: no checkpoints, no clean-shutdown marker; the next start recovers its logs");
                continue;
            }
            let dir_entries = entries.remove(data_dir).unwrap_or_default();
            if let Err(e) = write_checkpoint_files(data_dir, &dir_entries) {
                fail(data_dir, e, &mut unclean);
                continue;
            }
            if unclean.contains(data_dir) {
                continue;
            }
            let epoch = self.shared.broker_epoch.load(Ordering::SeqCst);
            if let Err(e) = checkpoint::write_clean_shutdown_marker(data_dir, epoch) {
                fail(data_dir, e.into(), &mut unclean);
            }
        }
        tracing::info!("replica manager closed");
        first_error.map_or(Ok(()), Err)
    }
}

/// A checkpoint file, or empty (with a warning) if it is corrupt: the logs then
/// recover from their start, which is slow but loses nothing.
fn read_checkpoint(data_dir: &Path, name: &str) -> BTreeMap<TopicPartition, Offset> {
    checkpoint::read_offset_checkpoint(&data_dir.join(name)).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "ignoring an unreadable checkpoint");
        BTreeMap::new()
    })
}

/// One partition's line in each of the three checkpoint files.
#[derive(Debug, Clone)]
pub(super) struct CheckpointEntry {
    pub(super) tp: TopicPartition,
    pub(super) recovery_point: Offset,
    pub(super) log_start_offset: Offset,
    pub(super) high_watermark: Offset,
}

impl CheckpointEntry {
    pub(super) fn of(tp: TopicPartition, log: &Log) -> CheckpointEntry {
        CheckpointEntry {
            tp,
            recovery_point: log.recovery_point(),
            log_start_offset: log.log_start_offset(),
            high_watermark: log.high_watermark(),
        }
    }
}

/// Writes a data directory's three checkpoint files (each atomically).
pub(super) fn write_checkpoint_files(data_dir: &Path, entries: &[CheckpointEntry]) -> Result<()> {
    let collect = |f: fn(&CheckpointEntry) -> Offset| -> BTreeMap<TopicPartition, Offset> {
        entries.iter().map(|e| (e.tp.clone(), f(e))).collect()
    };
    checkpoint::write_offset_checkpoint(
        &data_dir.join(RECOVERY_POINT_CHECKPOINT),
        &collect(|e| e.recovery_point),
    )?;
    checkpoint::write_offset_checkpoint(
        &data_dir.join(LOG_START_OFFSET_CHECKPOINT),
        &collect(|e| e.log_start_offset),
    )?;
    checkpoint::write_offset_checkpoint(
        &data_dir.join(REPLICATION_OFFSET_CHECKPOINT),
        &collect(|e| e.high_watermark),
    )?;
    Ok(())
}
