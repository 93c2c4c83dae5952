//! Group commit: one background flusher per partition.
//!
//! Appends never fsync. They write to the page cache under the partition lock and,
//! when the topic's policy says the data should be flushed, poke the partition's
//! flusher (`flush_requested`). The flusher loops:
//!
//! 1. under the partition's read lock, take a [`weir_log::FlushHandle`]: it covers
//!    every byte appended so far;
//! 2. with no lock held, on the blocking pool, fsync the files the handle names.
//!    Appends carry on meanwhile, and the next round covers them;
//! 3. under the write lock, mark the handle flushed: the recovery point moves to the
//!    handle's offset, the high watermark follows (fsync-before-ack), and the new
//!    durable offset is published on the partition's `watch` channel, releasing
//!    every acks=all produce whose data it covers at once.
//!
//! So one fsync serves however many produce requests arrived while the previous one
//! ran: throughput grows with load while every acknowledged record is on disk.
//!
//! When to flush is the topic's policy: after `flush.messages` unflushed messages
//! (Weir's default 1, i.e. always, makes acks=all wait for the fsync), or once the
//! oldest unflushed data is `flush.ms` old. A failed fsync takes the log offline
//! (the page cache state is unknown after one) and fails the waiters.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use weir_log::{FlushHandle, LogError};

use super::partition::{advance_high_watermark, Partition};

impl Partition {
    /// The flusher task; see the module docs. Ends when `cancel` fires or the
    /// partition stops. The final flush at shutdown is the manager's.
    pub(crate) async fn run_flusher(
        self: Arc<Self>,
        gate: Option<Arc<Semaphore>>,
        cancel: CancellationToken,
    ) {
        loop {
            let deadline = self.flush_deadline();
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                _ = self.flush_requested.notified() => {}
                _ = sleep_until(deadline) => {}
            }
            if self.flushed.borrow().stopped {
                return;
            }
            if self.flush_due() {
                if let Some(gate) = &gate {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        permit = gate.acquire() => {
                            if let Ok(p) = permit { p.forget() }
                        }
                    }
                }
                self.flush_once().await;
            }
        }
    }

    /// Whether the topic's policy asks for a flush now.
    fn flush_due(&self) -> bool {
        let Ok(state) = self.read() else { return false };
        let Ok(log) = self.log(&state) else {
            return false;
        };
        let unflushed = log.unflushed_messages();
        if unflushed <= 0 {
            return false;
        }
        let config = log.config();
        self.force_flush.swap(false, Ordering::AcqRel)
            || unflushed >= config.flush_messages
            || flush_ms_deadline(state.last_flush, config.flush_ms)
                .is_some_and(|d| d <= Instant::now())
    }

    /// When `flush.ms` will ask for a flush of the data now unflushed, if ever.
    fn flush_deadline(&self) -> Option<Instant> {
        let state = self.read().ok()?;
        let log = self.log(&state).ok()?;
        if log.unflushed_messages() <= 0 {
            return None;
        }
        flush_ms_deadline(state.last_flush, log.config().flush_ms)
    }

    /// One group-commit round (steps 1 to 3 of the module docs).
    pub(crate) async fn flush_once(&self) {
        let handle = {
            let Ok(state) = self.read() else { return };
            let Ok(log) = self.log(&state) else { return };
            log.flush_handle()
        };
        let Some(handle) = handle else { return };
        let synced = tokio::task::spawn_blocking(move || handle.sync().map(|()| handle))
            .await
            .unwrap_or_else(|join| {
                Err(LogError::Io {
                    op: "fsync (task failed)",
                    path: Default::default(),
                    source: std::io::Error::other(join.to_string()),
                })
            });
        self.finish_flush(synced);
    }

    /// Step 3, or the failure path.
    fn finish_flush(&self, synced: Result<FlushHandle, LogError>) {
        let Ok(mut state) = self.write() else { return };
        let handle = match synced {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(partition = %self.name(), error = %e, "fsync failed");
                if let Some(log) = state.log.as_mut() {
                    log.mark_flush_failed();
                }
                drop(state);
                self.storage_failed(&e);
                return;
            }
        };
        let Some(log) = state.log.as_mut() else {
            return;
        };
        let flushed = log.mark_flushed(&handle);
        state.last_flush = Instant::now();
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        let moved = advance_high_watermark(&mut state);
        self.publish(&state);
        drop(state);
        self.flushed.send_modify(|p| {
            if flushed > p.flushed {
                p.flushed = flushed;
            }
        });
        if moved {
            self.hw_waiters.wake_all();
        }
    }

    /// Flushes synchronously under the write lock (shutdown; no appends then).
    pub(crate) fn flush_blocking(&self) -> Result<(), LogError> {
        let Ok(mut state) = self.write() else {
            return Ok(());
        };
        let Some(log) = state.log.as_mut() else {
            return Ok(());
        };
        if log.is_offline() || self.dir.is_offline() {
            return Ok(());
        }
        let had_data = log.unflushed_messages() > 0;
        if let Err(e) = log.flush() {
            drop(state);
            self.storage_failed(&e);
            return Err(e);
        }
        let flushed = log.recovery_point();
        if had_data {
            self.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        advance_high_watermark(&mut state);
        self.publish(&state);
        drop(state);
        self.flushed
            .send_modify(|p| p.flushed = p.flushed.max(flushed));
        self.hw_waiters.wake_all();
        Ok(())
    }
}

/// `last_flush + flush.ms`, or `None` for the default "never".
fn flush_ms_deadline(last_flush: Instant, flush_ms: i64) -> Option<Instant> {
    if flush_ms == i64::MAX {
        return None;
    }
    let ms = u64::try_from(flush_ms).unwrap_or(0);
    last_flush.checked_add(Duration::from_millis(ms))
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
