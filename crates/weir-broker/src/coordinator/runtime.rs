//! Running shard operations: the lock, the write, the wait for durability, the
//! timers, and loading a partition back.
//!
//! Every offsets-topic partition is a slot: unloaded, loading, or active with its
//! [`Shard`]. An operation ([`Runtime::begin`]) locks the slot, runs on the shard,
//! appends the outcome's records to the log while still holding the lock (so the
//! log has them in the order the state machine made them), replays them if the
//! outcome asks, and releases the lock. [`Pending::finish`] then waits for the
//! records to be durable and runs the outcome's follow-up under the lock again: a
//! response is never sent for a change that is not on disk.
//!
//! Loading reads the partition from its start to its high watermark and replays
//! every record into a fresh shard; only then does the slot become active, so no
//! request sees a half-loaded partition (they get COORDINATOR_LOAD_IN_PROGRESS).
//!
//! Timers are data in each shard; [`Runtime::tick`] runs the due ones as
//! operations. The broker drives it from one task that sleeps until the earliest
//! deadline; tests call it after moving a fake clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use weir_protocol::records::Batches;
use weir_types::Clock;

use super::config::CoordinatorConfig;
use super::error::{CoordinatorError, StoreError};
use super::records::{decode_batch, encode_batch, Decoded};
use super::shard::{AfterWrite, Now, Outcome, Shard};
use super::store::{Durable, OffsetsLog};

/// One partition's state.
#[derive(Debug)]
enum SlotState {
    /// Not served here (not led, or not read yet).
    Unloaded,
    /// Being read back; `epoch` tells this load from a later one.
    Loading {
        /// The load's epoch.
        epoch: u64,
    },
    /// Served.
    Active {
        /// The epoch of the load that made it active: a follow-up of a write made
        /// before an unload and reload must not run on the new shard.
        epoch: u64,
        /// The state (boxed: a slot is mostly small).
        shard: Box<Shard>,
    },
}

/// The shared core of the coordinator.
pub(crate) struct Runtime {
    /// Settings.
    pub(crate) config: Arc<CoordinatorConfig>,
    /// Wall and monotonic time.
    clock: Arc<dyn Clock>,
    /// The origin of the monotonic milliseconds timers use.
    origin: Instant,
    /// The offsets topic.
    log: Arc<dyn OffsetsLog>,
    /// One slot per offsets-topic partition.
    slots: Vec<Mutex<SlotState>>,
    /// Epochs for loads.
    next_epoch: AtomicU64,
    /// Bumped whenever a slot finishes loading or unloads, for waiters.
    loads: watch::Sender<u64>,
    /// Woken whenever timers may have changed, so the timer task recomputes its
    /// sleep.
    pub(crate) timers_changed: Notify,
    /// Cancelled when the coordinator stops.
    pub(crate) cancel: CancellationToken,
    /// Loading tasks and the timer task.
    pub(crate) tasks: TaskTracker,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
            .field("log", &self.log)
            .field("partitions", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// An operation whose records are written but maybe not durable yet.
pub(crate) struct Pending<T> {
    /// The runtime, for the follow-up.
    runtime: Arc<Runtime>,
    /// The partition.
    partition: i32,
    /// The shard epoch the operation ran in.
    epoch: u64,
    /// The operation's answer.
    response: T,
    /// The write to wait for (none when nothing was written).
    durable: Option<Durable>,
    /// The follow-up, when there was a write.
    then: Option<AfterWrite>,
}

impl<T> Pending<T> {
    /// Waits until the records are durable, runs the follow-up, and returns the
    /// answer (or why the write failed).
    pub(crate) async fn finish(self) -> Result<T, CoordinatorError> {
        let Some(durable) = self.durable else {
            return Ok(self.response);
        };
        let result = durable.await;
        let code = match &result {
            Ok(()) => Ok(()),
            Err(e) => Err(e.error_code()),
        };
        if let Some(then) = self.then {
            self.runtime
                .with_shard_epoch(self.partition, self.epoch, |shard, now| {
                    then(shard, now, code);
                });
        }
        self.runtime.timers_changed.notify_one();
        match result {
            Ok(()) => Ok(self.response),
            Err(source) => Err(CoordinatorError::Write {
                partition: self.partition,
                source,
            }),
        }
    }
}

fn lock(slot: &Mutex<SlotState>) -> MutexGuard<'_, SlotState> {
    // A panic under the lock is a bug already reported; the state is still the
    // best there is.
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Runtime {
    /// A runtime over `log`; every slot starts unloaded.
    pub(crate) fn new(
        config: CoordinatorConfig,
        clock: Arc<dyn Clock>,
        log: Arc<dyn OffsetsLog>,
        cancel: CancellationToken,
    ) -> Runtime {
        let partitions = usize::try_from(config.num_partitions.max(1)).unwrap_or(1);
        Runtime {
            config: Arc::new(config),
            origin: clock.monotonic(),
            clock,
            log,
            slots: (0..partitions)
                .map(|_| Mutex::new(SlotState::Unloaded))
                .collect(),
            next_epoch: AtomicU64::new(1),
            loads: watch::channel(0).0,
            timers_changed: Notify::new(),
            cancel,
            tasks: TaskTracker::new(),
        }
    }

    /// The time now.
    pub(crate) fn now(&self) -> Now {
        let mono = self
            .clock
            .monotonic()
            .saturating_duration_since(self.origin);
        Now {
            wall_ms: self.clock.now_ms(),
            mono_ms: i64::try_from(mono.as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// The monotonic instant of a timer deadline.
    pub(crate) fn instant_of(&self, mono_ms: i64) -> Instant {
        let ms = u64::try_from(mono_ms.max(0)).unwrap_or(0);
        self.origin
            .checked_add(Duration::from_millis(ms))
            .unwrap_or(self.origin)
    }

    /// The slot of `partition`.
    fn slot(&self, partition: i32) -> Result<&Mutex<SlotState>, CoordinatorError> {
        usize::try_from(partition)
            .ok()
            .and_then(|i| self.slots.get(i))
            .ok_or(CoordinatorError::NotCoordinator { partition })
    }

    /// Number of partitions.
    pub(crate) fn partitions(&self) -> i32 {
        i32::try_from(self.slots.len()).unwrap_or(i32::MAX)
    }

    /// Runs `op` on the active shard of `partition` and writes its records; see
    /// the module docs.
    pub(crate) fn begin<T>(
        self: &Arc<Self>,
        partition: i32,
        op: impl FnOnce(&mut Shard, Now) -> Outcome<T>,
    ) -> Result<Pending<T>, CoordinatorError> {
        if self.cancel.is_cancelled() {
            return Err(CoordinatorError::ShuttingDown);
        }
        let slot = self.slot(partition)?;
        let mut state = lock(slot);
        let (epoch, shard) = match &mut *state {
            SlotState::Active { epoch, shard } => (*epoch, shard),
            SlotState::Loading { .. } => {
                return Err(CoordinatorError::LoadInProgress { partition })
            }
            SlotState::Unloaded => {
                drop(state);
                return Err(self.not_active(partition));
            }
        };
        let now = self.now();
        let Outcome {
            records,
            replay,
            response,
            then,
        } = op(shard, now);
        let pending = |durable, then| Pending {
            runtime: self.clone(),
            partition,
            epoch,
            response,
            durable,
            then,
        };
        if records.is_empty() {
            if let Some(then) = then {
                then(shard, now, Ok(()));
            }
            drop(state);
            self.timers_changed.notify_one();
            return Ok(pending(None, None));
        }
        let timeout =
            Duration::from_millis(u64::try_from(self.config.commit_timeout_ms).unwrap_or(5_000));
        let appended = encode_batch(&records, now.wall_ms)
            .map_err(StoreError::from)
            .and_then(|batch| self.log.append(partition, batch, timeout));
        match appended {
            Ok(durable) => {
                if replay {
                    for record in records {
                        shard.replay(record, now);
                    }
                }
                drop(state);
                self.timers_changed.notify_one();
                Ok(pending(Some(durable), then))
            }
            Err(source) => {
                tracing::warn!(partition, error = %source, "a coordinator write failed");
                if let Some(then) = then {
                    then(shard, now, Err(source.error_code()));
                }
                drop(state);
                self.timers_changed.notify_one();
                Err(CoordinatorError::Write { partition, source })
            }
        }
    }

    /// Reads the active shard of `partition`.
    pub(crate) fn read<T>(
        self: &Arc<Self>,
        partition: i32,
        f: impl FnOnce(&Shard) -> T,
    ) -> Result<T, CoordinatorError> {
        if self.cancel.is_cancelled() {
            return Err(CoordinatorError::ShuttingDown);
        }
        let slot = self.slot(partition)?;
        let state = lock(slot);
        match &*state {
            SlotState::Active { shard, .. } => Ok(f(shard)),
            SlotState::Loading { .. } => Err(CoordinatorError::LoadInProgress { partition }),
            SlotState::Unloaded => {
                drop(state);
                Err(self.not_active(partition))
            }
        }
    }

    /// Whether `partition` is being served.
    pub(crate) fn is_active(&self, partition: i32) -> bool {
        self.slot(partition)
            .is_ok_and(|s| matches!(&*lock(s), SlotState::Active { .. }))
    }

    /// Runs `f` on the shard if it is still the one of `epoch`.
    fn with_shard_epoch(&self, partition: i32, epoch: u64, f: impl FnOnce(&mut Shard, Now)) {
        let Ok(slot) = self.slot(partition) else {
            return;
        };
        let mut state = lock(slot);
        if let SlotState::Active { epoch: e, shard } = &mut *state {
            if *e == epoch {
                f(shard, self.now());
            }
        }
    }

    /// The error for an unloaded partition: if this broker leads it, its load starts
    /// now and the client is told to retry shortly.
    fn not_active(self: &Arc<Self>, partition: i32) -> CoordinatorError {
        if self.log.is_leader(partition) && self.start_load(partition) {
            CoordinatorError::LoadInProgress { partition }
        } else {
            CoordinatorError::NotCoordinator { partition }
        }
    }

    /// Starts loading `partition` unless it is loading or loaded; true if it is
    /// loading now.
    pub(crate) fn start_load(self: &Arc<Self>, partition: i32) -> bool {
        let Ok(slot) = self.slot(partition) else {
            return false;
        };
        let epoch = {
            let mut state = lock(slot);
            match &*state {
                SlotState::Loading { .. } => return true,
                SlotState::Active { .. } => return false,
                SlotState::Unloaded => {}
            }
            let epoch = self.next_epoch.fetch_add(1, Ordering::Relaxed);
            *state = SlotState::Loading { epoch };
            epoch
        };
        let runtime = self.clone();
        self.tasks.spawn(async move {
            let started = Instant::now();
            let loaded = tokio::select! {
                loaded = runtime.read_partition(partition) => loaded,
                () = runtime.cancel.cancelled() => Err(StoreError::Unavailable("shutting down".into())),
            };
            runtime.finish_load(partition, epoch, loaded, started);
        });
        true
    }

    /// Reads `partition` into a fresh shard.
    async fn read_partition(&self, partition: i32) -> Result<(Shard, usize), StoreError> {
        let mut shard = Shard::new(partition, self.config.clone());
        let mut offset = self.log.log_start_offset(partition)?;
        let mut applied = 0usize;
        loop {
            let chunk = self.log.read(partition, offset).await?;
            let now = self.now();
            let before = offset;
            let mut batches = Batches::allowing_partial_tail(chunk.records);
            for batch in batches.by_ref() {
                let batch = match batch {
                    Ok(batch) => batch,
                    Err(e) => {
                        return Err(StoreError::Unavailable(format!(
                            "a stored batch at offset {offset} does not parse: {e}"
                        )))
                    }
                };
                offset = batch.header().next_offset();
                if batch.header().is_control() || batch.header().is_transactional() {
                    // No transactional offset commits exist yet; nothing to apply.
                    continue;
                }
                let records = match decode_batch(&batch) {
                    Ok(records) => records,
                    Err(e) => {
                        tracing::error!(partition, base_offset = batch.header().base_offset(), error = %e, "skipping an unreadable batch of __consumer_offsets");
                        continue;
                    }
                };
                for (record_offset, record) in records {
                    match record {
                        Ok(Decoded::Known(record)) => {
                            shard.replay(record, now);
                            applied += 1;
                        }
                        Ok(Decoded::Other(version)) => {
                            tracing::debug!(
                                partition,
                                record_offset,
                                version,
                                "skipping a record of a group type Weir does not serve"
                            );
                        }
                        Err(e) => {
                            tracing::error!(partition, record_offset, error = %e, "skipping an unreadable record of __consumer_offsets");
                        }
                    }
                }
            }
            if offset >= chunk.high_watermark || offset == before {
                return Ok((shard, applied));
            }
        }
    }

    /// Makes a loaded partition active (if the load is still the current one).
    fn finish_load(
        &self,
        partition: i32,
        epoch: u64,
        loaded: Result<(Shard, usize), StoreError>,
        started: Instant,
    ) {
        let Ok(slot) = self.slot(partition) else {
            return;
        };
        {
            let mut state = lock(slot);
            if !matches!(&*state, SlotState::Loading { epoch: e } if *e == epoch) {
                return;
            }
            match loaded {
                Ok((mut shard, records)) => {
                    shard.on_loaded(self.now());
                    let elapsed_ms = started.elapsed().as_millis();
                    if records == 0 {
                        tracing::debug!(
                            partition,
                            elapsed_ms,
                            "loaded empty __consumer_offsets partition"
                        );
                    } else {
                        tracing::info!(
                            partition,
                            groups = shard.groups.len(),
                            records,
                            elapsed_ms,
                            "loaded __consumer_offsets partition"
                        );
                    }
                    *state = SlotState::Active {
                        epoch,
                        shard: Box::new(shard),
                    };
                }
                Err(e) => {
                    tracing::error!(partition, error = %e, "cannot load __consumer_offsets partition; will retry on the next request");
                    *state = SlotState::Unloaded;
                }
            }
        }
        self.loads.send_modify(|n| *n = n.wrapping_add(1));
        self.timers_changed.notify_one();
    }

    /// Stops serving `partition`: parked requests are answered NOT_COORDINATOR.
    pub(crate) fn unload(&self, partition: i32) {
        let Ok(slot) = self.slot(partition) else {
            return;
        };
        let mut state = lock(slot);
        match &mut *state {
            SlotState::Unloaded => return,
            SlotState::Active { shard, .. } => {
                let groups = shard.groups.len();
                shard.unload();
                tracing::debug!(partition, groups, "unloaded __consumer_offsets partition");
            }
            SlotState::Loading { .. } => {}
        }
        *state = SlotState::Unloaded;
        drop(state);
        self.loads.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Waits (at most `timeout`) until `partition` is no longer loading.
    pub(crate) async fn wait_loaded(&self, partition: i32, timeout: Duration) {
        let mut rx = self.loads.subscribe();
        let loading = |s: &Runtime| {
            s.slot(partition)
                .is_ok_and(|slot| matches!(&*lock(slot), SlotState::Loading { .. }))
        };
        let _ = tokio::time::timeout(timeout, async {
            while loading(self) {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
    }

    /// The earliest timer deadline over all active shards.
    pub(crate) fn next_deadline(&self) -> Option<i64> {
        self.slots
            .iter()
            .filter_map(|slot| match &*lock(slot) {
                SlotState::Active { shard, .. } => shard.timers.next_deadline(),
                _ => None,
            })
            .min()
    }

    /// Runs every due timer, each as an operation of its shard.
    pub(crate) async fn tick(self: &Arc<Self>) {
        for partition in 0..self.partitions() {
            while self.is_active(partition) {
                let fired = self.begin(partition, |shard, now| {
                    match shard.timers.pop_expired(now.mono_ms) {
                        Some((key, action)) => shard.fire(key, action, now).map(|()| true),
                        None => Outcome::just(false),
                    }
                });
                let pending = match fired {
                    Ok(p) => p,
                    Err(CoordinatorError::Write { .. }) => continue,
                    Err(_) => break,
                };
                match pending.finish().await {
                    Ok(true) | Err(_) => {}
                    Ok(false) => break,
                }
            }
        }
    }
}

/// Java's `String.hashCode`: 31-based over UTF-16 code units, wrapping.
pub(crate) fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// Kafka's `Utils.abs(groupId.hashCode()) % partitions`: the offsets-topic partition
/// of a group.
pub(crate) fn partition_for(group_id: &str, partitions: i32) -> i32 {
    let hash = java_string_hash(group_id);
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1)
}
