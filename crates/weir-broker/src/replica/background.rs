//! Periodic work: retention and checkpoints.
//!
//! Both run on the blocking pool (they delete and fsync files), one pass at a time,
//! from tasks tracked by the manager so shutdown waits for them:
//!
//! - retention every `log.retention.check.interval.ms` (Kafka's default 5 minutes):
//!   each log deletes segments past `retention.ms` / `retention.bytes` (whole
//!   segments, below the high watermark) and forgets producers idle longer than
//!   `producer.id.expiration.ms`;
//! - checkpoints every few seconds (Kafka's high-watermark checkpoint interval):
//!   each data directory's recovery points, log start offsets and high watermarks,
//!   so a restart after a crash recovers only the unflushed tail and keeps the log
//!   start offsets that DeleteRecords and retention moved.

use std::path::Path;
use std::sync::PoisonError;
use std::time::Duration;

use tokio::time::{interval_at, Instant, MissedTickBehavior};
use weir_log::TopicPartition;

use super::error::Result;
use super::manager::{write_checkpoint_files, CheckpointEntry, ReplicaManager};

impl ReplicaManager {
    /// Starts the retention and checkpoint tasks.
    pub(super) fn spawn_background_tasks(&self) {
        let m = self.clone();
        let period = self.shared.config.retention_check_interval;
        self.shared.tasks.spawn(m.every(period, "retention", |m| {
            m.retention_pass();
            Ok(())
        }));
        let m = self.clone();
        let period = self.shared.config.checkpoint_interval;
        self.shared
            .tasks
            .spawn(m.every(period, "checkpoint", |m| m.write_all_checkpoints()));
    }

    /// Runs `work` on the blocking pool every `period` until shutdown.
    async fn every(
        self,
        period: Duration,
        what: &'static str,
        work: fn(&ReplicaManager) -> Result<()>,
    ) {
        let period = period.max(Duration::from_millis(1));
        let mut ticks = interval_at(Instant::now() + period, period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = self.shared.cancel.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let m = self.clone();
            match self.blocking(move || work(&m)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(task = what, error = %e, "background pass failed"),
                Err(e) => {
                    tracing::error!(task = what, error = %e, "background pass did not complete")
                }
            }
        }
    }

    /// One retention pass over every hosted log (blocking).
    pub fn retention_pass(&self) {
        let expiration_ms = self.shared.config.producer_id_expiration_ms;
        for p in self.all_partitions() {
            let Ok(mut state) = p.write() else { continue };
            let Ok(log) = p.log_mut(&mut state) else {
                continue;
            };
            match log.delete_old_segments() {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(partition = %p.name(), segments = n, "retention deleted segments")
                }
                Err(e) => {
                    tracing::error!(partition = %p.name(), error = %e, "retention failed");
                    if e.is_storage_error() {
                        drop(state);
                        p.storage_failed(&e);
                        continue;
                    }
                }
            }
            log.remove_expired_producers(expiration_ms);
        }
    }

    /// Writes every data directory's checkpoints (blocking).
    pub fn write_all_checkpoints(&self) -> Result<()> {
        let mut first_error = None;
        for dir in &self.shared.config.log_dirs {
            if let Err(e) = self.write_checkpoints_for(dir) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Writes `data_dir`'s checkpoints from the logs now open in it (blocking).
    pub(crate) fn write_checkpoints_for(&self, data_dir: &Path) -> Result<()> {
        let _guard = self
            .shared
            .checkpoint_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self
            .shared
            .closed
            .load(std::sync::atomic::Ordering::Acquire)
        {
            // Shutdown writes the final checkpoints from the closed logs.
            return Ok(());
        }
        if self.log_dir(data_dir).is_offline() {
            // Nothing more is written to a failed directory (see `log_dir.rs`).
            return Ok(());
        }
        let mut entries = Vec::new();
        for p in self.all_partitions() {
            if p.data_dir != data_dir {
                continue;
            }
            let Ok(state) = p.read() else { continue };
            if let Some(log) = state.log.as_ref() {
                let tp = TopicPartition::new(p.topic.clone(), p.index);
                entries.push(CheckpointEntry::of(tp, log));
            }
        }
        if let Some(loaded) = self.loaded().as_ref() {
            for (tp, l) in loaded {
                if let (true, Some(log)) = (l.data_dir == data_dir, l.log.as_ref()) {
                    entries.push(CheckpointEntry::of(tp.clone(), log));
                }
            }
        }
        write_checkpoint_files(data_dir, &entries)
    }
}
