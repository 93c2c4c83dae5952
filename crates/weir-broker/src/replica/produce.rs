//! The produce path: validate, append under the partition lock, then wait for
//! durability as acks asks.
//!
//! Validation is the log's ([`weir_log::Log::append_as_leader`]): framing and CRC
//! (CORRUPT_MESSAGE), magic 2 and Kafka's client rules (INVALID_RECORD),
//! `max.message.bytes` per batch (MESSAGE_TOO_LARGE), timestamps (INVALID_TIMESTAMP)
//! and idempotent producers' sequences: a retried batch is answered with its original
//! offsets and not written again, a gap is OUT_OF_ORDER_SEQUENCE_NUMBER, an old epoch
//! INVALID_PRODUCER_EPOCH. A rejected append writes nothing.
//!
//! After the write, acks=0 and acks=1 are done. acks=all first needs the ISR to have
//! at least `min.insync.replicas` members (else NOT_ENOUGH_REPLICAS, nothing
//! written), and is done once the high watermark passes the batch: every in-sync
//! replica has it, the leader's own copy fsynced when the topic is
//! fsync-before-ack (`flush.messages=1`, the default; see [`super::flusher`]). If
//! the ISR shrinks below `min.insync.replicas` meanwhile, the answer is
//! NOT_ENOUGH_REPLICAS_AFTER_APPEND at once (the high watermark stops below
//! `min.insync.replicas`, KIP-966, so waiting longer would only time out); if this
//! broker stopped leading the partition, NOT_LEADER_OR_FOLLOWER.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use weir_log::AppendInfo;
use weir_types::{LeaderEpoch, Offset};

use super::error::{ReplicaError, Result};
use super::manager::ReplicaManager;
use super::partition::{advance_high_watermark, Partition};

/// The producer's `acks`: how much durability to wait for before answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// `acks=0`: no response is sent; the append is still done.
    None,
    /// `acks=1`: answer once the leader wrote the data.
    Leader,
    /// `acks=all` (-1): answer once every in-sync replica has it (here: fsynced,
    /// unless the topic opted out of fsync-before-ack).
    All,
}

impl Acks {
    /// The wire value's meaning; `None` for a value Kafka rejects with
    /// INVALID_REQUIRED_ACKS (the handler's check).
    pub fn from_wire(acks: i16) -> Option<Acks> {
        match acks {
            0 => Some(Acks::None),
            1 => Some(Acks::Leader),
            -1 => Some(Acks::All),
            _ => None,
        }
    }
}

/// A successful append, as the produce response reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    /// Offset of the first record (for a duplicate: of the original append).
    pub base_offset: Offset,
    /// Offset of the last record.
    pub last_offset: Offset,
    /// The broker time written into the batches for a LogAppendTime topic; -1 for
    /// CreateTime (the response's `log_append_time_ms`).
    pub log_append_time_ms: i64,
    /// The log start offset after the append.
    pub log_start_offset: Offset,
    /// True when the batch was a producer's retry: nothing was written.
    pub duplicate: bool,
}

impl AppendResult {
    fn from_info(info: &AppendInfo) -> AppendResult {
        AppendResult {
            base_offset: info.first_offset,
            last_offset: info.last_offset,
            log_append_time_ms: info.log_append_time_ms.unwrap_or(-1),
            log_start_offset: info.log_start_offset,
            duplicate: info.duplicate,
        }
    }
}

/// An append that is written and may still wait for durability (acks=all); see
/// [`ReplicaManager::start_append`].
#[derive(Debug)]
#[must_use = "an acks=all append is only acknowledged after `wait_until`"]
pub struct PendingAppend {
    /// The partition, while there is something to wait for.
    partition: Option<Arc<Partition>>,
    /// The high watermark to wait for (exclusive).
    wait_for: Offset,
    /// The leader epoch of the append: a waiter fails once this broker stops
    /// leading in it.
    epoch: LeaderEpoch,
    /// The topic's `min.insync.replicas` at the append.
    min_isr: i32,
    /// What the append did.
    result: AppendResult,
}

impl PendingAppend {
    /// What the append did (already true on disk for acks=0/1; for acks=all only
    /// once [`PendingAppend::wait_until`] succeeds).
    pub fn result(&self) -> &AppendResult {
        &self.result
    }

    /// Waits until the append is acknowledged as acks asked, or `deadline` passes
    /// (REQUEST_TIMED_OUT: the data is written but was not fsynced in time, as Kafka
    /// answers a DelayedProduce that expires).
    pub async fn wait_until(self, deadline: Instant) -> Result<AppendResult> {
        if let Some(p) = &self.partition {
            p.wait_replicated(self.wait_for, self.epoch, self.min_isr, deadline)
                .await?;
        }
        Ok(self.result)
    }
}

impl ReplicaManager {
    /// Produce for one partition: appends `records` (the partition's RecordBatch
    /// bytes from the request) as leader and, for acks=all, waits up to `timeout`
    /// for the data to be durable. See the module docs for what is validated.
    pub async fn append(
        &self,
        topic: &str,
        partition: i32,
        records: Bytes,
        acks: Acks,
        timeout: Duration,
    ) -> Result<AppendResult> {
        // A far-future deadline rather than an overflow for absurd timeouts.
        let now = Instant::now();
        let deadline = now
            .checked_add(timeout)
            .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365));
        self.start_append(topic, partition, records, acks)?
            .wait_until(deadline)
            .await
    }

    /// The first half of [`ReplicaManager::append`]: validates and writes now, and
    /// returns what is left to wait for. A Produce handler appends to every
    /// partition of the request first and then waits for all of them (as Kafka's
    /// DelayedProduce does), so one request costs one group-commit round, not one
    /// per partition. The write is page-cache I/O done inline on the calling task.
    pub fn start_append(
        &self,
        topic: &str,
        partition: i32,
        records: Bytes,
        acks: Acks,
    ) -> Result<PendingAppend> {
        let p = self.partition(topic, partition)?;
        if self.is_fenced() {
            // Cut off from the controller past the session timeout: another leader
            // may already take writes; the client must find it.
            return Err(p.not_leader_error());
        }
        let (result, wait) = p.append_as_leader(records, acks)?;
        Ok(match wait {
            Some(w) => PendingAppend {
                partition: Some(p),
                wait_for: w.offset,
                epoch: w.epoch,
                min_isr: w.min_isr,
                result,
            },
            None => PendingAppend {
                partition: None,
                wait_for: Offset(0),
                epoch: LeaderEpoch(-1),
                min_isr: 0,
                result,
            },
        })
    }
}

/// Whether an ISR of `isr_len` members is below `min.insync.replicas`.
fn below_min(isr_len: usize, min_isr: i32) -> bool {
    i64::try_from(isr_len).unwrap_or(i64::MAX) < i64::from(min_isr)
}

/// What an acks=all append waits for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AckWait {
    offset: Offset,
    epoch: LeaderEpoch,
    min_isr: i32,
}

impl Partition {
    /// Appends as leader; returns the result and, for acks=all, what to wait for.
    pub(crate) fn append_as_leader(
        &self,
        records: Bytes,
        acks: Acks,
    ) -> Result<(AppendResult, Option<AckWait>)> {
        let mut state = self.write()?;
        self.check_leader(&state)?;
        let epoch = state.leader_epoch;
        let isr = state.isr.len();
        let log = self.log_mut(&mut state)?;
        if let Some(latest) = log.latest_epoch().filter(|latest| *latest > epoch) {
            // The log holds data of a newer epoch than the metadata gave us: our
            // registration is stale. Refuse rather than write an epoch backwards
            // (which the log asserts against).
            tracing::warn!(partition = %self.name(), latest = latest.get(), epoch = epoch.get(), "log is ahead of the leader epoch in the metadata");
            return Err(self.not_leader_error());
        }
        let min_isr = log.config().min_insync_replicas;
        if acks == Acks::All && i64::try_from(isr).unwrap_or(i64::MAX) < i64::from(min_isr) {
            return Err(ReplicaError::NotEnoughReplicas { isr, min: min_isr });
        }
        let end_before = log.log_end_offset();
        let unflushed_before = log.unflushed_messages();
        let info = match log.append_as_leader(records, epoch) {
            Ok(info) => info,
            Err(e) => {
                drop(state);
                self.storage_failed(&e);
                return Err(e.into());
            }
        };
        let config = log.config();
        let wait_for = (acks == Acks::All).then(|| AckWait {
            offset: info.last_offset.plus(1),
            epoch,
            min_isr,
        });
        if info.duplicate {
            return Ok((AppendResult::from_info(&info), wait_for));
        }
        assert!(
            log.log_end_offset() > end_before && info.first_offset == end_before,
            "append to {} did not continue the log: end {end_before}, appended {}..={}",
            self.name(),
            info.first_offset,
            info.last_offset
        );
        let unflushed = log.unflushed_messages();
        // Wake the flusher when the policy wants a flush, or when `flush.ms` needs
        // its timer armed for the first unflushed data.
        let poke = unflushed >= config.flush_messages
            || (config.flush_ms != i64::MAX && unflushed_before == 0);
        let hw_moved = advance_high_watermark(&mut state);
        self.publish(&state);
        drop(state);
        if poke {
            self.flush_requested.notify_one();
        }
        self.leo_waiters.wake_all();
        if hw_moved {
            self.hw_waiters.wake_all();
        }
        Ok((AppendResult::from_info(&info), wait_for))
    }

    /// Waits until the high watermark reaches `target` (exclusive) while this
    /// broker leads in `epoch`, until `deadline` at the latest; see the module docs.
    pub(crate) async fn wait_replicated(
        &self,
        target: Offset,
        epoch: LeaderEpoch,
        min_isr: i32,
        deadline: Instant,
    ) -> Result<()> {
        let mut rx = self.flushed.subscribe();
        let waited = tokio::time::timeout_at(
            deadline,
            rx.wait_for(|p| {
                p.high_watermark >= target
                    || below_min(p.isr_len, min_isr)
                    || p.failed
                    || p.stopped
                    || p.leading != Some(epoch)
                    || p.fenced
            }),
        )
        .await;
        let progress = match waited {
            Err(_) => return Err(ReplicaError::RequestTimedOut),
            // The sender lives as long as the partition: only a stopped one closes.
            Ok(Err(_)) => return Err(self.offline_error()),
            Ok(Ok(progress)) => *progress,
        };
        if below_min(progress.isr_len, min_isr)
            && (progress.high_watermark >= target || progress.leading == Some(epoch))
        {
            // Written, but the ISR is now too small for it to count as committed
            // (and the high watermark waits while it is, `partition.rs`).
            Err(ReplicaError::NotEnoughReplicasAfterAppend {
                isr: progress.isr_len,
                min: min_isr,
            })
        } else if progress.high_watermark >= target {
            Ok(())
        } else if progress.failed {
            Err(self.offline_error())
        } else if (progress.leading != Some(epoch) || progress.fenced) && !progress.stopped {
            Err(self.not_leader_error())
        } else {
            Err(ReplicaError::Stopped {
                topic: self.topic.clone(),
                partition: self.index,
            })
        }
    }
}
